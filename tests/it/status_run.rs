//! Commit statuses and CI reports from real `stackci run`/`status` invocations, against
//! stand-ins for api.github.com and GitLab checked against the published API descriptions.

use crate::status_support::apis;
use crate::status_support::server;

use std::path::Path;
use std::process::Command;

use crate::common::*;
use apis::{check_gitlab, check_openapi, github_spec, gitlab_fixture};
use serde_json::Value;
use server::{Reply, StandIn};

const TOKEN: &str = "ghp_RUNtestTOKENstackci0123456789abcdef";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn github_stand_in() -> StandIn {
    StandIn::start(Reply::new(
        201,
        github_spec()["components"]["examples"]["status"]["value"].to_string(),
    ))
}

fn github_env(cmd: &mut Command, api: &str, files: &Path) {
    cmd.env("GITHUB_ACTIONS", "true")
        .env("CI", "true")
        .env("GITHUB_REPOSITORY", "octo-org/stack")
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_RUN_ID", "77")
        .env("GITHUB_SERVER_URL", "https://github.example")
        .env("GITHUB_API_URL", api)
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_STEP_SUMMARY", files.join("summary.md"))
        .env("GITHUB_OUTPUT", files.join("output.txt"))
        .env_remove("GITLAB_CI");
}

/// (state, context) of each status request, after checking it against GitHub's OpenAPI description.
fn github_posts(stand_in: &StandIn) -> Vec<(String, String)> {
    stand_in
        .requests()
        .iter()
        .map(|r| {
            let check = check_openapi(github_spec(), "", r);
            assert!(
                check.problems.is_empty(),
                "{} {}: {:#?}",
                r.method,
                r.path,
                check.problems
            );
            assert_eq!(check.operation_id, "repos/create-commit-status");
            assert!(r.path.ends_with(&format!("/statuses/{SHA}")), "{}", r.path);
            let body = r.json();
            (
                body["state"].as_str().unwrap().to_string(),
                body["context"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn junit_cases(path: &Path) -> Vec<(String, String)> {
    let script = r#"
import json, sys
from junitparser import JUnitXml
xml = JUnitXml.fromfile(sys.argv[1])
print(json.dumps([[c.name, type(c.result[0]).__name__ if c.result else "passed"] for s in xml for c in s]))
"#;
    let out = ok(Command::new(apis::python()).args(["-c", script]).arg(path));
    let v: Vec<(String, String)> = serde_json::from_str(&out).unwrap();
    v
}

/// Every file under `dir` (recursively) that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if t.is_file() && std::fs::read(&p).unwrap().windows(needle.len()).any(|w| w == needle) {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[test]
fn github_run_posts_pending_then_success_and_writes_reports_without_leaking_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let gh = github_stand_in();
    let store = tmp.path().join("store");
    let recipe = "mkdir -p \"$PREFIX\"\ntr '\\0' ' ' < /proc/$$/cmdline > \"$PREFIX/cmdline\"\ntr '\\0' ' ' < /proc/$PPID/cmdline >> \"$PREFIX/cmdline\"\nenv > \"$PREFIX/env\"";
    let stack = write_stack(
        &tmp.path().join("s"),
        &store,
        &[("base", &[], recipe), ("top", &["base"], recipe)],
    );
    let junit = tmp.path().join("junit.xml");
    let mut cmd = stackci();
    github_env(&mut cmd, &gh.url(), tmp.path());
    let out = output(cmd.arg("--stack").arg(&stack).args(["run", "--junit"]).arg(&junit));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        github_posts(&gh),
        vec![
            ("pending".to_string(), "stackci/t".to_string()),
            ("success".to_string(), "stackci/t".to_string())
        ]
    );
    assert!(
        stderr.contains("::group::") && stderr.contains("::endgroup::"),
        "no log groups on GitHub: {stderr}"
    );
    let summary = std::fs::read_to_string(tmp.path().join("summary.md")).unwrap();
    assert!(summary.contains("base") && summary.contains("top"), "{summary}");
    let outputs = std::fs::read_to_string(tmp.path().join("output.txt")).unwrap();
    assert!(outputs.contains("built"), "{outputs}");
    assert_eq!(
        junit_cases(&junit),
        vec![("base".into(), "passed".into()), ("top".into(), "passed".into())]
    );

    // The token is nowhere: not in our output, not in any file written, not in recipe argv/env.
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
    assert_eq!(files_containing(tmp.path(), TOKEN.as_bytes()), Vec::<String>::new());
    let prefix = std::fs::read_dir(&store)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("top-"))
        .expect("no prefix for `top` in the store")
        .path();
    let cmdline = std::fs::read_to_string(prefix.join("cmdline")).unwrap();
    assert!(cmdline.contains("bash"), "recipe cmdline not captured: {cmdline}");

    // A failing recipe: pending, then failure.
    let gh2 = github_stand_in();
    let bad = write_stack(&tmp.path().join("bad"), &store, &[("broken", &[], "exit 1")]);
    let mut cmd = stackci();
    github_env(&mut cmd, &gh2.url(), tmp.path());
    let out = output(cmd.arg("--stack").arg(&bad).arg("run"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        github_posts(&gh2),
        vec![
            ("pending".to_string(), "stackci/t".to_string()),
            ("failure".to_string(), "stackci/t".to_string())
        ]
    );
}

#[test]
fn gitlab_run_reports_failures_in_statuses_and_junit() {
    let tmp = tempfile::tempdir().unwrap();
    let gl = StandIn::start(Reply::new(201, gitlab_fixture()["example_response"].to_string()));
    let store = tmp.path().join("store");
    let stack = write_stack(
        &tmp.path().join("s"),
        &store,
        &[
            ("ok", &[], "true"),
            ("broken", &[], "echo compiler exploded\nexit 2"),
            ("after", &["broken"], "true"),
        ],
    );
    let junit = tmp.path().join("junit.xml");
    let out = output(
        stackci()
            .env("GITLAB_CI", "true")
            .env("CI", "true")
            .env("CI_API_V4_URL", format!("{}/api/v4", gl.url()))
            .env("CI_PROJECT_ID", "17")
            .env("CI_COMMIT_SHA", SHA)
            .env("CI_PIPELINE_ID", "9001")
            .env("CI_PIPELINE_URL", "https://gitlab.example/g/p/-/pipelines/9001")
            .env("CI_JOB_URL", "https://gitlab.example/g/p/-/jobs/5")
            .env("STACKCI_GITLAB_TOKEN", TOKEN)
            .env_remove("GITHUB_ACTIONS")
            .arg("--stack")
            .arg(&stack)
            .args(["run", "--per-package", "--junit"])
            .arg(&junit),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("section_start:") && stderr.contains("compiler exploded"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN));
    let fixture = gitlab_fixture();
    let mut posted = Vec::new();
    for r in gl.requests() {
        let problems = check_gitlab(&fixture, fixture["api_base_path"].as_str().unwrap(), &r);
        assert!(problems.is_empty(), "{} {}: {problems:#?}", r.method, r.path);
        let body: Value = r.json();
        posted.push((
            body["name"].as_str().unwrap().to_string(),
            body["state"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(
        posted.first().unwrap(),
        &("stackci/t".to_string(), "pending".to_string())
    );
    assert_eq!(posted.last().unwrap(), &("stackci/t".to_string(), "failed".to_string()));
    assert!(
        posted.contains(&("stackci/t/broken".to_string(), "failed".to_string())),
        "{posted:?}"
    );
    assert!(
        posted.contains(&("stackci/t/ok".to_string(), "success".to_string())),
        "{posted:?}"
    );
    let mut cases = junit_cases(&junit);
    cases.sort();
    assert_eq!(
        cases,
        vec![
            ("after".into(), "Skipped".into()),
            ("broken".into(), "Failure".into()),
            ("ok".into(), "passed".into())
        ]
    );
}

#[test]
fn status_from_gitlab_with_github_repo_goes_to_github() {
    let tmp = tempfile::tempdir().unwrap();
    let gh = github_stand_in();
    let gl = StandIn::start(Reply::new(201, "{}"));
    let stack = write_stack(tmp.path(), &tmp.path().join("store"), &[("a", &[], "true")]);
    ok(stackci()
        .env("GITLAB_CI", "true")
        .env("CI_API_V4_URL", format!("{}/api/v4", gl.url()))
        .env("CI_PROJECT_ID", "17")
        .env("CI_COMMIT_SHA", SHA)
        .env("CI_PIPELINE_ID", "9001")
        .env("CI_PIPELINE_URL", "https://gitlab.example/g/p/-/pipelines/9001")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_API_URL", gh.url())
        .env_remove("GITHUB_ACTIONS")
        .arg("--stack")
        .arg(&stack)
        .args([
            "status",
            "success",
            "--github-repo",
            "octo-org/stack",
            "--description",
            "all built",
        ]));
    assert!(gl.requests().is_empty(), "posted to GitLab instead of GitHub");
    let reqs = gh.requests();
    assert_eq!(reqs.len(), 1);
    assert!(
        reqs[0].path.starts_with("/repos/octo-org/stack/statuses/"),
        "{}",
        reqs[0].path
    );
    assert_eq!(
        reqs[0].json()["target_url"],
        "https://gitlab.example/g/p/-/pipelines/9001"
    );
    assert_eq!(
        github_posts(&gh),
        vec![("success".to_string(), "stackci/t".to_string())]
    );
}
