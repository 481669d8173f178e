//! Commit statuses on GitHub and GitLab behind one [`StatusReporter`] trait, picked from the
//! CI environment by [`from_env`].
//!
//! The API is synchronous: reporters block on the shared runtime ([`crate::net::runtime`]),
//! so they must not be called from inside an async task (posting then fails with
//! [`StatusError::NotSent`]). Retryable answers (408, 429, 5xx, GitHub's rate-limit 403s,
//! network errors) are retried under [`StatusOptions::retry`] (backoff with jitter,
//! `Retry-After` honoured); 401/403/404 give an error that names the permission the token
//! lacks. A status is never worth failing a build for unless the user asks: [`report`] and
//! [`post_summary`] turn errors into warnings unless `strict`.
//!
//! No token ever appears in an error, a message or a `Debug` output: tokens are
//! [`Secret`]s, and every text that comes back from a server or the HTTP stack is scrubbed.

mod github;
mod gitlab;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};

pub use github::{GitHubReporter, GitHubTarget};
pub(crate) use gitlab::encode_segment;
pub use gitlab::{GitLabReporter, GitLabTarget};

use crate::builder::summary::{Outcome, RunSummary};
use crate::ci::env::{Ci, Vars};
use crate::env_vars;
use crate::net::Secret;
use crate::net::retry::{GiveUp, Retry};
use crate::net::runtime::RuntimeError;

/// A commit status state, as `stackci status STATE` takes it.
///
/// Each API has its own set; the mapping is:
///
/// | stackci   | GitHub    | GitLab     |
/// |-----------|-----------|------------|
/// | pending   | pending   | pending    |
/// | running   | pending   | running    |
/// | success   | success   | success    |
/// | failure   | failure   | failed     |
/// | error     | error     | failed     |
/// | canceled  | error     | canceled   |
///
/// GitHub has no "running" (pending is the in-progress state) and no "canceled": a canceled
/// run becomes `error` ("could not complete") rather than `failure`, which on GitHub means
/// the build itself found a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Queued or about to start.
    Pending,
    /// In progress.
    Running,
    /// Finished without failures.
    Success,
    /// Finished; something failed to build.
    Failure,
    /// Could not run (infrastructure or configuration problem).
    Error,
    /// Stopped before finishing.
    Canceled,
}

impl State {
    /// Every state, in the order `stackci status --help` lists them.
    pub const ALL: [State; 6] = [
        State::Pending,
        State::Running,
        State::Success,
        State::Failure,
        State::Error,
        State::Canceled,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Success => "success",
            State::Failure => "failure",
            State::Error => "error",
            State::Canceled => "canceled",
        }
    }

    /// The GitHub commit status `state` (see the table on [`State`]).
    pub fn github(self) -> &'static str {
        match self {
            State::Pending | State::Running => "pending",
            State::Success => "success",
            State::Failure => "failure",
            State::Error | State::Canceled => "error",
        }
    }

    /// The GitLab commit status `state` (see the table on [`State`]).
    pub fn gitlab(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Success => "success",
            State::Failure | State::Error => "failed",
            State::Canceled => "canceled",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown state name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status state {0:?}: expected one of pending, running, success, failure, error, canceled")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<State, UnknownState> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// One commit status to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Its state.
    pub state: State,
    /// Label that tells it apart from other statuses on the commit (GitHub `context`, GitLab
    /// `name`), e.g. `stackci/demo`.
    pub context: String,
    /// Short text shown next to it; cut to the API's limit (GitHub 140, GitLab 255 characters).
    pub description: Option<String>,
    /// Link shown with it; `None` means the reporter's [`StatusReporter::default_target_url`].
    /// A URL longer than the API's limit (GitLab: 255) is left out rather than cut into a
    /// wrong link.
    pub target_url: Option<String>,
}

impl Status {
    /// A status with no description and the default target URL.
    pub fn new(state: State, context: impl Into<String>) -> Status {
        Status {
            state,
            context: context.into(),
            description: None,
            target_url: None,
        }
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Status {
        self.description = Some(description.into());
        self
    }

    /// Sets the target URL.
    pub fn with_target_url(mut self, url: impl Into<String>) -> Status {
        self.target_url = Some(url.into());
        self
    }
}

/// Posts commit statuses for one commit of one repository or project.
pub trait StatusReporter: fmt::Debug + Send {
    /// Where statuses go, for messages, e.g. `GitHub o/r@0123abc` or `GitLab project 17@0123abc`.
    fn destination(&self) -> String;

    /// The link used when a [`Status`] has no `target_url`: the CI run or job, when known.
    fn default_target_url(&self) -> Option<&str>;

    /// Posts one status, retrying retryable failures per [`StatusOptions::retry`].
    fn post(&self, status: &Status) -> Result<(), StatusError>;
}

/// Why posting a status failed. Messages never contain the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The service refused the token or its permissions (401, 403, 404).
    #[error("{destination} answered {code}: {hint} (server said: {message})")]
    Permission {
        /// `GitHub` or `GitLab`.
        service: &'static str,
        /// See [`StatusReporter::destination`].
        destination: String,
        /// HTTP status code.
        code: u16,
        /// What to fix: which permission, scope or role the token needs.
        hint: String,
        /// The server's message, scrubbed of the token.
        message: String,
    },
    /// The service refused the status for another reason (e.g. 422 validation failed).
    #[error("{destination} answered {code}: {message}")]
    Rejected {
        /// `GitHub` or `GitLab`.
        service: &'static str,
        /// See [`StatusReporter::destination`].
        destination: String,
        /// HTTP status code.
        code: u16,
        /// The server's message, scrubbed of the token.
        message: String,
    },
    /// The request could not be made at all: called from inside an async task, or the
    /// network runtime could not start.
    #[error("cannot post a commit status to {destination}: {reason}")]
    NotSent {
        /// See [`StatusReporter::destination`].
        destination: String,
        /// Why.
        reason: RuntimeError,
    },
    /// Retryable failures (rate limits, 5xx, network errors) outlasted every attempt, or
    /// the server asked to wait longer than the retry policy's cap.
    #[error("posting a commit status to {destination} failed after {attempts} attempt(s); last error: {last}")]
    GaveUp {
        /// See [`StatusReporter::destination`].
        destination: String,
        /// Requests made.
        attempts: u32,
        /// The last failure, scrubbed of the token.
        last: String,
    },
}

/// How [`from_env`] picks and sets up a reporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOptions {
    /// `--token-env NAME`: read the token from this variable instead of `GITHUB_TOKEN`
    /// (GitHub) or `STACKCI_GITLAB_TOKEN`/`GITLAB_TOKEN` (GitLab).
    pub token_env: Option<String>,
    /// `--github-repo OWNER/REPO` (or the stack's
    /// [`StatusConfig::github`](crate::stack::settings::StatusConfig::github)): post to this GitHub
    /// repository, on the commit the current CI builds, with `GITHUB_TOKEN`; run inside
    /// GitLab CI, the target URL is the GitLab pipeline.
    pub github_repo: Option<String>,
    /// How retryable failures are retried; default [`Retry::STATUS`] (5 attempts, 1 s
    /// doubling to at most 60 s; a `Retry-After` beyond 60 s ends the retries at once).
    pub retry: Retry,
    /// Per-request timeout; `None` means 30 s.
    pub timeout: Option<Duration>,
}

impl Default for StatusOptions {
    fn default() -> StatusOptions {
        StatusOptions {
            token_env: None,
            github_repo: None,
            retry: Retry::STATUS,
            timeout: None,
        }
    }
}

impl StatusOptions {
    fn request_timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(30))
    }
}

/// The reporter for the current process environment; see [`from_vars`].
pub fn from_env(opts: &StatusOptions) -> anyhow::Result<Option<Box<dyn StatusReporter>>> {
    from_vars(&Vars::from_process(), opts)
}

/// The reporter for an environment: `Ok(None)` outside CI (and without `--github-repo`).
///
/// - `--github-repo OWNER/REPO`: GitHub (API from `GITHUB_API_URL`, default api.github.com),
///   the commit the detected CI builds, token from `--token-env` or `GITHUB_TOKEN`, target
///   URL the GitLab pipeline (`CI_PIPELINE_URL`) or the GitHub run.
/// - GitHub Actions: the workflow's repository, the pull request head (or `GITHUB_SHA`),
///   target URL the run.
/// - GitLab CI: the project, `CI_COMMIT_SHA`, attached to `CI_PIPELINE_ID`, target URL the
///   job (`CI_JOB_URL`, else `CI_PIPELINE_URL`).
///
/// A detected CI without a token, or with required variables missing, is an error that says
/// what to set.
pub fn from_vars(vars: &Vars, opts: &StatusOptions) -> anyhow::Result<Option<Box<dyn StatusReporter>>> {
    let ci = Ci::detect(vars)?;
    if let Some(repo) = &opts.github_repo {
        let Some(ci) = ci else {
            bail!(
                "--github-repo {repo}: no CI environment detected (GitLab CI or GitHub Actions) to take the commit from"
            );
        };
        let target_url = match &ci {
            Ci::GitLab(gl) => gl.pipeline_url.clone().or_else(|| gl.job_url.clone()),
            Ci::GitHub(gh) => gh.run_url(),
        };
        let target = GitHubTarget {
            api_url: vars
                .get(env_vars::GITHUB_API_URL)
                .unwrap_or(env_vars::DEFAULT_GITHUB_API_URL)
                .trim_end_matches('/')
                .to_string(),
            repository: repo.clone(),
            // A pipeline started by `stackci trigger gitlab` reports on the GitHub commit
            // that triggered it (a pull request's head), which GitLab may not have.
            sha: match &ci {
                Ci::GitLab(_) => vars.get(env_vars::STACKCI_GITHUB_SHA).unwrap_or(ci.commit_sha()),
                Ci::GitHub(_) => ci.commit_sha(),
            }
            .to_string(),
            target_url,
        };
        let token = token(vars, opts, &[env_vars::GITHUB_TOKEN], "GitHub")?;
        return Ok(Some(Box::new(GitHubReporter::new(target, token, opts)?)));
    }
    match ci {
        None => Ok(None),
        Some(Ci::GitHub(gh)) => {
            let target_url = gh.run_url();
            let target = GitHubTarget {
                api_url: gh.api_url,
                repository: gh.repository,
                sha: gh.sha,
                target_url,
            };
            let token = token(vars, opts, &[env_vars::GITHUB_TOKEN], "GitHub")?;
            Ok(Some(Box::new(GitHubReporter::new(target, token, opts)?)))
        }
        Some(Ci::GitLab(gl)) => {
            let pipeline_id = gl
                .pipeline_id
                .as_deref()
                .map(|id| {
                    id.parse::<u64>()
                        .with_context(|| format!("{} is not a number: {id:?}", env_vars::CI_PIPELINE_ID))
                })
                .transpose()?;
            let target = GitLabTarget {
                api_url: gl.api_url,
                project_id: gl.project_id,
                sha: gl.commit_sha,
                pipeline_id,
                target_url: gl.job_url.or(gl.pipeline_url),
            };
            let names = [env_vars::STACKCI_GITLAB_TOKEN, env_vars::GITLAB_TOKEN];
            let token = token(vars, opts, &names, "GitLab")?;
            Ok(Some(Box::new(GitLabReporter::new(target, token, opts)?)))
        }
    }
}

/// The token from `--token-env NAME` or the first of `defaults` that is set.
fn token(vars: &Vars, opts: &StatusOptions, defaults: &[&str], service: &str) -> anyhow::Result<Secret> {
    if let Some(name) = &opts.token_env {
        return match vars.token(&[name.as_str()]) {
            Some((t, _)) => Ok(t),
            None => bail!("--token-env {name}: {name} is not set; it must hold the {service} token"),
        };
    }
    match vars.token(defaults) {
        Some((t, _)) => Ok(t),
        None if service == "GitHub" => bail!(
            "no GitHub token: set {} (in a workflow: `env: {{ GITHUB_TOKEN: ${{{{ github.token }}}} }}` \
             with `permissions: {{ statuses: write }}`), or name another variable with --token-env",
            env_vars::GITHUB_TOKEN
        ),
        None => bail!(
            "no GitLab token: set {} or {} to an access token with the `api` scope whose user has \
             at least the Developer role (CI_JOB_TOKEN cannot post commit statuses), or name another \
             variable with --token-env",
            env_vars::STACKCI_GITLAB_TOKEN,
            env_vars::GITLAB_TOKEN
        ),
    }
}

/// Posts `status`; on failure, returns the error when `strict`, else prints a warning to
/// stderr and returns `Ok` (a status must not fail a build unless `--strict`).
pub fn report(reporter: &dyn StatusReporter, status: &Status, strict: bool) -> anyhow::Result<()> {
    match reporter.post(status) {
        Ok(()) => Ok(()),
        Err(e) if strict => {
            Err(e).with_context(|| format!("posting commit status {} ({})", status.context, status.state))
        }
        Err(e) => {
            eprintln!(
                "warning: commit status {} ({}) not posted: {e} (the build goes on; --strict makes this an error)",
                status.context, status.state
            );
            Ok(())
        }
    }
}

/// Context of a stack's aggregate status: `stackci/<stack>`.
pub fn stack_context(stack: &str) -> String {
    format!("stackci/{stack}")
}

/// The repository's name, which names a stack's status when there is no stack file:
/// `REPO` of `--github-repo OWNER/REPO`, else of GitHub's `GITHUB_REPOSITORY`, else GitLab's
/// `CI_PROJECT_NAME`.
pub fn repository_name(vars: &Vars, github_repo: Option<&str>) -> Option<String> {
    let github = || {
        vars.is_true(env_vars::GITHUB_ACTIONS)
            .then(|| vars.get(env_vars::GITHUB_REPOSITORY))
            .flatten()
    };
    let gitlab = || {
        vars.is_true(env_vars::GITLAB_CI)
            .then(|| vars.get(env_vars::CI_PROJECT_NAME))
            .flatten()
    };
    let name = match github_repo.or_else(github) {
        Some(repo) => repo.rsplit('/').next().unwrap_or(repo),
        None => gitlab()?,
    };
    Some(name.to_string()).filter(|n| !n.is_empty())
}

/// Context of one package's status: `stackci/<stack>/<package>`.
pub fn package_context(stack: &str, package: &str) -> String {
    format!("stackci/{stack}/{package}")
}

/// The aggregate status of a finished run: success unless a package failed, described as
/// "12 built, 40 cached, 1 failed".
pub fn stack_status(summary: &RunSummary) -> Status {
    let state = if summary.succeeded() {
        State::Success
    } else {
        State::Failure
    };
    Status::new(state, stack_context(&summary.stack)).with_description(summary.counts().to_string())
}

/// One status per package: built/cached/external are success, failed is failure, skipped is
/// canceled (GitHub: error).
pub fn package_statuses(summary: &RunSummary) -> Vec<Status> {
    summary
        .packages
        .iter()
        .map(|p| {
            let (state, description) = match &p.outcome {
                Outcome::Built => (State::Success, format!("built in {:.0} s", p.duration.as_secs_f64())),
                Outcome::Cached => (State::Success, "cached in the mirror".to_string()),
                Outcome::External => (State::Success, "external (provided by the system)".to_string()),
                Outcome::Failed { .. } => (
                    State::Failure,
                    format!("failed after {:.0} s", p.duration.as_secs_f64()),
                ),
                Outcome::Skipped { reason } => (State::Canceled, format!("skipped: {reason}")),
            };
            Status::new(state, package_context(&summary.stack, &p.name)).with_description(description)
        })
        .collect()
}

/// Posts the aggregate status of a finished run and, with `per_package`, one status per
/// package, each through [`report`] (warnings unless `strict`; with `strict`, stops at the
/// first error).
pub fn post_summary(
    reporter: &dyn StatusReporter,
    summary: &RunSummary,
    per_package: bool,
    strict: bool,
) -> anyhow::Result<()> {
    if per_package {
        for status in package_statuses(summary) {
            report(reporter, &status, strict)?;
        }
    }
    report(reporter, &stack_status(summary), strict)
}

/// `s` cut to at most `max` characters, ending in `…` when cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// One HTTP answer, reduced to what the retry and error logic need.
struct Answer {
    code: u16,
    /// How long the server asks to wait before a retry (`Retry-After`, or GitHub's rate
    /// limit reset), when it says.
    retry_after: Option<Duration>,
    /// Body text, already scrubbed of the token.
    body: String,
}

impl Answer {
    /// The server's error message: JSON `message` (or `error`), else the start of the body.
    fn message(&self) -> String {
        let text = server_message(&self.body);
        if text.is_empty() {
            format!("HTTP {}", self.code)
        } else {
            truncate_chars(&text, 500)
        }
    }
}

/// A forge's error answer `body`: its JSON `message` (or `error`) field, else the trimmed text.
pub(crate) fn server_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let from_json = parsed.as_ref().and_then(|v| {
        let m = v.get("message").or_else(|| v.get("error"))?;
        Some(match m {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    });
    from_json.unwrap_or_else(|| body.trim().to_string())
}

/// What to do after one attempt.
enum Verdict {
    /// Posted (or already in that state).
    Done,
    /// Retryable; wait the hint if any, else back off.
    Retry { hint: Option<Duration>, reason: String },
    /// Not retryable.
    Fail(StatusError),
}

/// Runs `attempt` until it is done, fails for good, or `retry` says to stop.
/// `attempt` returns `Err(text)` for transport errors (retried), text already scrubbed.
fn with_retries(
    retry: &Retry,
    destination: &str,
    mut attempt: impl FnMut() -> Result<Verdict, String>,
) -> Result<(), StatusError> {
    let mut tries = retry.start();
    loop {
        let (hint, last) = match attempt() {
            Ok(Verdict::Done) => return Ok(()),
            Ok(Verdict::Fail(e)) => return Err(e),
            Ok(Verdict::Retry { hint, reason }) => (hint, reason),
            Err(transport) => (None, transport),
        };
        match tries.failed(hint) {
            Ok(wait) => std::thread::sleep(wait),
            Err(stop) => {
                return Err(StatusError::GaveUp {
                    destination: destination.to_string(),
                    attempts: tries.made(),
                    last: match stop {
                        GiveUp::Exhausted { .. } => last,
                        GiveUp::TooLong { .. } => format!("{last}; {stop}"),
                    },
                });
            }
        }
    }
}

/// Runs one request on the shared runtime; a request that cannot run at all is
/// [`StatusError::NotSent`] (never retried).
fn block_on<F: std::future::Future>(destination: impl FnOnce() -> String, future: F) -> Result<F::Output, StatusError> {
    crate::net::runtime::block_on(future).map_err(|reason| StatusError::NotSent {
        destination: destination(),
        reason,
    })
}

/// The error chain of `e` as one line, scrubbed of the token.
fn chain(e: &(dyn std::error::Error + 'static), token: &Secret) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    token.scrub(&parts.join(": "))
}

/// Whether `s` is a plausible commit id (hex, SHA-1 or SHA-256 length range); keeps request
/// paths well-formed.
fn check_sha(sha: &str) -> anyhow::Result<()> {
    if (7..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        bail!("{sha:?} is not a commit SHA (7 to 64 hexadecimal digits)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_and_map() {
        for st in State::ALL {
            assert_eq!(st.as_str().parse::<State>().unwrap(), st);
        }
        assert!("failed".parse::<State>().is_err());
        assert_eq!(State::Running.github(), "pending");
        assert_eq!(State::Canceled.github(), "error");
        assert_eq!(State::Failure.gitlab(), "failed");
        assert_eq!(State::Canceled.gitlab(), "canceled");
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("ééééé", 4).chars().count(), 4);
    }

    #[test]
    fn server_messages_are_extracted() {
        let a = |body: &str| Answer {
            code: 400,
            retry_after: None,
            body: body.into(),
        };
        assert_eq!(a(r#"{"message":"Bad"}"#).message(), "Bad");
        assert_eq!(a(r#"{"message":{"name":["x"]}}"#).message(), r#"{"name":["x"]}"#);
        assert_eq!(a(r#"{"error":"insufficient_scope"}"#).message(), "insufficient_scope");
        assert_eq!(a("").message(), "HTTP 400");
    }
}
