//! Layered mirrors: the mirror pushes go to, read through read-only upstream mirrors.
//!
//! A pull-request pipeline pushes to its own mirror while the packages it does not change
//! stay in the main one (`--mirror PR --upstream MAIN`). [`ChainMirror`] reads through every
//! member in order (the primary first) and writes only to the primary. Every manifest it
//! writes is valid in the primary on its own: before the manifest goes up, each blob it
//! names that the primary lacks is copied there from the upstream holding it (mounted when
//! both are repositories of one registry), so the primary never needs its upstreams to be
//! read, copied or promoted later.

use std::any::Any;
use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::copy::copy_blobs;
use super::{BlobSource, Mirror};
use crate::digest::Digest;
use crate::spec;

/// Blobs copied into the primary at once before a manifest is written.
const JOBS: usize = 8;

/// A primary mirror (written to) over upstream mirrors (only read); see the module docs.
pub struct ChainMirror {
    primary: Arc<dyn Mirror>,
    upstreams: Vec<Arc<dyn Mirror>>,
}

impl ChainMirror {
    /// Writes to `primary`, reads from it and then from each of `upstreams` in turn.
    pub fn new(primary: Arc<dyn Mirror>, upstreams: Vec<Arc<dyn Mirror>>) -> ChainMirror {
        ChainMirror { primary, upstreams }
    }

    /// The read-only mirrors, in the order they are consulted.
    pub fn upstreams(&self) -> impl Iterator<Item = &dyn Mirror> {
        self.upstreams.iter().map(|m| m.as_ref())
    }

    /// Every member, the primary first.
    pub fn members(&self) -> impl Iterator<Item = &dyn Mirror> {
        std::iter::once(self.primary.as_ref()).chain(self.upstreams())
    }

    /// The member that holds blob `digest` (the first, in order); `None` when none does.
    pub fn holder(&self, digest: &Digest) -> Result<Option<&dyn Mirror>> {
        for m in self.members() {
            if m.has_blob(digest)? {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// Each member's location and tag list, the primary first (one listing each).
    pub fn tags_by_member(&self) -> Result<Vec<(String, BTreeSet<String>)>> {
        self.members().map(|m| Ok((m.location(), m.list_tags()?))).collect()
    }

    /// Copies into the primary every blob `manifest` names that it lacks, from the upstream
    /// holding it; an error names a blob no member has.
    fn complete_in_primary(&self, reference: &str, manifest: &[u8]) -> Result<()> {
        let refs =
            spec::references(manifest).with_context(|| format!("manifest `{reference}` is not an OCI manifest"))?;
        let mut blobs: Vec<(&dyn Mirror, &spec::Descriptor)> = Vec::with_capacity(refs.blobs.len());
        for desc in &refs.blobs {
            if self.primary.has_blob(&desc.digest)? {
                continue;
            }
            let from = self.upstreams().find_map(|m| match m.has_blob(&desc.digest) {
                Ok(true) => Some(Ok(m)),
                Ok(false) => None,
                Err(e) => Some(Err(e)),
            });
            let from = from.transpose()?.with_context(|| {
                format!(
                    "manifest `{reference}` names blob {}, which is in neither {} nor its upstreams",
                    desc.digest,
                    self.primary.location()
                )
            })?;
            blobs.push((from, desc));
        }
        copy_blobs(&blobs, self.primary.as_ref(), JOBS)
            .with_context(|| format!("copying the blobs of `{reference}` into {}", self.primary.location()))?;
        Ok(())
    }
}

impl Mirror for ChainMirror {
    /// The primary's location (a mirror URL: generated pipelines pass it on).
    fn location(&self) -> String {
        self.primary.location()
    }

    /// The chain itself; [`super::probe`] looks through it to its members.
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.holder(digest)?.is_some())
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        match self.holder(digest)? {
            Some(m) => m.open_blob(digest),
            // The primary's own "not found" error.
            None => self.primary.open_blob(digest),
        }
    }

    fn put_blob(&self, digest: &Digest, source: &dyn BlobSource) -> Result<()> {
        self.primary.put_blob(digest, source)
    }

    fn get_manifest(&self, reference: &str) -> Result<Option<Vec<u8>>> {
        for m in self.members() {
            if let Some(bytes) = m.get_manifest(reference)? {
                return Ok(Some(bytes));
            }
        }
        Ok(None)
    }

    /// Completes the primary with the blobs the manifest names, then writes it there.
    fn put_manifest(&self, reference: &str, media_type: &str, manifest: &[u8]) -> Result<Digest> {
        if !self.upstreams.is_empty() {
            self.complete_in_primary(reference, manifest)?;
        }
        self.primary.put_manifest(reference, media_type, manifest)
    }

    /// The union of every member's tags.
    fn list_tags(&self) -> Result<BTreeSet<String>> {
        let mut tags = BTreeSet::new();
        for m in self.members() {
            tags.extend(m.list_tags()?);
        }
        Ok(tags)
    }

    fn reindex(&self) -> Result<usize> {
        self.primary.reindex()
    }

    fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>> {
        for m in self.members() {
            if let Some(d) = m.manifest_digest(reference)? {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }

    fn delete_blob(&self, digest: &Digest) -> Result<()> {
        self.primary.delete_blob(digest)
    }

    fn delete_manifest(&self, reference: &str, digest: &Digest) -> Result<bool> {
        self.primary.delete_manifest(reference, digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::fs::FsStore;
    use crate::mirror::layout::LayoutMirror;
    use crate::mirror::probe;
    use crate::spec::{Descriptor, MANIFEST_MEDIA_TYPE, Manifest};

    fn layout(dir: &std::path::Path, name: &str) -> Arc<dyn Mirror> {
        Arc::new(LayoutMirror::new(FsStore::new(dir.join(name))))
    }

    fn put(m: &dyn Mirror, bytes: &[u8]) -> Descriptor {
        let digest = Digest::of(bytes);
        m.put_blob(&digest, &bytes.to_vec()).unwrap();
        Descriptor {
            media_type: "application/octet-stream".into(),
            digest,
            size: bytes.len() as u64,
            annotations: Default::default(),
            extra: Default::default(),
        }
    }

    fn manifest(config: Descriptor, layers: Vec<Descriptor>) -> Vec<u8> {
        spec::to_bytes(&Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            config,
            layers,
            annotations: Default::default(),
        })
    }

    #[test]
    fn reads_through_writes_to_the_primary_and_completes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (pr, main) = (layout(dir.path(), "pr"), layout(dir.path(), "main"));
        let base = put(main.as_ref(), b"base layer");
        let config = put(main.as_ref(), b"{}");
        main.put_manifest(
            "base-1-x",
            MANIFEST_MEDIA_TYPE,
            &manifest(config.clone(), vec![base.clone()]),
        )
        .unwrap();
        let chain = ChainMirror::new(pr.clone(), vec![main.clone()]);

        assert_eq!(chain.list_tags().unwrap(), BTreeSet::from(["base-1-x".to_string()]));
        assert!(chain.get_manifest("base-1-x").unwrap().is_some());
        assert!(chain.has_blob(&base.digest).unwrap() && !pr.has_blob(&base.digest).unwrap());
        let mut read = Vec::new();
        chain.open_blob(&base.digest).unwrap().read_to_end(&mut read).unwrap();
        assert_eq!(read, b"base layer");
        assert_eq!(
            probe::local_blob_path(&chain, &base.digest),
            probe::local_blob_path(main.as_ref(), &base.digest)
        );

        // A manifest over the upstream's layer plus a new one: valid in the primary alone.
        let own = put(&chain, b"own layer");
        assert!(pr.has_blob(&own.digest).unwrap() && !main.has_blob(&own.digest).unwrap());
        let m = manifest(config.clone(), vec![base.clone(), own.clone()]);
        chain.put_manifest("app-1-y", MANIFEST_MEDIA_TYPE, &m).unwrap();
        for d in [&base, &config, &own] {
            assert!(pr.has_blob(&d.digest).unwrap(), "{} copied into the primary", d.digest);
        }
        assert!(pr.list_tags().unwrap().contains("app-1-y"));
        assert!(
            !main.list_tags().unwrap().contains("app-1-y"),
            "upstreams are never written"
        );

        // A blob nobody has is an error naming it, and no tag appears.
        let ghost = Descriptor {
            digest: Digest::of(b"ghost"),
            ..own.clone()
        };
        let err = chain
            .put_manifest("bad-1-z", MANIFEST_MEDIA_TYPE, &manifest(config, vec![ghost.clone()]))
            .unwrap_err();
        assert!(format!("{err:#}").contains(&ghost.digest.to_string()), "{err:#}");
        assert!(!chain.list_tags().unwrap().contains("bad-1-z"));
    }
}
