//! Checking an image's package layers before the image is written, once per layer.
//!
//! A package layer goes into an image only if it satisfies what `install` demands before
//! unpacking (see [`crate::layer::unpack`]): its blob matches its digest and size, its tar
//! stream matches the config's `diff_id`, it expands to at most the size cap, and every
//! member is inside the package's prefix (symlinks resolving there too). That means reading
//! each blob once.
//!
//! Layers are content-addressed, so a positive result holds forever for the same
//! (digest, `diff_id`, prefix): it is cached in the stack's state directory as
//! `<state>/verified/v1/<digest hex>/<sha256 of "diff_id\nprefix">`, a small text file
//! naming all three and the uncompressed size, and a warm `image` reads no blob to verify.
//! A cached result counts only when every field matches and the recorded size is within the
//! current cap; failures are never cached. The cache is as trusted as the state directory
//! itself (the user's own); deleting it only costs re-reading.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Image, ImageLayer};
use crate::digest::Digest;
use crate::layer::unpack::{self, LayerCheck};

/// Positive verification results, one small file per (layer digest, `diff_id`, prefix).
#[derive(Debug, Clone)]
pub struct VerifiedCache {
    dir: PathBuf,
}

impl VerifiedCache {
    /// The cache under a stack's state directory (`<state>/verified/v1`).
    pub fn new(state_dir: &Path) -> VerifiedCache {
        VerifiedCache {
            dir: state_dir.join("verified").join("v1"),
        }
    }

    fn entry(&self, check: &LayerCheck) -> PathBuf {
        let (diff_id, prefix) = fields(check);
        let key = Digest::of(format!("{diff_id}\n{prefix}").as_bytes());
        self.dir.join(check.digest.hex()).join(key.hex())
    }

    /// The entry's text up to the size.
    fn header(check: &LayerCheck) -> String {
        let (diff_id, prefix) = fields(check);
        format!("layer {}\ndiff_id {diff_id}\nprefix {prefix}\nsize ", check.digest)
    }

    /// Whether `check` passed before, with an uncompressed size within its cap.
    pub fn contains(&self, check: &LayerCheck) -> bool {
        let Ok(text) = fs::read_to_string(self.entry(check)) else {
            return false;
        };
        text.strip_prefix(&Self::header(check))
            .and_then(|rest| rest.trim_end().parse::<u64>().ok())
            .is_some_and(|size| size <= check.max_size)
    }

    /// Records that `check` passed and the layer expands to `size` bytes.
    pub fn record(&self, check: &LayerCheck, size: u64) -> Result<()> {
        let path = self.entry(check);
        let dir = path.parent().expect("an entry has a parent");
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp =
            tempfile::NamedTempFile::new_in(dir).with_context(|| format!("creating a file in {}", dir.display()))?;
        fs::write(tmp.path(), format!("{}{size}\n", Self::header(check)))
            .with_context(|| format!("writing {}", tmp.path().display()))?;
        tmp.persist(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

/// The `diff_id` and prefix of a check, as text.
fn fields(check: &LayerCheck) -> (String, String) {
    let diff_id = check.diff_id.as_ref().map(Digest::to_string).unwrap_or_default();
    let prefix = check
        .prefix
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    (diff_id, prefix)
}

/// How many package layers were read, and how many the cache vouched for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verified {
    /// Layers read and checked now.
    pub read: usize,
    /// Layers skipped because they passed before.
    pub cached: usize,
}

/// Checks every package layer of `image` (those with a prefix), reading each blob once
/// from its source unless `cache` holds a positive result; `max_size` caps each layer's
/// uncompressed size. Layers are checked one per core at a time (hashing and gunzip are
/// CPU-bound). Base layers are not checked (they are not stackci packages).
pub fn verify_package_layers(image: &Image, cache: &VerifiedCache, max_size: u64) -> Result<Verified> {
    let mut done = Verified::default();
    let mut todo = Vec::new();
    for l in &image.layers {
        let Some(prefix) = &l.prefix else { continue };
        let check = LayerCheck::package(&l.layer, prefix, max_size);
        // A layer listed twice is read once; the second counts as vouched for, as before.
        if cache.contains(&check) || todo.iter().any(|(_, c): &(&ImageLayer, LayerCheck)| *c == check) {
            done.cached += 1;
        } else {
            todo.push((l, check));
        }
    }
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    crate::parallel::try_map(&todo, jobs, |(l, check)| {
        let digest = &check.digest;
        let source = l.source.as_ref();
        let reader = source
            .open_blob(digest)
            .with_context(|| format!("reading layer {digest} from {}", source.location()))?;
        let prefix = check.prefix.as_deref().unwrap_or(std::path::Path::new("/"));
        let size = unpack::verify_layer(reader, check, &source.location())
            .with_context(|| format!("checking layer {digest} of {}", prefix.display()))?;
        cache.record(check, size)
    })?;
    done.read += todo.len();
    Ok(done)
}
