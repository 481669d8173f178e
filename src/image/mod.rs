//! Images: base layers + a package closure's layers + a config, written to a registry,
//! an OCI layout or a docker archive — no daemon, no re-upload of blobs already there.
//!
//! [`assemble`] returns a new [`Image`] (nothing is written); [`budget::limit_layers`]
//! returns a new image with small layers merged; [`target::write`] puts any image anywhere.
//! [`verify::verify_package_layers`] checks, before anything is written, that every package
//! layer is what its package manifest says and writes only inside its package's prefix.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::layer::Layer;
use crate::mirror::Mirror;
use crate::package::{LABEL_PREFIX, SYSTEM_PATH, read_image, rfc3339};
use crate::platform::Platform;
use crate::spec::{ImageConfig, Manifest, RootFs, RuntimeConfig};
use crate::stack::{ImageSpec, Stack};
use crate::trust::Trust;

pub mod budget;
pub mod sbom;
pub mod target;
pub mod verify;

/// Default most layers an image may have (overlayfs allows about 127).
pub const DEFAULT_LAYER_BUDGET: usize = 100;

/// One layer of an image and the mirror it can be read from.
#[derive(Clone)]
pub struct ImageLayer {
    /// The layer (descriptor + diff id).
    pub layer: Layer,
    /// Where its blob is.
    pub source: Arc<dyn Mirror>,
    /// For a package's own layer, the package prefix every member must be in; `None` for
    /// base layers and layers merged from already-checked package layers.
    pub prefix: Option<std::path::PathBuf>,
}

/// An image in memory: its layers (with where to read them) and its config.
#[derive(Clone)]
pub struct Image {
    /// Layers, base first.
    pub layers: Vec<ImageLayer>,
    /// The config (its `rootfs.diff_ids` match `layers`).
    pub config: ImageConfig,
    /// How many of the first layers come from the base image (never merged).
    pub base_layers: usize,
}

impl Image {
    /// An empty image (`scratch`) for `platform`.
    pub fn scratch(platform: &Platform) -> Image {
        let mut extra = crate::spec::Extra::default();
        if let Some(v) = &platform.variant {
            extra.insert("variant".into(), v.clone().into());
        }
        Image {
            layers: Vec::new(),
            config: ImageConfig {
                created: None,
                architecture: platform.architecture.clone(),
                os: platform.os.clone(),
                config: RuntimeConfig::default(),
                rootfs: RootFs {
                    kind: "layers".into(),
                    diff_ids: Vec::new(),
                },
                extra,
            },
            base_layers: 0,
        }
    }

    /// Reads image `tag` from `source` (a base image), choosing the manifest for `platform`
    /// when the tag names a multi-platform index.
    pub fn read(source: Arc<dyn Mirror>, tag: &str, platform: &Platform) -> Result<Image> {
        let image = read_image(source.as_ref(), tag, platform)?
            .with_context(|| format!("base image `{tag}` is not in {}", source.location()))?;
        let mut config = image.config.clone();
        // Base history no longer matches once layers are added or merged.
        config.extra.remove("history");
        let layers: Vec<ImageLayer> = image
            .layers()?
            .into_iter()
            .map(|layer| ImageLayer {
                layer,
                source: source.clone(),
                prefix: None,
            })
            .collect();
        Ok(Image {
            base_layers: layers.len(),
            layers,
            config,
        })
    }

    /// This image with `layers` appended (a new value; `self` is unchanged).
    pub fn append(&self, layers: impl IntoIterator<Item = ImageLayer>) -> Image {
        let mut out = self.clone();
        for l in layers {
            out.config.rootfs.diff_ids.push(l.layer.diff_id.clone());
            out.layers.push(l);
        }
        out
    }

    /// The manifest for this image, given its config descriptor.
    pub fn manifest(&self, config: crate::spec::Descriptor) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(crate::spec::MANIFEST_MEDIA_TYPE.into()),
            config,
            layers: self.layers.iter().map(|l| l.layer.descriptor.clone()).collect(),
            annotations: BTreeMap::new(),
        }
    }
}

/// Image `name` of `stack`; the error lists the images the stack has.
pub fn spec<'a>(stack: &'a Stack, name: &str) -> Result<&'a ImageSpec> {
    stack.images.get(name).with_context(|| {
        let known: Vec<&str> = stack.images.keys().map(String::as_str).collect();
        format!(
            "no image `{name}` in {} (images: {})",
            stack.path.display(),
            known.join(", ")
        )
    })
}

/// The packages of image `spec`: its packages' runtime closures, each once, dependencies first.
pub fn members(stack: &Stack, spec: &ImageSpec) -> Vec<usize> {
    let mut members: Vec<usize> = spec.packages.iter().flat_map(|&i| stack.runtime_closure(i)).collect();
    members.sort_unstable();
    members.dedup();
    members
}

/// Builds image `name` of the stack: `base` + the runtime closure of its packages (read from
/// `mirror`, where they must all be, each verified by `trust` when it has keys) + a config
/// with PATH, env, entrypoint, labels and `created` from `source_date_epoch`.
pub fn assemble(
    stack: &Stack,
    name: &str,
    base: Image,
    mirror: Arc<dyn Mirror>,
    source_date_epoch: u64,
    trust: &Trust,
) -> Result<Image> {
    let spec = spec(stack, name)?;
    let members = members(stack, spec);
    if members.is_empty() {
        bail!("image `{name}` has no packages");
    }
    let mut layers = Vec::with_capacity(members.len());
    for &i in &members {
        let tag = stack.packages[i].tag();
        let image = trust.read_package(mirror.as_ref(), &tag)?.with_context(|| {
            format!(
                "`{tag}` (in image `{name}`) is not in {}; run `stackci run` first",
                mirror.location()
            )
        })?;
        layers.push(ImageLayer {
            layer: image.own_layer()?,
            source: mirror.clone(),
            prefix: Some(stack.prefix(i)),
        });
    }
    let mut image = base.append(layers);
    let cfg = &mut image.config;
    cfg.created = Some(rfc3339(source_date_epoch));
    let base_path = cfg
        .config
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(SYSTEM_PATH)
        .to_string();
    let bins: Vec<String> = members
        .iter()
        .rev()
        .map(|&i| stack.prefix(i).join("bin").display().to_string())
        .collect();
    let mut env: BTreeMap<String, String> = cfg
        .config
        .env
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert("PATH".into(), format!("{}:{base_path}", bins.join(":")));
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    cfg.config.env = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !spec.entrypoint.is_empty() {
        cfg.config.entrypoint = Some(spec.entrypoint.clone());
        cfg.config.cmd = None;
    }
    if !spec.cmd.is_empty() {
        cfg.config.cmd = Some(spec.cmd.clone());
    }
    cfg.config
        .labels
        .extend(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    cfg.config
        .labels
        .insert(format!("{LABEL_PREFIX}stack"), stack.name.clone());
    cfg.config
        .labels
        .insert(format!("{LABEL_PREFIX}image"), name.to_string());
    let tags: Vec<String> = members.iter().map(|&i| stack.packages[i].tag()).collect();
    cfg.config
        .labels
        .insert(format!("{LABEL_PREFIX}packages"), tags.join(","));
    Ok(image)
}
