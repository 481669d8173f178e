//! Building one package of a Spack environment: Spack installs exactly that spec into the
//! stack's store, its dependencies already unpacked there from the mirror.
//!
//! 1. [`find`] Spack: the stack's `spack: root:`, else `$SPACK_ROOT`, else `spack` on `PATH`;
//!    it must be the version that wrote the lockfile (`spack.version`), since another
//!    Spack has other package recipes.
//! 2. `spack reindex` rebuilds Spack's database (`<store>/.spack-db`) from the prefixes in
//!    the store: every unpacked dependency carries `.spack/spec.json`, so Spack counts it
//!    as installed.
//! 3. `spack install --only package --no-add /HASH` builds that spec alone. Spack refuses
//!    when a dependency is not installed ("Detected uninstalled dependencies"): that is
//!    "Spack would build something else", reported as such ([`uninstalled`]).
//! 4. The prefix must be `<store>/<name>-<version>-<hash>` with that hash in its
//!    `.spack/spec.json`.
//!
//! Spack is configured on its command line ([`config_args`]), never by editing the user's
//! `spack.yaml`: install tree root = the store, projection `{name}-{version}-{hash}` (so a
//! Spack prefix is the stackci prefix), stage in the build directory, source cache in the
//! state directory. What reaches Spack's environment is [`environment`]'s allow-list.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::recipe::{BASE_PATH, Supervised};
use crate::env_vars;
use crate::stack::Stack;
use crate::stack::spack_env::SpackEnv;

/// Where the Spack that runs was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The stack's `spack: root:`.
    Setting,
    /// `$SPACK_ROOT`.
    EnvVar,
    /// A `spack` on `PATH`.
    Path,
}

/// A Spack installation to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spack {
    /// `<root>/bin/spack`.
    pub program: PathBuf,
    /// The installation's root (`SPACK_ROOT`).
    pub root: PathBuf,
    /// Where it was found.
    pub origin: Origin,
}

impl std::fmt::Display for Spack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = match self.origin {
            Origin::Setting => "the stack's `spack: root:`",
            Origin::EnvVar => "$SPACK_ROOT",
            Origin::Path => "PATH",
        };
        write!(f, "{} (from {from})", self.program.display())
    }
}

/// Finds Spack for `env`: `spack: root:`, else `$SPACK_ROOT`, else `spack` on `PATH`. A
/// root that is named but holds no `bin/spack` is an error, not a reason to look further.
pub fn find(env: &SpackEnv) -> Result<Spack> {
    find_with(env, &|name| env_vars::var(name))
}

/// [`find`] with the environment read through `var`.
fn find_with(env: &SpackEnv, var: &dyn Fn(&str) -> Option<String>) -> Result<Spack> {
    let at_root = |root: PathBuf, origin: Origin, what: String| -> Result<Spack> {
        let program = root.join("bin").join("spack");
        if !program.is_file() {
            bail!("Spack not found: {what} is {}, which has no bin/spack", root.display());
        }
        Ok(Spack { program, root, origin })
    };
    if let Some(root) = &env.settings.root {
        return at_root(root.clone(), Origin::Setting, "the stack's `spack: root:`".into());
    }
    if let Some(root) = var(env_vars::SPACK_ROOT) {
        return at_root(PathBuf::from(root), Origin::EnvVar, "$SPACK_ROOT".into());
    }
    let path = var(env_vars::PATH).unwrap_or_default();
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join("spack");
        if is_executable(&candidate) {
            // `spack` may be a link into the installation (/usr/local/bin/spack).
            let program = fs::canonicalize(&candidate).unwrap_or(candidate);
            let root = program
                .parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/"));
            return Ok(Spack {
                program,
                root,
                origin: Origin::Path,
            });
        }
    }
    bail!(
        "Spack not found: the stack sets no `spack: root:`, $SPACK_ROOT is not set, and no `spack` is on PATH ({path}); \
         install Spack, or set `spack: root:` in stack.yaml or $SPACK_ROOT"
    )
}

/// True for a regular file with an execute bit.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The environment Spack runs with for package `i` (nothing else is inherited):
/// - `PATH`: `<spack root>/bin`, then the caller's `PATH` (Spack finds python3, compilers
///   and build tools on it; [`BASE_PATH`] when unset);
/// - `HOME` (the caller's, so `~/.spack` applies as when the user runs Spack; else `home`),
///   `TMPDIR` = `tmp`, `SPACK_ROOT` = the root that runs, `SOURCE_DATE_EPOCH`;
/// - the host variables of [`env_vars::SPACK_PASS_THROUGH`] that are set;
/// - the stack's `env:`, then the variables named by `spack: pass_env:` (when set);
/// - `STACKCI_PACKAGE` and `STACKCI_HASH` (the supervisor finds stray processes by it).
pub fn environment(
    stack: &Stack,
    i: usize,
    spack: &Spack,
    home: &Path,
    tmp: &Path,
    source_date_epoch: u64,
    var: &dyn Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for name in env_vars::SPACK_PASS_THROUGH {
        if let Some(v) = var(name) {
            env.insert(name.to_string(), v);
        }
    }
    let path = var(env_vars::PATH).unwrap_or_else(|| BASE_PATH.to_string());
    env.insert("PATH".into(), format!("{}:{path}", spack.root.join("bin").display()));
    let home = var(env_vars::HOME).unwrap_or_else(|| home.display().to_string());
    env.insert("HOME".into(), home);
    env.insert("TMPDIR".into(), tmp.display().to_string());
    env.insert(env_vars::SPACK_ROOT.into(), spack.root.display().to_string());
    env.insert(env_vars::SOURCE_DATE_EPOCH.into(), source_date_epoch.to_string());
    env.extend(stack.recipe_env(i));
    if let Some(s) = &stack.spack {
        for name in &s.settings.pass_env {
            if let Some(v) = var(name) {
                env.insert(name.clone(), v);
            }
        }
    }
    env.insert("STACKCI_PACKAGE".into(), stack.packages[i].name.clone());
    env.insert("STACKCI_HASH".into(), stack.packages[i].hash.clone());
    env
}

/// The projection that makes a Spack prefix the stackci prefix `<store>/<tag>`.
pub const PROJECTION: &str = "{name}-{version}-{hash}";

/// Spack's configuration for a build, as `-c` arguments (the highest-precedence scope; the
/// user's `spack.yaml` is not touched): install tree root and projection, the stage in
/// `build_dir`, downloaded sources cached in `<state>/cache/spack-sources`.
pub fn config_args(store: &Path, build_dir: &Path, state: &Path) -> Vec<String> {
    let pairs = [
        format!("config:install_tree:root:{}", store.display()),
        // The value must be quoted: `{...}` would read as a YAML mapping.
        format!("config:install_tree:projections:all:'{PROJECTION}'"),
        format!("config:build_stage:[{}]", build_dir.join("stage").display()),
        format!(
            "config:source_cache:{}",
            state.join("cache").join("spack-sources").display()
        ),
    ];
    pairs.into_iter().flat_map(|p| ["-c".to_string(), p]).collect()
}

/// What [`install`] needs from the build.
#[derive(Debug, Clone, Copy)]
pub struct SpackBuild<'a> {
    /// This build's private directory (stage, `TMPDIR`, fallback `HOME`).
    pub build_dir: &'a Path,
    /// The state directory (`<stack dir>/.stackci`): source cache, logs.
    pub state: &'a Path,
    /// The build log.
    pub log: &'a Path,
    /// `spack install -j`.
    pub jobs: usize,
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: u64,
}

/// Installs package `i` of a Spack stack with Spack, alone: its dependencies must already
/// be unpacked in the store and its prefix must not exist. The log starts with `preamble`
/// (where the dependencies came from); Spack's output goes to the log and to `on_line`.
pub fn install(
    stack: &Stack,
    i: usize,
    build: &SpackBuild,
    preamble: &[String],
    on_line: &mut dyn FnMut(&str),
) -> Result<()> {
    let pkg = &stack.packages[i];
    let tag = pkg.tag();
    let env_dir = spack_env(stack)?;
    let spack = find(env_dir)?;
    let home = build.build_dir.join("home");
    let tmp = build.build_dir.join("tmp");
    for d in [&home, &tmp] {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let env = environment(stack, i, &spack, &home, &tmp, build.source_date_epoch, &|n| {
        env_vars::var(n)
    });
    let mut log = File::create(build.log).with_context(|| format!("creating log {}", build.log.display()))?;
    for line in preamble {
        writeln!(log, "{line}").with_context(|| format!("writing log {}", build.log.display()))?;
    }
    let note = |log: &mut File, on_line: &mut dyn FnMut(&str), line: String| -> Result<()> {
        writeln!(log, "{line}").with_context(|| format!("writing log {}", build.log.display()))?;
        on_line(&line);
        Ok(())
    };
    note(&mut log, on_line, format!("stackci: Spack {spack}"))?;
    check_version(&spack, env_dir, &env, build.build_dir)?;

    let run = Supervised {
        hash: &pkg.hash,
        timeout: pkg.timeout,
        log: build.log,
    };
    let base = {
        let mut args = config_args(&stack.store, build.build_dir, build.state);
        args.push("-e".into());
        args.push(env_dir.dir.display().to_string());
        args
    };
    let command = |extra: &[String]| {
        let mut cmd = Command::new(&spack.program);
        cmd.args(&base)
            .args(extra)
            .current_dir(build.build_dir)
            .env_clear()
            .envs(&env);
        cmd
    };

    let reindex = ["reindex".to_string()];
    note(&mut log, on_line, format!("stackci: spack {}", shown(&base, &reindex)))?;
    let status = run.run(command(&reindex), &mut log, on_line)?;
    if !status.success() {
        bail!(
            "`spack reindex` of {} failed ({status}); log: {}",
            stack.store.display(),
            build.log.display()
        );
    }

    let mut install = vec![
        "install".to_string(),
        "--only".into(),
        "package".into(),
        "--no-add".into(),
        "--verbose".into(),
        "-j".into(),
        build.jobs.max(1).to_string(),
    ];
    install.extend(env_dir.settings.install_flags.iter().cloned());
    install.push(format!("/{}", pkg.hash));
    note(&mut log, on_line, format!("stackci: spack {}", shown(&base, &install)))?;
    let mut found = Findings::default();
    let status = run.run(command(&install), &mut log, &mut |line| {
        found.feed(line);
        on_line(line)
    })?;
    if !status.success() {
        if let Some(deps) = found.errors.iter().find_map(|l| uninstalled(l)) {
            bail!(
                "Spack would also build {deps} to install `{tag}`: stackci builds one package per job, \
                 its dependencies unpacked from the mirror, and Spack does not count them as installed in {} \
                 (is each one's prefix a Spack install with .spack/spec.json?); log: {}",
                stack.store.display(),
                build.log.display()
            );
        }
        let kept = found
            .build_log
            .as_deref()
            .and_then(|src| keep_spack_log(src, build.log, &tag))
            .map(|p| format!(" (Spack's build log: {})", p.display()))
            .unwrap_or_default();
        let last = found.errors.last().map(|l| format!(": {l}")).unwrap_or_default();
        let first = found
            .first_marked
            .as_deref()
            .map(|l| format!("; first error in the build log: {l}"))
            .unwrap_or_default();
        bail!(
            "spack install failed ({status}){last}{first}; log: {}{kept}",
            build.log.display()
        );
    }
    check_prefix(stack, i)
}

/// The Spack environment of a stack, checked to be one Spack can read: `spack.yaml` in its
/// directory, and the stack's lockfile being that directory's `spack.lock`.
fn spack_env(stack: &Stack) -> Result<&SpackEnv> {
    let Some(env) = &stack.spack else {
        bail!("{} is not a Spack environment", stack.path.display())
    };
    let yaml = env.dir.join("spack.yaml");
    if !yaml.is_file() {
        bail!(
            "{} has no spack.yaml: Spack needs the whole environment, not only its lockfile",
            env.dir.display()
        );
    }
    let same = |a: &Path, b: &Path| match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same(&env.lock, &env.dir.join("spack.lock")) {
        bail!(
            "Spack reads {}, but the stack is {}: name the lockfile spack.lock (or point `spack: env:` at its directory)",
            env.dir.join("spack.lock").display(),
            env.lock.display()
        );
    }
    Ok(env)
}

/// Fails unless `spack` is the Spack version that wrote the lockfile (when it records one).
fn check_version(spack: &Spack, env: &SpackEnv, vars: &BTreeMap<String, String>, cwd: &Path) -> Result<()> {
    let Some(want) = &env.version else { return Ok(()) };
    let out = Command::new(&spack.program)
        .arg("--version")
        .current_dir(cwd)
        .env_clear()
        .envs(vars)
        .output()
        .with_context(|| format!("running {} --version", spack.program.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let have = text.split_whitespace().next().unwrap_or("");
    if !out.status.success() || have.is_empty() {
        bail!(
            "{} --version failed ({}): {}",
            spack.program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    if have != want {
        bail!(
            "{} was written by Spack {want}, but the Spack found is {have}: {spack}. Jobs must run the Spack that \
             concretized the environment (other package recipes give other builds); point `spack: root:` or \
             $SPACK_ROOT at Spack {want}, or concretize again with Spack {have}",
            env.lock.display()
        );
    }
    Ok(())
}

/// The dependencies named by Spack's "Detected uninstalled dependencies for X: {'a-1-h', ...}"
/// (or "N uninstalled dependencies: a, b"), as a readable list; `None` for other lines.
pub fn uninstalled(line: &str) -> Option<String> {
    let rest = if let Some(at) = line.find("Detected uninstalled dependencies for") {
        let rest = &line[at..];
        rest.split_once(": ")?.1
    } else if let Some(at) = line.find("uninstalled dependenc") {
        line[at..].split_once(": ")?.1
    } else {
        return None;
    };
    let names: Vec<String> = rest
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .map(|n| n.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .filter(|n| !n.is_empty())
        .collect();
    (!names.is_empty()).then(|| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
}

/// What a failed `spack install` said, gathered from its output lines: its `Error:` lines
/// (with the indented line that completes one ending in `:`), the build log it names
/// ("See build log for details:" and the path, on the same or the next line), and the
/// first line its build-log excerpt marks with `>>`.
#[derive(Debug, Default)]
struct Findings {
    errors: Vec<String>,
    build_log: Option<String>,
    first_marked: Option<String>,
    pending: Option<Pending>,
}

/// What the next non-empty line completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Error,
    BuildLog,
}

impl Findings {
    fn feed(&mut self, line: &str) {
        let text = line.trim();
        if let Some(p) = self.pending.take() {
            if text.is_empty() {
                self.pending = Some(p);
                return;
            }
            match p {
                Pending::Error => {
                    if let Some(last) = self.errors.last_mut() {
                        last.push(' ');
                        last.push_str(text);
                    }
                }
                Pending::BuildLog => self.build_log = Some(text.to_string()),
            }
            return;
        }
        if let Some((_, rest)) = text.split_once("See build log for details:") {
            match rest.trim() {
                "" => self.pending = Some(Pending::BuildLog),
                path => self.build_log = Some(path.to_string()),
            }
        } else if text.contains("Error:") {
            let error = text.trim_start_matches("==> ").to_string();
            if error.ends_with(':') {
                self.pending = Some(Pending::Error);
            }
            self.errors.push(error);
        } else if self.first_marked.is_none()
            && let Some(rest) = text.strip_prefix(">>")
        {
            let rest = rest
                .trim_start()
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim();
            self.first_marked = Some(rest.to_string());
        }
    }
}

/// Copies the build log Spack named (in the stage, which goes with the build directory)
/// next to stackci's log, as `<tag>.spack-build-out.txt`; returns where, when it could.
fn keep_spack_log(src: &str, log: &Path, tag: &str) -> Option<PathBuf> {
    let dest = log.with_file_name(format!("{tag}.spack-build-out.txt"));
    fs::copy(src, &dest).ok().map(|_| dest)
}

/// Checks that Spack installed package `i` at its stackci prefix.
fn check_prefix(stack: &Stack, i: usize) -> Result<()> {
    let pkg = &stack.packages[i];
    let prefix = stack.prefix(i);
    let spec = prefix.join(".spack").join("spec.json");
    let text = fs::read(&spec).with_context(|| {
        format!(
            "Spack reported success but installed nothing at {}: stackci needs the prefix <store>/{PROJECTION} \
             (does spack.yaml set its own install_tree projections?)",
            prefix.display()
        )
    })?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("reading {}", spec.display()))?;
    let hash = json["spec"]["nodes"][0]["hash"].as_str().unwrap_or("");
    if hash != pkg.hash {
        bail!(
            "{} describes {}/{hash}, not `{}`: the prefix is not this package's Spack install",
            spec.display(),
            json["spec"]["nodes"][0]["name"].as_str().unwrap_or("?"),
            pkg.tag()
        );
    }
    Ok(())
}

/// A Spack command line for the log: the arguments after `spack`, quoted where needed.
fn shown(base: &[String], extra: &[String]) -> String {
    base.iter()
        .chain(extra)
        .map(|a| {
            if a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c)) {
                a.clone()
            } else if a.contains('\'') && !a.contains(['"', '$', '`', '\\', '!']) {
                format!("\"{a}\"")
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
