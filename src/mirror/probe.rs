//! Abilities only some backends have, probed instead of required by [`Mirror`].
//!
//! As go-containerregistry asks `if l, ok := x.(withLayer)`, callers ask the backend behind
//! a `&dyn Mirror` ([`Mirror::as_any`]) whether it is one that can do more: a `file://`
//! mirror hands out its blobs' files (read in place, never copied into a cache), a
//! registry mounts blobs from another repository of the same registry, an image layout
//! (file or S3) gives access to its index and objects. Wrappers such as
//! [`super::lazy::LazyMirror`] forward `as_any` to the backend they wrap; a
//! [`ChainMirror`] is looked through to the member holding a blob ([`holder`]).

use std::path::PathBuf;

use anyhow::Result;

use super::Mirror;
use super::chain::ChainMirror;
use super::fs::FsStore;
use super::layout::{LayoutMirror, LayoutOps};
use super::oci::RegistryMirror;
use super::s3::S3Store;
use crate::digest::Digest;

/// The local file holding blob `digest`, when `mirror` (or a member of a chain) keeps blobs
/// as files and has it.
pub fn local_blob_path(mirror: &dyn Mirror, digest: &Digest) -> Option<PathBuf> {
    if let Some(chain) = chain(mirror) {
        return chain.members().find_map(|m| local_blob_path(m, digest));
    }
    mirror
        .as_any()
        .downcast_ref::<LayoutMirror<FsStore>>()?
        .blob_path(digest)
}

/// `mirror` as a registry repository, when it is one.
pub fn registry(mirror: &dyn Mirror) -> Option<&RegistryMirror> {
    mirror.as_any().downcast_ref::<RegistryMirror>()
}

/// `mirror` as layered mirrors, when it is a chain.
pub fn chain(mirror: &dyn Mirror) -> Option<&ChainMirror> {
    mirror.as_any().downcast_ref::<ChainMirror>()
}

/// `mirror` as an image layout (a `file://` or `s3://` mirror), when it is one.
pub fn layout(mirror: &dyn Mirror) -> Option<&dyn LayoutOps> {
    let any = mirror.as_any();
    if let Some(l) = any.downcast_ref::<LayoutMirror<FsStore>>() {
        return Some(l);
    }
    any.downcast_ref::<LayoutMirror<S3Store>>().map(|l| l as &dyn LayoutOps)
}

/// The mirror to read blob `digest` from: for a chain, the first member holding it (so its
/// own abilities, a local file or a mount, can be used); any other mirror is itself.
pub fn holder<'a>(mirror: &'a dyn Mirror, digest: &Digest) -> Result<&'a dyn Mirror> {
    match chain(mirror) {
        Some(chain) => Ok(chain.holder(digest)?.unwrap_or(mirror)),
        None => Ok(mirror),
    }
}
