//! `stackci image`: OCI layout and docker-archive targets, read by skopeo, umoci and podman;
//! deterministic digests; the layer budget.

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn digest_of(stdout: &str) -> String {
    stdout.lines().last().unwrap().to_string()
}

/// `stackci image demo --base BASE [--layer-budget N] --to TO` in `demo` against mirror `m`.
fn image_demo(demo: &Path, m: &str, base: &str, budget: Option<&str>, to: String) -> Command {
    let mut cmd = stackci();
    cmd.current_dir(demo)
        .args(["--mirror", m, "image", "demo", "--base", base]);
    if let Some(n) = budget {
        cmd.args(["--layer-budget", n]);
    }
    cmd.args(["--to", &to]);
    cmd
}

/// `skopeo inspect REFERENCE`, parsed.
fn skopeo_inspect(reference: String) -> serde_json::Value {
    serde_json::from_str(&ok(Command::new("skopeo").arg("inspect").arg(reference))).unwrap()
}

#[test]
fn images_run_under_podman_are_deterministic_and_respect_the_layer_budget() {
    require("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let demo = demo_copy(tmp.path(), &store);
    let m = format!("file://{}", tmp.path().join("mirror").display());
    ok(stackci().current_dir(&demo).args(["--mirror", &m, "run", "-j", "2"]));
    let base = glibc_base(tmp.path());
    let base_ref = format!("oci-layout:{}:base", base.display());
    let layout = |dir: &Path, tag: &str| format!("oci-layout:{}:{tag}", dir.display());

    // OCI layout target, twice: same digest; skopeo reads it.
    let out1 = tmp.path().join("out1");
    let out2 = tmp.path().join("out2");
    let d1 = digest_of(&ok(&mut image_demo(&demo, &m, &base_ref, None, layout(&out1, "v1"))));
    let d2 = digest_of(&ok(&mut image_demo(&demo, &m, &base_ref, None, layout(&out2, "v1"))));
    assert!(d1.starts_with("sha256:"), "{d1}");
    assert_eq!(d1, d2, "the same image built twice has different digests");
    let inspect = skopeo_inspect(format!("oci:{}:v1", out1.display()));
    assert_eq!(inspect["Digest"], d1.as_str());
    assert_eq!(
        inspect["Layers"].as_array().unwrap().len(),
        4,
        "base + libcrc + libreport + hello"
    );
    assert_eq!(inspect["Created"], "1970-01-01T00:00:00Z");
    assert!(inspect["Env"].as_array().unwrap().iter().any(|e| e == "LANG=C.UTF-8"));

    // docker-archive: read by skopeo, loaded and run by podman.
    let archive = tmp.path().join("demo.tar");
    let to = format!("docker-archive:{}:stackci-test/demo:v1", archive.display());
    ok(&mut image_demo(&demo, &m, &base_ref, None, to));
    let inspect = skopeo_inspect(format!("docker-archive:{}", archive.display()));
    assert_eq!(inspect["Labels"]["dev.stackci.image"], "demo");
    assert_eq!(podman_run(&archive, "stackci-test/demo:v1"), HELLO);

    // Budget 3 for 4 layers: the two smallest package layers merge; the image still runs.
    let merged = tmp.path().join("merged.tar");
    let to = format!("docker-archive:{}:stackci-test/merged:v1", merged.display());
    ok(&mut image_demo(&demo, &m, &base_ref, Some("3"), to));
    let inspect = skopeo_inspect(format!("docker-archive:{}", merged.display()));
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(podman_run(&merged, "stackci-test/merged:v1"), HELLO);
    let again = tmp.path().join("merged2");
    let a = digest_of(&ok(&mut image_demo(
        &demo,
        &m,
        &base_ref,
        Some("3"),
        layout(&again, "x"),
    )));
    let b = digest_of(&ok(&mut image_demo(
        &demo,
        &m,
        &base_ref,
        Some("3"),
        layout(&again, "y"),
    )));
    assert_eq!(a, b, "merging layers is not deterministic");

    // A budget the base alone fills is a clear error.
    let out = output(&mut image_demo(&demo, &m, &base_ref, Some("1"), layout(&again, "z")));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("budget"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn static_program_runs_in_a_scratch_image() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let demo = demo_copy(tmp.path(), &store);
    let m = format!("file://{}", tmp.path().join("mirror").display());
    ok(stackci().current_dir(&demo).args(["--mirror", &m, "run", "crcsum"]));
    let archive = tmp.path().join("crcsum.tar");
    ok(stackci()
        .current_dir(&demo)
        .env("GITHUB_OUTPUT", tmp.path().join("gh-output"))
        .args(["--mirror", &m, "image", "crcsum", "--to"])
        .arg(format!("docker-archive:{}:stackci-test/crcsum:v1", archive.display())));
    let gh = std::fs::read_to_string(tmp.path().join("gh-output")).unwrap();
    assert!(gh.contains("image-digest-crcsum") && gh.contains("sha256:"), "{gh}");
    assert_eq!(
        podman_run(&archive, "stackci-test/crcsum:v1"),
        "63a29956 729d1931 0bc502e3 7 stackci\n"
    );
}
