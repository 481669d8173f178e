//! Signing a manifest the way `cosign sign --key` stores it.
//!
//! The signature of manifest `sha256:<hex>` lives in the same mirror or repository under the
//! tag `sha256-<hex>.sig`: an OCI image manifest whose config is an (almost empty) OCI image
//! config and whose layers are simple-signing payloads ([`super::payload`]), each with its
//! base64 DER signature in the `dev.cosignproject.cosign/signature` annotation. Several
//! keys' signatures share one manifest, one layer each, as cosign appends them.
//!
//! The manifest also carries `subject` = the signed manifest, so a registry with the OCI
//! referrers API lists it as a referrer (cosign's readers ignore the field). File and S3
//! mirrors hold it under the same tag in `index.json`.
//!
//! Re-signing is idempotent: signatures are deterministic (RFC 6979), and a manifest that
//! already holds this key's signature of this payload is left as it is.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::keys::PrivateKey;
use super::payload;
use crate::digest::Digest;
use crate::mirror::Mirror;
use crate::spec::{self, CONFIG_MEDIA_TYPE, Descriptor, MANIFEST_MEDIA_TYPE, TAG_ANNOTATION, put_document};

/// Layer annotation holding the base64 DER signature of the layer's payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The tag of manifest `digest`'s signatures: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// A signature manifest (an OCI image manifest with an optional `subject`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The OCI image manifest media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// One payload per signature.
    pub layers: Vec<Descriptor>,
    /// The signed manifest (for the referrers API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Manifest annotations (none written; kept when read).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What [`sign`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// A signature was added (the signature manifest was written).
    Added,
    /// The manifest already held this key's signature: nothing written.
    AlreadySigned,
}

/// The identity a mirror's signatures name (`docker-reference`): `HOST/REPO` for a registry,
/// as cosign writes it; the mirror's URL otherwise (`file:///DIR`, `s3://BUCKET/PREFIX`,
/// without the notes a location may carry, such as an S3 endpoint).
pub fn identity(mirror: &dyn Mirror) -> String {
    match crate::mirror::probe::registry(mirror) {
        Some(r) => format!("{}/{}", r.reference().registry.host, r.repository()),
        None => {
            let location = mirror.location();
            location.split(" (").next().unwrap_or(&location).to_string()
        }
    }
}

/// Signs `subject` (a manifest stored, or about to be stored, in `mirror`) with `key`,
/// storing the signature as cosign does. Other keys' signatures already there are kept.
pub fn sign(mirror: &dyn Mirror, key: &PrivateKey, subject: &Descriptor) -> Result<Signed> {
    let tag = signature_tag(&subject.digest);
    let payload = payload::simple_signing(&identity(mirror), &subject.digest);
    let signature = data_encoding::BASE64.encode(&key.sign(&payload));
    let layer = Descriptor {
        media_type: payload::MEDIA_TYPE.into(),
        digest: Digest::of(&payload),
        size: payload.len() as u64,
        annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), signature)]),
        extra: Default::default(),
    };
    let mut layers = Vec::new();
    if let Some(bytes) = mirror
        .get_manifest(&tag)
        .with_context(|| format!("reading {tag} from {}", mirror.location()))?
    {
        // An unreadable manifest under our tag is replaced: it verifies nothing anyway.
        if let Ok(existing) = serde_json::from_slice::<SignatureManifest>(&bytes) {
            let public = key.public();
            let ours = existing.layers.iter().any(|l| {
                l.digest == layer.digest
                    && l.annotations
                        .get(SIGNATURE_ANNOTATION)
                        .and_then(|s| data_encoding::BASE64.decode(s.as_bytes()).ok())
                        .is_some_and(|sig| public.verifies(&payload, &sig))
            });
            if ours {
                return Ok(Signed::AlreadySigned);
            }
            layers = existing.layers;
        }
    }
    if !mirror.has_blob(&layer.digest)? {
        mirror
            .put_blob(&layer.digest, &payload)
            .with_context(|| format!("uploading a signature payload to {}", mirror.location()))?;
    }
    layers.push(layer);
    let config = put_document(mirror, CONFIG_MEDIA_TYPE, &signature_config(&layers))?;
    let manifest = SignatureManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        config,
        layers,
        subject: Some(Descriptor {
            annotations: BTreeMap::new(),
            extra: Default::default(),
            ..subject.clone()
        }),
        // Lets `stackci index` restore the tag of a file or S3 mirror that lost its index.
        annotations: BTreeMap::from([(TAG_ANNOTATION.to_string(), tag.clone())]),
    };
    mirror
        .put_manifest(&tag, MANIFEST_MEDIA_TYPE, &spec::to_bytes(&manifest))
        .with_context(|| format!("writing signature {tag} to {}", mirror.location()))?;
    Ok(Signed::Added)
}

/// The config cosign gives a signature image: empty platform, one history entry and one
/// `diff_id` (the payload's digest: payloads are stored uncompressed) per layer.
fn signature_config(layers: &[Descriptor]) -> serde_json::Value {
    const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
    serde_json::json!({
        "architecture": "",
        "created": ZERO_TIME,
        "history": layers.iter().map(|_| serde_json::json!({ "created": ZERO_TIME })).collect::<Vec<_>>(),
        "os": "",
        "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|l| l.digest.to_string()).collect::<Vec<_>>() },
        "config": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::fs::FsStore;
    use crate::mirror::layout::LayoutMirror;
    use crate::trust::verify::verify;

    fn subject(mirror: &dyn Mirror, tag: &str, body: &[u8]) -> Descriptor {
        let digest = mirror.put_manifest(tag, MANIFEST_MEDIA_TYPE, body).unwrap();
        Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest,
            size: body.len() as u64,
            annotations: Default::default(),
            extra: Default::default(),
        }
    }

    #[test]
    fn sign_is_idempotent_appends_other_keys_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = LayoutMirror::new(FsStore::new(dir.path()));
        let one = subject(&mirror, "one", br#"{"schemaVersion":2,"n":1}"#);
        let two = subject(&mirror, "two", br#"{"schemaVersion":2,"n":2}"#);
        let (k1, k2) = (PrivateKey::generate("k1"), PrivateKey::generate("k2"));
        assert_eq!(sign(&mirror, &k1, &one).unwrap(), Signed::Added);
        let first = mirror.get_manifest(&signature_tag(&one.digest)).unwrap().unwrap();
        assert_eq!(sign(&mirror, &k1, &one).unwrap(), Signed::AlreadySigned);
        assert_eq!(
            mirror.get_manifest(&signature_tag(&one.digest)).unwrap().unwrap(),
            first
        );
        assert_eq!(sign(&mirror, &k2, &one).unwrap(), Signed::Added);
        let both: SignatureManifest =
            serde_json::from_slice(&mirror.get_manifest(&signature_tag(&one.digest)).unwrap().unwrap()).unwrap();
        assert_eq!(both.layers.len(), 2);
        assert_eq!(both.subject.as_ref().unwrap().digest, one.digest);

        assert_eq!(verify(&mirror, &one.digest, &[k2.public()]).unwrap().key, 0);
        assert_eq!(
            verify(&mirror, &one.digest, &[k1.public(), k2.public()]).unwrap().key,
            0
        );
        let stranger = PrivateKey::generate("k3").public();
        let err = verify(&mirror, &one.digest, &[stranger]).unwrap_err();
        assert_eq!(err.reasons.len(), 2, "{err}");
        assert!(!err.unsigned);
        let err = verify(&mirror, &two.digest, &[k1.public()]).unwrap_err();
        assert!(err.unsigned && err.to_string().contains("no signature"), "{err}");
    }

    #[test]
    fn index_restores_signature_tags() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = LayoutMirror::new(FsStore::new(dir.path()));
        let one = subject(&mirror, "one", br#"{"schemaVersion":2,"n":1}"#);
        let key = PrivateKey::generate("k");
        sign(&mirror, &key, &one).unwrap();
        std::fs::remove_file(dir.path().join("index.json")).unwrap();
        mirror.reindex().unwrap();
        assert!(mirror.list_tags().unwrap().contains(&signature_tag(&one.digest)));
        verify(&mirror, &one.digest, &[key.public()]).unwrap();
    }
}
