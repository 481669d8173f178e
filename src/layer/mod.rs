//! Package layers: a deterministic `tar.gz` of an install prefix, packed with parallel
//! gzip ([`pack`], [`pgzip`]), and read back once, verified and confined ([`stream`],
//! [`members`], [`unpack`], [`staging`]).
//!
//! [`Layer`] is the one type for a layer's identity: its descriptor (digest, size, media
//! type) and its `diff_id`.

pub mod members;
pub mod pack;
pub mod pgzip;
pub mod staging;
pub mod stream;
pub mod unpack;

use crate::digest::Digest;
use crate::spec::{Descriptor, LAYER_MEDIA_TYPE};

/// One layer: the compressed blob's descriptor and the uncompressed tar's digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Descriptor of the `tar.gz` blob (digest, size, media type).
    pub descriptor: Descriptor,
    /// sha256 of the uncompressed tar (the image config's `diff_id`).
    pub diff_id: Digest,
}

impl Layer {
    /// A gzip tar layer ([`LAYER_MEDIA_TYPE`]) with the given digest, size and `diff_id`.
    pub fn new(digest: Digest, size: u64, diff_id: Digest) -> Layer {
        let descriptor = Descriptor {
            media_type: LAYER_MEDIA_TYPE.into(),
            digest,
            size,
            annotations: Default::default(),
            extra: Default::default(),
        };
        Layer { descriptor, diff_id }
    }

    /// The compressed blob's digest (the layer digest).
    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }

    /// The compressed blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.descriptor.size
    }
}
