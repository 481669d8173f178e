//! An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) on any [`ObjectStore`].
//!
//! This is the mirror format for `file://` and `s3://`: `skopeo copy oci:DIR:TAG` reads it.
//! Tags live in `index.json` as `org.opencontainers.image.ref.name` annotations. The index
//! is updated by compare-and-swap ([`ObjectStore::write_if`]) with retry, so concurrent
//! pushers never lose an entry; a manifest and its blobs are stored before the entry that
//! names them.

mod reindex;

use std::collections::BTreeSet;
use std::io::Read;
use std::thread;

use anyhow::{Context, Result, bail};

use super::fs::FsStore;
use super::store::{ObjectStore, Precondition};
use super::{BlobSource, Mirror};
use crate::digest::Digest;
use crate::net::Retry;
use crate::spec::{Descriptor, Index};

const INDEX: &str = "index.json";
const LAYOUT: &str = "oci-layout";
const LAYOUT_JSON: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Manifests and configs are small; anything bigger is not one of ours.
const MAX_DOCUMENT: u64 = 4 << 20;

/// A mirror stored as an OCI image layout in an object store.
pub struct LayoutMirror<S> {
    store: S,
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

    fn get_manifest(&self, tag: &str) -> Result<Option<Vec<u8>>> {
        // A digest names a manifest an image index points at (no tag can hold a `:`).
        if let Ok(digest) = tag.parse::<Digest>() {
            if !self.store.exists(&blob_key(&digest))? {
                return Ok(None);
            }
            return self.read_document(&digest).map(Some);
        }
        let index = self.read_index()?;
        match index.find(tag) {
            None => Ok(None),
            Some(desc) => self.read_document(&desc.digest).map(Some),
        }
    }

    fn put_manifest(&self, tag: &str, media_type: &str, manifest: &[u8]) -> Result<Digest> {
        let digest = Digest::of(manifest);
        let key = blob_key(&digest);
        if !self.store.exists(&key)? {
            self.store.put_bytes(&key, manifest)?;
        }
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

    /// Restores missing tags from the stored manifests; see [`reindex`].
    fn reindex(&self) -> Result<usize> {
        self.rebuild_index()
    }
}
