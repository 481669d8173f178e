//! Binary mirrors: one content model (OCI blobs + one image manifest per package, tagged
//! `<name>-<version>-<hash>`) over several backends.
//!
//! The mirror is storage: every backend implements the small [`Mirror`] core (blobs by
//! digest, stored from a re-openable [`BlobSource`]; manifests by tag; the tag list), and
//! what a package is ([`crate::package`]) is written once on top of it. Abilities only some
//! backends have (a blob as a local file, a registry's cross-repository mount) are not in
//! the trait: callers probe for them ([`probe`]), and [`copy::copy_blob`] uses the best one
//! available. [`location::Location`] parses where a mirror or an image is, and
//! [`open::open_location`] opens it. Object-store backends (a directory, an S3 bucket)
//! share the OCI-image-layout logic in [`layout`] through the [`store::ObjectStore`] trait,
//! so `file://` and `s3://` mirrors hold the same layout.

use std::any::Any;
use std::collections::BTreeSet;
use std::io::Read;

use anyhow::Result;

use crate::digest::Digest;

pub mod copy;
pub mod fs;
pub mod layout;
pub mod lazy;
pub mod location;
pub mod oci;
pub mod open;
pub mod probe;
pub mod referrers;
pub mod s3;
pub mod source;
pub mod store;

pub use source::{BlobSource, FileSource};

/// The core every mirror backend implements: blobs by digest, manifests by tag, and the tag list.
///
/// Implementations must make a tag visible only after its manifest and every blob it
/// names are stored, and must never lose a tag under concurrent writers.
pub trait Mirror: Send + Sync {
    /// Where the mirror is, for messages (never contains credentials).
    fn location(&self) -> String;

    /// The backend itself, so callers can probe for abilities only some backends have (see
    /// [`probe`]); a wrapper returns the backend it wraps. Implement as `self`.
    fn as_any(&self) -> &dyn Any;

    /// Whether a blob is stored.
    fn has_blob(&self, digest: &Digest) -> Result<bool>;

    /// Opens a stored blob. The reader is unverified: callers check the digest.
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send>>;

    /// Stores the blob `source` holds, whose digest the caller computed. The backend may read
    /// the source more than once, and may move a handed-over file into place. It need not
    /// check whether it has the blob already: callers ask [`Mirror::has_blob`] first.
    fn put_blob(&self, digest: &Digest, source: &dyn BlobSource) -> Result<()>;

    /// The manifest a tag points at, if the tag exists; a `sha256:` digest instead of a tag
    /// reads the manifest with that digest (one an image index names).
    fn get_manifest(&self, tag: &str) -> Result<Option<Vec<u8>>>;

    /// Stores a manifest and points `tag` at it; returns the manifest digest.
    fn put_manifest(&self, tag: &str, media_type: &str, manifest: &[u8]) -> Result<Digest>;

    /// Every tag in the mirror, read in one listing.
    fn list_tags(&self) -> Result<BTreeSet<String>>;

    /// Rebuilds the index from the stored manifests; returns how many tags it holds.
    /// Backends whose tag list is authoritative (registries) just count them.
    fn reindex(&self) -> Result<usize> {
        Ok(self.list_tags()?.len())
    }
}
