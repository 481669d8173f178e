//! End-to-end: `stackci run`, `plan`, `install` and `index` on real builds with a file mirror.

mod concurrency;
mod procs;

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn tag_of(plan: &[(String, String)], name: &str) -> String {
    plan.iter()
        .map(|(t, _)| t)
        .find(|t| t.starts_with(&format!("{name}-")))
        .unwrap_or_else(|| panic!("no {name} in plan"))
        .clone()
}

fn layer_digests(mirror: &Path) -> Vec<String> {
    let index: serde_json::Value = serde_json::from_slice(&fs::read(mirror.join("index.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        let hex = m["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(mirror.join("blobs/sha256").join(hex)).unwrap()).unwrap();
        let own = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string();
        out.push(format!(
            "{} {own}",
            m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap()
        ));
    }
    out.sort();
    out
}

#[test]
fn demo_builds_installs_and_is_read_by_skopeo_and_umoci() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let demo = demo_copy(tmp.path(), &store);
    let mirror = tmp.path().join("mirror");
    let m = format!("file://{}", mirror.display());

    let plan = plan_statuses(&ok(stackci()
        .current_dir(&demo)
        .args(["--mirror", &m, "plan", "--json"])));
    assert_eq!(plan.len(), 5);
    assert!(plan.iter().all(|(_, s)| s == "build"), "{plan:?}");

    ok(stackci().current_dir(&demo).args(["--mirror", &m, "run", "-j", "2"]));
    let hello_tag = tag_of(&plan, "hello");
    let hello = store.join(&hello_tag).join("bin/hello");
    assert_eq!(ok(&mut Command::new(&hello)), HELLO);

    // Everything cached now: a second run builds nothing.
    let plan2 = plan_statuses(&ok(stackci()
        .current_dir(&demo)
        .args(["--mirror", &m, "plan", "--json"])));
    assert!(plan2.iter().all(|(_, s)| s == "cached"), "{plan2:?}");
    let out = output(stackci().current_dir(&demo).args(["--mirror", &m, "run"]));
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("0 built, 5 cached"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The mirror is an OCI image layout that skopeo and umoci read.
    require("skopeo");
    require("umoci");
    let inspect = ok(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:{hello_tag}", mirror.display())));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Labels"]["dev.stackci.package"], "hello");
    assert_eq!(
        v["Layers"].as_array().unwrap().len(),
        3,
        "libcrc, libreport, hello: {inspect}"
    );
    let bundle = tmp.path().join("bundle");
    ok(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:{hello_tag}", mirror.display()))
        .arg(&bundle));
    let unpacked = bundle
        .join("rootfs")
        .join(store.strip_prefix("/").unwrap())
        .join(&hello_tag)
        .join("bin/hello");
    assert_eq!(fs::read(&unpacked).unwrap(), fs::read(&hello).unwrap());

    // install: the runtime closure under a fresh root, byte-identical to the store.
    let root = tmp.path().join("root");
    ok(stackci()
        .current_dir(&demo)
        .args(["--mirror", &m, "install", "hello", "--root"])
        .arg(&root));
    let installed = root.join(store.strip_prefix("/").unwrap());
    for name in ["hello", "libreport", "libcrc"] {
        assert!(installed.join(tag_of(&plan, name)).is_dir(), "{name} not installed");
    }
    assert!(
        !installed.join(tag_of(&plan, "crcgen")).exists(),
        "build-only dependency installed"
    );
    assert_eq!(
        fs::read(installed.join(&hello_tag).join("bin/hello")).unwrap(),
        fs::read(&hello).unwrap()
    );

    // index: a lost index.json is rebuilt from the manifests.
    let before = layer_digests(&mirror);
    fs::remove_file(mirror.join("index.json")).unwrap();
    ok(stackci().current_dir(&demo).args(["--mirror", &m, "index"]));
    assert_eq!(layer_digests(&mirror), before);
}

#[test]
fn two_builds_in_fresh_directories_give_identical_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mut results = Vec::new();
    for n in 0..2 {
        let dir = tmp.path().join(format!("checkout{n}"));
        let demo = demo_copy(&dir, &store);
        let mirror = dir.join("mirror");
        ok(stackci()
            .current_dir(&demo)
            .args(["--mirror"])
            .arg(format!("file://{}", mirror.display()))
            .args(["run", "-j", "2"]));
        results.push(layer_digests(&mirror));
        fs::remove_dir_all(&store).unwrap();
    }
    assert_eq!(results[0].len(), 5);
    assert_eq!(results[0], results[1]);
}

#[test]
fn failure_skips_dependents_and_keeps_building_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let stack = write_stack(
        &tmp.path().join("s"),
        &store,
        &[
            ("bad", &[], "echo about to fail\nexit 3"),
            ("needsbad", &["bad"], "touch \"$PREFIX/x\""),
            ("good", &[], "mkdir -p \"$PREFIX/bin\"\necho ok > \"$PREFIX/bin/good\""),
        ],
    );
    let out = output(stackci().arg("--stack").arg(&stack).args(["run", "--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcome = |n: &str| {
        v["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .unwrap()["outcome"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(outcome("bad"), "failed");
    assert_eq!(outcome("needsbad"), "skipped");
    assert_eq!(outcome("good"), "built");
    let log = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bad")
        .unwrap()["log"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(fs::read_to_string(&log).unwrap().contains("about to fail"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&log) || stderr.contains("log:"), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "control characters in non-terminal output: {stderr:?}"
    );
}

/// `run --json` is the shape docs/json.md documents: one run with every outcome but
/// `external` (cached, built, failed, skipped). Temporary paths, hashes and build times
/// vary from run to run and are filtered.
#[test]
fn run_json_is_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let stack = write_stack(
        &tmp.path().join("s"),
        &tmp.path().join("store"),
        &[
            ("early", &[], "touch \"$PREFIX/early\""),
            ("bad", &[], "echo about to fail\nexit 3"),
            ("needsbad", &["bad"], "touch \"$PREFIX/x\""),
            ("good", &["early"], "touch \"$PREFIX/good\""),
        ],
    );
    ok(stackci().arg("--stack").arg(&stack).args(["run", "early"]));
    let out = output(stackci().arg("--stack").arg(&stack).args(["run", "--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut hashes = Vec::new();
    for p in v["packages"].as_array_mut().unwrap() {
        hashes.push((
            p["hash"].as_str().unwrap().to_string(),
            format!("[HASH:{}]", p["name"].as_str().unwrap()),
        ));
        if p["outcome"] == "built" {
            assert!(p["detail"].as_f64().unwrap() > 0.0, "{p}");
            p["detail"] = "[SECONDS]".into();
        }
    }
    let mut text = serde_json::to_string_pretty(&v).unwrap();
    for (hash, name) in hashes {
        text = text.replace(&hash, &name);
    }
    let text = text.replace(&tmp.path().display().to_string(), "[TMP]");
    insta::assert_snapshot!(text);
}

#[test]
fn recipes_get_a_clean_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let stack = write_stack(
        &tmp.path().join("s"),
        &store,
        &[
            (
                "dep-one",
                &[],
                "mkdir -p \"$PREFIX/bin\" \"$PREFIX/lib/pkgconfig\" \"$PREFIX/include\"",
            ),
            ("top", &["dep-one"], "env | sort > \"$PREFIX/env.txt\""),
        ],
    );
    let mut cmd = stackci();
    cmd.arg("--stack")
        .arg(&stack)
        .args(["run", "--build-jobs", "3"])
        .env("LEAKED_SECRET", "nope")
        .env("SOURCE_DATE_EPOCH", "1700000000");
    ok(&mut cmd);
    let top = fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("top-"))
        .unwrap();
    let dep = fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("dep-one-"))
        .unwrap();
    let env = fs::read_to_string(top.join("env.txt")).unwrap();
    let has = |line: String| assert!(env.lines().any(|l| l == line), "missing `{line}` in\n{env}");
    has(format!("PREFIX={}", top.display()));
    has(format!("DEP_ONE_PREFIX={}", dep.display()));
    has("JOBS=3".into());
    has("SOURCE_DATE_EPOCH=1700000000".into());
    has(format!("CPATH={}/include", dep.display()));
    has(format!("LIBRARY_PATH={}/lib", dep.display()));
    has(format!("LD_LIBRARY_PATH={}/lib", dep.display()));
    assert!(
        env.contains(&format!("PKG_CONFIG_PATH={}/lib/pkgconfig", dep.display())),
        "{env}"
    );
    assert!(env.contains(&format!("PATH={}/bin:", dep.display())), "{env}");
    assert!(
        !env.contains("LEAKED_SECRET"),
        "the caller's environment leaked into the recipe:\n{env}"
    );
}

#[test]
fn concurrent_runs_into_one_mirror_lose_no_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mirror = format!("file://{}", tmp.path().join("mirror").display());
    let names: Vec<String> = (0..24).map(|i| format!("p{i:02}")).collect();
    let pkgs: Vec<(&str, &[&str], &str)> = names
        .iter()
        .map(|n| (n.as_str(), &[][..], "echo $STACKCI_PACKAGE > \"$PREFIX/name\""))
        .collect();
    let stack = write_stack(&tmp.path().join("s"), &store, &pkgs);
    let children: Vec<_> = (0..2)
        .map(|half| {
            let mine: Vec<&String> = names.iter().skip(half).step_by(2).collect();
            stackci()
                .arg("--stack")
                .arg(&stack)
                .args(["--mirror", &mirror, "run", "-j", "4"])
                .args(mine)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let plan = plan_statuses(&ok(stackci()
        .arg("--stack")
        .arg(&stack)
        .args(["--mirror", &mirror, "plan", "--json"])));
    assert_eq!(plan.len(), 24);
    assert!(plan.iter().all(|(_, s)| s == "cached"), "lost index entries: {plan:?}");
}

#[test]
fn corrupt_blob_is_refused_by_install_and_nothing_is_unpacked() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let stack = write_stack(
        &tmp.path().join("s"),
        &store,
        &[(
            "one",
            &[],
            "mkdir -p \"$PREFIX/bin\"\nhead -c 100000 /dev/urandom > \"$PREFIX/bin/data\"",
        )],
    );
    let mirror = tmp.path().join("mirror");
    let m = format!("file://{}", mirror.display());
    ok(stackci().arg("--stack").arg(&stack).args(["--mirror", &m, "run"]));
    let layer = layer_digests(&mirror)[0]
        .split(' ')
        .nth(1)
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let blob = mirror.join("blobs/sha256").join(&layer);
    let mut bytes = fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&blob, bytes).unwrap();
    let root = tmp.path().join("root");
    let out = output(
        stackci()
            .arg("--stack")
            .arg(&stack)
            .args(["--mirror", &m, "install", "one", "--root"])
            .arg(&root),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&layer[..12]) && stderr.contains("does not match"),
        "{stderr}"
    );
    let installed = root.join(store.strip_prefix("/").unwrap());
    let leftovers: Vec<_> = fs::read_dir(&installed)
        .map(|d| d.map(|e| e.unwrap().file_name()).filter(|n| n != ".stackci").collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "install left {leftovers:?}");
}

#[test]
fn build_fetches_dependencies_from_the_mirror_like_a_ci_job() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let demo = demo_copy(tmp.path(), &store);
    let m = format!("file://{}", tmp.path().join("mirror").display());
    for name in ["crcgen", "libcrc", "libreport"] {
        ok(stackci().current_dir(&demo).args(["--mirror", &m, "build", name]));
    }
    // A fresh job: nothing in the store, dependencies come from the mirror.
    std::fs::remove_dir_all(&store).unwrap();
    ok(stackci().current_dir(&demo).args(["--mirror", &m, "build", "hello"]));
    let plan = plan_statuses(&ok(stackci()
        .current_dir(&demo)
        .args(["--mirror", &m, "plan", "--json"])));
    assert_eq!(
        ok(&mut Command::new(store.join(tag_of(&plan, "hello")).join("bin/hello"))),
        HELLO
    );
    assert!(
        !store.join(tag_of(&plan, "crcgen")).exists(),
        "a build-only dependency of a dependency was unpacked"
    );
    let out = output(stackci().current_dir(&demo).args(["--mirror", &m, "build", "hello"]));
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to do"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stale = output(stackci().current_dir(&demo).args(["--mirror", &m, "build", "crcsum"]));
    assert!(
        stale.status.success(),
        "crcsum's build-only dependency libcrc is in the mirror"
    );
}
