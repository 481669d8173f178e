//! Opening a mirror backend for a [`Location`].

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::Mirror;
use super::fs::FsStore;
use super::layout::LayoutMirror;
use super::location::Location;
use super::oci::client::ClientOptions;
use super::oci::mirror::RegistryMirror;
use super::s3::{S3Options, S3Store};

/// Options every backend may use; each states its default.
#[derive(Debug, Clone, Default)]
pub struct MirrorOptions {
    /// Extra CA certificate for TLS (`--ca-cert`; default: system roots, plus `SSL_CERT_FILE`).
    pub ca_cert: Option<PathBuf>,
    /// Parallel uploads (default 8 when 0).
    pub jobs: usize,
    /// S3-compatible endpoint (`--s3-endpoint`; default: `AWS_ENDPOINT_URL` or AWS).
    pub s3_endpoint: Option<String>,
}

/// Opens the mirror at `url`: `file://DIR` (or a plain path, relative to `base`),
/// `s3://BUCKET/PREFIX`, `oci://HOST/REPO` or `oci+http://HOST/REPO` (see
/// [`Location::mirror`]; URLs with credentials are refused).
pub fn open(url: &str, base: &Path, opts: &MirrorOptions) -> Result<Box<dyn Mirror>> {
    open_location(&Location::mirror(url, base)?, opts)
}

/// Opens the backend holding `location`: the layout directory, the bucket, or the registry
/// repository (an image reference's tag is not part of the mirror).
pub fn open_location(location: &Location, opts: &MirrorOptions) -> Result<Box<dyn Mirror>> {
    match location {
        Location::Layout { dir, .. } => Ok(Box::new(LayoutMirror::new(FsStore::new(dir)))),
        Location::Registry(reference) => {
            let client = ClientOptions {
                ca_cert: opts.ca_cert.clone(),
                jobs: if opts.jobs == 0 {
                    ClientOptions::default().jobs
                } else {
                    opts.jobs
                },
                ..ClientOptions::default()
            };
            Ok(Box::new(RegistryMirror::for_repository(reference.clone(), &client)?))
        }
        Location::S3 { .. } => {
            let s3 = S3Options {
                endpoint: opts.s3_endpoint.clone(),
                ..S3Options::default()
            };
            Ok(Box::new(LayoutMirror::new(S3Store::new(&location.to_string(), &s3)?)))
        }
        Location::Scratch | Location::DockerArchive { .. } => {
            bail!("`{location}` is not a mirror: use a directory, s3://, oci:// or oci+http://")
        }
    }
}
