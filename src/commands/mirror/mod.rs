//! `stackci mirror copy|prune|verify`: a mirror's lifecycle, one file per command. The
//! logic is in [`crate::lifecycle`]; these resolve the mirrors and the stacks and print.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, MirrorCommand};
use crate::mirror::Mirror;
use crate::mirror::open::open;
use crate::stack::Stack;

mod copy;
mod prune;
mod verify;

/// Runs a `mirror` command. The current stack is loaded only when one is needed (package
/// names to resolve, the default mirror, the default kept stack).
pub fn run(cli: &Cli, command: &MirrorCommand) -> Result<ExitCode> {
    match command {
        MirrorCommand::Copy(args) => copy::run(cli, args),
        MirrorCommand::Prune(args) => prune::run(cli, args),
        MirrorCommand::Verify(args) => verify::run(cli, args),
    }
}

/// Opens the mirror at `url`, a relative path against the current directory.
fn open_url(cli: &Cli, url: &str) -> Result<Box<dyn Mirror>> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    open(url, &cwd, &super::mirror_options(cli))
}

/// The current stack, or `None` when none is found (no --stack, $STACKCI_STACK, ./stack.yaml
/// or ./spack.lock); a stack that exists but does not load is an error.
fn current_stack(cli: &Cli) -> Result<Option<Stack>> {
    if cli.stack.is_none() && crate::stack::discover(None).is_err() {
        return Ok(None);
    }
    super::load_stack(cli).map(Some)
}

/// The mirror `--mirror` (or `$STACKCI_MIRROR`) names, else the current stack's; opened.
fn default_mirror(cli: &Cli, stack: Option<&Stack>) -> Result<Box<dyn Mirror>> {
    if cli.mirror.is_none() && stack.is_none() {
        anyhow::bail!("no mirror: give one (--mirror URL or $STACKCI_MIRROR), or run where a stack file is");
    }
    let lazy = super::mirror_for(cli, stack);
    lazy.get()?;
    Ok(Box::new(lazy))
}

/// Prints `value` as pretty JSON on stdout (a closed pipe is an `io::Error`, which `main`
/// treats as success).
fn print_json(value: &impl serde::Serialize) -> Result<()> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(value)?;
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}
