//! `stackci run`: build everything the mirror lacks, in dependency order.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::ci_report::CiReport;
use super::{Context, cpus, source_date_epoch};
use crate::builder::job::BuildSettings;
use crate::builder::schedule;
use crate::builder::summary::{Outcome, PackageOutcome, RunSummary};
use crate::cancel;
use crate::cli::RunArgs;
use crate::report::Reporter;

/// Plans, builds what is missing (`-j` at a time), and prints a summary; exit 1 on failure.
pub fn run(ctx: &Context, args: &RunArgs) -> Result<ExitCode> {
    cancel::install_handler();
    let targets = ctx.packages(&args.packages)?;
    let plan = super::plan::compute(ctx)?;
    let involved = schedule::involved(&ctx.stack, &targets);
    let mut settings = BuildSettings::new(
        args.build_jobs.unwrap_or_else(cpus),
        source_date_epoch()?,
        ctx.state_dir(),
    );
    settings.max_layer_size = ctx.max_layer_size;
    settings.trust = std::sync::Arc::new(crate::trust::Trust::load(&ctx.stack, true)?);
    let ci = CiReport::new(ctx, &args.status)?;
    let to_build = involved
        .iter()
        .filter(|&&i| plan.packages[i].status == crate::plan::Status::Build)
        .count();
    ci.pending(&format!("building {to_build} package(s)"))?;
    let reporter = Reporter::new(&ctx.stack, ctx.mode).with_log_groups(ci.flavor(), settings.state.join("logs"));
    let summary = schedule::run(
        &ctx.stack,
        ctx.mirror.as_ref(),
        &plan,
        &involved,
        args.jobs,
        &settings,
        &reporter,
    );
    reporter.finish();
    let mirror = ctx.mirror.location();
    if ctx.json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &RunJson::new(&summary, &mirror))?;
        writeln!(out)?;
    }
    print_text(&summary, &mirror);
    ci.finish(&summary, true)?;
    Ok(if summary.interrupted {
        ExitCode::from(130)
    } else if summary.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The text summary on stderr: one line per failed package with its log, then the counts.
fn print_text(summary: &RunSummary, mirror: &str) {
    for p in &summary.packages {
        if let Outcome::Failed { log, .. } = &p.outcome {
            eprintln!("error: `{}` failed; log: {}", p.tag, super::short(log));
        }
    }
    let c = summary.counts();
    let interrupted = if summary.interrupted { " (interrupted)" } else { "" };
    eprintln!(
        "{} built, {} cached, {} failed, {} skipped{interrupted} — mirror {mirror}",
        c.built, c.cached, c.failed, c.skipped
    );
}

/// `run --json`, as documented in docs/json.md.
#[derive(Debug, Serialize)]
struct RunJson<'a> {
    stack: &'a str,
    mirror: &'a str,
    built: usize,
    cached: usize,
    failed: usize,
    skipped: usize,
    interrupted: bool,
    packages: Vec<PackageJson<'a>>,
}

/// One package of [`RunJson`].
#[derive(Debug, Serialize)]
struct PackageJson<'a> {
    name: &'a str,
    version: &'a str,
    hash: &'a str,
    tag: &'a str,
    /// built, cached, external, failed or skipped.
    outcome: &'static str,
    /// Seconds (built), the error (failed), the reason (skipped), else null.
    detail: Option<Detail<'a>>,
    /// The build log of a failed package, else null.
    log: Option<String>,
}

/// [`PackageJson::detail`]: a number or a text.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Detail<'a> {
    Seconds(f64),
    Text(&'a str),
}

impl<'a> RunJson<'a> {
    fn new(summary: &'a RunSummary, mirror: &'a str) -> RunJson<'a> {
        let c = summary.counts();
        RunJson {
            stack: &summary.stack,
            mirror,
            built: c.built,
            cached: c.cached,
            failed: c.failed,
            skipped: c.skipped,
            interrupted: summary.interrupted,
            packages: summary.packages.iter().map(PackageJson::new).collect(),
        }
    }
}

impl<'a> PackageJson<'a> {
    fn new(p: &'a PackageOutcome) -> PackageJson<'a> {
        let (detail, log) = match &p.outcome {
            Outcome::Built => (Some(Detail::Seconds(p.duration.as_secs_f64())), None),
            Outcome::Cached | Outcome::External => (None, None),
            Outcome::Failed { error, log, .. } => (Some(Detail::Text(error)), Some(log.display().to_string())),
            Outcome::Skipped { reason } => (Some(Detail::Text(reason)), None),
        };
        PackageJson {
            name: &p.name,
            version: &p.version,
            hash: &p.hash,
            tag: &p.tag,
            outcome: p.outcome.word(),
            detail,
            log,
        }
    }
}
