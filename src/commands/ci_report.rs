//! What `run` and `build` tell the CI around them: commit statuses, the GitHub step summary
//! and outputs, and a JUnit report.

use anyhow::Result;

use super::Context;
use crate::builder::summary::RunSummary;
use crate::ci::env::Vars;
use crate::ci::output::{self, Flavor};
use crate::ci::status::{self, State, Status, StatusOptions, StatusReporter};
use crate::cli::StatusFlags;
use crate::stack::settings::StatusConfig;

/// The CI side of one `run` or `build`.
pub struct CiReport {
    vars: Vars,
    reporter: Option<Box<dyn StatusReporter>>,
    flags: StatusFlags,
    context: String,
}

impl CiReport {
    /// Detects the CI and a status destination; a misconfiguration (say, no token) is a
    /// warning unless `--strict`.
    pub fn new(ctx: &Context, flags: &StatusFlags) -> Result<CiReport> {
        let vars = Vars::from_process();
        let opts = status_options(&ctx.stack.status, flags);
        let reporter = match status::from_vars(&vars, &opts) {
            Ok(r) => r,
            Err(e) if flags.strict => return Err(e),
            Err(e) => {
                eprintln!("warning: commit statuses are off: {e:#}");
                None
            }
        };
        Ok(CiReport {
            vars,
            reporter,
            flags: flags.clone(),
            context: status::stack_context(&ctx.stack.name),
        })
    }

    /// How logs are grouped in this CI.
    pub fn flavor(&self) -> Flavor {
        Flavor::detect(&self.vars)
    }

    /// Posts the aggregate `pending` status.
    pub fn pending(&self, description: &str) -> Result<()> {
        match &self.reporter {
            Some(r) => status::report(
                r.as_ref(),
                &Status::new(State::Pending, &self.context).with_description(description),
                self.flags.strict,
            ),
            None => Ok(()),
        }
    }

    /// Posts the final statuses (the aggregate one only when `aggregate`: a single CI job
    /// reports its own package, the pipeline's last job the stack), writes the step
    /// summary, outputs and JUnit report.
    pub fn finish(&self, summary: &RunSummary, aggregate: bool) -> Result<()> {
        if let Some(r) = &self.reporter {
            if aggregate {
                status::post_summary(r.as_ref(), summary, self.flags.per_package, self.flags.strict)?;
            } else if self.flags.per_package {
                for s in status::package_statuses(summary) {
                    status::report(r.as_ref(), &s, self.flags.strict)?;
                }
            }
        }
        output::publish_github(&self.vars, summary)?;
        if let Some(path) = &self.flags.junit {
            output::write_junit(path, summary)?;
        }
        Ok(())
    }
}

/// Status options from the flags and the stack's `status:` section.
pub fn status_options(config: &StatusConfig, flags: &StatusFlags) -> StatusOptions {
    StatusOptions {
        token_env: flags.token_env.clone(),
        github_repo: flags.github_repo.clone().or_else(|| config.github.clone()),
        ..StatusOptions::default()
    }
}
