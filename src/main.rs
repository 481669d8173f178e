//! The `stackci` binary: parses arguments, runs the command, and maps the outcome to an
//! exit code: 0 success, 1 a build failed or a check found a difference, 2 an error
//! (130 when Ctrl-C stopped a run). A closed stdout (`stackci plan --json | head`) is
//! not an error.

use std::io::ErrorKind;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use stackci::ci::env::Vars;
use stackci::ci::output::{Annotation, Flavor};
use stackci::cli::Cli;
use stackci::stack::StackError;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            print_error(&err);
            ExitCode::from(2)
        }
    }
}

/// Parses the command line and runs the command.
fn run() -> Result<ExitCode> {
    let mut cli = Cli::parse();
    // An empty STACKCI_STACK / STACKCI_MIRROR (as CI templates set) means "not set".
    cli.stack = cli.stack.filter(|p| !p.as_os_str().is_empty());
    cli.mirror = cli.mirror.filter(|m| !m.is_empty());
    cli.ca_cert = cli.ca_cert.filter(|p| !p.as_os_str().is_empty());
    cli.upstreams.retain(|u| !u.trim().is_empty());
    stackci::run(cli)
}

/// True when writing to a closed pipe caused `err`.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == ErrorKind::BrokenPipe)
    })
}

/// Prints an error with its cause chain, cargo-style; on GitHub Actions a stack-file error
/// is also printed as an `::error file=…,line=…::` annotation so it shows on the file.
fn print_error(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    let flavor = Flavor::detect(&Vars::from_process());
    if flavor == Flavor::GitHub
        && let Some(e) = err.chain().find_map(|c| c.downcast_ref::<StackError>())
    {
        let annotation = Annotation {
            file: Some(e.file.display().to_string()),
            line: e.position.map(|p| p.line as u32),
            col: e.position.map(|p| p.column as u32),
            title: Some("stackci: invalid stack".into()),
            message: e.to_string(),
        };
        eprint!("{}", flavor.error(&annotation));
    }
}
