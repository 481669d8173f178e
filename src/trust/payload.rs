//! cosign's "simple signing" payload: the bytes a signature covers.
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"HOST/REPO"},
//!              "image":{"docker-manifest-digest":"sha256:..."},
//!              "type":"cosign container image signature"},"optional":null}
//! ```
//!
//! Written byte for byte as cosign writes it (Go's `encoding/json` of sigstore's
//! `payload.SimpleContainerImage`, fields in that order). Read leniently, as cosign does:
//! JSON keys match case-insensitively (the spec's own example says `Docker-manifest-digest`)
//! and `docker-reference` is ignored, so a package copied to another mirror stays verified.

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::digest::Digest;

/// Media type of the payload layer in a signature manifest.
pub const MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// `critical.type` of every cosign image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// Largest payload read back (cosign's are ~250 bytes; `optional` claims add a little).
pub const MAX_PAYLOAD: u64 = 64 * 1024;

#[derive(Serialize)]
struct SimpleSigning<'a> {
    critical: Critical<'a>,
    optional: Option<()>,
}

#[derive(Serialize)]
struct Critical<'a> {
    identity: Identity<'a>,
    image: Image,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Identity<'a> {
    #[serde(rename = "docker-reference")]
    docker_reference: &'a str,
}

#[derive(Serialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The payload signing manifest `digest` as stored at `reference` (`HOST/REPO`, or a
/// mirror's location for a file or S3 mirror).
pub fn simple_signing(reference: &str, digest: &Digest) -> Vec<u8> {
    serde_json::to_vec(&SimpleSigning {
        critical: Critical {
            identity: Identity {
                docker_reference: reference,
            },
            image: Image {
                docker_manifest_digest: digest.to_string(),
            },
            kind: SIGNATURE_TYPE,
        },
        optional: None,
    })
    .expect("the payload always serializes")
}

/// What a payload claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `critical.image.docker-manifest-digest`: the manifest the signature is for.
    pub digest: Digest,
    /// `critical.identity.docker-reference` (informational, not checked).
    pub reference: Option<String>,
}

/// Parses a payload and checks its type; the caller compares [`Claims::digest`].
pub fn parse(bytes: &[u8]) -> Result<Claims> {
    let v: serde_json::Value = serde_json::from_slice(bytes).context("the payload is not JSON")?;
    let critical = field(&v, "critical").context("the payload has no `critical` object")?;
    let kind = field(critical, "type").and_then(|t| t.as_str()).unwrap_or("");
    if kind != SIGNATURE_TYPE {
        bail!("the payload's type is `{kind}`, not `{SIGNATURE_TYPE}`");
    }
    let digest = field(critical, "image")
        .and_then(|i| field(i, "docker-manifest-digest"))
        .and_then(|d| d.as_str())
        .context("the payload names no `docker-manifest-digest`")?;
    let digest = digest
        .parse()
        .with_context(|| format!("the payload's docker-manifest-digest `{digest}` is not a sha256 digest"))?;
    let reference = field(critical, "identity")
        .and_then(|i| field(i, "docker-reference"))
        .and_then(|r| r.as_str())
        .map(str::to_string);
    Ok(Claims { digest, reference })
}

/// An object's member, matching the key case-insensitively (as Go's `encoding/json` does).
fn field<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    let obj = v.as_object()?;
    obj.get(key)
        .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_cosign_bytes() {
        let d = Digest::of(b"m");
        let p = simple_signing("localhost:5000/stack", &d);
        assert_eq!(
            String::from_utf8(p.clone()).unwrap(),
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"localhost:5000/stack\"}},\"image\":{{\"docker-manifest-digest\":\"{d}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
            )
        );
        let c = parse(&p).unwrap();
        assert_eq!(c.digest, d);
        assert_eq!(c.reference.as_deref(), Some("localhost:5000/stack"));
    }

    #[test]
    fn reads_the_spec_example_casing_and_refuses_others() {
        let d = Digest::of(b"x");
        let spec = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"testing/manifest"}},"image":{{"Docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":{{"creator":"atomic"}}}}"#
        );
        assert_eq!(parse(spec.as_bytes()).unwrap().digest, d);
        let wrong = spec.replace("cosign container image signature", "atomic container signature");
        assert!(parse(wrong.as_bytes()).unwrap_err().to_string().contains("atomic"));
        assert!(parse(b"[]").is_err());
        assert!(parse(br#"{"critical":{"type":"cosign container image signature"}}"#).is_err());
    }
}
