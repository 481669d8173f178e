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
