//! `spack:` stacks and the lockfile's `spack` entry: what loads, and every error as shown.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::stack::{load, spack_env::DEFAULT_SPACK_GIT};

const HELLO: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const LIBZ: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const GLIBC: &str = "cccccccccccccccccccccccccccccccc";
const PY1: &str = "dddddddddddddddddddddddddddddddd";
const PY2: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

/// A lockfile (version 5) with the given `spack` entry (JSON, or nothing).
fn lock(spack: Option<&str>) -> String {
    let meta = spack.map(|s| format!("  \"spack\": {s},\n")).unwrap_or_default();
    format!(
        r#"{{
  "_meta": {{ "file-type": "spack-lockfile", "lockfile-version": 5, "specfile-version": 4 }},
{meta}  "roots": [{{ "hash": "{HELLO}", "spec": "hello" }}],
  "concrete_specs": {{
    "{HELLO}": {{ "name": "hello", "version": "1.0", "dependencies": [
      {{ "name": "libz", "hash": "{LIBZ}", "parameters": {{ "deptypes": ["build", "link"], "virtuals": [] }} }},
      {{ "name": "glibc", "hash": "{GLIBC}", "parameters": {{ "deptypes": ["link"], "virtuals": ["libc"] }} }}] }},
    "{LIBZ}": {{ "name": "libz", "version": "1.3", "dependencies": [] }},
    "{GLIBC}": {{ "name": "glibc", "version": "2.36", "external": {{ "path": "/usr" }} }},
    "{PY1}": {{ "name": "python", "version": "3.11", "dependencies": [] }},
    "{PY2}": {{ "name": "python", "version": "3.12", "dependencies": [] }}
  }}
}}
"#
    )
}

const META: &str = r#"{ "version": "0.22.1", "type": "git", "commit": "5fe93fee1eec46a0750bd340198bffcb92ff9eec" }"#;

struct Fixture(tempfile::TempDir);

impl Fixture {
    /// A directory with `envs/demo/spack.lock` (and spack.yaml).
    fn new(spack: Option<&str>) -> Fixture {
        let fx = Fixture(tempfile::tempdir().unwrap());
        fx.write("envs/demo/spack.lock", &lock(spack));
        fx.write("envs/demo/spack.yaml", "spack:\n  specs: [hello]\n");
        fx
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    fn stack(&self, yaml: &str) -> PathBuf {
        self.write("stack.yaml", yaml)
    }

    /// The error for `path`, shown relative to the fixture directory.
    fn error(&self, path: &Path) -> String {
        let e = load(path).expect_err("the stack should be rejected");
        e.to_string().replace(&format!("{}/", self.0.path().display()), "")
    }
}

#[test]
fn a_spack_section_takes_the_lock_and_every_other_section() {
    let fx = Fixture::new(Some(META));
    let path = fx.stack(
        r#"name: tutorial
store: /opt/tutorial
mirror: oci://registry.example.com/mirror
env: { FOO: bar }
timeout: 2h
spack:
  env: envs/demo
  root: tools/spack
  pass_env: [LM_LICENSE_FILE]
  install_flags: [--no-check-signature]
  ref: develop
images:
  hello:
    base: oci://registry.example.com/debian:12
    packages: [hello, "python-3.12-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"]
    entrypoint: [hello]
ci:
  gitlab: { tags: [big] }
status: { github: octo/stack }
"#,
    );
    let stack = load(&path).unwrap();
    let dir = fx.0.path();
    assert_eq!(stack.name, "tutorial");
    assert_eq!(stack.store, Path::new("/opt/tutorial"));
    assert_eq!(
        stack.dir, dir,
        "state and relative paths belong to the stack.yaml directory"
    );
    assert_eq!(stack.path, path);
    assert_eq!(stack.mirror.as_deref(), Some("oci://registry.example.com/mirror"));
    assert_eq!(stack.env["FOO"], "bar");
    assert_eq!(stack.ci.gitlab.tags, ["big"]);
    assert_eq!(stack.status.github.as_deref(), Some("octo/stack"));
    let hello = stack.find("hello").unwrap();
    assert_eq!(stack.packages[hello].hash, HELLO);
    assert_eq!(stack.packages[hello].timeout, Some(Duration::from_secs(7200)));
    assert_eq!(
        stack.prefix(hello),
        Path::new(&format!("/opt/tutorial/hello-1.0-{HELLO}"))
    );
    let glibc = stack.find("glibc").unwrap();
    assert_eq!(stack.packages[glibc].timeout, None, "externals are never built");
    let image = &stack.images["hello"];
    let py2 = stack.find(PY2).unwrap();
    assert_eq!(image.packages, [hello, py2]);
    let spack = stack.spack.as_ref().unwrap();
    assert_eq!(spack.dir, dir.join("envs/demo"));
    assert_eq!(spack.lock, dir.join("envs/demo/spack.lock"));
    assert_eq!(spack.version.as_deref(), Some("0.22.1"));
    assert_eq!(
        spack.commit.as_deref(),
        Some("5fe93fee1eec46a0750bd340198bffcb92ff9eec")
    );
    assert_eq!(spack.settings.root.as_deref(), Some(dir.join("tools/spack").as_path()));
    assert_eq!(spack.settings.pass_env, ["LM_LICENSE_FILE"]);
    assert_eq!(spack.settings.install_flags, ["--no-check-signature"]);
    assert_eq!(spack.git(), DEFAULT_SPACK_GIT);
    assert_eq!(spack.git_ref().as_deref(), Some("develop"));
}

#[test]
fn a_minimal_spack_section_and_a_bare_lock() {
    let fx = Fixture::new(Some(META));
    let stack = load(&fx.stack("spack: { env: envs/demo }\n")).unwrap();
    assert_eq!(stack.name, "demo", "named after the environment directory");
    assert_eq!(stack.store, Path::new(crate::stack::DEFAULT_STORE));
    let spack = stack.spack.as_ref().unwrap();
    assert_eq!(
        spack.git_ref().as_deref(),
        Some("5fe93fee1eec46a0750bd340198bffcb92ff9eec")
    );
    assert_eq!(spack.settings, Default::default());

    let bare = load(&fx.0.path().join("envs/demo/spack.lock")).unwrap();
    let spack = bare.spack.as_ref().unwrap();
    assert_eq!(spack.dir, fx.0.path().join("envs/demo"));
    assert_eq!(spack.version.as_deref(), Some("0.22.1"));
    assert_eq!(bare.packages.len(), 5);

    let old = Fixture::new(None);
    let stack = load(&old.0.path().join("envs/demo/spack.lock")).unwrap();
    assert_eq!(
        stack.spack.as_ref().unwrap().version,
        None,
        "version 4 files record no Spack"
    );
}

#[test]
fn spack_section_errors() {
    let fx = Fixture::new(Some(META));
    let cases: &[(&str, &str)] = &[
        (
            "name: t\nspack: { env: envs/demo }\npackages:\n  a: { version: '1', build: 'true' }\n",
            "stack.yaml:4:3: `packages:` and `spack:` exclude each other: a Spack stack's packages are the specs of its spack.lock",
        ),
        (
            "spack: { root: /opt/spack }\n",
            "stack.yaml:1:8: `spack:` needs `env:`, the directory holding the environment's spack.yaml and spack.lock",
        ),
        (
            "spack: { env: envs/nope }\n",
            "stack.yaml:1:15: spack env `envs/nope` is not a directory (looked for `envs/nope`)",
        ),
        (
            "spack:\n  env: envs\n",
            "stack.yaml:2:8: spack env `envs` has no spack.lock (looked for `envs/spack.lock`); concretize it first: spack -e envs concretize",
        ),
        (
            "spack:\n  env: envs/demo\n  pass_env: [OK, 'NOT-OK']\n",
            "stack.yaml:3:18: `spack: pass_env:` names `NOT-OK`, which is not an environment variable name",
        ),
        (
            "spack:\n  env: envs/demo\n  git: https://user:secret@example.com/spack.git\n",
            "stack.yaml:3:8: `spack: git:` must be a repository URL without credentials (CI jobs print it)",
        ),
        (
            "spack:\n  env: envs/demo\n  ref: 'two words'\n",
            "stack.yaml:3:8: `spack: ref: two words` is not a git commit, tag or branch",
        ),
        (
            "spack: { env: envs/demo }\nimages:\n  py:\n    packages: [python]\n",
            "stack.yaml:4:16: image `py`: 2 specs of the lockfile are named `python`: name one by its tag (`name-version-hash`) or hash",
        ),
        (
            "spack: { env: envs/demo }\nimages:\n  c:\n    packages: [glibc]\n",
            "stack.yaml:4:16: image `c`: `glibc` is external (provided by the system): the image's base must hold it",
        ),
        (
            "spack: { env: envs/demo }\nimages:\n  c:\n    packages: [helo]\n",
            "stack.yaml:4:16: image `c`: unknown package `helo` (did you mean `hello`?)",
        ),
        (
            "name: Bad\nspack: { env: envs/demo }\n",
            "stack.yaml:1:7: invalid stack name `Bad`",
        ),
    ];
    for (yaml, want) in cases {
        let got = fx.error(&fx.stack(yaml));
        assert!(got.starts_with(want), "for\n{yaml}\ngot:  {got}\nwant: {want}");
    }
    let got = fx.error(&fx.stack("spack: { env: envs/demo, roots: [a] }\n"));
    assert!(got.starts_with("stack.yaml:1:") && got.contains("roots"), "{got}");
}

#[test]
fn lockfile_errors_name_the_lockfile() {
    for (meta, want) in [
        (
            r#"{ "type": "git" }"#,
            "unreadable Spack version in `spack.version`: missing (expected a version like 0.22.1)",
        ),
        (
            r#"{ "version": "unknown" }"#,
            "unreadable Spack version in `spack.version`: `unknown` (expected a version like 0.22.1)",
        ),
        (
            r#"{ "version": 22 }"#,
            "unreadable Spack version in `spack.version`: `22` is not a string (expected a version like 0.22.1)",
        ),
        (
            r#"{ "version": "0.22.1", "commit": "not hex" }"#,
            "unreadable Spack commit in `spack.commit`: `\"not hex\"` (expected hexadecimal)",
        ),
    ] {
        let fx = Fixture::new(Some(meta));
        let got = fx.error(&fx.stack("spack: { env: envs/demo }\n"));
        assert!(got.starts_with("envs/demo/spack.lock:3:"), "{got}");
        assert!(got.ends_with(want), "{got}\nwant: {want}");
        let bare = fx.error(&fx.0.path().join("envs/demo/spack.lock"));
        assert!(bare.ends_with(want), "{bare}");
    }
}
