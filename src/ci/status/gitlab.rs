//! GitLab commit statuses (`POST /projects/:id/statuses/:sha`) through the REST API v4.
//!
//! Documented at <https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit>.
//! Posting a state the status is already in answers 400 "Cannot transition status ...";
//! that counts as success.

use std::fmt;

use anyhow::Context;
use serde::Serialize;

use super::{
    Answer, Status, StatusError, StatusOptions, StatusReporter, Verdict, block_on, chain, check_sha, truncate_chars,
    with_retries,
};
use crate::net::Secret;
use crate::net::retry::{self, Retry};

/// GitLab's limit on `description`, `target_url` and `ref`, in characters.
pub const FIELD_MAX: usize = 255;

/// Where GitLab statuses go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitLabTarget {
    /// REST API v4 base, e.g. `https://gitlab.com/api/v4`.
    pub api_url: String,
    /// Project id (or `group/project` path; it is URL-encoded).
    pub project_id: String,
    /// Commit to post on.
    pub sha: String,
    /// Pipeline to attach statuses to (`pipeline_id`); without it GitLab picks the latest
    /// pipeline of the commit or creates one.
    pub pipeline_id: Option<u64>,
    /// Default link of the statuses (the CI job), if any.
    pub target_url: Option<String>,
}

/// Posts commit statuses to one commit of a GitLab project.
pub struct GitLabReporter {
    target: GitLabTarget,
    url: String,
    token: Secret,
    retry: Retry,
    http: reqwest::Client,
}

impl fmt::Debug for GitLabReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitLabReporter")
            .field("target", &self.target)
            .field("token", &self.token)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Body<'a> {
    state: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pipeline_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

impl GitLabReporter {
    /// A reporter for `target`, authenticating with `token` in the `PRIVATE-TOKEN` header.
    pub fn new(target: GitLabTarget, token: Secret, opts: &StatusOptions) -> anyhow::Result<GitLabReporter> {
        check_sha(&target.sha).context("GitLab commit status")?;
        opts.retry.validate().context("GitLab commit status")?;
        let url = format!(
            "{}/projects/{}/statuses/{}",
            target.api_url.trim_end_matches('/'),
            encode_segment(&target.project_id),
            target.sha
        );
        reqwest::Url::parse(&url).with_context(|| format!("GitLab API URL {url} is not a valid URL"))?;
        let http = reqwest::Client::builder()
            .timeout(opts.request_timeout())
            .user_agent(concat!("stackci/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("setting up the HTTP client for GitLab")?;
        Ok(GitLabReporter {
            target,
            url,
            token,
            retry: opts.retry,
            http,
        })
    }

    /// One request; `Err` is a transport error (scrubbed).
    fn attempt(&self, body: &Body<'_>) -> Result<Verdict, String> {
        let secret = self
            .token
            .header("")
            .ok_or_else(|| "the GitLab token contains characters not allowed in a header".to_string())?;
        let answer = block_on(|| self.destination(), async {
            let resp = self
                .http
                .post(&self.url)
                .header("PRIVATE-TOKEN", secret)
                .json(body)
                .send()
                .await?;
            let code = resp.status().as_u16();
            let retry = retry::retry_after(resp.headers());
            let text = resp.text().await?;
            Ok::<_, reqwest::Error>((code, retry, text))
        });
        let (code, retry_after, text) = match answer {
            Ok(answer) => answer.map_err(|e| chain(&e, &self.token))?,
            Err(not_sent) => return Ok(Verdict::Fail(not_sent)),
        };
        let answer = Answer {
            code,
            retry_after,
            body: self.token.scrub(&text),
        };
        Ok(self.judge(&answer))
    }

    fn judge(&self, a: &Answer) -> Verdict {
        let destination = self.destination();
        let message = a.message();
        let project = &self.target.project_id;
        let role = "the token needs the `api` scope and its user at least the Developer role \
                    in the project (CI_JOB_TOKEN cannot post commit statuses)";
        match a.code {
            200..=299 => Verdict::Done,
            400 | 409 | 422 if already_in_state(&message) => Verdict::Done,
            code if reqwest::StatusCode::from_u16(code).is_ok_and(retry::retryable_status) => Verdict::Retry {
                hint: a.retry_after,
                reason: format!("GitLab answered {}: {message}", a.code),
            },
            401 => Verdict::Fail(StatusError::Permission {
                service: "GitLab",
                destination,
                code: 401,
                hint: format!(
                    "the token is invalid, expired or revoked; set STACKCI_GITLAB_TOKEN (or \
                     GITLAB_TOKEN, or --token-env) to a valid access token; {role}"
                ),
                message,
            }),
            403 => Verdict::Fail(StatusError::Permission {
                service: "GitLab",
                destination,
                code: 403,
                hint: format!("the token may not post commit statuses to project {project}: {role}"),
                message,
            }),
            404 => Verdict::Fail(StatusError::Permission {
                service: "GitLab",
                destination,
                code: 404,
                hint: format!(
                    "project {project} or commit {} not found, or the token cannot see the \
                     project; {role}",
                    self.target.sha
                ),
                message,
            }),
            code => Verdict::Fail(StatusError::Rejected {
                service: "GitLab",
                destination,
                code,
                message,
            }),
        }
    }
}

impl StatusReporter for GitLabReporter {
    fn destination(&self) -> String {
        format!(
            "GitLab project {}@{}",
            self.target.project_id,
            self.target.sha.get(..12).unwrap_or(&self.target.sha)
        )
    }

    fn default_target_url(&self) -> Option<&str> {
        self.target.target_url.as_deref()
    }

    fn post(&self, status: &Status) -> Result<(), StatusError> {
        let target_url = status
            .target_url
            .as_deref()
            .or(self.target.target_url.as_deref())
            .filter(|u| u.chars().count() <= FIELD_MAX);
        let body = Body {
            state: status.state.gitlab(),
            name: &status.context,
            pipeline_id: self.target.pipeline_id,
            target_url,
            description: status.description.as_deref().map(|d| truncate_chars(d, FIELD_MAX)),
        };
        with_retries(&self.retry, &self.destination(), || self.attempt(&body))
    }
}

/// GitLab's answer when the status already is in the requested state.
fn already_in_state(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("cannot transition status") || m.contains("already")
}

/// Percent-encodes a path segment (a project path `group/project` becomes `group%2Fproject`),
/// as GitLab's API takes a project's path in place of its id.
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_paths_are_encoded() {
        assert_eq!(encode_segment("17"), "17");
        assert_eq!(encode_segment("group/sub project"), "group%2Fsub%20project");
    }

    #[test]
    fn transition_answers_count_as_done() {
        assert!(already_in_state(
            "Cannot transition status via :run from :running (Reason(s): Status cannot transition via \"run\".)"
        ));
        assert!(!already_in_state("403 Forbidden"));
    }
}
