//! Key/value object stores that can hold an OCI image layout (a directory, an S3 bucket).

use std::io::Read;
use std::time::SystemTime;

use anyhow::Result;

use super::BlobSource;

/// An opaque version of an object, compared for conditional writes (an S3 ETag, a file's digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub String);

/// What a conditional write requires of the object it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// The object must not exist (`If-None-Match: *`).
    Absent,
    /// The object must still be at this version (`If-Match`).
    Matches(Version),
}

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key, relative to the layout root.
    pub key: String,
    /// When it was last written (a file's mtime, S3's `LastModified`), when the store says.
    pub modified: Option<SystemTime>,
    /// Its size in bytes.
    pub size: u64,
}

/// The small core a layout backend needs. Keys are `/`-separated paths relative to the
/// layout root (`index.json`, `blobs/sha256/<hex>`).
pub trait ObjectStore: Send + Sync {
    /// Where the store is, for messages (never contains credentials).
    fn location(&self) -> String;

    /// Whether `key` exists.
    fn exists(&self, key: &str) -> Result<bool>;

    /// Opens `key` for streaming reads; `None` when it does not exist.
    fn open(&self, key: &str) -> Result<Option<Box<dyn Read + Send>>>;

    /// Stores the bytes of `source` under `key`; readers never see a partial object. A
    /// handed-over file ([`BlobSource::movable`]) may be renamed into place.
    fn put(&self, key: &str, source: &dyn BlobSource) -> Result<()>;

    /// Stores small `bytes` under `key`, unconditionally and atomically.
    fn put_bytes(&self, key: &str, bytes: &[u8]) -> Result<()>;

    /// Reads a small object with its version; `None` when it does not exist.
    fn read_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>>;

    /// Writes `bytes` under `key` only if `pre` holds; `Ok(false)` when it did not
    /// (another writer got there first), so the caller re-reads and retries.
    fn write_if(&self, key: &str, bytes: &[u8], pre: &Precondition) -> Result<bool>;

    /// Removes `key`; removing a missing object is not an error.
    fn delete(&self, key: &str) -> Result<()>;

    /// The objects under `prefix`, sorted by key, with their modification times (for
    /// rebuilding the index).
    fn list(&self, prefix: &str) -> Result<Vec<Listed>>;

    /// Removes what killed writers left behind (a file store's stale temporary files);
    /// best effort, returns how many objects it removed. Stores whose writes are atomic
    /// on the server (S3) have nothing to remove.
    fn remove_stale_temporaries(&self) -> usize {
        0
    }
}
