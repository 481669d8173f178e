//! HTTP plumbing: the reqwest client (TLS trust, timeouts, no automatic redirects),
//! retries under the shared [`Retry`] policy, request bodies streamed from files, and
//! turning network failures into errors that name the URL.

use std::error::Error as _;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::client::ClientOptions;
use super::error::RegistryError;
use crate::net::retry::{self, Retry};

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
    let env_ca = crate::env_vars::var(crate::env_vars::SSL_CERT_FILE).map(PathBuf::from);
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
/// retryable status under `retry`; returns the last response (whatever its status) or the
/// network error.
pub(crate) async fn send_retrying(
    retry: &Retry,
    url: &Url,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response> {
    let mut tries = retry.start();
    loop {
        match build().send().await {
            Ok(resp) if retry::retryable_status(resp.status()) => {
                match tries.failed(retry::retry_after(resp.headers())) {
                    Ok(pause) => {
                        drop(resp);
                        tokio::time::sleep(pause).await;
                    }
                    Err(_) => return Ok(resp),
                }
            }
            Ok(resp) => return Ok(resp),
            Err(e) if transient(&e) => match tries.failed(None) {
                Ok(pause) => tokio::time::sleep(pause).await,
                Err(_) => return Err(network_error(e, url)),
            },
            Err(e) => return Err(network_error(e, url)),
        }
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

    #[test]
    fn urls_in_messages_drop_query_and_userinfo() {
        let url = Url::parse("https://u:p@h:5000/v2/r/blobs/uploads/x?_state=secretish&digest=sha256:1").unwrap();
        assert_eq!(display_url(&url), "https://h:5000/v2/r/blobs/uploads/x");
    }
}
