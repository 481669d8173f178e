//! `stackci build PKG`: what one CI job does.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::ci_report::CiReport;
use super::{Context, cpus, source_date_epoch};
use crate::builder::job::BuildSettings;
use crate::builder::schedule;
use crate::builder::summary::RunSummary;
use crate::cancel;
use crate::cli::BuildArgs;
use crate::report::Reporter;

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
    settings.trust = std::sync::Arc::new(crate::trust::Trust::load(&ctx.stack, true)?);
    let ci = CiReport::new(ctx, &args.status)?;
    let reporter = Reporter::new(&ctx.stack, ctx.mode).with_log_groups(ci.flavor(), settings.state.join("logs"));
    let (package, result) = schedule::build_one(&ctx.stack, i, ctx.mirror.as_ref(), &settings, &reporter);
    // A job reports its own package; the aggregate status belongs to the pipeline's final job.
    if args.status.per_package || args.status.junit.is_some() {
        let summary = RunSummary {
            stack: ctx.stack.name.clone(),
            packages: vec![package],
            interrupted: cancel::is_cancelled(),
        };
        ci.finish(&summary, false)?;
    }
    result.with_context(|| format!("building `{tag}`"))?;
    Ok(ExitCode::SUCCESS)
}
