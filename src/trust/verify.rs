//! Checking a manifest's cosign signatures against trusted keys, as `cosign verify --key`
//! does for key-based signatures: read `sha256-<hex>.sig`, and for each simple-signing layer
//! read its payload (digest-checked), check the ECDSA signature in its annotation with each
//! trusted key, and check that the payload names this very manifest digest.
//!
//! Everything read is bounded (signature manifest, number of layers, payload size), so a
//! hostile mirror cannot make verification read much.

use std::io::Read;

use super::keys::PublicKey;
use super::payload;
use super::sign::{SIGNATURE_ANNOTATION, SignatureManifest, signature_tag};
use crate::digest::Digest;
use crate::mirror::Mirror;

/// Most signatures (layers) read from one signature manifest.
pub const MAX_SIGNATURES: usize = 64;

/// A signature that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Index of the key (in the slice given to [`verify`]) that made it.
    pub key: usize,
    /// The payload's `docker-reference` (where it was signed).
    pub reference: Option<String>,
}

/// Why a manifest is not trusted: one reason per signature found (or why none was found).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", reasons.join("; "))]
pub struct Rejected {
    /// What was wrong, one entry per signature looked at.
    pub reasons: Vec<String>,
    /// True when there is no signature at all (as opposed to only bad ones).
    pub unsigned: bool,
}

impl Rejected {
    fn one(reason: String, unsigned: bool) -> Rejected {
        Rejected {
            reasons: vec![reason],
            unsigned,
        }
    }
}

/// Checks that manifest `digest` in `mirror` carries a valid signature by one of `keys`.
pub fn verify(mirror: &dyn Mirror, digest: &Digest, keys: &[PublicKey]) -> Result<Verified, Rejected> {
    let tag = signature_tag(digest);
    let bytes = match mirror.get_manifest(&tag) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(Rejected::one(format!("no signature (no tag {tag})"), true)),
        Err(e) => return Err(Rejected::one(format!("cannot read {tag}: {e:#}"), false)),
    };
    let manifest: SignatureManifest = serde_json::from_slice(&bytes)
        .map_err(|e| Rejected::one(format!("{tag} is not a signature manifest: {e}"), false))?;
    let mut reasons = Vec::new();
    let mut signatures = 0;
    for (n, layer) in manifest.layers.iter().enumerate().take(MAX_SIGNATURES) {
        if layer.media_type != payload::MEDIA_TYPE {
            continue;
        }
        signatures += 1;
        match check_layer(mirror, layer, digest, keys) {
            Ok(v) => return Ok(v),
            Err(reason) => reasons.push(format!("signature {} in {tag}: {reason}", n + 1)),
        }
    }
    if signatures == 0 {
        return Err(Rejected::one(format!("{tag} holds no simple-signing payload"), true));
    }
    Err(Rejected {
        reasons,
        unsigned: false,
    })
}

/// Checks one signature layer: the annotation decodes, a trusted key made it over the
/// payload's bytes, and the payload names `digest`.
fn check_layer(
    mirror: &dyn Mirror,
    layer: &crate::spec::Descriptor,
    digest: &Digest,
    keys: &[PublicKey],
) -> Result<Verified, String> {
    let encoded = layer
        .annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or_else(|| format!("no `{SIGNATURE_ANNOTATION}` annotation"))?;
    let signature = data_encoding::BASE64
        .decode(encoded.trim().as_bytes())
        .map_err(|e| format!("the signature is not base64 ({e})"))?;
    if layer.size > payload::MAX_PAYLOAD {
        return Err(format!("its payload is {} bytes, more than stackci reads", layer.size));
    }
    let payload = read_payload(mirror, &layer.digest, layer.size)?;
    let Some(key) = keys.iter().position(|k| k.verifies(&payload, &signature)) else {
        return Err("made by none of the trusted keys, or tampered with".into());
    };
    let claims = payload::parse(&payload).map_err(|e| format!("{e:#}"))?;
    if claims.digest != *digest {
        return Err(format!(
            "signed by {} for manifest {}, not for this one",
            keys[key].describe(),
            claims.digest
        ));
    }
    Ok(Verified {
        key,
        reference: claims.reference,
    })
}

/// Reads a payload blob of at most `size` bytes and checks its digest.
fn read_payload(mirror: &dyn Mirror, digest: &Digest, size: u64) -> Result<Vec<u8>, String> {
    let reader = mirror
        .open_blob(digest)
        .map_err(|e| format!("cannot read its payload {digest}: {e:#}"))?;
    let mut bytes = Vec::new();
    reader
        .take(size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read its payload {digest}: {e}"))?;
    if bytes.len() as u64 != size || Digest::of(&bytes) != *digest {
        return Err(format!("its payload does not match its digest {digest}"));
    }
    Ok(bytes)
}
