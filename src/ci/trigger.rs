//! Starting a GitLab pipeline from elsewhere (a GitHub job) and following it.
//!
//! [`Trigger::start`] is GitLab's "trigger a pipeline with a token"
//! (`POST /projects/:id/trigger/pipeline`, <https://docs.gitlab.com/api/pipeline_triggers/>)
//! with a pipeline trigger token; [`Trigger::get`] reads a pipeline
//! (`GET /projects/:id/pipelines/:pipeline_id`, <https://docs.gitlab.com/api/pipelines/>),
//! which needs a token with `read_api` unless the project is public. Every request is
//! retried under the shared [`Retry`] policy on network errors, 408, 429 and 5xx; tokens
//! never appear in errors (they are [`Secret`]s, and server answers are scrubbed).

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::net::Secret;
use crate::net::retry::{self, Retry};

/// A pipeline as GitLab describes it (the fields stackci uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Pipeline {
    /// Its id (not the per-project `iid`).
    pub id: u64,
    /// `created`, `pending`, `running`, `success`, `failed`, `canceled`, `skipped`,
    /// `manual`, `scheduled`, ...
    pub status: String,
    /// Its page.
    #[serde(default)]
    pub web_url: Option<String>,
    /// The commit it builds.
    #[serde(default)]
    pub sha: Option<String>,
}

/// How a pipeline ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// `success`.
    Success,
    /// `failed`, `canceled`, `skipped`, or waiting on a `manual` job.
    NotSuccess,
}

impl Pipeline {
    /// `Some` once the pipeline will not change by itself any more.
    pub fn finished(&self) -> Option<Finished> {
        match self.status.as_str() {
            "success" => Some(Finished::Success),
            "failed" | "canceled" | "canceling" | "skipped" | "manual" => Some(Finished::NotSuccess),
            _ => None,
        }
    }
}

/// One GitLab project's trigger endpoint and pipeline reads.
pub struct Trigger {
    /// REST API v4 base without a trailing slash (`https://gitlab.com/api/v4`).
    pub api_url: String,
    /// Project id or `group/project` path (URL-encoded when sent).
    pub project: String,
    /// The pipeline trigger token.
    pub token: Secret,
    /// A token that may read pipelines (`read_api`), for [`Trigger::get`]; `None`: anonymous.
    pub read_token: Option<Secret>,
    /// Retries of each request.
    pub retry: Retry,
    http: reqwest::Client,
}

impl fmt::Debug for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trigger")
            .field("api_url", &self.api_url)
            .field("project", &self.project)
            .field("token", &self.token)
            .field("read_token", &self.read_token)
            .finish_non_exhaustive()
    }
}

/// The API base for `--gitlab-url`: an instance URL (`https://gitlab.example`) gets
/// `/api/v4`; one that already ends in `/api/v4` is kept.
pub fn api_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/api/v4") {
        url.to_string()
    } else {
        format!("{url}/api/v4")
    }
}

impl Trigger {
    /// A client for `project` at `api_url`.
    pub fn new(
        api_url: &str,
        project: &str,
        token: Secret,
        read_token: Option<Secret>,
        retry: Retry,
    ) -> Result<Trigger> {
        if project.trim().is_empty() {
            bail!("--project is empty: give the GitLab project's id or its path (group/project)");
        }
        retry.validate().context("GitLab trigger")?;
        let api_url = api_url.trim_end_matches('/').to_string();
        reqwest::Url::parse(&api_url).with_context(|| format!("GitLab API URL `{api_url}` is not a valid URL"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("stackci/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("setting up the HTTP client for GitLab")?;
        Ok(Trigger {
            api_url,
            project: project.to_string(),
            token,
            read_token,
            retry,
            http,
        })
    }

    fn project_url(&self) -> String {
        format!(
            "{}/projects/{}",
            self.api_url,
            crate::ci::status::encode_segment(&self.project)
        )
    }

    /// Starts a pipeline on `git_ref` with `variables`; returns it as GitLab created it.
    pub fn start(&self, git_ref: &str, variables: &[(String, String)]) -> Result<Pipeline> {
        let url = format!("{}/trigger/pipeline", self.project_url());
        let vars: serde_json::Map<String, serde_json::Value> = variables
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
            .collect();
        let body = serde_json::json!({ "token": self.token.expose(), "ref": git_ref, "variables": vars });
        let (code, text) = self.send(reqwest::Method::POST, &url, Some(&body), None)?;
        match code {
            200..=299 => serde_json::from_str(&text)
                .with_context(|| format!("GitLab answered the trigger with something that is not a pipeline: {text}")),
            401 | 403 => bail!(
                "GitLab refused the trigger token for project `{}` ({code}): the token must be a pipeline trigger token of that project (Settings > CI/CD > Pipeline trigger tokens); {}",
                self.project,
                message(&text)
            ),
            404 => bail!(
                "GitLab project `{}` not found at {} (404): check --project and --gitlab-url; {}",
                self.project,
                self.api_url,
                message(&text)
            ),
            400 => bail!(
                "GitLab would not start a pipeline on `{git_ref}` in `{}` (400): {}",
                self.project,
                message(&text)
            ),
            _ => bail!("GitLab answered {code} to the trigger: {}", message(&text)),
        }
    }

    /// Reads pipeline `id`.
    pub fn get(&self, id: u64) -> Result<Pipeline> {
        let url = format!("{}/pipelines/{id}", self.project_url());
        let (code, text) = self.send(reqwest::Method::GET, &url, None, self.read_token.as_ref())?;
        match code {
            200..=299 => serde_json::from_str(&text)
                .with_context(|| format!("GitLab answered with something that is not a pipeline: {text}")),
            401 | 403 | 404 if self.read_token.is_none() => bail!(
                "cannot read pipeline {id} of `{}` ({code}): the project is not public; set STACKCI_GITLAB_TOKEN (or GITLAB_TOKEN) to a token with the `read_api` scope",
                self.project
            ),
            401 | 403 => bail!(
                "GitLab refused to show pipeline {id} of `{}` ({code}): the token in STACKCI_GITLAB_TOKEN/GITLAB_TOKEN needs the `read_api` scope and access to the project; {}",
                self.project,
                message(&text)
            ),
            _ => bail!("GitLab answered {code} for pipeline {id}: {}", message(&text)),
        }
    }

    /// Polls pipeline `id` every `interval` until it finishes or `timeout` passes, calling
    /// `seen` with every new status.
    pub fn wait(
        &self,
        id: u64,
        interval: Duration,
        timeout: Duration,
        mut seen: impl FnMut(&Pipeline),
    ) -> Result<(Pipeline, Finished)> {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            let pipeline = self.get(id)?;
            if pipeline.status != last {
                last.clone_from(&pipeline.status);
                seen(&pipeline);
            }
            if let Some(done) = pipeline.finished() {
                return Ok((pipeline, done));
            }
            if start.elapsed() + interval > timeout {
                bail!(
                    "pipeline {id} is still `{}` after {}s (--timeout); it goes on in GitLab",
                    pipeline.status,
                    timeout.as_secs()
                );
            }
            std::thread::sleep(interval);
        }
    }

    /// One request with retries; returns the final status code and scrubbed body.
    fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
        auth: Option<&Secret>,
    ) -> Result<(u16, String)> {
        let header = match auth {
            Some(t) => Some(
                t.header("")
                    .context("the GitLab token contains characters not allowed in a header")?,
            ),
            None => None,
        };
        let mut attempts = self.retry.start();
        loop {
            let request = {
                let mut r = self.http.request(method.clone(), url);
                if let Some(h) = &header {
                    r = r.header("PRIVATE-TOKEN", h.clone());
                }
                if let Some(b) = body {
                    r = r.json(b);
                }
                r
            };
            let answer = crate::net::runtime::block_on(async {
                let resp = request.send().await?;
                let code = resp.status();
                let after = retry::retry_after(resp.headers());
                let text = resp.text().await?;
                Ok::<_, reqwest::Error>((code, after, text))
            })
            .context("cannot reach GitLab")?;
            let (why, after) = match answer {
                Ok((code, after, text)) => {
                    let text = self.scrub(&text);
                    if !retry::retryable_status(code) {
                        return Ok((code.as_u16(), text));
                    }
                    (format!("{code}: {}", message(&text)), after)
                }
                Err(e) => (self.scrub(&format!("{e:#}")), None),
            };
            match attempts.failed(after) {
                Ok(pause) => std::thread::sleep(pause),
                Err(give_up) => bail!("{method} {url} failed: {why} ({give_up})"),
            }
        }
    }

    fn scrub(&self, text: &str) -> String {
        let text = self.token.scrub(text);
        match &self.read_token {
            Some(t) => t.scrub(&text),
            None => text,
        }
    }
}

/// GitLab's `message` or `error` field, else the (shortened) text.
fn message(text: &str) -> String {
    let mut out = crate::ci::status::server_message(text);
    if out.chars().count() > 300 {
        out = out.chars().take(300).collect::<String>() + "...";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_base_from_the_instance_or_its_api_url() {
        assert_eq!(api_base("https://gitlab.example/"), "https://gitlab.example/api/v4");
        assert_eq!(
            api_base("https://gitlab.example/api/v4"),
            "https://gitlab.example/api/v4"
        );
    }

    #[test]
    fn finished_states() {
        let p = |s: &str| Pipeline {
            id: 1,
            status: s.into(),
            web_url: None,
            sha: None,
        };
        assert_eq!(p("success").finished(), Some(Finished::Success));
        for s in ["failed", "canceled", "skipped", "manual"] {
            assert_eq!(p(s).finished(), Some(Finished::NotSuccess), "{s}");
        }
        for s in [
            "created",
            "pending",
            "running",
            "waiting_for_resource",
            "preparing",
            "scheduled",
        ] {
            assert_eq!(p(s).finished(), None, "{s}");
        }
    }

    #[test]
    fn messages_and_debug_hide_the_token() {
        assert_eq!(
            message(r#"{"message":{"base":["Reference not found"]}}"#),
            r#"{"base":["Reference not found"]}"#
        );
        assert_eq!(message("plain"), "plain");
        let t = Trigger::new(
            "http://x/api/v4",
            "g/p",
            Secret::new("glptt-s3cr3t"),
            None,
            Retry::STATUS,
        )
        .unwrap();
        assert!(!format!("{t:?}").contains("s3cr3t"));
        assert_eq!(
            t.scrub("echo glptt-s3cr3t"),
            format!("echo {}", Secret::new("x").scrub("x"))
        );
    }
}
