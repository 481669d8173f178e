//! Where the bytes of a blob being stored come from: [`BlobSource`].
//!
//! A store may read a source more than once (an upload retried after a dropped connection,
//! a registry that refuses a single PUT and takes chunks instead) or in pieces at once (S3
//! multipart parts in parallel), so a source is re-openable, not a reader. A source backed
//! by a local file says so ([`BlobSource::path`]), so stores read it in place; a caller
//! that is done with a temporary file hands it over ([`BlobSource::movable`]) and a
//! `file://` mirror on the same filesystem renames it into place instead of copying it.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Mirror;
use crate::digest::{Digest, VerifyingReader};
use crate::spec::Descriptor;

/// The bytes of one blob, readable from the start as often as a store needs.
pub trait BlobSource: Send + Sync {
    /// Size in bytes.
    fn size(&self) -> u64;

    /// Opens the bytes from the beginning; each call is a fresh read.
    fn open(&self) -> Result<Box<dyn Read + Send + '_>>;

    /// A local file holding exactly these bytes, when there is one: stores read it in place
    /// (ranges, parallel parts) instead of through [`BlobSource::open`].
    fn path(&self) -> Option<&Path> {
        None
    }

    /// Whether the caller hands the file at [`BlobSource::path`] over: a store may move it
    /// into place (rename) instead of copying it, after which the file is gone. Default: no.
    fn movable(&self) -> bool {
        false
    }
}

/// A blob in a local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSource {
    path: PathBuf,
    size: u64,
    movable: bool,
}

impl FileSource {
    /// The file at `path`, which holds `size` bytes; it stays where it is.
    pub fn new(path: impl Into<PathBuf>, size: u64) -> FileSource {
        FileSource {
            path: path.into(),
            size,
            movable: false,
        }
    }

    /// The file at `path`, with the size the file system reports.
    pub fn stat(path: impl Into<PathBuf>) -> Result<FileSource> {
        let path = path.into();
        let size = std::fs::metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        Ok(FileSource::new(path, size))
    }

    /// The temporary file at `path` (holding `size` bytes), handed over: a store on the same
    /// file system may rename it into place. The caller must not rely on it afterwards.
    pub fn hand_over(path: impl Into<PathBuf>, size: u64) -> FileSource {
        FileSource {
            movable: true,
            ..FileSource::new(path, size)
        }
    }
}

impl BlobSource for FileSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        let file = File::open(&self.path).with_context(|| format!("opening {}", self.path.display()))?;
        Ok(Box::new(file))
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn movable(&self) -> bool {
        self.movable
    }
}

/// Small blobs held in memory (configs, manifests).
impl BlobSource for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(&self[..]))
    }
}

/// A blob of another mirror, downloaded (and verified against its descriptor) on each open.
pub struct MirrorBlob<'a> {
    mirror: &'a dyn Mirror,
    descriptor: &'a Descriptor,
}

impl<'a> MirrorBlob<'a> {
    /// The blob `descriptor` names, read from `mirror`.
    pub fn new(mirror: &'a dyn Mirror, descriptor: &'a Descriptor) -> MirrorBlob<'a> {
        MirrorBlob { mirror, descriptor }
    }
}

impl BlobSource for MirrorBlob<'_> {
    fn size(&self) -> u64 {
        self.descriptor.size
    }

    fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        let digest = &self.descriptor.digest;
        let reader = self.mirror.open_blob(digest)?;
        let what = format!("blob {digest} from {}", self.mirror.location());
        Ok(Box::new(VerifyingReader::new(
            reader,
            digest.clone(),
            Some(self.descriptor.size),
            what,
        )))
    }
}

/// A local file with a source's bytes: the source's own file, or a temporary copy.
pub enum LocalFile<'a> {
    /// The source's file, read in place.
    InPlace(&'a Path),
    /// A temporary copy, removed when dropped.
    Copy(tempfile::TempPath),
}

impl LocalFile<'_> {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            LocalFile::InPlace(p) => p,
            LocalFile::Copy(t) => t,
        }
    }
}

/// `source` as a local file, for stores that need random access (retried uploads, ranged
/// parts): its own file when it has one, else a copy streamed into a temporary file (in
/// `TMPDIR`) that must hold `source.size()` bytes and, when given, match `digest`.
pub fn local_file<'a>(source: &'a dyn BlobSource, digest: Option<&Digest>) -> Result<LocalFile<'a>> {
    if let Some(path) = source.path() {
        return Ok(LocalFile::InPlace(path));
    }
    let mut tmp = tempfile::NamedTempFile::new().context("creating a temporary file for a blob")?;
    let mut reader = source.open()?;
    let copied = match digest {
        Some(d) => io::copy(
            &mut VerifyingReader::new(reader, d.clone(), Some(source.size()), format!("blob {d}")),
            tmp.as_file_mut(),
        ),
        None => io::copy(&mut reader, tmp.as_file_mut()),
    }
    .with_context(|| format!("copying a blob to {}", tmp.path().display()))?;
    if copied != source.size() {
        anyhow::bail!("a blob source gave {copied} bytes, expected {}", source.size());
    }
    Ok(LocalFile::Copy(tmp.into_temp_path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_reopen_and_spool() {
        let bytes = b"hello blob".to_vec();
        for _ in 0..2 {
            let mut out = Vec::new();
            bytes.open().unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, bytes);
        }
        let digest = Digest::of(&bytes);
        let local = local_file(&bytes, Some(&digest)).unwrap();
        assert_eq!(std::fs::read(local.path()).unwrap(), bytes);
        assert!(local_file(&bytes, Some(&Digest::of(b"other"))).is_err());

        let file = FileSource::stat(local.path()).unwrap();
        assert_eq!((file.size(), file.movable()), (bytes.len() as u64, false));
        assert!(matches!(local_file(&file, None).unwrap(), LocalFile::InPlace(_)));
    }
}
