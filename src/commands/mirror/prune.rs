//! `stackci mirror prune`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use super::verify::human;
use crate::cli::{Cli, MirrorPruneArgs};
use crate::lifecycle::prune::{PruneOptions, prune};

/// Prunes the mirror, keeping the kept stacks' packages, and prints what went.
pub fn run(cli: &Cli, args: &MirrorPruneArgs) -> Result<ExitCode> {
    let current = super::current_stack(cli)?;
    let mut keep = BTreeSet::new();
    if args.keep_stacks.is_empty() {
        let stack = current.as_ref().context(
            "prune keeps what the current stack needs, and there is none: name the stacks to keep with --keep-stack FILE",
        )?;
        keep.extend(stack.packages.iter().map(|p| p.tag()));
    }
    for file in &args.keep_stacks {
        let stack = crate::stack::load(file).with_context(|| format!("loading the kept stack {}", file.display()))?;
        keep.extend(stack.packages.iter().map(|p| p.tag()));
    }
    let mut keep_tags = Vec::with_capacity(args.keep_tags.len());
    for g in &args.keep_tags {
        match glob::Pattern::new(g) {
            Ok(p) => keep_tags.push(p),
            Err(e) => bail!("--keep-tag `{g}` is not a valid glob: {e}"),
        }
    }
    let mirror = super::default_mirror(cli, current.as_ref())?;
    let opts = PruneOptions {
        keep_tags,
        older_than: args.older_than,
        grace: args.grace,
        dry_run: args.dry_run,
        jobs: args.jobs.max(1),
    };
    let report = prune(mirror.as_ref(), &keep, &opts)?;
    if cli.json {
        super::print_json(&report)?;
    }
    let would = if report.dry_run { "would remove" } else { "removed" };
    if !cli.quiet {
        for t in &report.removed {
            eprintln!("{would} {} ({}, {})", t.tag, t.kind, t.digest);
        }
        for t in &report.changed {
            eprintln!("kept {t}: it was pushed again during the prune");
        }
    }
    let blobs = if report.blobs_swept {
        format!(
            "{} unreferenced blob(s), {} freed ({} recent blob(s) kept for --grace)",
            report.blobs_removed,
            human(report.bytes_freed),
            report.blobs_recent
        )
    } else {
        "no blobs: the registry frees them when its garbage collection runs".to_string()
    };
    eprintln!(
        "{would} {} tag(s) ({} package(s)) and {}; kept {} package tag(s) — {}",
        report.removed.len(),
        report.removed.iter().filter(|t| t.kind == "package").count(),
        blobs,
        report.kept,
        report.mirror
    );
    Ok(ExitCode::SUCCESS)
}
