//! Writing an [`Image`] to a registry, an OCI layout or a docker archive.
//!
//! Layers are never copied into a cache on the way: each goes to the target with
//! [`crate::mirror::copy::copy_blob`] (present, mounted, read in place from a file mirror,
//! or streamed and verified), several at a time, or is streamed into the archive from its
//! source, verified as it goes.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::Image;
use crate::digest::{Digest, VerifyingReader};
use crate::mirror::Mirror;
use crate::mirror::copy::{Copied, copy_blobs};
use crate::mirror::location::Location;
use crate::mirror::open::{MirrorOptions, open_location};
use crate::platform::Platform;
use crate::spec::{self, CONFIG_MEDIA_TYPE, Descriptor, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, put_document};

/// Layers copied at once when the options do not say (`-j`).
const DEFAULT_JOBS: usize = 8;

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
    /// For an image index: the platform manifests it lists, in order (empty otherwise).
    pub manifests: Vec<Digest>,
}

/// Writes `image` to `to` (an image reference, [`Location::image`]); `default_tag` names it
/// when `to` has no tag.
pub fn write(image: &Image, to: &Location, default_tag: &str, opts: &MirrorOptions) -> Result<Written> {
    match to {
        Location::Scratch => bail!("cannot write an image to `scratch`"),
        Location::Layout { .. } | Location::Registry(_) | Location::S3 { .. } => {
            let target = open_location(to, opts)?;
            let jobs = if opts.jobs == 0 { DEFAULT_JOBS } else { opts.jobs };
            write_to_mirror(image, target.as_ref(), to.tag().unwrap_or(default_tag), jobs)
        }
        Location::DockerArchive { file, name } => {
            let name = name.clone().unwrap_or_else(|| default_tag.to_string());
            let name = if name.rsplit('/').next().is_some_and(|last| last.contains(':')) {
                name
            } else {
                format!("{name}:latest")
            };
            write_docker_archive(image, file, &name)
        }
    }
}

/// Copies every layer the target lacks ([`copy_blobs`], `jobs` at a time), then the config,
/// then the manifest under `tag`, so the tag never names a missing blob.
pub fn write_to_mirror(image: &Image, target: &dyn Mirror, tag: &str, jobs: usize) -> Result<Written> {
    let (manifest, mut written) = push_content(image, target, jobs)?;
    written.digest = target.put_manifest(tag, MANIFEST_MEDIA_TYPE, &manifest)?;
    Ok(written)
}

/// Writes one image per platform and, under `tag`, an OCI image index over them to `to`
/// (a registry or a layout; a docker archive holds one platform only). Every platform's
/// manifest is stored before the index that names it; only the index is tagged.
pub fn write_index(
    images: &[(Platform, Image)],
    to: &Location,
    default_tag: &str,
    opts: &MirrorOptions,
) -> Result<Written> {
    if matches!(to, Location::DockerArchive { .. } | Location::Scratch) {
        bail!("a multi-platform image needs a registry or an OCI layout, not {to}");
    }
    let target = open_location(to, opts)?;
    let jobs = if opts.jobs == 0 { DEFAULT_JOBS } else { opts.jobs };
    let mut total = Written {
        digest: Digest::of(b""),
        copied: 0,
        mounted: 0,
        present: 0,
        manifests: Vec::new(),
    };
    let mut manifests = Vec::with_capacity(images.len());
    for (platform, image) in images {
        let (manifest, written) =
            push_content(image, target.as_ref(), jobs).with_context(|| format!("writing the {platform} image"))?;
        let digest = put_untagged_manifest(target.as_ref(), &manifest)
            .with_context(|| format!("writing the {platform} manifest"))?;
        total.copied += written.copied;
        total.mounted += written.mounted;
        total.present += written.present;
        total.manifests.push(digest.clone());
        manifests.push(Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest,
            size: manifest.len() as u64,
            annotations: Default::default(),
            extra: [("platform".to_string(), platform.to_json())].into(),
        });
    }
    let index = spec::Index {
        schema_version: 2,
        media_type: Some(INDEX_MEDIA_TYPE.into()),
        manifests,
        extra: Default::default(),
    };
    total.digest = target.put_manifest(
        to.tag().unwrap_or(default_tag),
        INDEX_MEDIA_TYPE,
        &spec::to_bytes(&index),
    )?;
    Ok(total)
}

/// Stores a manifest no tag names (one an index lists) under its own digest.
fn put_untagged_manifest(target: &dyn Mirror, manifest: &[u8]) -> Result<Digest> {
    target.put_manifest(&Digest::of(manifest).to_string(), MANIFEST_MEDIA_TYPE, manifest)
}

/// Copies an image's layers and config to `target`; returns its manifest's bytes (not yet
/// stored) and what was copied.
fn push_content(image: &Image, target: &dyn Mirror, jobs: usize) -> Result<(Vec<u8>, Written)> {
    let (mut copied, mut mounted, mut present) = (0, 0, 0);
    let blobs: Vec<(&dyn Mirror, &Descriptor)> = image
        .layers
        .iter()
        .map(|l| (l.source.as_ref(), &l.layer.descriptor))
        .collect();
    for outcome in copy_blobs(&blobs, target, jobs)? {
        match outcome {
            Copied::Present => present += 1,
            Copied::Mounted => mounted += 1,
            Copied::Transferred => copied += 1,
        }
    }
    let config = put_document(target, CONFIG_MEDIA_TYPE, &image.config)?;
    let manifest = spec::to_bytes(&image.manifest(config));
    Ok((
        manifest,
        Written {
            digest: Digest::of(b""),
            copied,
            mounted,
            present,
            manifests: Vec::new(),
        },
    ))
}

/// Writes a `docker save`-style archive (`manifest.json`, the config, one file per layer)
/// that `docker load`, `podman load` and `skopeo` read. Layers are stored compressed, as
/// they are in the mirror, each streamed from its source once and verified against its
/// descriptor; the archive appears only when complete.
pub fn write_docker_archive(image: &Image, file: &Path, name: &str) -> Result<Written> {
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
        let entry = format!("{}.tar.gz", desc.digest.hex());
        if !layer_names.contains(&entry) {
            let source = l.source.as_ref();
            let what = format!("layer {} from {}", desc.digest, source.location());
            let reader = source
                .open_blob(&desc.digest)
                .with_context(|| format!("reading {what}"))?;
            let verified = VerifyingReader::new(reader, desc.digest.clone(), Some(desc.size), what);
            append(&mut tar, &entry, desc.size, verified)?;
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
        manifests: Vec::new(),
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
