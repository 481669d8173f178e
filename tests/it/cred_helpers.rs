//! Docker credential helpers (issue 14, item 4): `credsStore` / `credHelpers` in the docker
//! config run a real `docker-credential-<name> get` script on PATH against the TLS + basic
//! auth registry peer; a hanging, failing or missing helper is a clear error, `auths`
//! entries go first, and the secret never shows.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::registry::Peer;
use crate::common::*;

/// Writes `docker-credential-<name>` into `bin` with `body` as its shell script.
fn helper(bin: &Path, name: &str, body: &str) {
    std::fs::create_dir_all(bin).unwrap();
    let path = bin.join(format!("docker-credential-{name}"));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Setup {
    _tmp: tempfile::TempDir,
    peer: Peer,
    dir: PathBuf,
    bin: PathBuf,
    docker: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let peer = Peer::start(&tmp.path().join("reg"), true);
        let dir = tmp.path().join("stack");
        write_stack(&dir, &tmp.path().join("store"), &[("a", &[], "true")]);
        let bin = tmp.path().join("bin");
        let docker = tmp.path().join("docker");
        std::fs::create_dir_all(&docker).unwrap();
        Setup {
            peer,
            dir,
            bin,
            docker,
            _tmp: tmp,
        }
    }

    fn config(&self, json: &str) {
        std::fs::write(self.docker.join("config.json"), json.replace("HOST", self.peer.host())).unwrap();
    }

    /// `stackci plan` against the auth registry as the mirror (lists its tags, which needs
    /// credentials), with the helpers' directory first on PATH.
    fn plan(&self) -> (bool, String) {
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_default());
        let out = output(
            stackci()
                .current_dir(&self.dir)
                .env("PATH", path)
                .env("DOCKER_CONFIG", &self.docker)
                .env("STACKCI_CREDENTIAL_HELPER_TIMEOUT", "2")
                .env_remove("REGISTRY_AUTH_FILE")
                .env_remove("STACKCI_REGISTRY_USERNAME")
                .env_remove("STACKCI_REGISTRY_PASSWORD")
                .args(["--ca-cert"])
                .arg(self.peer.ca())
                .args(["--mirror", &self.peer.mirror_url("secure/mirror"), "plan"]),
        );
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains("peerpass"), "the secret was printed:\n{text}");
        (out.status.success(), text)
    }
}

/// A helper that records the server it was asked about and answers with the peer's login.
fn good_helper(s: &Setup, name: &str) -> PathBuf {
    let asked = s.bin.join(format!("{name}.asked"));
    helper(
        &s.bin,
        name,
        &format!(
            "[ \"$1\" = get ] || exit 3\ncat > '{}'\nprintf '{{\"ServerURL\":\"x\",\"Username\":\"peer\",\"Secret\":\"peerpass\"}}'",
            asked.display()
        ),
    );
    asked
}

#[test]
fn creds_store_helper_logs_in() {
    let s = Setup::new();
    let asked = good_helper(&s, "teststore");
    s.config(r#"{"auths":{"HOST":{}},"credsStore":"teststore"}"#);
    let (ok, text) = s.plan();
    assert!(ok, "{text}");
    assert!(text.contains("1 to build, 0 cached"), "{text}");
    assert_eq!(
        std::fs::read_to_string(asked).unwrap(),
        s.peer.host(),
        "stdin is the server"
    );
}

#[test]
fn cred_helpers_entry_beats_creds_store_and_auths_go_first() {
    let s = Setup::new();
    let asked = good_helper(&s, "perhost");
    helper(&s.bin, "broken", "echo 'store is locked' >&2\nexit 1");
    s.config(r#"{"credsStore":"broken","credHelpers":{"HOST":"perhost"}}"#);
    let (ok, text) = s.plan();
    assert!(ok, "{text}");
    assert!(asked.exists(), "the per-host helper ran");

    // An `auths` entry with credentials is used without running any helper.
    std::fs::remove_file(&asked).unwrap();
    let auth = data_encoding::BASE64.encode(b"peer:peerpass");
    s.config(&format!(
        r#"{{"auths":{{"HOST":{{"auth":"{auth}"}}}},"credsStore":"broken","credHelpers":{{"HOST":"perhost"}}}}"#
    ));
    let (ok, text) = s.plan();
    assert!(ok, "{text}");
    assert!(!asked.exists(), "no helper ran when `auths` had the entry");
}

#[test]
fn failing_hanging_and_missing_helpers_are_clear_errors() {
    let s = Setup::new();
    helper(&s.bin, "failing", "echo 'the keychain is locked' >&2\nexit 1");
    s.config(r#"{"credsStore":"failing"}"#);
    let (ok, text) = s.plan();
    assert!(!ok);
    assert!(
        text.contains("credential helper `docker-credential-failing`")
            && text.contains("the keychain is locked")
            && text.contains(&s.docker.join("config.json").display().to_string()),
        "{text}"
    );

    helper(&s.bin, "hanging", "sleep 60");
    s.config(r#"{"credsStore":"hanging"}"#);
    let start = std::time::Instant::now();
    let (ok, text) = s.plan();
    assert!(!ok);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(30),
        "the helper was not killed"
    );
    assert!(
        text.contains("`docker-credential-hanging`") && text.contains("did not answer within 2s"),
        "{text}"
    );

    s.config(r#"{"credHelpers":{"HOST":"nosuch"}}"#);
    let (ok, text) = s.plan();
    assert!(!ok);
    assert!(
        text.contains("`docker-credential-nosuch`") && text.contains("is not on PATH"),
        "{text}"
    );

    // "Not found" is no error: the request goes out anonymously and the registry says so.
    helper(
        &s.bin,
        "empty",
        "echo 'credentials not found in native keychain'\nexit 1",
    );
    s.config(r#"{"credsStore":"empty"}"#);
    let (ok, text) = s.plan();
    assert!(!ok);
    assert!(text.contains("requires authentication"), "{text}");
    assert!(!text.contains("docker-credential-empty"), "{text}");
}

#[test]
fn skopeo_agrees_with_the_helper_protocol() {
    // The same helper works for skopeo, so the script speaks the real protocol.
    require("skopeo");
    let s = Setup::new();
    good_helper(&s, "teststore");
    s.config(r#"{"credHelpers":{"HOST":"teststore"}}"#);
    let path = format!("{}:{}", s.bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = output(
        Command::new("skopeo")
            .env("PATH", path)
            .env("REGISTRY_AUTH_FILE", s.docker.join("config.json"))
            .env("HOME", s.docker.parent().unwrap())
            .env_remove("XDG_RUNTIME_DIR")
            .arg("list-tags")
            .arg(format!("--cert-dir={}", s.peer.env["REGISTRY_CERT_DIR"]))
            .arg(format!("docker://{}/secure/nothing", s.peer.host())),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    // Authenticated: the registry says the repository is unknown, not "unauthorized".
    assert!(!err.to_lowercase().contains("unauthorized"), "{err}");
    let (ok, text) = s.plan();
    assert!(ok, "{text}");
}
