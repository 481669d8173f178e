//! Registry references: `oci://HOST[:PORT]/REPO[:TAG|@DIGEST]` (HTTPS) and
//! `oci+http://...` (plain HTTP, for local registries only), plus the names users copy from
//! docker and skopeo: `docker://NAME` (a docker reference: `alpine:3`,
//! `docker.io/library/alpine`, `ghcr.io/o/r:t`).
//!
//! Names are normalized the way the registries themselves expect them:
//! `docker.io` and `index.docker.io` are Docker Hub, whose API is at
//! [`DOCKER_HUB_API_HOST`], and a one-component Docker Hub repository is under `library/`
//! (`docker.io/alpine` is `registry-1.docker.io/library/alpine`); GHCR repositories are
//! lower-cased, since `ghcr.io` accepts only lowercase names and `${{ github.repository }}`
//! keeps the owner's capitals.

use std::fmt;

use reqwest::Url;

use crate::digest::Digest;

/// Where Docker Hub's registry API is (`docker.io` and `index.docker.io` name it).
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// The host names users write for Docker Hub.
pub(crate) const DOCKER_HUB_ALIASES: [&str; 3] = ["docker.io", "index.docker.io", DOCKER_HUB_API_HOST];

/// Whether `host` is one of the names of Docker Hub.
pub fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_ALIASES.iter().any(|a| a.eq_ignore_ascii_case(host))
}

/// How to talk to the registry: HTTPS (`oci://`, `oci+https://`) or plain HTTP (`oci+http://`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// TLS, verified against the system roots plus any extra CA.
    Https,
    /// Plain HTTP; chosen only by an explicit `oci+http://` URL.
    Http,
}

impl Scheme {
    /// `https` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// A registry endpoint: scheme plus `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Registry {
    /// HTTPS or plain HTTP.
    pub scheme: Scheme,
    /// `host` or `host:port`, lowercase, as written in credentials files.
    pub host: String,
}

impl Registry {
    /// The API base `SCHEME://HOST/v2/`.
    pub fn api_base(&self) -> Url {
        // host was validated by the parser, so this only fails on a bug.
        Url::parse(&format!("{}://{}/v2/", self.scheme.as_str(), self.host))
            .unwrap_or_else(|e| panic!("validated registry host `{}` gave a bad URL: {e}", self.host))
    }

    /// An API URL under `/v2/`, e.g. `repo/blobs/sha256:...`.
    pub fn api_url(&self, path: &str) -> Url {
        let mut url = self.api_base();
        url.set_path(&format!("/v2/{path}"));
        url
    }
}

/// What a reference points at inside its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The whole repository (a mirror).
    Repository,
    /// A tag.
    Tag(String),
    /// A manifest digest.
    Digest(Digest),
}

/// A parsed `oci://` reference: registry, repository and an optional tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Where the registry is.
    pub registry: Registry,
    /// The repository name, possibly with slashes (`team/stack/mirror`).
    pub repository: String,
    /// Tag, digest, or nothing.
    pub target: Target,
}

/// Why a string is not a valid registry reference (credentials in it are masked).
#[derive(Debug, thiserror::Error)]
#[error("invalid registry reference `{input}`: {reason}")]
pub struct ParseReferenceError {
    /// The string given, with any `user:password@` masked.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Reference {
    /// Parses `oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]`; `oci+http://` selects plain HTTP
    /// and `oci+https://` is an explicit spelling of `oci://`. `docker://NAME` takes a
    /// docker reference, whose first component is a host only when it has a `.` or a `:` or
    /// is `localhost` (else the name is on Docker Hub). Docker Hub and GHCR names are
    /// normalized (see the module docs).
    pub fn parse(input: &str) -> Result<Reference, ParseReferenceError> {
        let err = |reason: &str| ParseReferenceError {
            input: crate::net::redact::url(input).into_owned(),
            reason: reason.to_string(),
        };
        if crate::net::redact::userinfo(input).is_some() {
            return Err(err(&format!(
                "the URL carries credentials: {}",
                crate::net::redact::REGISTRY_HINT
            )));
        }
        let docker_form;
        let (scheme, rest) = if let Some(name) = input.strip_prefix("docker://") {
            docker_form = docker_name(name);
            (Scheme::Https, docker_form.as_str())
        } else if let Some(rest) = input.strip_prefix("oci://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = input.strip_prefix("oci+https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = input.strip_prefix("oci+http://") {
            (Scheme::Http, rest)
        } else {
            return Err(err(
                "expected `oci://HOST/REPO` (or `oci+http://HOST/REPO` for plain HTTP, `docker://NAME` for a docker reference)",
            ));
        };
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| err("missing repository after the host"))?;
        validate_host(host).map_err(|reason| err(&reason))?;
        let (repository, target) = if let Some((repo, digest)) = path.split_once('@') {
            let digest = digest.parse::<Digest>().map_err(|e| err(&e.to_string()))?;
            (repo, Target::Digest(digest))
        } else {
            // A tag's colon comes after the last slash; a port's colon is in the host part.
            let last = path.rfind('/').map_or(0, |i| i + 1);
            match path[last..].find(':') {
                Some(i) => {
                    let tag = &path[last + i + 1..];
                    validate_tag(tag).map_err(|reason| err(&reason))?;
                    (&path[..last + i], Target::Tag(tag.to_string()))
                }
                None => (path, Target::Repository),
            }
        };
        let mut host = host.to_ascii_lowercase();
        let mut repository = repository.to_string();
        if is_docker_hub(&host) {
            host = DOCKER_HUB_API_HOST.to_string();
            if !repository.contains('/') {
                repository = format!("library/{repository}");
            }
        } else if host == "ghcr.io" {
            repository.make_ascii_lowercase();
        }
        validate_repository(&repository).map_err(|reason| err(&reason))?;
        Ok(Reference {
            registry: Registry { scheme, host },
            repository,
            target,
        })
    }

    /// The reference without tag or digest, as `oci://HOST/REPO` (`oci+http://` for HTTP).
    pub fn repository_url(&self) -> String {
        let prefix = match self.registry.scheme {
            Scheme::Https => "oci://",
            Scheme::Http => "oci+http://",
        };
        format!("{prefix}{}/{}", self.registry.host, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository_url())?;
        match &self.target {
            Target::Repository => Ok(()),
            Target::Tag(tag) => write!(f, ":{tag}"),
            Target::Digest(digest) => write!(f, "@{digest}"),
        }
    }
}

/// A docker reference (`alpine:3`, `team/app`, `localhost:5000/x`, `ghcr.io/o/r`) as
/// `HOST/REPO[:TAG|@DIGEST]`: the first component is a host only when it has a `.` or a `:`
/// or is `localhost`, as docker and skopeo decide it; otherwise the name is on Docker Hub.
fn docker_name(name: &str) -> String {
    match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => name.to_string(),
        _ => format!("docker.io/{name}"),
    }
}

fn validate_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("missing host".into());
    }
    let (name, port) = if host.starts_with('[') {
        match host.find(']') {
            Some(end) if end + 1 == host.len() => (host, None),
            Some(end) if host[end + 1..].starts_with(':') => (&host[..=end], Some(&host[end + 2..])),
            _ => return Err(format!("bad host `{host}`")),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("bad port `{port}`"));
    }
    let ok = if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    if ok { Ok(()) } else { Err(format!("bad host `{host}`")) }
}

/// Checks a repository name against the distribution grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn validate_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("missing repository".into());
    }
    if repo.len() > 255 {
        return Err("repository name longer than 255 characters".into());
    }
    for component in repo.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let mut ok = !bytes.is_empty() && alnum(bytes[0]) && alnum(bytes[bytes.len() - 1]);
        let mut i = 0;
        while ok && i < bytes.len() {
            if alnum(bytes[i]) {
                i += 1;
                continue;
            }
            // A separator run: `.`, `_`, `__` or `-+`, followed by an alphanumeric.
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let sep = &component[start..i];
            ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        }
        if !ok {
            return Err(format!(
                "bad repository name `{repo}`: components are lowercase letters and digits joined by `.`, `_`, `__` or `-`"
            ));
        }
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad tag `{tag}`: up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_nested_repository() {
        let r = Reference::parse("oci://127.0.0.1:5443/team/stack/mirror").unwrap();
        assert_eq!(
            r.registry,
            Registry {
                scheme: Scheme::Https,
                host: "127.0.0.1:5443".into()
            }
        );
        assert_eq!(r.repository, "team/stack/mirror");
        assert_eq!(r.target, Target::Repository);
        assert_eq!(r.to_string(), "oci://127.0.0.1:5443/team/stack/mirror");
        assert_eq!(
            r.registry.api_url("team/stack/mirror/tags/list").as_str(),
            "https://127.0.0.1:5443/v2/team/stack/mirror/tags/list"
        );
    }

    #[test]
    fn parses_tags_digests_and_plain_http() {
        let r = Reference::parse("oci+http://localhost:5000/a/b:v1.0-x").unwrap();
        assert_eq!(r.registry.scheme, Scheme::Http);
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.target, Target::Tag("v1.0-x".into()));
        assert_eq!(r.to_string(), "oci+http://localhost:5000/a/b:v1.0-x");
        let d = Digest::of(b"x");
        let r = Reference::parse(&format!("oci://ghcr.io/o/r@{d}")).unwrap();
        assert_eq!(r.target, Target::Digest(d));
        let r = Reference::parse("oci+https://Registry.Example.com/r").unwrap();
        assert_eq!(r.registry.host, "registry.example.com");
        let r = Reference::parse("oci://[::1]:5000/r:t").unwrap();
        assert_eq!(r.registry.host, "[::1]:5000");
        assert_eq!(r.target, Target::Tag("t".into()));
        assert_eq!(Reference::parse("oci://[::1]/r").unwrap().registry.host, "[::1]");
    }

    #[test]
    fn docker_hub_names_as_users_write_them() {
        let hub = |s: &str| {
            let r = Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            (r.registry.host.clone(), r.repository.clone(), r.to_string())
        };
        for s in [
            "oci://docker.io/alpine:3.20",
            "oci://index.docker.io/alpine:3.20",
            "oci://Docker.IO/library/alpine:3.20",
            "oci://registry-1.docker.io/library/alpine:3.20",
            "docker://alpine:3.20",
            "docker://docker.io/alpine:3.20",
            "docker://library/alpine:3.20",
        ] {
            assert_eq!(
                hub(s),
                (
                    "registry-1.docker.io".into(),
                    "library/alpine".into(),
                    "oci://registry-1.docker.io/library/alpine:3.20".into()
                ),
                "{s}"
            );
        }
        assert_eq!(
            hub("oci://docker.io/team/app").1,
            "team/app",
            "two components: no library/"
        );
        assert_eq!(hub("docker://team/app:1").0, "registry-1.docker.io");
        assert_eq!(hub("docker://localhost:5000/x:1").0, "localhost:5000");
        assert_eq!(hub("docker://localhost/x:1").0, "localhost");
        assert_eq!(hub("docker://quay.io/a/b:1").0, "quay.io");
        let r =
            Reference::parse("docker://alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000")
                .unwrap();
        assert_eq!(r.repository, "library/alpine");
        assert!(matches!(r.target, Target::Digest(_)));
        assert!(is_docker_hub("index.docker.io") && !is_docker_hub("docker.example"));
    }

    #[test]
    fn ghcr_names_are_lower_cased() {
        let r = Reference::parse("oci://ghcr.io/MyOrg/Stack-Repo/demo-mirror").unwrap();
        assert_eq!(r.repository, "myorg/stack-repo/demo-mirror");
        let r = Reference::parse("docker://ghcr.io/MyOrg/App:V1").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.target),
            ("myorg/app", Target::Tag("V1".into()))
        );
        let err = Reference::parse("oci://quay.io/MyOrg/app").unwrap_err().to_string();
        assert!(err.contains("lowercase"), "other registries keep the grammar: {err}");
    }

    #[test]
    fn credentials_are_refused_and_never_shown() {
        let err = Reference::parse("oci://u:s3cr3t@ghcr.io/x").unwrap_err().to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(
            err.contains("oci://***@ghcr.io/x") && err.contains("carries credentials"),
            "{err}"
        );
        assert!(err.contains("STACKCI_REGISTRY_USERNAME"), "{err}");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "dock://h/r",
            "oci://host",
            "oci:///repo",
            "oci://h:99999/r",
            "oci://h/Repo",
            "oci://h/r//x",
            "oci://h/r-",
            "oci://h/r:.bad",
            "oci://h/r:",
            "oci://h/r@sha256:1234",
            "oci://h o/r",
            "oci://h/a...b",
        ] {
            let err = Reference::parse(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
        for good in ["oci://h/a__b", "oci://h/a---b", "oci://h/a.b_c/d-e", "oci://h/0"] {
            Reference::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }
}
