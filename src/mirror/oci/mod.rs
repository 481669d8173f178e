//! The OCI distribution client and the registry-backed mirror (`oci://HOST/REPO`,
//! `oci+http://HOST/REPO` for plain HTTP).
//!
//! Layers, each in its own module: [`reference`] parses URLs; [`auth`] finds credentials
//! (asking [`cred_helper`]s) and runs the Basic/Bearer flows; [`transport`] builds the HTTP client (TLS trust,
//! timeouts) and retries; [`client`] sends every request through them;
//! [`blobs`], [`manifests`] and [`tags`] are the protocol steps, one named function each;
//! [`mirror`] implements [`crate::mirror::Mirror`] on top.
//!
//! The client is async (reqwest + tokio). [`RegistryMirror`] blocks on the shared runtime
//! ([`crate::net::runtime`]), because the `Mirror` trait is synchronous; retries follow
//! [`crate::net::Retry`] and passwords and tokens are [`crate::net::Secret`]s.

pub mod auth;
pub mod blobs;
pub mod client;
pub mod cred_helper;
pub mod error;
pub mod manifests;
pub mod mirror;
pub mod reference;
pub mod referrers;
pub mod tags;
pub(crate) mod transport;

pub use auth::{Credentials, lookup_credentials};
pub use blobs::{BlobPush, UploadStart};
pub use client::{Client, ClientOptions};
pub use error::RegistryError;
pub use manifests::Manifest;
pub use mirror::RegistryMirror;
pub use reference::{Reference, Registry, Scheme, Target};
