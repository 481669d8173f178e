//! OCI image-spec documents (descriptor, manifest, index, config) with byte-stable JSON,
//! and the vocabulary around them: media types, annotations, [`put_document`].
//!
//! `oci-spec` models annotations and labels as `HashMap`, whose JSON order changes from
//! run to run; stackci needs the same manifest digest for the same inputs, so these types
//! use `BTreeMap` and fixed field order. Unknown fields of documents written by other tools
//! are kept (`extra`), so rewriting an `index.json` loses nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::mirror::Mirror;

/// Media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of a package layer (and of every layer stackci writes).
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of an OCI image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of a Docker v2 schema 2 image manifest.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Media type of a Docker v2 manifest list.
pub const DOCKER_MANIFEST_LIST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Manifest annotation naming the package tag (lets `index` rebuild a lost `index.json`).
pub const TAG_ANNOTATION: &str = "dev.stackci.tag";
/// Annotation holding a manifest's tag in an image layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation carrying the image creation time.
pub const CREATED: &str = "org.opencontainers.image.created";

/// Free-form JSON fields preserved across a read and a write.
pub type Extra = BTreeMap<String, serde_json::Value>;

/// A content descriptor: what a blob is, its digest and size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Annotations (sorted).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields this type does not model (platform, urls, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// An image manifest: a config and an ordered list of layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// Media type of this manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config blob.
    pub config: Descriptor,
    /// Layers, base first.
    pub layers: Vec<Descriptor>,
    /// Annotations (sorted).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (`index.json` of an image layout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// Media type of the index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests it lists.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Fields this type does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An image config: platform, runtime settings and the layers' uncompressed digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Creation time (RFC 3339), derived from `SOURCE_DATE_EPOCH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// CPU architecture (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// Execution parameters.
    #[serde(default)]
    pub config: RuntimeConfig,
    /// Uncompressed layer digests.
    pub rootfs: RootFs,
    /// Fields this type does not model (history, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// The `config` object of an image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    /// `KEY=value` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Entrypoint argv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Default arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Labels (sorted).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Fields this type does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The `rootfs` object of an image config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Uncompressed digests, in layer order.
    pub diff_ids: Vec<Digest>,
}

impl Index {
    /// An empty index.
    pub fn empty() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.into()),
            manifests: Vec::new(),
            extra: Extra::new(),
        }
    }

    /// The descriptor tagged `tag`, if any.
    pub fn find(&self, tag: &str) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
    }

    /// Points `tag` at `desc` (replacing an older entry for the tag); returns false if it already did.
    pub fn set(&mut self, tag: &str, mut desc: Descriptor) -> bool {
        desc.annotations.insert(REF_NAME.into(), tag.into());
        if self.find(tag) == Some(&desc) {
            return false;
        }
        self.manifests
            .retain(|d| d.annotations.get(REF_NAME).map(String::as_str) != Some(tag));
        self.manifests.push(desc);
        true
    }

    /// Every tag in the index.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.manifests
            .iter()
            .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
    }
}

/// OCI architecture name of the machine we run on.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64",
        other => other,
    }
}

/// Serializes a document to its canonical bytes (compact JSON, fixed field order).
pub fn to_bytes<T: Serialize>(doc: &T) -> Vec<u8> {
    serde_json::to_vec(doc).expect("OCI documents always serialize")
}

/// The descriptor of a document (a manifest, a config) held in memory.
pub fn descriptor_of(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        annotations: Default::default(),
        extra: Default::default(),
    }
}

/// Stores a small document (a config) as a blob of `mirror` unless it is there; returns its
/// descriptor.
pub fn put_document<T: Serialize>(mirror: &dyn Mirror, media_type: &str, doc: &T) -> anyhow::Result<Descriptor> {
    let bytes = to_bytes(doc);
    let digest = Digest::of(&bytes);
    let size = bytes.len() as u64;
    if !mirror.has_blob(&digest)? {
        mirror.put_blob(&digest, &bytes)?;
    }
    Ok(Descriptor {
        media_type: media_type.into(),
        digest,
        size,
        annotations: Default::default(),
        extra: Default::default(),
    })
}
