//! The OCI registry client and `RegistryMirror` against a real docker-registry 2.8
//! (`tests/peers/registry.sh`), plain and with TLS + basic auth, behind test proxies that
//! inject faults or act as a Bearer token server. `skopeo` must be installed
//! (`apt-get install skopeo`); the skopeo test fails with that hint when it is not.

use crate::common::fault_proxy;
use crate::common::registry;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stackci::digest::{Digest, Hasher, VerifyingReader};
use stackci::mirror::oci::{
    BlobPush, ClientOptions, Credentials, RegistryError, RegistryMirror, UploadStart, lookup_credentials,
};
use stackci::mirror::{FileSource, Mirror};
use stackci::net::{Retry, Secret};
use stackci::spec::DOCKER_MANIFEST_MEDIA_TYPE;
use stackci::spec::{CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

use fault_proxy::{Action, Proxy, RequestHead, Rng};
use registry::Peer;

const MIB: u64 = 1024 * 1024;

/// A test blob in a file, with its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BlobFile {
    digest: Digest,
    size: u64,
    path: std::path::PathBuf,
}

impl BlobFile {
    /// The file as a blob source.
    fn src(&self) -> FileSource {
        FileSource::new(&self.path, self.size)
    }
}

/// Blobs as `push_blobs` takes them.
fn pairs(blobs: &[BlobFile]) -> Vec<(Digest, FileSource)> {
    blobs.iter().map(|b| (b.digest.clone(), b.src())).collect()
}

/// Options for tests: quick retries so failures show fast.
fn opts() -> ClientOptions {
    ClientOptions {
        retry: Retry {
            attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(500),
        },
        ..Default::default()
    }
}

/// Writes `size` seeded random bytes (incompressible) to `dir/name`, streaming, and returns the blob.
fn random_blob(dir: &Path, name: &str, size: u64, seed: u64) -> BlobFile {
    let path = dir.join(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut hasher = Hasher::default();
    let mut left = size;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    file.flush().unwrap();
    let (digest, len) = hasher.finish();
    assert_eq!(len, size);
    BlobFile { digest, size, path }
}

fn bytes_blob(dir: &Path, name: &str, bytes: &[u8]) -> BlobFile {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    BlobFile {
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        path,
    }
}

/// Reads a blob back through the mirror, verifying digest and size; returns the size.
fn read_back(mirror: &dyn Mirror, blob: &BlobFile) -> u64 {
    let reader = mirror.open_blob(&blob.digest).unwrap();
    let mut verifying = VerifyingReader::new(reader, blob.digest.clone(), Some(blob.size), "test blob");
    std::io::copy(&mut verifying, &mut std::io::sink()).unwrap_or_else(|e| panic!("reading {} back: {e}", blob.digest))
}

/// A minimal OCI image manifest naming `config` and `layers`.
fn manifest_for(config: &BlobFile, layers: &[&BlobFile]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType": LAYER_MEDIA_TYPE, "digest": l.digest.to_string(), "size": l.size}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config.digest.to_string(), "size": config.size},
        "layers": layers,
    }))
    .unwrap()
}

fn error_text(err: &anyhow::Error) -> String {
    format!("{err:#} / {err:?}")
}

#[test]
fn blob_steps_head_post_put_get_with_a_streamed_multi_mib_file() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let mirror = RegistryMirror::new(&peer.mirror_url("steps/blobs"), &opts()).unwrap();
    let client = mirror.client();
    let blob = random_blob(tmp.path(), "big", 6 * MIB + 123, 1);

    assert_eq!(
        mirror.block_on(client.blob_size("steps/blobs", &blob.digest)).unwrap(),
        None
    );
    let session = mirror.block_on(client.start_upload("steps/blobs")).unwrap();
    assert!(
        session.path().starts_with("/v2/steps/blobs/blobs/uploads/"),
        "{session}"
    );
    mirror
        .block_on(client.put_upload("steps/blobs", &session, &blob.digest, &blob.src()))
        .unwrap();
    assert_eq!(
        mirror.block_on(client.blob_size("steps/blobs", &blob.digest)).unwrap(),
        Some(blob.size)
    );
    assert!(mirror.has_blob(&blob.digest).unwrap());
    assert_eq!(read_back(&mirror, &blob), blob.size);

    // A wrong digest is refused by the registry, and the error says so.
    let other = random_blob(tmp.path(), "other", 1000, 2);
    let lie = BlobFile {
        digest: Digest::of(b"not this"),
        ..other
    };
    let session = mirror.block_on(client.start_upload("steps/blobs")).unwrap();
    let err = mirror
        .block_on(client.put_upload("steps/blobs", &session, &lie.digest, &lie.src()))
        .unwrap_err();
    assert!(error_text(&err).contains("DIGEST_INVALID"), "{err:#}");
    // A missing blob is an error naming it, not an empty reader.
    let err = mirror.open_blob(&lie.digest).err().expect("missing blob must fail");
    assert!(
        error_text(&err).contains(&lie.digest.to_string()) && error_text(&err).contains("404"),
        "{err:#}"
    );
}

#[test]
fn chunked_upload_steps_patch_status_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let mirror = RegistryMirror::new(&peer.mirror_url("steps/chunked"), &opts()).unwrap();
    let client = mirror.client();
    let repo = "steps/chunked";
    let blob = random_blob(tmp.path(), "blob", 2 * MIB + MIB / 2, 3);

    let session = mirror.block_on(client.start_upload(repo)).unwrap();
    let after = mirror
        .block_on(client.patch_upload(repo, &session, &blob.src(), MIB))
        .unwrap();
    let (_, offset) = mirror.block_on(client.upload_status(repo, &after)).unwrap();
    assert_eq!(offset, blob.size, "the registry holds every byte before the commit");
    assert_eq!(
        mirror.block_on(client.blob_size(repo, &blob.digest)).unwrap(),
        None,
        "not visible before the commit"
    );
    mirror
        .block_on(client.commit_upload(repo, &after, &blob.digest))
        .unwrap();
    assert_eq!(read_back(&mirror, &blob), blob.size);

    // The whole push with chunk_size set takes the same road.
    let chunked = RegistryMirror::new(
        &peer.mirror_url(repo),
        &ClientOptions {
            chunk_size: Some(MIB / 2),
            ..opts()
        },
    )
    .unwrap();
    let second = random_blob(tmp.path(), "second", MIB + 17, 4);
    assert_eq!(
        chunked.push_blob(&second.digest, &second.src(), None).unwrap(),
        BlobPush::Uploaded
    );
    assert_eq!(read_back(&chunked, &second), second.size);
}

#[test]
fn falls_back_to_chunks_when_a_single_put_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let patches = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&patches);
    // A proxy that, like an nginx with a small client_max_body_size, refuses big PUT bodies.
    let proxy = Proxy::start(peer.host(), move |head: &RequestHead| {
        let len: u64 = head.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        if head.method == "PATCH" {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        if head.method == "PUT" && len > MIB {
            return Action::Respond {
                status: 413,
                headers: vec![],
                body: b"too large".to_vec(),
            };
        }
        Action::Forward
    });
    let mirror = RegistryMirror::new(&format!("oci+http://{}/fallback", proxy.host()), &opts()).unwrap();
    let blob = random_blob(tmp.path(), "blob", 9 * MIB, 5);
    assert_eq!(
        mirror.push_blob(&blob.digest, &blob.src(), None).unwrap(),
        BlobPush::Uploaded
    );
    assert_eq!(patches.load(Ordering::SeqCst), 2, "9 MiB in 8 MiB chunks");
    assert_eq!(read_back(&mirror, &blob), blob.size);
}

#[test]
fn chunked_upload_resumes_from_the_upload_status_after_416() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let (patches, statuses) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (p, st) = (Arc::clone(&patches), Arc::clone(&statuses));
    let proxy = Proxy::start(peer.host(), move |head: &RequestHead| {
        if head.method == "PATCH" && p.fetch_add(1, Ordering::SeqCst) == 1 {
            return Action::Respond {
                status: 416,
                headers: vec![],
                body: vec![],
            };
        }
        if head.method == "GET" && head.path().contains("/blobs/uploads/") {
            st.fetch_add(1, Ordering::SeqCst);
        }
        Action::Forward
    });
    let opts = ClientOptions {
        chunk_size: Some(MIB),
        ..opts()
    };
    let mirror = RegistryMirror::new(&format!("oci+http://{}/resume416", proxy.host()), &opts).unwrap();
    let blob = random_blob(tmp.path(), "blob", 2 * MIB + MIB / 2, 50);
    assert_eq!(
        mirror.push_blob(&blob.digest, &blob.src(), None).unwrap(),
        BlobPush::Uploaded
    );
    assert_eq!(statuses.load(Ordering::SeqCst), 1, "asked the registry where to resume");
    assert_eq!(patches.load(Ordering::SeqCst), 4, "three chunks, one sent twice");
    assert_eq!(read_back(&mirror, &blob), blob.size);
}

#[test]
fn a_lost_upload_session_starts_the_blob_over() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let (puts, posts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (pu, po) = (Arc::clone(&puts), Arc::clone(&posts));
    let proxy = Proxy::start(peer.host(), move |head: &RequestHead| {
        if head.method == "POST" {
            po.fetch_add(1, Ordering::SeqCst);
        }
        if head.method == "PUT" && pu.fetch_add(1, Ordering::SeqCst) == 0 {
            let body = br#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown to registry"}]}"#;
            return Action::Respond {
                status: 404,
                headers: vec![],
                body: body.to_vec(),
            };
        }
        Action::Forward
    });
    let mirror = RegistryMirror::new(&format!("oci+http://{}/lost", proxy.host()), &opts()).unwrap();
    let blob = random_blob(tmp.path(), "blob", 300_000, 51);
    assert_eq!(
        mirror.push_blob(&blob.digest, &blob.src(), None).unwrap(),
        BlobPush::Uploaded
    );
    assert_eq!(posts.load(Ordering::SeqCst), 2, "a second session was opened");
    assert_eq!(read_back(&mirror, &blob), blob.size);
}

#[test]
fn credentials_are_not_sent_along_a_redirect_to_another_host() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    // "Storage": another origin that records the Authorization headers it gets.
    let storage_auth = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
    let seen = Arc::clone(&storage_auth);
    let storage = Proxy::start(peer.host(), move |head: &RequestHead| {
        seen.lock()
            .unwrap()
            .push(head.header("authorization").map(str::to_string));
        Action::Forward
    });
    // The "registry": Basic auth required; blob downloads redirect to storage.
    let storage_host = storage.host().replace("127.0.0.1", "localhost");
    let front_auth = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&front_auth);
    let front = Proxy::start(peer.host(), move |head: &RequestHead| {
        let Some(auth) = head.header("authorization") else {
            let challenge = ("WWW-Authenticate".to_string(), "Basic realm=\"front\"".to_string());
            return Action::Respond {
                status: 401,
                headers: vec![challenge],
                body: vec![],
            };
        };
        assert_eq!(
            auth,
            format!("Basic {}", data_encoding::BASE64.encode(b"peer:redirectpass"))
        );
        counted.fetch_add(1, Ordering::SeqCst);
        if head.method == "GET" && head.path().contains("/blobs/sha256:") {
            let location = ("Location".to_string(), format!("http://{storage_host}{}", head.target));
            return Action::Respond {
                status: 307,
                headers: vec![location],
                body: vec![],
            };
        }
        Action::Forward
    });
    let creds = Credentials {
        username: "peer".into(),
        password: Secret::new("redirectpass"),
        origin: "the test".into(),
    };
    let opts = ClientOptions {
        credentials: Some(creds),
        ..opts()
    };
    let mirror = RegistryMirror::new(&format!("oci+http://{}/redirected", front.host()), &opts).unwrap();
    let blob = random_blob(tmp.path(), "blob", MIB, 52);
    mirror.push_blob(&blob.digest, &blob.src(), None).unwrap();
    assert_eq!(read_back(&mirror, &blob), blob.size);
    let storage_auth = storage_auth.lock().unwrap().clone();
    assert_eq!(
        storage_auth,
        vec![None],
        "storage got the download, without credentials"
    );
    assert!(front_auth.load(Ordering::SeqCst) >= 3, "the registry itself got them");
}

#[test]
fn cross_repository_mount() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let source = RegistryMirror::new(&peer.mirror_url("team/source"), &opts()).unwrap();
    let target = RegistryMirror::new(&peer.mirror_url("team/target"), &opts()).unwrap();
    let blob = random_blob(tmp.path(), "layer", 3 * MIB, 6);
    assert_eq!(
        source.push_blob(&blob.digest, &blob.src(), None).unwrap(),
        BlobPush::Uploaded
    );

    assert!(!target.has_blob(&blob.digest).unwrap());
    let start = target
        .block_on(target.client().mount_blob("team/target", &blob.digest, "team/source"))
        .unwrap();
    assert_eq!(start, UploadStart::Mounted);
    assert!(target.has_blob(&blob.digest).unwrap());
    assert_eq!(
        target
            .push_blob(&blob.digest, &blob.src(), Some("team/source"))
            .unwrap(),
        BlobPush::Existed,
        "HEAD first"
    );

    let other = RegistryMirror::new(&peer.mirror_url("team/other"), &opts()).unwrap();
    assert_eq!(
        other.push_blob(&blob.digest, &blob.src(), Some("team/source")).unwrap(),
        BlobPush::Mounted
    );
    assert_eq!(read_back(&other, &blob), blob.size);
    // Mounting what the source does not have opens a normal upload instead.
    let fresh = random_blob(tmp.path(), "fresh", 1000, 7);
    assert_eq!(
        other
            .push_blob(&fresh.digest, &fresh.src(), Some("team/source"))
            .unwrap(),
        BlobPush::Uploaded
    );
}

#[test]
fn manifests_come_back_byte_identical_for_oci_and_docker_types() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let repo = "manifests/x";
    let mirror = RegistryMirror::new(&peer.mirror_url(repo), &opts()).unwrap();
    let config = bytes_blob(
        tmp.path(),
        "config",
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let layer = random_blob(tmp.path(), "layer", 4096, 8);
    mirror.push_blobs(&pairs(&[config.clone(), layer.clone()])).unwrap();

    // Odd but valid JSON formatting must survive byte for byte.
    let oci = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{MANIFEST_MEDIA_TYPE}\",\n  \"config\": {{\"mediaType\": \"{CONFIG_MEDIA_TYPE}\", \"digest\": \"{}\", \"size\": {}}},\n  \"layers\": [{{\"mediaType\": \"{LAYER_MEDIA_TYPE}\", \"digest\": \"{}\", \"size\": {}}}]\n}}\n",
        config.digest, config.size, layer.digest, layer.size
    );
    let digest = mirror
        .put_manifest("oci-tag", MANIFEST_MEDIA_TYPE, oci.as_bytes())
        .unwrap();
    assert_eq!(digest, Digest::of(oci.as_bytes()));
    assert_eq!(mirror.get_manifest("oci-tag").unwrap().unwrap(), oci.as_bytes());
    let got = mirror
        .block_on(mirror.client().get_manifest(repo, &digest.to_string()))
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.media_type.as_str(), got.digest, got.bytes),
        (MANIFEST_MEDIA_TYPE, digest, oci.into_bytes())
    );

    let docker = serde_json::to_vec_pretty(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config.digest.to_string(), "size": config.size},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer.digest.to_string(), "size": layer.size}],
    }))
    .unwrap();
    mirror
        .put_manifest("docker-tag", DOCKER_MANIFEST_MEDIA_TYPE, &docker)
        .unwrap();
    let got = mirror
        .block_on(mirror.client().get_manifest(repo, "docker-tag"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.media_type.as_str(), got.bytes),
        (DOCKER_MANIFEST_MEDIA_TYPE, docker)
    );

    assert_eq!(mirror.get_manifest("missing-tag").unwrap(), None);
    let empty = RegistryMirror::new(&peer.mirror_url("never/pushed"), &opts()).unwrap();
    assert_eq!(
        empty.get_manifest("t").unwrap(),
        None,
        "unknown repository reads as no manifest"
    );
}

#[test]
fn manifest_naming_a_missing_blob_is_refused_and_no_tag_appears() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let mirror = RegistryMirror::new(&peer.mirror_url("refused"), &opts()).unwrap();
    let config = bytes_blob(tmp.path(), "config", b"{}");
    mirror
        .put_blob(&config.digest, &FileSource::new(&config.path, config.size))
        .unwrap();
    let missing = random_blob(tmp.path(), "never-pushed", 100, 9);
    let err = mirror
        .put_manifest("pkg-1.0-abc", MANIFEST_MEDIA_TYPE, &manifest_for(&config, &[&missing]))
        .unwrap_err();
    let text = error_text(&err);
    assert!(
        text.contains("MANIFEST_BLOB_UNKNOWN") && text.contains(&missing.digest.to_string()),
        "{text}"
    );
    assert!(
        text.contains("pkg-1.0-abc") && text.contains(&peer.mirror_url("refused")),
        "{text}"
    );
    assert!(mirror.list_tags().unwrap().is_empty());
}

#[test]
fn tag_list_is_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let mirror = RegistryMirror::new(&peer.mirror_url("tags/list"), &opts()).unwrap();
    assert!(
        mirror.list_tags().unwrap().is_empty(),
        "a repository nobody pushed to has no tags"
    );
    let config = bytes_blob(tmp.path(), "config", b"{}");
    mirror
        .put_blob(&config.digest, &FileSource::new(&config.path, config.size))
        .unwrap();
    let mut want = BTreeSet::new();
    for i in 0..25 {
        let layer = bytes_blob(tmp.path(), &format!("l{i}"), format!("layer {i}").as_bytes());
        mirror
            .put_blob(&layer.digest, &FileSource::new(&layer.path, layer.size))
            .unwrap();
        let tag = format!("pkg{i}-1.0-h{i:02}");
        mirror
            .put_manifest(&tag, MANIFEST_MEDIA_TYPE, &manifest_for(&config, &[&layer]))
            .unwrap();
        want.insert(tag);
    }
    assert_eq!(mirror.list_tags().unwrap(), want);
    assert_eq!(mirror.reindex().unwrap(), 25);
}

#[test]
fn mirror_trait_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let mirror: Box<dyn Mirror> = Box::new(RegistryMirror::new(&peer.mirror_url("stack/mirror"), &opts()).unwrap());
    assert_eq!(mirror.location(), peer.mirror_url("stack/mirror"));
    let config = bytes_blob(
        tmp.path(),
        "config",
        br#"{"config":{"Env":["PATH=/opt/stackci/x/bin"]}}"#,
    );
    let layer = random_blob(tmp.path(), "layer", 2 * MIB, 10);
    for blob in [&config, &layer] {
        assert!(!mirror.has_blob(&blob.digest).unwrap());
        mirror
            .put_blob(&blob.digest, &FileSource::new(&blob.path, blob.size))
            .unwrap();
        assert!(mirror.has_blob(&blob.digest).unwrap());
        mirror
            .put_blob(&blob.digest, &FileSource::new(&blob.path, blob.size))
            .unwrap(); // again: a no-op
        assert_eq!(read_back(mirror.as_ref(), blob), blob.size);
    }
    let manifest = manifest_for(&config, &[&layer]);
    let digest = mirror
        .put_manifest("zlib-1.3.1-abcdefgh", MANIFEST_MEDIA_TYPE, &manifest)
        .unwrap();
    assert_eq!(digest, Digest::of(&manifest));
    assert_eq!(mirror.get_manifest("zlib-1.3.1-abcdefgh").unwrap(), Some(manifest));
    assert_eq!(mirror.get_manifest("zlib-1.3.1-other").unwrap(), None);
    assert_eq!(
        mirror.list_tags().unwrap(),
        BTreeSet::from(["zlib-1.3.1-abcdefgh".to_string()])
    );
    // The size the caller states is checked against the file before anything is sent.
    let err = mirror
        .put_blob(&layer.digest, &FileSource::new(&layer.path, layer.size + 1))
        .unwrap_err();
    assert!(error_text(&err).contains(&layer.path.display().to_string()), "{err:#}");
    let err = RegistryMirror::new(&format!("{}:tag", peer.mirror_url("stack/mirror")), &opts())
        .err()
        .unwrap();
    assert!(err.to_string().contains("names a tag"), "{err}");
}

/// A gzip tar layer holding one file, plus its diff id.
fn tiny_layer(dir: &Path) -> (BlobFile, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    let data = b"hello from stackci\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, "opt/stackci/hello.txt", &data[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = Digest::of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    (bytes_blob(dir, "layer.tar.gz", &gz.finish().unwrap()), diff_id)
}

#[test]
fn skopeo_inspects_and_copies_an_image_we_pushed() {
    use oci_spec::image::{
        ConfigBuilder, Descriptor, ImageConfigurationBuilder, ImageManifestBuilder, MediaType, RootFsBuilder,
    };
    let skopeo = Command::new("skopeo").arg("--version").output();
    assert!(
        skopeo.is_ok_and(|o| o.status.success()),
        "skopeo is not installed: run `apt-get install -y skopeo`"
    );
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let mirror = RegistryMirror::new(&peer.mirror_url("images/tiny"), &opts()).unwrap();

    let (layer, diff_id) = tiny_layer(tmp.path());
    let config = ImageConfigurationBuilder::default()
        .architecture("amd64")
        .os("linux")
        .config(
            ConfigBuilder::default()
                .env(vec!["PATH=/opt/stackci/bin".to_string()])
                .build()
                .unwrap(),
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id.to_string()])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let config = bytes_blob(tmp.path(), "config.json", config.to_string().unwrap().as_bytes());
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config.size,
            config.digest.to_string().parse::<oci_spec::image::Digest>().unwrap(),
        ))
        .layers(vec![Descriptor::new(
            MediaType::ImageLayerGzip,
            layer.size,
            layer.digest.to_string().parse::<oci_spec::image::Digest>().unwrap(),
        )])
        .build()
        .unwrap()
        .to_string()
        .unwrap();
    mirror.push_blobs(&pairs(&[layer.clone(), config.clone()])).unwrap();
    let digest = mirror
        .put_manifest("v1", MANIFEST_MEDIA_TYPE, manifest.as_bytes())
        .unwrap();

    let image = format!("docker://{}/images/tiny:v1", peer.host());
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &image])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["Digest"], digest.to_string());
    assert_eq!(info["Layers"], serde_json::json!([layer.digest.to_string()]));
    assert_eq!(
        (info["Os"].as_str(), info["Architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );
    assert_eq!(info["Env"], serde_json::json!(["PATH=/opt/stackci/bin"]));

    // A full copy downloads and verifies every blob.
    let layout = tmp.path().join("copy");
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &image,
            &format!("oci:{}:v1", layout.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(layout.join("blobs/sha256").join(layer.digest.hex()).exists());
    assert_eq!(
        std::fs::read(layout.join("blobs/sha256").join(digest.hex())).unwrap(),
        manifest.as_bytes()
    );
}

fn auth_opts(peer: &Peer, password: &str) -> ClientOptions {
    ClientOptions {
        ca_cert: Some(peer.ca()),
        credentials: Some(Credentials {
            username: "peer".into(),
            password: Secret::new(password),
            origin: "the test".into(),
        }),
        ..opts()
    }
}

#[test]
fn tls_and_basic_auth_with_the_ca_from_ca_cert() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), true);
    let mirror = RegistryMirror::new(&peer.mirror_url("secure/repo"), &auth_opts(&peer, "peerpass")).unwrap();
    mirror.block_on(mirror.client().ping()).unwrap();
    let blob = random_blob(tmp.path(), "blob", 3 * MIB, 11);
    assert_eq!(
        mirror.push_blob(&blob.digest, &blob.src(), None).unwrap(),
        BlobPush::Uploaded
    );
    assert_eq!(read_back(&mirror, &blob), blob.size);
    let config = bytes_blob(tmp.path(), "config", b"{}");
    mirror
        .put_blob(&config.digest, &FileSource::new(&config.path, config.size))
        .unwrap();
    mirror
        .put_manifest("t1", MANIFEST_MEDIA_TYPE, &manifest_for(&config, &[&blob]))
        .unwrap();
    assert_eq!(mirror.list_tags().unwrap(), BTreeSet::from(["t1".to_string()]));
    let other = RegistryMirror::new(&peer.mirror_url("secure/other"), &auth_opts(&peer, "peerpass")).unwrap();
    assert_eq!(
        other.push_blob(&blob.digest, &blob.src(), Some("secure/repo")).unwrap(),
        BlobPush::Mounted
    );
}

#[test]
fn tls_without_the_ca_fails_naming_ca_cert_and_ssl_cert_file() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), true);
    let mirror = RegistryMirror::new(
        &peer.mirror_url("secure/repo"),
        &ClientOptions {
            ca_cert: None,
            ..auth_opts(&peer, "peerpass")
        },
    )
    .unwrap();
    let err = mirror.has_blob(&Digest::of(b"x")).unwrap_err();
    let text = error_text(&err);
    assert!(text.contains("--ca-cert") && text.contains("SSL_CERT_FILE"), "{text}");
    assert!(
        text.contains(&format!("https://{}/v2/secure/repo/blobs/", peer.host())),
        "{text}"
    );
    assert!(
        err.chain()
            .any(|c| matches!(c.downcast_ref::<RegistryError>(), Some(RegistryError::Tls { .. }))),
        "{text}"
    );
}

#[test]
fn wrong_password_names_registry_and_user_but_not_the_password() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), true);
    let password = "Wr0ng-Passw0rd-Canary";
    let mirror = RegistryMirror::new(&peer.mirror_url("secure/repo"), &auth_opts(&peer, password)).unwrap();
    let blob = random_blob(tmp.path(), "blob", 1000, 12);
    for err in [
        mirror.push_blob(&blob.digest, &blob.src(), None).unwrap_err(),
        mirror.list_tags().unwrap_err(),
    ] {
        let text = error_text(&err);
        assert!(
            text.contains(&format!("authentication to {} failed (user `peer`", peer.host())),
            "{text}"
        );
        assert!(text.contains("STACKCI_REGISTRY_"), "{text}");
        assert!(!text.contains(password), "the password leaked: {text}");
        assert!(
            !text.contains(&data_encoding::BASE64.encode(format!("peer:{password}").as_bytes())),
            "{text}"
        );
    }
    let opts = auth_opts(&peer, password);
    assert!(
        !format!("{opts:?}").contains(password),
        "Debug of the options leaks the password"
    );
}

#[test]
fn no_credentials_for_an_auth_registry_says_how_to_give_them() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), true);
    // credentials: None looks them up in the process environment, which has none for this port.
    let mirror = RegistryMirror::new(
        &peer.mirror_url("secure/repo"),
        &ClientOptions {
            ca_cert: Some(peer.ca()),
            ..opts()
        },
    )
    .unwrap();
    let err = mirror.list_tags().unwrap_err();
    let text = error_text(&err);
    assert!(
        text.contains(&format!("{} requires authentication", peer.host()))
            && text.contains("STACKCI_REGISTRY_USERNAME"),
        "{text}"
    );
}

#[test]
fn credentials_from_a_docker_config_file_work_against_the_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), true);
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = data_encoding::BASE64.encode(b"peer:peerpass");
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"https://{}":{{"auth":"{auth}"}}}}}}"#, peer.host()),
    )
    .unwrap();
    let env = BTreeMap::from([("DOCKER_CONFIG".to_string(), docker.display().to_string())]);
    let creds = lookup_credentials(peer.host(), "secure/repo", &|k| env.get(k).cloned())
        .unwrap()
        .expect("found in config.json");
    assert_eq!(creds.username, "peer");
    let mirror = RegistryMirror::new(
        &peer.mirror_url("secure/repo"),
        &ClientOptions {
            credentials: Some(creds),
            ..auth_opts(&peer, "")
        },
    )
    .unwrap();
    let blob = random_blob(tmp.path(), "blob", 1000, 13);
    assert_eq!(
        mirror.push_blob(&blob.digest, &blob.src(), None).unwrap(),
        BlobPush::Uploaded
    );
}

/// What the token stand-in saw on one token request.
#[derive(Debug, Clone)]
struct TokenRequest {
    service: Option<String>,
    scopes: Vec<String>,
    basic: Option<String>,
}

/// A Bearer token server in front of the plain registry: `/token` issues tokens for the
/// asked scopes to `peer:tokenpass`; `/v2/...` requires a token whose scopes cover the
/// repository and action, else answers 401 with a Bearer challenge.
#[derive(Default)]
struct TokenStandIn {
    requests: Mutex<Vec<TokenRequest>>,
    issued: Mutex<HashMap<String, Vec<String>>>,
    challenges: AtomicUsize,
}

impl TokenStandIn {
    fn handle(&self, head: &RequestHead) -> Action {
        let host = head.header("host").unwrap_or_default().to_string();
        if head.path() == "/token" {
            let query = head.query();
            let basic = head
                .header("authorization")
                .and_then(|a| a.strip_prefix("Basic "))
                .and_then(|b| data_encoding::BASE64.decode(b.as_bytes()).ok())
                .and_then(|b| String::from_utf8(b).ok());
            let scopes: Vec<String> = query
                .iter()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.clone())
                .collect();
            let service = query.iter().find(|(k, _)| k == "service").map(|(_, v)| v.clone());
            self.requests.lock().unwrap().push(TokenRequest {
                service,
                scopes: scopes.clone(),
                basic: basic.clone(),
            });
            if basic.as_deref() != Some("peer:tokenpass") {
                return Action::Respond {
                    status: 401,
                    headers: vec![],
                    body: br#"{"details":"bad credentials"}"#.to_vec(),
                };
            }
            let mut issued = self.issued.lock().unwrap();
            let token = format!("token-{}", issued.len() + 1000);
            issued.insert(token.clone(), scopes);
            let body = format!(r#"{{"token":"{token}","expires_in":300}}"#).into_bytes();
            return Action::Respond {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body,
            };
        }
        let rest = head.path().strip_prefix("/v2/").unwrap_or_default();
        let repo = ["/blobs/", "/manifests/", "/tags/"]
            .iter()
            .find_map(|m| rest.split_once(m).map(|(r, _)| r.to_string()));
        let action = if head.method == "GET" || head.method == "HEAD" {
            "pull"
        } else {
            "push"
        };
        let token = head
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_default();
        let scopes = self.issued.lock().unwrap().get(token).cloned();
        let covers = |repo: &str, action: &str| {
            scopes.as_ref().is_some_and(|s| {
                s.iter().any(|sc| {
                    sc.strip_prefix(&format!("repository:{repo}:"))
                        .is_some_and(|acts| acts.split(',').any(|a| a == action))
                })
            })
        };
        let mut ok = match &repo {
            None => scopes.is_some(),
            Some(repo) => covers(repo, action),
        };
        let mount_from = head.query().into_iter().find(|(k, _)| k == "from").map(|(_, v)| v);
        if let Some(from) = &mount_from {
            ok &= covers(from, "pull");
        }
        if ok {
            return Action::Forward;
        }
        self.challenges.fetch_add(1, Ordering::SeqCst);
        let scope = repo
            .map(|r| {
                format!(
                    ",scope=\"repository:{r}:{}\"",
                    if action == "pull" { "pull" } else { "pull,push" }
                )
            })
            .unwrap_or_default();
        Action::Respond {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                format!("Bearer realm=\"http://{host}/token\",service=\"stand-in\"{scope}"),
            )],
            body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
        }
    }
}

#[test]
fn bearer_token_flow_scopes_cache_and_renewal() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let server = Arc::new(TokenStandIn::default());
    let handler = Arc::clone(&server);
    let proxy = Proxy::start(peer.host(), move |head: &RequestHead| handler.handle(head));
    let creds = Credentials {
        username: "peer".into(),
        password: Secret::new("tokenpass"),
        origin: "the test".into(),
    };
    let opts = ClientOptions {
        credentials: Some(creds),
        ..opts()
    };
    let mirror = RegistryMirror::new(&format!("oci+http://{}/bearer/repo", proxy.host()), &opts).unwrap();

    let blobs: Vec<BlobFile> = (0..4)
        .map(|i| random_blob(tmp.path(), &format!("b{i}"), 200_000 + i, 20 + i))
        .collect();
    mirror.push_blobs(&pairs(&blobs)).unwrap();
    let requests = server.requests.lock().unwrap().clone();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.service.as_deref(), Some("stand-in"));
        assert_eq!(
            r.basic.as_deref(),
            Some("peer:tokenpass"),
            "token requests carry the basic credentials"
        );
    }
    assert!(
        requests.iter().any(|r| r.scopes == ["repository:bearer/repo:pull"]),
        "HEAD asks for pull: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.scopes == ["repository:bearer/repo:pull,push"]),
        "uploads ask for push: {requests:?}"
    );

    // Cached per scope: more work in the same scopes fetches no token.
    let before = server.requests.lock().unwrap().len();
    let more = random_blob(tmp.path(), "more", 1000, 30);
    mirror.push_blob(&more.digest, &more.src(), None).unwrap();
    let config = bytes_blob(tmp.path(), "config", b"{}");
    mirror
        .put_blob(&config.digest, &FileSource::new(&config.path, config.size))
        .unwrap();
    mirror
        .put_manifest("t", MANIFEST_MEDIA_TYPE, &manifest_for(&config, &[&blobs[0], &more]))
        .unwrap();
    assert_eq!(mirror.list_tags().unwrap(), BTreeSet::from(["t".to_string()]));
    assert_eq!(
        server.requests.lock().unwrap().len(),
        before,
        "cached tokens are reused"
    );

    // Renewed on 401: revoke every token; the next request gets a fresh one.
    server.issued.lock().unwrap().clear();
    assert_eq!(
        mirror.get_manifest("t").unwrap().map(|m| m.len()),
        Some(manifest_for(&config, &[&blobs[0], &more]).len())
    );
    assert_eq!(server.requests.lock().unwrap().len(), before + 1);

    // A mount asks for pull on the source too.
    let other = RegistryMirror::new(&format!("oci+http://{}/bearer/other", proxy.host()), &opts).unwrap();
    assert_eq!(
        other.push_blob(&more.digest, &more.src(), Some("bearer/repo")).unwrap(),
        BlobPush::Mounted
    );
    let last = server
        .requests
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.scopes.len() == 2)
        .cloned()
        .expect("a two-scope token request");
    assert_eq!(
        last.scopes,
        ["repository:bearer/other:pull,push", "repository:bearer/repo:pull"]
    );
    assert!(server.challenges.load(Ordering::SeqCst) >= 2);
}

#[test]
fn bearer_token_with_a_wrong_password_names_registry_and_user() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let server = Arc::new(TokenStandIn::default());
    let handler = Arc::clone(&server);
    let proxy = Proxy::start(peer.host(), move |head: &RequestHead| handler.handle(head));
    let creds = Credentials {
        username: "peer".into(),
        password: Secret::new("Bearer-Canary-Pw"),
        origin: "the test".into(),
    };
    let mirror = RegistryMirror::new(
        &format!("oci+http://{}/bearer/repo", proxy.host()),
        &ClientOptions {
            credentials: Some(creds),
            ..opts()
        },
    )
    .unwrap();
    let err = mirror.list_tags().unwrap_err();
    let text = error_text(&err);
    assert!(
        text.contains(&format!("authentication to {} failed (user `peer`", proxy.host())),
        "{text}"
    );
    assert!(!text.contains("Bearer-Canary-Pw"), "{text}");
}

#[test]
fn twenty_percent_faults_push_twenty_blobs_and_manifests_correctly() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let faults = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&faults);
    let rng = Mutex::new(Rng::new(0x5eed_f00d));
    let proxy = Proxy::start(peer.host(), move |_: &RequestHead| {
        let roll = rng.lock().unwrap().below(100);
        if roll >= 20 {
            return Action::Forward;
        }
        counted.fetch_add(1, Ordering::SeqCst);
        match roll % 3 {
            0 => Action::Respond {
                status: 500,
                headers: vec![],
                body: b"injected".to_vec(),
            },
            1 => Action::Respond {
                status: 429,
                headers: vec![("Retry-After".into(), "0".into())],
                body: vec![],
            },
            _ => Action::Drop,
        }
    });
    let opts = ClientOptions {
        retry: Retry {
            attempts: 11,
            ..opts().retry
        },
        ..opts()
    };
    let mirror = RegistryMirror::new(&format!("oci+http://{}/faults", proxy.host()), &opts).unwrap();
    let config = bytes_blob(tmp.path(), "config", b"{}");
    let mut blobs: Vec<BlobFile> = (0..20)
        .map(|i| random_blob(tmp.path(), &format!("b{i}"), 50_000 + i * 40_000, 100 + i))
        .collect();
    blobs.push(config.clone());
    let pushed = mirror.push_blobs(&pairs(&blobs)).unwrap();
    assert_eq!(pushed.len(), 21);
    for (i, blob) in blobs[..20].iter().enumerate() {
        let manifest = manifest_for(&config, &[blob]);
        let digest = mirror
            .put_manifest(&format!("pkg{i}-1.0-x"), MANIFEST_MEDIA_TYPE, &manifest)
            .unwrap();
        assert_eq!(digest, Digest::of(&manifest));
    }
    assert!(
        faults.load(Ordering::SeqCst) >= 10,
        "only {} faults injected",
        faults.load(Ordering::SeqCst)
    );
    assert!(
        proxy.peak_in_flight() > 1 && proxy.peak_in_flight() <= 8,
        "peak in flight {}",
        proxy.peak_in_flight()
    );

    // Checked directly against the registry, without the proxy.
    let direct = RegistryMirror::new(&peer.mirror_url("faults"), &opts).unwrap();
    for blob in &blobs {
        assert_eq!(read_back(&direct, blob), blob.size);
    }
    assert_eq!(direct.list_tags().unwrap().len(), 20);
    for (i, blob) in blobs[..20].iter().enumerate() {
        assert_eq!(
            direct.get_manifest(&format!("pkg{i}-1.0-x")).unwrap(),
            Some(manifest_for(&config, &[blob]))
        );
    }
}

#[test]
fn parallel_uploads_stay_within_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let proxy = Proxy::start(peer.host(), |head: &RequestHead| {
        if head.method == "PUT" {
            std::thread::sleep(Duration::from_millis(200)); // keep uploads overlapping
        }
        Action::Forward
    });
    let mirror = RegistryMirror::new(
        &format!("oci+http://{}/jobs", proxy.host()),
        &ClientOptions { jobs: 3, ..opts() },
    )
    .unwrap();
    let blobs: Vec<BlobFile> = (0..12)
        .map(|i| random_blob(tmp.path(), &format!("b{i}"), 300_000, 200 + i))
        .collect();
    let pushed = mirror.push_blobs(&pairs(&blobs)).unwrap();
    assert!(pushed.iter().all(|p| *p == BlobPush::Uploaded));
    // Bounded by -j, and really parallel (an exact 3 depends on scheduling on a loaded machine).
    let peak = proxy.peak_in_flight();
    assert!((2..=3).contains(&peak), "-j 3: {peak} requests in flight at the peak");
    assert_eq!(mirror.push_blobs(&pairs(&blobs)).unwrap(), vec![BlobPush::Existed; 12]);
}

#[test]
fn download_resumes_after_a_dropped_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let cut = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&cut);
    let proxy = Proxy::start(peer.host(), move |head: &RequestHead| {
        if head.method == "GET" && head.path().contains("/blobs/sha256:") && head.header("range").is_none() {
            counted.fetch_add(1, Ordering::SeqCst);
            return Action::ForwardTruncated;
        }
        Action::Forward
    });
    let mirror = RegistryMirror::new(&format!("oci+http://{}/resume", proxy.host()), &opts()).unwrap();
    let blob = random_blob(tmp.path(), "blob", 5 * MIB, 40);
    mirror.push_blob(&blob.digest, &blob.src(), None).unwrap();
    assert_eq!(read_back(&mirror, &blob), blob.size);
    assert_eq!(cut.load(Ordering::SeqCst), 1, "the first download was cut at half");
}

#[test]
fn registry_killed_mid_push_fails_clearly_and_a_rerun_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let reg_dir = tmp.path().join("reg");
    let peer = Peer::start(&reg_dir, false);
    let port = peer.port();
    let puts = Arc::new(AtomicUsize::new(0));
    let (counted, dir) = (Arc::clone(&puts), reg_dir.clone());
    let proxy = Proxy::start(peer.host(), move |head: &RequestHead| {
        if head.method == "PUT"
            && head.path().contains("/blobs/uploads/")
            && counted.fetch_add(1, Ordering::SeqCst) + 1 == 5
        {
            registry::stop_dir(&dir, false);
            return Action::Shutdown;
        }
        Action::Forward
    });
    let url = format!("oci+http://{}/killed", proxy.host());
    let mirror = RegistryMirror::new(
        &url,
        &ClientOptions {
            retry: Retry {
                attempts: 3,
                ..opts().retry
            },
            jobs: 2,
            ..opts()
        },
    )
    .unwrap();
    let config = bytes_blob(tmp.path(), "config", b"{}");
    let mut blobs: Vec<BlobFile> = (0..10)
        .map(|i| random_blob(tmp.path(), &format!("b{i}"), 400_000, 300 + i))
        .collect();
    blobs.insert(0, config.clone());
    let layers: Vec<&BlobFile> = blobs[1..].iter().collect();
    let manifest = manifest_for(&config, &layers);

    // What a package push does: all blobs, then the tag.
    let push = |m: &RegistryMirror| -> anyhow::Result<Digest> {
        m.push_blobs(&pairs(&blobs))?;
        m.put_manifest("pkg-1.0-killed", MANIFEST_MEDIA_TYPE, &manifest)
    };
    let err = push(&mirror).unwrap_err();
    let text = error_text(&err);
    assert!(
        text.contains(&format!("cannot connect to http://{}/v2/killed/", proxy.host())),
        "{text}"
    );
    assert!(text.to_ascii_lowercase().contains("refused"), "{text}");
    drop(mirror);
    drop(proxy);
    drop(peer); // already stopped; stop is idempotent

    let peer = Peer::start_on(&reg_dir, false, port);
    let direct = RegistryMirror::new(&peer.mirror_url("killed"), &opts()).unwrap();
    assert!(direct.list_tags().unwrap().is_empty(), "no tag without all its blobs");
    let present = blobs.iter().filter(|b| direct.has_blob(&b.digest).unwrap()).count();
    assert!(
        present < blobs.len(),
        "the push was cut short ({present} of {} blobs)",
        blobs.len()
    );

    push(&direct).unwrap();
    assert_eq!(
        direct.list_tags().unwrap(),
        BTreeSet::from(["pkg-1.0-killed".to_string()])
    );
    for blob in &blobs {
        assert_eq!(read_back(&direct, blob), blob.size);
    }
}

#[test]
fn connection_refused_names_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mirror = RegistryMirror::new(
        &format!("oci+http://127.0.0.1:{port}/nobody"),
        &ClientOptions {
            retry: Retry {
                attempts: 2,
                ..opts().retry
            },
            ..opts()
        },
    )
    .unwrap();
    let err = mirror.list_tags().unwrap_err();
    let text = error_text(&err);
    assert!(
        text.contains(&format!(
            "cannot connect to http://127.0.0.1:{port}/v2/nobody/tags/list"
        )),
        "{text}"
    );
}

/// The shared retry policy on registry requests: a `Retry-After` HTTP date is waited out,
/// and a `Retry-After` beyond the policy's cap ends the retries at once (one request).
#[test]
fn retry_after_dates_are_honoured_and_waits_beyond_the_cap_end_the_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    let answer = Arc::new(Mutex::new(String::new()));
    let asked = Arc::clone(&answer);
    let proxy = Proxy::start(peer.host(), move |_: &RequestHead| {
        counted.fetch_add(1, Ordering::SeqCst);
        match asked.lock().unwrap().as_str() {
            "" => Action::Forward,
            retry_after => Action::Respond {
                status: 503,
                headers: vec![("Retry-After".into(), retry_after.to_string())],
                body: vec![],
            },
        }
    });
    let opts = ClientOptions {
        retry: Retry {
            attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(5),
        },
        ..opts()
    };
    let mirror = RegistryMirror::new(&format!("oci+http://{}/waits", proxy.host()), &opts).unwrap();

    // An HTTP date about 2 s ahead (whole seconds, so the wait is 1 to 2 s), answered once.
    *answer.lock().unwrap() = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    let unanswered = Arc::clone(&answer);
    let clear = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        unanswered.lock().unwrap().clear();
    });
    let start = std::time::Instant::now();
    mirror.block_on(mirror.client().ping()).unwrap();
    clear.join().unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "the date was not waited for: {waited:?}"
    );
    assert!(requests.load(Ordering::SeqCst) >= 2);

    requests.store(0, Ordering::SeqCst);
    *answer.lock().unwrap() = "3600".into();
    let start = std::time::Instant::now();
    let err = mirror.block_on(mirror.client().ping()).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "an hour-long wait was sat out"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1, "no retry sooner than asked");
    assert!(error_text(&err).contains("503"), "{}", error_text(&err));
}

#[test]
fn the_mirror_refuses_to_block_inside_an_async_runtime() {
    let mirror = RegistryMirror::new("oci+http://127.0.0.1:9/any", &opts()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let err = runtime
        .block_on(async { mirror.list_tags() })
        .expect_err("blocking inside a runtime is refused");
    assert!(error_text(&err).contains("synchronous"), "{}", error_text(&err));
}
