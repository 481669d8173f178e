//! `stackci mirror verify [URL]`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, MirrorVerifyArgs};
use crate::lifecycle::verify::{VerifyOptions, verify};

/// Checks the mirror and prints each problem; exit 1 when there is any.
pub fn run(cli: &Cli, args: &MirrorVerifyArgs) -> Result<ExitCode> {
    crate::cancel::install_handler();
    let mirror = match &args.url {
        Some(url) => super::open_url(cli, url)?,
        None => super::default_mirror(cli, super::current_stack(cli)?.as_ref())?,
    };
    let opts = VerifyOptions {
        jobs: args.jobs.max(1),
        quick: args.quick,
    };
    let report = verify(mirror.as_ref(), &opts)?;
    if cli.json {
        super::print_json(&report)?;
    }
    for p in &report.problems {
        let digest = p.digest.as_ref().map(|d| format!(" {d}")).unwrap_or_default();
        let tags = if p.tags.is_empty() {
            String::new()
        } else {
            format!(" (needed by {})", p.tags.join(", "))
        };
        eprintln!("error: {}{digest}{tags}: {}", p.kind, p.problem);
    }
    let how = if report.quick { "looked up" } else { "read and hashed" };
    eprintln!(
        "{}: {} tag(s), {} manifest(s), {} blob(s) ({}) {how}; {} problem(s)",
        report.mirror,
        report.tags,
        report.manifests,
        report.blobs,
        human(report.bytes),
        report.problems.len()
    );
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `1.2 GiB`-style sizes for the summaries.
pub(super) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
