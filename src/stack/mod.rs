//! Stacks: parsing `stack.yaml` and `spack.lock`, validation, hashing, and the DAG.

mod model;

pub use model::*;
