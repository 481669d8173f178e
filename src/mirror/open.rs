//! Choosing a mirror backend from a URL.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::Mirror;
use super::fs::FsStore;
use super::layout::LayoutMirror;

/// Options every backend may use; each states its default.
#[derive(Debug, Clone, Default)]
pub struct MirrorOptions {
    /// Extra CA certificate for TLS (`--ca-cert`; default: system roots, plus `SSL_CERT_FILE`).
    pub ca_cert: Option<PathBuf>,
    /// Parallel uploads (default 8 when 0).
    pub jobs: usize,
}

/// Opens the mirror at `url`: `file://DIR` (or a plain path, relative to `base`).
pub fn open(url: &str, base: &Path, _opts: &MirrorOptions) -> Result<Box<dyn Mirror>> {
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(Box::new(LayoutMirror::new(FsStore::new(base.join(path)))));
    }
    if url.contains("://") {
        let scheme = url.split("://").next().unwrap_or_default();
        bail!("unsupported mirror URL `{url}`: scheme `{scheme}` is not one of file://, s3://, oci://, oci+http://");
    }
    Ok(Box::new(LayoutMirror::new(FsStore::new(base.join(url)))))
}
