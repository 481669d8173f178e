//! The CI entry points a user starts from (issue 14): the composite action's arguments and
//! outputs (`action.yml`), and the GitLab component's install step (`templates/stackci.yml`),
//! each run for real with bash, as the runner runs them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;

fn yaml(rel: &str) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(repo().join(rel)).unwrap()).unwrap()
}

/// The `run:` script of the action's step `id`.
fn action_step(id: &str) -> String {
    let action = yaml("action.yml");
    action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .and_then(|s| s["run"].as_str())
        .unwrap_or_else(|| panic!("action.yml has no step `{id}` with a run script"))
        .to_string()
}

/// A directory holding a `stackci` that writes each argument it gets, NUL-terminated, to `args`.
fn fake_stackci(dir: &Path) -> PathBuf {
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("stackci");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > '{}'\n",
            dir.join("args").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn received(dir: &Path) -> Vec<String> {
    let raw = std::fs::read(dir.join("args")).unwrap();
    raw.split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8(a.to_vec()).unwrap())
        .collect()
}

fn run_step(script: &str, dir: &Path, path: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new("bash");
    cmd.arg("-e")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("STACKCI_STACK")
        .env_remove("STACKCI_MIRROR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    output(&mut cmd)
}

#[test]
fn action_args_reach_stackci_one_per_line_unsplit_and_unexpanded() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = fake_stackci(tmp.path());
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let script = action_step("run");
    let args = "image\n  demo  \n\n--to\noci-layout:/tmp/a dir with spaces:v1\n$(touch pwned) `touch pwned2` *\n'quoted' \"double\"\n";
    let out = run_step(
        &script,
        tmp.path(),
        &path,
        &[("INPUT_ARGS", args), ("INPUT_COMMAND", "ignored when args is set")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        received(tmp.path()),
        [
            "image",
            "demo",
            "--to",
            "oci-layout:/tmp/a dir with spaces:v1",
            "$(touch pwned) `touch pwned2` *",
            "'quoted' \"double\"",
        ]
    );
    assert!(!tmp.path().join("pwned").exists() && !tmp.path().join("pwned2").exists());

    // The simple form still splits on blanks, without globbing.
    let out = run_step(
        &script,
        tmp.path(),
        &path,
        &[("INPUT_ARGS", ""), ("INPUT_COMMAND", "plan  --json *")],
    );
    assert!(out.status.success());
    assert_eq!(received(tmp.path()), ["plan", "--json", "*"]);
}

#[test]
fn action_outputs_are_written_by_the_commands() {
    // Every output the action maps from its run step is one stackci writes.
    let action = yaml("action.yml");
    let mapped: Vec<String> = action["outputs"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|o| o["value"].as_str())
        .filter_map(|v| v.strip_prefix("${{ steps.run.outputs."))
        .map(|v| v.trim_end_matches(" }}").to_string())
        .collect();
    assert_eq!(
        mapped,
        [
            "image-digest",
            "plan-build",
            "plan-cached",
            "plan-external",
            "pipeline-url"
        ]
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stack");
    let stack = write_stack(
        &dir,
        &tmp.path().join("store"),
        &[
            ("a", &[], "mkdir -p \"$PREFIX/bin\"\necho a > \"$PREFIX/bin/a\""),
            ("b", &["a"], "mkdir -p \"$PREFIX/bin\""),
        ],
    );
    let mut text = std::fs::read_to_string(&stack).unwrap();
    text.push_str("images:\n  app:\n    packages: [b]\n");
    std::fs::write(&stack, text).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_stackci")).parent().unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let script = action_step("run");
    let outputs = tmp.path().join("github-output");
    let step = |args: &str| {
        let out = run_step(
            &script,
            &dir,
            &path,
            &[("INPUT_ARGS", args), ("GITHUB_OUTPUT", outputs.to_str().unwrap())],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    step("run");
    ok(stackci().current_dir(&dir).args(["plan"]));
    step("plan\nb");
    let layout = tmp.path().join("out dir");
    step(&format!("image\napp\n--to\noci-layout:{}:v1", layout.display()));
    let written = std::fs::read_to_string(&outputs).unwrap();
    for (k, v) in [("plan-build", "0"), ("plan-cached", "2"), ("plan-external", "0")] {
        assert!(written.contains(&format!("{k}={v}\n")), "{k}: {written}");
    }
    let digest = written
        .lines()
        .find_map(|l| l.strip_prefix("image-digest="))
        .expect("image-digest written");
    let index: Value = serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest);
}

/// The component's install script (the `before_script` entry that installs stackci).
fn component_install_script() -> String {
    let component = std::fs::read_to_string(repo().join("templates/stackci.yml")).unwrap();
    let body = component.split_once("\n---\n").unwrap().1;
    let jobs: Value = serde_saphyr::from_str(body).unwrap();
    jobs[".stackci-component"]["before_script"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|s| s.contains("command -v stackci"))
        .expect("an install step")
        .to_string()
}

#[test]
fn component_installs_the_release_binary_only_when_its_checksum_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    std::fs::create_dir_all(&release).unwrap();
    let target = match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-gnu",
        "aarch64" => "aarch64-unknown-linux-gnu",
        other => panic!("no release target for {other}"),
    };
    // A release as .github/workflows/release.yml makes one.
    let asset = format!("stackci-{target}.tar.gz");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_stackci")).parent().unwrap();
    ok(Command::new("tar")
        .arg("-czf")
        .arg(release.join(&asset))
        .arg("-C")
        .arg(bin_dir)
        .arg("stackci"));
    ok(Command::new("sh")
        .arg("-c")
        .arg(format!("sha256sum {asset} > {asset}.sha256"))
        .current_dir(&release));
    let files = Server::start(&release);
    let script = component_install_script();
    let install = |root: &Path, repo: &str, url: Option<String>| {
        let mut env = vec![
            ("STACKCI_INSTALL_VERSION", "0.1.0".to_string()),
            ("STACKCI_INSTALL_REPOSITORY", repo.to_string()),
            ("STACKCI_INSTALL_ROOT", root.display().to_string()),
        ];
        if let Some(u) = url {
            env.push(("STACKCI_INSTALL_URL", u));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = run_step(&script, tmp.path(), "/usr/bin:/bin", &env);
        (out.status.success(), text_of(&out))
    };
    let url = files.url.clone();

    let root = tmp.path().join("root");
    let (ok1, log) = install(&root, "acme/stackci", Some(url.clone()));
    assert!(ok1, "{log}");
    assert!(log.contains(&format!("stackci {}", env!("CARGO_PKG_VERSION"))), "{log}");
    assert!(root.join("bin/stackci").exists());

    // A tampered checksum file: refused, nothing installed.
    std::fs::write(
        release.join(format!("{asset}.sha256")),
        format!("{}  {asset}\n", "0".repeat(64)),
    )
    .unwrap();
    let root2 = tmp.path().join("root2");
    let (ok2, log) = install(&root2, "acme/stackci", Some(url));
    assert!(!ok2);
    assert!(log.contains(&format!("sha256 mismatch for {asset}")), "{log}");
    assert!(!root2.join("bin/stackci").exists());

    // Nowhere to install from: said so.
    let (ok3, log) = install(&tmp.path().join("root3"), "", None);
    assert!(!ok3);
    assert!(log.contains("set the component's repository input"), "{log}");
}

fn text_of(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
