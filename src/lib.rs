//! stackci: build a software stack in dependency order, keep the binaries in an OCI mirror
//! (a directory, an S3 bucket or a registry), generate CI pipelines, and assemble images.
//!
//! The `stackci` binary is a thin layer over this library: `src/main.rs` parses a
//! [`cli::Cli`], calls [`run`], and maps the result to an exit code.
#![deny(missing_docs)]

pub mod builder;
pub mod cancel;
pub mod ci;
pub mod cli;
mod commands;
pub mod digest;
pub mod env_vars;
pub mod generate;
pub mod image;
pub mod layer;
pub mod lockfile;
pub mod mirror;
pub mod net;
pub mod newfile;
pub mod package;
pub mod parallel;
pub mod plan;
pub mod platform;
pub mod report;
pub mod spec;
pub mod stack;
pub mod trust;

pub use commands::run;
