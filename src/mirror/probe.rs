//! Abilities only some backends have, probed instead of required by [`Mirror`].
//!
//! As go-containerregistry asks `if l, ok := x.(withLayer)`, callers ask the backend behind
//! a `&dyn Mirror` ([`Mirror::as_any`]) whether it is one that can do more: a `file://`
//! mirror hands out its blobs' files (read in place, never copied into a cache), a
//! registry mounts blobs from another repository of the same registry. Wrappers such as
//! [`super::lazy::LazyMirror`] forward `as_any` to the backend they wrap.

use std::path::PathBuf;

use super::Mirror;
use super::fs::FsStore;
use super::layout::LayoutMirror;
use super::oci::RegistryMirror;
use crate::digest::Digest;

/// The local file holding blob `digest`, when `mirror` keeps blobs as files and has it.
pub fn local_blob_path(mirror: &dyn Mirror, digest: &Digest) -> Option<PathBuf> {
    mirror
        .as_any()
        .downcast_ref::<LayoutMirror<FsStore>>()?
        .blob_path(digest)
}

/// `mirror` as a registry repository, when it is one.
pub fn registry(mirror: &dyn Mirror) -> Option<&RegistryMirror> {
    mirror.as_any().downcast_ref::<RegistryMirror>()
}
