//! Registry credentials and the authentication flows: anonymous, Basic, and Bearer tokens
//! obtained from the `WWW-Authenticate` challenge (realm, service, scope), cached per scope.
//!
//! Credentials are looked up in this order (the first source that has an entry wins):
//!
//! 1. `$REGISTRY_AUTH_FILE` (podman's `auth.json`), then `$DOCKER_CONFIG/config.json` or
//!    `~/.docker/config.json`: the `auths` entry for the host, either `auth`
//!    (base64 `user:password`) or `username` + `password`. Keys may carry a scheme
//!    (`https://host/v1/`) or a repository path (`host/team`, podman style: the longest
//!    matching key wins). The explicitly named `REGISTRY_AUTH_FILE` goes first because
//!    setting it is a deliberate choice, as in podman.
//!    When a file has no usable `auths` entry for the host, its credential helper runs:
//!    `credHelpers[host]`, else `credsStore` (`docker-credential-<name> get`, see
//!    [`super::cred_helper`]), as docker and podman do. `identitytoken` is not used.
//! 2. `STACKCI_REGISTRY_USERNAME` + `STACKCI_REGISTRY_PASSWORD`.
//! 3. CI defaults: `CI_REGISTRY_USER` + `CI_REGISTRY_PASSWORD` when the host equals
//!    `CI_REGISTRY` (GitLab), and `GITHUB_TOKEN` for `ghcr.io` (user `GITHUB_ACTOR`,
//!    else `x-access-token`).
//!
//! Without credentials requests go out anonymously. Passwords and tokens live in
//! [`Secret`], which never prints its value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};

use super::error::RegistryError;
use super::reference::{Registry, Scheme};
use super::transport;
use crate::env_vars::{
    CI_REGISTRY, CI_REGISTRY_PASSWORD, CI_REGISTRY_USER, DOCKER_CONFIG, GITHUB_ACTOR, GITHUB_TOKEN, HOME, PATH,
    REGISTRY_AUTH_FILE, STACKCI_CREDENTIAL_HELPER_TIMEOUT, STACKCI_REGISTRY_PASSWORD, STACKCI_REGISTRY_USERNAME,
};
use crate::net::{Retry, Secret};

/// A user name and password (or token) for one registry, and where they were found.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user name (not secret; errors name it).
    pub username: String,
    /// The password or token.
    pub password: Secret,
    /// Where they came from, for messages (a file path or variable names).
    pub origin: String,
}

impl Credentials {
    /// The `Authorization: Basic ...` value.
    fn basic_header(&self) -> HeaderValue {
        let raw = format!("{}:{}", self.username, self.password.expose());
        let mut value = HeaderValue::from_str(&format!("Basic {}", data_encoding::BASE64.encode(raw.as_bytes())))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
        value.set_sensitive(true);
        value
    }
}

/// Looks up credentials for `host` (`host[:port]`) and `repository`, reading environment
/// variables through `env` (pass [`crate::env_vars::var`] for the process environment).
/// Returns `None` when no source has any; fails on an unreadable or malformed config file.
pub fn lookup_credentials(
    host: &str,
    repository: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Credentials>> {
    let mut files = Vec::new();
    if let Some(file) = env(REGISTRY_AUTH_FILE).filter(|f| !f.is_empty()) {
        files.push(PathBuf::from(file));
    }
    if let Some(dir) = env(DOCKER_CONFIG).filter(|d| !d.is_empty()) {
        files.push(Path::new(&dir).join("config.json"));
    } else if let Some(home) = env(HOME).filter(|h| !h.is_empty()) {
        files.push(Path::new(&home).join(".docker/config.json"));
    }
    for file in &files {
        if let Some(creds) = from_config_file(file, host, repository, env)? {
            return Ok(Some(creds));
        }
    }
    match (
        env(STACKCI_REGISTRY_USERNAME).filter(|v| !v.is_empty()),
        env(STACKCI_REGISTRY_PASSWORD).filter(|v| !v.is_empty()),
    ) {
        (Some(username), Some(password)) => {
            return Ok(Some(Credentials {
                username,
                password: Secret::new(password),
                origin: format!("{STACKCI_REGISTRY_USERNAME}/{STACKCI_REGISTRY_PASSWORD}"),
            }));
        }
        (Some(_), None) => bail!("{STACKCI_REGISTRY_USERNAME} is set but {STACKCI_REGISTRY_PASSWORD} is not"),
        (None, Some(_)) => bail!("{STACKCI_REGISTRY_PASSWORD} is set but {STACKCI_REGISTRY_USERNAME} is not"),
        (None, None) => {}
    }
    if let Some(ci_host) = env(CI_REGISTRY)
        && ci_host.eq_ignore_ascii_case(host)
        && let (Some(username), Some(password)) = (env(CI_REGISTRY_USER), env(CI_REGISTRY_PASSWORD))
    {
        return Ok(Some(Credentials {
            username,
            password: Secret::new(password),
            origin: format!("{CI_REGISTRY_USER}/{CI_REGISTRY_PASSWORD}"),
        }));
    }
    if host == "ghcr.io"
        && let Some(token) = env(GITHUB_TOKEN).filter(|t| !t.is_empty())
    {
        let username = env(GITHUB_ACTOR)
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "x-access-token".into());
        return Ok(Some(Credentials {
            username,
            password: Secret::new(token),
            origin: GITHUB_TOKEN.into(),
        }));
    }
    Ok(None)
}

/// Reads the `auths` entry for `host`/`repository` from a docker `config.json` or podman
/// `auth.json`, else asks the file's credential helper; `None` when the file, a usable
/// entry and a helper are missing or the helper has nothing for the host.
fn from_config_file(
    file: &Path,
    host: &str,
    repository: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Credentials>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read registry credentials file {}", file.display())),
    };
    let config: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("registry credentials file {} is not valid JSON", file.display()))?;
    if let Some(creds) = from_auths(&config, file, host, repository)? {
        return Ok(Some(creds));
    }
    let aliases = host_aliases(host);
    let helper = config
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|helpers| {
            helpers.iter().find_map(|(key, name)| {
                let key = normalize_auth_key(key);
                (key == host || aliases.contains(&key.as_str()))
                    .then(|| name.as_str())
                    .flatten()
            })
        })
        .or_else(|| config.get("credsStore").and_then(|s| s.as_str()))
        .filter(|name| !name.is_empty());
    let Some(helper) = helper else { return Ok(None) };
    let timeout = match env(STACKCI_CREDENTIAL_HELPER_TIMEOUT) {
        Some(secs) => Duration::from_secs_f64(secs.parse::<f64>().ok().filter(|s| *s > 0.0).with_context(|| {
            format!("{STACKCI_CREDENTIAL_HELPER_TIMEOUT}=`{secs}` is not a positive number of seconds")
        })?),
        None => super::cred_helper::DEFAULT_TIMEOUT,
    };
    super::cred_helper::get(
        helper,
        &super::cred_helper::server_url(host),
        env(PATH).as_deref(),
        timeout,
        &file.display().to_string(),
    )
}

/// The other names of `host` in credential files (Docker Hub has three).
fn host_aliases(host: &str) -> &'static [&'static str] {
    if super::reference::is_docker_hub(host) {
        &super::reference::DOCKER_HUB_ALIASES
    } else {
        &[]
    }
}

/// The usable `auths` entry of a parsed credentials file for `host`/`repository`.
fn from_auths(config: &serde_json::Value, file: &Path, host: &str, repository: &str) -> Result<Option<Credentials>> {
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let wanted = format!("{host}/{repository}");
    let aliases = host_aliases(host);
    let mut best: Option<(usize, &serde_json::Value)> = None;
    for (key, entry) in auths {
        let key = normalize_auth_key(key);
        let matches = key == host
            || aliases.contains(&key.as_str())
            || (wanted.starts_with(&key) && wanted.as_bytes().get(key.len()) == Some(&b'/'))
            || key == wanted;
        if matches && best.is_none_or(|(len, _)| key.len() > len) {
            best = Some((key.len(), entry));
        }
    }
    let Some((_, entry)) = best else { return Ok(None) };
    let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
    let origin = file.display().to_string();
    if let Some(auth) = field("auth") {
        let decoded = data_encoding::BASE64
            .decode(auth.as_bytes())
            .or_else(|_| data_encoding::BASE64_NOPAD.decode(auth.as_bytes()))
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok());
        let Some((username, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            bail!("the `auth` entry for {host} in {origin} is not base64 of `user:password`");
        };
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: Secret::new(password),
            origin,
        }));
    }
    if let (Some(username), Some(password)) = (field("username"), field("password")) {
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: Secret::new(password),
            origin,
        }));
    }
    Ok(None)
}

/// `https://host/v1/` → `host`; `host/team/repo` stays.
fn normalize_auth_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.trim_end_matches('/');
    let key = key
        .strip_suffix("/v1")
        .or_else(|| key.strip_suffix("/v2"))
        .unwrap_or(key);
    key.to_ascii_lowercase()
}

/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="..."`: send the user name and password on every request.
    Basic,
    /// `Bearer realm=...,service=...,scope=...`: get a token from `realm`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter to pass back.
        service: Option<String>,
        /// The scope the registry asked for, if any.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value; prefers Bearer when several challenges are offered.
/// `None` when no Basic or Bearer challenge is in it.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let mut found = Vec::new();
    for (scheme, params) in parse_auth_params(value) {
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("bearer") {
            if let Some(realm) = get("realm") {
                found.push(Challenge::Bearer {
                    realm,
                    service: get("service"),
                    scope: get("scope"),
                });
            }
        } else if scheme.eq_ignore_ascii_case("basic") {
            found.push(Challenge::Basic);
        }
    }
    found
        .iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or(found.first())
        .cloned()
}

/// Splits `Scheme k=v, k="v,w", Other k=v` into schemes with their parameters.
fn parse_auth_params(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    let skip = |i: &mut usize, pred: &dyn Fn(char) -> bool| {
        while *i < chars.len() && pred(chars[*i]) {
            *i += 1;
        }
    };
    while i < chars.len() {
        skip(&mut i, &|c| c == ' ' || c == ',' || c == '\t');
        let start = i;
        skip(&mut i, &|c| !matches!(c, ' ' | ',' | '=' | '\t'));
        let word: String = chars[start..i].iter().collect();
        if word.is_empty() {
            break;
        }
        skip(&mut i, &|c| c == ' ' || c == '\t');
        if i < chars.len() && chars[i] == '=' && !out.is_empty() {
            // A parameter of the current scheme.
            i += 1;
            skip(&mut i, &|c| c == ' ' || c == '\t');
            let mut val = String::new();
            if i < chars.len() && chars[i] == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    val.push(chars[i]);
                    i += 1;
                }
                i += 1;
            } else {
                let s = i;
                skip(&mut i, &|c| c != ',');
                val = chars[s..i].iter().collect::<String>().trim().to_string();
            }
            if let Some(last) = out.last_mut() {
                last.1.push((word, val));
            }
        } else {
            out.push((word, Vec::new()));
        }
    }
    out
}

/// The access a request needs, as token scopes (`repository:NAME:pull,push`), kept sorted
/// so the same access always hits the same cached token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(Vec<String>);

impl Scope {
    /// No repository access (`GET /v2/`).
    pub fn none() -> Scope {
        Scope(Vec::new())
    }

    /// Read access to `repository`.
    pub fn pull(repository: &str) -> Scope {
        Scope(vec![format!("repository:{repository}:pull")])
    }

    /// Read and write access to `repository`.
    pub fn push(repository: &str) -> Scope {
        Scope(vec![format!("repository:{repository}:pull,push")])
    }

    /// Read and delete access to `repository` (token servers grant `delete` separately).
    pub fn delete(repository: &str) -> Scope {
        Scope(vec![format!("repository:{repository}:delete,pull")])
    }

    /// Adds read access to another repository (the source of a cross-repository mount).
    pub fn and_pull(mut self, repository: &str) -> Scope {
        self.0.push(format!("repository:{repository}:pull"));
        self.0.sort();
        self.0.dedup();
        self
    }

    /// The scopes, each sent as one `scope=` parameter.
    pub fn items(&self) -> &[String] {
        &self.0
    }

    fn key(&self) -> String {
        self.0.join(" ")
    }
}

/// Whether the scopes `ours` already grant what `asked` (`type:name:actions`) asks for.
fn covered(ours: &[String], asked: &str) -> bool {
    let Some((resource, actions)) = asked.rsplit_once(':') else {
        return false;
    };
    ours.iter().any(|o| {
        o.rsplit_once(':').is_some_and(|(res, acts)| {
            let have: Vec<&str> = acts.split(',').collect();
            res == resource && (have.contains(&"*") || actions.split(',').all(|a| have.contains(&a)))
        })
    })
}

/// A bearer token and when to stop using it.
struct Token {
    value: Secret,
    expires: Instant,
}

/// The body of a token endpoint's answer (`token` or OAuth2 `access_token`).
#[derive(serde::Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Parses a token endpoint answer into the token and its lifetime (at least 60 s, as the
/// distribution token spec says).
fn parse_token_response(body: &[u8]) -> Result<(Secret, Duration)> {
    let parsed: TokenResponse =
        serde_json::from_slice(body).context("token endpoint answered something that is not JSON")?;
    let token = parsed
        .token
        .or(parsed.access_token)
        .filter(|t| !t.is_empty())
        .context("token endpoint answered without a token")?;
    Ok((
        Secret::new(token),
        Duration::from_secs(parsed.expires_in.unwrap_or(60).max(60)),
    ))
}

/// Authentication state for one registry: its credentials, the challenge it answered with,
/// and bearer tokens cached per scope.
pub(crate) struct Authenticator {
    registry: Registry,
    credentials: Option<Credentials>,
    /// The last challenge (for Bearer: realm and service; the scope is per request).
    challenge: RwLock<Option<Challenge>>,
    /// Scopes a challenge asked for beyond the request's own, by request scope key.
    extra_scopes: std::sync::Mutex<HashMap<String, String>>,
    tokens: tokio::sync::Mutex<HashMap<String, Token>>,
}

impl Authenticator {
    /// Starts anonymous: nothing is sent until the registry asks for it with a 401.
    pub(crate) fn new(registry: Registry, credentials: Option<Credentials>) -> Self {
        Authenticator {
            registry,
            credentials,
            challenge: RwLock::new(None),
            extra_scopes: std::sync::Mutex::new(HashMap::new()),
            tokens: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The user name in use, for messages.
    pub(crate) fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.username.as_str())
    }

    fn current_challenge(&self) -> Option<Challenge> {
        self.challenge.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The `Authorization` header for a request needing `scope`, fetching a bearer token
    /// when the registry uses them and none is cached. `None` while anonymous.
    pub(crate) async fn authorization(
        &self,
        http: &reqwest::Client,
        retry: &Retry,
        scope: &Scope,
    ) -> Result<Option<HeaderValue>> {
        match self.current_challenge() {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials.as_ref().map(Credentials::basic_header)),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let mut tokens = self.tokens.lock().await;
                let key = scope.key();
                if let Some(token) = tokens.get(&key)
                    && token.expires > Instant::now()
                {
                    return Ok(Some(bearer_header(&token.value)));
                }
                let mut wanted = scope.items().to_vec();
                if let Some(extra) = self.extra_scopes.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
                    wanted.push(extra.clone());
                }
                let (value, lifetime) = self
                    .fetch_token(http, retry, &realm, service.as_deref(), &wanted)
                    .await?;
                let header = bearer_header(&value);
                // Renew a little early so a token never expires in flight.
                let expires = Instant::now() + lifetime.saturating_sub(Duration::from_secs(10));
                tokens.insert(key, Token { value, expires });
                Ok(Some(header))
            }
        }
    }

    /// Handles a 401 to a request that carried `sent` (its `Authorization`, if any): learns
    /// the challenge and drops the refused token so the next attempt authenticates afresh.
    /// Fails when retrying cannot help: Basic without credentials, Basic credentials
    /// refused, or `already_retried` (fresh authentication was refused too).
    pub(crate) async fn unauthorized(
        &self,
        headers: &HeaderMap,
        scope: &Scope,
        sent: Option<&HeaderValue>,
        already_retried: bool,
    ) -> Result<()> {
        let challenge = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            .reduce(|a, b| if matches!(a, Challenge::Bearer { .. }) { a } else { b });
        match challenge {
            None => Err(self.failure().into()),
            Some(_) if already_retried => Err(self.failure().into()),
            Some(Challenge::Basic) if self.credentials.is_none() || sent.is_some() => Err(self.failure().into()),
            Some(Challenge::Basic) => {
                *self.challenge.write().unwrap_or_else(|e| e.into_inner()) = Some(Challenge::Basic);
                Ok(())
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked,
            }) => {
                let key = scope.key();
                if let Some(asked) = asked.filter(|a| !covered(scope.items(), a)) {
                    self.extra_scopes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key.clone(), asked);
                }
                *self.challenge.write().unwrap_or_else(|e| e.into_inner()) = Some(Challenge::Bearer {
                    realm,
                    service,
                    scope: None,
                });
                let mut tokens = self.tokens.lock().await;
                // Drop the token only if it is the one refused (another task may have renewed it).
                if let (Some(sent), Some(token)) = (sent, tokens.get(&key))
                    && bearer_header(&token.value) == sent
                {
                    tokens.remove(&key);
                }
                Ok(())
            }
        }
    }

    /// The error for refused authentication: names the registry and the user, never the secret.
    pub(crate) fn failure(&self) -> RegistryError {
        match &self.credentials {
            Some(c) => RegistryError::AuthFailed {
                registry: self.registry.host.clone(),
                user: c.username.clone(),
                origin: c.origin.clone(),
            },
            None => RegistryError::AuthRequired {
                registry: self.registry.host.clone(),
            },
        }
    }

    /// Asks the token endpoint for `scopes` (GET `realm?service=..&scope=..`), with Basic
    /// credentials when there are any.
    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        retry: &Retry,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<(Secret, Duration)> {
        let mut url =
            Url::parse(realm).with_context(|| format!("{} sent a bad token realm `{realm}`", self.registry.host))?;
        if self.credentials.is_some() && self.registry.scheme == Scheme::Https && url.scheme() != "https" {
            bail!(
                "{} asks for credentials to be sent to {realm} over plain HTTP; refusing",
                self.registry.host
            );
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            for scope in scopes {
                query.append_pair("scope", scope);
            }
        }
        let basic = self.credentials.as_ref().map(Credentials::basic_header);
        let response = transport::send_retrying(retry, &url, || {
            let mut req = http.get(url.clone());
            if let Some(basic) = &basic {
                req = req.header(AUTHORIZATION, basic.clone());
            }
            req
        })
        .await
        .with_context(|| {
            format!(
                "cannot get a token for {} from {}",
                self.registry.host,
                transport::display_url(&url)
            )
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(self.failure().into());
        }
        if !status.is_success() {
            bail!(
                "token endpoint {} answered {status} for {}",
                transport::display_url(&url),
                self.registry.host
            );
        }
        let body = transport::read_limited(response, 1 << 20).await?;
        parse_token_response(&body)
            .with_context(|| format!("bad answer from token endpoint {}", transport::display_url(&url)))
    }
}

fn bearer_header(token: &Secret) -> HeaderValue {
    token
        .header("Bearer ")
        .unwrap_or_else(|| HeaderValue::from_static("Bearer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env_of(map: BTreeMap<&'static str, String>) -> impl Fn(&str) -> Option<String> {
        move |k| map.get(k).cloned()
    }

    #[test]
    fn credentials_never_print_the_password() {
        let s = Secret::new("hunter2");
        let c = Credentials {
            username: "u".into(),
            password: s,
            origin: "x".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", c.basic_header()).contains(&data_encoding::BASE64.encode(b"u:hunter2")));
    }

    #[test]
    fn docker_config_auth_and_username_fields() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".docker")).unwrap();
        let b64 = data_encoding::BASE64.encode(b"alice:pa:ss");
        std::fs::write(
            dir.path().join(".docker/config.json"),
            format!(
                r#"{{"auths":{{"https://reg.example:5000/v1/":{{"auth":"{b64}"}},"other.example":{{"username":"bob","password":"pw"}},"other.example/team":{{"username":"carol","password":"pw2"}},"helper.example":{{}}}}}}"#
            ),
        )
        .unwrap();
        let env = env_of(BTreeMap::from([("HOME", dir.path().display().to_string())]));
        let c = lookup_credentials("reg.example:5000", "x", &env).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("alice", "pa:ss"));
        assert!(c.origin.ends_with(".docker/config.json"));
        let c = lookup_credentials("other.example", "lib/x", &env).unwrap().unwrap();
        assert_eq!(c.username, "bob");
        let c = lookup_credentials("other.example", "team/x", &env).unwrap().unwrap();
        assert_eq!(c.username, "carol", "longest (repository) key wins");
        assert!(
            lookup_credentials("other.example", "teamx/y", &env)
                .unwrap()
                .unwrap()
                .username
                == "bob"
        );
        assert!(
            lookup_credentials("helper.example", "x", &env).unwrap().is_none(),
            "entries without credentials are skipped"
        );
        assert!(
            lookup_credentials("reg.example", "x", &env).unwrap().is_none(),
            "port is part of the host"
        );
    }

    #[test]
    fn lookup_order_auth_file_docker_config_env_ci() {
        let dir = tempfile::tempdir().unwrap();
        let auth_file = dir.path().join("auth.json");
        std::fs::write(
            &auth_file,
            r#"{"auths":{"h.example":{"username":"podman","password":"p"}}}"#,
        )
        .unwrap();
        let docker = dir.path().join("docker");
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::write(docker.join("config.json"), r#"{"auths":{"h.example":{"username":"docker","password":"p"},"d.example":{"username":"docker","password":"p"}}}"#).unwrap();
        let mut vars = BTreeMap::from([
            ("REGISTRY_AUTH_FILE", auth_file.display().to_string()),
            ("DOCKER_CONFIG", docker.display().to_string()),
            ("STACKCI_REGISTRY_USERNAME", "envuser".to_string()),
            ("STACKCI_REGISTRY_PASSWORD", "envpass".to_string()),
            ("CI_REGISTRY", "gitlab.example:5050".to_string()),
            ("CI_REGISTRY_USER", "gitlab-ci-token".to_string()),
            ("CI_REGISTRY_PASSWORD", "cipass".to_string()),
            ("GITHUB_TOKEN", "ghtoken".to_string()),
        ]);
        let user = |vars: &BTreeMap<&'static str, String>, host: &str| {
            lookup_credentials(host, "r", &env_of(vars.clone()))
                .unwrap()
                .map(|c| (c.username, c.password.expose().to_string(), c.origin))
        };
        assert_eq!(user(&vars, "h.example").unwrap().0, "podman");
        assert_eq!(user(&vars, "d.example").unwrap().0, "docker");
        let e = user(&vars, "gitlab.example:5050").unwrap();
        assert_eq!((e.0.as_str(), e.1.as_str()), ("envuser", "envpass"));
        vars.remove("STACKCI_REGISTRY_USERNAME");
        vars.remove("STACKCI_REGISTRY_PASSWORD");
        assert_eq!(user(&vars, "gitlab.example:5050").unwrap().0, "gitlab-ci-token");
        assert!(
            user(&vars, "gitlab.example").is_none(),
            "CI_REGISTRY must match host and port"
        );
        assert_eq!(user(&vars, "ghcr.io").unwrap().0, "x-access-token");
        vars.insert("GITHUB_ACTOR", "octocat".into());
        let g = user(&vars, "ghcr.io").unwrap();
        assert_eq!(
            (g.0.as_str(), g.1.as_str(), g.2.as_str()),
            ("octocat", "ghtoken", "GITHUB_TOKEN")
        );
        assert!(user(&vars, "quay.io").is_none());
        vars.insert("STACKCI_REGISTRY_USERNAME", "only-user".into());
        let err = lookup_credentials("x", "r", &env_of(vars)).unwrap_err();
        assert!(err.to_string().contains("STACKCI_REGISTRY_PASSWORD is not"), "{err}");
    }

    #[test]
    fn malformed_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(&file, "{not json").unwrap();
        let env = env_of(BTreeMap::from([("DOCKER_CONFIG", dir.path().display().to_string())]));
        let err = lookup_credentials("h", "r", &env).unwrap_err();
        assert!(format!("{err}").contains(&file.display().to_string()), "{err}");
        std::fs::write(&file, r#"{"auths":{"h":{"auth":"!!!"}}}"#).unwrap();
        let err = lookup_credentials("h", "r", &env).unwrap_err();
        assert!(format!("{err}").contains("not base64"), "{err}");
    }

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="peers-registry""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("basic"), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(r#"Basic realm="x", Bearer realm=https://t/x, service = "s\"q""#),
            Some(Challenge::Bearer {
                realm: "https://t/x".into(),
                service: Some("s\"q".into()),
                scope: None
            })
        );
        assert_eq!(parse_challenge(r#"Negotiate abc"#), None);
        assert_eq!(parse_challenge(r#"Bearer service="no realm""#), None);
    }

    #[test]
    fn scopes_are_canonical() {
        let a = Scope::push("b").and_pull("a");
        let b = Scope::push("b").and_pull("a").and_pull("a");
        assert_eq!(a, b);
        assert_eq!(a.items(), ["repository:a:pull", "repository:b:pull,push"]);
        assert_eq!(Scope::pull("x").key(), "repository:x:pull");
    }

    #[test]
    fn challenge_scopes_already_covered() {
        let ours = Scope::push("a/b").and_pull("c");
        assert!(covered(ours.items(), "repository:a/b:pull"));
        assert!(covered(ours.items(), "repository:a/b:push,pull"));
        assert!(covered(ours.items(), "repository:c:pull"));
        assert!(!covered(ours.items(), "repository:c:push"));
        assert!(!covered(ours.items(), "registry:catalog:*"));
        assert!(covered(&["registry:catalog:*".to_string()], "registry:catalog:list"));
    }

    #[test]
    fn token_responses() {
        let (t, life) = parse_token_response(br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!((t.expose(), life), ("abc", Duration::from_secs(300)));
        let (t, life) = parse_token_response(br#"{"access_token":"xyz","expires_in":5}"#).unwrap();
        assert_eq!((t.expose(), life), ("xyz", Duration::from_secs(60)));
        assert!(parse_token_response(br#"{"token":""}"#).is_err());
        assert!(parse_token_response(b"<html>").is_err());
    }
}
