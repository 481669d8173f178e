//! The GitLab component on a Spack environment, in gitlab-ci-local with the real Spack: the
//! generated child pipeline's jobs each build one spec with `stackci build`, in a store they
//! wipe first (the jobs share this host), so every dependency must come from the mirror;
//! a second pipeline is the no-op.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::spack::*;
use crate::common::*;

/// The project gitlab-ci-local runs: `.gitlab-ci.yml` including the component, and the
/// Spack project in `spack/` whose jobs wipe `store` before they start.
fn project(dir: &Path, store: &Path, mirror: &Path) -> PathBuf {
    let root = dir.join("gitlab-project");
    let wipe = format!(
        "ci:\n  gitlab:\n    before_script:\n      - 'rm -rf {} && echo \"stackci-test: wiped the store\"'\n",
        store.display()
    );
    let spack = spack_project(dir, store, &wipe);
    copy_dir(&spack, &root.join("spack"));
    std::fs::create_dir_all(root.join("templates")).unwrap();
    std::fs::copy(repo().join("templates/stackci.yml"), root.join("templates/stackci.yml")).unwrap();
    // runner_tags: gitlab-ci-local's schema rejects the default `tags: []` (see gitlab_e2e.rs).
    let ci = format!(
        "include:\n  - local: templates/stackci.yml\n    inputs:\n      stack: spack/stack.yaml\n      mirror: file://{}\n      image: debian:bookworm\n      runner_tags: [linux]\nstages: [build]\n",
        mirror.display()
    );
    std::fs::write(root.join(".gitlab-ci.yml"), ci).unwrap();
    root
}

/// Runs the pipeline, one job at a time (they share the store), with the built stackci
/// and the Spack peer on the jobs' environment; returns (success, log).
fn pipeline(project: &Path) -> (bool, String) {
    require("gitlab-ci-local");
    let bin = Path::new(env!("CARGO_BIN_EXE_stackci")).parent().unwrap().to_path_buf();
    let mut cmd = Command::new("bash");
    with_spack(&mut cmd)
        .arg(repo().join("tests/peers/gitlab-local.sh"))
        .arg(project)
        .args(["--concurrency", "1"])
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .env_remove("STACKCI_MIRROR")
        .env_remove("STACKCI_STACK");
    let out = cmd.output().expect("running tests/peers/gitlab-local.sh");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), log)
}

#[test]
fn spack_jobs_build_one_spec_each_from_the_mirror_then_the_pipeline_is_a_noop() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mirror = tmp.path().join("mirror");
    let project = project(tmp.path(), &store, &mirror);
    let (ok1, log) = pipeline(&project);
    assert!(ok1, "first pipeline failed:\n{log}");

    let specs = lock_specs(&project.join("spack"));
    let job = |name: &str| {
        let (_, v, h) = specs.iter().find(|s| s.0 == name).unwrap();
        (format!("{name}@{v} {}", &h[..7]), format!("{name}-{v}-{h}"))
    };
    let mirror_url = format!("file://{}", mirror.display());
    // Each job's build dependencies (direct ones and their runtime closures).
    let closures: [(&str, &[&str]); 5] = [
        ("gcc-runtime", &[]),
        ("crcgen", &["gcc-runtime"]),
        ("libcrc", &["crcgen", "gcc-runtime"]),
        ("libreport", &["libcrc", "gcc-runtime"]),
        ("hello", &["libreport", "libcrc", "gcc-runtime"]),
    ];
    for (name, deps) in closures {
        let (job_name, tag) = job(name);
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(&format!("{job_name} "))).collect();
        let text = lines.join("\n");
        assert!(!lines.is_empty(), "no job {job_name}:\n{log}");
        assert!(
            text.contains("stackci-test: wiped the store"),
            "{job_name} did not wipe the store:\n{text}"
        );
        assert!(text.contains(&format!("stackci build {tag}")), "{job_name}:\n{text}");
        let hash = &tag[tag.len() - 32..];
        assert!(
            lines
                .iter()
                .any(|l| l.contains("install --only package --no-add") && l.ends_with(&format!(" /{hash}"))),
            "{job_name} did not have Spack install its spec alone:\n{text}"
        );
        assert!(text.contains(&format!("built    {tag}")), "{job_name}:\n{text}");
        for dep in deps {
            let (_, dep_tag) = job(dep);
            assert!(
                text.contains(&format!("stackci: dependency {dep_tag}: unpacked from {mirror_url}")),
                "{job_name}: {dep} did not come from the mirror:\n{text}"
            );
        }
        assert!(!text.contains("already in the store"), "{job_name}:\n{text}");
    }

    // The mirror holds every spec; the next pipeline has nothing to build.
    let plan = plan_statuses(&ok(with_spack(&mut stackci())
        .arg("--stack")
        .arg(project.join("spack/stack.yaml"))
        .args(["--mirror", &mirror_url, "plan", "--json"])));
    assert_eq!(plan.len(), specs.len());
    assert!(
        plan.iter().all(|(t, s)| s == "cached" || t.starts_with("glibc-")),
        "the child pipeline did not push everything: {plan:?}"
    );
    let (ok2, log2) = pipeline(&project);
    assert!(ok2, "second pipeline failed:\n{log2}");
    assert!(
        !log2.contains("stackci build"),
        "the second pipeline built again:\n{log2}"
    );
    assert!(
        log2.to_lowercase().contains("nothing to build"),
        "no no-op job:\n{log2}"
    );
}
