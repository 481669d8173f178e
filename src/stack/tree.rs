//! Content digest of a source directory (`source: { path: }`).
//!
//! The digest is the sha256 of this byte stream, version-tagged so a future change of
//! the encoding cannot collide with this one:
//!
//! ```text
//! "stackci-tree-v1\n"
//! for every entry below the root (the root itself excluded), sorted by relative path bytes:
//!     u64-be length of the relative path, the path bytes ('/'-separated, no leading '/')
//!     one type byte: 'd' directory | 'f' regular file | 'l' symbolic link
//!     'f': one byte 1 if any execute bit (0o111) is set else 0,
//!          u64-be content length, the 32-byte sha256 of the content
//!     'l': u64-be length of the link target, the target bytes (the link is not followed)
//!     'd': nothing more
//! ```
//!
//! Every field has a fixed size or a length prefix, so two different trees cannot
//! produce the same stream. Ownership, timestamps and permission bits other than the
//! execute bit are ignored, so a fresh checkout digests the same. Nothing is skipped
//! except the stack's own state directory (`<stack dir>/.stackci`) when the walk
//! reaches it. File contents are streamed, never read whole into memory. Other file
//! types (sockets, devices, FIFOs) are errors.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

/// A failure while digesting a tree, with the path that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read `{}`", path.display())]
pub struct TreeError {
    /// The file or directory that failed.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

/// The content digest of the directory `root` (see the module docs for the encoding).
///
/// `skip` is a directory (typically `<stack dir>/.stackci`) left out of the walk wherever
/// it appears inside `root`; it is matched by device and inode, so any spelling works.
pub fn tree_digest(root: &Path, skip: Option<&Path>) -> Result<Digest, TreeError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TreeError { path, source }
    };
    let meta = fs::metadata(root).map_err(err(root))?;
    if !meta.is_dir() {
        return Err(TreeError {
            path: root.to_path_buf(),
            source: io::Error::other("not a directory"),
        });
    }
    let skip = skip
        .and_then(|s| fs::symlink_metadata(s).ok())
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()));

    let mut entries: Vec<(Vec<u8>, fs::Metadata)> = Vec::new();
    let mut pending: Vec<Vec<u8>> = vec![Vec::new()];
    while let Some(rel) = pending.pop() {
        let dir = join(root, &rel);
        for entry in fs::read_dir(&dir).map_err(err(&dir))? {
            let entry = entry.map_err(err(&dir))?;
            let meta = entry.metadata().map_err(err(&entry.path()))?;
            if meta.is_dir() && skip == Some((meta.dev(), meta.ino())) {
                continue;
            }
            let mut child = rel.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(entry.file_name().as_bytes());
            if meta.is_dir() {
                pending.push(child.clone());
            }
            entries.push((child, meta));
        }
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));

    let mut out = Sha256::new();
    out.update(b"stackci-tree-v1\n");
    let mut buf = vec![0u8; 64 * 1024];
    for (rel, meta) in &entries {
        let path = join(root, rel);
        put_bytes(&mut out, rel);
        let kind = meta.file_type();
        if kind.is_dir() {
            out.update(b"d");
        } else if kind.is_file() {
            let mut file = fs::File::open(&path).map_err(err(&path))?;
            let mut content = Sha256::new();
            let mut len = 0u64;
            loop {
                let n = file.read(&mut buf).map_err(err(&path))?;
                if n == 0 {
                    break;
                }
                content.update(&buf[..n]);
                len += n as u64;
            }
            out.update(b"f");
            out.update([u8::from(meta.permissions().mode() & 0o111 != 0)]);
            out.update(len.to_be_bytes());
            out.update(content.finalize());
        } else if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(err(&path))?;
            out.update(b"l");
            put_bytes(&mut out, target.as_os_str().as_bytes());
        } else {
            let source = io::Error::other("not a regular file, directory or symbolic link");
            return Err(TreeError { path, source });
        }
    }
    Ok(Digest::from_bytes(out.finalize().into()))
}

/// `root` joined with a relative path given as bytes.
fn join(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(OsString::from(std::ffi::OsStr::from_bytes(rel)))
    }
}

/// A u64-be length prefix followed by the bytes.
fn put_bytes(out: &mut Sha256, bytes: &[u8]) {
    out.update((bytes.len() as u64).to_be_bytes());
    out.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(path: &Path, data: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }

    #[test]
    fn digest_follows_content_names_modes_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("src");
        write(&root.join("a.c"), b"int main;");
        write(&root.join("sub/b.h"), b"#pragma once");
        let d0 = tree_digest(&root, None).unwrap();
        assert_eq!(tree_digest(&root, None).unwrap(), d0, "deterministic");

        write(&root.join("a.c"), b"int main();");
        let d1 = tree_digest(&root, None).unwrap();
        assert_ne!(d1, d0, "content");

        fs::rename(root.join("sub/b.h"), root.join("sub/c.h")).unwrap();
        let d2 = tree_digest(&root, None).unwrap();
        assert_ne!(d2, d1, "rename");

        fs::set_permissions(root.join("a.c"), fs::Permissions::from_mode(0o755)).unwrap();
        let d3 = tree_digest(&root, None).unwrap();
        assert_ne!(d3, d2, "execute bit");
        fs::set_permissions(root.join("a.c"), fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(tree_digest(&root, None).unwrap(), d3, "only the execute bit counts");

        fs::create_dir(root.join("empty")).unwrap();
        let d4 = tree_digest(&root, None).unwrap();
        assert_ne!(d4, d3, "empty directory");

        symlink("a.c", root.join("link")).unwrap();
        let d5 = tree_digest(&root, None).unwrap();
        fs::remove_file(root.join("link")).unwrap();
        symlink("sub/c.h", root.join("link")).unwrap();
        assert_ne!(tree_digest(&root, None).unwrap(), d5, "link target");
    }

    #[test]
    fn same_tree_elsewhere_same_digest_and_state_dir_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        for dir in ["one", "two"] {
            write(&tmp.path().join(dir).join("x/y"), b"data");
        }
        let one = tree_digest(&tmp.path().join("one"), None).unwrap();
        assert_eq!(tree_digest(&tmp.path().join("two"), None).unwrap(), one);

        let state = tmp.path().join("one/.stackci");
        write(&state.join("mirror/blob"), b"big");
        assert_ne!(tree_digest(&tmp.path().join("one"), None).unwrap(), one);
        assert_eq!(tree_digest(&tmp.path().join("one/."), Some(&state)).unwrap(), one);
    }

    #[test]
    fn known_encoding() {
        // Pins the byte stream: one file `f` with content "x", not executable.
        let tmp = tempfile::tempdir().unwrap();
        write(&tmp.path().join("f"), b"x");
        fs::set_permissions(tmp.path().join("f"), fs::Permissions::from_mode(0o644)).unwrap();
        let mut expected = b"stackci-tree-v1\n".to_vec();
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(b"ff\0");
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&Sha256::digest(b"x"));
        assert_eq!(tree_digest(tmp.path(), None).unwrap(), Digest::of(&expected));
    }

    #[test]
    fn errors_name_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        let e = tree_digest(&missing, None).unwrap_err();
        assert_eq!(e.path, missing);
        write(&tmp.path().join("file"), b"");
        let e = tree_digest(&tmp.path().join("file"), None).unwrap_err();
        assert!(e.source.to_string().contains("not a directory"), "{e:?}");
    }
}
