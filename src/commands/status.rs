//! `stackci status STATE`: one commit status, by hand or from a pipeline's final job.

use std::process::ExitCode;

use anyhow::{Result, bail};

use super::Context;
use super::ci_report::status_options;
use crate::ci::status::{self, Status};
use crate::cli::StatusArgs;

/// Posts the status. A status that cannot be posted (not in CI, no token, API refusal) is a
/// warning unless `--strict`, so a pipeline's final job never fails over reporting.
pub fn run(ctx: &Context, args: &StatusArgs) -> Result<ExitCode> {
    let reporter = match status::from_env(&status_options(ctx, &args.status)) {
        Ok(r) => r,
        Err(e) if args.status.strict => return Err(e),
        Err(e) => {
            eprintln!("warning: status `{}` not posted: {e:#}", args.state);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let Some(reporter) = reporter else {
        let why = "not running in GitHub Actions or GitLab CI: no commit to post a status to (GITHUB_ACTIONS / GITLAB_CI unset)";
        if args.status.strict {
            bail!(why);
        }
        eprintln!("warning: status `{}` not posted: {why}", args.state);
        return Ok(ExitCode::SUCCESS);
    };
    let context = args
        .context
        .clone()
        .unwrap_or_else(|| status::stack_context(&ctx.stack.name));
    let mut s = Status::new(args.state, context);
    if let Some(d) = &args.description {
        s = s.with_description(d.clone());
    }
    if let Some(u) = args
        .target_url
        .clone()
        .or_else(|| reporter.default_target_url().map(str::to_string))
    {
        s = s.with_target_url(u);
    }
    status::report(reporter.as_ref(), &s, args.status.strict)?;
    eprintln!("status {} `{}` for {}", args.state, s.context, reporter.destination());
    Ok(ExitCode::SUCCESS)
}
