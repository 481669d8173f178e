//! Choosing a mirror backend from a URL.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::Mirror;
use super::fs::FsStore;
use super::layout::LayoutMirror;
use super::oci::client::ClientOptions;
use super::oci::mirror::RegistryMirror;
use super::s3::{S3Options, S3Store};
use crate::net::redact;

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
/// `s3://BUCKET/PREFIX`, `oci://HOST/REPO` or `oci+http://HOST/REPO`.
///
/// A URL with credentials (`oci://user:token@...`) is refused, naming where they go instead;
/// messages show URLs with credentials masked.
pub fn open(url: &str, base: &Path, opts: &MirrorOptions) -> Result<Box<dyn Mirror>> {
    if redact::userinfo(url).is_some() {
        let hint = if url.starts_with("s3://") {
            redact::S3_HINT
        } else {
            redact::REGISTRY_HINT
        };
        bail!("the mirror URL `{}` carries credentials: {hint}", redact::url(url));
    }
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(Box::new(LayoutMirror::new(FsStore::new(base.join(path)))));
    }
    if url.starts_with("oci://") || url.starts_with("oci+http://") {
        let client = ClientOptions {
            ca_cert: opts.ca_cert.clone(),
            jobs: if opts.jobs == 0 {
                ClientOptions::default().jobs
            } else {
                opts.jobs
            },
            ..ClientOptions::default()
        };
        return Ok(Box::new(RegistryMirror::new(url, &client)?));
    }
    if url.starts_with("s3://") {
        let s3 = S3Options {
            endpoint: opts.s3_endpoint.clone(),
            ..S3Options::default()
        };
        return Ok(Box::new(LayoutMirror::new(S3Store::new(url, &s3)?)));
    }
    if url.contains("://") {
        let scheme = url.split("://").next().unwrap_or_default();
        bail!(
            "unsupported mirror URL `{}`: scheme `{scheme}` is not one of file://, s3://, oci://, oci+http://",
            redact::url(url)
        );
    }
    Ok(Box::new(LayoutMirror::new(FsStore::new(base.join(url)))))
}
