//! `stackci index` (issue 9, item 2): a tag already in the index is never moved, a missing
//! tag comes back from its newest manifest, and the count is of tags, not manifests; on a
//! file mirror (real `stackci index` processes) and on S3 (moto).

use crate::common::s3 as s3_peer;

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use stackci::digest::Digest;
use stackci::mirror::Mirror;
use stackci::mirror::layout::{LayoutMirror, blob_key};
use stackci::mirror::s3::{S3Options, S3Store};
use stackci::mirror::store::ObjectStore;

use crate::common::*;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// `manifest` with a `note` annotation added, re-serialized; the first `note` (counting up
/// from `start`) whose digest compares to `than` as `want` wants.
fn variant(manifest: &[u8], start: u32, than: &Digest, want: std::cmp::Ordering) -> (Digest, Vec<u8>) {
    let mut doc: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    for n in start.. {
        doc["annotations"]["note"] = format!("variant {n}").into();
        let bytes = serde_json::to_vec(&doc).unwrap();
        let digest = Digest::of(&bytes);
        if digest.cmp(than) == want {
            return (digest, bytes);
        }
    }
    unreachable!()
}

/// The digest `index.json` gives `tag`.
fn indexed(mirror: &Path, tag: &str) -> Option<String> {
    let index: serde_json::Value = serde_json::from_slice(&fs::read(mirror.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"][REF_NAME] == tag)
        .map(|m| m["digest"].as_str().unwrap().to_string())
}

#[test]
fn file_index_keeps_present_entries_restores_the_newest_and_counts_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let stack = write_stack(&tmp.path().join("s"), &tmp.path().join("store"), &[("a", &[], "true")]);
    let mirror = tmp.path().join("mirror");
    let m = format!("file://{}", mirror.display());
    let index = |json: bool| {
        let mut cmd = stackci();
        cmd.arg("--stack").arg(&stack).args(["--mirror", &m, "index"]);
        if json {
            cmd.arg("--json");
        }
        let out = output(&mut cmd);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    ok(stackci().arg("--stack").arg(&stack).args(["--mirror", &m, "run"]));
    let tag = plan_statuses(&ok(stackci()
        .arg("--stack")
        .arg(&stack)
        .args(["--mirror", &m, "plan", "--json"])))[0]
        .0
        .clone();
    let current: Digest = indexed(&mirror, &tag).unwrap().parse().unwrap();
    let manifest = fs::read(mirror.join(blob_key(&current))).unwrap();

    // An older manifest for the same tag (a previous push), with a larger digest.
    let (older, bytes) = variant(&manifest, 0, &current, std::cmp::Ordering::Greater);
    let path = mirror.join(blob_key(&older));
    fs::write(&path, bytes).unwrap();
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();

    let (stdout, _) = index(true);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["tags"], 1, "two manifests, one tag: {stdout}");
    assert_eq!(
        indexed(&mirror, &tag),
        Some(current.to_string()),
        "the tag was rolled back"
    );

    // With index.json gone, the tag comes back from its newest manifest.
    fs::remove_file(mirror.join("index.json")).unwrap();
    let (_, stderr) = index(false);
    assert!(stderr.contains("1 tag(s) in the index of file://"), "{stderr}");
    assert_eq!(
        indexed(&mirror, &tag),
        Some(current.to_string()),
        "not the newest manifest"
    );
}

#[test]
fn s3_index_restores_the_newest_manifest_and_keeps_present_entries() {
    let moto = s3_peer::Moto::start();
    moto.admin().create_bucket("idx");
    let opts = S3Options {
        endpoint: Some(moto.endpoint.clone()),
        ..S3Options::default()
    };
    let mirror = LayoutMirror::new(S3Store::new("s3://idx/m", &opts).unwrap());
    let base = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::of(b"{}").to_string(), "size": 2},
        "layers": [],
        "annotations": {"dev.stackci.tag": "p-1.0-abc"},
    }))
    .unwrap();
    // The first object written has the larger digest; the second, a second later, is newer.
    let (first, first_bytes) = variant(&base, 0, &Digest::of(b""), std::cmp::Ordering::Greater);
    let (second, second_bytes) = variant(&base, 1000, &first, std::cmp::Ordering::Less);
    mirror.store().put_bytes(&blob_key(&first), &first_bytes).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    mirror.store().put_bytes(&blob_key(&second), &second_bytes).unwrap();

    assert_eq!(mirror.reindex().unwrap(), 1);
    let index = mirror.read_index().unwrap();
    assert_eq!(
        index.find("p-1.0-abc").unwrap().digest,
        second,
        "not the newest manifest"
    );

    // Point the tag at the older manifest: `index` leaves a present entry alone.
    let mut desc = index.find("p-1.0-abc").unwrap().clone();
    desc.digest = first.clone();
    desc.size = first_bytes.len() as u64;
    mirror.update_index(|i| i.set("p-1.0-abc", desc.clone())).unwrap();
    assert_eq!(mirror.reindex().unwrap(), 1);
    assert_eq!(mirror.read_index().unwrap().find("p-1.0-abc").unwrap().digest, first);
}
