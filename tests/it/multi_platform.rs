//! Multi-arch bases and multi-platform images (issue 14, items 1 and 2), with a real second
//! platform: the demo cross-compiled for linux/arm64 with Debian's gcc-aarch64-linux-gnu
//! (its `platforms:` settings), its checks run through qemu-user-static's binfmt_misc
//! handler (`tests/peers/binfmt.sh`), one mirror holding both platforms' packages, a
//! two-platform image index checked with skopeo, and both images run under podman.

use std::path::Path;
use std::process::Command;

use crate::common::registry::Peer;
use crate::common::*;

/// Registers the arm64 handler; the test fails with the reason when it cannot be.
fn binfmt_arm64() {
    let out = output(
        Command::new("bash")
            .arg(repo().join("tests/peers/binfmt.sh"))
            .arg("arm64"),
    );
    assert!(
        out.status.success(),
        "arm64 programs cannot run here: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn skopeo_raw(reference: &str) -> serde_json::Value {
    let raw = ok(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", reference]));
    serde_json::from_str(&raw).unwrap()
}

fn skopeo_arch(reference: &str, arch: &str) -> serde_json::Value {
    let out = ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--override-os",
        "linux",
        "--override-arch",
        arch,
        reference,
    ]));
    serde_json::from_str(&out).unwrap()
}

fn platforms_of(index: &serde_json::Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect()
}

fn plan(demo: &Path, mirror: &str, platform: &str) -> Vec<(String, String)> {
    plan_statuses(&ok(stackci().current_dir(demo).args([
        "--mirror",
        mirror,
        "--platform",
        platform,
        "plan",
        "--json",
    ])))
}

#[test]
fn the_demo_for_amd64_and_arm64_in_one_mirror_and_one_image_index() {
    for tool in ["skopeo", "podman", "aarch64-linux-gnu-gcc"] {
        require(tool);
    }
    binfmt_arm64();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let demo = demo_copy(tmp.path(), &store);
    ok(Command::new("bash").arg(demo.join("make-base.sh")));
    let m = format!("file://{}", tmp.path().join("mirror").display());

    // One mirror, two platforms: every hash differs, the tags live side by side.
    ok(stackci().current_dir(&demo).args(["--mirror", &m, "run", "-j", "2"]));
    let amd64 = plan(&demo, &m, "linux/amd64");
    assert!(amd64.iter().all(|(_, s)| s == "cached"), "{amd64:?}");
    let arm64 = plan(&demo, &m, "linux/arm64");
    assert!(arm64.iter().all(|(_, s)| s == "build"), "{arm64:?}");
    assert!(amd64.iter().all(|(t, _)| !arm64.iter().any(|(u, _)| u == t)));

    // Before the arm64 packages exist, a two-platform image is a clear error and writes nothing.
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let to = format!("oci+http://{}/demo:1", peer.host());
    let out = output(stackci().current_dir(&demo).args([
        "--mirror",
        &m,
        "--platform",
        "linux/amd64,linux/arm64",
        "image",
        "demo",
        "--to",
        &to,
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("image `demo` for linux/arm64") && err.contains("stackci --platform linux/arm64 run"),
        "{err}"
    );
    let missing = output(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/demo:1", peer.host()),
    ]));
    assert!(!missing.status.success(), "nothing was written");

    ok(stackci()
        .current_dir(&demo)
        .args(["--mirror", &m, "--platform", "linux/arm64", "run", "-j", "2"]));
    let arm64 = plan(&demo, &m, "linux/arm64");
    assert!(arm64.iter().all(|(_, s)| s == "cached"), "{arm64:?}");
    // What was built really is arm64 code.
    let hello_tag = &arm64.iter().find(|(t, _)| t.starts_with("hello-")).unwrap().0;
    let hello = store.join(hello_tag).join("bin/hello");
    let file = ok(Command::new("file").arg("-L").arg(&hello));
    assert!(file.contains("ARM aarch64"), "{file}");

    // One index over both platforms, each image from its own platform's packages.
    let digest = ok(stackci().current_dir(&demo).args([
        "--mirror",
        &m,
        "--platform",
        "linux/amd64,linux/arm64",
        "image",
        "demo",
        "--to",
        &to,
    ]));
    let reference = format!("docker://{}/demo:1", peer.host());
    let index = skopeo_raw(&reference);
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{index}");
    assert_eq!(platforms_of(&index), ["linux/amd64", "linux/arm64"]);
    let listed = ok(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &reference]));
    assert_eq!(
        format!("sha256:{}", sha256_hex(listed.trim_end_matches('\n').as_bytes())),
        digest.trim(),
        "stackci printed the index digest"
    );
    for (arch, tags) in [("amd64", &amd64), ("arm64", &arm64)] {
        let inspected = skopeo_arch(&reference, arch);
        assert_eq!(inspected["Architecture"], arch, "{inspected}");
        let labels = &inspected["Labels"]["dev.stackci.packages"];
        let hello = tags.iter().find(|(t, _)| t.starts_with("hello-")).unwrap();
        assert!(labels.as_str().unwrap().contains(&hello.0), "{arch}: {labels}");
        // base (the C runtime) + libcrc + libreport + hello
        assert_eq!(inspected["Layers"].as_array().unwrap().len(), 4, "{inspected}");
    }

    // The same into an OCI layout; skopeo copies the arm64 image out of it.
    let layout = tmp.path().join("layout");
    ok(stackci().current_dir(&demo).args([
        "--mirror",
        &m,
        "--platform",
        "linux/amd64,linux/arm64",
        "image",
        "demo",
        "--to",
        &format!("oci-layout:{}:demo", layout.display()),
    ]));
    let index = skopeo_raw(&format!("oci:{}:demo", layout.display()));
    assert_eq!(platforms_of(&index), ["linux/amd64", "linux/arm64"]);
    ok(Command::new("skopeo").args([
        "copy",
        "--override-arch",
        "arm64",
        &format!("oci:{}:demo", layout.display()),
        &format!("oci:{}:arm64", tmp.path().join("copied").display()),
    ]));

    // Both run: amd64 natively, arm64 under qemu (binfmt F flag: inside the container too).
    for platform in ["linux/amd64", "linux/arm64"] {
        let arch = platform.rsplit('/').next().unwrap();
        let archive = tmp.path().join(format!("demo-{arch}.tar"));
        let name = format!("stackci-test/demo-{arch}:v1");
        ok(stackci().current_dir(&demo).args([
            "--mirror",
            &m,
            "--platform",
            platform,
            "image",
            "demo",
            "--to",
            &format!("docker-archive:{}:{name}", archive.display()),
        ]));
        assert_eq!(podman_run(&archive, &name), HELLO, "{platform}");
    }
}

#[test]
fn a_multi_arch_base_from_a_registry_gives_each_platform_its_manifest() {
    require("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let demo = demo_copy(tmp.path(), &store);
    ok(Command::new("bash").arg(demo.join("make-base.sh")));
    let index = skopeo_raw(&format!("oci:{}:glibc", demo.join("base").display()));
    assert_eq!(
        platforms_of(&index).len(),
        2,
        "make-base.sh needs libc6-arm64-cross: {index}"
    );
    let peer = Peer::start(&tmp.path().join("reg"), false);
    // A manifest list as Docker Hub serves them (skopeo converts on --all copies).
    ok(Command::new("skopeo").args([
        "copy",
        "--all",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:glibc", demo.join("base").display()),
        &format!("docker://{}/library/debianish:12", peer.host()),
    ]));
    let listed = skopeo_raw(&format!("docker://{}/library/debianish:12", peer.host()));
    assert_eq!(
        listed["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json",
        "{listed}"
    );
    let m = format!("file://{}", tmp.path().join("mirror").display());
    ok(stackci().current_dir(&demo).args(["--mirror", &m, "run", "crcsum"]));
    let base = format!("oci+http://{}/library/debianish:12", peer.host());
    let to = format!("oci+http://{}/crcsum:1", peer.host());
    ok(stackci()
        .current_dir(&demo)
        .args(["--mirror", &m, "image", "crcsum", "--base", &base, "--to", &to]));
    let built = skopeo_arch(&format!("docker://{}/crcsum:1", peer.host()), "amd64");
    assert_eq!(built["Architecture"], "amd64");
    let base_amd64 = skopeo_arch(&format!("docker://{}/library/debianish:12", peer.host()), "amd64");
    assert_eq!(
        built["Layers"][0], base_amd64["Layers"][0],
        "the amd64 manifest of the list is the base"
    );

    // A platform the base lacks: named, with the ones it has.
    let out = output(stackci().current_dir(&demo).args([
        "--mirror",
        &m,
        "--platform",
        "linux/s390x",
        "image",
        "crcsum",
        "--base",
        &base,
        "--to",
        &to,
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("without a manifest for linux/s390x (it has: linux/amd64, linux/arm64)"),
        "{err}"
    );
    // A single-platform base for another architecture is refused, not silently mixed.
    let arm_only = format!("oci+http://{}/arm-only:1", peer.host());
    ok(Command::new("skopeo").args([
        "copy",
        "--override-arch",
        "arm64",
        "--dest-tls-verify=false",
        &format!("oci:{}:glibc", demo.join("base").display()),
        &format!("docker://{}/arm-only:1", peer.host()),
    ]));
    let out = output(
        stackci()
            .current_dir(&demo)
            .args(["--mirror", &m, "image", "crcsum", "--base", &arm_only, "--to", &to]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("is an image for linux/arm64, not linux/amd64"), "{err}");
}
