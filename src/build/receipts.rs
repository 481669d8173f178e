//! Which package layers are unpacked in a local store, and putting them there.
//!
//! A prefix on disk is trusted only when a receipt for its layer digest exists under
//! `<root><store>/.stackci/layers/`; a prefix left by a failed or interrupted build has
//! none, so it is removed and replaced from the mirror.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::unpack;
use crate::mirror::Mirror;
use crate::mirror::package::{Layer, fetch_blob};

/// A store as seen from a root directory (`/` for builds, `--root DIR` for installs).
#[derive(Debug, Clone)]
pub struct Receipts {
    root: PathBuf,
    dir: PathBuf,
}

impl Receipts {
    /// Receipts for `store` (absolute) under `root`.
    pub fn new(root: &Path, store: &Path) -> Receipts {
        let under_root = root.join(store.strip_prefix("/").unwrap_or(store));
        Receipts { root: root.to_path_buf(), dir: under_root.join(".stackci").join("layers") }
    }

    /// Where an absolute prefix lands under the root.
    pub fn rooted(&self, prefix: &Path) -> PathBuf {
        self.root.join(prefix.strip_prefix("/").unwrap_or(prefix))
    }

    fn receipt(&self, layer: &Layer) -> PathBuf {
        self.dir.join(layer.descriptor.digest.hex())
    }

    /// Whether the layer is fully unpacked.
    pub fn has(&self, layer: &Layer) -> bool {
        self.receipt(layer).exists()
    }

    /// Records that `layer` is fully unpacked at `prefix`.
    pub fn record(&self, layer: &Layer, prefix: &Path) -> Result<()> {
        fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let path = self.receipt(layer);
        fs::write(&path, format!("{}\n", prefix.display())).with_context(|| format!("writing {}", path.display()))
    }

    /// Forgets every receipt naming `prefix` and removes the prefix directory.
    pub fn clear(&self, prefix: &Path) -> Result<()> {
        if let Ok(entries) = fs::read_dir(&self.dir) {
            let want = format!("{}\n", prefix.display());
            for entry in entries.flatten() {
                if fs::read_to_string(entry.path()).is_ok_and(|s| s == want) {
                    fs::remove_file(entry.path()).with_context(|| format!("removing {}", entry.path().display()))?;
                }
            }
        }
        let rooted = self.rooted(prefix);
        match fs::remove_dir_all(&rooted) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", rooted.display()))
            }
            _ => Ok(()),
        }
    }

    /// Makes sure `layer` (the package installed at `prefix`) is unpacked: fetches it
    /// from the mirror through `cache`, verifies it and unpacks it, unless a receipt exists.
    pub fn ensure(&self, mirror: &dyn Mirror, layer: &Layer, prefix: &Path, cache: &Path) -> Result<bool> {
        if self.has(layer) {
            return Ok(false);
        }
        let blob = fetch_blob(mirror, &layer.descriptor, cache)?;
        self.clear(prefix)?;
        unpack::unpack_layer(&blob, &layer.descriptor.digest, &self.root)
            .with_context(|| format!("unpacking {} into {}", prefix.display(), self.root.display()))?;
        self.record(layer, prefix)?;
        Ok(true)
    }
}
