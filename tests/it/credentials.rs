//! Credentials inside a mirror, endpoint or image URL (issue 9, item 4): refused with a
//! message saying where they belong, and never printed by any entry point: flags,
//! environment variables, the stack file, `--help`, `--json`, `-v`.

use std::path::Path;
use std::process::Command;

use crate::common::*;

const SECRET: &str = "s3cr3t";

/// Runs `cmd` and returns (exit code, stdout + stderr), asserting the secret is in neither.
fn run_hiding_secret(cmd: &mut Command) -> (Option<i32>, String) {
    let out = output(cmd);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(SECRET), "{cmd:?} printed the secret:\n{text}");
    (out.status.code(), text)
}

fn stack(dir: &Path) -> std::path::PathBuf {
    write_stack(dir, &dir.join("store"), &[("a", &[], "true")])
}

/// stackci in `dir` with the S3 chain isolated from the host's.
fn stackci_in(dir: &Path) -> Command {
    let mut cmd = stackci();
    cmd.current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("STACKCI_S3_ENDPOINT");
    cmd
}

#[test]
fn help_never_shows_environment_values() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [&["--help"][..], &["plan", "--help"], &["run", "--help"], &["-h"]] {
        let (code, text) = run_hiding_secret(
            stackci_in(tmp.path())
                .env("STACKCI_MIRROR", format!("oci://u:{SECRET}@x/y"))
                .env("STACKCI_S3_ENDPOINT", format!("http://key:{SECRET}@127.0.0.1:9"))
                .env("STACKCI_STACK", format!("/{SECRET}/stack.yaml"))
                .env("SSL_CERT_FILE", format!("/{SECRET}.pem"))
                .args(args),
        );
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("STACKCI_MIRROR"), "{text}");
    }
}

#[test]
fn registry_urls_with_credentials_are_refused_from_every_entry_point() {
    let tmp = tempfile::tempdir().unwrap();
    let stack = stack(tmp.path());
    let url = format!("oci://u:{SECRET}@ghcr.io/x");
    let expect_refusal = |cmd: &mut Command| {
        let (code, text) = run_hiding_secret(cmd);
        assert_eq!(code, Some(2), "{text}");
        assert!(text.contains("carries credentials"), "{text}");
        assert!(
            text.contains("~/.docker/config.json") && text.contains("STACKCI_REGISTRY_USERNAME/_PASSWORD"),
            "{text}"
        );
        assert!(text.contains("oci://***@ghcr.io/x"), "{text}");
    };
    for args in [
        &["plan"][..],
        &["plan", "--json"],
        &["-v", "run"],
        &["index", "--json"],
        &["generate", "gitlab"],
    ] {
        expect_refusal(stackci_in(tmp.path()).args(["--mirror", &url]).args(args));
        expect_refusal(stackci_in(tmp.path()).env("STACKCI_MIRROR", &url).args(args));
    }
    // `mirror:` in the stack file.
    let text = std::fs::read_to_string(&stack).unwrap();
    std::fs::write(&stack, format!("mirror: {url}\n{text}")).unwrap();
    expect_refusal(stackci_in(tmp.path()).arg("plan"));
    std::fs::write(&stack, &text).unwrap();

    // Image targets and bases (the refusal comes before anything is built or read).
    let images = "images:\n  tools:\n    base: scratch\n    packages: [a]\n";
    std::fs::write(&stack, format!("{text}{images}")).unwrap();
    let m = format!("file://{}", tmp.path().join("m").display());
    for args in [
        vec!["image", "tools", "--to", "oci://u:s3cr3t@ghcr.io/x:t"],
        vec!["image", "tools", "--to", "oci://u:s3cr3t@ghcr.io/x"],
        vec![
            "image",
            "tools",
            "--to",
            "oci-layout:/tmp/x",
            "--base",
            "oci://u:s3cr3t@ghcr.io/b:1",
        ],
    ] {
        let (code, text) = run_hiding_secret(stackci_in(tmp.path()).args(["--mirror", &m]).args(&args));
        assert_eq!(code, Some(2), "{text}");
        assert!(
            text.contains("carries credentials") && text.contains("oci://***@ghcr.io/"),
            "{text}"
        );
    }
}

#[test]
fn s3_urls_and_endpoints_with_credentials_are_refused_and_masked() {
    let tmp = tempfile::tempdir().unwrap();
    stack(tmp.path());
    let endpoint = format!("http://key:{SECRET}@127.0.0.1:9");
    let cases: Vec<Command> = vec![
        {
            let mut c = stackci_in(tmp.path());
            c.args(["--mirror", "s3://b/p", "--s3-endpoint", &endpoint, "plan", "--json"]);
            c
        },
        {
            let mut c = stackci_in(tmp.path());
            c.env("STACKCI_S3_ENDPOINT", &endpoint)
                .args(["--mirror", "s3://b/p", "-v", "index"]);
            c
        },
        {
            let mut c = stackci_in(tmp.path());
            c.env("AWS_ENDPOINT_URL", &endpoint)
                .args(["--mirror", "s3://b/p", "plan"]);
            c
        },
        {
            let mut c = stackci_in(tmp.path());
            c.args(["--mirror", &format!("s3://key:{SECRET}@bucket/p"), "plan"]);
            c
        },
    ];
    for mut cmd in cases {
        let (code, text) = run_hiding_secret(&mut cmd);
        assert_eq!(code, Some(2), "{text}");
        assert!(
            text.contains("carries credentials") && text.contains("AWS_ACCESS_KEY_ID"),
            "{text}"
        );
        assert!(text.contains("***@"), "{text}");
    }
}
