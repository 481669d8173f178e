//! Writing an [`Image`] to a registry, an OCI layout or a docker archive.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{Image, ImageRef};
use crate::digest::Digest;
use crate::mirror::Mirror;
use crate::mirror::layout::put_document;
use crate::mirror::open::{MirrorOptions, open};
use crate::package::fetch_blob;
use crate::spec::{self, Descriptor};
use crate::spec::{CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Digest of the manifest (for docker archives: of the config, the image id).
    pub digest: Digest,
    /// Layers uploaded or copied.
    pub copied: usize,
    /// Layers mounted from another repository of the same registry.
    pub mounted: usize,
    /// Layers the target already had.
    pub present: usize,
}

/// Writes `image` to `to`; `default_tag` names it when `to` has no tag. `scratch` is a
/// directory for temporary files (downloads of blobs that are not local).
pub fn write(image: &Image, to: &ImageRef, default_tag: &str, opts: &MirrorOptions, scratch: &Path) -> Result<Written> {
    match to {
        ImageRef::Scratch => bail!("cannot write an image to `scratch`"),
        ImageRef::Registry { url, tag } => {
            let target = open(url, Path::new("."), opts)?;
            write_to_mirror(image, target.as_ref(), tag, scratch)
        }
        ImageRef::Layout { dir, tag } => {
            let target = open(&format!("file://{}", dir.display()), Path::new("."), opts)?;
            write_to_mirror(image, target.as_ref(), tag.as_deref().unwrap_or(default_tag), scratch)
        }
        ImageRef::DockerArchive { file, name } => {
            let name = name.clone().unwrap_or_else(|| default_tag.to_string());
            let name = if name.rsplit('/').next().is_some_and(|last| last.contains(':')) {
                name
            } else {
                format!("{name}:latest")
            };
            write_docker_archive(image, file, &name, scratch)
        }
    }
}

/// Copies every layer the target lacks (mounting when it can), then the config, then the
/// manifest under `tag`, so the tag never names a missing blob.
pub fn write_to_mirror(image: &Image, target: &dyn Mirror, tag: &str, scratch: &Path) -> Result<Written> {
    let (mut copied, mut mounted, mut present) = (0, 0, 0);
    for l in &image.layers {
        let desc = &l.layer.descriptor;
        if target.has_blob(&desc.digest)? {
            present += 1;
        } else if target.mount_blob_from(&desc.digest, l.source.as_ref())? {
            mounted += 1;
        } else {
            let local = match l.source.local_blob_path(&desc.digest) {
                Some(p) => p,
                None => fetch_blob(l.source.as_ref(), desc, &scratch.join("blobs"))?,
            };
            target
                .put_blob(&desc.digest, desc.size, &local)
                .with_context(|| format!("uploading layer {} to {}", desc.digest, target.location()))?;
            copied += 1;
        }
    }
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let config = put_document(target, CONFIG_MEDIA_TYPE, &image.config, scratch)?;
    let manifest = spec::to_bytes(&image.manifest(config));
    let digest = target.put_manifest(tag, MANIFEST_MEDIA_TYPE, &manifest)?;
    Ok(Written {
        digest,
        copied,
        mounted,
        present,
    })
}

/// Writes a `docker save`-style archive (`manifest.json`, the config, one file per layer)
/// that `docker load`, `podman load` and `skopeo` read. Layers are stored compressed, as
/// they are in the mirror; the archive appears only when complete.
pub fn write_docker_archive(image: &Image, file: &Path, name: &str, scratch: &Path) -> Result<Written> {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = crate::newfile::temp_in(dir, ".tmp-").with_context(|| format!("creating a file in {}", dir.display()))?;
    let mut tar = tar::Builder::new(BufWriter::new(tmp.reopen()?));
    let config = spec::to_bytes(&image.config);
    let config_digest = Digest::of(&config);
    let config_name = format!("{}.json", config_digest.hex());
    let mut layer_names = Vec::new();
    for l in &image.layers {
        let desc: &Descriptor = &l.layer.descriptor;
        let local = match l.source.local_blob_path(&desc.digest) {
            Some(p) => p,
            None => fetch_blob(l.source.as_ref(), desc, &scratch.join("blobs"))?,
        };
        let entry = format!("{}.tar.gz", desc.digest.hex());
        if !layer_names.contains(&entry) {
            let f = File::open(&local).with_context(|| format!("opening {}", local.display()))?;
            append(&mut tar, &entry, desc.size, f)?;
        }
        layer_names.push(entry);
    }
    append(&mut tar, &config_name, config.len() as u64, &config[..])?;
    let manifest = serde_json::json!([{ "Config": config_name, "RepoTags": [name], "Layers": layer_names }]);
    let manifest = serde_json::to_vec(&manifest)?;
    append(&mut tar, "manifest.json", manifest.len() as u64, &manifest[..])?;
    let mut out = tar.into_inner().context("finishing the archive")?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    tmp.persist(file)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(Written {
        digest: config_digest,
        copied: image.layers.len(),
        mounted: 0,
        present: 0,
    })
}

fn append<W: Write>(tar: &mut tar::Builder<W>, name: &str, size: u64, data: impl io::Read) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, data)
        .with_context(|| format!("adding {name} to the archive"))
}
