//! `stackci trigger gitlab`: start a GitLab pipeline from a GitHub job, pass it the GitHub
//! commit to report on, and with `--wait` follow it and exit with its result.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::ci::env::{Ci, Vars};
use crate::ci::status::{self, State, Status, StatusOptions, StatusReporter};
use crate::ci::trigger::{Finished, Pipeline, Trigger, api_base};
use crate::cli::{Cli, TriggerGitlabArgs};
use crate::env_vars;
use crate::net::retry::Retry;

/// Triggers the pipeline, posts `pending` on GitHub, and with `--wait` follows it.
pub fn gitlab(cli: &Cli, args: &TriggerGitlabArgs) -> Result<ExitCode> {
    let vars = Vars::from_process();
    let token_name = args
        .token_env
        .as_deref()
        .unwrap_or(env_vars::STACKCI_GITLAB_TRIGGER_TOKEN);
    let Some((token, _)) = vars.token(&[token_name]) else {
        bail!(
            "no trigger token: set {token_name} to a pipeline trigger token of the GitLab project (Settings > CI/CD > Pipeline trigger tokens; in a workflow from a secret), or name another variable with --token-env"
        );
    };
    let read_token = vars
        .token(&[env_vars::STACKCI_GITLAB_TOKEN, env_vars::GITLAB_TOKEN])
        .map(|(t, _)| t);
    let api = match (&args.gitlab_url, vars.get(env_vars::CI_API_V4_URL)) {
        (Some(url), _) => api_base(url),
        (None, Some(url)) => api_base(url),
        (None, None) => "https://gitlab.com/api/v4".to_string(),
    };
    let interval = Duration::try_from_secs_f64(args.interval)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--interval {}: give a positive number of seconds", args.interval))?;
    let timeout = crate::stack::duration::parse(&args.timeout)
        .with_context(|| format!("--timeout `{}`: give a duration such as 90m or 6h", args.timeout))?;

    let github = match Ci::detect(&vars)? {
        Some(Ci::GitHub(gh)) => Some(gh),
        _ => None,
    };
    let mut variables: Vec<(String, String)> = Vec::new();
    if let Some(gh) = &github {
        variables.push((env_vars::STACKCI_GITHUB_REPOSITORY.into(), gh.repository.clone()));
        variables.push((env_vars::STACKCI_GITHUB_SHA.into(), gh.sha.clone()));
        if let Some(url) = gh.run_url() {
            variables.push((env_vars::STACKCI_GITHUB_RUN_URL.into(), url));
        }
    }
    for kv in &args.vars {
        let Some((k, v)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            bail!("--var `{kv}` is not KEY=VALUE");
        };
        variables.retain(|(key, _)| key != k);
        variables.push((k.to_string(), v.to_string()));
    }

    // The reporter is set up first: a GitHub job without GITHUB_TOKEN learns it before a
    // pipeline starts. Reporting never fails the command (as `stackci status` without --strict).
    let reporter: Option<Box<dyn StatusReporter>> = if args.no_status || github.is_none() {
        None
    } else {
        match status::from_vars(&vars, &StatusOptions::default()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("warning: no commit status will be posted: {e:#}");
                None
            }
        }
    };
    let context = args.context.clone().unwrap_or_else(|| {
        let name = super::status::stack_if_present(cli, false)
            .ok()
            .flatten()
            .map(|s| s.name)
            .or_else(|| status::repository_name(&vars, None))
            .unwrap_or_else(|| "gitlab".into());
        status::stack_context(&name)
    });

    let trigger = Trigger::new(&api, &args.project, token, read_token, Retry::STATUS)?;
    let pipeline = trigger.start(&args.git_ref, &variables)?;
    let url = pipeline.web_url.clone().unwrap_or_default();
    eprintln!(
        "started GitLab pipeline {} of {} on `{}`: {url}",
        pipeline.id, args.project, args.git_ref
    );
    let post = |state: State, what: &str, p: &Pipeline| {
        if let Some(r) = &reporter {
            let mut s =
                Status::new(state, context.clone()).with_description(format!("GitLab pipeline #{} {what}", p.id));
            if let Some(u) = &p.web_url {
                s = s.with_target_url(u.clone());
            }
            // Not strict: a warning, never a failure.
            let _ = status::report(r.as_ref(), &s, false);
        }
    };
    post(State::Pending, "started", &pipeline);
    write_outputs(&vars, &pipeline)?;
    if !args.wait {
        print(cli.json, &pipeline)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (done, finished) = trigger.wait(pipeline.id, interval, timeout, |p| {
        eprintln!("pipeline {}: {}", p.id, p.status);
    })?;
    let state = match (finished, done.status.as_str()) {
        (Finished::Success, _) => State::Success,
        (_, "canceled" | "canceling") => State::Canceled,
        _ => State::Failure,
    };
    post(state, &done.status, &done);
    write_outputs(&vars, &done)?;
    print(cli.json, &done)?;
    Ok(match finished {
        Finished::Success => ExitCode::SUCCESS,
        Finished::NotSuccess => ExitCode::from(1),
    })
}

/// `pipeline-id`, `pipeline-url` and `pipeline-status` for later steps, in a GitHub job.
fn write_outputs(vars: &Vars, p: &Pipeline) -> Result<()> {
    if let Some(path) = vars.get(env_vars::GITHUB_OUTPUT) {
        crate::ci::output::append_github_output(
            std::path::Path::new(path),
            &[
                ("pipeline-id".into(), p.id.to_string()),
                ("pipeline-url".into(), p.web_url.clone().unwrap_or_default()),
                ("pipeline-status".into(), p.status.clone()),
            ],
        )?;
    }
    Ok(())
}

/// The pipeline on stdout: its URL, or with `--json` `{"id","status","web_url"}`.
fn print(json: bool, p: &Pipeline) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::json!({ "id": p.id, "status": p.status, "web_url": p.web_url, "sha": p.sha })
        );
    } else {
        println!("{}", p.web_url.clone().unwrap_or_else(|| p.id.to_string()));
    }
    Ok(())
}
