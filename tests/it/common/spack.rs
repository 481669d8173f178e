//! The real Spack the Spack tests drive (set up by scripts/install-test-deps.sh, checked by
//! tests/peers/spack.sh) and the demo environment (tests/fixtures/spack/demo: the demo's C
//! packages as a Spack package repository) concretized with it once per test run, so
//! every lockfile the tests use is genuine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{copy_dir, ok, repo};

/// The Spack peer's environment (`SPACK_ROOT`, user config and cache), from
/// `tests/peers/spack.sh env`; panics with the script's reason when there is no usable Spack.
pub fn spack_vars() -> &'static [(String, String)] {
    static VARS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    VARS.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("tests/peers/spack.sh"))
            .arg("env")
            .output()
            .expect("running tests/peers/spack.sh");
        assert!(
            out.status.success(),
            "no Spack for the tests: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| k.starts_with("SPACK_"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

/// The Spack installation's root.
pub fn spack_root() -> PathBuf {
    spack_vars()
        .iter()
        .find(|(k, _)| k == "SPACK_ROOT")
        .map(|(_, v)| PathBuf::from(v))
        .expect("tests/peers/spack.sh printed no SPACK_ROOT")
}

/// `cmd` with the Spack peer's environment: `SPACK_ROOT` (so stackci finds Spack), its own
/// user configuration (the compilers it found) and cache.
pub fn with_spack(cmd: &mut Command) -> &mut Command {
    for (k, v) in spack_vars() {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the peer's `spack ARGS...` (with its environment) and returns stdout.
pub fn spack(args: &[&str]) -> String {
    ok(with_spack(&mut Command::new(spack_root().join("bin/spack"))).args(args))
}

/// The Spack version the peer runs (`spack --version`, first word).
pub fn spack_version() -> String {
    spack(&["--version"])
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A copy of tests/fixtures/spack/demo whose environment (`env/`) the real Spack
/// concretized, made once per test run; tests copy it ([`spack_project`]).
pub fn concretized_demo() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("spack-demo-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        copy_dir(&repo().join("tests/fixtures/spack/demo"), &dir);
        let env = dir.join("env");
        spack(&["-e", env.to_str().unwrap(), "concretize"]);
        assert!(env.join("spack.lock").is_file(), "spack concretize wrote no spack.lock");
        dir
    })
}

/// A project in `dir/project`: the concretized demo environment (`env/`, `repo/`,
/// `sources/`) and a stack.yaml naming it, with `store`, an image `hello` of the `hello`
/// package on `base`, and `extra` appended (more top-level sections).
pub fn spack_project(dir: &Path, store: &Path, extra: &str) -> PathBuf {
    let project = dir.join("project");
    copy_dir(concretized_demo(), &project);
    let yaml = format!(
        "name: spackdemo\nstore: {}\nspack: {{ env: env }}\nimages:\n  hello:\n    packages: [hello]\n    env: {{ LANG: C.UTF-8 }}\n    entrypoint: [hello]\n{extra}",
        store.display()
    );
    std::fs::write(project.join("stack.yaml"), yaml).unwrap();
    project
}

/// The packages of the demo environment's lock: `(name, version, hash)` of each spec.
pub fn lock_specs(project: &Path) -> Vec<(String, String, String)> {
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join("env/spack.lock")).unwrap()).unwrap();
    lock["concrete_specs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(hash, s)| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["version"].as_str().unwrap().to_string(),
                hash.clone(),
            )
        })
        .collect()
}
