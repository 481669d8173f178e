//! Keeping an image under a layer budget: container runtimes cap layers (overlayfs at about
//! 127), so beyond the budget the smallest package layers are merged into one, deterministically.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use flate2::read::MultiGzDecoder;

use super::{Image, ImageLayer};
use crate::build::pack::DEFAULT_LEVEL;
use crate::build::pgzip::ParallelGz;
use crate::digest::VerifyingReader;
use crate::mirror::Mirror;
use crate::mirror::fs::FsStore;
use crate::mirror::layout::LayoutMirror;
use crate::mirror::package::{Layer, fetch_blob};

/// Returns `image` unchanged when it has at most `budget` layers; otherwise a new image in
/// which the smallest package layers (ties: the earlier layer) are merged into one layer at
/// the position of the last of them. Base layers are never merged. The merged layer is
/// written under `scratch`; the same inputs give the same merged digest.
pub fn limit_layers(image: &Image, budget: usize, scratch: &Path) -> Result<Image> {
    if image.layers.len() <= budget {
        return Ok(image.clone());
    }
    if budget < image.base_layers + 1 {
        bail!("the base image alone has {} layers; a budget of {budget} leaves no room for packages", image.base_layers);
    }
    let excess = image.layers.len() - budget + 1;
    let mut candidates: Vec<usize> = (image.base_layers..image.layers.len()).collect();
    candidates.sort_by_key(|&i| (image.layers[i].layer.descriptor.size, i));
    let chosen: BTreeSet<usize> = candidates.into_iter().take(excess).collect();
    let merged = merge(image, &chosen, scratch)?;
    let last = *chosen.last().expect("at least two layers are merged");
    let mut out = image.clone();
    out.layers = Vec::with_capacity(budget);
    for (i, l) in image.layers.iter().enumerate() {
        if i == last {
            out.layers.push(merged.clone());
        } else if !chosen.contains(&i) {
            out.layers.push(l.clone());
        }
    }
    out.config.rootfs.diff_ids = out.layers.iter().map(|l| l.layer.diff_id.clone()).collect();
    Ok(out)
}

/// Concatenates the chosen layers' tar entries (in layer order, each directory once) into
/// one deterministic gzip layer.
fn merge(image: &Image, chosen: &BTreeSet<usize>, scratch: &Path) -> Result<ImageLayer> {
    let dir = scratch.join("merged");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(&dir)?;
    let gz = ParallelGz::new(tmp.reopen()?, tmp.path().to_path_buf(), 0, DEFAULT_LEVEL)?;
    let mut out = tar::Builder::new(gz);
    let mut dirs_seen = BTreeSet::new();
    for &i in chosen {
        let desc = &image.layers[i].layer.descriptor;
        let source = image.layers[i].source.as_ref();
        let path = match source.local_blob_path(&desc.digest) {
            Some(p) => p,
            None => fetch_blob(source, desc, &scratch.join("blobs"))?,
        };
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let verified = VerifyingReader::new(BufReader::new(file), desc.digest.clone(), Some(desc.size), desc.digest.to_string());
        let mut archive = tar::Archive::new(MultiGzDecoder::new(verified));
        for entry in archive.entries().with_context(|| format!("reading layer {}", desc.digest))? {
            let mut entry = entry.with_context(|| format!("reading layer {}", desc.digest))?;
            let mut header = entry.header().clone();
            let name = entry.path_bytes().into_owned();
            if header.entry_type().is_dir() && !dirs_seen.insert(name.clone()) {
                continue;
            }
            let link = entry.link_name_bytes().map(|l| l.into_owned());
            match link {
                Some(link) if header.entry_type().is_hard_link() || header.entry_type().is_symlink() => {
                    out.append_link(&mut header, bytes_path(&name)?, bytes_path(&link)?)?;
                }
                _ => out.append_data(&mut header, bytes_path(&name)?, &mut entry)?,
            }
        }
        // Drain to the end so the digest of the whole blob is checked.
        io::copy(&mut archive.into_inner(), &mut io::sink()).with_context(|| format!("reading layer {}", desc.digest))?;
    }
    let summary = out.into_inner()?.finish()?;
    let store = LayoutMirror::new(FsStore::new(&dir));
    store.put_blob(&summary.digest, summary.size, tmp.path())?;
    let layer = Layer::new(summary.digest, summary.size, summary.uncompressed_digest);
    Ok(ImageLayer { layer, source: Arc::new(store) })
}

fn bytes_path(b: &[u8]) -> Result<&Path> {
    use std::os::unix::ffi::OsStrExt;
    Ok(Path::new(std::ffi::OsStr::from_bytes(b)))
}
