//! Building packages: sources, recipes, one package build as a CI job does it, and the
//! dependency-ordered scheduler behind `stackci run`. Layer bytes (packing, unpacking)
//! are [`crate::layer`]'s.

pub mod job;
pub mod output;
pub mod procs;
pub mod receipts;
pub mod recipe;
pub mod schedule;
pub mod scratch;
pub mod source;
pub mod spack;
pub mod summary;
