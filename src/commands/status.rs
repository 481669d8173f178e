//! `stackci status STATE`: one commit status, by hand or from a pipeline's final job.
//!
//! It needs no stack file and never opens the mirror: the stack, when there is one, only
//! names the status (`stackci/<stack>`) and may set `status: { github: }`.

use std::process::ExitCode;

use anyhow::Result;

use super::ci_report::status_options;
use crate::ci::env::Vars;
use crate::ci::status::{self, Status};
use crate::cli::{Cli, StatusArgs};
use crate::stack::{self, Stack};

/// Posts the status. A status that cannot be posted (not in CI, no token, API refusal) is a
/// warning unless `--strict`, so a pipeline's final job never fails over reporting.
pub fn run(cli: &Cli, args: &StatusArgs) -> Result<ExitCode> {
    let strict = args.status.strict;
    let not_posted = |why: anyhow::Error| -> Result<ExitCode> {
        if strict {
            return Err(why);
        }
        eprintln!("warning: status `{}` not posted: {why:#}", args.state);
        Ok(ExitCode::SUCCESS)
    };
    let stack = stack_if_present(cli, strict)?;
    let config = stack.as_ref().map(|s| s.status.clone()).unwrap_or_default();
    let options = status_options(&config, &args.status);
    let vars = Vars::from_process();
    let reporter = match status::from_vars(&vars, &options) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return not_posted(anyhow::anyhow!(
                "not running in GitHub Actions or GitLab CI: no commit to post a status to (GITHUB_ACTIONS / GITLAB_CI unset)"
            ));
        }
        Err(e) => return not_posted(e),
    };
    let name = stack
        .as_ref()
        .map(|s| s.name.clone())
        .or_else(|| status::repository_name(&vars, options.github_repo.as_deref()));
    let context = match (&args.context, name) {
        (Some(c), _) => c.clone(),
        (None, Some(name)) => status::stack_context(&name),
        (None, None) => {
            return not_posted(anyhow::anyhow!(
                "no status name: there is no stack file and the CI gives no repository name; pass --context"
            ));
        }
    };
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
    status::report(reporter.as_ref(), &s, strict)?;
    eprintln!("status {} `{}` for {}", args.state, s.context, reporter.destination());
    Ok(ExitCode::SUCCESS)
}

/// The stack, when there is one: none is fine (nothing found, nothing named); one named or
/// found but unreadable is an error with `--strict`, else a warning (the status still goes
/// out, named after the repository).
pub(super) fn stack_if_present(cli: &Cli, strict: bool) -> Result<Option<Stack>> {
    let loaded = match stack::discover(cli.stack.as_deref()) {
        Err(_) if cli.stack.is_none() => return Ok(None),
        Err(e) => Err(anyhow::Error::from(e)),
        Ok(path) => stack::load(&path).map_err(anyhow::Error::from),
    };
    match loaded {
        Ok(stack) => Ok(Some(stack)),
        Err(e) if strict => Err(e),
        Err(e) => {
            eprintln!("warning: ignoring the stack file: {e:#}");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ci::env::Vars;
    use crate::ci::status::repository_name;

    #[test]
    fn repository_name_comes_from_the_flag_then_the_ci() {
        let gh = Vars::from_pairs([("GITHUB_ACTIONS", "true"), ("GITHUB_REPOSITORY", "octo/stack")]);
        assert_eq!(repository_name(&gh, None).as_deref(), Some("stack"));
        assert_eq!(repository_name(&gh, Some("o/other")).as_deref(), Some("other"));
        let gl = Vars::from_pairs([("GITLAB_CI", "true"), ("CI_PROJECT_NAME", "proj")]);
        assert_eq!(repository_name(&gl, None).as_deref(), Some("proj"));
        assert_eq!(repository_name(&Vars::default(), None), None);
    }
}
