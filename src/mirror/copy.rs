//! Copying blobs between any two mirrors by the cheapest way available, several at a time.

use std::collections::HashMap;

use anyhow::{Context, Result};

use super::source::MirrorBlob;
use super::{FileSource, Mirror, probe};
use crate::spec::Descriptor;

/// How [`copy_blob`] got a blob into the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// The target had it already.
    Present,
    /// Mounted from another repository of the same registry; no bytes moved.
    Mounted,
    /// Its bytes were stored: read in place from a local file, or streamed from the source.
    Transferred,
}

/// Makes the blob `descriptor` names, which `src` holds, present in `dst`, trying in turn:
/// `dst` has it → (for layered mirrors, the member holding it) → a cross-repository mount (both in one registry) → `src`'s local file
/// read in place → a download from `src`, verified against the descriptor as it streams →
/// stored with [`Mirror::put_blob`] (which may read it again to retry).
pub fn copy_blob(src: &dyn Mirror, dst: &dyn Mirror, descriptor: &Descriptor) -> Result<Copied> {
    let digest = &descriptor.digest;
    if dst.has_blob(digest)? {
        return Ok(Copied::Present);
    }
    let src = probe::holder(src, digest)?;
    if let (Some(from), Some(to)) = (probe::registry(src), probe::registry(dst))
        && to.mount_from(digest, from)?
    {
        return Ok(Copied::Mounted);
    }
    let what = || format!("copying blob {digest} from {} to {}", src.location(), dst.location());
    match probe::local_blob_path(src, digest) {
        Some(path) => dst.put_blob(digest, &FileSource::new(path, descriptor.size)),
        None => dst.put_blob(digest, &MirrorBlob::new(src, descriptor)),
    }
    .with_context(what)?;
    Ok(Copied::Transferred)
}

/// Copies each `(source, descriptor)` blob into `dst` with [`copy_blob`], `jobs` at a time
/// (at least one); returns what happened to each, in input order. A digest listed twice is
/// copied once (later entries count as [`Copied::Present`]). After a failure no new copy
/// starts, and the first failure in input order is returned.
pub fn copy_blobs(blobs: &[(&dyn Mirror, &Descriptor)], dst: &dyn Mirror, jobs: usize) -> Result<Vec<Copied>> {
    let mut first = HashMap::new();
    let unique: Vec<usize> = (0..blobs.len())
        .filter(|&i| *first.entry(&blobs[i].1.digest).or_insert(i) == i)
        .collect();
    let copied = crate::parallel::try_map(&unique, jobs, |&i| copy_blob(blobs[i].0, dst, blobs[i].1))?;
    let by_index: HashMap<usize, Copied> = unique.into_iter().zip(copied).collect();
    Ok((0..blobs.len())
        .map(|i| by_index.get(&i).copied().unwrap_or(Copied::Present))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::digest::Digest;
    use crate::mirror::fs::FsStore;
    use crate::mirror::layout::LayoutMirror;

    fn blob(m: &dyn Mirror, bytes: &[u8]) -> Descriptor {
        let digest = Digest::of(bytes);
        m.put_blob(&digest, &bytes.to_vec()).unwrap();
        Descriptor {
            media_type: "x".into(),
            digest,
            size: bytes.len() as u64,
            annotations: Default::default(),
            extra: Default::default(),
        }
    }

    #[test]
    fn copies_once_and_reads_files_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let a = LayoutMirror::new(FsStore::new(dir.path().join("a")));
        let b = LayoutMirror::new(FsStore::new(dir.path().join("b")));
        let desc = blob(&a, b"some layer bytes");
        assert!(probe::local_blob_path(&a, &desc.digest).is_some());
        assert_eq!(copy_blob(&a, &b, &desc).unwrap(), Copied::Transferred);
        assert_eq!(copy_blob(&a, &b, &desc).unwrap(), Copied::Present);
        let mut back = Vec::new();
        b.open_blob(&desc.digest).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, b"some layer bytes");
    }

    #[test]
    fn copies_many_in_parallel_each_digest_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = LayoutMirror::new(FsStore::new(dir.path().join("a")));
        let b = LayoutMirror::new(FsStore::new(dir.path().join("b")));
        let descs: Vec<Descriptor> = (0..10).map(|i| blob(&a, format!("blob {i}").as_bytes())).collect();
        let present = blob(&b, b"already there");
        let mut list: Vec<(&dyn Mirror, &Descriptor)> = descs.iter().map(|d| (&a as &dyn Mirror, d)).collect();
        list.push((&a, &descs[3]));
        list.push((&b, &present));
        let copied = copy_blobs(&list, &b, 4).unwrap();
        assert_eq!(copied[..10], [Copied::Transferred; 10]);
        assert_eq!(copied[10..], [Copied::Present, Copied::Present]);
        assert!(descs.iter().all(|d| b.has_blob(&d.digest).unwrap()));
        assert!(copy_blobs(&[], &b, 4).unwrap().is_empty());
    }

    #[test]
    fn a_streamed_copy_is_verified() {
        let dir = tempfile::tempdir().unwrap();
        let a = LayoutMirror::new(FsStore::new(dir.path().join("a")));
        let b = LayoutMirror::new(FsStore::new(dir.path().join("b")));
        let mut desc = blob(&a, b"good bytes");
        // A source that is no file mirror (a wrapper hides the ability) and lies about the size.
        struct Hidden<'a>(&'a dyn Mirror);
        impl Mirror for Hidden<'_> {
            fn location(&self) -> String {
                "hidden".into()
            }
            fn as_any(&self) -> &dyn std::any::Any {
                &()
            }
            fn has_blob(&self, d: &Digest) -> Result<bool> {
                self.0.has_blob(d)
            }
            fn open_blob(&self, d: &Digest) -> Result<Box<dyn Read + Send>> {
                self.0.open_blob(d)
            }
            fn put_blob(&self, d: &Digest, s: &dyn super::super::BlobSource) -> Result<()> {
                self.0.put_blob(d, s)
            }
            fn get_manifest(&self, t: &str) -> Result<Option<Vec<u8>>> {
                self.0.get_manifest(t)
            }
            fn put_manifest(&self, t: &str, m: &str, b: &[u8]) -> Result<Digest> {
                self.0.put_manifest(t, m, b)
            }
            fn list_tags(&self) -> Result<std::collections::BTreeSet<String>> {
                self.0.list_tags()
            }
        }
        desc.size += 1;
        let err = format!("{:#}", copy_blob(&Hidden(&a), &b, &desc).unwrap_err());
        assert!(
            err.contains(&desc.digest.to_string()) && err.contains("hidden"),
            "{err}"
        );
        assert!(!b.has_blob(&desc.digest).unwrap(), "nothing unverified is stored");
    }
}
