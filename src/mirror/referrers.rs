//! OCI 1.1 referrers: artifacts (an SBOM, a signature) attached to a manifest through their
//! `subject` field, over any mirror.
//!
//! A registry with the referrers API indexes a pushed manifest's `subject` itself (it says
//! so with `OCI-Subject`) and lists referrers at `/v2/<repo>/referrers/<digest>`. Everywhere
//! else — docker-registry 2.8, GHCR, and file and S3 mirrors — the OCI referrers tag schema
//! stands in: an image index tagged `sha256-<hex>` (the subject's digest) lists the
//! referrers' descriptors, with their `artifactType` and annotations. Updating that index
//! is a read-modify-write of one tag; two writers attaching to the same subject at the same
//! instant can lose one entry (the spec accepts this; stackci attaches one SBOM per image).

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::Mirror;
use super::probe;
use crate::digest::Digest;
use crate::spec::{self, Descriptor, INDEX_MEDIA_TYPE, Index, MANIFEST_MEDIA_TYPE};

/// Media type of the empty config (`{}`) of an artifact manifest.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// The referrers tag schema's tag for `subject`: `sha256-<hex>`.
pub fn referrers_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// Stores the empty config blob `{}` unless present; returns its descriptor.
pub fn put_empty_config(mirror: &dyn Mirror) -> Result<Descriptor> {
    let bytes = b"{}".to_vec();
    let desc = spec::descriptor_of(EMPTY_MEDIA_TYPE, &bytes);
    if !mirror.has_blob(&desc.digest)? {
        mirror.put_blob(&desc.digest, &bytes)?;
    }
    Ok(desc)
}

/// How a referrer was made findable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    /// The registry's referrers API indexed it.
    ReferrersApi,
    /// It was added to the `sha256-<hex>` index (the tag schema).
    TagSchema,
}

/// Stores `manifest` (an image manifest whose `subject` is `subject`, its blobs already
/// stored) untagged and makes it findable as a referrer of `subject`.
pub fn push_referrer(mirror: &dyn Mirror, manifest: &[u8], subject: &Digest) -> Result<(Descriptor, Attached)> {
    let entry = index_entry(manifest)?;
    if let Some(registry) = probe::registry(mirror) {
        let (_, indexed) = registry
            .block_on(registry.client().put_manifest_answer(
                registry.repository(),
                &entry.digest.to_string(),
                MANIFEST_MEDIA_TYPE,
                manifest,
            ))
            .with_context(|| format!("pushing manifest {} to {}", entry.digest, mirror.location()))?;
        if indexed {
            return Ok((entry, Attached::ReferrersApi));
        }
    } else if !mirror.has_blob(&entry.digest)? {
        mirror.put_blob(&entry.digest, &manifest.to_vec())?;
    }
    add_to_tag_index(mirror, subject, &entry)?;
    Ok((entry, Attached::TagSchema))
}

/// The descriptor an index lists for `manifest`: its digest and size, `artifactType` and
/// annotations.
fn index_entry(manifest: &[u8]) -> Result<Descriptor> {
    let v: serde_json::Value = serde_json::from_slice(manifest).context("a referrer must be a JSON manifest")?;
    let mut desc = spec::descriptor_of(MANIFEST_MEDIA_TYPE, manifest);
    if let Some(t) = v.get("artifactType").and_then(|t| t.as_str()) {
        desc.extra.insert("artifactType".into(), t.into());
    }
    if let Some(a) = v.get("annotations") {
        desc.annotations = serde_json::from_value::<BTreeMap<String, String>>(a.clone()).unwrap_or_default();
    }
    Ok(desc)
}

/// Adds `entry` to the referrers index tagged `sha256-<subject hex>` (creating it).
fn add_to_tag_index(mirror: &dyn Mirror, subject: &Digest, entry: &Descriptor) -> Result<()> {
    let tag = referrers_tag(subject);
    let mut index = match mirror.get_manifest(&tag)? {
        Some(bytes) => serde_json::from_slice::<Index>(&bytes)
            .with_context(|| format!("{tag} in {} is not an image index", mirror.location()))?,
        None => Index::empty(),
    };
    if index.manifests.iter().any(|d| d.digest == entry.digest) {
        return Ok(());
    }
    index.manifests.push(entry.clone());
    mirror
        .put_manifest(&tag, INDEX_MEDIA_TYPE, &spec::to_bytes(&index))
        .with_context(|| format!("writing the referrers index {tag} to {}", mirror.location()))?;
    Ok(())
}

/// The referrers of `subject` (of `artifact_type`, when given): from the referrers API when
/// the registry has one, else from the `sha256-<hex>` index.
pub fn list_referrers(mirror: &dyn Mirror, subject: &Digest, artifact_type: Option<&str>) -> Result<Vec<Descriptor>> {
    let from_api = match probe::registry(mirror) {
        Some(registry) => registry.referrers(subject)?,
        None => None,
    };
    let found = match from_api {
        Some(found) => found,
        None => {
            let Some(bytes) = mirror.get_manifest(&referrers_tag(subject))? else {
                return Ok(Vec::new());
            };
            let index: Index = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "the referrers of {subject} in {} are not an image index",
                    mirror.location()
                )
            })?;
            index.manifests
        }
    };
    Ok(found
        .into_iter()
        .filter(|d| artifact_type.is_none_or(|t| d.extra.get("artifactType").and_then(|a| a.as_str()) == Some(t)))
        .collect())
}
