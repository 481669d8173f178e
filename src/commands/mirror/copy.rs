//! `stackci mirror copy SRC DST [PKG...]`.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::verify::human;
use crate::cli::{Cli, MirrorCopyArgs};
use crate::lifecycle::copy::{CopyOptions, Selection, copy};
use crate::mirror::Mirror;

/// Copies and prints what was copied (every tag with `-v`), then a summary.
pub fn run(cli: &Cli, args: &MirrorCopyArgs) -> Result<ExitCode> {
    let src = super::open_url(cli, &args.source)?;
    let dst = super::open_url(cli, &args.destination)?;
    let selection = if args.packages.is_empty() {
        Selection::All
    } else {
        Selection::Packages(tags_of(cli, src.as_ref(), &args.packages)?)
    };
    let opts = CopyOptions {
        jobs: args.jobs.max(1),
        dry_run: args.dry_run,
    };
    let report = copy(src.as_ref(), dst.as_ref(), &selection, &opts)?;
    if cli.json {
        super::print_json(&report)?;
    }
    let would = if report.dry_run { "would be " } else { "" };
    if !cli.quiet {
        for t in report.tags.iter().filter(|t| cli.verbose || t.action != "present") {
            eprintln!("{would}{:8} {} ({})", t.action, t.tag, t.digest);
        }
    }
    let count = |a: &str| report.tags.iter().filter(|t| t.action == a).count();
    let b = &report.blobs;
    eprintln!(
        "{} tag(s) {would}copied, {} replaced, {} merged, {} already there; {} untagged manifest(s); \
         blobs: {} {would}copied ({}), {} mounted, {} already there — {} → {}",
        count("copied"),
        count("replaced"),
        count("merged"),
        count("present"),
        report.manifests,
        b.copied,
        human(b.bytes_copied),
        b.mounted,
        b.present,
        report.source,
        report.destination
    );
    Ok(ExitCode::SUCCESS)
}

/// Package tags for the names given: a tag the source has as is, else a name (or tag, or
/// hash) in the current stack.
fn tags_of(cli: &Cli, src: &dyn Mirror, names: &[String]) -> Result<Vec<String>> {
    let tags = src.list_tags()?;
    let mut stack = None;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if tags.contains(name) {
            out.push(name.clone());
            continue;
        }
        if stack.is_none() {
            stack = Some(super::current_stack(cli)?.with_context(|| {
                format!(
                    "`{name}` is not a tag in {} and there is no stack to look it up in (--stack FILE)",
                    src.location()
                )
            })?);
        }
        let stack = stack.as_ref().expect("loaded above");
        let i = stack.find(name).with_context(|| {
            format!(
                "`{name}` is neither a tag in {} nor a package of {}",
                src.location(),
                stack.path.display()
            )
        })?;
        out.push(stack.packages[i].tag());
    }
    Ok(out)
}
