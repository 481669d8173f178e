//! Running one recipe: a clean environment, `bash -e` in a fresh build directory, and a log.
//!
//! The recipe is supervised, not just waited for: its output is read without blocking on
//! processes that keep the pipe open, and once its shell exits whatever it left running is
//! stopped ([`super::procs`]). Ctrl-C and the package's `timeout:` stop it with SIGTERM, then
//! SIGKILL after [`GRACE`] (at once on a second Ctrl-C). `run` returns only when the
//! recipe's processes are gone.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::output::Output;
use super::procs::{self, GRACE, Tree};
use crate::cancel::{self, GroupGuard};
use crate::stack::{Recipe, Stack, duration};

/// The PATH every recipe starts from, after its dependencies' `bin` directories.
pub const BASE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
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
    env.insert(crate::env_vars::SOURCE_DATE_EPOCH.into(), source_date_epoch.to_string());
    env.insert("HOME".into(), home.display().to_string());
    env.insert("TMPDIR".into(), home.display().to_string());
    env.entry("LANG".into()).or_insert_with(|| "C".into());
    env.insert("STACKCI_PACKAGE".into(), stack.packages[i].name.clone());
    env.insert("STACKCI_HASH".into(), stack.packages[i].hash.clone());
    env
}

/// How often the supervisor checks on a running recipe.
const TICK: Duration = Duration::from_millis(100);
/// How long output still buffered in the pipe is read once the recipe's shell has exited.
const DRAIN: Duration = Duration::from_secs(1);

/// The script a package runs.
pub fn script(stack: &Stack, i: usize) -> Result<String> {
    let pkg = &stack.packages[i];
    match &pkg.recipe {
        Recipe::Script(s) => Ok(s.clone()),
        Recipe::Spack => bail!("`{}` is a Spack spec: Spack builds it, not a script", pkg.tag()),
        Recipe::External { .. } => bail!("`{}` is external and is never built", pkg.tag()),
    }
}

/// Why a recipe was stopped before it ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Interrupted,
    TimedOut,
}

/// Stopping a recipe: SIGTERM first, SIGKILL after [`GRACE`] or on a second Ctrl-C.
#[derive(Debug, Default)]
struct Stopper {
    why: Option<Why>,
    term_at: Option<Instant>,
    kill_at: Option<Instant>,
}

impl Stopper {
    /// Sends SIGTERM (once).
    fn term(&mut self, tree: &mut Tree) {
        if self.term_at.is_none() {
            self.term_at = Some(Instant::now());
            tree.signal(libc::SIGTERM);
        }
    }

    /// Starts or escalates the stop when it is due; returns a note for the log when it acts.
    fn tick(&mut self, tree: &mut Tree, deadline: Option<(Instant, Duration)>) -> Option<String> {
        if self.kill_at.is_some() {
            tree.signal(libc::SIGKILL); // again, for strays that only now left the group
            return None;
        }
        if self.term_at.is_none() {
            let note = if cancel::is_cancelled() {
                self.why = Some(Why::Interrupted);
                "stackci: interrupted; stopping the recipe (SIGTERM)".to_string()
            } else if let Some((at, limit)) = deadline
                && Instant::now() >= at
            {
                self.why = Some(Why::TimedOut);
                let limit = duration::show(limit);
                format!("stackci: timed out after {limit}; stopping the recipe (SIGTERM)")
            } else {
                return None;
            };
            self.term(tree);
            if !cancel::is_forced() {
                return Some(note);
            }
        }
        let overdue = self.term_at.is_some_and(|t| t.elapsed() >= GRACE);
        if overdue || cancel::is_forced() {
            self.kill_at = Some(Instant::now());
            tree.signal(libc::SIGKILL);
            return Some(format!(
                "stackci: {}; killing the recipe (SIGKILL)",
                if overdue {
                    "still running after SIGTERM"
                } else {
                    "interrupted again"
                }
            ));
        }
        None
    }
}

/// Runs package `i`'s recipe with `bash -e` in `work` (the unpacked source), writing all
/// output to `log` and passing each line to `on_line`. Fails with the exit status, on
/// timeout, or when interrupted; returns only once the recipe's processes are gone.
pub fn run(
    stack: &Stack,
    i: usize,
    work: &Path,
    log: &Path,
    jobs: usize,
    source_date_epoch: u64,
    on_line: &mut dyn FnMut(&str),
) -> Result<()> {
    let pkg = &stack.packages[i];
    let home = work.parent().unwrap_or(work).join("home");
    std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    let script_path = work.parent().unwrap_or(work).join("build.sh");
    std::fs::write(&script_path, script(stack, i)?).with_context(|| format!("writing {}", script_path.display()))?;
    let mut log_file = File::create(log).with_context(|| format!("creating log {}", log.display()))?;
    let mut cmd = Command::new("bash");
    cmd.arg("-e")
        .arg(&script_path)
        .current_dir(work)
        .env_clear()
        .envs(environment(stack, i, jobs, source_date_epoch, &home));
    let run = Supervised {
        hash: &pkg.hash,
        timeout: pkg.timeout,
        log,
    };
    let status = run.run(cmd, &mut log_file, on_line)?;
    if !status.success() {
        bail!("recipe failed ({status}); log: {}", log.display());
    }
    Ok(())
}

/// A process run as a recipe is: its own process group, output to a log and to a line
/// callback, stopped on Ctrl-C or timeout with SIGTERM then SIGKILL, and waited for until
/// nothing it started is left. Used for script recipes and for the Spack commands of a
/// Spack package.
#[derive(Debug, Clone, Copy)]
pub struct Supervised<'a> {
    /// The package hash, set as `STACKCI_HASH` in the command's environment by the caller:
    /// the supervisor finds the processes that left the group by it.
    pub hash: &'a str,
    /// How long it may run.
    pub timeout: Option<Duration>,
    /// The log file's path, for messages.
    pub log: &'a Path,
}

impl Supervised<'_> {
    /// Runs `cmd` (its environment already set, with `STACKCI_HASH`) to the end, appending
    /// its output to `log_file`. Returns its exit status; failing to start, timing out,
    /// being interrupted, losing the output or the log are errors.
    pub fn run(
        &self,
        mut cmd: Command,
        log_file: &mut File,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<std::process::ExitStatus> {
        procs::become_subreaper();
        let (reader, writer) = std::io::pipe().context("creating a pipe for the recipe output")?;
        cmd.stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} (is it installed?)", cmd.get_program().to_string_lossy()))?;
        drop(cmd); // close our copies of the pipe's write end
        let guard = GroupGuard::new(child.id());
        let mut tree = Tree::new(child.id(), &format!("STACKCI_HASH={}", self.hash));
        let deadline = self.timeout.map(|t| (Instant::now() + t, t));

        let mut log_error = None;
        let mut sink = |line: &[u8]| {
            if log_error.is_none()
                && let Err(e) = log_file.write_all(line).and_then(|()| log_file.write_all(b"\n"))
            {
                log_error = Some(e);
            }
            on_line(&String::from_utf8_lossy(line));
        };
        let mut out = Output::new(reader);
        let mut stopper = Stopper::default();
        let mut pipe_error = None;
        let status = loop {
            let pumped = out.pump(TICK, &mut sink);
            if let Some(status) = child.try_wait().context("waiting for the recipe")? {
                break status;
            }
            if let Err(e) = pumped {
                // Without its output the recipe cannot be logged: stop it.
                stopper.term(&mut tree);
                pipe_error.get_or_insert(e);
            }
            if let Some(note) = stopper.tick(&mut tree, deadline) {
                sink(note.as_bytes());
            }
        };

        // The process is gone; stop what it left behind and take only what is already written.
        let _ = out.drain(DRAIN, &mut sink);
        if stopper.term_at.is_none() && tree.alive() {
            sink(b"stackci: the recipe left processes running; stopping them (SIGTERM)");
            stopper.term(&mut tree);
        }
        while tree.alive() {
            if let Some(note) = stopper.tick(&mut tree, None) {
                sink(note.as_bytes());
            }
            if stopper.kill_at.is_some_and(|t| t.elapsed() >= GRACE) {
                sink(b"stackci: some of the recipe's processes outlived SIGKILL; not waiting for them");
                break;
            }
            std::thread::sleep(TICK);
        }
        let _ = out.drain(DRAIN, &mut sink);
        drop(guard);

        let log = self.log;
        if let Some(e) = pipe_error {
            return Err(e).context("reading the recipe's output");
        }
        if let Some(e) = log_error {
            return Err(e).with_context(|| format!("writing log {}", log.display()));
        }
        if let (Some(Why::TimedOut), Some((_, limit))) = (stopper.why, deadline) {
            bail!("timed out after {}; log: {}", duration::show(limit), log.display());
        }
        if cancel::is_cancelled() {
            bail!("interrupted");
        }
        Ok(status)
    }
}
