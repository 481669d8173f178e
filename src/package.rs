//! Packages as OCI images: pushing a built package, and fetching a runtime closure.
//!
//! A package's manifest lists its runtime closure's layers in dependency order, its own
//! layer last; its config carries `Env` (PATH over the closure's `bin` directories) and
//! the package metadata as labels. Everything here is written once over the [`Mirror`] core:
//! the mirror stores bytes, this module knows what a package is.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::digest::{Digest, VerifyingReader};
use crate::layer::Layer;
use crate::mirror::{BlobSource, Mirror};
use crate::platform::Platform;
use crate::spec::{
    self, CONFIG_MEDIA_TYPE, ImageConfig, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, Manifest, RootFs, RuntimeConfig,
    TAG_ANNOTATION, put_document,
};
use crate::stack::Stack;
use crate::trust::Trust;

/// Label prefix for package metadata in the image config.
pub const LABEL_PREFIX: &str = "dev.stackci.";
/// The PATH a container gets after the packages' `bin` directories.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A package image read back from the mirror.
#[derive(Debug, Clone)]
pub struct PackageImage {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its config.
    pub config: ImageConfig,
}

impl PackageImage {
    /// Layers with their diff ids, in order (the package's own layer last).
    pub fn layers(&self) -> Result<Vec<Layer>> {
        if self.manifest.layers.len() != self.config.rootfs.diff_ids.len() {
            bail!(
                "manifest has {} layers but its config lists {} diff ids",
                self.manifest.layers.len(),
                self.config.rootfs.diff_ids.len()
            );
        }
        Ok(self
            .manifest
            .layers
            .iter()
            .zip(&self.config.rootfs.diff_ids)
            .map(|(d, id)| Layer {
                descriptor: d.clone(),
                diff_id: id.clone(),
            })
            .collect())
    }

    /// The package's own layer.
    pub fn own_layer(&self) -> Result<Layer> {
        self.layers()?.pop().context("package manifest has no layers")
    }
}

/// Reads the package manifest and config of `tag`; `None` when the tag does not exist.
///
/// A package is stackci's own format, so it is held to it: `schemaVersion` 2, an OCI image
/// manifest (`mediaType` given and [`MANIFEST_MEDIA_TYPE`]), an OCI config
/// ([`CONFIG_MEDIA_TYPE`]), gzip tar layers ([`LAYER_MEDIA_TYPE`]) and one `diff_id` per
/// layer. Anything else is an error naming the tag and the mirror.
pub fn read_package(mirror: &dyn Mirror, tag: &str) -> Result<Option<PackageImage>> {
    match mirror.get_manifest(tag)? {
        Some(bytes) => package_from_manifest(mirror, tag, &bytes).map(Some),
        None => Ok(None),
    }
}

/// [`read_package`] for manifest bytes already read from `tag` (and, say, verified by
/// [`crate::trust`]): parses and checks them and reads their config.
pub fn package_from_manifest(mirror: &dyn Mirror, tag: &str, bytes: &[u8]) -> Result<PackageImage> {
    let manifest = parse_manifest(mirror, tag, bytes)?;
    let not_a_package = || format!("`{tag}` in {} is not a stackci package manifest", mirror.location());
    check_manifest(&manifest).with_context(not_a_package)?;
    let image = PackageImage {
        config: read_config(mirror, tag, &manifest)?,
        manifest,
    };
    image.layers().with_context(not_a_package)?;
    Ok(image)
}

/// The manifest-format checks of [`read_package`].
fn check_manifest(m: &Manifest) -> Result<()> {
    if m.schema_version != 2 {
        bail!("schemaVersion is {}, expected 2", m.schema_version);
    }
    match m.media_type.as_deref() {
        Some(MANIFEST_MEDIA_TYPE) => {}
        Some(other) => bail!("manifest mediaType is `{other}`, expected `{MANIFEST_MEDIA_TYPE}`"),
        None => bail!("the manifest has no mediaType, expected `{MANIFEST_MEDIA_TYPE}`"),
    }
    if m.config.media_type != CONFIG_MEDIA_TYPE {
        bail!(
            "config {} has mediaType `{}`, expected `{CONFIG_MEDIA_TYPE}`",
            m.config.digest,
            m.config.media_type
        );
    }
    if let Some(l) = m.layers.iter().find(|l| l.media_type != LAYER_MEDIA_TYPE) {
        bail!(
            "layer {} has mediaType `{}`, expected `{LAYER_MEDIA_TYPE}`",
            l.digest,
            l.media_type
        );
    }
    Ok(())
}

/// Reads the manifest and config of image `tag` for `platform` without the package-format
/// checks (a base image may come from any tool); `None` when the tag does not exist. When
/// the tag names an OCI image index or a Docker manifest list, the manifest for `platform`
/// is chosen from it ([`crate::platform::select`]); an image built for another platform is
/// an error.
pub fn read_image(mirror: &dyn Mirror, tag: &str, platform: &Platform) -> Result<Option<PackageImage>> {
    let Some(mut bytes) = mirror.get_manifest(tag)? else {
        return Ok(None);
    };
    let what = format!("`{tag}` in {}", mirror.location());
    // An index may name indexes in turn; two levels is all that real images use.
    for _ in 0..3 {
        let Some(index) = as_index(&bytes) else { break };
        let index = index.with_context(|| format!("{what} is not a valid image index"))?;
        let entry = crate::platform::select(&index.manifests, platform, &what)?;
        let digest = entry.digest.clone();
        bytes = mirror
            .get_manifest(&digest.to_string())?
            .with_context(|| format!("{what} names manifest {digest} for {platform}, which is missing"))?;
        if Digest::of(&bytes) != digest {
            bail!("manifest {digest} (for {platform} in {what}) does not match its digest");
        }
    }
    if as_index(&bytes).is_some() {
        bail!("{what} nests image indexes more than three deep");
    }
    let manifest: Manifest =
        serde_json::from_slice(&bytes).with_context(|| format!("manifest of {what} is not an OCI image manifest"))?;
    let config = read_config(mirror, tag, &manifest)?;
    // The variant is not compared: configs often omit it.
    if let Ok(built_for) = Platform::parse(&format!("{}/{}", config.os, config.architecture))
        && (built_for.os != platform.os || built_for.architecture != platform.architecture)
    {
        bail!("{what} is an image for {built_for}, not {platform}: use a multi-platform base or one for {platform}");
    }
    Ok(Some(PackageImage { config, manifest }))
}

/// The document as an image index (OCI index or Docker manifest list) when it is one.
fn as_index(bytes: &[u8]) -> Option<Result<spec::Index>> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let media_type = value.get("mediaType").and_then(|m| m.as_str()).unwrap_or_default();
    let is_index = value.get("manifests").is_some()
        || media_type == spec::INDEX_MEDIA_TYPE
        || media_type == spec::DOCKER_MANIFEST_LIST_MEDIA_TYPE;
    is_index.then(|| serde_json::from_value(value).map_err(anyhow::Error::from))
}

fn parse_manifest(mirror: &dyn Mirror, tag: &str, bytes: &[u8]) -> Result<Manifest> {
    serde_json::from_slice(bytes).with_context(|| {
        format!(
            "manifest of `{tag}` in {} is not an OCI image manifest",
            mirror.location()
        )
    })
}

/// Reads and verifies the config `manifest` names (at most 4 MiB).
fn read_config(mirror: &dyn Mirror, tag: &str, manifest: &Manifest) -> Result<ImageConfig> {
    let mut config_bytes = Vec::new();
    let reader = mirror.open_blob(&manifest.config.digest)?;
    let what = format!("config of `{tag}`");
    io::Read::read_to_end(
        &mut VerifyingReader::new(
            io::Read::take(reader, 4 << 20),
            manifest.config.digest.clone(),
            Some(manifest.config.size),
            what,
        ),
        &mut config_bytes,
    )
    .with_context(|| format!("reading the config of `{tag}` from {}", mirror.location()))?;
    serde_json::from_slice(&config_bytes)
        .with_context(|| format!("config of `{tag}` in {} is not an OCI image config", mirror.location()))
}

/// `created` timestamp for `SOURCE_DATE_EPOCH` seconds, RFC 3339 in UTC.
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `PATH` for a list of prefixes: each prefix's `bin`, the last package first, then the system PATH.
pub fn path_env(prefixes: &[PathBuf]) -> String {
    let mut parts: Vec<String> = prefixes
        .iter()
        .rev()
        .map(|p| p.join("bin").display().to_string())
        .collect();
    parts.push(SYSTEM_PATH.into());
    parts.join(":")
}

/// Pushes package `i` of `stack`: its own `layer` (its bytes from `blob`, e.g. a freshly
/// [`crate::layer::pack::Packed`] file that a file mirror renames into place), a config and
/// a manifest over its runtime closure. The dependencies must already be in the mirror.
/// The tag is written last, so it never names a missing blob; with a signing key
/// ([`Trust::signer`]) the manifest is signed before its tag is written, and with trusted
/// keys the dependencies' manifests are verified before their layers are named.
pub fn push_package(
    mirror: &dyn Mirror,
    stack: &Stack,
    i: usize,
    layer: &Layer,
    blob: &dyn BlobSource,
    source_date_epoch: u64,
    trust: &Trust,
) -> Result<Digest> {
    let pkg = &stack.packages[i];
    let tag = pkg.tag();
    let closure = stack.runtime_closure(i);
    let mut layers = Vec::with_capacity(closure.len());
    for &d in &closure[..closure.len() - 1] {
        let dep = &stack.packages[d];
        let image = trust.read_package(mirror, &dep.tag())?.with_context(|| {
            format!(
                "dependency `{}` of `{}` is not in {}; build it first",
                dep.tag(),
                tag,
                mirror.location()
            )
        })?;
        layers.push(image.own_layer()?);
    }
    layers.push(layer.clone());

    if !mirror.has_blob(&layer.descriptor.digest)? {
        mirror
            .put_blob(&layer.descriptor.digest, blob)
            .with_context(|| format!("uploading the layer of `{tag}` to {}", mirror.location()))?;
    }

    let prefixes: Vec<PathBuf> = closure.iter().map(|&d| stack.prefix(d)).collect();
    let mut labels = BTreeMap::new();
    labels.insert(format!("{LABEL_PREFIX}stack"), stack.name.clone());
    labels.insert(format!("{LABEL_PREFIX}package"), pkg.name.clone());
    labels.insert(format!("{LABEL_PREFIX}version"), pkg.version.clone());
    labels.insert(format!("{LABEL_PREFIX}hash"), pkg.hash.clone());
    labels.insert(format!("{LABEL_PREFIX}prefix"), stack.prefix(i).display().to_string());
    let deps: Vec<String> = pkg.deps.iter().map(|d| stack.packages[d.index].tag()).collect();
    labels.insert(format!("{LABEL_PREFIX}deps"), deps.join(","));
    let config = ImageConfig {
        created: Some(rfc3339(source_date_epoch)),
        architecture: stack.platform.architecture.clone(),
        os: stack.platform.os.clone(),
        config: RuntimeConfig {
            env: vec![format!("PATH={}", path_env(&prefixes))],
            labels,
            ..Default::default()
        },
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        extra: stack
            .platform
            .variant
            .iter()
            .map(|v| ("variant".to_string(), v.clone().into()))
            .collect(),
    };
    let config_desc = put_document(mirror, CONFIG_MEDIA_TYPE, &config)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        config: config_desc,
        layers: layers.into_iter().map(|l| l.descriptor).collect(),
        annotations: BTreeMap::from([(TAG_ANNOTATION.to_string(), tag.clone())]),
    };
    let bytes = spec::to_bytes(&manifest);
    trust
        .sign(mirror, &spec::descriptor_of(MANIFEST_MEDIA_TYPE, &bytes))
        .with_context(|| format!("signing `{tag}` in {}", mirror.location()))?;
    mirror
        .put_manifest(&tag, MANIFEST_MEDIA_TYPE, &bytes)
        .with_context(|| format!("writing the manifest of `{tag}` to {}", mirror.location()))
}
