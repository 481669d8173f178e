//! The steps generated jobs run before stackci, taken from generated files and run with
//! bash: installing stackci (a release served over HTTP by a real server, its sha256
//! checked, cargo as the fallback) and getting Spack (a real git clone at a ref).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use stackci::digest::Digest;

use crate::common::*;

/// `stackci generate gitlab` of a one-package stack (a Spack lockfile when `spack`), parsed.
fn generated(dir: &Path, spack_ref: Option<&str>) -> serde_json::Value {
    let stack = if let Some(r) = spack_ref {
        let env = dir.join("env");
        std::fs::create_dir_all(&env).unwrap();
        let h = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        std::fs::write(
            env.join("spack.lock"),
            format!(
                r#"{{"_meta":{{"lockfile-version":5}},"spack":{{"version":"0.23.0.dev0"}},"concrete_specs":{{"{h}":{{"name":"zlib","version":"1.3"}}}}}}"#
            ),
        )
        .unwrap();
        let path = dir.join("stack.yaml");
        std::fs::write(
            &path,
            format!("spack: {{ env: env, git: file://{}/spack-git, ref: {r} }}\nci: {{ install: {{ repository: my-org/stackci }} }}\n", dir.display()),
        )
        .unwrap();
        path
    } else {
        let path = write_stack(dir, &dir.join("store"), &[("a", &[], "true")]);
        let text = std::fs::read_to_string(&path).unwrap();
        let ci = "ci:\n  github:\n    action: ./\n";
        assert!(text.contains(ci), "write_stack's ci: section changed:\n{text}");
        let with = text.replace(ci, &format!("{ci}  install: {{ repository: my-org/stackci }}\n"));
        std::fs::write(&path, with).unwrap();
        path
    };
    let out = dir.join("pipeline.yml");
    ok(stackci()
        .arg("--stack")
        .arg(&stack)
        .args(["--mirror", &format!("file://{}/mirror", dir.display())])
        .args(["generate", "gitlab", "-o"])
        .arg(&out));
    serde_saphyr::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// An executable script at `path`.
fn script(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A PATH with the usual tools but without stackci or spack: `extra` first, then links to
/// the few tools the steps use.
fn bare_path(dir: &Path, extra: &Path) -> String {
    let tools = dir.join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    for t in [
        "bash",
        "sh",
        "curl",
        "tar",
        "gzip",
        "sha256sum",
        "cut",
        "mkdir",
        "mktemp",
        "rm",
        "install",
        "uname",
        "git",
        "cat",
        "cp",
        "env",
        "dirname",
        "basename",
        "sed",
    ] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .unwrap();
        let at = String::from_utf8_lossy(&found.stdout).trim().to_string();
        assert!(!at.is_empty(), "{t} is not installed");
        std::os::unix::fs::symlink(&at, tools.join(t)).unwrap_or_else(|e| panic!("linking {t}: {e}"));
    }
    format!("{}:{}", extra.display(), tools.display())
}

#[test]
fn jobs_install_the_checked_release_binary_else_build_with_cargo() {
    let tmp = tempfile::tempdir().unwrap();
    let v = generated(tmp.path(), None);
    let step = v[".stackci"]["before_script"][0].as_str().unwrap().to_string();
    let vars = &v[".stackci"]["variables"];
    assert_eq!(vars["STACKCI_INSTALL_REPOSITORY"], "my-org/stackci");
    let version = vars["STACKCI_INSTALL_VERSION"].as_str().unwrap().to_string();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));

    // The release: the stackci under test, packed as a release is, with its sha256.
    let target = match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-gnu",
        "aarch64" => "aarch64-unknown-linux-gnu",
        other => panic!("no release binary for {other}: this test needs Linux x86_64 or aarch64"),
    };
    let releases = tmp.path().join("releases");
    let dir = releases.join(format!("v{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let payload = tmp.path().join("payload");
    std::fs::create_dir_all(&payload).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_stackci"), payload.join("stackci")).unwrap();
    let asset = format!("stackci-{target}.tar.gz");
    ok(Command::new("tar")
        .arg("-czf")
        .arg(dir.join(&asset))
        .arg("-C")
        .arg(&payload)
        .arg("stackci"));
    let sum = Digest::of(&std::fs::read(dir.join(&asset)).unwrap()).hex();
    let sha = dir.join(format!("{asset}.sha256"));
    std::fs::write(&sha, format!("{sum}  {asset}\n")).unwrap();
    let server = Server::start(&releases);

    // A fake cargo that records how it was called and "builds" stackci where asked.
    let fake = tmp.path().join("fake");
    script(
        &fake.join("cargo"),
        &format!(
            "#!/bin/sh\necho \"$*\" > {calls}\nroot=\"$4\"\nmkdir -p \"$root/bin\" && cp {bin} \"$root/bin/stackci\"\n",
            calls = tmp.path().join("cargo.calls").display(),
            bin = env!("CARGO_BIN_EXE_stackci"),
        ),
    );
    let path = bare_path(tmp.path(), &fake);
    let run = |home: &Path| {
        let gh_path = home.join("github-path");
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -eo pipefail\n{step}\necho \"PATH=$PATH\""))
            .env_clear()
            .env("PATH", &path)
            .env("HOME", home)
            .env(
                "STACKCI_INSTALL_REPOSITORY",
                vars["STACKCI_INSTALL_REPOSITORY"].as_str().unwrap(),
            )
            .env("STACKCI_INSTALL_VERSION", &version)
            .env("STACKCI_RELEASE_URL", &server.url)
            .env("GITHUB_PATH", &gh_path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "the install step failed:\n{stdout}\n{stderr}");
        (stdout, stderr, std::fs::read_to_string(gh_path).unwrap_or_default())
    };

    let home = tmp.path().join("home1");
    let (stdout, stderr, gh) = run(&home);
    let installed = home.join(".stackci/bin/stackci");
    assert!(stdout.contains(&format!("stackci {version}")), "{stdout}\n{stderr}");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_stackci")).unwrap()
    );
    assert!(
        stdout.contains(&format!("PATH={}:", installed.parent().unwrap().display())),
        "{stdout}"
    );
    assert_eq!(gh.trim(), installed.parent().unwrap().display().to_string());
    assert!(
        !tmp.path().join("cargo.calls").exists(),
        "cargo ran although the release was good"
    );

    // A checksum that does not match: nothing of the download is installed; cargo builds it.
    std::fs::write(&sha, format!("{}  {asset}\n", "0".repeat(64))).unwrap();
    let home = tmp.path().join("home2");
    let (stdout, stderr, _) = run(&home);
    assert!(
        stderr.contains(&format!(
            "sha256 mismatch for {asset}: expected {}, got {sum}",
            "0".repeat(64)
        )),
        "{stderr}"
    );
    let calls = std::fs::read_to_string(tmp.path().join("cargo.calls")).unwrap();
    assert_eq!(
        calls.trim(),
        format!(
            "install --locked --root {} --git https://github.com/my-org/stackci --tag v{version} stackci",
            home.join(".stackci").display()
        )
    );
    assert!(stdout.contains(&format!("stackci {version}")), "{stdout}");

    // Already on PATH: nothing is downloaded or built.
    std::fs::remove_file(tmp.path().join("cargo.calls")).unwrap();
    let with_stackci = format!("{}:{path}", installed.parent().unwrap().display());
    let out = Command::new("bash")
        .arg("-c")
        .arg(&step)
        .env_clear()
        .env("PATH", &with_stackci)
        .env("HOME", tmp.path().join("home3"))
        .env("STACKCI_INSTALL_REPOSITORY", "my-org/stackci")
        .env("STACKCI_INSTALL_VERSION", &version)
        .env("STACKCI_RELEASE_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!tmp.path().join("home3/.stackci").exists());
    assert!(!tmp.path().join("cargo.calls").exists());
}

#[test]
fn spack_jobs_clone_spack_at_the_ref_when_the_runner_has_none() {
    let tmp = tempfile::tempdir().unwrap();
    // A Spack repository: a git repo whose bin/spack reports a version, tagged.
    let repo = tmp.path().join("spack-git");
    script(&repo.join("bin/spack"), "#!/bin/sh\necho 0.23.0.dev0\n");
    let git = |args: &[&str]| {
        ok(Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.email=t@example.invalid", "-c", "user.name=t"])
            .args(args))
    };
    git(&["init", "-q", "-b", "develop"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "spack"]);
    git(&["tag", "v0.23.0-test"]);
    script(&repo.join("bin/spack"), "#!/bin/sh\necho later\n");
    git(&["commit", "-qam", "later"]);

    let v = generated(tmp.path(), Some("v0.23.0-test"));
    let t = &v[".stackci-spack"];
    assert_eq!(
        t["variables"]["SPACK_REPO"],
        format!("file://{}", repo.display()).as_str()
    );
    assert_eq!(t["variables"]["SPACK_REF"], "v0.23.0-test");
    let step = t["before_script"][1].as_str().unwrap().to_string();
    let path = bare_path(tmp.path(), &tmp.path().join("none"));
    let run = |home: &Path, spack_ref: &str, gh_env: Option<&Path>| {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!(
                "set -eo pipefail\n{step}\necho \"SPACK_ROOT=$SPACK_ROOT\"\n\"$SPACK_ROOT/bin/spack\" --version"
            ))
            .env_clear()
            .env("PATH", &path)
            .env("HOME", home)
            .env("SPACK_REPO", t["variables"]["SPACK_REPO"].as_str().unwrap())
            .env("SPACK_REF", spack_ref);
        if let Some(f) = gh_env {
            cmd.env("GITHUB_ENV", f);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let home = tmp.path().join("home");
    let gh_env = tmp.path().join("github-env");
    let (code, stdout, stderr) = run(&home, "v0.23.0-test", Some(&gh_env));
    let clone: PathBuf = home.join(".stackci/spack");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        format!("SPACK_ROOT={}\n0.23.0.dev0\n", clone.display()),
        "{stderr}"
    );
    assert!(stderr.contains("cloning Spack"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&gh_env).unwrap(),
        format!("SPACK_ROOT={}\n", clone.display())
    );
    // The same ref again: the clone is reused; another ref: cloned again.
    let (code, _, stderr) = run(&home, "v0.23.0-test", None);
    assert_eq!(code, Some(0));
    assert!(!stderr.contains("cloning Spack"), "{stderr}");
    let (code, stdout, _) = run(&home, "develop", None);
    assert_eq!((code, stdout.lines().last()), (Some(0), Some("later")));
    // No Spack and nothing to clone: the job fails saying what to set.
    let (code, _, stderr) = run(&tmp.path().join("home2"), "", None);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("no Spack on this runner") && stderr.contains("SPACK_REF"),
        "{stderr}"
    );
}
