//! Binary mirrors: one content model (OCI blobs + one image manifest per package, tagged
//! `<name>-<version>-<hash>`) over several backends.
//!
//! Every backend implements the small [`Mirror`] core; pushing and pulling packages
//! ([`crate::package`]) is written once on top of it. Object-store backends (a directory, an S3
//! bucket) share the OCI-image-layout logic in [`layout`] through the [`store::ObjectStore`]
//! trait, so `file://` and `s3://` mirrors hold the same layout.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use anyhow::Result;

use crate::digest::Digest;

pub mod fs;
pub mod layout;
pub mod lazy;
pub mod oci;
pub mod open;
pub mod s3;
pub mod store;

/// The core every mirror backend implements: blobs by digest, manifests by tag, and the tag list.
///
/// Implementations must make a tag visible only after its manifest and every blob it
/// names are stored, and must never lose a tag under concurrent writers.
pub trait Mirror: Send + Sync {
    /// Where the mirror is, for messages (never contains credentials).
    fn location(&self) -> String;

    /// Whether a blob is stored.
    fn has_blob(&self, digest: &Digest) -> Result<bool>;

    /// Opens a stored blob. The reader is unverified: callers check the digest.
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send>>;

    /// Stores the blob held in `file`, whose digest and size the caller computed.
    fn put_blob(&self, digest: &Digest, size: u64, file: &Path) -> Result<()>;

    /// The manifest a tag points at, if the tag exists.
    fn get_manifest(&self, tag: &str) -> Result<Option<Vec<u8>>>;

    /// Stores a manifest and points `tag` at it; returns the manifest digest.
    fn put_manifest(&self, tag: &str, media_type: &str, manifest: &[u8]) -> Result<Digest>;

    /// Every tag in the mirror, read in one listing.
    fn list_tags(&self) -> Result<BTreeSet<String>>;

    /// A local file holding the blob, when the backend stores blobs as files (lets uploads
    /// elsewhere read it in place instead of downloading a copy).
    fn local_blob_path(&self, _digest: &Digest) -> Option<std::path::PathBuf> {
        None
    }

    /// Makes a blob that `from` holds available here without transferring it (a registry's
    /// cross-repository mount); `Ok(false)` when this backend or pair cannot.
    fn mount_blob_from(&self, _digest: &Digest, _from: &dyn Mirror) -> Result<bool> {
        Ok(false)
    }

    /// `(registry host, repository)` when this mirror is a registry repository.
    fn registry_repository(&self) -> Option<(String, String)> {
        None
    }

    /// Rebuilds the index from the stored manifests; returns how many tags it holds.
    /// Backends whose tag list is authoritative (registries) just count them.
    fn reindex(&self) -> Result<usize> {
        Ok(self.list_tags()?.len())
    }
}
