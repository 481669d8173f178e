//! The GitLab component end to end with the real binary, in gitlab-ci-local: a parent
//! `.gitlab-ci.yml` includes `templates/stackci.yml`, which generates and triggers the child
//! pipeline that builds the example stack into a file mirror; a second pipeline is the
//! no-op; a failing recipe fails the run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// A project: the example stack (store moved under `dir`) and a `.gitlab-ci.yml` that includes
/// the component locally, with the mirror at `mirror`.
fn project(dir: &Path, mirror: &Path) -> PathBuf {
    let project = dir.join("project");
    let demo = demo_copy(&project, &dir.join("store"));
    assert_eq!(demo, project.join("demo"));
    std::fs::create_dir_all(project.join("templates")).unwrap();
    std::fs::copy(
        repo().join("templates/stackci.yml"),
        project.join("templates/stackci.yml"),
    )
    .unwrap();
    // runner_tags: gitlab-ci-local's schema check rejects the default `tags: []` that GitLab
    // itself accepts (firecow/gitlab-ci-local#1503); the shell executor ignores tags.
    let ci = format!(
        "include:\n  - local: templates/stackci.yml\n    inputs:\n      stack: demo/stack.yaml\n      mirror: file://{}\n      image: debian:bookworm\n      runner_tags: [linux]\nstages: [build]\n",
        mirror.display()
    );
    std::fs::write(project.join(".gitlab-ci.yml"), ci).unwrap();
    project
}

/// Runs the pipeline with the built stackci first on PATH; returns (success, log).
fn pipeline(project: &Path) -> (bool, String) {
    require("gitlab-ci-local");
    let bin = Path::new(env!("CARGO_BIN_EXE_stackci")).parent().unwrap().to_path_buf();
    let out = Command::new("bash")
        .arg(repo().join("tests/peers/gitlab-local.sh"))
        .arg(project)
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .env_remove("STACKCI_MIRROR")
        .env_remove("STACKCI_STACK")
        .output()
        .expect("running tests/peers/gitlab-local.sh");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), log)
}

#[test]
fn component_builds_the_example_then_runs_the_noop_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    let project = project(tmp.path(), &mirror);
    let (ok1, log) = pipeline(&project);
    assert!(ok1, "first pipeline failed:\n{log}");
    for name in ["crcgen", "libcrc", "libreport", "hello", "crcsum"] {
        assert!(log.contains(&format!("{name}@")), "no job for {name}:\n{log}");
    }
    // The mirror now holds every package: plan says cached.
    let plan = plan_statuses(&ok(stackci()
        .arg("--stack")
        .arg(project.join("demo/stack.yaml"))
        .arg("--mirror")
        .arg(format!("file://{}", mirror.display()))
        .args(["plan", "--json"])));
    assert_eq!(plan.len(), 5);
    assert!(
        plan.iter().all(|(_, s)| s == "cached"),
        "the child pipeline did not push everything: {plan:?}\n{log}"
    );

    let (ok2, log2) = pipeline(&project);
    assert!(ok2, "second pipeline failed:\n{log2}");
    assert!(
        !log2.contains("hello@"),
        "the second pipeline rebuilt packages:\n{log2}"
    );
    assert!(
        log2.to_lowercase().contains("nothing to build"),
        "no no-op job in the second pipeline:\n{log2}"
    );
}

#[test]
fn a_failing_child_job_fails_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    let project = project(tmp.path(), &mirror);
    let stack = project.join("demo/stack.yaml");
    let text = std::fs::read_to_string(&stack).unwrap();
    std::fs::write(
        &stack,
        text.replacen("make -j\"$JOBS\"\n      ./hello", "exit 7\n      ./hello", 1),
    )
    .unwrap();
    assert_ne!(
        std::fs::read_to_string(&stack).unwrap(),
        text,
        "could not break the hello recipe"
    );
    let (ok, log) = pipeline(&project);
    assert!(!ok, "a failing build job did not fail the pipeline:\n{log}");
    assert!(
        log.contains("recipe failed (exit status: 7)"),
        "the run failed for another reason than the recipe:\n{log}"
    );
    assert!(log.contains("crcsum@"), "independent jobs did not run:\n{log}");
}
