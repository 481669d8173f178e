//! Signatures and SBOMs on a registry (docker-registry 2.8, plain and TLS with basic auth),
//! on an S3 mirror (moto), and signed base images, each checked with the independent
//! implementation (`tests/peers/trust.sh cosign`) reading the registry API or the bucket.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::common::fault_proxy::{Action, Proxy, RequestHead};
use crate::common::registry::Peer;
use crate::common::s3::{CLIENT_ENV, Moto};
use crate::common::*;
use crate::trust::{PASSWORD, all_output, assert_no_secret, cosign, keygen, peer, require_tools, small_stack};

/// stackci with the registry's credentials and CA (when it has them).
fn with_registry(cmd: &mut Command, reg: &Peer, tmp: &Path) {
    cmd.env("DOCKER_CONFIG", tmp.join("no-docker-config"))
        .env_remove("REGISTRY_AUTH_FILE");
    if let Some(user) = reg.env.get("REGISTRY_USER") {
        cmd.env("STACKCI_REGISTRY_USERNAME", user)
            .env("STACKCI_REGISTRY_PASSWORD", &reg.env["REGISTRY_PASSWORD"])
            .arg("--ca-cert")
            .arg(reg.ca());
    }
}

/// The independent tool with the registry's credentials and CA.
fn cosign_at(reg: &Peer, args: &[&str]) -> Command {
    let mut cmd = cosign(args);
    if let Some(user) = reg.env.get("REGISTRY_USER") {
        cmd.env("REGISTRY_USER", user)
            .env("REGISTRY_PASSWORD", &reg.env["REGISTRY_PASSWORD"])
            .env("REGISTRY_CA", reg.ca());
    }
    cmd
}

/// `registry:http[s]://HOST/REPO` for the independent tool.
fn store_of(reg: &Peer, repo: &str) -> String {
    let scheme = if reg.env.contains_key("REGISTRY_USER") {
        "https"
    } else {
        "http"
    };
    format!("registry:{scheme}://{}/{repo}", reg.host())
}

fn registry_flow(auth: bool) {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let reg = Peer::start(&tmp.path().join("registry"), auth);
    let dir = small_stack(&tmp.path().join("stack"), &tmp.path().join("store"));
    let (key, public) = keygen(tmp.path(), "k");
    let m = reg.mirror_url("stack/pkgs");
    let sign_env = [
        ("STACKCI_SIGNING_KEY", key.to_str().unwrap()),
        ("STACKCI_SIGNING_PASSWORD", PASSWORD),
        ("STACKCI_TRUST_KEYS", public.to_str().unwrap()),
    ];
    let mut run = stackci();
    with_registry(&mut run, &reg, tmp.path());
    let out = output(run.current_dir(&dir).envs(sign_env).args(["--mirror", &m, "run"]));
    assert!(out.status.success(), "{}", all_output(&out));
    assert_no_secret(&all_output(&out), &key);

    // Every package signature verifies with the independent implementation, reading the
    // `sha256-<hex>.sig` tags through the registry API.
    let mut plan = stackci();
    with_registry(&mut plan, &reg, tmp.path());
    let v: Value = serde_json::from_str(&ok(plan.current_dir(&dir).args(["--mirror", &m, "plan", "--json"]))).unwrap();
    let pkg_tags: Vec<String> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tag"].as_str().unwrap().to_string())
        .collect();
    let pkgs = store_of(&reg, "stack/pkgs");
    for tag in &pkg_tags {
        let v: Value = serde_json::from_str(&ok(&mut cosign_at(
            &reg,
            &["verify", "--key", public.to_str().unwrap(), &pkgs, tag],
        )))
        .unwrap();
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["docker-reference"], format!("{}/stack/pkgs", reg.host()), "{v}");
    }

    // An image with its SBOM (the tag schema: docker-registry 2.8 has no referrers API).
    let image_ref = format!("{}:v1", reg.mirror_url("stack/img"));
    let mut image = stackci();
    with_registry(&mut image, &reg, tmp.path());
    let out = ok(image
        .current_dir(&dir)
        .envs(sign_env)
        .args(["--mirror", &m, "--json", "image", "img", "--to", &image_ref]));
    let iv: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (iv["signed"].clone(), iv["sbom"]["attached"].clone()),
        (true.into(), "tag-schema".into()),
        "{iv}"
    );
    let img = store_of(&reg, "stack/img");
    let v: Value = serde_json::from_str(&ok(&mut cosign_at(
        &reg,
        &["verify", "--key", public.to_str().unwrap(), &img, "v1"],
    )))
    .unwrap();
    assert_eq!(
        (v["ok"].clone(), v["digest"].clone()),
        (true.into(), iv["digest"].clone()),
        "{v}"
    );
    let refs: Value = serde_json::from_str(&ok(&mut cosign_at(
        &reg,
        &["referrers", &img, "v1", "--type", "application/spdx+json"],
    )))
    .unwrap();
    let sbom_digest = refs[0]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no SBOM referrer: {refs}"));
    let sbom_manifest: Value =
        serde_json::from_str(&ok(&mut cosign_at(&reg, &["manifest", &img, sbom_digest]))).unwrap();
    assert_eq!(sbom_manifest["subject"]["digest"], iv["digest"]);
    let doc = ok(&mut cosign_at(
        &reg,
        &["blob", &img, sbom_manifest["layers"][0]["digest"].as_str().unwrap()],
    ));
    let doc_file = tmp.path().join("sbom.spdx.json");
    std::fs::write(&doc_file, &doc).unwrap();
    ok(&mut peer(&["spdx", doc_file.to_str().unwrap()]));
    // The SBOM manifest is signed too (its `sha256-<hex>.sig`).
    let sbom_sig = format!("{}.sig", sbom_digest.replace(':', "-"));
    assert!(
        output(&mut cosign_at(&reg, &["manifest", &img, &sbom_sig]))
            .status
            .success()
    );
    let mut verify = stackci();
    with_registry(&mut verify, &reg, tmp.path());
    let vv: Value = serde_json::from_str(&ok(verify
        .current_dir(&dir)
        .env("STACKCI_TRUST_KEYS", &public)
        .args(["--mirror", &m, "--json", "verify", "--image", &image_ref])))
    .unwrap();
    assert_eq!(vv["counts"]["verified"], 5, "{vv}");

    // Install from the registry with the key trusted; then a package tag re-pointed to an
    // unsigned manifest (as anyone with push access could) is refused, nothing unpacked.
    let root = tmp.path().join("root");
    let mut install = stackci();
    with_registry(&mut install, &reg, tmp.path());
    ok(install
        .current_dir(&dir)
        .env("STACKCI_TRUST_KEYS", &public)
        .args(["--mirror", &m, "install", "c", "--root"])
        .arg(&root));
    let c_tag = pkg_tags.iter().find(|t| t.starts_with("c-")).unwrap();
    let mut evil: Value = serde_json::from_str(&ok(&mut cosign_at(&reg, &["manifest", &pkgs, c_tag]))).unwrap();
    evil["annotations"]["evil"] = "yes".into();
    let evil_file = tmp.path().join("evil.json");
    std::fs::write(&evil_file, serde_json::to_vec(&evil).unwrap()).unwrap();
    let evil_digest = ok(&mut cosign_at(
        &reg,
        &["put-manifest", &pkgs, c_tag, evil_file.to_str().unwrap()],
    ));
    let root2 = tmp.path().join("root2");
    let mut install = stackci();
    with_registry(&mut install, &reg, tmp.path());
    let out = output(
        install
            .current_dir(&dir)
            .env("STACKCI_TRUST_KEYS", &public)
            .args(["--mirror", &m, "install", "c", "--root"])
            .arg(&root2),
    );
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(c_tag) && text.contains(evil_digest.trim()) && text.contains("no signature"),
        "{text}"
    );
    assert!(
        std::fs::read_dir(&root2).unwrap().next().is_none(),
        "something was unpacked"
    );
}

#[test]
fn registry_packages_images_and_sboms_are_signed() {
    registry_flow(false);
}

#[test]
fn tls_basic_auth_registry_packages_images_and_sboms_are_signed() {
    registry_flow(true);
}

#[test]
fn s3_mirror_holds_the_same_signature_tags() {
    require_tools();
    let moto = Moto::start();
    moto.admin().create_bucket("stacks");
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_stack(&tmp.path().join("stack"), &tmp.path().join("store"));
    let (key, public) = keygen(tmp.path(), "k");
    let m = "s3://stacks/signed";
    let s3ci = || {
        let mut cmd = moto.stackci();
        cmd.current_dir(&dir).args(["--mirror", m]);
        cmd
    };
    let out = output(
        s3ci()
            .env("STACKCI_SIGNING_KEY", &key)
            .env("STACKCI_SIGNING_PASSWORD", PASSWORD)
            .arg("run"),
    );
    assert!(out.status.success(), "{}", all_output(&out));
    assert_no_secret(&all_output(&out), &key);
    let v: Value = serde_json::from_str(&ok(s3ci().args(["plan", "--json"]))).unwrap();
    for p in v["packages"].as_array().unwrap() {
        let tag = p["tag"].as_str().unwrap();
        let r: Value = serde_json::from_str(&ok(cosign(&[
            "verify",
            "--key",
            public.to_str().unwrap(),
            "s3:stacks/signed",
            tag,
        ])
        .envs(CLIENT_ENV)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)))
        .unwrap();
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["docker-reference"], m, "{r}");
    }
    let vv: Value = serde_json::from_str(&ok(s3ci()
        .env("STACKCI_TRUST_KEYS", &public)
        .args(["--json", "verify"])))
    .unwrap();
    assert_eq!(vv["counts"]["verified"], 3, "{vv}");
    ok(s3ci()
        .env("STACKCI_TRUST_KEYS", &public)
        .args(["install", "c", "--root"])
        .arg(tmp.path().join("root")));
}

#[test]
fn a_base_image_listed_under_trust_must_be_signed() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let reg = Peer::start(&tmp.path().join("registry"), false);
    let dir = small_stack(&tmp.path().join("stack"), &tmp.path().join("store"));
    let (key, public) = keygen(tmp.path(), "k");
    // The base: an unsigned image pushed to the registry by stackci without a key.
    ok(stackci().current_dir(&dir).arg("run"));
    let base = format!("{}:1", reg.mirror_url("base/tools"));
    ok(stackci().current_dir(&dir).args(["image", "img", "--to", &base]));
    // Packages signed; the stack lists the base's registry under `trust: { bases: }`.
    ok(stackci()
        .current_dir(&dir)
        .env("STACKCI_SIGNING_KEY", &key)
        .env("STACKCI_SIGNING_PASSWORD", PASSWORD)
        .args(["build", "c", "--force"]));
    for p in ["a", "b"] {
        ok(stackci()
            .current_dir(&dir)
            .env("STACKCI_SIGNING_KEY", &key)
            .env("STACKCI_SIGNING_PASSWORD", PASSWORD)
            .args(["build", p, "--force"]));
    }
    let stack = dir.join("stack.yaml");
    let text = std::fs::read_to_string(&stack).unwrap();
    std::fs::write(
        &stack,
        format!("{text}trust:\n  bases: [\"{}\"]\n", reg.mirror_url("base")),
    )
    .unwrap();
    let target = format!("oci-layout:{}:v1", tmp.path().join("out").display());
    let image = |keys: &str| {
        output(
            stackci()
                .current_dir(&dir)
                .env("STACKCI_TRUST_KEYS", keys)
                .args(["--json", "image", "img", "--base", &base, "--to", &target]),
        )
    };
    let out = image(public.to_str().unwrap());
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("refusing base image {base}")) && text.contains("no signature"),
        "{text}"
    );
    assert!(!tmp.path().join("out").exists(), "{text}");

    // Signed by the independent implementation with its own key, and that key trusted: accepted,
    // and the SBOM names the base by the digest that was verified.
    ok(cosign(&["keygen", "--out", tmp.path().join("py").to_str().unwrap()]).env("COSIGN_PASSWORD", ""));
    let base_store = store_of(&reg, "base/tools");
    let base_digest = ok(&mut cosign(&[
        "sign",
        "--key",
        tmp.path().join("py.key").to_str().unwrap(),
        &base_store,
        "1",
    ]));
    let keys = format!("{},{}", public.display(), tmp.path().join("py.pub").display());
    let out = image(&keys);
    assert!(out.status.success(), "{}", all_output(&out));
    let layout = tmp.path().join("out");
    let refs: Value = serde_json::from_str(&ok(&mut cosign(&[
        "referrers",
        &format!("layout:{}", layout.display()),
        "v1",
    ])))
    .unwrap();
    let sbom_manifest: Value = serde_json::from_str(&ok(&mut cosign(&[
        "manifest",
        &format!("layout:{}", layout.display()),
        refs[0]["digest"].as_str().unwrap(),
    ])))
    .unwrap();
    let doc: Value = serde_json::from_str(&ok(&mut cosign(&[
        "blob",
        &format!("layout:{}", layout.display()),
        sbom_manifest["layers"][0]["digest"].as_str().unwrap(),
    ])))
    .unwrap();
    let base_pkg = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["SPDXID"] == "SPDXRef-BaseImage")
        .unwrap_or_else(|| panic!("no base in {doc}"));
    assert_eq!(base_pkg["versionInfo"], base_digest.trim(), "{base_pkg}");
}

#[test]
fn sboms_are_found_through_the_referrers_api_when_the_registry_has_one() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let reg = Peer::start(&tmp.path().join("registry"), false);
    let dir = small_stack(&tmp.path().join("stack"), &tmp.path().join("store"));
    let (key, public) = keygen(tmp.path(), "k");
    let envs = [
        ("STACKCI_SIGNING_KEY", key.to_str().unwrap()),
        ("STACKCI_SIGNING_PASSWORD", PASSWORD),
    ];
    ok(stackci().current_dir(&dir).envs(envs).arg("run"));
    let image_ref = format!("{}:v1", reg.mirror_url("img"));
    let iv: Value = serde_json::from_str(&ok(stackci()
        .current_dir(&dir)
        .envs(envs)
        .args(["--json", "image", "img", "--to", &image_ref])))
    .unwrap();
    let image_digest = iv["digest"].as_str().unwrap().to_string();
    let sbom_digest = iv["sbom"]["digest"].as_str().unwrap().to_string();
    let size = ok(&mut cosign(&["manifest", &store_of(&reg, "img"), &sbom_digest])).len();
    // A registry with the referrers API (stood in for by a proxy in front of docker-registry):
    // it answers GET /v2/img/referrers/<digest> itself and has no `sha256-<hex>` tag, so the
    // SBOM can only be found through the API.
    let api_calls = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&api_calls);
    let (subject, listed) = (image_digest.clone(), sbom_digest.clone());
    let proxy = Proxy::start(reg.host(), move |head: &RequestHead| {
        if head.method == "GET" && head.path() == format!("/v2/img/referrers/{subject}") {
            calls.fetch_add(1, Ordering::SeqCst);
            let index = serde_json::json!({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [{ "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "digest": listed, "size": size, "artifactType": "application/spdx+json" }],
            });
            return Action::Respond {
                status: 200,
                headers: vec![("Content-Type".into(), "application/vnd.oci.image.index.v1+json".into())],
                body: serde_json::to_vec(&index).unwrap(),
            };
        }
        if head.path().contains("/manifests/sha256-") && !head.path().ends_with(".sig") {
            return Action::Respond {
                status: 404,
                headers: vec![],
                body: br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"hidden"}]}"#.to_vec(),
            };
        }
        Action::Forward
    });
    let via_proxy = format!("oci+http://{}/img:v1", proxy.host());
    let vv: Value = serde_json::from_str(&ok(stackci()
        .current_dir(&dir)
        .env("STACKCI_TRUST_KEYS", &public)
        .args(["--json", "verify", "a", "--image", &via_proxy])))
    .unwrap();
    assert_eq!(vv["image"]["sbom"]["digest"], sbom_digest.as_str(), "{vv}");
    assert_eq!(vv["image"]["sbom"]["status"], "verified", "{vv}");
    assert!(api_calls.load(Ordering::SeqCst) >= 1, "the referrers API was not asked");
}

#[test]
fn a_registry_that_indexes_the_sbom_itself_gets_no_tag_schema_index() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let reg = Peer::start(&tmp.path().join("registry"), false);
    let dir = small_stack(&tmp.path().join("stack"), &tmp.path().join("store"));
    ok(stackci().current_dir(&dir).arg("run"));
    // A registry with the referrers API answers a manifest pushed with a `subject` with
    // `OCI-Subject` (stood in for by a proxy adding the header to docker-registry's answers
    // to manifests pushed by digest, as referrers are; stackci reads only its presence).
    let by_digest = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&by_digest);
    let proxy = Proxy::start(reg.host(), move |head: &RequestHead| {
        if head.method == "PUT" && head.path().starts_with("/v2/img/manifests/sha256:") {
            count.fetch_add(1, Ordering::SeqCst);
            return Action::ForwardAdding(vec![("OCI-Subject".into(), "indexed".into())]);
        }
        Action::Forward
    });
    let iv: Value = serde_json::from_str(&ok(stackci().current_dir(&dir).args([
        "--json",
        "image",
        "img",
        "--to",
        &format!("oci+http://{}/img:v1", proxy.host()),
    ])))
    .unwrap();
    assert_eq!(iv["sbom"]["attached"], "referrers-api", "{iv}");
    assert_eq!(
        by_digest.load(Ordering::SeqCst),
        1,
        "the SBOM manifest is pushed by digest"
    );
    // The SBOM is stored by digest, and no `sha256-<hex>` index was written beside the tag.
    let sbom = iv["sbom"]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_str(&ok(&mut cosign(&["manifest", &store_of(&reg, "img"), sbom]))).unwrap();
    assert_eq!(manifest["subject"]["digest"], iv["digest"], "{manifest}");
    let tags: Value = serde_json::from_str(&ok(Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{}/img", reg.host()))))
    .unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["v1"]), "{tags}");
}
