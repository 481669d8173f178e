//! Building packages: sources, recipes, deterministic packing, verified unpacking, and the
//! dependency-ordered scheduler behind `stackci run`.

pub mod cancel;
pub mod job;
pub mod members;
pub mod output;
pub mod pack;
pub mod pgzip;
pub mod procs;
pub mod receipts;
pub mod recipe;
pub mod schedule;
pub mod scratch;
pub mod source;
pub mod staging;
pub mod stream;
pub mod summary;
pub mod unpack;
