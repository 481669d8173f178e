//! The mirror core's lifecycle methods (manifests by digest, `manifest_digest`, deleting
//! blobs and manifests) behave the same on the three backends: a temporary directory, a
//! real moto S3 server and a real docker-registry (deletes enabled in its config).

use crate::common::packages::blob;
use crate::common::registry::Peer;
use crate::common::s3::Moto;

use stackci::digest::Digest;
use stackci::mirror::Mirror;
use stackci::mirror::fs::FsStore;
use stackci::mirror::layout::LayoutMirror;
use stackci::mirror::oci::{ClientOptions, RegistryMirror};
use stackci::mirror::s3::{S3Options, S3Store};
use stackci::spec::{self, MANIFEST_MEDIA_TYPE, Manifest};

/// Which kind of backend a run is on (their documented differences).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Layout,
    Registry,
}

/// An image manifest over a fresh config and one layer, unique per `seed`.
fn image(m: &dyn Mirror, seed: &str) -> Vec<u8> {
    let config = blob(
        m,
        format!("{{\"seed\":\"{seed}\"}}").as_bytes(),
        spec::CONFIG_MEDIA_TYPE,
    );
    let layer = blob(m, format!("layer of {seed}").as_bytes(), spec::LAYER_MEDIA_TYPE);
    spec::to_bytes(&Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        config,
        layers: vec![layer],
        annotations: Default::default(),
    })
}

fn conformance(m: &dyn Mirror, kind: Kind) {
    // Blobs: delete, and deleting again is fine.
    let blob = blob(m, b"a blob to delete", "application/octet-stream");
    assert!(m.has_blob(&blob.digest).unwrap());
    m.delete_blob(&blob.digest).unwrap();
    assert!(!m.has_blob(&blob.digest).unwrap(), "deleted from {}", m.location());
    m.delete_blob(&blob.digest).unwrap();

    // A tagged manifest: its digest without reading it, and read back by digest.
    let one = image(m, "one");
    let d1 = m.put_manifest("pkg-1.0-aaaa", MANIFEST_MEDIA_TYPE, &one).unwrap();
    assert_eq!(d1, Digest::of(&one));
    assert_eq!(m.manifest_digest("pkg-1.0-aaaa").unwrap(), Some(d1.clone()));
    assert_eq!(m.manifest_digest("pkg-1.0-nope").unwrap(), None);
    assert_eq!(m.get_manifest(&d1.to_string()).unwrap().as_deref(), Some(&one[..]));
    assert_eq!(m.manifest_digest(&d1.to_string()).unwrap(), Some(d1.clone()));

    // An untagged manifest: stored by its digest, listed under no tag.
    let two = image(m, "two");
    let d2 = Digest::of(&two);
    assert_eq!(m.put_manifest(&d2.to_string(), MANIFEST_MEDIA_TYPE, &two).unwrap(), d2);
    assert_eq!(m.get_manifest(&d2.to_string()).unwrap().as_deref(), Some(&two[..]));
    assert_eq!(m.list_tags().unwrap(), ["pkg-1.0-aaaa".to_string()].into());
    let other = image(m, "other");
    assert!(
        m.put_manifest(&d2.to_string(), MANIFEST_MEDIA_TYPE, &other).is_err(),
        "a manifest is only stored under its own digest"
    );

    // Deleting a tag only while it still names the manifest asked for.
    assert!(
        !m.delete_manifest("pkg-1.0-aaaa", &d2).unwrap(),
        "the tag names d1, not d2"
    );
    assert_eq!(m.manifest_digest("pkg-1.0-aaaa").unwrap(), Some(d1.clone()));
    assert!(m.delete_manifest("pkg-1.0-aaaa", &d1).unwrap());
    assert_eq!(m.manifest_digest("pkg-1.0-aaaa").unwrap(), None);
    assert!(m.list_tags().unwrap().is_empty());
    assert!(!m.delete_manifest("pkg-1.0-aaaa", &d1).unwrap(), "already gone");

    match kind {
        // A registry deletes the manifest itself (and every tag naming it).
        Kind::Registry => {
            assert_eq!(m.get_manifest(&d1.to_string()).unwrap(), None);
            m.put_manifest("a-1-x", MANIFEST_MEDIA_TYPE, &two).unwrap();
            assert!(m.delete_manifest(&d2.to_string(), &d2).unwrap());
            assert_eq!(m.get_manifest(&d2.to_string()).unwrap(), None);
            assert!(m.list_tags().unwrap().is_empty(), "its tag went with it");
        }
        // A layout drops the entry; the manifest stays a blob until it is swept.
        Kind::Layout => {
            assert!(m.has_blob(&d1).unwrap());
            assert!(!m.delete_manifest(&d2.to_string(), &d2).unwrap(), "no index entry");
            m.delete_blob(&d1).unwrap();
            assert_eq!(m.get_manifest(&d1.to_string()).unwrap(), None);
        }
    }
}

#[test]
fn file_mirror_conformance() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&LayoutMirror::new(FsStore::new(dir.path().join("m"))), Kind::Layout);
}

#[test]
fn s3_mirror_conformance() {
    let moto = Moto::start();
    moto.admin().create_bucket("conf");
    let opts = S3Options {
        endpoint: Some(moto.endpoint.clone()),
        ..S3Options::default()
    };
    let store = S3Store::new("s3://conf/mirror", &opts).unwrap();
    conformance(&LayoutMirror::new(store), Kind::Layout);
    let left = moto.admin().keys("conf");
    assert!(
        !left.iter().any(|k| k.contains(&Digest::of(b"a blob to delete").hex())),
        "the deleted blob is gone from the bucket: {left:?}"
    );
}

#[test]
fn registry_mirror_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::start(dir.path(), false);
    let m = RegistryMirror::new(&peer.mirror_url("conf/mirror"), &ClientOptions::default()).unwrap();
    conformance(&m, Kind::Registry);
}
