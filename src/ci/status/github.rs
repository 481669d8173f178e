//! GitHub commit statuses (`POST /repos/{owner}/{repo}/statuses/{sha}`) through octocrab.
//!
//! octocrab runs on the crate's reqwest client (its `reqwest` feature), so it brings no TLS
//! stack of its own. The raw `_post` is used rather than the typed builder so that the
//! rate-limit headers (`Retry-After`, `x-ratelimit-*`) can drive the retries.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use octocrab::Octocrab;
use reqwest::header::{ACCEPT, HeaderName};
use serde::Serialize;

use super::{
    Answer, Status, StatusError, StatusOptions, StatusReporter, Verdict, block_on, chain, check_sha, truncate_chars,
    with_retries,
};
use crate::net::retry::{self, Retry};
use crate::net::{Secret, runtime};

/// GitHub's limit on a status description, in characters.
pub const DESCRIPTION_MAX: usize = 140;

/// Where GitHub statuses go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubTarget {
    /// REST API base, e.g. `https://api.github.com` or `https://HOST/api/v3` (GHES).
    pub api_url: String,
    /// `OWNER/REPO`.
    pub repository: String,
    /// Commit to post on.
    pub sha: String,
    /// Default link of the statuses (the CI run), if any.
    pub target_url: Option<String>,
}

/// Posts commit statuses to one commit of a GitHub repository.
pub struct GitHubReporter {
    target: GitHubTarget,
    owner: String,
    repo: String,
    token: Secret,
    retry: Retry,
    crab: Octocrab,
}

impl fmt::Debug for GitHubReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubReporter")
            .field("target", &self.target)
            .field("token", &self.token)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Body<'a> {
    state: &'static str,
    context: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_url: Option<&'a str>,
}

impl GitHubReporter {
    /// A reporter for `target`, authenticating with `token` (sent as a Bearer header, to
    /// the API host only).
    pub fn new(target: GitHubTarget, token: Secret, opts: &StatusOptions) -> anyhow::Result<GitHubReporter> {
        let (owner, repo) = split_repository(&target.repository)?;
        let (owner, repo) = (owner.to_string(), repo.to_string());
        check_sha(&target.sha).context("GitHub commit status")?;
        opts.retry.validate().context("GitHub commit status")?;
        let http = reqwest::Client::builder()
            .timeout(opts.request_timeout())
            .build()
            .context("setting up the HTTP client for GitHub")?;
        let api_url = target.api_url.clone();
        // Octocrab's service stack spawns a worker task: build it inside the runtime.
        let crab = runtime::block_on(async {
            Octocrab::builder()
                .base_uri(api_url.as_str())?
                .personal_token(token.expose().to_string())
                .add_header(ACCEPT, "application/vnd.github+json".to_string())
                .add_header(
                    HeaderName::from_static("x-github-api-version"),
                    "2022-11-28".to_string(),
                )
                .build_with_reqwest(http)
        })?
        .map_err(|e| anyhow::anyhow!(chain(&e, &token)))
        .with_context(|| format!("setting up the GitHub client for {}", target.api_url))?;
        Ok(GitHubReporter {
            target,
            owner,
            repo,
            token,
            retry: opts.retry,
            crab,
        })
    }

    /// One request; `Err` is a transport error (scrubbed).
    fn attempt(&self, route: &str, body: &Body<'_>) -> Result<Verdict, String> {
        let answer = match block_on(|| self.destination(), async {
            let resp = self.crab._post(route, Some(body)).await?;
            let code = resp.status().as_u16();
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let retry_after = retry::retry_after(resp.headers());
            let remaining = header("x-ratelimit-remaining");
            let reset = header("x-ratelimit-reset");
            let text = self.crab.body_to_string(resp).await?;
            Ok::<_, octocrab::Error>((code, retry_after, remaining, reset, text))
        }) {
            Ok(answer) => answer.map_err(|e| chain(&e, &self.token))?,
            Err(not_sent) => return Ok(Verdict::Fail(not_sent)),
        };
        let (code, retry_after, remaining, reset, text) = answer;
        let answer = Answer {
            code,
            retry_after: retry_after.or_else(|| {
                // Primary rate limit spent: wait until it resets.
                (remaining.as_deref() == Some("0"))
                    .then(|| reset_in(reset.as_deref()))
                    .flatten()
            }),
            body: self.token.scrub(&text),
        };
        Ok(self.judge(&answer, remaining.as_deref() == Some("0")))
    }

    fn judge(&self, a: &Answer, limit_spent: bool) -> Verdict {
        let destination = self.destination();
        let message = a.message();
        let rate_limited = a.code == 429
            || (a.code == 403
                && (limit_spent || a.retry_after.is_some() || message.to_ascii_lowercase().contains("rate limit")));
        match a.code {
            200..=299 => Verdict::Done,
            _ if rate_limited || reqwest::StatusCode::from_u16(a.code).is_ok_and(retry::retryable_status) => {
                Verdict::Retry {
                    hint: a.retry_after,
                    reason: format!("GitHub answered {}: {message}", a.code),
                }
            }
            401 => Verdict::Fail(StatusError::Permission {
                service: "GitHub",
                destination,
                code: 401,
                hint: "the token is invalid or expired; GITHUB_TOKEN (or --token-env) must hold a \
                       token with the `statuses: write` permission"
                    .into(),
                message,
            }),
            403 => Verdict::Fail(StatusError::Permission {
                service: "GitHub",
                destination,
                code: 403,
                hint: format!(
                    "the token lacks the `statuses: write` permission on {} (workflow: \
                     `permissions: {{ statuses: write }}`; fine-grained token: \"Commit statuses\" \
                     read and write; classic token: `repo:status` scope)",
                    self.target.repository
                ),
                message,
            }),
            404 => Verdict::Fail(StatusError::Permission {
                service: "GitHub",
                destination,
                code: 404,
                hint: format!(
                    "repository {} or commit {} not found, or the token cannot see the \
                     repository (it needs access to it with the `statuses: write` permission)",
                    self.target.repository, self.target.sha
                ),
                message,
            }),
            code => Verdict::Fail(StatusError::Rejected {
                service: "GitHub",
                destination,
                code,
                message,
            }),
        }
    }
}

impl StatusReporter for GitHubReporter {
    fn destination(&self) -> String {
        format!("GitHub {}@{}", self.target.repository, short(&self.target.sha))
    }

    fn default_target_url(&self) -> Option<&str> {
        self.target.target_url.as_deref()
    }

    fn post(&self, status: &Status) -> Result<(), StatusError> {
        let route = format!("/repos/{}/{}/statuses/{}", self.owner, self.repo, self.target.sha);
        let body = Body {
            state: status.state.github(),
            context: &status.context,
            description: status
                .description
                .as_deref()
                .map(|d| truncate_chars(d, DESCRIPTION_MAX)),
            target_url: status.target_url.as_deref().or(self.target.target_url.as_deref()),
        };
        with_retries(&self.retry, &self.destination(), || self.attempt(&route, &body))
    }
}

/// `OWNER/REPO` split and checked against GitHub's name rules (letters, digits, `-`, `_`, `.`).
fn split_repository(repository: &str) -> anyhow::Result<(&str, &str)> {
    let ok = |s: &str| {
        !s.is_empty() && s != "." && s != ".." && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match repository.split_once('/') {
        Some((owner, repo)) if ok(owner) && ok(repo) => Ok((owner, repo)),
        _ => bail!("{repository:?} is not a GitHub repository name of the form OWNER/REPO"),
    }
}

/// Time until an `x-ratelimit-reset` epoch second, at least one second.
fn reset_in(reset: Option<&str>) -> Option<Duration> {
    let reset: u64 = reset?.trim().parse().ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_are_checked() {
        assert_eq!(split_repository("o/r.js").unwrap(), ("o", "r.js"));
        for bad in ["o", "o/", "/r", "o/r/x", "o/..", "o r/x"] {
            assert!(split_repository(bad).is_err(), "{bad}");
        }
    }
}
