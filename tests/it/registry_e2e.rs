//! The registry as the mirror and as the image target, end to end against docker-registry 2.8:
//! `run`/`plan`/`install` over `oci+http://` and over TLS with basic auth; skopeo, umoci and
//! podman read what stackci pushed; a file mirror copied in by skopeo is usable by stackci.

use crate::common::registry;

use std::process::Command;

use crate::common::*;
use registry::Peer;

fn skopeo_inspect(reference: &str, extra: &[&str]) -> serde_json::Value {
    let out = ok(Command::new("skopeo").arg("inspect").args(extra).arg(reference));
    serde_json::from_str(&out).unwrap()
}

#[test]
fn registry_mirror_builds_installs_and_interoperates() {
    require("skopeo");
    require("umoci");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Peer::start(&tmp.path().join("registry"), false);
    let store = tmp.path().join("store");
    let demo = demo_copy(tmp.path(), &store);
    let m = reg.mirror_url("stack/demo");

    ok(stackci().current_dir(&demo).args(["--mirror", &m, "run", "-j", "2"]));
    let plan = plan_statuses(&ok(stackci()
        .current_dir(&demo)
        .args(["--mirror", &m, "plan", "--json"])));
    assert!(plan.iter().all(|(_, s)| s == "cached"), "{plan:?}");

    // Every package tag is a valid image that skopeo reads.
    for (tag, _) in &plan {
        let v = skopeo_inspect(
            &format!("docker://{}/stack/demo:{tag}", reg.host()),
            &["--tls-verify=false"],
        );
        assert!(
            tag.starts_with(v["Labels"]["dev.stackci.package"].as_str().unwrap()),
            "{v}"
        );
    }
    // skopeo copy to an OCI layout, then umoci unpack shows the package files.
    let hello_tag = plan.iter().map(|(t, _)| t).find(|t| t.starts_with("hello-")).unwrap();
    let layout = tmp.path().join("copied");
    ok(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/stack/demo:{hello_tag}", reg.host()))
        .arg(format!("oci:{}:{hello_tag}", layout.display())));
    let bundle = tmp.path().join("bundle");
    ok(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:{hello_tag}", layout.display()))
        .arg(&bundle));
    let in_bundle = bundle
        .join("rootfs")
        .join(store.strip_prefix("/").unwrap())
        .join(hello_tag)
        .join("bin/hello");
    assert_eq!(
        std::fs::read(&in_bundle).unwrap(),
        std::fs::read(store.join(hello_tag).join("bin/hello")).unwrap()
    );

    // install from the registry.
    let root = tmp.path().join("root");
    ok(stackci()
        .current_dir(&demo)
        .args(["--mirror", &m, "install", "hello", "--root"])
        .arg(&root));
    let installed = root
        .join(store.strip_prefix("/").unwrap())
        .join(hello_tag)
        .join("bin/hello");
    assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&in_bundle).unwrap());

    // Interop the other way: a file mirror copied into the registry by skopeo serves stackci.
    let demo2 = demo_copy(&tmp.path().join("second"), &store);
    let file_mirror = tmp.path().join("filemirror");
    ok(stackci()
        .current_dir(&demo2)
        .arg("--mirror")
        .arg(format!("file://{}", file_mirror.display()))
        .arg("run"));
    for (tag, _) in &plan {
        ok(Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", file_mirror.display()))
            .arg(format!("docker://{}/copied/demo:{tag}", reg.host())));
    }
    let copied = reg.mirror_url("copied/demo");
    let plan = plan_statuses(&ok(stackci()
        .current_dir(&demo2)
        .args(["--mirror", &copied, "plan", "--json"])));
    assert!(plan.iter().all(|(_, s)| s == "cached"), "{plan:?}");
    let root2 = tmp.path().join("root2");
    ok(stackci()
        .current_dir(&demo2)
        .args(["--mirror", &copied, "install", "hello", "--root"])
        .arg(&root2));
    assert_eq!(ok(&mut Command::new(&installed)), HELLO);
}

#[test]
fn tls_and_basic_auth_registry_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Peer::start(&tmp.path().join("registry"), true);
    let store = tmp.path().join("store");
    let demo = demo_copy(tmp.path(), &store);
    let m = reg.mirror_url("demo");
    let with_creds = |cmd: &mut Command, password: &str| {
        cmd.current_dir(&demo)
            .env("STACKCI_REGISTRY_USERNAME", "peer")
            .env("STACKCI_REGISTRY_PASSWORD", password)
            .env("DOCKER_CONFIG", tmp.path().join("no-docker-config"))
            .env_remove("REGISTRY_AUTH_FILE")
            .arg("--ca-cert")
            .arg(reg.ca())
            .args(["--mirror", &m]);
    };
    let mut run = stackci();
    with_creds(&mut run, "peerpass");
    ok(run.args(["run", "-j", "2"]));
    let mut plan = stackci();
    with_creds(&mut plan, "peerpass");
    let plan = plan_statuses(&ok(plan.args(["plan", "--json"])));
    assert!(plan.iter().all(|(_, s)| s == "cached"), "{plan:?}");

    // A wrong password: the error names the registry and the user, never the password.
    let mut bad = stackci();
    with_creds(&mut bad, "wrong-secret-7319");
    let out = output(bad.args(["plan"]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(reg.host()) && stderr.contains("peer"), "{stderr}");
    assert!(!stderr.contains("wrong-secret-7319"), "password leaked: {stderr}");

    // Without the CA: a TLS error that says how to fix it.
    let out = output(
        stackci()
            .current_dir(&demo)
            .args(["--mirror", &m, "plan"])
            .env_remove("SSL_CERT_FILE"),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--ca-cert") || stderr.contains("SSL_CERT_FILE"),
        "{stderr}"
    );
}

#[test]
fn image_from_registry_base_to_registry_runs_under_podman() {
    require("skopeo");
    require("podman");
    require("runc");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Peer::start(&tmp.path().join("registry"), false);
    let store = tmp.path().join("store");
    let demo = demo_copy(tmp.path(), &store);
    let m = reg.mirror_url("stack/demo");
    ok(stackci()
        .current_dir(&demo)
        .args(["--mirror", &m, "run", "-j", "2", "hello"]));
    let base = glibc_base(tmp.path());
    ok(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:base", base.display()))
        .arg(format!("docker://{}/bases/glibc:v1", reg.host())));

    let base_ref = format!("oci+http://{}/bases/glibc:v1", reg.host());
    let to = format!("oci+http://{}/images/demo:v1", reg.host());
    let first: serde_json::Value = serde_json::from_str(&ok(stackci().current_dir(&demo).args([
        "--json", "--mirror", &m, "image", "demo", "--base", &base_ref, "--to", &to,
    ])))
    .unwrap();
    assert_eq!(first["layers"], 4);
    assert_eq!(
        first["mounted"], 4,
        "layers from the same registry must be mounted, not uploaded: {first}"
    );
    let second: serde_json::Value = serde_json::from_str(&ok(stackci().current_dir(&demo).args([
        "--json", "--mirror", &m, "image", "demo", "--base", &base_ref, "--to", &to,
    ])))
    .unwrap();
    assert_eq!(second["present"], 4, "{second}");
    assert_eq!(second["copied"], 0);
    assert_eq!(first["digest"], second["digest"], "same inputs, different image digest");

    let name = format!("{}/images/demo:v1", reg.host());
    let out = ok(Command::new("podman").args([
        "--runtime",
        "runc",
        "run",
        "--rm",
        "--network",
        "none",
        "--tls-verify=false",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        &name,
    ]));
    let _ = Command::new("podman").args(["rmi", "-f", &name]).output();
    assert_eq!(out, HELLO);
}
