//! stackci's integration tests, in one binary (one link of the library and its SDKs
//! instead of one per file). Each module is one area; `common` holds shared helpers and
//! the peers (registry, S3, fault proxy), `status_support` the API stand-ins.

mod common;
mod status_support;

mod ci_generate;
mod ci_setup;
mod cli;
mod credentials;
mod gitlab_e2e;
mod hostile_mirror;
mod image;
mod index;
mod layers;
mod mirror_files;
mod oci_registry;
mod plan_snapshot;
mod registry_e2e;
mod run;
mod s3_e2e;
mod s3_store;
mod spack;
mod spack_gitlab;
mod stack;
mod status;
mod status_run;
