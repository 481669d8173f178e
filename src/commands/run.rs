//! `stackci run`: build everything the mirror lacks, in dependency order.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use super::ci_report::{CiReport, run_summary};
use super::{Context, cpus, source_date_epoch};
use crate::builder::job::BuildSettings;
use crate::builder::schedule::{self, Outcome, RunReport};
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
    let ci = CiReport::new(ctx, &args.status)?;
    let to_build = involved
        .iter()
        .filter(|&&i| plan.packages[i].status == crate::plan::Status::Build)
        .count();
    ci.pending(&format!("building {to_build} package(s)"))?;
    let reporter = Reporter::new(&ctx.stack, ctx.mode).with_log_groups(ci.flavor(), settings.state.join("logs"));
    let report = schedule::run(
        &ctx.stack,
        ctx.mirror.as_ref(),
        &plan,
        &involved,
        args.jobs,
        &settings,
        &reporter,
    );
    reporter.finish();
    print_summary(ctx, &report, &settings)?;
    ci.finish(&run_summary(ctx, &report, &settings), true)?;
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_summary(ctx: &Context, report: &RunReport, settings: &BuildSettings) -> Result<()> {
    let (built, cached, failed, skipped) = report.counts();
    if ctx.json {
        let packages: Vec<serde_json::Value> = report
            .outcomes
            .iter()
            .map(|(i, o)| {
                let p = &ctx.stack.packages[*i];
                let (outcome, detail) = match o {
                    Outcome::Built { elapsed } => ("built", serde_json::json!(elapsed.as_secs_f64())),
                    Outcome::Cached => ("cached", serde_json::Value::Null),
                    Outcome::External => ("external", serde_json::Value::Null),
                    Outcome::Failed { error } => ("failed", serde_json::json!(error)),
                    Outcome::Skipped { reason } => ("skipped", serde_json::json!(reason)),
                };
                let log = matches!(o, Outcome::Failed { .. }).then(|| settings.log_path(&p.tag()).display().to_string());
                serde_json::json!({"name": p.name, "version": p.version, "hash": p.hash, "tag": p.tag(), "outcome": outcome, "detail": detail, "log": log})
            })
            .collect();
        let doc = serde_json::json!({
            "stack": ctx.stack.name, "mirror": ctx.mirror.location(),
            "built": built, "cached": cached, "failed": failed, "skipped": skipped,
            "interrupted": report.interrupted, "packages": packages,
        });
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    }
    for (i, o) in &report.outcomes {
        if let Outcome::Failed { .. } = o {
            eprintln!(
                "error: `{}` failed; log: {}",
                ctx.stack.packages[*i].tag(),
                super::short(&settings.log_path(&ctx.stack.packages[*i].tag()))
            );
        }
    }
    let interrupted = if report.interrupted { " (interrupted)" } else { "" };
    eprintln!(
        "{built} built, {cached} cached, {failed} failed, {skipped} skipped{interrupted} — mirror {}",
        ctx.mirror.location()
    );
    Ok(())
}
