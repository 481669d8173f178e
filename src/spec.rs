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

/// What a manifest names, read from any OCI or Docker image manifest, index, manifest list
/// or artifact manifest without modelling the rest: what copying, pruning or verifying it
/// must follow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct References {
    /// The document's media type: its `mediaType`, else an index when it lists `manifests`,
    /// else an OCI image manifest.
    pub media_type: String,
    /// Blobs it needs: the config and layers (an artifact manifest's `blobs`). Foreign
    /// layers (with `urls`, kept outside registries) are left out.
    pub blobs: Vec<Descriptor>,
    /// Manifests it lists (an index's or manifest list's children).
    pub manifests: Vec<Descriptor>,
    /// The manifest it refers to (`subject`: a signature's or an SBOM's image), if any.
    pub subject: Option<Descriptor>,
}

/// Reads what a manifest document names; an error when it is not JSON of that shape.
pub fn references(manifest: &[u8]) -> anyhow::Result<References> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct AnyManifest {
        media_type: Option<String>,
        config: Option<Descriptor>,
        #[serde(default)]
        layers: Vec<Descriptor>,
        #[serde(default)]
        blobs: Vec<Descriptor>,
        manifests: Option<Vec<Descriptor>>,
        subject: Option<Descriptor>,
    }
    let doc: AnyManifest = serde_json::from_slice(manifest)?;
    let media_type = match doc.media_type {
        Some(t) => t,
        None if doc.manifests.is_some() => INDEX_MEDIA_TYPE.to_string(),
        None => MANIFEST_MEDIA_TYPE.to_string(),
    };
    let blobs = doc
        .config
        .into_iter()
        .chain(doc.layers)
        .chain(doc.blobs)
        .filter(|d| !d.extra.contains_key("urls"))
        .collect();
    Ok(References {
        media_type,
        blobs,
        manifests: doc.manifests.unwrap_or_default(),
        subject: doc.subject,
    })
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
    let desc = descriptor_of(media_type, &bytes);
    if !mirror.has_blob(&desc.digest)? {
        mirror.put_blob(&desc.digest, &bytes)?;
    }
    Ok(desc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(what: &str) -> serde_json::Value {
        serde_json::json!({"mediaType": "x", "digest": Digest::of(what.as_bytes()), "size": what.len()})
    }

    #[test]
    fn references_of_every_manifest_kind() {
        let image = serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE, "config": desc("c"),
            "layers": [desc("l1"), {"mediaType": "foreign", "digest": Digest::of(b"f"), "size": 1, "urls": ["https://x"]}],
            "subject": desc("s"),
        });
        let r = references(&serde_json::to_vec(&image).unwrap()).unwrap();
        let digests: Vec<Digest> = r.blobs.iter().map(|d| d.digest.clone()).collect();
        assert_eq!(
            digests,
            [Digest::of(b"c"), Digest::of(b"l1")],
            "foreign layers are left out"
        );
        assert_eq!(r.subject.unwrap().digest, Digest::of(b"s"));
        assert!(r.manifests.is_empty());

        // No mediaType: an index when it lists manifests, else an image manifest.
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [desc("m1"), desc("m2")]});
        let r = references(&serde_json::to_vec(&index).unwrap()).unwrap();
        assert_eq!(
            (r.media_type.as_str(), r.manifests.len(), r.blobs.len()),
            (INDEX_MEDIA_TYPE, 2, 0)
        );
        let bare = serde_json::json!({"schemaVersion": 2, "config": desc("c"), "layers": []});
        assert_eq!(
            references(&serde_json::to_vec(&bare).unwrap()).unwrap().media_type,
            MANIFEST_MEDIA_TYPE
        );

        // An artifact manifest's blobs; a Docker list keeps its own media type.
        let artifact =
            serde_json::json!({"mediaType": "application/vnd.oci.artifact.manifest.v1+json", "blobs": [desc("b")]});
        assert_eq!(
            references(&serde_json::to_vec(&artifact).unwrap()).unwrap().blobs.len(),
            1
        );
        let list = serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST_MEDIA_TYPE, "manifests": [desc("m")]});
        let r = references(&serde_json::to_vec(&list).unwrap()).unwrap();
        assert_eq!(r.media_type, DOCKER_MANIFEST_LIST_MEDIA_TYPE);
        assert!(references(b"not json").is_err());
    }
}
