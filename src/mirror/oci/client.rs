//! The registry client: one per registry host, holding the HTTP client, the authentication
//! state and the options. Every request goes through [`Client::send`], which adds
//! credentials, retries transient failures and follows redirects.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, Response, StatusCode, Url};

use super::auth::{Authenticator, Credentials, Scope, lookup_credentials};
use super::error::{RegistryError, parse_error_body};
use super::reference::{Registry, Scheme};
use super::transport;
use crate::net::retry::{self, Retry};

/// Options of a registry client. Plain data; [`ClientOptions::default`] gives the values
/// documented on each field.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Extra CA certificate (PEM, may hold several) trusted besides the system roots;
    /// `--ca-cert`. `SSL_CERT_FILE`, when set, is trusted too. Default: none.
    pub ca_cert: Option<PathBuf>,
    /// Blob uploads run at once by [`Client::push_blobs`]; `-j`. Default: 8.
    pub jobs: usize,
    /// How requests are retried after a dropped connection, a timeout, 408, 429 or 5xx
    /// (and how often a broken download resumes). Default: [`Retry::HTTP`] (6 attempts,
    /// 200 ms doubling to at most 60 s).
    pub retry: Retry,
    /// Time allowed to open a connection (TCP + TLS). Default: 30 s.
    pub connect_timeout: Duration,
    /// Longest silence while reading an answer (not the whole transfer). Default: 300 s.
    pub read_timeout: Duration,
    /// The `User-Agent` header. Default: `stackci/<version>`.
    pub user_agent: String,
    /// Upload blobs in chunks of this many bytes (POST, PATCH..., PUT) instead of one
    /// streamed PUT; for registries behind proxies that cap request bodies. Default: none
    /// (one PUT; chunks of 8 MiB only as a fallback when the PUT is refused).
    pub chunk_size: Option<u64>,
    /// Credentials to use instead of looking them up (see [`super::auth`] for the lookup
    /// order). Default: none, so they are looked up from the environment.
    pub credentials: Option<Credentials>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            ca_cert: None,
            jobs: 8,
            retry: Retry::HTTP,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
            user_agent: concat!("stackci/", env!("CARGO_PKG_VERSION")).to_string(),
            chunk_size: None,
            credentials: None,
        }
    }
}

/// A request body that can be produced again for a retry.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// No body.
    Empty,
    /// Small in-memory bytes (a manifest).
    Bytes(Bytes),
    /// `len` bytes of a file from `offset`, streamed.
    File { path: PathBuf, offset: u64, len: u64 },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    fn to_reqwest(&self) -> reqwest::Body {
        match self {
            Body::Empty => reqwest::Body::from(Bytes::new()),
            Body::Bytes(b) => reqwest::Body::from(b.clone()),
            Body::File { path, offset, len } => transport::file_body(path, *offset, *len),
        }
    }
}

/// One API request, kept whole so it can be sent again (retry, new token, redirect).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Body,
    /// The access it needs, for bearer tokens.
    pub scope: Scope,
}

impl Request {
    /// A request without body.
    pub(crate) fn new(method: Method, url: Url, scope: Scope) -> Self {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: Body::Empty,
            scope,
        }
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: reqwest::header::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sets the body.
    pub(crate) fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
}

/// The outcome of one attempt: a response, or a network error with the URL that failed.
type Attempt = std::result::Result<Response, (reqwest::Error, Url)>;

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// A client for one registry (`host[:port]`). Async; [`super::RegistryMirror`] wraps it for
/// synchronous callers. Cheap to share by reference across tasks.
pub struct Client {
    pub(crate) registry: Registry,
    http: reqwest::Client,
    auth: Authenticator,
    retry: Retry,
    pub(crate) opts: ClientOptions,
}

impl Client {
    /// A client for `registry`. Credentials come from `opts.credentials`, else from the
    /// lookup in [`super::auth::lookup_credentials`] for `repository` (the process environment).
    pub fn new(registry: Registry, repository: &str, opts: &ClientOptions) -> Result<Client> {
        opts.retry.validate()?;
        let credentials = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => lookup_credentials(&registry.host, repository, &crate::env_vars::var)?,
        };
        Ok(Client {
            http: transport::build_http(opts)?,
            auth: Authenticator::new(registry.clone(), credentials),
            retry: opts.retry,
            registry,
            opts: opts.clone(),
        })
    }

    /// The registry this client talks to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Checks that the registry speaks the distribution API and accepts the credentials
    /// (`GET /v2/`).
    pub async fn ping(&self) -> Result<()> {
        let req = Request::new(Method::GET, self.registry.api_base(), Scope::none());
        let resp = self.send(&req).await?;
        self.expect(resp, &req, &[StatusCode::OK], "").await?;
        Ok(())
    }

    /// Sends `req`: adds the `Authorization` header for its scope, answers one 401 by
    /// (re)authenticating, retries transient failures with backoff, and follows redirects
    /// (credentials only to the registry's own origin). Returns the final response,
    /// whatever its status other than 401.
    pub(crate) async fn send(&self, req: &Request) -> Result<Response> {
        let mut tries = self.retry.start();
        let mut auth_retried = false;
        loop {
            let (outcome, sent) = self.send_following_redirects(req).await?;
            match outcome {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    self.auth
                        .unauthorized(resp.headers(), &req.scope, sent.as_ref(), auth_retried)
                        .await?;
                    auth_retried = true;
                }
                Ok(resp) if retry::retryable_status(resp.status()) => {
                    // Out of attempts, or asked to wait too long: the caller reports the status.
                    let Ok(pause) = tries.failed(retry::retry_after(resp.headers())) else {
                        return Ok(resp);
                    };
                    drop(resp);
                    tokio::time::sleep(pause).await;
                }
                Ok(resp) => return Ok(resp),
                Err((e, url)) if transport::transient(&e) => match tries.failed(None) {
                    Ok(pause) => tokio::time::sleep(pause).await,
                    Err(_) => return Err(transport::network_error(e, &url)),
                },
                Err((e, url)) => return Err(transport::network_error(e, &url)),
            }
        }
    }

    /// One attempt, following redirects. The outer `Result` is for failures that retrying
    /// cannot fix (authentication setup, a refused redirect); the inner one carries network
    /// errors with the URL that failed. Also returns the `Authorization` sent on the last hop.
    async fn send_following_redirects(&self, req: &Request) -> Result<(Attempt, Option<HeaderValue>)> {
        let origin = self.registry.api_base();
        let mut url = req.url.clone();
        let mut method = req.method.clone();
        let mut body = req.body.clone();
        for _ in 0..=MAX_REDIRECTS {
            let same_origin = url.origin() == origin.origin();
            let mut builder = self
                .http
                .request(method.clone(), url.clone())
                .headers(req.headers.clone());
            let sent = match same_origin {
                true => self.auth.authorization(&self.http, &self.retry, &req.scope).await?,
                false => None,
            };
            if let Some(auth) = &sent {
                builder = builder.header(AUTHORIZATION, auth.clone());
            }
            if !matches!(body, Body::Empty)
                || method == Method::PUT
                || method == Method::POST
                || method == Method::PATCH
            {
                builder = builder.header(CONTENT_LENGTH, body.len()).body(body.to_reqwest());
            }
            let resp = match builder.send().await {
                Ok(resp) => resp,
                Err(e) => return Ok((Err((e, url)), sent)),
            };
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok((Ok(resp), sent));
            }
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_string);
            let Some(location) = location else {
                return Ok((Ok(resp), sent));
            };
            let next = url.join(&location).map_err(|e| {
                anyhow::anyhow!(
                    "{} redirected to a bad URL `{location}`: {e}",
                    transport::display_url(&url)
                )
            })?;
            if next.scheme() != "https" && self.registry.scheme == Scheme::Https {
                anyhow::bail!(
                    "{} redirected to plain HTTP {}; refusing",
                    transport::display_url(&url),
                    transport::display_url(&next)
                );
            }
            if resp.status() == StatusCode::SEE_OTHER {
                method = Method::GET;
                body = Body::Empty;
            }
            url = next;
        }
        anyhow::bail!(
            "{} redirected more than {MAX_REDIRECTS} times",
            transport::display_url(&req.url)
        )
    }

    /// Sends `req`: its 200 answer, `None` for a 404, else the error [`Client::expect`] gives.
    pub(crate) async fn send_found(&self, req: &Request, repository: &str) -> Result<Option<Response>> {
        let resp = self.send(req).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.expect(resp, req, &[StatusCode::OK], repository).await.map(Some)
    }

    /// Returns `resp` when its status is one of `ok`, else the error a user understands:
    /// 403 denied, 404 unknown repository, or the registry's error code and message.
    pub(crate) async fn expect(
        &self,
        resp: Response,
        req: &Request,
        ok: &[StatusCode],
        repository: &str,
    ) -> Result<Response> {
        let status = resp.status();
        if ok.contains(&status) {
            return Ok(resp);
        }
        let body = if req.method == Method::HEAD {
            Vec::new()
        } else {
            transport::read_limited(resp, 64 * 1024).await.unwrap_or_default()
        };
        let (code, message) = parse_error_body(&body);
        let error = match (status, code.as_deref()) {
            (StatusCode::FORBIDDEN, _) => RegistryError::Denied {
                registry: self.registry.host.clone(),
                repository: repository.to_string(),
                user: self.auth.username().map(str::to_string),
            },
            (StatusCode::NOT_FOUND, Some("NAME_UNKNOWN")) => RegistryError::RepositoryNotFound {
                registry: self.registry.host.clone(),
                repository: repository.to_string(),
            },
            _ => RegistryError::Status {
                method: req.method.to_string(),
                url: transport::display_url(&req.url),
                status: status.as_u16(),
                code,
                message,
            },
        };
        Err(error.into())
    }

    /// An API URL `/v2/<repository>/<rest>`.
    pub(crate) fn url(&self, repository: &str, rest: &str) -> Url {
        self.registry.api_url(&format!("{repository}/{rest}"))
    }

    /// Opens `path` to check it exists and has `size` bytes before streaming it.
    pub(crate) fn check_file(path: &Path, size: u64) -> Result<()> {
        let meta =
            std::fs::metadata(path).map_err(|e| anyhow::anyhow!("cannot read blob file {}: {e}", path.display()))?;
        if meta.len() != size {
            anyhow::bail!("blob file {} has {} bytes, expected {size}", path.display(), meta.len());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Secret;

    fn client() -> Client {
        let registry = Registry {
            scheme: Scheme::Https,
            host: "reg.example:5000".into(),
        };
        let credentials = Credentials {
            username: "peer".into(),
            password: Secret::new("pw-canary"),
            origin: "test".into(),
        };
        Client::new(
            registry,
            "team/repo",
            &ClientOptions {
                credentials: Some(credentials),
                ..Default::default()
            },
        )
        .unwrap()
    }

    fn answer(status: u16, body: &str) -> Response {
        Response::from(http::Response::builder().status(status).body(body.to_string()).unwrap())
    }

    async fn error_of(client: &Client, status: u16, body: &str) -> RegistryError {
        let req = Request::new(
            Method::GET,
            client.url("team/repo", "blobs/x"),
            Scope::pull("team/repo"),
        );
        let err = client
            .expect(answer(status, body), &req, &[StatusCode::OK], "team/repo")
            .await
            .unwrap_err();
        err.downcast::<RegistryError>().unwrap()
    }

    #[test]
    fn unexpected_answers_become_errors_a_user_understands() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = client();
        rt.block_on(async {
            let e = error_of(&client, 403, "").await;
            assert_eq!(
                e.to_string(),
                "reg.example:5000 denied access to repository `team/repo` (user `peer`): the credentials lack pull/push permission"
            );
            let e = error_of(&client, 404, r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#).await;
            assert_eq!(e.to_string(), "repository `team/repo` not found on reg.example:5000");
            let e = error_of(&client, 400, r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#).await;
            assert_eq!(e.code(), Some("DIGEST_INVALID"));
            assert_eq!(
                e.to_string(),
                "GET https://reg.example:5000/v2/team/repo/blobs/x answered 400: DIGEST_INVALID: provided digest did not match uploaded content"
            );
            let e = error_of(&client, 502, "<html>bad gateway</html>").await;
            assert_eq!(e.status(), Some(502));
            assert!(e.to_string().ends_with("answered 502: <html>bad gateway</html>"), "{e}");
        });
        assert!(!format!("{:?}", client.opts).contains("pw-canary"));
    }
}
