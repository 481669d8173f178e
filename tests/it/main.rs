//! stackci's integration tests, in one binary (one link of the library and its SDKs
//! instead of one per file). Each module is one area; `common` holds shared helpers and
//! the peers (registry, S3, fault proxy), `status_support` the API stand-ins.

mod common;
mod status_support;

mod ci_entry_points;
mod ci_generate;
mod ci_setup;
mod cli;
mod cred_helpers;
mod credentials;
mod first_hour;
mod gitlab_e2e;
mod hostile_mirror;
mod image;
mod index;
mod layered;
mod layers;
mod mirror_conformance;
mod mirror_copy;
mod mirror_files;
mod mirror_prune;
mod mirror_verify;
mod multi_platform;
mod oci_registry;
mod plan_snapshot;
mod registry_e2e;
mod registry_names;
mod run;
mod s3_e2e;
mod s3_store;
mod spack;
mod spack_gitlab;
mod stack;
mod status;
mod status_run;
mod trigger;
mod trust;
mod trust_remote;
