//! Which CI system stackci runs in, read from its environment.
//!
//! Every environment variable stackci reads for CI integration is a documented constant in
//! this module, so `grep`ing one place answers "what does stackci look at". Detection works on
//! a [`Vars`] snapshot rather than the live process environment, so it is a pure function
//! (and tests need not mutate the process environment).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};

use crate::env_vars::*;
use crate::net::Secret;

/// A snapshot of environment variables.
///
/// Empty values count as unset. `Debug` lists variable names only: values may be secrets.
#[derive(Clone, Default)]
pub struct Vars {
    map: BTreeMap<String, String>,
}

impl Vars {
    /// Snapshot of the process environment (variables whose name or value is not UTF-8 are left out).
    pub fn from_process() -> Vars {
        Vars {
            map: crate::env_vars::snapshot().collect(),
        }
    }

    /// A snapshot from explicit pairs (tests, or a caller that filters the environment).
    pub fn from_pairs<I, K, V>(pairs: I) -> Vars
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Vars {
            map: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }

    /// The variable's value, or `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The variable's value, or an error naming it.
    pub fn require(&self, name: &str, why: &str) -> anyhow::Result<&str> {
        self.get(name).with_context(|| format!("{name} is not set ({why})"))
    }

    /// True when the variable is `true` (any case), as CI systems set their markers.
    pub fn is_true(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The first of `names` that is set, as a [`Secret`] without surrounding whitespace (a
    /// trailing newline from a file), with the name it came from.
    pub fn token(&self, names: &[&str]) -> Option<(Secret, String)> {
        names
            .iter()
            .find_map(|n| self.get(n).map(|v| (Secret::new(v.trim()), (*n).to_string())))
    }
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

/// The CI system stackci runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ci {
    /// GitHub Actions.
    GitHub(GitHubActions),
    /// GitLab CI.
    GitLab(GitLabCi),
}

/// What stackci needs from a GitHub Actions environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubActions {
    /// `OWNER/REPO`.
    pub repository: String,
    /// The commit to report on: the pull request's head for `pull_request` and
    /// `pull_request_target` events (not GitHub's merge commit), else [`GITHUB_SHA`].
    pub sha: String,
    /// REST API base without a trailing slash.
    pub api_url: String,
    /// Web base without a trailing slash.
    pub server_url: String,
    /// Workflow run id, when known.
    pub run_id: Option<String>,
    /// Triggering event name, when known.
    pub event_name: Option<String>,
}

impl GitHubActions {
    /// Web URL of the workflow run (`<server>/<repo>/actions/runs/<id>`), when the run id is known.
    pub fn run_url(&self) -> Option<String> {
        self.run_id
            .as_ref()
            .map(|id| format!("{}/{}/actions/runs/{id}", self.server_url, self.repository))
    }
}

/// What stackci needs from a GitLab CI environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitLabCi {
    /// REST API v4 base without a trailing slash.
    pub api_url: String,
    /// Project id.
    pub project_id: String,
    /// The commit the pipeline builds.
    pub commit_sha: String,
    /// Running pipeline's id, when known.
    pub pipeline_id: Option<String>,
    /// Running pipeline's web URL, when known.
    pub pipeline_url: Option<String>,
    /// Running job's web URL, when known.
    pub job_url: Option<String>,
}

impl Ci {
    /// Detects the CI system: GitHub Actions when [`GITHUB_ACTIONS`] is `true`, else GitLab CI
    /// when [`GITLAB_CI`] is `true`, else `None`. A detected system whose required variables
    /// are missing (or whose event payload is unreadable) is an error naming what is missing.
    pub fn detect(vars: &Vars) -> anyhow::Result<Option<Ci>> {
        if let Some(gh) = GitHubActions::detect(vars)? {
            return Ok(Some(Ci::GitHub(gh)));
        }
        Ok(GitLabCi::detect(vars)?.map(Ci::GitLab))
    }

    /// The commit this CI run builds (the pull request head on GitHub).
    pub fn commit_sha(&self) -> &str {
        match self {
            Ci::GitHub(gh) => &gh.sha,
            Ci::GitLab(gl) => &gl.commit_sha,
        }
    }
}

impl GitHubActions {
    /// Reads the GitHub Actions environment; `None` when [`GITHUB_ACTIONS`] is not `true`.
    pub fn detect(vars: &Vars) -> anyhow::Result<Option<GitHubActions>> {
        if !vars.is_true(GITHUB_ACTIONS) {
            return Ok(None);
        }
        let why = "GitHub Actions sets it in every step";
        let repository = vars.require(GITHUB_REPOSITORY, why)?.to_string();
        let event_name = vars.get(GITHUB_EVENT_NAME).map(str::to_string);
        let sha = match event_name.as_deref() {
            Some("pull_request" | "pull_request_target") => {
                let path = vars.require(GITHUB_EVENT_PATH, "needed to find the pull request's head commit")?;
                pull_request_head_sha(Path::new(path))?
            }
            _ => vars.require(GITHUB_SHA, why)?.to_string(),
        };
        Ok(Some(GitHubActions {
            repository,
            sha,
            api_url: trim_slash(vars.get(GITHUB_API_URL).unwrap_or(DEFAULT_GITHUB_API_URL)),
            server_url: trim_slash(vars.get(GITHUB_SERVER_URL).unwrap_or(DEFAULT_GITHUB_SERVER_URL)),
            run_id: vars.get(GITHUB_RUN_ID).map(str::to_string),
            event_name,
        }))
    }
}

impl GitLabCi {
    /// Reads the GitLab CI environment; `None` when [`GITLAB_CI`] is not `true`.
    pub fn detect(vars: &Vars) -> anyhow::Result<Option<GitLabCi>> {
        if !vars.is_true(GITLAB_CI) {
            return Ok(None);
        }
        let why = "GitLab CI sets it in every job";
        Ok(Some(GitLabCi {
            api_url: trim_slash(vars.require(CI_API_V4_URL, why)?),
            project_id: vars.require(CI_PROJECT_ID, why)?.to_string(),
            commit_sha: vars.require(CI_COMMIT_SHA, why)?.to_string(),
            pipeline_id: vars.get(CI_PIPELINE_ID).map(str::to_string),
            pipeline_url: vars.get(CI_PIPELINE_URL).map(str::to_string),
            job_url: vars.get(CI_JOB_URL).map(str::to_string),
        }))
    }
}

/// `pull_request.head.sha` from a GitHub event payload.
fn pull_request_head_sha(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the GitHub event payload {}", path.display()))?;
    let event: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing the GitHub event payload {}", path.display()))?;
    match event.pointer("/pull_request/head/sha").and_then(|v| v.as_str()) {
        Some(sha) if !sha.is_empty() => Ok(sha.to_string()),
        _ => bail!(
            "the GitHub event payload {} has no pull_request.head.sha",
            path.display()
        ),
    }
}

fn trim_slash(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_detected_outside_ci() {
        assert_eq!(Ci::detect(&Vars::from_pairs([("CI", "true")])).unwrap(), None);
        assert_eq!(
            Ci::detect(&Vars::from_pairs([(GITHUB_ACTIONS, "false")])).unwrap(),
            None
        );
    }

    #[test]
    fn github_push_uses_github_sha_and_defaults() {
        let vars = Vars::from_pairs([
            (GITHUB_ACTIONS, "true"),
            (GITHUB_REPOSITORY, "o/r"),
            (GITHUB_SHA, "abc"),
            (GITHUB_RUN_ID, "42"),
            (GITHUB_EVENT_NAME, "push"),
        ]);
        let Some(Ci::GitHub(gh)) = Ci::detect(&vars).unwrap() else {
            panic!("not detected")
        };
        assert_eq!(gh.sha, "abc");
        assert_eq!(gh.api_url, "https://api.github.com");
        assert_eq!(gh.run_url().as_deref(), Some("https://github.com/o/r/actions/runs/42"));
    }

    #[test]
    fn pull_request_reports_on_the_head_commit() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(
            &event,
            r#"{"pull_request":{"head":{"sha":"head123"},"merge_commit_sha":"m"}}"#,
        )
        .unwrap();
        for name in ["pull_request", "pull_request_target"] {
            let vars = Vars::from_pairs([
                (GITHUB_ACTIONS, "true"),
                (GITHUB_REPOSITORY, "o/r"),
                (GITHUB_SHA, "merge456"),
                (GITHUB_EVENT_NAME, name),
                (GITHUB_EVENT_PATH, event.to_str().unwrap()),
            ]);
            assert_eq!(Ci::detect(&vars).unwrap().unwrap().commit_sha(), "head123");
        }
        std::fs::write(&event, r#"{"pull_request":{}}"#).unwrap();
        let vars = Vars::from_pairs([
            (GITHUB_ACTIONS, "true"),
            (GITHUB_REPOSITORY, "o/r"),
            (GITHUB_EVENT_NAME, "pull_request"),
            (GITHUB_EVENT_PATH, event.to_str().unwrap()),
        ]);
        let err = Ci::detect(&vars).unwrap_err().to_string();
        assert!(err.contains("pull_request.head.sha"), "{err}");
    }

    #[test]
    fn gitlab_missing_variable_is_named() {
        let vars = Vars::from_pairs([(GITLAB_CI, "true"), (CI_API_V4_URL, "https://x/api/v4/")]);
        let err = Ci::detect(&vars).unwrap_err().to_string();
        assert!(err.contains(CI_PROJECT_ID), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let vars = Vars::from_pairs([(GITHUB_TOKEN, "s3cr3t-value")]);
        assert!(!format!("{vars:?}").contains("s3cr3t"));
        let (token, from) = vars.token(&[STACKCI_GITLAB_TOKEN, GITHUB_TOKEN]).unwrap();
        assert_eq!(from, GITHUB_TOKEN);
        assert_eq!(format!("{token:?} {token}"), "Secret(***) ***");
        assert_eq!(token.scrub("Bearer s3cr3t-value!"), "Bearer ***!");
        let (padded, _) = Vars::from_pairs([(GITHUB_TOKEN, " tok\n")])
            .token(&[GITHUB_TOKEN])
            .unwrap();
        assert_eq!(padded.expose(), "tok");
    }
}
