//! HTTP plumbing: the reqwest client (TLS trust, timeouts, no automatic redirects),
//! retries with exponential backoff and jitter, request bodies streamed from files,
//! and turning network failures into errors that name the URL.

use std::error::Error as _;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::client::ClientOptions;
use super::error::RegistryError;

/// Size of the reads that feed a streamed upload; at most a few of these are in memory
/// per upload.
const FILE_CHUNK: usize = 256 * 1024;

/// Builds the HTTP client: system roots plus the CA files from `--ca-cert` and
/// `SSL_CERT_FILE`, connect and read timeouts, and redirects off (the client follows them
/// itself so credentials never go to another host).
pub(crate) fn build_http(opts: &ClientOptions) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(opts.user_agent.clone())
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(opts.connect_timeout)
        .read_timeout(opts.read_timeout)
        .pool_max_idle_per_host(opts.jobs.max(1));
    let env_ca = std::env::var_os("SSL_CERT_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let mut roots = Vec::new();
    for path in opts.ca_cert.iter().chain(env_ca.iter()) {
        let pem = std::fs::read(path).with_context(|| format!("cannot read CA certificate file {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} holds no valid PEM certificate", path.display()))?;
        if certs.is_empty() {
            anyhow::bail!("{} holds no PEM certificate", path.display());
        }
        roots.extend(certs);
    }
    if !roots.is_empty() {
        builder = builder.tls_certs_merge(roots);
    }
    builder.build().context("cannot set up the HTTP client")
}

/// When and how often to retry: exponential backoff from `base`, capped at `max`, with
/// jitter; a server's `Retry-After` wins (also capped at `max`).
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
}

impl RetryPolicy {
    /// The pause before retry number `attempt` (0-based): `Retry-After` when given, else
    /// `base * 2^attempt` capped at `max`, scaled by a random factor in [0.5, 1.0].
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max);
        }
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        exp.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Statuses worth retrying: request timeout, too many requests, and server errors except
/// "not implemented" and "HTTP version not supported".
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (relative to `now`).
pub(crate) fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether a failed request may succeed when repeated: dropped or refused connections and
/// timeouts, but never TLS trust failures.
pub(crate) fn transient(err: &reqwest::Error) -> bool {
    !is_tls(err) && (err.is_connect() || err.is_timeout() || err.is_request() || err.is_body())
}

/// Whether the failure comes from TLS (untrusted certificate, handshake).
fn is_tls(err: &reqwest::Error) -> bool {
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("tls handshake") || text.contains("invalidcontenttype") {
            return true;
        }
        source = e.source();
    }
    false
}

/// Turns a network failure into an error naming the URL (and `--ca-cert` for TLS trust).
pub(crate) fn network_error(err: reqwest::Error, url: &Url) -> anyhow::Error {
    let url = display_url(url);
    if is_tls(&err) {
        RegistryError::Tls { url, source: err }.into()
    } else if err.is_connect() {
        RegistryError::Connect { url, source: err }.into()
    } else {
        anyhow::Error::new(err).context(format!("request to {url} failed"))
    }
}

/// A URL for messages: without its query (upload URLs carry long opaque state).
pub(crate) fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

/// Sends the request `build` makes, rebuilding it for each retry of a transient failure or
/// retryable status; returns the last response (whatever its status) or the network error.
pub(crate) async fn send_retrying(
    retry: &RetryPolicy,
    url: &Url,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response> {
    let mut attempt = 0;
    loop {
        match build().send().await {
            Ok(resp) if retryable_status(resp.status()) && attempt < retry.retries => {
                let pause = retry.delay(attempt, parse_retry_after(resp.headers(), SystemTime::now()));
                drop(resp);
                tokio::time::sleep(pause).await;
            }
            Ok(resp) => return Ok(resp),
            Err(e) if transient(&e) && attempt < retry.retries => tokio::time::sleep(retry.delay(attempt, None)).await,
            Err(e) => return Err(network_error(e, url)),
        }
        attempt += 1;
    }
}

/// Reads a response body of at most `limit` bytes (manifests, token answers, error bodies).
pub(crate) async fn read_limited(response: reqwest::Response, limit: usize) -> Result<Vec<u8>> {
    let url = display_url(response.url());
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("reading the answer of {url} failed"))?;
        if body.len() + chunk.len() > limit {
            anyhow::bail!("the answer of {url} is larger than {limit} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request body of `len` bytes read from `path` starting at `offset`, in
/// [`FILE_CHUNK`]-sized pieces: the file is never held in memory.
pub(crate) fn file_body(path: &Path, offset: u64, len: u64) -> reqwest::Body {
    struct State {
        path: PathBuf,
        file: Option<tokio::fs::File>,
        offset: u64,
        remaining: u64,
    }
    let state = State {
        path: path.to_path_buf(),
        file: None,
        offset,
        remaining: len,
    };
    let stream = futures_util::stream::try_unfold(state, |mut st| async move {
        if st.remaining == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        if st.file.is_none() {
            let mut file = tokio::fs::File::open(&st.path)
                .await
                .map_err(|e| annotate(e, &st.path))?;
            file.seek(SeekFrom::Start(st.offset))
                .await
                .map_err(|e| annotate(e, &st.path))?;
            st.file = Some(file);
        }
        let want = st.remaining.min(FILE_CHUNK as u64) as usize;
        let mut buf = vec![0u8; want];
        let file = st.file.as_mut().ok_or_else(|| std::io::Error::other("file not open"))?;
        let n = file.read(&mut buf).await.map_err(|e| annotate(e, &st.path))?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{} ended {} bytes early", st.path.display(), st.remaining),
            ));
        }
        buf.truncate(n);
        st.remaining -= n as u64;
        Ok(Some((Bytes::from(buf), st)))
    });
    reqwest::Body::wrap_stream(stream)
}

fn annotate(err: std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = RetryPolicy {
            retries: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 0..40 {
            let d = p.delay(attempt, None);
            let full = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(20))
                .min(Duration::from_secs(1));
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
        assert_eq!(p.delay(0, Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(p.delay(3, Some(Duration::from_secs(500))), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(parse_retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&past).unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h, now), None);
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 201, 400, 401, 403, 404, 416, 501, 505] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn urls_in_messages_drop_query_and_userinfo() {
        let url = Url::parse("https://u:p@h:5000/v2/r/blobs/uploads/x?_state=secretish&digest=sha256:1").unwrap();
        assert_eq!(display_url(&url), "https://h:5000/v2/r/blobs/uploads/x");
    }
}
