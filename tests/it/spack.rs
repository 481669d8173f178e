//! A Spack environment as a stack, with the real Spack: the demo's C packages as a Spack
//! package repository (tests/fixtures/spack/demo), concretized during the test run, then
//! `run`, `build` (one package alone, its dependencies from the mirror), `install` and
//! `image` (run under podman); and every bad input with one clear error, dependents
//! skipped and nothing pushed for what failed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common::spack::*;
use crate::common::*;

/// `stackci --stack PROJECT/stack.yaml --mirror M ARGS...` with the Spack peer's environment.
fn stackci_in(project: &Path, mirror: &str, args: &[&str]) -> Command {
    let mut cmd = stackci();
    with_spack(&mut cmd)
        .arg("--stack")
        .arg(project.join("stack.yaml"))
        .args(["--mirror", mirror])
        .args(args);
    cmd
}

/// `plan --json` as (name → status).
fn plan(project: &Path, mirror: &str) -> BTreeMap<String, String> {
    let out = ok(&mut stackci_in(project, mirror, &["plan", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `run --json` (expected to exit `code`) as (name → (outcome, detail)).
fn run_json(project: &Path, mirror: &str, code: i32) -> (BTreeMap<String, (String, String)>, String) {
    let out = output(&mut stackci_in(project, mirror, &["run", "--json"]));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "stackci run:\n{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let detail = match &p["detail"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (
                p["name"].as_str().unwrap().to_string(),
                (p["outcome"].as_str().unwrap().to_string(), detail),
            )
        })
        .collect();
    (packages, stderr)
}

/// The prefix directories in `store` (Spack's `bin/`, `.spack-db` and stackci's state left out).
fn prefixes(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && n != "bin")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `<name>-<version>-<hash>` of every spec named in `names`, from the lock.
fn tags(project: &Path, names: &[&str]) -> Vec<String> {
    let mut tags: Vec<String> = lock_specs(project)
        .into_iter()
        .filter(|(n, _, _)| names.contains(&n.as_str()))
        .map(|(n, v, h)| format!("{n}-{v}-{h}"))
        .collect();
    tags.sort();
    tags
}

#[test]
fn a_spack_environment_runs_builds_one_package_alone_installs_and_makes_a_runnable_image() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let project = spack_project(tmp.path(), &store, "");
    let mirror = format!("file://{}", tmp.path().join("mirror").display());

    // The lock is Spack's own: written by the Spack that runs, hashes are DAG hashes.
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join("env/spack.lock")).unwrap()).unwrap();
    assert_eq!(lock["spack"]["version"], spack_version().as_str());
    let specs = lock_specs(&project);
    let names: Vec<&str> = specs.iter().map(|s| s.0.as_str()).collect();
    for want in ["hello", "libreport", "libcrc", "crcgen", "gcc-runtime", "glibc"] {
        assert!(names.contains(&want), "{want} not in the lock: {names:?}");
    }
    let before = plan(&project, &mirror);
    assert_eq!(before["glibc"], "external");
    assert_eq!(before.values().filter(|s| *s == "build").count(), specs.len() - 1);

    // run: every spec is built by Spack, into <store>/<name>-<version>-<hash>, and pushed.
    let (outcomes, stderr) = run_json(&project, &mirror, 0);
    for (name, (outcome, _)) in &outcomes {
        let want = if name == "glibc" { "external" } else { "built" };
        assert_eq!(outcome, want, "{name}:\n{stderr}");
    }
    let built: Vec<&str> = names.iter().copied().filter(|n| *n != "glibc").collect();
    assert_eq!(prefixes(&store), tags(&project, &built));
    for (name, version, hash) in specs.iter().filter(|s| s.0 != "glibc") {
        let spec = store.join(format!("{name}-{version}-{hash}/.spack/spec.json"));
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&spec).unwrap()).unwrap();
        assert_eq!(json["spec"]["nodes"][0]["hash"], hash.as_str(), "{}", spec.display());
    }
    let hello_tag = tags(&project, &["hello"]).remove(0);
    let log = std::fs::read_to_string(project.join(format!(".stackci/logs/{hello_tag}.log"))).unwrap();
    assert!(log.contains("install --only package --no-add"), "{log}");
    assert!(log.contains("Successfully installed hello"), "{log}");
    let hello = store.join(&hello_tag).join("bin/hello");
    assert_eq!(ok(&mut Command::new(&hello)), HELLO);
    assert!(plan(&project, &mirror).values().all(|s| s != "build"));

    // build: one package alone, in an empty store: its build dependencies come from the
    // mirror (crcgen, only needed to build libcrc, does not), Spack builds hello only.
    std::fs::remove_dir_all(&store).unwrap();
    ok(&mut stackci_in(&project, &mirror, &["build", "hello", "--force"]));
    let log = std::fs::read_to_string(project.join(format!(".stackci/logs/{hello_tag}.log"))).unwrap();
    for dep in tags(&project, &["libreport", "libcrc", "gcc-runtime"]) {
        assert!(
            log.contains(&format!("stackci: dependency {dep}: unpacked from {mirror}")),
            "{dep} did not come from the mirror:\n{log}"
        );
    }
    assert_eq!(
        prefixes(&store),
        tags(&project, &["hello", "libreport", "libcrc", "gcc-runtime"]),
        "Spack built something besides hello"
    );
    assert_eq!(ok(&mut Command::new(&hello)), HELLO);

    // install: the runtime closure under a root, complete without the store.
    let root = tmp.path().join("root");
    ok(stackci_in(&project, &mirror, &["install", "hello", "--root"]).arg(&root));
    std::fs::remove_dir_all(&store).unwrap();
    let under = |t: &str| root.join(store.strip_prefix("/").unwrap()).join(t);
    let libs: Vec<String> = tags(&project, &["libreport", "libcrc", "gcc-runtime"])
        .iter()
        .map(|t| under(t).join("lib").display().to_string())
        .collect();
    let out = ok(Command::new(under(&hello_tag).join("bin/hello")).env("LD_LIBRARY_PATH", libs.join(":")));
    assert_eq!(out, HELLO);

    // image: base with glibc (external in the lock) + the closure's layers, run by podman.
    let base = glibc_base(tmp.path());
    let archive = tmp.path().join("hello.tar");
    let base_ref = format!("oci-layout:{}:base", base.display());
    let to = format!("docker-archive:{}:stackci-test/spack-hello:v1", archive.display());
    ok(&mut stackci_in(
        &project,
        &mirror,
        &["image", "hello", "--base", &base_ref, "--to", &to],
    ));
    assert_eq!(podman_run(&archive, "stackci-test/spack-hello:v1"), HELLO);
}

/// Replaces `from` by `to` in `file`, asserting it was there.
fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_failing_spack_install_and_a_dependency_spack_would_rebuild_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let project = spack_project(tmp.path(), &store, "");
    let mirror = format!("file://{}", tmp.path().join("mirror").display());
    let libreport_tag = tags(&project, &["libreport"]).remove(0);
    let hello_tag = tags(&project, &["hello"]).remove(0);

    // A failing `spack install` (libreport's recipe runs a make target that does not exist).
    let recipe = project.join("repo/packages/libreport/package.py");
    edit(&recipe, r#"make("check")"#, r#"make("no-such-target")"#);
    let (outcomes, stderr) = run_json(&project, &mirror, 1);
    let (outcome, detail) = &outcomes["libreport"];
    assert_eq!(outcome, "failed", "{stderr}");
    assert!(
        detail.starts_with(
            "spack install failed (exit status: 1): Error: ProcessError: Command exited with status 2: \
             'make' '-j2' 'no-such-target'; first error in the build log: make: *** No rule to make target \
             'no-such-target'.  Stop.; log: "
        ),
        "{detail}"
    );
    let kept = project.join(format!(".stackci/logs/{libreport_tag}.spack-build-out.txt"));
    assert!(detail.contains(&kept.display().to_string()), "{detail}");
    assert!(std::fs::read_to_string(&kept).unwrap().contains("no-such-target"));
    assert_eq!(
        outcomes["hello"],
        ("skipped".to_string(), format!("dependency `{libreport_tag}` failed"))
    );
    for name in ["gcc-runtime", "crcgen", "libcrc"] {
        assert_eq!(outcomes[name].0, "built", "{name}: independent packages still build");
    }
    let after = plan(&project, &mirror);
    assert_eq!(
        (after["libreport"].as_str(), after["hello"].as_str()),
        ("build", "build"),
        "nothing pushed"
    );

    // A dependency Spack does not count as installed: libcrc's prefix (trusted by its
    // receipt) lost its Spack metadata. Spack would rebuild it; stackci refuses.
    edit(&recipe, r#"make("no-such-target")"#, r#"make("check")"#);
    let libcrc = store.join(tags(&project, &["libcrc"]).remove(0));
    std::fs::remove_dir_all(libcrc.join(".spack")).unwrap();
    let (outcomes, stderr) = run_json(&project, &mirror, 1);
    let (outcome, detail) = &outcomes["libreport"];
    assert_eq!(outcome, "failed", "{stderr}");
    let libcrc_tag = libcrc.file_name().unwrap().to_string_lossy();
    assert!(
        detail.starts_with(&format!(
            "Spack would also build `{libcrc_tag}` to install `{libreport_tag}`: stackci builds one package per job"
        )),
        "{detail}"
    );
    assert_eq!(outcomes["hello"].0, "skipped");
    assert!(!store.join(&hello_tag).exists());
    let after = plan(&project, &mirror);
    assert_eq!(
        (after["libreport"].as_str(), after["hello"].as_str()),
        ("build", "build"),
        "nothing pushed"
    );
}

#[test]
fn wrong_unreadable_or_missing_spack_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let project = spack_project(tmp.path(), &store, "");
    let mirror = format!("file://{}", tmp.path().join("mirror").display());
    let lock = project.join("env/spack.lock");
    let version = spack_version();
    let original = std::fs::read_to_string(&lock).unwrap();
    let needle = format!("\"version\":\"{version}\"");
    assert!(
        original.contains(&needle),
        "the lock records no Spack version {version}"
    );

    // Another Spack wrote the lock: the root (gcc-runtime, everything links it) fails
    // saying so, the rest is skipped.
    edit(&lock, &needle, "\"version\":\"0.22.1\"");
    let (outcomes, _) = run_json(&project, &mirror, 1);
    let failed: Vec<&String> = outcomes
        .iter()
        .filter(|(_, o)| o.0 == "failed")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(failed, ["gcc-runtime"], "{outcomes:?}");
    for name in failed {
        let detail = &outcomes[name].1;
        assert!(
            detail.contains("was written by Spack 0.22.1, but the Spack found is") && detail.contains(&version),
            "{detail}"
        );
    }
    for name in ["crcgen", "libcrc", "libreport", "hello"] {
        assert_eq!(outcomes[name].0, "skipped", "{name}");
    }
    assert!(
        plan(&project, &mirror).values().all(|s| s != "cached"),
        "nothing pushed"
    );

    // An unreadable version: the stack does not load, the error names the lock's line.
    std::fs::write(&lock, original.replacen(&needle, "\"version\":\"unknown\"", 1)).unwrap();
    let out = output(&mut stackci_in(&project, &mirror, &["run"]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = original.lines().position(|l| l.contains(&needle)).unwrap() + 1;
    assert!(
        stderr.contains(&format!("env/spack.lock:{line}:"))
            && stderr
                .contains("unreadable Spack version in `spack.version`: `unknown` (expected a version like 0.22.1)"),
        "{stderr}"
    );
    std::fs::write(&lock, &original).unwrap();

    // No Spack: a `spack: root:` without one, or nothing set and none on PATH.
    let nowhere = tmp.path().join("no-spack");
    let yaml = project.join("stack.yaml");
    edit(
        &yaml,
        "spack: { env: env }",
        &format!("spack: {{ env: env, root: {} }}", nowhere.display()),
    );
    let (outcomes, _) = run_json(&project, &mirror, 1);
    assert_eq!(
        outcomes["gcc-runtime"].1,
        format!(
            "Spack not found: the stack's `spack: root:` is {}, which has no bin/spack",
            nowhere.display()
        )
    );
    assert_eq!(outcomes["hello"].0, "skipped");
    edit(
        &yaml,
        &format!("spack: {{ env: env, root: {} }}", nowhere.display()),
        "spack: { env: env }",
    );
    let mut cmd = stackci();
    cmd.env_remove("SPACK_ROOT")
        .env("PATH", "/usr/bin:/bin")
        .arg("--stack")
        .arg(&yaml)
        .args(["--mirror", &mirror, "run", "--json"]);
    let out = output(&mut cmd);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let detail = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "gcc-runtime")
        .map(|p| p["detail"].as_str().unwrap().to_string())
        .unwrap();
    assert!(
        detail.starts_with(
            "Spack not found: the stack sets no `spack: root:`, $SPACK_ROOT is not set, and no `spack` is on PATH (/usr/bin:/bin)"
        ),
        "{detail}"
    );
    assert!(
        plan(&project, &mirror).values().all(|s| s != "cached"),
        "nothing pushed"
    );
}
