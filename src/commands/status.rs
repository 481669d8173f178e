//! `stackci status STATE`: one commit status, by hand or from a pipeline's final job.

use std::process::ExitCode;

use anyhow::{Result, bail};

use super::Context;
use super::ci_report::status_options;
use crate::ci::status::{self, Status};
use crate::cli::StatusArgs;

/// Posts the status; without a CI environment (or token) it is an error, since that was
/// the whole point of the command.
pub fn run(ctx: &Context, args: &StatusArgs) -> Result<ExitCode> {
    let Some(reporter) = status::from_env(&status_options(ctx, &args.status))? else {
        bail!(
            "not running in GitHub Actions or GitLab CI: no commit to post a status to (GITHUB_ACTIONS / GITLAB_CI unset)"
        );
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
    reporter.post(&s)?;
    eprintln!("posted {} `{}` to {}", args.state, s.context, reporter.destination());
    Ok(ExitCode::SUCCESS)
}
