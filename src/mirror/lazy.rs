//! A mirror opened on first use.
//!
//! Commands that never touch the mirror (`generate github`, `status`) must work whatever
//! `--mirror` says, even a URL that is wrong or unreachable; the ones that use it open it
//! through the first call, with the same error they would have had up front.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context as _, Result};

use super::open::{MirrorOptions, open};
use super::{BlobSource, Mirror};
use crate::digest::Digest;
use crate::net::redact;

/// A [`Mirror`] that opens the backend for its URL on the first call that needs it.
pub struct LazyMirror {
    url: String,
    base: PathBuf,
    options: MirrorOptions,
    opened: OnceLock<Box<dyn Mirror>>,
    /// Serializes opening, so concurrent first calls open the backend once.
    opening: Mutex<()>,
}

impl LazyMirror {
    /// A mirror for `url` (relative paths resolve against `base`), not opened yet.
    pub fn new(url: impl Into<String>, base: &Path, options: MirrorOptions) -> LazyMirror {
        LazyMirror {
            url: url.into(),
            base: base.to_path_buf(),
            options,
            opened: OnceLock::new(),
            opening: Mutex::new(()),
        }
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backend, opened now if it was not yet. A failure is returned to every caller
    /// (nothing is cached but success).
    pub fn get(&self) -> Result<&dyn Mirror> {
        if let Some(m) = self.opened.get() {
            return Ok(m.as_ref());
        }
        let _guard = self.opening.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.opened.get().is_none() {
            let mirror = open(&self.url, &self.base, &self.options)
                .with_context(|| format!("opening mirror {}", redact::url(&self.url)))?;
            let _ = self.opened.set(mirror);
        }
        Ok(self.opened.get().expect("set above").as_ref())
    }
}

impl Mirror for LazyMirror {
    /// The backend's location; the URL as given (credentials masked) when it cannot be opened.
    fn location(&self) -> String {
        match self.get() {
            Ok(m) => m.location(),
            Err(_) => redact::url(&self.url).into_owned(),
        }
    }

    /// The opened backend, so probes see its abilities; this wrapper when it cannot be opened.
    fn as_any(&self) -> &dyn std::any::Any {
        match self.get() {
            Ok(m) => m.as_any(),
            Err(_) => self,
        }
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        self.get()?.has_blob(digest)
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        self.get()?.open_blob(digest)
    }

    fn put_blob(&self, digest: &Digest, source: &dyn BlobSource) -> Result<()> {
        self.get()?.put_blob(digest, source)
    }

    fn get_manifest(&self, tag: &str) -> Result<Option<Vec<u8>>> {
        self.get()?.get_manifest(tag)
    }

    fn put_manifest(&self, tag: &str, media_type: &str, manifest: &[u8]) -> Result<Digest> {
        self.get()?.put_manifest(tag, media_type, manifest)
    }

    fn list_tags(&self) -> Result<std::collections::BTreeSet<String>> {
        self.get()?.list_tags()
    }

    fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>> {
        self.get()?.manifest_digest(reference)
    }

    fn delete_blob(&self, digest: &Digest) -> Result<()> {
        self.get()?.delete_blob(digest)
    }

    fn delete_manifest(&self, reference: &str, digest: &Digest) -> Result<bool> {
        self.get()?.delete_manifest(reference, digest)
    }

    fn reindex(&self) -> Result<usize> {
        self.get()?.reindex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_opened_until_used_and_errors_come_on_use() {
        let bogus = LazyMirror::new("bogus://u:s3cr3t@x/y", Path::new(""), MirrorOptions::default());
        assert_eq!(bogus.location(), "bogus://***@x/y");
        let err = format!("{:#}", bogus.list_tags().unwrap_err());
        assert!(
            err.contains("opening mirror bogus://***@x/y") && !err.contains("s3cr3t"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("m").display());
        let m = LazyMirror::new(url.clone(), Path::new(""), MirrorOptions::default());
        assert!(m.list_tags().unwrap().is_empty());
        assert_eq!(m.location(), url);
    }
}
