//! Signatures on a file mirror, checked both ways against an independent cosign
//! implementation (`tests/tools/cosign_compat.py` through `tests/peers/trust.sh`: Python
//! `cryptography`, `hashlib.scrypt`, PyNaCl), bad signatures and keys refused before anything
//! is unpacked, `keygen`, and SBOMs validated by `pyspdxtools`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::*;

/// The password every test key is encrypted with; asserted never to appear in output.
pub const PASSWORD: &str = "pw-7f3a-never-print-me";

/// `tests/peers/trust.sh ARGS...`.
pub fn peer(args: &[&str]) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("tests/peers/trust.sh")).args(args);
    cmd
}

/// The independent implementation: `trust.sh cosign ARGS...`.
pub fn cosign(args: &[&str]) -> Command {
    let mut cmd = peer(&["cosign"]);
    cmd.args(args);
    cmd
}

/// Fails the test, with the reason, when the independent tools are not installed.
pub fn require_tools() {
    ok(&mut peer(&["check"]));
}

/// `stackci keygen --out DIR/NAME` with [`PASSWORD`]; returns (NAME.key, NAME.pub).
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    ok(stackci()
        .env("STACKCI_SIGNING_PASSWORD", PASSWORD)
        .arg("keygen")
        .arg("--out")
        .arg(&prefix));
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

/// stdout and stderr together.
pub fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts nothing secret about `key` (its password, its PEM body) is in `text`.
pub fn assert_no_secret(text: &str, key: &Path) {
    assert!(!text.contains(PASSWORD), "password leaked:\n{text}");
    let pem = std::fs::read_to_string(key).unwrap();
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!text.contains(line), "key material leaked:\n{text}");
    }
}

/// A stack of trivial packages: `a`, `b` (depends on a), `c` (depends on b), and an image
/// `img` of `c`.
pub fn small_stack(dir: &Path, store: &Path) -> PathBuf {
    let script = "mkdir -p \"$PREFIX/bin\"\necho \"$PREFIX\" > \"$PREFIX/bin/where\"";
    let path = write_stack(
        dir,
        store,
        &[("a", &[], script), ("b", &["a"], script), ("c", &["b"], script)],
    );
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("images:\n  img:\n    base: scratch\n    packages: [c]\n");
    std::fs::write(&path, text).unwrap();
    dir.to_path_buf()
}

/// Package tags from `plan --json`, by package name.
pub fn tags(dir: &Path, mirror: &str, envs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut cmd = stackci();
    cmd.current_dir(dir)
        .envs(envs.iter().copied())
        .args(["--mirror", mirror, "plan", "--json"]);
    let v: Value = serde_json::from_str(&ok(&mut cmd)).unwrap();
    v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["tag"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A file mirror's `index.json` and blobs, for tampering.
struct Layout(PathBuf);

impl Layout {
    fn index(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.0.join("index.json")).unwrap()).unwrap()
    }
    fn digest_of(&self, tag: &str) -> String {
        self.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no tag {tag}"))["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }
    fn blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.0.join("blobs/sha256").join(&digest[7..])).unwrap()
    }
    fn manifest(&self, tag: &str) -> Value {
        serde_json::from_slice(&self.blob(&self.digest_of(tag))).unwrap()
    }
    fn put_blob(&self, bytes: &[u8]) -> String {
        let hex = sha256_hex(bytes);
        std::fs::write(self.0.join("blobs/sha256").join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    }
    /// Stores `manifest` and points `tag` at it (as another tool or an attacker would).
    fn retag(&self, tag: &str, manifest: &Value) -> String {
        let bytes = serde_json::to_vec(manifest).unwrap();
        let digest = self.put_blob(&bytes);
        let mut index = self.index();
        let entries = index["manifests"].as_array_mut().unwrap();
        entries.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != tag);
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": bytes.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }));
        std::fs::write(self.0.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        digest
    }
}

fn sig_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// Every directory under `root` (recursively), for "nothing was unpacked" checks.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            out.push(e.path());
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
        }
    }
    out
}

#[test]
fn signed_file_mirror_verifies_both_ways_with_an_independent_implementation() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_stack(&tmp.path().join("stack"), &tmp.path().join("store"));
    let (key, public) = keygen(tmp.path(), "stackci");
    let mirror = tmp.path().join("mirror");
    let m = format!("file://{}", mirror.display());

    // The key as a CI variable holds it: the PEM itself in STACKCI_SIGNING_KEY.
    let pem = std::fs::read_to_string(&key).unwrap();
    let out = output(
        stackci()
            .current_dir(&dir)
            .env("STACKCI_SIGNING_KEY", &pem)
            .env("STACKCI_SIGNING_PASSWORD", PASSWORD)
            .args(["--mirror", &m, "run"]),
    );
    assert!(out.status.success(), "{}", all_output(&out));
    assert_no_secret(&all_output(&out), &key);

    // The independent verifier accepts every package stackci signed.
    let tags = tags(&dir, &m, &[]);
    let store = format!("layout:{}", mirror.display());
    for tag in tags.values() {
        let v: Value = serde_json::from_str(&ok(&mut cosign(&[
            "verify",
            "--key",
            public.to_str().unwrap(),
            &store,
            tag,
        ])))
        .unwrap();
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["docker-reference"], m.as_str(), "{v}");
    }
    // ... and decrypts the key stackci wrote (cosign's format) to the same public key.
    let decrypted = ok(cosign(&["pubkey", "--key", key.to_str().unwrap()]).env("COSIGN_PASSWORD", PASSWORD));
    assert_eq!(decrypted, std::fs::read_to_string(&public).unwrap());

    // stackci verify: every package verified by the key.
    let out = ok(stackci()
        .current_dir(&dir)
        .env("STACKCI_TRUST_KEYS", &public)
        .args(["--mirror", &m, "verify", "--json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["counts"]["verified"], 3, "{v}");
    assert!(
        v["packages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "verified"),
        "{v}"
    );

    // Re-signing is idempotent: a forced rebuild leaves the signature manifest as it was.
    let layout = Layout(mirror.clone());
    let b_sig = sig_tag(&layout.digest_of(&tags["b"]));
    let before = layout.digest_of(&b_sig);
    ok(stackci()
        .current_dir(&dir)
        .env("STACKCI_SIGNING_KEY", &key)
        .env("STACKCI_SIGNING_PASSWORD", PASSWORD)
        .args(["--mirror", &m, "build", "b", "--force"]));
    assert_eq!(layout.digest_of(&b_sig), before, "re-signing rewrote {b_sig}");
    assert_eq!(layout.manifest(&b_sig)["layers"].as_array().unwrap().len(), 1);

    // The other way: a key made by the independent implementation (its own scrypt +
    // secretbox), a signature made by it, both accepted by stackci.
    ok(cosign(&["keygen", "--out", tmp.path().join("py").to_str().unwrap()]).env("COSIGN_PASSWORD", "py-pass"));
    let py_pub = tmp.path().join("py.pub");
    let py_key = tmp.path().join("py.key");
    ok(cosign(&["sign", "--key", py_key.to_str().unwrap(), &store, &tags["a"]]).env("COSIGN_PASSWORD", "py-pass"));
    let v: Value = serde_json::from_str(&ok(stackci()
        .current_dir(&dir)
        .env("STACKCI_TRUST_KEYS", &py_pub)
        .args(["--mirror", &m, "verify", "a", "--json"])))
    .unwrap();
    assert_eq!(v["packages"][0]["status"], "verified", "{v}");
    // The python key signs a's manifest next to stackci's: both signatures are kept.
    assert_eq!(
        layout.manifest(&sig_tag(&layout.digest_of(&tags["a"])))["layers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // stackci signs with the python-made key (COSIGN_PASSWORD is read as cosign does).
    let out = output(
        stackci()
            .current_dir(&dir)
            .env("STACKCI_SIGNING_KEY", &py_key)
            .env("COSIGN_PASSWORD", "py-pass")
            .args(["--mirror", &m, "build", "c", "--force"]),
    );
    assert!(out.status.success(), "{}", all_output(&out));
    for k in [&py_pub, &public] {
        let v: Value = serde_json::from_str(&ok(&mut cosign(&[
            "verify",
            "--key",
            k.to_str().unwrap(),
            &store,
            &tags["c"],
        ])))
        .unwrap();
        assert_eq!(v["ok"], true, "{v}");
    }

    // Installing with both keys trusted works and unpacks the closure.
    let root = tmp.path().join("root");
    let keys = format!("{},{}", public.display(), py_pub.display());
    ok(stackci()
        .current_dir(&dir)
        .env("STACKCI_TRUST_KEYS", &keys)
        .args(["--mirror", &m, "install", "c", "--root"])
        .arg(&root));
    let store_dir = tmp.path().join("store");
    assert!(
        root.join(store_dir.strip_prefix("/").unwrap())
            .join(&tags["a"])
            .join("bin/where")
            .is_file()
    );
}

/// Runs `install b` into a fresh root with `public` trusted; asserts it is refused with an
/// error naming the package, the manifest digest, the key and `reason`, and that nothing
/// was unpacked.
fn assert_install_refused(dir: &Path, m: &str, public: &Path, tag: &str, digest: &str, reason: &str) {
    let root = tempfile::tempdir().unwrap();
    let out = output(
        stackci()
            .current_dir(dir)
            .env("STACKCI_TRUST_KEYS", public)
            .args(["--mirror", m, "install", "b", "--root"])
            .arg(root.path()),
    );
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    for want in [
        tag,
        digest,
        public.to_str().unwrap(),
        reason,
        "no valid signature by a trusted key",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    assert_eq!(text.lines().filter(|l| l.starts_with("error")).count(), 1, "{text}");
    let left: Vec<_> = tree(root.path()).into_iter().filter(|p| p.is_file()).collect();
    assert!(left.is_empty(), "files were unpacked: {left:?}");
}

#[test]
fn bad_signatures_and_keys_are_refused_before_anything_is_unpacked() {
    require_tools();
    require("openssl");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = small_stack(&tmp.path().join("stack"), &store);
    let (key, public) = keygen(tmp.path(), "k");
    let mirror = tmp.path().join("mirror");
    let m = format!("file://{}", mirror.display());
    ok(stackci()
        .current_dir(&dir)
        .env("STACKCI_SIGNING_KEY", &key)
        .env("STACKCI_SIGNING_PASSWORD", PASSWORD)
        .args(["--mirror", &m, "run", "a", "b"]));
    let tags = tags(&dir, &m, &[]);
    let layout = Layout(mirror.clone());
    let pristine = std::fs::read(mirror.join("index.json")).unwrap();
    let restore = || std::fs::write(mirror.join("index.json"), &pristine).unwrap();
    let b = layout.digest_of(&tags["b"]);
    let a = layout.digest_of(&tags["a"]);
    let b_sig = layout.manifest(&sig_tag(&b));

    // A truncated signature.
    let mut cut = b_sig.clone();
    let sig = cut["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap()
        .to_string();
    cut["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] = sig[..sig.len() / 2 + 2].into();
    layout.retag(&sig_tag(&b), &cut);
    assert_install_refused(&dir, &m, &public, &tags["b"], &b, "signature 1 in");
    restore();

    // A tampered payload (another docker-reference), stored consistently under its digest:
    // the signature no longer covers it.
    let payload = layout.blob(b_sig["layers"][0]["digest"].as_str().unwrap());
    let forged = String::from_utf8(payload)
        .unwrap()
        .replace(&m, "evil.example/repo")
        .into_bytes();
    let mut tampered = b_sig.clone();
    tampered["layers"][0]["digest"] = layout.put_blob(&forged).into();
    tampered["layers"][0]["size"] = forged.len().into();
    layout.retag(&sig_tag(&b), &tampered);
    assert_install_refused(
        &dir,
        &m,
        &public,
        &tags["b"],
        &b,
        "made by none of the trusted keys, or tampered with",
    );
    restore();

    // A valid signature, but for another manifest (a's) copied under b's signature tag.
    layout.retag(&sig_tag(&b), &layout.manifest(&sig_tag(&a)));
    assert_install_refused(
        &dir,
        &m,
        &public,
        &tags["b"],
        &b,
        &format!("for manifest {a}, not for this one"),
    );
    restore();

    // The tag re-pointed to an unsigned manifest.
    let mut repointed = layout.manifest(&tags["b"]);
    repointed["annotations"]["evil"] = "yes".into();
    let evil = layout.retag(&tags["b"], &repointed);
    assert_install_refused(&dir, &m, &public, &tags["b"], &evil, "no signature (no tag sha256-");
    restore();

    // A build whose dependency is unsigned: refused before the dependency is unpacked (the
    // store is emptied first, as on a fresh CI machine) and before the recipe runs.
    let mut unsigned_a = layout.manifest(&tags["a"]);
    unsigned_a["annotations"]["evil"] = "yes".into();
    layout.retag(&tags["a"], &unsigned_a);
    std::fs::remove_dir_all(&store).unwrap();
    let out = output(
        stackci()
            .current_dir(&dir)
            .env("STACKCI_TRUST_KEYS", &public)
            .args(["--mirror", &m, "build", "b", "--force"]),
    );
    let text = all_output(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains(&format!("refusing `{}`", tags["a"])), "{text}");
    assert!(
        !store.join(&tags["a"]).exists() && !store.join(&tags["b"]).exists(),
        "{text}"
    );
    restore();

    // Keys in formats stackci does not verify or sign with: one clear error naming the file.
    let rsa = tmp.path().join("rsa.key");
    ok(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&rsa));
    let rsa_pub = tmp.path().join("rsa.pub");
    ok(Command::new("openssl")
        .arg("pkey")
        .arg("-in")
        .arg(&rsa)
        .arg("-pubout")
        .arg("-out")
        .arg(&rsa_pub));
    let ed = tmp.path().join("ed.key");
    ok(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ED25519", "-out"])
        .arg(&ed));
    let junk = tmp.path().join("junk.pub");
    std::fs::write(&junk, "not a key\n").unwrap();
    for (file, want) in [
        (&rsa_pub, "is an RSA key"),
        (&junk, "is not a PEM public key"),
        (&key, "trust the .pub file, never the private key"),
    ] {
        let out = output(
            stackci()
                .current_dir(&dir)
                .env("STACKCI_TRUST_KEYS", file)
                .args(["--mirror", &m, "install", "b", "--root"])
                .arg(tmp.path().join("never")),
        );
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains(file.to_str().unwrap()) && text.contains(want), "{text}");
        assert!(!tmp.path().join("never").exists(), "{text}");
    }
    for (file, want) in [
        (&rsa, "is an RSA key"),
        (&ed, "is an Ed25519 key"),
        (&public, "is a public key"),
    ] {
        let out = output(
            stackci()
                .current_dir(&dir)
                .env("STACKCI_SIGNING_KEY", file)
                .args(["--mirror", &m, "run", "c"]),
        );
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains(file.to_str().unwrap()) && text.contains(want), "{text}");
    }

    // A wrong password: refused before anything is built or pushed, and never printed.
    let before = std::fs::read(mirror.join("index.json")).unwrap();
    let out = output(
        stackci()
            .current_dir(&dir)
            .env("STACKCI_SIGNING_KEY", &key)
            .env("STACKCI_SIGNING_PASSWORD", "wrong-7f3a-secret")
            .args(["--mirror", &m, "run", "c"]),
    );
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("wrong password") && text.contains(key.to_str().unwrap()),
        "{text}"
    );
    assert!(!text.contains("wrong-7f3a-secret"), "{text}");
    assert_eq!(std::fs::read(mirror.join("index.json")).unwrap(), before);
    assert!(!store.join(&tags["c"]).exists());
}

#[test]
fn keygen_writes_cosign_keys_and_never_overwrites() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("keys/release");
    let out = ok(stackci()
        .env("STACKCI_SIGNING_PASSWORD", PASSWORD)
        .args(["--json", "keygen", "--out"])
        .arg(&prefix));
    let v: Value = serde_json::from_str(&out).unwrap();
    let key = tmp.path().join("keys/release.key");
    let public = tmp.path().join("keys/release.pub");
    assert_eq!(v["private_key"], key.to_str().unwrap());
    assert!(v["fingerprint"].as_str().unwrap().starts_with("sha256:"), "{v}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
        "{pem}"
    );
    assert_no_secret(&out, &key);
    // The independent implementation opens it with the password, and only with it.
    let decrypted = ok(cosign(&["pubkey", "--key", key.to_str().unwrap()]).env("COSIGN_PASSWORD", PASSWORD));
    assert_eq!(decrypted, std::fs::read_to_string(&public).unwrap());
    let wrong = output(cosign(&["pubkey", "--key", key.to_str().unwrap()]).env("COSIGN_PASSWORD", "nope"));
    assert!(!wrong.status.success());
    // Never overwritten without --force.
    let again = output(stackci().arg("keygen").arg("--out").arg(&prefix));
    assert_eq!(again.status.code(), Some(2));
    assert!(
        all_output(&again).contains("exists; use --force"),
        "{}",
        all_output(&again)
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), pem);
    ok(stackci().arg("keygen").arg("--force").arg("--out").arg(&prefix));
    assert_ne!(std::fs::read_to_string(&key).unwrap(), pem);
}

#[test]
fn images_are_signed_and_carry_a_valid_spdx_sbom() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_stack(&tmp.path().join("stack"), &tmp.path().join("store"));
    let (key, public) = keygen(tmp.path(), "k");
    let signing = [
        ("STACKCI_SIGNING_KEY", key.to_str().unwrap()),
        ("STACKCI_SIGNING_PASSWORD", PASSWORD),
        ("STACKCI_TRUST_KEYS", public.to_str().unwrap()),
        ("SOURCE_DATE_EPOCH", "1700000000"),
    ];
    ok(stackci().current_dir(&dir).envs(signing).arg("run"));
    let target = tmp.path().join("out");
    let reference = format!("oci-layout:{}:v1", target.display());
    let out = ok(stackci()
        .current_dir(&dir)
        .envs(signing)
        .args(["--json", "image", "img", "--to", &reference]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["signed"], true, "{v}");
    assert_eq!(v["sbom"]["attached"], "tag-schema", "{v}");
    let store = format!("layout:{}", target.display());

    // The image signature verifies independently.
    let iv: Value = serde_json::from_str(&ok(&mut cosign(&[
        "verify",
        "--key",
        public.to_str().unwrap(),
        &store,
        "v1",
    ])))
    .unwrap();
    assert_eq!(iv["ok"], true, "{iv}");
    assert_eq!(iv["digest"], v["digest"]);

    // The SBOM is found through the referrers tag schema, is valid SPDX 2.3, lists every
    // package with its hash and layer digest, and is itself signed.
    let referrers: Value = serde_json::from_str(&ok(&mut cosign(&[
        "referrers",
        &store,
        "v1",
        "--type",
        "application/spdx+json",
    ])))
    .unwrap();
    assert_eq!(referrers.as_array().unwrap().len(), 1, "{referrers}");
    let sbom_manifest_digest = referrers[0]["digest"].as_str().unwrap();
    assert_eq!(sbom_manifest_digest, v["sbom"]["digest"]);
    let layout = Layout(target.clone());
    let sbom_manifest: Value = serde_json::from_slice(&layout.blob(sbom_manifest_digest)).unwrap();
    assert_eq!(sbom_manifest["artifactType"], "application/spdx+json");
    assert_eq!(sbom_manifest["subject"]["digest"], v["digest"]);
    let doc_bytes = layout.blob(sbom_manifest["layers"][0]["digest"].as_str().unwrap());
    let doc_file = tmp.path().join("sbom.spdx.json");
    std::fs::write(&doc_file, &doc_bytes).unwrap();
    ok(&mut peer(&["spdx", doc_file.to_str().unwrap()]));
    let doc: Value = serde_json::from_slice(&doc_bytes).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let mirror = Layout(dir.join(".stackci/mirror"));
    let tags = tags(&dir, &format!("file://{}", dir.join(".stackci/mirror").display()), &[]);
    for name in ["a", "b", "c"] {
        let tag = &tags[name];
        let pkg = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from the SBOM: {doc}"));
        let hash = tag.rsplit('-').next().unwrap();
        let layer = mirror.manifest(tag)["layers"].as_array().unwrap().last().unwrap()["digest"].clone();
        let refs = pkg["externalRefs"].as_array().unwrap();
        assert!(
            refs.iter()
                .any(|r| r["referenceType"] == "stackci-hash" && r["referenceLocator"] == hash),
            "{pkg}"
        );
        assert!(
            refs.iter()
                .any(|r| r["referenceType"] == "oci-layer" && r["referenceLocator"] == layer),
            "{pkg}"
        );
        assert_eq!(pkg["versionInfo"], "1.0");
    }
    // stackci verify --image: the image's and the SBOM's signatures.
    let out = ok(stackci()
        .current_dir(&dir)
        .env("STACKCI_TRUST_KEYS", &public)
        .args(["--json", "verify", "c", "--image", &reference]));
    let vv: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(vv["image"]["status"], "verified", "{vv}");
    assert_eq!(vv["image"]["sbom"]["status"], "verified", "{vv}");

    // The same inputs give the same image, SBOM and signatures: a second run writes nothing.
    let index_before = std::fs::read(target.join("index.json")).unwrap();
    ok(stackci()
        .current_dir(&dir)
        .envs(signing)
        .args(["image", "img", "--to", &reference]));
    assert_eq!(std::fs::read(target.join("index.json")).unwrap(), index_before);

    // The validator is real: a broken document fails it.
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("creationInfo");
    std::fs::write(&doc_file, serde_json::to_vec(&broken).unwrap()).unwrap();
    assert!(
        !output(&mut peer(&["spdx", doc_file.to_str().unwrap()]))
            .status
            .success()
    );
}
