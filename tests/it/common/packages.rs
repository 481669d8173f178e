//! Package-shaped content written straight into a mirror (any backend), for the lifecycle
//! tests: packages as `stackci run` pushes them (config with `dev.stackci.deps`, layers of
//! the closure, `dev.stackci.tag`), cosign-style signatures (`sha256-<hex>.sig`) and an SPDX
//! SBOM attached with the referrers tag schema (`sha256-<hex>` index).

use stackci::digest::Digest;
use stackci::mirror::Mirror;
use stackci::spec::{self, Descriptor};

/// A package written by [`package`].
#[derive(Debug, Clone)]
pub struct Pkg {
    /// `<name>-1.0-<32 base32>`.
    pub tag: String,
    /// Its manifest's digest.
    pub digest: Digest,
    /// Its own layer.
    pub layer: Descriptor,
}

/// The 32-character base32 "hash" of a name.
pub fn hash_of(name: &str) -> String {
    data_encoding::BASE32_NOPAD
        .encode(&Digest::of(name.as_bytes()).hex().as_bytes()[..20])
        .to_lowercase()
}

/// Stores `bytes` as a blob of `media_type`.
pub fn blob(m: &dyn Mirror, bytes: &[u8], media_type: &str) -> Descriptor {
    let digest = Digest::of(bytes);
    if !m.has_blob(&digest).unwrap() {
        m.put_blob(&digest, &bytes.to_vec()).unwrap();
    }
    Descriptor {
        media_type: media_type.into(),
        digest,
        size: bytes.len() as u64,
        annotations: Default::default(),
        extra: Default::default(),
    }
}

/// Pseudo-random, incompressible bytes from a seed.
pub fn noise(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Writes package `name` over `deps` (already written), with an own layer of `layer_bytes`.
pub fn package(m: &dyn Mirror, name: &str, deps: &[&Pkg], layer_bytes: &[u8]) -> Pkg {
    let tag = format!("{name}-1.0-{}", hash_of(name));
    let layer = blob(m, layer_bytes, spec::LAYER_MEDIA_TYPE);
    let dep_tags: Vec<&str> = deps.iter().map(|d| d.tag.as_str()).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"dev.stackci.package": name, "dev.stackci.deps": dep_tags.join(",")}},
        "rootfs": {"type": "layers", "diff_ids": (0..=deps.len()).map(|i| Digest::of(format!("{name}{i}").as_bytes()).to_string()).collect::<Vec<_>>()}
    });
    let config = blob(m, &serde_json::to_vec(&config).unwrap(), spec::CONFIG_MEDIA_TYPE);
    let mut layers: Vec<Descriptor> = deps.iter().map(|d| d.layer.clone()).collect();
    layers.push(layer.clone());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": spec::MANIFEST_MEDIA_TYPE,
        "config": config,
        "layers": layers,
        "annotations": {"dev.stackci.tag": tag},
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = m.put_manifest(&tag, spec::MANIFEST_MEDIA_TYPE, &bytes).unwrap();
    Pkg { tag, digest, layer }
}

/// Attaches a cosign-style signature to manifest `subject` (`sha256-<hex>.sig`); returns its digest.
pub fn sign(m: &dyn Mirror, subject: &Digest) -> Digest {
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"x"}},"image":{{"docker-manifest-digest":"{subject}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    let mut layer = blob(
        m,
        payload.as_bytes(),
        "application/vnd.dev.cosign.simplesigning.v1+json",
    );
    layer
        .annotations
        .insert("dev.cosignproject.cosign/signature".into(), "MEUCIQDfake".into());
    let config = blob(
        m,
        br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#,
        spec::CONFIG_MEDIA_TYPE,
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": spec::MANIFEST_MEDIA_TYPE, "config": config, "layers": [layer],
    });
    let tag = format!("sha256-{}.sig", subject.hex());
    m.put_manifest(&tag, spec::MANIFEST_MEDIA_TYPE, &serde_json::to_vec(&manifest).unwrap())
        .unwrap()
}

/// Attaches an SPDX SBOM to manifest `subject` with the referrers tag schema: an artifact
/// manifest (untagged, `subject` set) listed by the `sha256-<hex>` index. Returns the SBOM
/// manifest's digest.
pub fn attach_sbom(m: &dyn Mirror, subject: &Descriptor) -> Digest {
    let sbom = blob(
        m,
        br#"{"spdxVersion":"SPDX-2.3","name":"test"}"#,
        "application/spdx+json",
    );
    let empty = blob(m, b"{}", "application/vnd.oci.empty.v1+json");
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": spec::MANIFEST_MEDIA_TYPE,
        "artifactType": "application/spdx+json", "config": empty, "layers": [sbom], "subject": subject,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = Digest::of(&bytes);
    m.put_manifest(&digest.to_string(), spec::MANIFEST_MEDIA_TYPE, &bytes)
        .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": spec::INDEX_MEDIA_TYPE,
        "manifests": [{"mediaType": spec::MANIFEST_MEDIA_TYPE, "digest": digest, "size": bytes.len(), "artifactType": "application/spdx+json"}],
    });
    let tag = format!("sha256-{}", subject.digest.hex());
    m.put_manifest(&tag, spec::INDEX_MEDIA_TYPE, &serde_json::to_vec(&index).unwrap())
        .unwrap();
    digest
}

/// The descriptor of package `p`'s manifest in `m`.
pub fn manifest_descriptor(m: &dyn Mirror, p: &Pkg) -> Descriptor {
    let bytes = m.get_manifest(&p.tag).unwrap().unwrap();
    Descriptor {
        media_type: spec::MANIFEST_MEDIA_TYPE.into(),
        digest: p.digest.clone(),
        size: bytes.len() as u64,
        annotations: Default::default(),
        extra: Default::default(),
    }
}
