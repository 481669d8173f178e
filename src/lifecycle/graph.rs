//! What a mirror's tags name: tag → manifest digest in one pass ([`tag_digests`]), a
//! manifest with what it names ([`Node`]), everything reachable from some manifests
//! ([`Closure`]), and the tags that hang off a manifest by name ([`attached_tags`]).
//!
//! Signatures and other artifacts are found by the names their tools give them: cosign's
//! `sha256-<hex>.sig` (also `.att`, `.sbom`), and the referrers tag schema of the
//! distribution spec (`sha256-<hex>`, an index of the manifests whose `subject` is
//! `sha256:<hex>`), for registries without the referrers API and for image layouts.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};

use crate::digest::Digest;
use crate::mirror::referrers::referrers_tag;
use crate::mirror::{Mirror, probe};
use crate::spec::{self, Descriptor, References};

/// Suffixes cosign gives the tags it attaches to `sha256-<hex>`: signatures, attestations, SBOMs.
pub const COSIGN_SUFFIXES: [&str; 3] = [".sig", ".att", ".sbom"];

/// The tags that may hang off manifest `digest`: the referrers tag schema's index
/// (`sha256-<hex>`) and cosign's `sha256-<hex>.sig`, `.att` and `.sbom`.
pub fn attached_tags(digest: &Digest) -> Vec<String> {
    let base = referrers_tag(digest);
    std::iter::once(base.clone())
        .chain(COSIGN_SUFFIXES.iter().map(|s| format!("{base}{s}")))
        .collect()
}

/// The manifest `tag` hangs off when it is one of [`attached_tags`].
pub fn attached_to(tag: &str) -> Option<Digest> {
    let rest = tag.strip_prefix("sha256-")?;
    let hex = COSIGN_SUFFIXES
        .iter()
        .find_map(|s| rest.strip_suffix(s))
        .unwrap_or(rest);
    Digest::from_hex(hex).ok()
}

/// Whether `tag` is a referrers tag schema index (`sha256-<hex>`, no cosign suffix).
pub fn is_referrers_index(tag: &str) -> bool {
    attached_to(tag).is_some() && !tag.contains('.')
}

/// Every tag of `mirror` with the digest of the manifest it names: an image layout's index
/// read once; elsewhere the tag list, then each tag's digest (`jobs` at a time). A tag that
/// disappears between the two is left out.
pub fn tag_digests(mirror: &dyn Mirror, jobs: usize) -> Result<BTreeMap<String, Digest>> {
    if let Some(layout) = probe::layout(mirror) {
        let index = layout.index()?;
        return Ok(index
            .manifests
            .iter()
            .filter_map(|d| Some((d.annotations.get(spec::REF_NAME)?.clone(), d.digest.clone())))
            .collect());
    }
    let tags: Vec<String> = mirror.list_tags()?.into_iter().collect();
    let digests = crate::parallel::try_map(&tags, jobs, |tag| mirror.manifest_digest(tag))?;
    Ok(tags
        .into_iter()
        .zip(digests)
        .filter_map(|(t, d)| Some((t, d?)))
        .collect())
}

/// A stored manifest: its digest, its exact bytes and what it names.
#[derive(Debug, Clone)]
pub struct Node {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its bytes, exactly as stored (copies keep the digest).
    pub bytes: Vec<u8>,
    /// What it names.
    pub refs: References,
}

/// Reads manifest `digest` from `mirror`, checking its bytes against the digest; `None`
/// when the mirror does not have it.
pub fn read_node(mirror: &dyn Mirror, digest: &Digest) -> Result<Option<Node>> {
    let Some(bytes) = mirror.get_manifest(&digest.to_string())? else {
        return Ok(None);
    };
    if Digest::of(&bytes) != *digest {
        bail!(
            "manifest {digest} in {} is corrupt: its bytes hash to {}",
            mirror.location(),
            Digest::of(&bytes)
        );
    }
    let refs = spec::references(&bytes).with_context(|| {
        format!(
            "manifest {digest} in {} is not an OCI manifest or index",
            mirror.location()
        )
    })?;
    Ok(Some(Node {
        digest: digest.clone(),
        bytes,
        refs,
    }))
}

/// Everything reachable from some manifests.
#[derive(Debug, Default)]
pub struct Closure {
    /// The manifests, each after the manifests it lists (an index after its children).
    pub manifests: Vec<Node>,
    /// The blobs they name, by digest.
    pub blobs: BTreeMap<Digest, Descriptor>,
}

impl Closure {
    /// Adds manifest `root` and everything it reaches that is not in the closure yet; a
    /// manifest the mirror lacks is an error naming `what` needs it.
    pub fn add(&mut self, mirror: &dyn Mirror, root: &Digest, what: &str) -> Result<()> {
        let mut seen: BTreeSet<Digest> = self.manifests.iter().map(|n| n.digest.clone()).collect();
        self.visit(mirror, root, what, &mut seen)
    }

    /// Adds manifest `node`, already read from `mirror`, and everything it reaches that is
    /// not in the closure yet.
    pub fn add_node(&mut self, mirror: &dyn Mirror, node: Node, what: &str) -> Result<()> {
        let mut seen: BTreeSet<Digest> = self.manifests.iter().map(|n| n.digest.clone()).collect();
        if !seen.insert(node.digest.clone()) {
            return Ok(());
        }
        self.visit_node(mirror, node, what, &mut seen)
    }

    fn visit(&mut self, mirror: &dyn Mirror, digest: &Digest, what: &str, seen: &mut BTreeSet<Digest>) -> Result<()> {
        if !seen.insert(digest.clone()) {
            return Ok(());
        }
        let node = read_node(mirror, digest)?
            .with_context(|| format!("{what} names manifest {digest}, which is not in {}", mirror.location()))?;
        self.visit_node(mirror, node, what, seen)
    }

    fn visit_node(&mut self, mirror: &dyn Mirror, node: Node, what: &str, seen: &mut BTreeSet<Digest>) -> Result<()> {
        for child in &node.refs.manifests {
            self.visit(mirror, &child.digest, what, seen)?;
        }
        for blob in &node.refs.blobs {
            self.blobs.entry(blob.digest.clone()).or_insert_with(|| blob.clone());
        }
        self.manifests.push(node);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attached_tag_names_round_trip() {
        let d = Digest::of(b"m");
        let tags = attached_tags(&d);
        assert_eq!(tags[0], format!("sha256-{}", d.hex()));
        assert_eq!(tags[1], format!("sha256-{}.sig", d.hex()));
        assert!(tags.iter().all(|t| attached_to(t) == Some(d.clone())), "{tags:?}");
        assert_eq!(attached_to("hello-1.0-abc"), None);
        assert_eq!(attached_to("sha256-nothex.sig"), None);
        assert_eq!(attached_to(&format!("sha256-{}.other", d.hex())), None);
    }
}
