//! `stackci mirror prune` on a file mirror built by `stackci run`, on moto S3 and on a
//! docker-registry (deletes through the API): what no kept stack needs goes with its
//! signatures and SBOMs, what a kept stack needs (and other tools' tags, `--keep-tag`,
//! recent blobs) stays, `--dry-run` writes nothing; and with real processes, a push running
//! next to repeated prunes loses nothing, and a blob written during a prune survives it.

use crate::common::packages;
use crate::common::registry::Peer;
use crate::common::s3::Moto;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stackci::digest::Digest;
use stackci::mirror::Mirror;
use stackci::mirror::fs::FsStore;
use stackci::mirror::layout::LayoutMirror;
use stackci::mirror::oci::{ClientOptions, RegistryMirror};
use stackci::mirror::s3::{S3Options, S3Store};

use crate::common::*;

/// `a` ← `b` ← `c`; `c_says` changes only `c`.
fn stack(dir: &Path, store: &Path, c_says: &str) -> PathBuf {
    write_stack(
        dir,
        store,
        &[
            ("a", &[], "echo a > \"$PREFIX/a.txt\""),
            ("b", &["a"], "echo b > \"$PREFIX/b.txt\""),
            ("c", &["b"], &format!("echo {c_says} > \"$PREFIX/c.txt\"")),
        ],
    )
}

fn blob_files(mirror: &Path) -> BTreeSet<String> {
    std::fs::read_dir(mirror.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".tmp-"))
        .collect()
}

fn size_of(mirror: &Path, hex: &str) -> u64 {
    std::fs::metadata(mirror.join("blobs/sha256").join(hex)).unwrap().len()
}

/// Sets every file under `dir` to have been written `ago` (GNU touch).
fn age(dir: &Path, ago: &str) {
    ok(Command::new("find")
        .arg(dir)
        .args(["-type", "f", "-exec", "touch", "-d", ago, "{}", "+"]));
}

fn prune(stack: &Path, mirror: &str, args: &[&str]) -> serde_json::Value {
    let out = ok(stackci()
        .arg("--stack")
        .arg(stack)
        .args(["--mirror", mirror, "mirror", "prune", "--json"])
        .args(args));
    serde_json::from_str(&out).unwrap()
}

fn removed(report: &serde_json::Value) -> BTreeSet<String> {
    report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_file_mirror_keeps_what_the_kept_stack_needs_and_drops_the_rest_with_its_signatures() {
    require("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mirror = tmp.path().join("mirror");
    let url = format!("file://{}", mirror.display());
    let v1 = stack(&tmp.path().join("v1"), &store, "one");
    let v2 = stack(&tmp.path().join("v2"), &store, "two");
    ok(stackci().arg("--stack").arg(&v1).args(["--mirror", &url, "run"]));
    ok(stackci().arg("--stack").arg(&v2).args(["--mirror", &url, "run"]));
    let m = LayoutMirror::new(FsStore::new(&mirror));
    let tags = m.list_tags().unwrap();
    assert_eq!(tags.len(), 4, "a, b, c twice: {tags:?}");
    // v1's c is the tag v2's plan does not name.
    let v2_plan = plan_statuses(&ok(stackci()
        .arg("--stack")
        .arg(&v2)
        .args(["--mirror", &url, "plan", "--json"])));
    let kept: BTreeSet<String> = v2_plan.into_iter().map(|(t, _)| t).collect();
    let old_c = tags.difference(&kept).next().unwrap().clone();
    let old_digest = m.manifest_digest(&old_c).unwrap().unwrap();
    let old_sig = packages::sign(&m, &old_digest);
    let desc = stackci::spec::Descriptor {
        media_type: stackci::spec::MANIFEST_MEDIA_TYPE.into(),
        digest: old_digest.clone(),
        size: m.get_manifest(&old_c).unwrap().unwrap().len() as u64,
        annotations: Default::default(),
        extra: Default::default(),
    };
    let old_sbom = packages::attach_sbom(&m, &desc);
    // Another tool's image, and a package kept by glob.
    let other = packages::blob(&m, b"someone else's config", stackci::spec::CONFIG_MEDIA_TYPE);
    let foreign = serde_json::json!({"schemaVersion": 2, "mediaType": stackci::spec::MANIFEST_MEDIA_TYPE, "config": other, "layers": []});
    m.put_manifest(
        "latest",
        stackci::spec::MANIFEST_MEDIA_TYPE,
        &serde_json::to_vec(&foreign).unwrap(),
    )
    .unwrap();
    let pinned = packages::package(&m, "pinned", &[], b"pinned layer");
    age(&mirror, "3 hours ago");
    // A fresh unreferenced blob: a push in flight, inside the grace period.
    let fresh = packages::blob(&m, b"in-flight layer", stackci::spec::LAYER_MEDIA_TYPE);

    let before = blob_files(&mirror);
    let sizes: std::collections::BTreeMap<String, u64> =
        before.iter().map(|h| (h.clone(), size_of(&mirror, h))).collect();
    let dry = prune(&v2, &url, &["--dry-run", "--keep-tag", "pinned-*"]);
    assert_eq!(blob_files(&mirror), before, "a dry run removes nothing");
    let sig_tag = format!("sha256-{}.sig", old_digest.hex());
    let sbom_tag = format!("sha256-{}", old_digest.hex());
    let expected: BTreeSet<String> = [old_c.clone(), sig_tag.clone(), sbom_tag.clone()].into();
    assert_eq!(removed(&dry), expected, "{dry}");

    let report = prune(&v2, &url, &["--keep-tag", "pinned-*"]);
    assert_eq!(removed(&report), expected, "{report}");
    let order: Vec<&str> = report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert_eq!(
        order.last(),
        Some(&old_c.as_str()),
        "the package goes after what hangs off it"
    );
    let after = blob_files(&mirror);
    let gone: BTreeSet<&String> = before.difference(&after).collect();
    for d in [&old_digest, &old_sig, &old_sbom] {
        assert!(gone.contains(&d.hex()), "{d} removed");
    }
    assert_eq!(report["blobs_removed"], gone.len(), "{report}");
    assert_eq!(
        report["blobs_removed"], dry["blobs_removed"],
        "the dry run counted the same"
    );
    let freed: u64 = gone.iter().map(|h| sizes[*h]).sum();
    assert_eq!(report["bytes_freed"], freed, "{report}");
    assert_eq!(report["dry_run"], false);
    assert!(
        after.contains(&fresh.digest.hex()),
        "a blob inside the grace period stays"
    );
    assert_eq!(report["blobs_recent"], 1, "{report}");
    let now: BTreeSet<String> = m.list_tags().unwrap();
    assert!(now.contains("latest") && now.contains(&pinned.tag), "{now:?}");
    assert!(kept.iter().all(|t| now.contains(t)), "{now:?}");
    ok(stackci().args(["mirror", "verify", &url]));
    // What the kept stack needs still installs, and skopeo still reads it.
    let new_c = kept.iter().find(|t| t.starts_with("c-")).unwrap();
    ok(stackci()
        .arg("--stack")
        .arg(&v2)
        .args(["--mirror", &url, "install", "c", "--root"])
        .arg(tmp.path().join("root")));
    ok(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:{new_c}", mirror.display()))
        .arg(format!("oci:{}:c", tmp.path().join("out").display())));

    // Pruning again removes nothing more; --grace 0 takes the in-flight blob.
    let again = prune(&v2, &url, &["--keep-tag", "pinned-*"]);
    assert!(removed(&again).is_empty() && again["blobs_removed"] == 0, "{again}");
    let zero = prune(&v2, &url, &["--keep-tag", "pinned-*", "--grace", "0"]);
    assert_eq!(zero["blobs_removed"], 1, "{zero}");
    assert!(!blob_files(&mirror).contains(&fresh.digest.hex()));
    // Without --keep-tag the pinned package goes too (it is in no kept stack).
    let unpinned = prune(&v2, &url, &["--older-than", "1h"]);
    assert_eq!(removed(&unpinned), [pinned.tag.clone()].into(), "{unpinned}");
}

#[test]
fn s3_and_registry_mirrors_are_pruned_through_their_apis() {
    let tmp = tempfile::tempdir().unwrap();
    let keep_stack = empty_stack(&tmp.path().join("keep"));
    // S3: packages written directly, pruned with --grace 0 (moto's clock stamps them now).
    let moto = Moto::start();
    moto.admin().create_bucket("prune");
    let opts = S3Options {
        endpoint: Some(moto.endpoint.clone()),
        ..S3Options::default()
    };
    let s3 = LayoutMirror::new(S3Store::new("s3://prune/m", &opts).unwrap());
    let gone = packages::package(&s3, "gone", &[], b"gone layer");
    packages::sign(&s3, &gone.digest);
    let keep = packages::package(&s3, "kept", &[], b"kept layer");
    // S3 stamps objects to the second: a blob stamped in the marker's second counts as
    // written during the prune, and stays.
    std::thread::sleep(Duration::from_millis(1100));
    let out = ok(stackci()
        .env("AWS_ACCESS_KEY_ID", crate::common::s3::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", crate::common::s3::SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .args([
            "--s3-endpoint",
            &moto.endpoint,
            "--mirror",
            "s3://prune/m",
            "mirror",
            "prune",
            "--json",
        ])
        .args(["--keep-tag", "kept-*", "--grace", "0", "--keep-stack"])
        .arg(&keep_stack));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(removed(&report).len(), 2, "the package and its signature: {report}");
    assert_eq!(s3.list_tags().unwrap(), [keep.tag.clone()].into());
    assert!(!s3.has_blob(&gone.layer.digest).unwrap() && s3.has_blob(&keep.layer.digest).unwrap());
    let keys = moto.admin().keys("prune");
    assert!(
        !keys.iter().any(|k| k.contains("stackci/prune")),
        "the marker is removed: {keys:?}"
    );

    // Registry: manifests deleted through the API, the SBOM's untagged manifest too.
    let reg = Peer::start(&tmp.path().join("registry"), false);
    let url = reg.mirror_url("prune/stack");
    let r = RegistryMirror::new(&url, &ClientOptions::default()).unwrap();
    let gone = packages::package(&r, "gone", &[], b"gone layer");
    packages::sign(&r, &gone.digest);
    let sbom = packages::attach_sbom(&r, &packages::manifest_descriptor(&r, &gone));
    let keep = packages::package(&r, "kept", &[], b"kept layer");
    let report = prune(&keep_stack, &url, &["--keep-tag", "kept-*"]);
    assert_eq!(removed(&report).len(), 3, "{report}");
    assert_eq!(report["manifests_removed"], 1, "the SBOM manifest: {report}");
    assert_eq!(report["blobs_swept"], false);
    assert_eq!(r.list_tags().unwrap(), [keep.tag.clone()].into());
    assert_eq!(r.get_manifest(&gone.digest.to_string()).unwrap(), None);
    assert_eq!(r.get_manifest(&sbom.to_string()).unwrap(), None);
    ok(stackci().args(["mirror", "verify", &url]));
    let older = output(stackci().arg("--stack").arg(&keep_stack).args([
        "--mirror",
        &url,
        "mirror",
        "prune",
        "--older-than",
        "1d",
    ]));
    assert_eq!(older.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&older.stderr).contains("--older-than needs a file:// or s3:// mirror"));
    // Without a stack and without --keep-stack, nothing is pruned.
    let none = output(
        stackci()
            .current_dir(tmp.path())
            .args(["--mirror", &url, "mirror", "prune"]),
    );
    assert_eq!(none.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("--keep-stack"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
}

/// A stack with no packages (keeps nothing).
fn empty_stack(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("stack.yaml");
    std::fs::write(&path, "name: keep\nstore: /opt/keep\npackages: {}\n").unwrap();
    path
}

/// Garbage for a file mirror: `n` old packages no stack keeps, written `3 hours ago`.
fn garbage(mirror: &Path, n: usize) -> Vec<String> {
    let m = LayoutMirror::new(FsStore::new(mirror));
    let tags = (0..n)
        .map(|i| packages::package(&m, &format!("old{i}"), &[], format!("old layer {i}").as_bytes()).tag)
        .collect();
    age(mirror, "3 hours ago");
    tags
}

#[test]
fn a_push_running_next_to_repeated_prunes_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mirror = tmp.path().join("mirror");
    let url = format!("file://{}", mirror.display());
    let old = garbage(&mirror, 60);
    // Twelve packages in a chain of four levels, each writing 2 MiB.
    let mut pkgs: Vec<(String, Vec<String>, String)> = Vec::new();
    for i in 0..12 {
        let deps = if i >= 3 { vec![format!("p{}", i - 3)] } else { vec![] };
        pkgs.push((
            format!("p{i}"),
            deps,
            "head -c 2097152 /dev/urandom > \"$PREFIX/data\"; sleep 0.2".to_string(),
        ));
    }
    let spec: Vec<(&str, Vec<&str>, &str)> = pkgs
        .iter()
        .map(|(n, d, s)| (n.as_str(), d.iter().map(String::as_str).collect(), s.as_str()))
        .collect();
    let spec: Vec<(&str, &[&str], &str)> = spec.iter().map(|(n, d, s)| (*n, d.as_slice(), *s)).collect();
    let s = write_stack(&tmp.path().join("s"), &store, &spec);

    let mut run = stackci()
        .arg("--stack")
        .arg(&s)
        .args(["--mirror", &url, "-q", "run", "-j", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut prunes = 0;
    let mut removed_total = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    while run.try_wait().unwrap().is_none() || prunes < 2 {
        assert!(Instant::now() < deadline, "the run did not finish in 4 minutes");
        let report = prune(&s, &url, &[]);
        removed_total.extend(removed(&report));
        prunes += 1;
    }
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(prunes >= 2);
    let old: BTreeSet<String> = old.into_iter().collect();
    assert_eq!(removed_total, old, "only the old packages go");
    let plan = plan_statuses(&ok(stackci()
        .arg("--stack")
        .arg(&s)
        .args(["--mirror", &url, "plan", "--json"])));
    assert!(plan.iter().all(|(_, st)| st == "cached"), "{plan:?}");
    ok(stackci().args(["mirror", "verify", &url]));
    ok(stackci()
        .arg("--stack")
        .arg(&s)
        .args(["--mirror", &url, "install", "p11", "--root"])
        .arg(tmp.path().join("root")));
}

#[test]
fn a_blob_written_during_a_prune_survives_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    let url = format!("file://{}", mirror.display());
    let keep = empty_stack(&tmp.path().join("keep"));
    garbage(&mirror, 150);
    let markers = mirror.join(".stackci/prune");
    let mut pruner = stackci()
        .arg("--stack")
        .arg(&keep)
        .args(["--mirror", &url, "mirror", "prune", "--grace", "0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_dir(&markers).is_ok_and(|mut d| d.next().is_some()) {
        assert!(
            Instant::now() < deadline && pruner.try_wait().unwrap().is_none(),
            "the prune never started"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // Written the way a pusher writes: a temporary file renamed into place.
    let bytes = b"a layer pushed while the prune runs";
    let hex = Digest::of(bytes).hex();
    let tmpfile = mirror.join("blobs/sha256/.tmp-test");
    std::fs::write(&tmpfile, bytes).unwrap();
    std::fs::rename(&tmpfile, mirror.join("blobs/sha256").join(&hex)).unwrap();
    let still_running = std::fs::read_dir(&markers).is_ok_and(|mut d| d.next().is_some());
    let out = pruner.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        still_running,
        "the prune finished before the blob was written; the test proves nothing"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(removed(&report).len(), 150, "{report}");
    assert!(report["blobs_removed"].as_u64().unwrap() >= 300, "{report}");
    assert!(
        blob_files(&mirror).contains(&hex),
        "the blob written during the prune survives"
    );
}
