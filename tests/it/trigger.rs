//! `stackci trigger gitlab` (issue 14, the GitHub↔GitLab bridge), run as a GitHub job
//! would run it, against two stand-ins: GitLab's trigger and pipeline endpoints, each
//! request checked against GitLab's documented attribute tables
//! (`tests/fixtures/gitlab/trigger-pipeline-api.json`, `get-pipeline-api.json`), and
//! GitHub's commit status endpoint, checked against GitHub's published OpenAPI description.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use stackci::ci::env::Vars;
use stackci::ci::status::{self, State, Status};
use stackci::env_vars;

use crate::common::*;
use crate::status_support::apis::{check_gitlab, check_openapi, github_spec, gitlab_endpoint};
use crate::status_support::server::{Recorded, Reply, StandIn};

const TRIGGER_TOKEN: &str = "glptt-STACKCItriggerTOKEN0123456789";
const READ_TOKEN: &str = "glpat-STACKCIreadTOKEN-abcdef987654";
const GITHUB_TOKEN: &str = "ghp_STACKCItriggerTestTOKEN0123456789ab";
const MERGE_SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const HEAD_SHA: &str = "fedcba9876543210fedcba9876543210fedcba98";
const REPO: &str = "octo-org/stack-repo";

fn github_stand_in() -> StandIn {
    let example = &github_spec()["components"]["examples"]["status"]["value"];
    StandIn::start(Reply::new(201, example.to_string()))
}

/// The documented example pipeline with `status` (and the id of the trigger example).
fn pipeline(status: &str) -> String {
    let mut p = gitlab_endpoint("trigger-pipeline-api.json")["example_response"].clone();
    p["status"] = Value::from(status);
    let documented = gitlab_endpoint("get-pipeline-api.json")["statuses"].clone();
    assert!(
        documented.as_array().unwrap().contains(&Value::from(status)),
        "{status} is not a documented pipeline status"
    );
    p.to_string()
}

fn assert_documented(fixture: &str, req: &Recorded) {
    let table = gitlab_endpoint(fixture);
    let problems = check_gitlab(&table, table["api_base_path"].as_str().unwrap(), req);
    assert!(
        problems.is_empty(),
        "{} {} violates GitLab's documented API ({fixture}): {problems:#?}\nbody: {}",
        req.method,
        req.path,
        String::from_utf8_lossy(&req.body)
    );
}

/// `stackci trigger gitlab ...` in a GitHub pull request job.
fn trigger(dir: &Path, gitlab: &StandIn, github: &StandIn, args: &[&str]) -> (Output, String) {
    let event = dir.join("event.json");
    std::fs::write(
        &event,
        json!({"pull_request": {"number": 7, "head": {"sha": HEAD_SHA}, "merge_commit_sha": MERGE_SHA}}).to_string(),
    )
    .unwrap();
    let output_file = dir.join("github-output");
    let out = output(
        stackci()
            .current_dir(dir)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_REPOSITORY", REPO)
            .env("GITHUB_SHA", MERGE_SHA)
            .env("GITHUB_RUN_ID", "4242")
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env("GITHUB_API_URL", github.url())
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .env("GITHUB_OUTPUT", &output_file)
            .env("STACKCI_GITLAB_TRIGGER_TOKEN", TRIGGER_TOKEN)
            .env("STACKCI_GITLAB_TOKEN", READ_TOKEN)
            .env_remove("GITLAB_CI")
            .env_remove("CI_API_V4_URL")
            .args([
                "trigger",
                "gitlab",
                "--gitlab-url",
                &gitlab.url(),
                "--project",
                "group/stack",
                "--ref",
                "main",
            ])
            .args(["--interval", "0.05"])
            .args(args),
    );
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for token in [TRIGGER_TOKEN, READ_TOKEN, GITHUB_TOKEN] {
        assert!(!text.contains(token), "a token was printed:\n{text}");
    }
    (out, text)
}

fn github_states(github: &StandIn) -> Vec<(String, String)> {
    github
        .requests()
        .iter()
        .map(|req| {
            let check = check_openapi(github_spec(), "", req);
            assert!(check.problems.is_empty(), "{:#?}", check.problems);
            assert_eq!(check.operation_id, "repos/create-commit-status");
            assert_eq!(req.path, format!("/repos/{REPO}/statuses/{HEAD_SHA}"), "the PR head");
            let body = req.json();
            (
                body["state"].as_str().unwrap().to_string(),
                body["target_url"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_github_job_triggers_follows_and_reports_the_gitlab_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = StandIn::start(Reply::new(500, r#"{"message":"unscripted"}"#));
    gitlab.script([
        Reply::new(201, pipeline("created")),
        Reply::new(200, pipeline("pending")),
        Reply::new(503, r#"{"message":"try again"}"#),
        Reply::new(200, pipeline("running")),
        Reply::new(200, pipeline("running")),
        Reply::new(200, pipeline("success")),
    ]);
    let github = github_stand_in();
    let (out, text) = trigger(dir.path(), &gitlab, &github, &["--wait", "--var", "STACKCI_FORCE=1"]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("pipeline 257: running") && text.contains("pipeline 257: success"),
        "{text}"
    );

    let reqs = gitlab.requests();
    assert_eq!(reqs.len(), 6, "one trigger, five reads (one retried)");
    assert_documented("trigger-pipeline-api.json", &reqs[0]);
    assert_eq!(reqs[0].path, "/api/v4/projects/group%2Fstack/trigger/pipeline");
    let body = reqs[0].json();
    assert_eq!(body["ref"], "main");
    assert_eq!(body["token"], TRIGGER_TOKEN);
    assert_eq!(
        body["variables"],
        json!({
            "STACKCI_GITHUB_REPOSITORY": REPO,
            "STACKCI_GITHUB_SHA": HEAD_SHA,
            "STACKCI_GITHUB_RUN_URL": format!("https://github.example/{REPO}/actions/runs/4242"),
            "STACKCI_FORCE": "1",
        })
    );
    for req in &reqs[1..] {
        assert_documented("get-pipeline-api.json", req);
        assert_eq!(req.path, "/api/v4/projects/group%2Fstack/pipelines/257");
        assert_eq!(req.header("private-token"), Some(READ_TOKEN));
    }

    let web_url = "http://127.0.0.1:3000/test-group/test-project/-/pipelines/257";
    assert_eq!(
        github_states(&github),
        [
            ("pending".to_string(), web_url.to_string()),
            ("success".into(), web_url.into())
        ],
        "pending with the pipeline's link first, then the result"
    );
    let outputs = std::fs::read_to_string(dir.path().join("github-output")).unwrap();
    assert!(outputs.contains("pipeline-id") && outputs.contains("257"), "{outputs}");
    assert!(outputs.contains("success"), "{outputs}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), web_url);
}

#[test]
fn a_failed_or_canceled_pipeline_fails_the_job() {
    for (end, github_state) in [("failed", "failure"), ("canceled", "error")] {
        let dir = tempfile::tempdir().unwrap();
        let gitlab = StandIn::start(Reply::new(500, "{}"));
        gitlab.script([Reply::new(201, pipeline("created")), Reply::new(200, pipeline(end))]);
        let github = github_stand_in();
        let (out, text) = trigger(dir.path(), &gitlab, &github, &["--wait"]);
        assert_eq!(out.status.code(), Some(1), "{end}: {text}");
        let states: Vec<String> = github_states(&github).into_iter().map(|(s, _)| s).collect();
        assert_eq!(states, ["pending", github_state], "{end}");
    }
}

#[test]
fn without_wait_it_returns_once_started() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = StandIn::start(Reply::new(500, "{}"));
    gitlab.script([Reply::new(201, pipeline("created"))]);
    let github = github_stand_in();
    let (out, text) = trigger(dir.path(), &gitlab, &github, &["--json"]);
    assert!(out.status.success(), "{text}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (doc["id"].as_u64(), doc["status"].as_str()),
        (Some(257), Some("created"))
    );
    assert_eq!(gitlab.requests().len(), 1);
    let states: Vec<String> = github_states(&github).into_iter().map(|(s, _)| s).collect();
    assert_eq!(states, ["pending"]);
}

#[test]
fn refused_and_missing_tokens_are_clear_and_post_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = StandIn::start(Reply::new(401, r#"{"message":"401 Unauthorized"}"#));
    let github = github_stand_in();
    let (out, text) = trigger(dir.path(), &gitlab, &github, &["--wait"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("GitLab refused the trigger token for project `group/stack` (401)")
            && text.contains("pipeline trigger token"),
        "{text}"
    );
    assert!(
        github.requests().is_empty(),
        "no status for a pipeline that never started"
    );

    let (out, text) = trigger(dir.path(), &gitlab, &github, &["--token-env", "NOT_SET_ANYWHERE"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text.contains("no trigger token: set NOT_SET_ANYWHERE"), "{text}");
    assert_eq!(gitlab.requests().len(), 1, "no request without a token");
}

#[test]
fn the_triggered_gitlab_job_reports_to_the_github_commit_it_was_given() {
    let github = github_stand_in();
    let vars = Vars::from_pairs([
        (env_vars::GITLAB_CI, "true"),
        (env_vars::CI_API_V4_URL, "https://gitlab.example/api/v4"),
        (env_vars::CI_PROJECT_ID, "17"),
        (env_vars::CI_COMMIT_SHA, MERGE_SHA),
        (env_vars::CI_PIPELINE_URL, "https://gitlab.example/g/p/-/pipelines/257"),
        (env_vars::STACKCI_GITHUB_SHA, HEAD_SHA),
        (env_vars::GITHUB_API_URL, github.url().as_str()),
        (env_vars::GITHUB_TOKEN, GITHUB_TOKEN),
    ]);
    let opts = status::StatusOptions {
        github_repo: Some(REPO.into()),
        ..Default::default()
    };
    let reporter = status::from_vars(&vars, &opts).unwrap().unwrap();
    reporter.post(&Status::new(State::Success, "stackci/demo")).unwrap();
    let states = github_states(&github);
    assert_eq!(states[0].0, "success");
    assert_eq!(states[0].1, "https://gitlab.example/g/p/-/pipelines/257");
}
