//! Benchmark driver for `bench/oci-push.sh` (built as the `oci_push` example).
//!
//! ```text
//! oci_push make-layout DIR COUNT SIZE_MIB   # COUNT images, one incompressible layer each
//! oci_push push DIR URL [JOBS]              # push every image of the layout with RegistryMirror
//! ```
//!
//! `push` does what a package push does: all blobs (JOBS at a time, HEAD first), then one
//! manifest per tag. It prints `pushed N blobs (U uploaded, E existed), M tags in S s`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use stackci::digest::{Digest, Hasher};
use stackci::mirror::Mirror;
use stackci::mirror::oci::{BlobPush, ClientOptions, RegistryMirror};
use stackci::mirror::{BlobSource, FileSource};

use stackci::spec::{CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["make-layout", dir, count, size] => make_layout(Path::new(dir), count.parse()?, size.parse()?),
        ["push", dir, url] => push(Path::new(dir), url, 8),
        ["push", dir, url, jobs] => push(Path::new(dir), url, jobs.parse()?),
        _ => bail!("usage: oci_push make-layout DIR COUNT SIZE_MIB | oci_push push DIR URL [JOBS]"),
    }
}

/// Writes `bytes` as a blob of the layout; returns its digest and size.
fn write_blob(dir: &Path, bytes: &[u8]) -> Result<(Digest, u64)> {
    let digest = Digest::of(bytes);
    std::fs::write(dir.join("blobs/sha256").join(digest.hex()), bytes)?;
    Ok((digest, bytes.len() as u64))
}

fn make_layout(dir: &Path, count: usize, size_mib: u64) -> Result<()> {
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut manifests = Vec::new();
    let mut rng = fastrand::Rng::with_seed(42);
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..count {
        // The layer: incompressible bytes, streamed to a file while hashing.
        let tmp = dir.join(format!("layer-{i}.tmp"));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let mut hasher = Hasher::default();
        for _ in 0..size_mib {
            rng.fill(&mut buf);
            hasher.update(&buf);
            std::io::Write::write_all(&mut file, &buf)?;
        }
        std::io::Write::flush(&mut file)?;
        drop(file);
        let (layer, layer_size) = hasher.finish();
        std::fs::rename(&tmp, dir.join("blobs/sha256").join(layer.hex()))?;
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]},
            "config": {"Env": [format!("PATH=/opt/stackci/pkg{i}/bin")]},
        });
        let (config, config_size) = write_blob(dir, &serde_json::to_vec(&config)?)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config.to_string(), "size": config_size},
            "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer.to_string(), "size": layer_size}],
        });
        let (digest, size) = write_blob(dir, &serde_json::to_vec(&manifest)?)?;
        manifests.push(serde_json::json!({
            "mediaType": MANIFEST_MEDIA_TYPE, "digest": digest.to_string(), "size": size,
            "annotations": {REF_NAME: format!("pkg{i}-1.0-bench")},
        }));
    }
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(())
}

fn descriptor(value: &serde_json::Value, dir: &Path) -> Result<(Digest, FileSource)> {
    let digest: Digest = value["digest"].as_str().context("descriptor without digest")?.parse()?;
    let size = value["size"].as_u64().context("descriptor without size")?;
    let path: PathBuf = dir.join("blobs/sha256").join(digest.hex());
    Ok((digest, FileSource::new(path, size)))
}

fn push(dir: &Path, url: &str, jobs: usize) -> Result<()> {
    let start = Instant::now();
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json"))?)?;
    let mut blobs = Vec::new();
    let mut tags = Vec::new();
    for entry in index["manifests"].as_array().context("index without manifests")? {
        let tag = entry["annotations"][REF_NAME]
            .as_str()
            .context("manifest without a tag")?
            .to_string();
        let (_, manifest_blob) = descriptor(entry, dir)?;
        let bytes = std::fs::read(manifest_blob.path().context("a file")?)?;
        let manifest: serde_json::Value = serde_json::from_slice(&bytes)?;
        blobs.push(descriptor(&manifest["config"], dir)?);
        for layer in manifest["layers"].as_array().context("manifest without layers")? {
            blobs.push(descriptor(layer, dir)?);
        }
        tags.push((tag, bytes));
    }
    blobs.sort_by(|a, b| a.0.cmp(&b.0));
    blobs.dedup();

    let mirror = RegistryMirror::new(
        url,
        &ClientOptions {
            jobs,
            ..Default::default()
        },
    )?;
    let results = mirror.push_blobs(&blobs)?;
    for (tag, bytes) in &tags {
        mirror.put_manifest(tag, MANIFEST_MEDIA_TYPE, bytes)?;
    }
    let uploaded = results.iter().filter(|r| **r == BlobPush::Uploaded).count();
    let existed = results.iter().filter(|r| **r == BlobPush::Existed).count();
    println!(
        "pushed {} blobs ({uploaded} uploaded, {existed} existed), {} tags in {:.2} s",
        blobs.len(),
        tags.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
