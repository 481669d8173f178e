//! Commit statuses and CI-native output, checked against third-party descriptions and
//! readers: every request to the GitHub stand-in is validated against GitHub's published
//! OpenAPI description (npm `@octokit/openapi`), every GitLab request against GitLab's
//! documented attribute table, and the JUnit report is read back by junitparser.
//!
//! Needs `tests/tools/install.sh` first (tests fail, naming it, when the tools are missing).

use crate::status_support::apis;
use crate::status_support::server;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use stackci::builder::summary::{Outcome, PackageOutcome, RunSummary};
use stackci::ci::env::Vars;
use stackci::ci::output::{self, Flavor};
use stackci::ci::status::{self, State, Status, StatusError, StatusOptions, StatusReporter};
use stackci::env_vars;
use stackci::net::{Retry, Secret};

use apis::{check_gitlab, check_openapi, ghes_spec, github_spec, gitlab_fixture};
use server::{Recorded, Reply, StandIn};

const GITHUB_TOKEN: &str = "ghp_STACKCItestTOKEN0123456789abcdefXYZ";
const GITLAB_TOKEN: &str = "glpat-STACKCItestTOKEN-9876543210zyx";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const HEAD_SHA: &str = "fedcba9876543210fedcba9876543210fedcba98";
const REPO: &str = "octo-org/stack-repo";

/// A GitHub stand-in answering 201 with the description's own example response.
fn github_stand_in() -> StandIn {
    let example = &github_spec()["components"]["examples"]["status"]["value"];
    assert!(example.is_object(), "the OpenAPI description has no status example");
    StandIn::start(Reply::new(201, example.to_string()))
}

/// A GitLab stand-in answering 201 with the documentation's example response.
fn gitlab_stand_in() -> StandIn {
    StandIn::start(Reply::new(201, gitlab_fixture()["example_response"].to_string()))
}

fn github_vars(api_url: &str, extra: &[(&str, &str)]) -> Vars {
    let mut pairs: Vec<(String, String)> = [
        (env_vars::GITHUB_ACTIONS, "true"),
        (env_vars::GITHUB_REPOSITORY, REPO),
        (env_vars::GITHUB_SHA, SHA),
        (env_vars::GITHUB_RUN_ID, "4242"),
        (env_vars::GITHUB_SERVER_URL, "https://github.example"),
        (env_vars::GITHUB_API_URL, api_url),
        (env_vars::GITHUB_EVENT_NAME, "push"),
        (env_vars::GITHUB_TOKEN, GITHUB_TOKEN),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Vars::from_pairs(pairs)
}

fn gitlab_vars(api_url: &str, extra: &[(&str, &str)]) -> Vars {
    let mut pairs: Vec<(String, String)> = [
        (env_vars::GITLAB_CI, "true"),
        (env_vars::CI_API_V4_URL, api_url),
        (env_vars::CI_PROJECT_ID, "17"),
        (env_vars::CI_COMMIT_SHA, SHA),
        (env_vars::CI_PIPELINE_ID, "9001"),
        (env_vars::CI_PIPELINE_URL, "https://gitlab.example/g/p/-/pipelines/9001"),
        (env_vars::CI_JOB_URL, "https://gitlab.example/g/p/-/jobs/555"),
        (env_vars::STACKCI_GITLAB_TOKEN, GITLAB_TOKEN),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Vars::from_pairs(pairs)
}

/// Options with quick retries so tests that exercise them stay fast.
fn quick() -> StatusOptions {
    StatusOptions {
        retry: Retry {
            attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(5),
        },
        timeout: Some(Duration::from_secs(10)),
        ..StatusOptions::default()
    }
}

fn reporter(vars: &Vars, opts: &StatusOptions) -> Box<dyn StatusReporter> {
    status::from_vars(vars, opts)
        .expect("setting up the reporter")
        .expect("a CI environment is detected")
}

/// The path prefix of an OpenAPI description's first server (`/api/v3` for GHES).
fn base_path(spec: &Value) -> String {
    let url = spec["servers"][0]["url"].as_str().unwrap();
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme
        .find('/')
        .map_or(String::new(), |i| after_scheme[i..].trim_end_matches('/').to_string())
}

fn assert_valid_github(spec: &Value, req: &Recorded) {
    let check = check_openapi(spec, &base_path(spec), req);
    assert!(
        check.problems.is_empty(),
        "{} {} violates GitHub's OpenAPI description: {:#?}\nbody: {}",
        req.method,
        req.path,
        check.problems,
        String::from_utf8_lossy(&req.body)
    );
    assert_eq!(check.operation_id, "repos/create-commit-status");
}

fn assert_valid_gitlab(req: &Recorded) {
    let fixture = gitlab_fixture();
    let problems = check_gitlab(&fixture, fixture["api_base_path"].as_str().unwrap(), req);
    assert!(
        problems.is_empty(),
        "{} {} violates GitLab's documented API: {problems:#?}\nbody: {}",
        req.method,
        req.path,
        String::from_utf8_lossy(&req.body)
    );
}

fn pkg(name: &str, outcome: Outcome, secs: u64) -> PackageOutcome {
    let hash = format!("{name}hash0123456789abcdefghijklmn")[..32].to_string();
    PackageOutcome {
        name: name.into(),
        version: "1.0".into(),
        tag: format!("{name}-1.0-{hash}"),
        hash,
        outcome,
        duration: Duration::from_secs(secs),
    }
}

fn failed(log_tail: &str) -> Outcome {
    Outcome::Failed {
        error: log_tail.lines().last().unwrap_or_default().into(),
        log: "build.log".into(),
        log_tail: log_tail.into(),
    }
}

fn sample_summary() -> RunSummary {
    RunSummary {
        stack: "demo".into(),
        packages: vec![
            pkg("zlib", Outcome::Built, 12),
            pkg("cmake", Outcome::Cached, 0),
            pkg(
                "hello",
                failed(
                    "cc -c hello.c\n\x1b[1;31merror:\x1b[0m <stdio.h> & \"quotes\" 'x' \u{0}\u{7}\u{fffe} ✓ ```\nmake: *** [all] Error 1",
                ),
                3,
            ),
            pkg(
                "world",
                Outcome::Skipped {
                    reason: "dependency hello failed".into(),
                },
                0,
            ),
            pkg("glibc", Outcome::External, 0),
        ],
        interrupted: false,
    }
}

#[test]
fn the_checkers_reject_what_the_apis_reject() {
    // The validators are live: hand-made bad requests fail them.
    let bad = |path: &str, body: Value, headers: &[(&str, &str)]| Recorded {
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect(),
        body: body.to_string().into_bytes(),
    };
    let h = [
        ("content-type", "application/json"),
        ("user-agent", "x"),
        ("authorization", "Bearer t"),
    ];
    let path = format!("/repos/o/r/statuses/{SHA}");
    let spec = github_spec();
    let check = |r: &Recorded| check_openapi(spec, "", r).problems;
    assert!(check(&bad(&path, json!({"state": "success"}), &h)).is_empty());
    assert!(!check(&bad(&path, json!({"state": "running"}), &h)).is_empty());
    assert!(!check(&bad(&path, json!({"context": "c"}), &h)).is_empty());
    assert!(!check(&bad(&path, json!({"state": "success", "name": "x"}), &h)).is_empty());
    assert!(!check(&bad(&path, json!({"state": "success"}), &h[..1])).is_empty());
    assert!(!check(&bad("/repos/o/r/status/x", json!({"state": "success"}), &h)).is_empty());

    let fx = gitlab_fixture();
    let gl = |path: &str, body: Value| {
        check_gitlab(
            &fx,
            "/api/v4",
            &bad(
                path,
                body,
                &[("content-type", "application/json"), ("private-token", "t")],
            ),
        )
    };
    let path = format!("/api/v4/projects/17/statuses/{SHA}");
    assert!(gl(&path, json!({"state": "failed", "name": "n", "pipeline_id": 3})).is_empty());
    assert!(!gl(&path, json!({"state": "failure"})).is_empty());
    assert!(!gl(&path, json!({"name": "n"})).is_empty());
    assert!(!gl(&path, json!({"state": "success", "pipeline_id": "x"})).is_empty());
    assert!(!gl(&path, json!({"state": "success", "description": "d".repeat(256)})).is_empty());
    assert!(!gl(&path, json!({"state": "success", "context_name": "x"})).is_empty());
}

#[test]
fn github_requests_match_the_published_openapi_description() {
    let gh = github_stand_in();
    let r = reporter(&github_vars(&gh.url(), &[]), &quick());
    assert_eq!(r.destination(), "GitHub octo-org/stack-repo@0123456789ab");
    for st in State::ALL {
        r.post(&Status::new(st, "stackci/demo").with_description(format!("state {st}")))
            .unwrap_or_else(|e| panic!("posting {st}: {e}"));
    }
    r.post(&Status::new(State::Success, "stackci/demo/zlib").with_target_url("https://example.com/custom"))
        .unwrap();

    let reqs = gh.requests();
    assert_eq!(reqs.len(), State::ALL.len() + 1);
    for req in &reqs {
        assert_valid_github(github_spec(), req);
        assert_eq!(req.path, format!("/repos/{REPO}/statuses/{SHA}"));
        assert_eq!(req.header("authorization"), Some(&*format!("Bearer {GITHUB_TOKEN}")));
    }
    let states: Vec<Value> = reqs.iter().map(|r| r.json()["state"].clone()).collect();
    assert_eq!(
        states,
        ["pending", "pending", "success", "failure", "error", "error", "success"]
    );
    let first = reqs[0].json();
    assert_eq!(first["context"], "stackci/demo");
    assert_eq!(first["description"], "state pending");
    assert_eq!(
        first["target_url"],
        "https://github.example/octo-org/stack-repo/actions/runs/4242"
    );
    let last = reqs.last().unwrap().json();
    assert_eq!(last["target_url"], "https://example.com/custom");
    assert!(last.get("description").is_none());
}

#[test]
fn github_pull_request_status_goes_to_the_head_commit() {
    let gh = github_stand_in();
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        json!({"pull_request": {"number": 7, "head": {"sha": HEAD_SHA}, "merge_commit_sha": SHA}}).to_string(),
    )
    .unwrap();
    for name in ["pull_request", "pull_request_target"] {
        let vars = github_vars(
            &gh.url(),
            &[
                (env_vars::GITHUB_EVENT_NAME, name),
                (env_vars::GITHUB_EVENT_PATH, event.to_str().unwrap()),
            ],
        );
        reporter(&vars, &quick())
            .post(&Status::new(State::Pending, "stackci/demo"))
            .unwrap();
    }
    let reqs = gh.requests();
    assert_eq!(reqs.len(), 2);
    for req in &reqs {
        assert_valid_github(github_spec(), req);
        assert_eq!(req.path, format!("/repos/{REPO}/statuses/{HEAD_SHA}"));
    }
}

#[test]
fn github_enterprise_api_base_keeps_its_path() {
    let gh = github_stand_in();
    let spec = ghes_spec();
    let base = base_path(spec);
    assert_eq!(base, "/api/v3");
    let vars = github_vars(&format!("{}{base}/", gh.url()), &[]);
    reporter(&vars, &quick())
        .post(&Status::new(State::Failure, "stackci/demo").with_description("1 failed"))
        .unwrap();
    let reqs = gh.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, format!("/api/v3/repos/{REPO}/statuses/{SHA}"));
    assert_valid_github(spec, &reqs[0]);
}

#[test]
fn gitlab_requests_match_the_documented_api() {
    let gl = gitlab_stand_in();
    let r = reporter(&gitlab_vars(&format!("{}/api/v4", gl.url()), &[]), &quick());
    assert_eq!(r.destination(), "GitLab project 17@0123456789ab");
    for st in State::ALL {
        r.post(&Status::new(st, "stackci/demo").with_description(format!("state {st}")))
            .unwrap_or_else(|e| panic!("posting {st}: {e}"));
    }
    let reqs = gl.requests();
    assert_eq!(reqs.len(), State::ALL.len());
    for req in &reqs {
        assert_valid_gitlab(req);
        assert_eq!(req.path, format!("/api/v4/projects/17/statuses/{SHA}"));
        assert_eq!(req.header("private-token"), Some(GITLAB_TOKEN));
        let body = req.json();
        assert_eq!(body["name"], "stackci/demo");
        assert_eq!(body["pipeline_id"], 9001);
        assert_eq!(body["target_url"], "https://gitlab.example/g/p/-/jobs/555");
    }
    let states: Vec<Value> = reqs.iter().map(|r| r.json()["state"].clone()).collect();
    assert_eq!(
        states,
        ["pending", "running", "success", "failed", "failed", "canceled"]
    );
}

#[test]
fn gitlab_already_in_that_state_counts_as_posted() {
    let gl = gitlab_stand_in();
    gl.script([Reply::new(
        400,
        r#"{"message":"Cannot transition status via :run from :running (Reason(s): Status cannot transition via \"run\".)"}"#,
    )]);
    let r = reporter(&gitlab_vars(&format!("{}/api/v4", gl.url()), &[]), &quick());
    r.post(&Status::new(State::Running, "stackci/demo")).unwrap();
    assert_eq!(gl.requests().len(), 1, "not retried");
}

#[test]
fn gitlab_job_with_github_repo_posts_to_github_not_gitlab() {
    let gh = github_stand_in();
    let gl = gitlab_stand_in();
    let vars = gitlab_vars(
        &format!("{}/api/v4", gl.url()),
        &[
            (env_vars::GITHUB_API_URL, &gh.url()),
            (env_vars::GITHUB_TOKEN, GITHUB_TOKEN),
        ],
    );
    let opts = StatusOptions {
        github_repo: Some(REPO.into()),
        ..quick()
    };
    let r = reporter(&vars, &opts);
    status::post_summary(&*r, &sample_summary(), false, true).unwrap();

    assert!(gl.requests().is_empty(), "nothing may go to GitLab");
    let reqs = gh.requests();
    assert_eq!(reqs.len(), 1);
    assert_valid_github(github_spec(), &reqs[0]);
    assert_eq!(reqs[0].path, format!("/repos/{REPO}/statuses/{SHA}"));
    assert_eq!(
        reqs[0].header("authorization"),
        Some(&*format!("Bearer {GITHUB_TOKEN}"))
    );
    let body = reqs[0].json();
    assert_eq!(body["state"], "failure");
    assert_eq!(body["context"], "stackci/demo");
    assert_eq!(
        body["description"],
        "1 built, 1 cached, 1 failed, 1 skipped, 1 external"
    );
    assert_eq!(body["target_url"], "https://gitlab.example/g/p/-/pipelines/9001");
}

#[test]
fn per_package_statuses_follow_the_outcomes() {
    let gh = github_stand_in();
    let r = reporter(&github_vars(&gh.url(), &[]), &quick());
    status::post_summary(&*r, &sample_summary(), true, true).unwrap();
    let reqs = gh.requests();
    let got: Vec<(String, String)> = reqs
        .iter()
        .map(|q| {
            assert_valid_github(github_spec(), q);
            let b = q.json();
            (
                b["context"].as_str().unwrap().to_string(),
                b["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("stackci/demo/zlib", "success"),
        ("stackci/demo/cmake", "success"),
        ("stackci/demo/hello", "failure"),
        ("stackci/demo/world", "error"),
        ("stackci/demo/glibc", "success"),
        ("stackci/demo", "failure"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn permission_errors_say_what_the_token_lacks() {
    let gh = github_stand_in();
    let gl = gitlab_stand_in();
    let ghr = reporter(&github_vars(&gh.url(), &[]), &quick());
    let glr = reporter(&gitlab_vars(&format!("{}/api/v4", gl.url()), &[]), &quick());
    let st = Status::new(State::Success, "stackci/demo");
    for (code, body, needles) in [
        (
            401,
            r#"{"message":"Bad credentials"}"#,
            &["401", "invalid or expired", "statuses: write"][..],
        ),
        (
            403,
            r#"{"message":"Resource not accessible by integration"}"#,
            &[
                "403",
                "lacks the `statuses: write` permission",
                "Resource not accessible",
            ][..],
        ),
        (
            404,
            r#"{"message":"Not Found"}"#,
            &["404", "octo-org/stack-repo", "statuses: write"][..],
        ),
    ] {
        gh.reset();
        gh.script([Reply::new(code, body)]);
        let err = ghr.post(&st).unwrap_err();
        assert!(
            matches!(err, StatusError::Permission { code: c, .. } if c == code),
            "{err:?}"
        );
        let msg = err.to_string();
        for n in needles {
            assert!(msg.contains(n), "GitHub {code}: {msg:?} lacks {n:?}");
        }
        assert_eq!(gh.requests().len(), 1, "GitHub {code} is not retried");
    }
    for (code, body, needles) in [
        (
            401,
            r#"{"message":"401 Unauthorized"}"#,
            &["401", "invalid, expired or revoked", "`api` scope"][..],
        ),
        (
            403,
            r#"{"message":"403 Forbidden"}"#,
            &["403", "Developer role", "`api` scope", "project 17"][..],
        ),
        (
            404,
            r#"{"message":"404 Project Not Found"}"#,
            &["404", "project 17", "Developer role"][..],
        ),
    ] {
        gl.reset();
        gl.script([Reply::new(code, body)]);
        let err = glr.post(&st).unwrap_err();
        assert!(
            matches!(err, StatusError::Permission { code: c, .. } if c == code),
            "{err:?}"
        );
        let msg = err.to_string();
        for n in needles {
            assert!(msg.contains(n), "GitLab {code}: {msg:?} lacks {n:?}");
        }
        assert_eq!(gl.requests().len(), 1, "GitLab {code} is not retried");
    }
    // A validation error is reported as is, not as a permission problem.
    gh.reset();
    gh.script([Reply::new(422, r#"{"message":"Validation Failed"}"#)]);
    let err = ghr.post(&st).unwrap_err();
    assert!(matches!(err, StatusError::Rejected { code: 422, .. }), "{err:?}");
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let gh = github_stand_in();
    let r = reporter(&github_vars(&gh.url(), &[]), &quick());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    gh.script([
        Reply::new(502, "<html>Bad gateway</html>"),
        Reply::new(429, r#"{"message":"slow down"}"#).header("Retry-After", "0"),
        Reply::new(403, r#"{"message":"API rate limit exceeded for installation"}"#)
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", &now.to_string()),
    ]);
    let st = Status::new(State::Pending, "stackci/demo");
    r.post(&st).unwrap();
    let reqs = gh.requests();
    assert_eq!(reqs.len(), 4, "three retryable answers, then success");
    for q in &reqs {
        assert_valid_github(github_spec(), q);
    }

    gh.reset();
    gh.script((0..4).map(|_| Reply::new(502, "")));
    let err = r.post(&st).unwrap_err();
    assert!(matches!(err, StatusError::GaveUp { attempts: 4, .. }), "{err:?}");
    assert!(err.to_string().contains("502"), "{err}");
    assert_eq!(gh.requests().len(), 4, "as many requests as attempts");

    gh.reset();
    gh.script([Reply::new(429, "{}").header("Retry-After", "3600")]);
    let err = r.post(&st).unwrap_err();
    assert!(err.to_string().contains("asks to wait 3600 s"), "{err}");
    assert_eq!(gh.requests().len(), 1, "a wait beyond max_delay is not sat out");

    let gl = gitlab_stand_in();
    gl.script([
        Reply::new(503, ""),
        Reply::new(429, r#"{"message":"Retry later"}"#).header("Retry-After", "0"),
    ]);
    let r = reporter(&gitlab_vars(&format!("{}/api/v4", gl.url()), &[]), &quick());
    r.post(&st).unwrap();
    let reqs = gl.requests();
    assert_eq!(reqs.len(), 3);
    for q in &reqs {
        assert_valid_gitlab(q);
    }
}

#[test]
fn retry_after_dates_are_honoured() {
    let gl = gitlab_stand_in();
    let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    gl.script([Reply::new(503, "").header("Retry-After", &soon)]);
    let r = reporter(&gitlab_vars(&format!("{}/api/v4", gl.url()), &[]), &quick());
    let start = std::time::Instant::now();
    r.post(&Status::new(State::Running, "stackci/demo")).unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "the date was not waited for: {waited:?}"
    );
    assert_eq!(gl.requests().len(), 2);
}

#[test]
fn posting_from_inside_an_async_runtime_fails_without_a_request() {
    let gh = github_stand_in();
    let r = reporter(&github_vars(&gh.url(), &[]), &quick());
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let err = runtime
        .block_on(async { r.post(&Status::new(State::Running, "stackci/demo")) })
        .unwrap_err();
    assert!(matches!(err, StatusError::NotSent { .. }), "{err:?}");
    assert!(err.to_string().contains("synchronous"), "{err}");
    assert!(gh.requests().is_empty());
}

#[test]
fn long_descriptions_and_urls_are_cut_to_the_api_limits() {
    let long: String = "ü".repeat(300);
    let long_url = format!("https://example.com/{}", "x".repeat(300));
    let short_url = format!("https://example.com/{}", "y".repeat(200));

    let gh = github_stand_in();
    let r = reporter(&github_vars(&gh.url(), &[]), &quick());
    r.post(&Status::new(State::Success, "c").with_description(long.clone()))
        .unwrap();
    let body = gh.requests()[0].json();
    let d = body["description"].as_str().unwrap();
    assert_eq!(d.chars().count(), 140);
    assert!(d.ends_with('…') && d.starts_with("üüü"));

    let gl = gitlab_stand_in();
    let r = reporter(&gitlab_vars(&format!("{}/api/v4", gl.url()), &[]), &quick());
    r.post(
        &Status::new(State::Success, "c")
            .with_description(long)
            .with_target_url(long_url),
    )
    .unwrap();
    r.post(&Status::new(State::Success, "c").with_target_url(short_url.clone()))
        .unwrap();
    let reqs = gl.requests();
    for q in &reqs {
        assert_valid_gitlab(q);
    }
    let first = reqs[0].json();
    assert_eq!(first["description"].as_str().unwrap().chars().count(), 255);
    assert!(
        first.get("target_url").is_none(),
        "a URL over GitLab's 255 characters is left out, not cut into a wrong link"
    );
    assert_eq!(reqs[1].json()["target_url"], short_url.as_str());
}

#[test]
fn missing_tokens_and_ci_are_clear() {
    assert!(status::from_vars(&Vars::default(), &quick()).unwrap().is_none());

    let no_token = Vars::from_pairs([
        (env_vars::GITHUB_ACTIONS, "true"),
        (env_vars::GITHUB_REPOSITORY, REPO),
        (env_vars::GITHUB_SHA, SHA),
    ]);
    let err = status::from_vars(&no_token, &quick()).unwrap_err().to_string();
    assert!(err.contains("GITHUB_TOKEN") && err.contains("statuses: write"), "{err}");

    let gl = Vars::from_pairs([
        (env_vars::GITLAB_CI, "true"),
        (env_vars::CI_API_V4_URL, "http://127.0.0.1:9/api/v4"),
        (env_vars::CI_PROJECT_ID, "17"),
        (env_vars::CI_COMMIT_SHA, SHA),
        // The job token is never used for statuses.
        ("CI_JOB_TOKEN", "job-token-value"),
    ]);
    let err = status::from_vars(&gl, &quick()).unwrap_err().to_string();
    assert!(
        err.contains("STACKCI_GITLAB_TOKEN") && err.contains("`api` scope"),
        "{err}"
    );

    let opts = StatusOptions {
        github_repo: Some(REPO.into()),
        ..quick()
    };
    let err = status::from_vars(&Vars::default(), &opts).unwrap_err().to_string();
    assert!(err.contains("no CI environment"), "{err}");

    let opts = StatusOptions {
        github_repo: Some("not a repo".into()),
        ..quick()
    };
    let err = status::from_vars(&github_vars("http://127.0.0.1:9", &[]), &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("OWNER/REPO"), "{err}");
}

#[test]
fn token_env_names_the_variable_to_read() {
    let gh = github_stand_in();
    let vars = github_vars(&gh.url(), &[("MY_STATUS_TOKEN", "other-token-value")]);
    let opts = StatusOptions {
        token_env: Some("MY_STATUS_TOKEN".into()),
        ..quick()
    };
    reporter(&vars, &opts).post(&Status::new(State::Success, "c")).unwrap();
    assert_eq!(
        gh.requests()[0].header("authorization"),
        Some("Bearer other-token-value")
    );
    let opts = StatusOptions {
        token_env: Some("UNSET_VARIABLE".into()),
        ..quick()
    };
    let err = status::from_vars(&vars, &opts).unwrap_err().to_string();
    assert!(err.contains("--token-env UNSET_VARIABLE"), "{err}");
}

/// Every failure path, with servers that echo the credential back in their answers.
fn leak_scenarios() -> Vec<String> {
    let mut texts = Vec::new();
    let echo = r#"{"message":"credential {auth} rejected"}"#;
    let gh = github_stand_in();
    let gl = gitlab_stand_in();
    let ghr = reporter(&github_vars(&gh.url(), &[]), &quick());
    let glr = reporter(&gitlab_vars(&format!("{}/api/v4", gl.url()), &[]), &quick());
    let st = Status::new(State::Failure, "stackci/demo");
    texts.push(format!("{ghr:?} {glr:?}"));
    for code in [401, 403, 404, 422, 502] {
        gh.reset();
        gl.reset();
        // Enough answers for post + two reports, each up to 4 attempts.
        gh.script((0..12).map(|_| Reply::new(code, echo)));
        gl.script((0..12).map(|_| Reply::new(code, echo)));
        for r in [&ghr, &glr] {
            let err = r.post(&st).unwrap_err();
            texts.push(format!("{err} | {err:?}"));
            let e = status::report(&**r, &st, true).unwrap_err();
            texts.push(format!("{e} | {e:#} | {e:?}"));
            status::report(&**r, &st, false).unwrap();
        }
    }
    // Transport errors: nothing listens on the API address.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://127.0.0.1:{}", dead.local_addr().unwrap().port());
    drop(dead);
    for r in [
        reporter(&github_vars(&dead_url, &[]), &quick()),
        reporter(&gitlab_vars(&format!("{dead_url}/api/v4"), &[]), &quick()),
    ] {
        let err = r.post(&st).unwrap_err();
        texts.push(format!("{err} | {err:?}"));
        status::report(&*r, &st, false).unwrap();
    }
    let vars = github_vars(&gh.url(), &[]);
    texts.push(format!(
        "{vars:?} {:?} {}",
        Secret::new(GITHUB_TOKEN),
        Secret::new(GITHUB_TOKEN)
    ));
    texts
}

#[test]
fn the_token_never_appears_in_errors_or_debug_output() {
    let texts = leak_scenarios();
    let all = texts.join("\n");
    assert!(!all.contains(GITHUB_TOKEN), "GitHub token leaked:\n{all}");
    assert!(!all.contains(GITLAB_TOKEN), "GitLab token leaked:\n{all}");
    // The servers did echo it; the scrubbed form shows it was caught, not absent.
    assert!(all.contains("credential Bearer *** rejected"), "{all}");
    assert!(all.contains("credential *** rejected"), "{all}");
}

/// Run as a child process by `the_token_never_appears_in_process_output`; a no-op otherwise.
#[test]
fn child_process_posting_failing_statuses() {
    if std::env::var_os("STACKCI_STATUS_TEST_CHILD").is_none() {
        return;
    }
    for text in leak_scenarios() {
        println!("{text}");
    }
}

#[test]
fn the_token_never_appears_in_process_output() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "status::child_process_posting_failing_statuses",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("STACKCI_STATUS_TEST_CHILD", "1")
        .output()
        .expect("running the test binary as a child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("warning: commit status stackci/demo (failure) not posted"),
        "{stderr}"
    );
    assert!(stdout.contains("Permission"), "the child printed its errors: {stdout}");
    for token in [GITHUB_TOKEN, GITLAB_TOKEN] {
        assert!(
            !stdout.contains(token) && !stderr.contains(token),
            "token leaked:\n{stdout}\n{stderr}"
        );
    }
}

#[test]
fn junit_report_reads_back_with_junitparser() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.xml");
    output::write_junit(&path, &sample_summary()).unwrap();
    let script = r#"
import json, sys
from junitparser import JUnitXml, Failure, Skipped, Error
xml = JUnitXml.fromfile(sys.argv[1])
cases = []
for suite in xml:
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        res = case.result[0] if case.result else None
        cases.append({
            "suite": suite.name, "name": case.name, "classname": case.classname,
            "time": case.time, "kinds": kinds,
            "message": res.message if res is not None else None,
            "text": res.text if res is not None else None,
            "out": case.system_out,
        })
print(json.dumps({"tests": xml.tests, "failures": xml.failures, "skipped": xml.skipped, "cases": cases}))
"#;
    let out = Command::new(apis::python())
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "junitparser could not read the report:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&path).unwrap()
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["tests"], 5);
    assert_eq!(got["failures"], 1);
    assert_eq!(got["skipped"], 2);
    let cases = got["cases"].as_array().unwrap();
    let by_name: BTreeMap<&str, &Value> = cases.iter().map(|c| (c["name"].as_str().unwrap(), c)).collect();
    assert_eq!(by_name.len(), 5, "one case per package: {cases:#?}");
    assert_eq!(by_name["zlib"]["kinds"], json!([]));
    assert_eq!(by_name["zlib"]["time"], 12.0);
    assert_eq!(by_name["zlib"]["classname"], "stackci.demo");
    assert_eq!(by_name["cmake"]["kinds"], json!([]));
    assert_eq!(by_name["hello"]["kinds"], json!(["Failure"]));
    assert_eq!(by_name["world"]["kinds"], json!(["Skipped"]));
    assert_eq!(by_name["world"]["message"], "dependency hello failed");
    assert_eq!(by_name["glibc"]["kinds"], json!(["Skipped"]));
    let text = by_name["hello"]["text"].as_str().unwrap();
    assert!(
        text.contains("error: <stdio.h> & \"quotes\" 'x'  ✓ ```\nmake: *** [all] Error 1"),
        "log tail survives escaping, ANSI and control characters removed: {text:?}"
    );
    assert!(
        by_name["hello"]["message"]
            .as_str()
            .unwrap()
            .contains("hello 1.0 failed")
    );
    assert!(by_name["zlib"]["out"].as_str().unwrap().contains("hash: zlibhash"));
}

#[test]
fn step_summary_and_outputs_land_in_the_github_files() {
    let dir = tempfile::tempdir().unwrap();
    let summary_file = dir.path().join("summary.md");
    let output_file = dir.path().join("output");
    std::fs::write(&summary_file, "previous step\n").unwrap();
    std::fs::write(&output_file, "earlier=1\n").unwrap();
    let vars = Vars::from_pairs([
        (env_vars::GITHUB_ACTIONS, "true"),
        (env_vars::GITHUB_STEP_SUMMARY, summary_file.to_str().unwrap()),
        (env_vars::GITHUB_OUTPUT, output_file.to_str().unwrap()),
    ]);
    let mut s = sample_summary();
    s.packages.push(pkg("tools", failed("ld: cannot find -lz"), 1));
    output::publish_github(&vars, &s).unwrap();
    // Outside GitHub Actions nothing is written.
    output::publish_github(&Vars::default(), &s).unwrap();

    let md = std::fs::read_to_string(&summary_file).unwrap();
    assert!(
        md.starts_with("previous step\n### stackci: demo — 1 built, 1 cached, 2 failed, 1 skipped, 1 external\n"),
        "{md}"
    );
    assert!(md.contains("| Package | Version | Hash | Result | Time |"));
    for row in [
        "| zlib | 1.0 | `zlibhash0123` | ✅ built | 12.0 s |",
        "| cmake | 1.0 | `cmakehash012` | ♻️ cached | 0.0 s |",
        "| hello | 1.0 | `hellohash012` | ❌ failed | 3.0 s |",
        "| world | 1.0 | `worldhash012` | ⏭️ skipped: dependency hello failed | 0.0 s |",
        "| glibc | 1.0 | `glibchash012` | 📦 external | 0.0 s |",
    ] {
        assert!(md.contains(row), "missing row {row}\n{md}");
    }
    // The log has a ``` run, so its block is fenced with four backticks.
    assert!(
        md.contains(
            "<details><summary>hello 1.0: end of the build log</summary>\n\n````text\ncc -c hello.c\nerror: <stdio.h>"
        ),
        "{md}"
    );
    assert!(!md.contains('\x1b'));

    let outputs = parse_github_output(&std::fs::read_to_string(&output_file).unwrap());
    assert_eq!(outputs["earlier"], "1");
    assert_eq!(outputs["built"], "1");
    assert_eq!(outputs["cached"], "1");
    assert_eq!(outputs["failed"], "2");
    assert_eq!(outputs["skipped"], "1");
    assert_eq!(outputs["external"], "1");
    assert_eq!(outputs["result"], "failure");
    assert_eq!(outputs["summary"], "1 built, 1 cached, 2 failed, 1 skipped, 1 external");
    assert_eq!(outputs["failed-packages"], "hello\ntools");
}

/// Parses a `GITHUB_OUTPUT` file the way the Actions runner does
/// (https://docs.github.com/actions/reference/workflow-commands-for-github-actions#setting-an-output-parameter):
/// `NAME=VALUE` lines, or `NAME<<DELIMITER`, value lines, a line equal to `DELIMITER`.
fn parse_github_output(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.split('\n');
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let heredoc = line.find("<<");
        match (eq, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                out.insert(line[..e].to_string(), line[e + 1..].to_string());
            }
            (_, Some(h)) => {
                let (name, delim) = (&line[..h], &line[h + 2..]);
                let mut value = Vec::new();
                loop {
                    let l = lines.next().unwrap_or_else(|| panic!("unterminated heredoc {name}"));
                    if l == delim {
                        break;
                    }
                    value.push(l);
                }
                out.insert(name.to_string(), value.join("\n"));
            }
            _ => panic!("malformed GITHUB_OUTPUT line {line:?}"),
        }
    }
    out
}

#[test]
fn ci_log_groups_follow_each_ci_syntax() {
    let gh = Vars::from_pairs([(env_vars::GITHUB_ACTIONS, "true")]);
    let gl = Vars::from_pairs([(env_vars::GITLAB_CI, "true")]);
    assert_eq!(Flavor::detect(&gh), Flavor::GitHub);
    assert_eq!(Flavor::detect(&gl), Flavor::GitLab);
    assert_eq!(Flavor::detect(&Vars::default()), Flavor::Plain);

    let f = Flavor::GitHub;
    assert_eq!(
        f.group_start("zlib", "build zlib 1.3.1", true),
        "::group::build zlib 1.3.1\n"
    );
    assert_eq!(f.group_end("zlib"), "::endgroup::\n");
    let a = output::Annotation {
        file: Some("stack.yaml".into()),
        line: Some(12),
        col: Some(5),
        title: Some("unknown dependency".into()),
        message: "hello depends on zlb, which is not in the stack".into(),
    };
    assert_eq!(
        f.error(&a),
        "::error file=stack.yaml,line=12,col=5,title=unknown dependency::hello depends on zlb, which is not in the stack\n"
    );

    let start = Flavor::GitLab.group_start("build-zlib", "Build zlib", true);
    let ts: u64 = start["\x1b[0Ksection_start:".len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(now.abs_diff(ts) < 60);
    assert_eq!(
        start,
        format!("\x1b[0Ksection_start:{ts}:build-zlib[collapsed=true]\r\x1b[0KBuild zlib\n")
    );
    let end = Flavor::GitLab.group_end("build-zlib");
    assert!(
        end.starts_with("\x1b[0Ksection_end:") && end.ends_with(":build-zlib\r\x1b[0K\n"),
        "{end:?}"
    );
    assert_eq!(
        Flavor::GitLab.error(&a),
        "error: stack.yaml:12:5: unknown dependency: hello depends on zlb, which is not in the stack\n"
    );
}
