//! An image's SBOM: an SPDX 2.3 JSON document listing every package in the image and the
//! base image, attached to the image as an OCI artifact (`artifactType:
//! application/spdx+json`, `subject` = the image manifest).
//!
//! Each package entry carries its name, version, stackci hash (an `OTHER` external
//! reference `stackci-hash`), where its source came from (`downloadLocation` and the
//! archive's SHA256, or the repository path and tree digest in `sourceInfo`) and its layer
//! digest (`OTHER` reference `oci-layer`). The image is a `CONTAINER` package that
//! `CONTAINS` every package and is a `DESCENDANT_OF` the base image (with its manifest
//! digest). Same inputs, same bytes: the document is deterministic (`created` from
//! `SOURCE_DATE_EPOCH`, the namespace from the image digest), so attaching it again is a
//! no-op.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{Value, json};

use crate::digest::Digest;
use crate::mirror::Mirror;
use crate::mirror::referrers::{self, Attached};
use crate::spec::{self, Descriptor, MANIFEST_MEDIA_TYPE};
use crate::stack::{Source, Stack};

/// Media type (and artifact type) of an SPDX JSON document.
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";

/// Largest SBOM read back.
const MAX_SBOM: u64 = 64 << 20;

/// What an SBOM is made from.
pub struct SbomInput<'a> {
    /// The stack.
    pub stack: &'a Stack,
    /// The image's name in `images:`.
    pub image: &'a str,
    /// Every package in the image (indices into the stack), dependencies first.
    pub members: &'a [usize],
    /// Each member's own layer digest (as its package manifest names it).
    pub layers: &'a BTreeMap<usize, Digest>,
    /// The base image reference and manifest digest (`None` for `scratch`).
    pub base: Option<(String, Digest)>,
    /// The image's manifest digest.
    pub image_digest: &'a Digest,
    /// RFC 3339 creation time.
    pub created: &'a str,
}

/// The SPDX 2.3 document for `input`, as JSON bytes.
pub fn spdx(input: &SbomInput) -> Vec<u8> {
    let stack = input.stack;
    let image_id = "SPDXRef-Image";
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": input.image,
        "versionInfo": input.image_digest.to_string(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{ "algorithm": "SHA256", "checksumValue": input.image_digest.hex() }],
        "comment": format!("image `{}` of stack `{}`, assembled by stackci", input.image, stack.name),
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    if let Some((reference, digest)) = &input.base {
        packages.push(json!({
            "SPDXID": "SPDXRef-BaseImage",
            "name": reference,
            "versionInfo": digest.to_string(),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "CONTAINER",
            "checksums": [{ "algorithm": "SHA256", "checksumValue": digest.hex() }],
            "comment": format!("base image {reference}, manifest {digest}"),
        }));
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "DESCENDANT_OF",
            "relatedSpdxElement": "SPDXRef-BaseImage",
        }));
    }
    let ids: BTreeMap<usize, String> = input.members.iter().map(|&i| (i, package_id(stack, i))).collect();
    for &i in input.members {
        packages.push(package(stack, i, &ids[&i], input.layers.get(&i)));
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": ids[&i],
        }));
        for dep in &stack.packages[i].deps {
            if let Some(dep_id) = ids.get(&dep.index) {
                relationships.push(json!({
                    "spdxElementId": ids[&i],
                    "relationshipType": "DEPENDS_ON",
                    "relatedSpdxElement": dep_id,
                }));
            }
        }
    }
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}-{}", stack.name, input.image),
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/stackci-{}-{}-{}",
            spdx_safe(&stack.name),
            spdx_safe(input.image),
            input.image_digest.hex()
        ),
        "creationInfo": {
            "created": input.created,
            "creators": [format!("Tool: stackci-{}", env!("CARGO_PKG_VERSION"))],
        },
        "documentDescribes": [image_id],
        "packages": packages,
        "relationships": relationships,
    });
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("an SBOM always serializes");
    bytes.push(b'\n');
    bytes
}

/// One package's entry.
fn package(stack: &Stack, i: usize, id: &str, layer: Option<&Digest>) -> Value {
    let pkg = &stack.packages[i];
    let mut refs = vec![json!({
        "referenceCategory": "OTHER",
        "referenceType": "stackci-hash",
        "referenceLocator": pkg.hash,
    })];
    if let Some(layer) = layer {
        refs.push(json!({
            "referenceCategory": "OTHER",
            "referenceType": "oci-layer",
            "referenceLocator": layer.to_string(),
        }));
    }
    let mut entry = json!({
        "SPDXID": id,
        "name": pkg.name,
        "versionInfo": pkg.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "externalRefs": refs,
        "comment": format!(
            "stackci package {} (hash {}), installed at {}{}",
            pkg.tag(),
            pkg.hash,
            stack.prefix(i).display(),
            layer.map(|l| format!(", layer {l}")).unwrap_or_default()
        ),
    });
    match &pkg.source {
        Some(Source::Url { url, sha256 }) => {
            entry["downloadLocation"] = url.as_str().into();
            entry["checksums"] = json!([{ "algorithm": "SHA256", "checksumValue": sha256.hex() }]);
            entry["sourceInfo"] = format!("built from {url} (sha256 {})", sha256.hex()).into();
        }
        Some(Source::Path { path, digest }) => {
            let shown = path.strip_prefix(&stack.dir).unwrap_or(path);
            entry["sourceInfo"] = format!("built from the directory {} (tree {digest})", shown.display()).into();
        }
        None => {}
    }
    entry
}

/// `SPDXRef-Package-<name>-<hash>`, with characters SPDX ids do not allow as `-`.
fn package_id(stack: &Stack, i: usize) -> String {
    let p = &stack.packages[i];
    format!("SPDXRef-Package-{}-{}", spdx_safe(&p.name), p.hash)
}

/// Letters, digits, `.` and `-` (what SPDX ids allow); anything else becomes `-`.
fn spdx_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Attaches `sbom` to the image manifest `subject` in `mirror`: the document as a blob, an
/// artifact manifest (`artifactType: application/spdx+json`, empty config, `subject`), made
/// findable as a referrer. Returns the artifact manifest's descriptor.
pub fn attach(mirror: &dyn Mirror, sbom: &[u8], subject: &Descriptor, created: &str) -> Result<(Descriptor, Attached)> {
    let layer = spec::descriptor_of(SPDX_MEDIA_TYPE, sbom);
    if !mirror.has_blob(&layer.digest)? {
        mirror.put_blob(&layer.digest, &sbom.to_vec())?;
    }
    let config = referrers::put_empty_config(mirror)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": SPDX_MEDIA_TYPE,
        "config": config,
        "layers": [Descriptor {
            annotations: BTreeMap::from([("org.opencontainers.image.title".to_string(), "sbom.spdx.json".to_string())]),
            ..layer
        }],
        "subject": { "mediaType": subject.media_type, "digest": subject.digest, "size": subject.size },
        "annotations": { spec::CREATED: created },
    });
    referrers::push_referrer(mirror, &spec::to_bytes(&manifest), &subject.digest)
}

/// The SBOM manifest attached to image manifest `image` in `mirror`, found through its
/// referrers, once its SPDX document has been streamed and checked against its digest and
/// size; `None` when it has none.
pub fn find(mirror: &dyn Mirror, image: &Digest) -> Result<Option<Descriptor>> {
    let Some(entry) = referrers::list_referrers(mirror, image, Some(SPDX_MEDIA_TYPE))?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let Some(bytes) = mirror.get_manifest(&entry.digest.to_string())? else {
        anyhow::bail!(
            "the SBOM manifest {} is listed but not stored in {}",
            entry.digest,
            mirror.location()
        );
    };
    let manifest: crate::spec::Manifest = serde_json::from_slice(&bytes)?;
    let layer = manifest
        .layers
        .first()
        .filter(|l| l.media_type == SPDX_MEDIA_TYPE)
        .ok_or_else(|| anyhow::anyhow!("the SBOM manifest {} has no SPDX layer", entry.digest))?;
    if layer.size > MAX_SBOM {
        anyhow::bail!(
            "the SBOM {} is {} bytes, more than stackci reads",
            layer.digest,
            layer.size
        );
    }
    std::io::copy(
        &mut crate::digest::VerifyingReader::new(
            mirror.open_blob(&layer.digest)?,
            layer.digest.clone(),
            Some(layer.size),
            format!("SBOM {}", layer.digest),
        ),
        &mut std::io::sink(),
    )?;
    Ok(Some(entry))
}
