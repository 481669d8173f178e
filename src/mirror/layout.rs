//! An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) on any [`ObjectStore`].
//!
//! This is the mirror format for `file://` and `s3://`: `skopeo copy oci:DIR:TAG` reads it.
//! Tags live in `index.json` as `org.opencontainers.image.ref.name` annotations. The index
//! is updated by compare-and-swap ([`ObjectStore::write_if`]) with retry, so concurrent
//! pushers never lose an entry; a manifest and its blobs are stored before the entry that
//! names them.

mod reindex;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::io::Read;
use std::thread;

use anyhow::{Context, Result, bail};

use super::fs::FsStore;
use super::store::{ObjectStore, Precondition};
use super::{BlobSource, Mirror};
use crate::digest::Digest;
use crate::net::Retry;
use crate::spec::{Descriptor, Index, REF_NAME};

const INDEX: &str = "index.json";
const LAYOUT: &str = "oci-layout";
const LAYOUT_JSON: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Manifests and configs are small; anything bigger is not one of ours.
const MAX_DOCUMENT: u64 = 4 << 20;

/// A mirror stored as an OCI image layout in an object store.
pub struct LayoutMirror<S> {
    store: S,
}

/// What an image layout offers beyond [`Mirror`], whatever store holds it, for callers
/// that work on the layout itself (one index update for many tags, sweeping unreferenced
/// blobs). Found behind a `&dyn Mirror` with [`super::probe::layout`].
pub trait LayoutOps: Send + Sync {
    /// The object store holding the layout.
    fn objects(&self) -> &dyn ObjectStore;

    /// Reads `index.json` (an empty index when the layout is new).
    fn index(&self) -> Result<Index>;

    /// Applies `change` to `index.json` atomically, as [`LayoutMirror::update_index`] does.
    fn change_index(&self, change: &dyn Fn(&mut Index) -> bool) -> Result<()>;
}

impl<S: ObjectStore + 'static> LayoutOps for LayoutMirror<S> {
    fn objects(&self) -> &dyn ObjectStore {
        &self.store
    }

    fn index(&self) -> Result<Index> {
        self.read_index()
    }

    fn change_index(&self, change: &dyn Fn(&mut Index) -> bool) -> Result<()> {
        self.update_index(change)
    }
}

/// `reference` as a manifest digest when it is one (`sha256:<hex>`), `None` for a tag.
fn as_digest(reference: &str) -> Result<Option<Digest>> {
    if reference.contains(':') {
        Ok(Some(reference.parse()?))
    } else {
        Ok(None)
    }
}

/// Key of a blob in the layout.
pub fn blob_key(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

impl<S: ObjectStore> LayoutMirror<S> {
    /// Wraps `store`; the layout files are created on first write.
    pub fn new(store: S) -> Self {
        LayoutMirror { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Reads `index.json` (an empty index when the layout is new).
    pub fn read_index(&self) -> Result<Index> {
        Ok(self.read_index_versioned()?.0)
    }

    fn read_index_versioned(&self) -> Result<(Index, Precondition)> {
        match self.store.read_versioned(INDEX)? {
            None => Ok((Index::empty(), Precondition::Absent)),
            Some((bytes, version)) => {
                let index: Index = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{}/{INDEX} is not a valid OCI image index", self.store.location()))?;
                Ok((index, Precondition::Matches(version)))
            }
        }
    }

    /// Applies `change` to `index.json` atomically: re-reads and retries under
    /// [`Retry::INDEX_UPDATE`] when another writer changed it in between. `change` returns false when there is nothing to write.
    pub fn update_index(&self, change: impl Fn(&mut Index) -> bool) -> Result<()> {
        self.ensure_layout_file()?;
        let mut tries = Retry::INDEX_UPDATE.start();
        loop {
            let (mut index, pre) = self.read_index_versioned()?;
            if !change(&mut index) {
                return Ok(());
            }
            let mut bytes = serde_json::to_vec_pretty(&index)?;
            bytes.push(b'\n');
            if self.store.write_if(INDEX, &bytes, &pre)? {
                return Ok(());
            }
            match tries.failed(None) {
                Ok(pause) => thread::sleep(pause),
                Err(_) => bail!(
                    "could not update {}/{INDEX}: it kept changing under {} attempts (too many concurrent writers?)",
                    self.store.location(),
                    tries.made()
                ),
            }
        }
    }

    fn ensure_layout_file(&self) -> Result<()> {
        if !self.store.exists(LAYOUT)? {
            // Losing this race is fine: every writer writes the same bytes.
            self.store.write_if(LAYOUT, LAYOUT_JSON, &Precondition::Absent)?;
        }
        Ok(())
    }

    fn read_document(&self, digest: &Digest) -> Result<Vec<u8>> {
        let reader = self
            .store
            .open(&blob_key(digest))?
            .with_context(|| format!("{} names blob {digest}, which is missing", self.store.location()))?;
        let mut bytes = Vec::new();
        reader.take(MAX_DOCUMENT + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_DOCUMENT {
            bail!("blob {digest} in {} is too large for a manifest", self.store.location());
        }
        if Digest::of(&bytes) != *digest {
            bail!(
                "blob {digest} in {} is corrupt: its content does not match its digest",
                self.store.location()
            );
        }
        Ok(bytes)
    }
}

impl LayoutMirror<FsStore> {
    /// The file holding blob `digest`, when the layout has it.
    pub fn blob_path(&self, digest: &Digest) -> Option<std::path::PathBuf> {
        self.store.local_path(&blob_key(digest))
    }
}

impl<S: ObjectStore + 'static> Mirror for LayoutMirror<S> {
    fn location(&self) -> String {
        self.store.location()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        self.store.exists(&blob_key(digest))
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        self.store
            .open(&blob_key(digest))?
            .with_context(|| format!("blob {digest} is not in {}", self.store.location()))
    }

    fn put_blob(&self, digest: &Digest, source: &dyn BlobSource) -> Result<()> {
        self.store.put(&blob_key(digest), source)
    }

    fn get_manifest(&self, reference: &str) -> Result<Option<Vec<u8>>> {
        if let Some(digest) = as_digest(reference)? {
            if !self.store.exists(&blob_key(&digest))? {
                return Ok(None);
            }
            return self.read_document(&digest).map(Some);
        }
        let index = self.read_index()?;
        match index.find(reference) {
            None => Ok(None),
            Some(desc) => self.read_document(&desc.digest).map(Some),
        }
    }

    fn put_manifest(&self, reference: &str, media_type: &str, manifest: &[u8]) -> Result<Digest> {
        let digest = Digest::of(manifest);
        let key = blob_key(&digest);
        let untagged = as_digest(reference)?;
        if untagged.as_ref().is_some_and(|d| *d != digest) {
            bail!("a manifest with digest {digest} cannot be stored as {reference}");
        }
        if !self.store.exists(&key)? {
            self.store.put_bytes(&key, manifest)?;
        }
        if untagged.is_some() {
            return Ok(digest);
        }
        let tag = reference;
        let desc = Descriptor {
            media_type: media_type.to_string(),
            digest: digest.clone(),
            size: manifest.len() as u64,
            annotations: Default::default(),
            extra: Default::default(),
        };
        self.update_index(|index| index.set(tag, desc.clone()))?;
        Ok(digest)
    }

    fn list_tags(&self) -> Result<BTreeSet<String>> {
        Ok(self.read_index()?.tags().map(str::to_string).collect())
    }

    fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>> {
        match as_digest(reference)? {
            Some(digest) => Ok(self.store.exists(&blob_key(&digest))?.then_some(digest)),
            None => Ok(self.read_index()?.find(reference).map(|d| d.digest.clone())),
        }
    }

    fn delete_blob(&self, digest: &Digest) -> Result<()> {
        self.store.delete(&blob_key(digest))
    }

    /// Drops the index entry; the manifest stays as a blob (see [`Mirror::delete_manifest`]).
    fn delete_manifest(&self, reference: &str, digest: &Digest) -> Result<bool> {
        let tag = match as_digest(reference)? {
            Some(_) => None,
            None => Some(reference),
        };
        let removed = Cell::new(false);
        self.update_index(|index| {
            let before = index.manifests.len();
            index
                .manifests
                .retain(|d| !(d.digest == *digest && d.annotations.get(REF_NAME).map(String::as_str) == tag));
            removed.set(index.manifests.len() != before);
            removed.get()
        })?;
        Ok(removed.get())
    }

    /// Restores missing tags from the stored manifests; see [`reindex`].
    fn reindex(&self) -> Result<usize> {
        self.rebuild_index()
    }
}
