//! `stackci mirror copy` between a file layout, a moto S3 bucket and a docker-registry:
//! digests preserved, signatures (`sha256-<hex>.sig`) and referrers (`sha256-<hex>` index)
//! carried along, named packages with their closure, mounts within one registry, `--dry-run`,
//! a warm rerun that copies nothing, and a copy killed half way that a rerun completes.
//! skopeo reads everything copied.

use crate::common::packages::{self, Pkg};
use crate::common::registry::Peer;
use crate::common::s3::Moto;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stackci::digest::Digest;
use stackci::mirror::Mirror;
use stackci::mirror::fs::FsStore;
use stackci::mirror::layout::LayoutMirror;

use crate::common::*;

/// A source layout: a ← b ← c, and d alone; c and a signed; an SBOM on c.
struct Source {
    dir: std::path::PathBuf,
    a: Pkg,
    c: Pkg,
    d: Pkg,
    sbom: Digest,
}

fn source(dir: &Path) -> Source {
    let m = LayoutMirror::new(FsStore::new(dir));
    let a = packages::package(&m, "a", &[], b"layer a");
    let b = packages::package(&m, "b", &[&a], b"layer b");
    let c = packages::package(&m, "c", &[&b, &a], b"layer c");
    let d = packages::package(&m, "d", &[], b"layer d");
    packages::sign(&m, &a.digest);
    packages::sign(&m, &c.digest);
    let sbom = packages::attach_sbom(&m, &packages::manifest_descriptor(&m, &c));
    Source {
        dir: dir.to_path_buf(),
        a,
        c,
        d,
        sbom,
    }
}

/// `mirror copy --json`, parsed.
fn copy(mut cmd: Command, args: &[&str]) -> serde_json::Value {
    let out = ok(cmd.args(["mirror", "copy", "--json"]).args(args));
    serde_json::from_str(&out).unwrap()
}

/// Every tag of a mirror with its manifest digest, through the library.
fn digests(m: &dyn Mirror) -> BTreeMap<String, Digest> {
    m.list_tags()
        .unwrap()
        .into_iter()
        .map(|t| {
            let d = m.manifest_digest(&t).unwrap().unwrap();
            (t, d)
        })
        .collect()
}

fn actions(report: &serde_json::Value) -> BTreeMap<String, String> {
    report["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tag"].as_str().unwrap().into(), t["action"].as_str().unwrap().into()))
        .collect()
}

#[test]
fn copies_file_to_s3_to_registry_to_file_byte_for_byte_with_signatures_and_referrers() {
    require("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let src = source(&tmp.path().join("src"));
    let src_mirror = LayoutMirror::new(FsStore::new(&src.dir));
    let want = digests(&src_mirror);
    assert_eq!(want.len(), 7, "4 packages, 2 signatures, 1 referrers index: {want:?}");

    let moto = Moto::start();
    moto.admin().create_bucket("mirrors");
    let reg = Peer::start(&tmp.path().join("registry"), false);
    let file_src = format!("file://{}", src.dir.display());
    let s3 = "s3://mirrors/copy";
    let oci = reg.mirror_url("copied/stack");
    let back = tmp.path().join("back");
    let file_back = format!("file://{}", back.display());

    for (from, to) in [
        (&file_src, &s3.to_string()),
        (&s3.to_string(), &oci),
        (&oci, &file_back),
    ] {
        let report = copy(moto.stackci(), &[from, to]);
        assert!(
            actions(&report).values().all(|a| a == "copied"),
            "{from} → {to}: {report}"
        );
        // The SBOM manifest has no tag: it goes as the index's child.
        assert_eq!(report["manifests"], 1, "{report}");
        ok(moto.stackci().args(["mirror", "verify", to]));
        // A second run finds everything there.
        let again = copy(moto.stackci(), &[from, to]);
        assert!(actions(&again).values().all(|a| a == "present"), "{again}");
        assert_eq!(again["blobs"]["copied"], 0, "{again}");
        assert_eq!(again["manifests"], 0, "{again}");
    }
    let back_mirror = LayoutMirror::new(FsStore::new(&back));
    assert_eq!(
        digests(&back_mirror),
        want,
        "every tag names the same manifest after three hops"
    );
    assert!(back_mirror.get_manifest(&src.sbom.to_string()).unwrap().is_some());

    // skopeo reads every tag in the registry, byte for byte, and copies the images out.
    for (tag, digest) in &want {
        let raw = ok(Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/copied/stack:{tag}", reg.host())));
        assert_eq!(Digest::of(raw.as_bytes()), *digest, "{tag}");
    }
    ok(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/copied/stack:{}", reg.host(), src.c.tag))
        .arg(format!("oci:{}:c", tmp.path().join("skopeo-out").display())));
    ok(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:{}", back.display(), src.c.tag))
        .arg(format!("oci:{}:c", tmp.path().join("skopeo-out2").display())));
}

#[test]
fn named_packages_come_with_their_closure_and_what_hangs_off_them() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source(&tmp.path().join("src"));
    let dst = tmp.path().join("dst");
    let src_url = src.dir.display().to_string();
    let dst_url = dst.display().to_string();

    let dry = copy(stackci(), &["--dry-run", &src_url, &dst_url, &src.c.tag]);
    assert_eq!(dry["dry_run"], true);
    assert!(!dst.join("index.json").exists(), "a dry run writes nothing");
    let planned = actions(&dry);

    let report = copy(stackci(), &[&src_url, &dst_url, &src.c.tag]);
    let copied = actions(&report);
    assert_eq!(copied, planned, "the dry run said what the copy did");
    let a_sig = format!("sha256-{}.sig", src.a.digest.hex());
    let c_sig = format!("sha256-{}.sig", src.c.digest.hex());
    let c_sbom = format!("sha256-{}", src.c.digest.hex());
    for tag in [&src.a.tag, &src.c.tag, &a_sig, &c_sig, &c_sbom] {
        assert_eq!(copied.get(tag).map(String::as_str), Some("copied"), "{tag}: {report}");
    }
    assert_eq!(copied.len(), 6, "a, b, c, two signatures, the SBOM index: {report}");
    assert!(!copied.contains_key(&src.d.tag));
    // Subjects before what hangs off them.
    let order: Vec<&str> = report["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert!(order[..3].iter().all(|t| !t.starts_with("sha256-")), "{order:?}");
    ok(stackci().args(["mirror", "verify", &dst_url]));

    // Unknown names are refused, naming the mirror.
    let out = output(
        stackci()
            .current_dir(tmp.path())
            .args(["mirror", "copy", &src_url, &dst_url, "nope"]),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`nope` is not a tag in"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn within_one_registry_blobs_are_mounted_and_a_referrers_index_is_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source(&tmp.path().join("src"));
    let reg = Peer::start(&tmp.path().join("registry"), false);
    let a = reg.mirror_url("team/a");
    let b = reg.mirror_url("team/b");
    copy(stackci(), &[&src.dir.display().to_string(), &a]);
    let report = copy(stackci(), &[&a, &b]);
    let blobs = &report["blobs"];
    assert_eq!(blobs["copied"], 0, "{report}");
    assert!(blobs["mounted"].as_u64().unwrap() >= 9, "{report}");

    // b gets another SBOM for c; copying a → b again merges the two indexes.
    let b_mirror = stackci::mirror::open::open(&b, Path::new(""), &Default::default()).unwrap();
    let subject = stackci::spec::Descriptor {
        media_type: stackci::spec::MANIFEST_MEDIA_TYPE.into(),
        digest: src.c.digest.clone(),
        size: b_mirror.get_manifest(&src.c.tag).unwrap().unwrap().len() as u64,
        annotations: Default::default(),
        extra: Default::default(),
    };
    // A different SBOM: attach_sbom writes the same bytes, so change the blob first.
    packages::blob(b_mirror.as_ref(), b"another", "application/octet-stream");
    let index_tag = format!("sha256-{}", src.c.digest.hex());
    let ours = serde_json::json!({
        "schemaVersion": 2, "mediaType": stackci::spec::INDEX_MEDIA_TYPE,
        "manifests": [{"mediaType": stackci::spec::MANIFEST_MEDIA_TYPE, "digest": src.c.digest, "size": subject.size}],
    });
    b_mirror
        .put_manifest(
            &index_tag,
            stackci::spec::INDEX_MEDIA_TYPE,
            &serde_json::to_vec(&ours).unwrap(),
        )
        .unwrap();
    let merged = copy(stackci(), &[&a, &b]);
    assert_eq!(actions(&merged)[&index_tag], "merged", "{merged}");
    let index: serde_json::Value =
        serde_json::from_slice(&b_mirror.get_manifest(&index_tag).unwrap().unwrap()).unwrap();
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [src.c.digest.to_string(), src.sbom.to_string()],
        "b's entry kept, a's added"
    );
    let again = copy(stackci(), &[&a, &b]);
    assert_eq!(actions(&again)[&index_tag], "present", "{again}");
}

/// Blob files docker-registry has stored.
fn stored_blobs(registry_dir: &Path) -> usize {
    let root = registry_dir.join("data/docker/registry/v2/blobs/sha256");
    let Ok(prefixes) = std::fs::read_dir(root) else {
        return 0;
    };
    prefixes
        .filter_map(|p| std::fs::read_dir(p.ok()?.path()).ok())
        .flatten()
        .filter(|b| b.as_ref().is_ok_and(|b| b.path().join("data").exists()))
        .count()
}

#[test]
fn a_copy_killed_half_way_leaves_no_broken_tag_and_a_rerun_finishes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    let m = LayoutMirror::new(FsStore::new(&src_dir));
    for i in 0..24 {
        packages::package(&m, &format!("p{i}"), &[], &packages::noise(2 << 20, i));
    }
    let reg = Peer::start(&tmp.path().join("registry"), false);
    let dst = reg.mirror_url("resume/stack");
    let mut child = stackci()
        .args(["mirror", "copy", "-j", "1"])
        .arg(&src_dir)
        .arg(&dst)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored_blobs(&tmp.path().join("registry")) < 4 {
        assert!(Instant::now() < deadline, "the copy stored no blobs in 60 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the copy ended before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    // Blobs go first, tags last: whatever tags made it are complete.
    ok(stackci().args(["mirror", "verify", &dst]));
    let before = stored_blobs(&tmp.path().join("registry"));

    let report = copy(stackci(), &[&src_dir.display().to_string(), &dst]);
    assert!(
        report["blobs"]["present"].as_u64().unwrap() >= before as u64 - 1,
        "{report}"
    );
    ok(stackci().args(["mirror", "verify", &dst]));
    let reg_mirror = stackci::mirror::open::open(&dst, Path::new(""), &Default::default()).unwrap();
    assert_eq!(reg_mirror.list_tags().unwrap().len(), 24);
}

/// A source registry with the referrers API (docker-registry 2.8 behind a proxy that answers
/// `GET /v2/<repo>/referrers/<digest>` as the distribution spec says; everything else is
/// the real registry): an SBOM known only through the API reaches a file layout, which has
/// no such API, as the `sha256-<hex>` referrers index.
#[test]
fn referrers_from_the_api_arrive_as_the_tag_schema() {
    use crate::common::fault_proxy::{Action, Proxy};
    let tmp = tempfile::tempdir().unwrap();
    let reg = Peer::start(&tmp.path().join("registry"), false);
    let direct = stackci::mirror::oci::RegistryMirror::new(&reg.mirror_url("api/src"), &Default::default()).unwrap();
    let c = packages::package(&direct, "c", &[], b"layer c");
    let subject = packages::manifest_descriptor(&direct, &c);
    let sbom_blob = packages::blob(&direct, br#"{"spdxVersion":"SPDX-2.3"}"#, "application/spdx+json");
    let empty = packages::blob(&direct, b"{}", "application/vnd.oci.empty.v1+json");
    let sbom = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": stackci::spec::MANIFEST_MEDIA_TYPE, "artifactType": "application/spdx+json",
        "config": empty, "layers": [sbom_blob], "subject": subject,
    }))
    .unwrap();
    let sbom_digest = direct
        .put_manifest(
            &Digest::of(&sbom).to_string(),
            stackci::spec::MANIFEST_MEDIA_TYPE,
            &sbom,
        )
        .unwrap();
    let listed = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": stackci::spec::INDEX_MEDIA_TYPE,
        "manifests": [{"mediaType": stackci::spec::MANIFEST_MEDIA_TYPE, "digest": sbom_digest, "size": sbom.len(), "artifactType": "application/spdx+json"}],
    }))
    .unwrap();
    let none = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_vec();
    let for_c = format!("/referrers/{}", c.digest);
    let proxy = Proxy::start(reg.host(), move |req| {
        if !req.path().contains("/referrers/") {
            return Action::Forward;
        }
        let body = if req.path().ends_with(&for_c) {
            listed.clone()
        } else {
            none.clone()
        };
        Action::Respond {
            status: 200,
            headers: vec![("Content-Type".into(), stackci::spec::INDEX_MEDIA_TYPE.into())],
            body,
        }
    });
    let src = format!("oci+http://{}/api/src", proxy.host());
    let dst = tmp.path().join("dst");
    let report = copy(stackci(), &[&src, &dst.display().to_string()]);
    assert_eq!(report["manifests"], 1, "the SBOM manifest: {report}");
    let layout = LayoutMirror::new(FsStore::new(&dst));
    let index: serde_json::Value = serde_json::from_slice(
        &layout
            .get_manifest(&format!("sha256-{}", c.digest.hex()))
            .unwrap()
            .expect("the referrers index"),
    )
    .unwrap();
    assert_eq!(index["manifests"][0]["digest"], sbom_digest.to_string(), "{index}");
    assert_eq!(index["manifests"][0]["artifactType"], "application/spdx+json");
    assert_eq!(
        Digest::of(&layout.get_manifest(&sbom_digest.to_string()).unwrap().unwrap()),
        sbom_digest
    );
    ok(stackci().args(["mirror", "verify", &dst.display().to_string()]));
}
