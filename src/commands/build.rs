//! `stackci build PKG`: what one CI job does.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::{Context, cpus, source_date_epoch};
use crate::build::cancel;
use crate::build::job::{self, BuildSettings};
use crate::cli::BuildArgs;
use crate::report::Event;

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
        eprintln!("`{tag}` is already in {}: nothing to do (use --force to rebuild)", ctx.mirror.location());
        return Ok(ExitCode::SUCCESS);
    }
    let settings = BuildSettings {
        jobs: args.build_jobs.unwrap_or_else(cpus),
        source_date_epoch: source_date_epoch()?,
        state: ctx.state_dir(),
    };
    let reporter = crate::report::Reporter::new(&ctx.stack, ctx.mode);
    reporter.line(&format!("build    {tag}"));
    let start = std::time::Instant::now();
    job::build(&ctx.stack, i, ctx.mirror.as_ref(), &settings, &mut |line| reporter.event(Event::Line { index: i, line }))
        .with_context(|| format!("building `{tag}`"))?;
    reporter.line(&format!("built    {tag} ({:.1}s), pushed to {}", start.elapsed().as_secs_f64(), ctx.mirror.location()));
    Ok(ExitCode::SUCCESS)
}
