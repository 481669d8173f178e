//! Layered mirrors (`--upstream`, `STACKCI_UPSTREAMS`, `upstreams:`): a pull request's mirror
//! over the main one. `plan` counts what an upstream holds as cached and says where; `run`
//! and `build` push only the rest, to `--mirror`, each manifest complete there (skopeo
//! copies it out of the PR mirror alone); `install` reads through the chain; within one
//! registry the upstream's blobs are mounted, not uploaded.

use crate::common::registry::Peer;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// `a` ← `b` ← `c`, each writing one file; `c_says` changes `c` (and only `c`'s hash).
fn chain_stack(dir: &Path, store: &Path, c_says: &str) -> PathBuf {
    write_stack(
        dir,
        store,
        &[
            ("a", &[], "echo a > \"$PREFIX/a.txt\""),
            ("b", &["a"], "echo b > \"$PREFIX/b.txt\""),
            ("c", &["b"], &format!("echo {c_says} > \"$PREFIX/c.txt\"")),
        ],
    )
}

/// `plan --json` packages as (name, status, found_in).
fn plan(cmd: &mut Command) -> Vec<(String, String, Option<String>)> {
    let v: serde_json::Value = serde_json::from_str(&ok(cmd.args(["plan", "--json"]))).unwrap();
    v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["status"].as_str().unwrap().to_string(),
                p["found_in"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn tags_of(layout: &Path) -> Vec<String> {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut tags: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect();
    tags.sort();
    tags
}

/// `skopeo copy` of `from` into a fresh layout: reads the manifest, config and every layer.
fn skopeo_copies(from: &str, into: &Path, extra: &[&str]) {
    require("skopeo");
    ok(Command::new("skopeo")
        .arg("copy")
        .args(extra)
        .arg(from)
        .arg(format!("oci:{}:copied", into.display())));
}

#[test]
fn a_pr_mirror_over_file_main_gets_only_what_changed_and_stands_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let main = tmp.path().join("main");
    let pr = tmp.path().join("pr");
    let main_url = format!("file://{}", main.display());
    let pr_url = format!("file://{}", pr.display());

    let base = chain_stack(&tmp.path().join("base"), &store, "c1");
    ok(stackci().arg("--stack").arg(&base).args(["--mirror", &main_url, "run"]));
    let main_tags = tags_of(&main);
    assert_eq!(main_tags.len(), 3);

    // The PR changes `c`: `a` and `b` are cached in main, `c` must be built.
    let changed = chain_stack(&tmp.path().join("pr-stack"), &store, "c2");
    let with_upstream = || {
        let mut cmd = stackci();
        cmd.arg("--stack")
            .arg(&changed)
            .args(["--mirror", &pr_url, "--upstream", &main_url]);
        cmd
    };
    let planned = plan(&mut with_upstream());
    assert_eq!(
        planned,
        [
            ("a".into(), "cached".into(), Some(main_url.clone())),
            ("b".into(), "cached".into(), Some(main_url.clone())),
            ("c".into(), "build".into(), None),
        ]
    );
    let table = ok(with_upstream().arg("plan"));
    assert!(
        table.contains("1 to build, 2 cached (2 in upstreams), 0 external")
            && table.contains(&format!("upstreams: {main_url}")),
        "{table}"
    );

    let out = output(with_upstream().arg("run"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 built, 2 cached"), "{stderr}");
    let pr_tags = tags_of(&pr);
    assert_eq!(
        pr_tags.len(),
        1,
        "only the changed package goes to the PR mirror: {pr_tags:?}"
    );
    assert!(pr_tags[0].starts_with("c-1.0-"));
    assert_eq!(tags_of(&main), main_tags, "the upstream is never written");

    // The PR mirror holds every blob its manifest names: skopeo copies it out alone.
    skopeo_copies(
        &format!("oci:{}:{}", pr.display(), pr_tags[0]),
        &tmp.path().join("out"),
        &[],
    );
    // ... and stackci's own check agrees.
    ok(stackci().args(["mirror", "verify", &pr_url]));

    // Now everything is cached, `c` in the PR mirror itself.
    let planned = plan(&mut with_upstream());
    assert_eq!(planned[2], ("c".into(), "cached".into(), Some(pr_url.clone())));

    // `build` of a package an upstream holds does nothing.
    let said = output(with_upstream().args(["build", "a"]));
    assert!(
        String::from_utf8_lossy(&said.stderr).contains("nothing to do"),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
    assert_eq!(tags_of(&pr).len(), 1);

    // install reads through the chain: `a` comes from main, `c` from the PR mirror.
    let root = tmp.path().join("root");
    ok(with_upstream().args(["install", "a", "c", "--root"]).arg(&root));
    let under = root.join(store.strip_prefix("/").unwrap());
    let prefix = |name: &str| {
        std::fs::read_dir(&under)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{name}-1.0-"))
            })
            .unwrap_or_else(|| panic!("{name} is not installed under {}", under.display()))
    };
    assert_eq!(std::fs::read_to_string(prefix("c").join("c.txt")).unwrap(), "c2\n");
    assert_eq!(std::fs::read_to_string(prefix("a").join("a.txt")).unwrap(), "a\n");

    // image reads through the chain too: `a` is only in main.
    let text = std::fs::read_to_string(&changed).unwrap();
    std::fs::write(
        &changed,
        format!("{text}images:\n  only-a:\n    base: scratch\n    packages: [a]\n"),
    )
    .unwrap();
    let out_layout = tmp.path().join("image");
    ok(with_upstream()
        .args(["image", "only-a", "--to"])
        .arg(format!("oci-layout:{}:a", out_layout.display())));
    skopeo_copies(
        &format!("oci:{}:a", out_layout.display()),
        &tmp.path().join("image-out"),
        &[],
    );
    assert!(tags_of(&pr).len() == 1, "an image is not written to the mirror");

    // The same chain from STACKCI_UPSTREAMS and from `upstreams:` in the stack.
    let env_plan = plan(
        stackci()
            .arg("--stack")
            .arg(&changed)
            .args(["--mirror", &pr_url])
            .env("STACKCI_UPSTREAMS", format!("{main_url},")),
    );
    assert_eq!(env_plan, planned);
    let text = std::fs::read_to_string(&changed).unwrap();
    std::fs::write(&changed, format!("upstreams: [\"{main_url}\"]\n{text}")).unwrap();
    let stack_plan = plan(stackci().arg("--stack").arg(&changed).args(["--mirror", &pr_url]));
    assert_eq!(stack_plan, planned);
    // Without upstreams the PR mirror alone has only `c`.
    let alone = plan(
        stackci()
            .arg("--stack")
            .arg(&base)
            .args(["--mirror", &pr_url])
            .env("STACKCI_UPSTREAMS", ""),
    );
    assert!(alone.iter().all(|p| p.1 == "build"), "{alone:?}");

    // After the merge, promotion: the PR mirror's packages go into main, which then has
    // everything on its own.
    let promoted: serde_json::Value =
        serde_json::from_str(&ok(stackci().args(["mirror", "copy", "--json", &pr_url, &main_url]))).unwrap();
    assert_eq!(promoted["tags"].as_array().unwrap().len(), 1, "{promoted}");
    let main_alone = plan(
        stackci()
            .arg("--stack")
            .arg(&changed)
            .args(["--mirror", &main_url])
            .env("STACKCI_UPSTREAMS", ""),
    );
    assert!(
        main_alone
            .iter()
            .all(|p| p.1 == "cached" && p.2.as_deref() == Some(main_url.as_str())),
        "{main_alone:?}"
    );
    ok(stackci().args(["mirror", "verify", &main_url]));

    // An upstream that is the mirror itself is skipped: main's own pipeline reads a stack
    // whose `upstreams:` names main.
    let itself = plan(
        stackci()
            .arg("--stack")
            .arg(&base)
            .args(["--mirror", &pr_url, "--upstream", &pr_url]),
    );
    assert_eq!(itself, alone);
}

#[test]
fn a_pr_repository_over_main_in_one_registry_mounts_the_upstream_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Peer::start(&tmp.path().join("registry"), false);
    let store = tmp.path().join("store");
    let main = reg.mirror_url("stack/main");
    let pr = reg.mirror_url("stack/pr-7");

    let base = chain_stack(&tmp.path().join("base"), &store, "c1");
    ok(stackci().arg("--stack").arg(&base).args(["--mirror", &main, "run"]));
    let changed = chain_stack(&tmp.path().join("pr-stack"), &store, "c2");
    let log = tmp.path().join("registry/registry.log");
    let mounts_before = count_mounts(&log);
    // What one CI job does: build the changed package, deps read through the chain.
    ok(stackci()
        .arg("--stack")
        .arg(&changed)
        .args(["--mirror", &pr, "--upstream", &main, "build", "c"]));
    // a's and b's layers (in c's manifest) and nothing else came by mount.
    assert_eq!(
        count_mounts(&log) - mounts_before,
        2,
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );

    let tags = ok(Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{}/stack/pr-7", reg.host())));
    let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
    let tags = tags["Tags"].as_array().unwrap();
    assert_eq!(tags.len(), 1, "{tags:?}");
    let tag = tags[0].as_str().unwrap();
    skopeo_copies(
        &format!("docker://{}/stack/pr-7:{tag}", reg.host()),
        &tmp.path().join("out"),
        &["--src-tls-verify=false"],
    );
}

/// Cross-repository mounts the registry answered 201 to, from its access log.
fn count_mounts(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("mount=") && l.contains("\" 201 "))
        .count()
}
