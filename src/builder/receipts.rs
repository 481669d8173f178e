//! Which package layers are unpacked in a local store, and putting them there.
//!
//! A prefix on disk is trusted only when a receipt for its layer digest exists under
//! `<root><store>/.stackci/layers/`; a prefix left by a failed or interrupted build has
//! none, so it is removed and replaced from the mirror. Layers are unpacked confined to
//! their package's prefix (see [`crate::layer::unpack`]), staged under `<root><store>/.stackci/`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::layer::Layer;
use crate::layer::staging;
use crate::layer::unpack::{self, LayerCheck};
use crate::mirror::Mirror;

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
        Receipts {
            root: root.to_path_buf(),
            dir: under_root.join(".stackci").join("layers"),
        }
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

    /// Where unpacks stage their files: `<root><store>/.stackci`, on the store's filesystem.
    fn staging_parent(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    /// Removes staging directories that killed unpackers left behind (never a live one's);
    /// returns how many.
    pub fn sweep_staging(&self) -> Result<usize> {
        staging::sweep_stale(self.staging_parent())
    }

    /// Makes sure `layer` (the package installed at `prefix`) is unpacked, unless a receipt
    /// exists: reads it once from the mirror, checking its digest, size and `diff_id`, that
    /// it expands to at most `max_size` bytes and that every member stays in `prefix`.
    pub fn ensure(&self, mirror: &dyn Mirror, layer: &Layer, prefix: &Path, max_size: u64) -> Result<bool> {
        if self.has(layer) {
            return Ok(false);
        }
        let digest = &layer.descriptor.digest;
        let reader = mirror
            .open_blob(digest)
            .with_context(|| format!("reading layer {digest} from {}", mirror.location()))?;
        let check = LayerCheck::package(layer, prefix, max_size);
        let what = || format!("unpacking {} into {}", prefix.display(), self.root.display());
        let staged =
            unpack::stage(reader, &check, &mirror.location(), &self.root, self.staging_parent()).with_context(what)?;
        // Only a layer known to be good replaces what is there.
        self.clear(prefix)?;
        staged.commit().with_context(what)?;
        self.record(layer, prefix)?;
        Ok(true)
    }
}
