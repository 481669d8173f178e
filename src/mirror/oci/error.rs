//! Errors a user can act on: they name the registry, the repository or the URL, the user
//! for authentication failures (never a secret), and the option that fixes TLS trust.

/// A registry failure callers may match on (found as the root cause of an `anyhow::Error`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry (or its token endpoint) refused the credentials.
    #[error(
        "authentication to {registry} failed (user `{user}` from {origin}): check docker config / STACKCI_REGISTRY_*"
    )]
    AuthFailed {
        /// `host[:port]`.
        registry: String,
        /// The user name sent.
        user: String,
        /// Where the credentials came from.
        origin: String,
    },
    /// The registry wants credentials and none were found.
    #[error(
        "{registry} requires authentication and no credentials were found for it: run `docker login {registry}`, set REGISTRY_AUTH_FILE, or set STACKCI_REGISTRY_USERNAME and STACKCI_REGISTRY_PASSWORD"
    )]
    AuthRequired {
        /// `host[:port]`.
        registry: String,
    },
    /// Authenticated, but not allowed to do this (HTTP 403).
    #[error("{registry} denied access to repository `{repository}`{}: the credentials lack pull/push permission", user_suffix(.user))]
    Denied {
        /// `host[:port]`.
        registry: String,
        /// The repository.
        repository: String,
        /// The user, when credentials were sent.
        user: Option<String>,
    },
    /// The repository does not exist (`NAME_UNKNOWN`).
    #[error("repository `{repository}` not found on {registry}")]
    RepositoryNotFound {
        /// `host[:port]`.
        registry: String,
        /// The repository.
        repository: String,
    },
    /// The server's TLS certificate is not trusted (or the handshake failed).
    #[error(
        "TLS connection to {url} failed: if the registry uses a private CA, pass --ca-cert FILE or set SSL_CERT_FILE"
    )]
    Tls {
        /// The URL being fetched (without query).
        url: String,
        /// The TLS failure.
        #[source]
        source: reqwest::Error,
    },
    /// No connection could be made (refused, unreachable, DNS), after the retries.
    #[error("cannot connect to {url}")]
    Connect {
        /// The URL being fetched (without query).
        url: String,
        /// The network failure.
        #[source]
        source: reqwest::Error,
    },
    /// Any other unexpected HTTP answer.
    #[error("{method} {url} answered {status}{}", detail_suffix(.code, .message))]
    Status {
        /// HTTP method.
        method: String,
        /// The URL (without query).
        url: String,
        /// HTTP status code.
        status: u16,
        /// The first distribution error code in the body (`BLOB_UNKNOWN`, `MANIFEST_BLOB_UNKNOWN`, ...).
        code: Option<String>,
        /// The registry's message, if any.
        message: Option<String>,
    },
}

impl RegistryError {
    /// The distribution error code of a [`RegistryError::Status`], if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            RegistryError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status of a [`RegistryError::Status`], if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn user_suffix(user: &Option<String>) -> String {
    user.as_ref().map(|u| format!(" (user `{u}`)")).unwrap_or_default()
}

fn detail_suffix(code: &Option<String>, message: &Option<String>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!(": {c}: {m}"),
        (Some(c), None) => format!(": {c}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

/// The first `{code, message, detail}` of a distribution error body
/// (`{"errors":[{"code":"BLOB_UNKNOWN","message":"...","detail":...}]}`).
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
        detail: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Body>(body)
        .ok()
        .and_then(|b| b.errors.into_iter().next())
    {
        Some(e) => {
            let detail = e.detail.filter(|d| !d.is_null()).map(|d| match d {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
            let message = match (e.message, detail) {
                (Some(m), Some(d)) => Some(format!("{m} ({d})")),
                (m, d) => m.or(d),
            };
            (e.code, message)
        }
        None => {
            let text = String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(200)
                .collect::<String>();
            (None, (!text.is_empty()).then_some(text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let (code, msg) = parse_error_body(br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:ab"}]}"#);
        assert_eq!(code.as_deref(), Some("MANIFEST_BLOB_UNKNOWN"));
        assert_eq!(msg.as_deref(), Some("blob unknown to registry (sha256:ab)"));
        let (code, msg) = parse_error_body(b"  upstream down\n");
        assert_eq!((code, msg.as_deref()), (None, Some("upstream down")));
        assert_eq!(parse_error_body(b""), (None, None));
    }

    #[test]
    fn messages_name_registry_and_user() {
        let e = RegistryError::AuthFailed {
            registry: "127.0.0.1:5443".into(),
            user: "peer".into(),
            origin: "STACKCI_REGISTRY_USERNAME/STACKCI_REGISTRY_PASSWORD".into(),
        };
        assert!(
            e.to_string()
                .starts_with("authentication to 127.0.0.1:5443 failed (user `peer`"),
            "{e}"
        );
        let e = RegistryError::Status {
            method: "PUT".into(),
            url: "http://h/v2/r/manifests/t".into(),
            status: 400,
            code: Some("MANIFEST_INVALID".into()),
            message: None,
        };
        assert_eq!(
            e.to_string(),
            "PUT http://h/v2/r/manifests/t answered 400: MANIFEST_INVALID"
        );
        let e = RegistryError::Denied {
            registry: "h".into(),
            repository: "r".into(),
            user: Some("u".into()),
        };
        assert!(e.to_string().contains("(user `u`)"), "{e}");
    }
}
