//! Turning install prefixes into layers and back: the deterministic packer and the
//! verified, safe unpacker.

pub mod pack;
pub mod pgzip;
pub mod unpack;
