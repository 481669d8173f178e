//! `stackci plan`: each package with its status against the mirror.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::Context;
use crate::ci::output::append_github_output;
use crate::cli::PlanArgs;
use crate::env_vars::GITHUB_OUTPUT;
use crate::generate::github::{Selection, github_plan_outputs};
use crate::plan::{Plan, Status};

/// Computes the plan from one mirror listing and prints it (a table, or JSON with `--json`);
/// with `--github-output`, appends what the generated workflow must build to `$GITHUB_OUTPUT`.
pub fn run(ctx: &Context, args: &PlanArgs) -> Result<ExitCode> {
    let mut plan = compute(ctx)?;
    if args.github_output {
        let select = Selection {
            force: args.force,
            packages: args.packages.clone(),
        };
        let entries = github_plan_outputs(&ctx.stack, &plan, &select, &ctx.stack.ci.github)?;
        let path = crate::env_vars::var(GITHUB_OUTPUT)
            .context("--github-output needs $GITHUB_OUTPUT (set by GitHub Actions)")?;
        append_github_output(std::path::Path::new(&path), &entries)?;
        for (k, v) in &entries {
            eprintln!("{k}={v}");
        }
    } else if !args.packages.is_empty() {
        // `plan PKG...`: those packages and everything `run PKG...` would need.
        let targets = ctx.packages(&args.packages)?;
        let involved = crate::builder::schedule::involved(&ctx.stack, &targets);
        plan.packages.retain(|e| involved.contains(&e.index));
    }
    // In a GitHub step (the action's `plan-build`, `plan-cached` and `plan-external` outputs).
    if let Some(path) = crate::env_vars::var(GITHUB_OUTPUT) {
        let count = |s| plan.packages.iter().filter(|e| e.status == s).count().to_string();
        append_github_output(
            std::path::Path::new(&path),
            &[
                ("plan-build".into(), count(Status::Build)),
                ("plan-cached".into(), count(Status::Cached)),
                ("plan-external".into(), count(Status::External)),
            ],
        )?;
    }
    let mut out = std::io::stdout().lock();
    if ctx.json {
        serde_json::to_writer_pretty(&mut out, &plan)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, ctx, &plan)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The plan for the context's stack and mirror.
pub fn compute(ctx: &Context) -> Result<Plan> {
    let tags = ctx.mirror.list_tags()?;
    Ok(Plan::new(&ctx.stack, ctx.mirror.location(), &tags))
}

fn write_table(out: &mut impl Write, ctx: &Context, plan: &Plan) -> Result<()> {
    let name_w = plan.packages.iter().map(|e| e.name.len()).max().unwrap_or(4).max(7);
    let ver_w = plan
        .packages
        .iter()
        .map(|e| e.version.len())
        .max()
        .unwrap_or(7)
        .clamp(7, 24);
    writeln!(
        out,
        "{:name_w$}  {:ver_w$}  {:7}  {:8}  DEPENDENCIES",
        "PACKAGE", "VERSION", "HASH", "STATUS"
    )?;
    for e in &plan.packages {
        let status = match e.status {
            Status::Cached => "cached",
            Status::Build => "build",
            Status::External => "external",
        };
        let deps: Vec<&str> = ctx.stack.packages[e.index]
            .deps
            .iter()
            .map(|d| ctx.stack.packages[d.index].name.as_str())
            .collect();
        let deps = if deps.is_empty() {
            "-".to_string()
        } else {
            deps.join(" ")
        };
        writeln!(
            out,
            "{:name_w$}  {:ver_w$}  {:7}  {:8}  {deps}",
            e.name,
            e.version,
            &e.hash[..7.min(e.hash.len())],
            status
        )?;
    }
    let count = |s| plan.packages.iter().filter(|e| e.status == s).count();
    writeln!(
        out,
        "\n{} to build, {} cached, {} external (mirror: {})",
        count(Status::Build),
        count(Status::Cached),
        count(Status::External),
        plan.mirror
    )?;
    Ok(())
}
