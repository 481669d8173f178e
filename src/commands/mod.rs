//! One module per command; this one resolves what they share (stack, mirror, output mode).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::env_vars::SOURCE_DATE_EPOCH;
use anyhow::{Context as _, Result};

use crate::cli::{Cli, Command};
use crate::mirror::Mirror;
use crate::mirror::lazy::LazyMirror;
use crate::mirror::open::MirrorOptions;
use crate::report::Mode;
use crate::stack::{self, Stack};

mod build;
mod ci_report;
mod generate;
mod image;
mod index;
mod install;
mod keygen;
mod plan;
mod run;
mod status;
mod trigger;
mod verify;

/// What the commands that work on a stack get: the loaded stack and its mirror, which is
/// opened on first use (so a command that never touches it works whatever `--mirror` says).
/// Commands that need no stack (`status`, `index --mirror URL`) do not build one.
pub struct Context {
    /// The loaded, validated stack.
    pub stack: Stack,
    /// The mirror (a [`LazyMirror`]: opened by the first call that needs it).
    pub mirror: Arc<dyn Mirror>,
    /// Options for opening other mirrors and registries (bases, image targets).
    pub mirror_options: MirrorOptions,
    /// How to show progress.
    pub mode: Mode,
    /// Print JSON on stdout.
    pub json: bool,
    /// Most bytes one layer may expand to (`--max-layer-size`).
    pub max_layer_size: u64,
    /// The platforms `--platform` named (empty: not given; the stack's platform applies).
    pub platforms: Vec<crate::platform::Platform>,
    /// Whether the mirror is the default `file://<stack dir>/.stackci/mirror` (no
    /// `--mirror`, `$STACKCI_MIRROR` or `mirror:`): fine on one machine, not shared by CI jobs.
    pub mirror_is_default: bool,
}

impl Context {
    /// Loads the stack; the mirror is resolved but not opened.
    fn load(cli: &Cli) -> Result<Context> {
        let platforms = match cli.platform.as_deref() {
            Some(list) => crate::platform::from_flag(Some(list))?,
            None => Vec::new(),
        };
        if platforms.len() > 1 && !matches!(cli.command, Command::Image(_)) {
            anyhow::bail!(
                "--platform names {} platforms; only `image` assembles several (build each on its own: --platform {})",
                platforms.len(),
                platforms[0]
            );
        }
        let path = stack::discover(cli.stack.as_deref())?;
        let stack = stack::load_for(&path, platforms.first())?;
        let mirror = Arc::new(mirror_for(cli, Some(&stack)));
        Ok(Context {
            platforms,
            mirror_is_default: cli.mirror.is_none() && stack.mirror.is_none(),
            stack,
            mirror,
            mirror_options: mirror_options(cli),
            mode: Mode::detect(cli.verbose, cli.quiet),
            json: cli.json,
            max_layer_size: cli.max_layer_size,
        })
    }

    /// Resolves package names (or tags, or hashes) to indices, with a helpful error.
    pub fn packages(&self, names: &[String]) -> Result<Vec<usize>> {
        names
            .iter()
            .map(|n| {
                self.stack.find(n).with_context(|| {
                    let known: Vec<&str> = self.stack.packages.iter().map(|p| p.name.as_str()).take(12).collect();
                    format!(
                        "no package `{n}` in {} (or the name is ambiguous: use its tag or hash); packages: {}",
                        self.stack.path.display(),
                        known.join(", ")
                    )
                })
            })
            .collect()
    }

    /// The mirror, shareable with image layers that read from it.
    pub fn shared_mirror(&self) -> Arc<dyn Mirror> {
        self.mirror.clone()
    }

    /// Where local state (build trees, logs, caches) goes.
    pub fn state_dir(&self) -> PathBuf {
        self.stack.state_dir()
    }
}

/// `SOURCE_DATE_EPOCH` from the environment, default 0.
pub fn source_date_epoch() -> Result<u64> {
    match crate::env_vars::var(SOURCE_DATE_EPOCH) {
        Some(v) => v
            .parse()
            .with_context(|| format!("{SOURCE_DATE_EPOCH}=`{v}` is not a number of seconds")),
        _ => Ok(0),
    }
}

/// The number of CPUs.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Options for opening mirrors, from the global flags.
fn mirror_options(cli: &Cli) -> MirrorOptions {
    MirrorOptions {
        ca_cert: cli.ca_cert.clone(),
        jobs: 0,
        s3_endpoint: cli.s3_endpoint.clone().filter(|e| !e.is_empty()),
    }
}

/// The mirror, not opened yet: `--mirror` (or `$STACKCI_MIRROR`), else the stack's
/// `mirror:`, else `file://<stack dir>/.stackci/mirror`. Without a stack, `--mirror` is
/// required and relative paths resolve against the current directory.
fn mirror_for(cli: &Cli, stack: Option<&Stack>) -> LazyMirror {
    let url = cli
        .mirror
        .clone()
        .or_else(|| stack.and_then(|s| s.mirror.clone()))
        .or_else(|| stack.map(|s| format!("file://{}", s.state_dir().join("mirror").display())))
        .unwrap_or_default();
    let base = stack.map_or_else(PathBuf::new, |s| s.dir.clone());
    LazyMirror::new(url, &base, mirror_options(cli))
}

/// Runs a parsed command line; only commands that work on a stack load one. Returns the
/// exit code of a command that ran (1 when a build failed or a check found a difference).
pub fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Status(args) => return status::run(&cli, args),
        Command::Keygen(args) => return keygen::run(args, cli.json),
        Command::Trigger(crate::cli::Trigger::Gitlab(args)) => return trigger::gitlab(&cli, args),
        Command::Index if cli.mirror.is_some() => return index::run(&mirror_for(&cli, None), cli.json),
        _ => {}
    }
    let ctx = Context::load(&cli)?;
    match &cli.command {
        Command::Plan(args) => plan::run(&ctx, args),
        Command::Run(args) => run::run(&ctx, args),
        Command::Build(args) => build::run(&ctx, args),
        Command::Install(args) => install::run(&ctx, args),
        Command::Index => index::run(ctx.mirror.as_ref(), ctx.json),
        Command::Image(args) => image::run(&ctx, args),
        Command::Status(args) => status::run(&cli, args),
        Command::Generate(which) => generate::run(&ctx, which),
        Command::Verify(args) => verify::run(&ctx, args),
        Command::Keygen(args) => keygen::run(args, ctx.json),
        Command::Trigger(crate::cli::Trigger::Gitlab(args)) => trigger::gitlab(&cli, args),
    }
}

/// Shows `path` relative to the current directory when it is below it.
pub fn short(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd).unwrap_or(path).display().to_string()
}
