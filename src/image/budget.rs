//! Keeping an image under a layer budget: container runtimes cap layers (overlayfs at about
//! 127), so beyond the budget the smallest package layers are merged into one, deterministically.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::{Image, ImageLayer};
use crate::layer::members::Members;
use crate::layer::pack::DEFAULT_LEVEL;
use crate::layer::pgzip::ParallelGz;
use crate::layer::stream::{LayerCheck, read_layer};
use crate::mirror::fs::FsStore;
use crate::mirror::layout::LayoutMirror;
use crate::mirror::{FileSource, Mirror};

/// Returns `image` unchanged when it has at most `budget` layers; otherwise a new image in
/// which the smallest package layers (ties: the earlier layer) are merged into one layer at
/// the position of the last of them. Base layers are never merged. The merged layer is
/// written under `scratch`; the same inputs give the same merged digest.
///
/// Each merged layer is read once, checked as [`super::verify`] does (digest, `diff_id`,
/// at most `max_layer_size` bytes uncompressed, every member inside its own package's
/// prefix), so every member of the merged layer is under one of the merged packages' prefixes.
pub fn limit_layers(image: &Image, budget: usize, scratch: &Path, max_layer_size: u64) -> Result<Image> {
    if image.layers.len() <= budget {
        return Ok(image.clone());
    }
    if budget < image.base_layers + 1 {
        bail!(
            "the base image alone has {} layers; a budget of {budget} leaves no room for packages",
            image.base_layers
        );
    }
    let excess = image.layers.len() - budget + 1;
    let mut candidates: Vec<usize> = (image.base_layers..image.layers.len()).collect();
    candidates.sort_by_key(|&i| (image.layers[i].layer.descriptor.size, i));
    let chosen: BTreeSet<usize> = candidates.into_iter().take(excess).collect();
    let merged = merge(image, &chosen, scratch, max_layer_size)?;
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
/// one deterministic gzip layer, reading each blob once from its source and checking it.
fn merge(image: &Image, chosen: &BTreeSet<usize>, scratch: &Path, max_layer_size: u64) -> Result<ImageLayer> {
    let dir = scratch.join("merged");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = crate::newfile::temp_in(&dir, ".tmp-merge-")
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let gz = ParallelGz::new(tmp.reopen()?, tmp.path().to_path_buf(), 0, DEFAULT_LEVEL)?;
    let mut out = tar::Builder::new(gz);
    let mut dirs_seen = BTreeSet::new();
    for &i in chosen {
        let l = &image.layers[i];
        let check = LayerCheck {
            digest: l.layer.descriptor.digest.clone(),
            size: Some(l.layer.descriptor.size),
            diff_id: Some(l.layer.diff_id.clone()),
            prefix: l.prefix.clone(),
            max_size: max_layer_size,
        };
        let digest = &check.digest;
        let source = l.source.as_ref();
        let reader = source
            .open_blob(digest)
            .with_context(|| format!("reading layer {digest} from {}", source.location()))?;
        let mut members = Members::new(digest, check.prefix.as_deref());
        read_layer(reader, &check, &source.location(), |entry| {
            let mut header = entry.header().clone();
            let name = entry.path_bytes().into_owned();
            let link = entry.link_name_bytes().map(|l| l.into_owned());
            members.admit(header.entry_type(), &name, link.as_deref())?;
            if header.entry_type().is_dir() && !dirs_seen.insert(name.clone()) {
                return Ok(());
            }
            match link {
                Some(link) if header.entry_type().is_hard_link() || header.entry_type().is_symlink() => {
                    out.append_link(&mut header, bytes_path(&name)?, bytes_path(&link)?)?;
                }
                _ => out.append_data(&mut header, bytes_path(&name)?, entry)?,
            }
            Ok(())
        })
        .with_context(|| format!("merging layer {digest}"))?;
        members.check_symlinks(None)?;
    }
    let layer = out.into_inner()?.finish()?;
    // The merged blob is renamed into a layout of its own, which the image then reads from.
    let store = LayoutMirror::new(FsStore::new(&dir));
    let tmp = tmp.into_temp_path();
    store.put_blob(layer.digest(), &FileSource::hand_over(&*tmp, layer.size()))?;
    Ok(ImageLayer {
        layer,
        source: Arc::new(store),
        prefix: None,
    })
}

fn bytes_path(b: &[u8]) -> Result<&Path> {
    use std::os::unix::ffi::OsStrExt;
    Ok(Path::new(std::ffi::OsStr::from_bytes(b)))
}
