//! Running one recipe: a clean environment, `bash -e` in a fresh build directory, and a log.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::cancel::{self, GroupGuard};
use crate::stack::{Recipe, Stack};

/// The PATH every recipe starts from, after its dependencies' `bin` directories.
pub const BASE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Environment variable overriding the Spack job command; `{hash}`, `{name}`, `{version}` are filled in.
pub const SPACK_COMMAND_ENV: &str = "STACKCI_SPACK_COMMAND";
/// The default Spack job command.
pub const DEFAULT_SPACK_COMMAND: &str = "spack install /{hash}";

pub use crate::stack::prefix_var;

/// The environment a recipe of package `i` runs with (nothing is inherited).
pub fn environment(
    stack: &Stack,
    i: usize,
    jobs: usize,
    source_date_epoch: u64,
    home: &Path,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = stack.recipe_env(i);
    let closure = stack.build_closure(i);
    let prefixes: Vec<PathBuf> = closure.iter().rev().map(|&d| stack.prefix(d)).collect();
    let join = |sub: &str, base: Option<&str>| -> String {
        let mut parts: Vec<String> = prefixes.iter().map(|p| p.join(sub).display().to_string()).collect();
        parts.extend(base.map(str::to_string));
        parts.join(":")
    };
    env.insert("PATH".into(), join("bin", Some(BASE_PATH)));
    env.insert("CPATH".into(), join("include", None));
    env.insert("LIBRARY_PATH".into(), join("lib", None));
    env.insert("LD_LIBRARY_PATH".into(), join("lib", None));
    let pc: Vec<String> = prefixes
        .iter()
        .flat_map(|p| [p.join("lib/pkgconfig"), p.join("share/pkgconfig")])
        .map(|p| p.display().to_string())
        .collect();
    env.insert("PKG_CONFIG_PATH".into(), pc.join(":"));
    for &d in &closure {
        env.insert(
            prefix_var(&stack.packages[d].name),
            stack.prefix(d).display().to_string(),
        );
    }
    env.insert("PREFIX".into(), stack.prefix(i).display().to_string());
    env.insert("JOBS".into(), jobs.to_string());
    env.insert("SOURCE_DATE_EPOCH".into(), source_date_epoch.to_string());
    env.insert("HOME".into(), home.display().to_string());
    env.insert("TMPDIR".into(), home.display().to_string());
    env.entry("LANG".into()).or_insert_with(|| "C".into());
    env.insert("STACKCI_PACKAGE".into(), stack.packages[i].name.clone());
    env.insert("STACKCI_HASH".into(), stack.packages[i].hash.clone());
    env
}

/// The script a package runs.
pub fn script(stack: &Stack, i: usize) -> Result<String> {
    let pkg = &stack.packages[i];
    match &pkg.recipe {
        Recipe::Script(s) => Ok(s.clone()),
        Recipe::Spack => {
            let template = std::env::var(SPACK_COMMAND_ENV).unwrap_or_else(|_| DEFAULT_SPACK_COMMAND.into());
            Ok(template
                .replace("{hash}", &pkg.hash)
                .replace("{name}", &pkg.name)
                .replace("{version}", &pkg.version))
        }
        Recipe::External { .. } => bail!("`{}` is external and is never built", pkg.tag()),
    }
}

/// Runs package `i`'s recipe with `bash -e` in `work` (the unpacked source), writing all
/// output to `log` and passing each line to `on_line`. Fails with the exit status.
pub fn run(
    stack: &Stack,
    i: usize,
    work: &Path,
    log: &Path,
    jobs: usize,
    source_date_epoch: u64,
    on_line: &mut dyn FnMut(&str),
) -> Result<()> {
    let home = work.parent().unwrap_or(work).join("home");
    std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    let script_path = work.parent().unwrap_or(work).join("build.sh");
    std::fs::write(&script_path, script(stack, i)?).with_context(|| format!("writing {}", script_path.display()))?;
    let mut log_file = File::create(log).with_context(|| format!("creating log {}", log.display()))?;

    let (reader, writer) = std::io::pipe().context("creating a pipe for the recipe output")?;
    let mut cmd = Command::new("bash");
    cmd.arg("-e")
        .arg(&script_path)
        .current_dir(work)
        .env_clear()
        .envs(environment(stack, i, jobs, source_date_epoch, &home))
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0);
    let mut child = cmd.spawn().context("starting bash (is it installed?)")?;
    drop(cmd); // close our copies of the pipe's write end
    let guard = GroupGuard::new(child.id());
    for line in BufReader::new(reader).split(b'\n') {
        let line = line.context("reading recipe output")?;
        log_file.write_all(&line)?;
        log_file.write_all(b"\n")?;
        on_line(&String::from_utf8_lossy(&line));
    }
    let status = child.wait().context("waiting for the recipe")?;
    drop(guard);
    if cancel::is_cancelled() {
        bail!("interrupted");
    }
    if !status.success() {
        bail!("recipe failed ({status}); log: {}", log.display());
    }
    Ok(())
}
