//! An S3 bucket as the mirror, end to end against moto: `run` and `install`, the layout read
//! by skopeo after `aws s3 sync`, and 16 processes pushing into one bucket at once.

use crate::common::s3 as s3_peer;

use std::path::Path;
use std::process::Command;

use crate::common::*;
use s3_peer::{ACCESS_KEY, Moto, SECRET_KEY};

/// `aws s3 sync` of `url` into `dir`.
fn sync(moto: &Moto, url: &str, dir: &Path) {
    require("aws");
    ok(Command::new("aws")
        .args([
            "s3",
            "sync",
            "--only-show-errors",
            "--endpoint-url",
            &moto.endpoint,
            url,
        ])
        .arg(dir)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1"));
}

#[test]
fn s3_mirror_builds_installs_and_syncs_to_a_layout_skopeo_reads() {
    require("skopeo");
    let moto = Moto::start();
    moto.admin().create_bucket("stacks");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let demo = demo_copy(tmp.path(), &store);
    let m = "s3://stacks/demo/mirror";
    let out = output(
        moto.stackci()
            .current_dir(&demo)
            .args(["--mirror", m, "run", "-j", "2"]),
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(!all.contains(SECRET_KEY), "the secret key was printed");
    let plan = plan_statuses(&ok(moto
        .stackci()
        .current_dir(&demo)
        .args(["--mirror", m, "plan", "--json"])));
    assert!(plan.iter().all(|(_, s)| s == "cached"), "{plan:?}");

    let root = tmp.path().join("root");
    ok(moto
        .stackci()
        .current_dir(&demo)
        .args(["--mirror", m, "install", "hello", "--root"])
        .arg(&root));
    let hello_tag = plan.iter().map(|(t, _)| t).find(|t| t.starts_with("hello-")).unwrap();
    let installed = root
        .join(store.strip_prefix("/").unwrap())
        .join(hello_tag)
        .join("bin/hello");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(store.join(hello_tag).join("bin/hello")).unwrap()
    );

    let layout = tmp.path().join("synced");
    sync(&moto, &format!("{m}/"), &layout);
    for (tag, _) in &plan {
        let out = ok(Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:{tag}", layout.display())));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(tag.starts_with(v["Labels"]["dev.stackci.package"].as_str().unwrap()));
    }
}

#[test]
fn sixteen_processes_pushing_into_one_bucket_lose_no_index_entry() {
    let moto = Moto::start();
    moto.admin().create_bucket("race");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let names: Vec<String> = (0..160).map(|i| format!("p{i:03}")).collect();
    let pkgs: Vec<(&str, &[&str], &str)> = names
        .iter()
        .map(|n| (n.as_str(), &[][..], "echo \"$STACKCI_PACKAGE\" > \"$PREFIX/name\""))
        .collect();
    let stack = write_stack(&tmp.path().join("s"), &store, &pkgs);
    let m = "s3://race/mirror";
    let children: Vec<_> = names
        .chunks(10)
        .map(|mine| {
            moto.stackci()
                .arg("--stack")
                .arg(&stack)
                .args(["--mirror", m, "-q", "run", "-j", "2"])
                .args(mine)
                .spawn()
                .unwrap()
        })
        .collect();
    assert_eq!(children.len(), 16);
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let plan = plan_statuses(&ok(moto
        .stackci()
        .arg("--stack")
        .arg(&stack)
        .args(["--mirror", m, "plan", "--json"])));
    let cached = plan.iter().filter(|(_, s)| s == "cached").count();
    assert_eq!(cached, 160, "index entries lost under concurrent pushes");

    // Every entry points at blobs that exist.
    let layout = tmp.path().join("synced");
    sync(&moto, &format!("{m}/"), &layout);
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    for entry in index["manifests"].as_array().unwrap() {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(blob(entry["digest"].as_str().unwrap())).unwrap()).unwrap();
        assert!(blob(manifest["config"]["digest"].as_str().unwrap()).is_file());
        for l in manifest["layers"].as_array().unwrap() {
            assert!(
                blob(l["digest"].as_str().unwrap()).is_file(),
                "{entry} names a missing layer"
            );
        }
    }
}
