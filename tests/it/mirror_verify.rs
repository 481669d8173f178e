//! `stackci mirror verify`: a sound mirror passes; a corrupt, truncated or missing blob, a
//! missing manifest are each named with the tags that need them,
//! exit 1, on a file mirror, on moto S3 and on a docker-registry; `--quick` only looks up.

use crate::common::packages;
use crate::common::registry::Peer;
use crate::common::s3::{ACCESS_KEY, Moto, SECRET_KEY};

use std::process::Command;

use stackci::mirror::Mirror;
use stackci::mirror::fs::FsStore;
use stackci::mirror::layout::LayoutMirror;
use stackci::mirror::oci::{ClientOptions, RegistryMirror};

use crate::common::*;

/// `mirror verify --json URL` (extra args first): exit code and report.
fn verify(mut cmd: Command, url: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = output(cmd.args(["mirror", "verify", "--json"]).args(extra).arg(url));
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

/// (kind, digest, tags, problem) of each problem.
fn problems(report: &serde_json::Value) -> Vec<(String, String, Vec<String>, String)> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().into(),
                p["digest"].as_str().unwrap_or_default().into(),
                p["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().into())
                    .collect(),
                p["problem"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn a_file_mirror_names_each_bad_blob_and_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let url = dir.display().to_string();
    let m = LayoutMirror::new(FsStore::new(&dir));
    let a = packages::package(&m, "a", &[], b"layer of a, a bit longer");
    let b = packages::package(&m, "b", &[&a], b"layer of b");
    let c = packages::package(&m, "c", &[], b"layer of c");
    let (code, report) = verify(stackci(), &url, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        (
            report["tags"].as_u64(),
            report["manifests"].as_u64(),
            report["blobs"].as_u64()
        ),
        (Some(3), Some(3), Some(6))
    );

    // a's layer corrupt (same size), c's layer truncated, b's manifest gone.
    let blob = |d: &stackci::digest::Digest| dir.join("blobs/sha256").join(d.hex());
    let mut bytes = std::fs::read(blob(&a.layer.digest)).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(blob(&a.layer.digest), &bytes).unwrap();
    std::fs::write(blob(&c.layer.digest), b"layer").unwrap();
    std::fs::remove_file(blob(&b.digest)).unwrap();

    let (code, report) = verify(stackci(), &url, &[]);
    assert_eq!(code, 1, "{report}");
    let found = problems(&report);
    assert_eq!(found.len(), 3, "{found:#?}");
    let about = |digest: &stackci::digest::Digest| {
        found
            .iter()
            .find(|p| p.1 == digest.to_string())
            .unwrap_or_else(|| panic!("{digest} not reported: {found:#?}"))
    };
    let (kind, _, tags, what) = about(&b.digest);
    assert_eq!(
        (kind.as_str(), tags.as_slice(), what.as_str()),
        ("manifest", &[b.tag.clone()][..], "missing")
    );
    let (kind, _, tags, what) = about(&a.layer.digest);
    assert_eq!(
        (kind.as_str(), tags.as_slice()),
        ("blob", &[a.tag.clone()][..]),
        "b's manifest is gone, so only a needs it"
    );
    assert!(what.starts_with("corrupt: its 24 bytes hash to sha256:"), "{what}");
    let (_, _, tags, what) = about(&c.layer.digest);
    assert_eq!(tags, std::slice::from_ref(&c.tag));
    assert!(what.starts_with("corrupt: its 5 bytes"), "{what}");

    // --quick looks blobs up only: the corrupt ones pass, the missing manifest does not.
    let (code, report) = verify(stackci(), &url, &["--quick"]);
    assert_eq!(code, 1);
    assert_eq!(problems(&report).len(), 1, "{report}");

    // The text output names them too.
    let out = output(stackci().args(["mirror", "verify", &url]));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!("error: blob {} (needed by {})", a.layer.digest, a.tag)),
        "{text}"
    );
    assert!(text.contains("3 problem(s)"), "{text}");
}

#[test]
fn s3_and_registry_mirrors_name_a_missing_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    moto.admin().create_bucket("verify");
    let opts = stackci::mirror::s3::S3Options {
        endpoint: Some(moto.endpoint.clone()),
        ..Default::default()
    };
    let s3 = LayoutMirror::new(stackci::mirror::s3::S3Store::new("s3://verify/m", &opts).unwrap());
    let a = packages::package(&s3, "a", &[], b"layer a");
    let b = packages::package(&s3, "b", &[&a], b"layer b");
    let ci = || {
        let mut cmd = stackci();
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .args(["--s3-endpoint", &moto.endpoint]);
        cmd
    };
    assert_eq!(verify(ci(), "s3://verify/m", &[]).0, 0);
    s3.delete_blob(&a.layer.digest).unwrap();
    let (code, report) = verify(ci(), "s3://verify/m", &[]);
    assert_eq!(code, 1);
    let found = problems(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, a.layer.digest.to_string());
    assert_eq!(
        found[0].2,
        [a.tag.clone(), b.tag.clone()],
        "both packages carry a's layer"
    );
    assert_eq!(found[0].3, "missing");

    let reg = Peer::start(&tmp.path().join("registry"), false);
    let url = reg.mirror_url("verify/stack");
    let r = RegistryMirror::new(&url, &ClientOptions::default()).unwrap();
    let a = packages::package(&r, "a", &[], b"layer a");
    packages::sign(&r, &a.digest);
    assert_eq!(verify(stackci(), &url, &[]).0, 0);
    r.delete_blob(&a.layer.digest).unwrap();
    let (code, report) = verify(stackci(), &url, &["-j", "2"]);
    assert_eq!(code, 1, "{report}");
    let found = problems(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].1.as_str(), found[0].2.as_slice()),
        (a.layer.digest.to_string().as_str(), &[a.tag.clone()][..])
    );
}
