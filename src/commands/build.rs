//! `stackci build PKG`: what one CI job does.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::ci_report::{CiReport, run_summary};
use super::{Context, cpus, source_date_epoch};
use crate::builder::job::{self, BuildSettings};
use crate::builder::schedule::{Outcome, RunReport};
use crate::cancel;
use crate::cli::BuildArgs;
use crate::report::{Event, Reporter};

/// Builds and pushes one package unless the mirror has it (or `--force`).
pub fn run(ctx: &Context, args: &BuildArgs) -> Result<ExitCode> {
    cancel::install_handler();
    let i = ctx.packages(std::slice::from_ref(&args.package))?[0];
    let pkg = &ctx.stack.packages[i];
    let tag = pkg.tag();
    if pkg.is_external() {
        eprintln!("`{tag}` is external: nothing to build");
        return Ok(ExitCode::SUCCESS);
    }
    if !args.force && ctx.mirror.get_manifest(&tag)?.is_some() {
        eprintln!(
            "`{tag}` is already in {}: nothing to do (use --force to rebuild)",
            ctx.mirror.location()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut settings = BuildSettings::new(
        args.build_jobs.unwrap_or_else(cpus),
        source_date_epoch()?,
        ctx.state_dir(),
    );
    settings.force = args.force;
    settings.max_layer_size = ctx.max_layer_size;
    let ci = CiReport::new(ctx, &args.status)?;
    let reporter = Reporter::new(&ctx.stack, ctx.mode).with_log_groups(ci.flavor(), settings.state.join("logs"));
    reporter.event(Event::Start { index: i });
    let start = std::time::Instant::now();
    let result = job::build(&ctx.stack, i, ctx.mirror.as_ref(), &settings, &mut |line| {
        reporter.event(Event::Line { index: i, line })
    });
    let outcome = match &result {
        Ok(job::Done::Built) => Outcome::Built {
            elapsed: start.elapsed(),
        },
        Ok(job::Done::Cached) => Outcome::Cached,
        Err(e) => Outcome::Failed {
            error: format!("{e:#}"),
        },
    };
    reporter.event(Event::Finish {
        index: i,
        outcome: &outcome,
    });
    let report = RunReport {
        outcomes: vec![(i, outcome)],
        interrupted: cancel::is_cancelled(),
    };
    // A job reports its own package; the aggregate status belongs to the pipeline's final job.
    if args.status.per_package || args.status.junit.is_some() {
        ci.finish(&run_summary(ctx, &report, &settings), false)?;
    }
    result.with_context(|| format!("building `{tag}`"))?;
    Ok(ExitCode::SUCCESS)
}
