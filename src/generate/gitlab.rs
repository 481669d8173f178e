//! `stackci generate gitlab`: the dynamic child pipeline for what a plan must build.
//!
//! One job per package to build, named `<name>@<version> <first 7 of hash>`, in the stage
//! of its dependency level, with `needs` on its dependencies built in the same pipeline;
//! every job `extends` one hidden template ([`TEMPLATE`]) holding the shared settings,
//! so the file stays small. A `finish` stage updates the index and reports the status.
//!
//! GitLab's limits shape the output:
//! - at most [`GitlabSettings::max_needs`] `needs` per job: a job with more dependencies
//!   in its pipeline omits `needs` and waits for all earlier stages instead;
//! - at most [`GitlabSettings::max_jobs`] jobs and [`GitlabSettings::max_bytes`] bytes per
//!   file: a larger plan is cut, in level order, into *parts* (`<stem>-part-N.yml`), and the
//!   main file becomes a *driver* pipeline that fetches the parts from the generate job
//!   (`needs: pipeline: $STACKCI_PARENT_PIPELINE_ID`) and triggers them one stage after
//!   another with `strategy: depend`, then runs the finish jobs. A part only starts when
//!   every earlier part succeeded, so dependencies in earlier parts are already in the
//!   mirror; `needs` only name jobs of the same part.
//!
//! Besides, `<stem>-images.yml` holds one job per image of the stack's `images:` section,
//! which the component triggers on tags. Nothing to build gives a single no-op job
//! (GitLab rejects empty pipelines).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Result, bail, ensure};
use serde::Serialize;

use super::setup::{INSTALL_STACKCI, SETUP_SPACK, install_vars, spack_vars};
use super::yaml::{Block, append_entry, header, push_scalar, shell_quote};
use crate::plan::{Plan, Status};
use crate::stack::job_rules::{JobRule, Rules};
use crate::stack::settings::GitlabSettings;
use crate::stack::{Recipe, Stack, duration};

/// Name of the hidden template job every generated job `extends`.
pub const TEMPLATE: &str = ".stackci";

/// The hidden template of Spack packages' build jobs: [`TEMPLATE`] plus the step that gets
/// Spack (`SPACK_REPO`, `SPACK_REF`).
pub const SPACK_TEMPLATE: &str = ".stackci-spack";

/// Default main output file (the component triggers it).
pub const DEFAULT_OUTPUT: &str = "stackci-pipeline.yml";

/// Name of the component's job that runs `stackci generate gitlab`; a driver pipeline
/// fetches the part files from its artifacts.
pub const GENERATE_JOB: &str = "stackci-generate";

/// Variable the component's trigger job sets to its pipeline id (`$CI_PIPELINE_ID`), so a
/// driver pipeline can fetch artifacts from the generate job.
pub const PARENT_PIPELINE_VAR: &str = "STACKCI_PARENT_PIPELINE_ID";

/// Where build jobs leave their logs, relative to the stack file's directory; the template
/// keeps them as artifacts of failed jobs.
pub const LOG_DIR: &str = ".stackci/logs/";

/// The jobs of the finish stage (index and status on success, and on failure).
const FINISH_JOBS: usize = 2;

/// Inputs of [`gitlab_pipeline`] besides the plan and the stack.
#[derive(Debug, Clone)]
pub struct GitlabOptions {
    /// The stack file as jobs see it, relative to the project directory (exported as
    /// `STACKCI_STACK`).
    pub stack_file: String,
    /// The main output file, relative to the project directory; part and image files are
    /// named after it (`<stem>-part-N.yml`, `<stem>-images.yml`) in the same directory.
    pub output: String,
    /// Image of the jobs when `settings.image` is unset (the component passes its own).
    pub image: Option<String>,
    /// The stack's `ci: gitlab:` settings, with command-line overrides applied.
    pub settings: GitlabSettings,
    /// Name of the job that generated the files (for a driver's artifact fetch).
    pub generate_job: String,
}

impl GitlabOptions {
    /// Options with the default output name and generate job.
    pub fn new(stack_file: impl Into<String>, settings: GitlabSettings) -> GitlabOptions {
        GitlabOptions {
            stack_file: stack_file.into(),
            output: DEFAULT_OUTPUT.to_string(),
            image: None,
            settings,
            generate_job: GENERATE_JOB.to_string(),
        }
    }

    /// The file name of part `n` (1-based) or of the image pipeline (`suffix` = `images`).
    fn sibling(&self, suffix: &str) -> String {
        let stem = self
            .output
            .strip_suffix(".yml")
            .or_else(|| self.output.strip_suffix(".yaml"))
            .unwrap_or(&self.output);
        format!("{stem}-{suffix}.yml")
    }
}

/// Renders the child pipeline(s) for `plan`: `(path, yaml)` pairs, the main file first
/// (the one to trigger), then the parts it triggers if the plan had to be split, then the
/// image pipeline. Pure: nothing is read or written.
pub fn gitlab_pipeline(plan: &Plan, stack: &Stack, opts: &GitlabOptions) -> Result<Vec<(String, String)>> {
    let s = &opts.settings;
    ensure!(
        s.max_jobs >= 4,
        "ci.gitlab.max_jobs is {}; it must be at least 4",
        s.max_jobs
    );
    ensure!(
        plan.packages.len() == stack.packages.len(),
        "the plan has {} packages but the stack {} has {}",
        plan.packages.len(),
        stack.name,
        stack.packages.len()
    );
    ensure!(
        !has_credentials(&plan.mirror) && !plan.upstreams.iter().any(|u| has_credentials(u)),
        "the mirror URL or an upstream carries credentials; pass them through the environment instead"
    );
    let upstreams = plan.upstreams.join(",");
    let ctx = Context::new(plan, stack, opts, &upstreams)?;
    let jobs = jobs(plan, stack, spack_vars(stack).is_some())?;
    let mut files = Vec::new();
    if jobs.is_empty() {
        files.push((
            opts.output.clone(),
            ctx.noop(&format!(
                "all {} packages are cached or external; nothing to build",
                plan.packages.len()
            ))?,
        ));
    } else {
        files.extend(ctx.pipelines(&jobs)?);
    }
    files.push((opts.sibling("images"), ctx.images()?));
    Ok(files)
}

/// True when a URL has a user-info part (`scheme://user:pass@host`).
fn has_credentials(url: &str) -> bool {
    crate::net::redact::userinfo(url).is_some()
}

/// One build job.
struct Job<'a> {
    /// Job name.
    name: String,
    /// Dependency level: its stage.
    level: usize,
    /// Jobs it waits for (indices into the job list, all smaller).
    deps: Vec<u32>,
    /// Its one script line.
    script: String,
    /// The template it extends.
    template: &'static str,
    /// The `ci: mapping:` rule for its package, with the rule's timeout.
    rule: Option<(&'a JobRule, Option<std::time::Duration>)>,
}

/// The build jobs of `plan`, sorted by level (then dependency order).
///
/// A job waits for the built packages among its dependencies, and also for those below a
/// cached dependency (a cached package whose own dependency must be rebuilt), so every
/// package is in the mirror before a job needs it.
fn jobs<'a>(plan: &Plan, stack: &'a Stack, spack_template: bool) -> Result<Vec<Job<'a>>> {
    let rules = Rules::new(&stack.ci.mapping)?;
    let n = plan.packages.len();
    // below[i]: the built packages package i waits for (its own dependencies for a package
    // to build; for a cached one, what its dependents must wait for through it).
    let mut below: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut level = vec![0usize; n];
    for (i, e) in plan.packages.iter().enumerate() {
        if e.status == Status::External {
            continue;
        }
        let mut w: Vec<u32> = Vec::new();
        for d in &stack.packages[i].deps {
            match plan.packages[d.index].status {
                Status::Build => w.push(d.index as u32),
                Status::Cached => w.extend_from_slice(&below[d.index]),
                Status::External => {}
            }
        }
        if w.len() > 1 {
            w.sort_unstable();
            w.dedup();
        }
        if e.status == Status::Build {
            level[i] = w.iter().map(|&d| level[d as usize] + 1).max().unwrap_or(0);
        }
        below[i] = w;
    }
    // Counting sort of the packages to build by level; stable, so dependency order within.
    let build: Vec<usize> = (0..n).filter(|&i| plan.packages[i].status == Status::Build).collect();
    let levels = build.iter().map(|&i| level[i] + 1).max().unwrap_or(0);
    let mut start = vec![0usize; levels + 1];
    for &i in &build {
        start[level[i] + 1] += 1;
    }
    for l in 0..levels {
        start[l + 1] += start[l];
    }
    let mut order = vec![0usize; build.len()];
    let mut job_of = vec![u32::MAX; n];
    for &i in &build {
        let slot = &mut start[level[i]];
        order[*slot] = i;
        job_of[i] = *slot as u32;
        *slot += 1;
    }
    let names = job_names(plan, &order);
    let jobs = order
        .iter()
        .zip(names)
        .map(|(&i, name)| {
            let e = &plan.packages[i];
            let mut deps: Vec<u32> = below[i].iter().map(|&d| job_of[d as usize]).collect();
            deps.sort_unstable();
            let spack = spack_template && stack.packages[i].recipe == Recipe::Spack;
            Job {
                name,
                level: level[i],
                deps,
                script: format!("stackci build {}", shell_quote(&e.tag)),
                template: if spack { SPACK_TEMPLATE } else { TEMPLATE },
                rule: rules.find(&e.name),
            }
        })
        .collect();
    Ok(jobs)
}

/// `<name>@<version> <hash7>` for each entry of `order`; where two would be equal, the
/// full hash instead of its first 7 characters. At most 255 characters (GitLab's limit).
fn job_names(plan: &Plan, order: &[usize]) -> Vec<String> {
    let mut names: Vec<String> = order
        .iter()
        .map(|&i| {
            let e = &plan.packages[i];
            let mut name = format!("{}@{}", e.name, e.version);
            if name.len() > 200 {
                let cut = (0..=200).rev().find(|&c| name.is_char_boundary(c)).unwrap_or(0);
                name.truncate(cut);
            }
            name.push(' ');
            name.push_str(&e.hash[..e.hash.len().min(7)]);
            name
        })
        .collect();
    let mut seen: HashMap<&str, u32> = HashMap::with_capacity(names.len());
    for n in &names {
        *seen.entry(n.as_str()).or_default() += 1;
    }
    let dup: Vec<bool> = names.iter().map(|n| seen[n.as_str()] > 1).collect();
    for ((name, &i), dup) in names.iter_mut().zip(order).zip(dup) {
        if dup {
            let short = plan.packages[i].hash.len().min(7);
            name.truncate(name.len() - short);
            name.push_str(&plan.packages[i].hash);
        }
    }
    names
}

/// Everything shared by the files of one generation.
struct Context<'a> {
    opts: &'a GitlabOptions,
    stack: &'a Stack,
    /// The serialized hidden template job (`.stackci: ...`).
    template: String,
    /// Image and runner tags, for the jobs that do not extend the template.
    image: Option<&'a str>,
}

/// The hidden template job.
#[derive(Serialize)]
struct Template<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    variables: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    before_script: Vec<Block<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<&'a str>,
    retry: Retry,
    interruptible: bool,
    artifacts: Artifacts,
}

/// The Spack template: the shared one, plus the variables and the step that get Spack.
#[derive(Serialize)]
struct SpackTemplate<'a> {
    extends: &'static str,
    variables: BTreeMap<&'static str, &'a str>,
    before_script: Vec<Block<'a>>,
}

/// `retry:`: retry jobs lost to the infrastructure, never script failures.
#[derive(Serialize)]
struct Retry {
    max: u8,
    when: [&'static str; 5],
}

/// `artifacts:` of the template: build logs of failed jobs.
#[derive(Serialize)]
struct Artifacts {
    when: &'static str,
    paths: Vec<String>,
    expire_in: &'static str,
}

/// A package build job (and the finish jobs).
#[derive(Serialize)]
struct BuildJob<'a> {
    extends: &'static str,
    stage: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    needs: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    when: Option<&'static str>,
    script: Vec<&'a str>,
}

/// A job that runs without the template (no-op, artifact fetch).
#[derive(Serialize)]
struct PlainJob<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    stage: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    needs: Option<[PipelineNeed<'a>; 1]>,
    script: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifacts: Option<FetchArtifacts>,
}

/// `needs: - pipeline: ... job: ...`: artifacts of a job in the parent pipeline.
#[derive(Serialize)]
struct PipelineNeed<'a> {
    pipeline: String,
    job: &'a str,
}

/// `artifacts:` of the driver's fetch job.
#[derive(Serialize)]
struct FetchArtifacts {
    paths: Vec<String>,
    expire_in: &'static str,
}

/// A trigger job of the driver pipeline.
#[derive(Serialize)]
struct TriggerJob<'a> {
    stage: &'a str,
    trigger: Trigger<'a>,
}

/// `trigger:` of a driver job.
#[derive(Serialize)]
struct Trigger<'a> {
    include: [IncludeArtifact<'a>; 1],
    strategy: &'static str,
}

/// `include: - artifact: ... job: ...`.
#[derive(Serialize)]
struct IncludeArtifact<'a> {
    artifact: &'a str,
    job: &'a str,
}

const FINISH_STAGE: &str = "finish";
const FETCH_JOB: &str = "stackci-fetch-parts";

impl<'a> Context<'a> {
    fn new(plan: &'a Plan, stack: &'a Stack, opts: &'a GitlabOptions, upstreams: &'a str) -> Result<Context<'a>> {
        let s = &opts.settings;
        let image = s.image.as_deref().or(opts.image.as_deref());
        let install = install_vars(&stack.ci.install);
        let mut variables = BTreeMap::from([
            ("STACKCI_STACK", opts.stack_file.as_str()),
            ("STACKCI_MIRROR", plan.mirror.as_str()),
        ]);
        // Every job reads through the upstreams the plan found packages in.
        if !upstreams.is_empty() {
            variables.insert("STACKCI_UPSTREAMS", upstreams);
        }
        variables.extend(install.iter().map(|(k, v)| (*k, v.as_str())));
        let spack = spack_vars(stack);
        for (k, _) in spack.iter().flatten() {
            if s.variables.contains_key(*k) {
                bail!("ci.gitlab.variables sets {k}: set `spack: {{ git:, ref: }}` in the stack instead");
            }
        }
        for (k, v) in &s.variables {
            if variables.insert(k, v).is_some() {
                bail!("ci.gitlab.variables sets {k}, which the generator sets itself");
            }
        }
        ensure!(
            !s.image_to.contains(['"', '\\', '`']),
            "ci.gitlab.image_to must not contain quotes, backslashes or backticks: it is used inside double quotes"
        );
        let dir = Path::new(&opts.stack_file)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let logs = if dir.is_empty() {
            LOG_DIR.to_string()
        } else {
            format!("{dir}/{LOG_DIR}")
        };
        let mut before: Vec<Block> = vec![Block(INSTALL_STACKCI)];
        before.extend(s.before_script.iter().map(|b| Block(b)));
        let template = Template {
            image,
            tags: &s.tags,
            variables,
            before_script: before,
            timeout: s.timeout.as_deref(),
            retry: Retry {
                max: 2,
                when: [
                    "runner_system_failure",
                    "stuck_or_timeout_failure",
                    "scheduler_failure",
                    "api_failure",
                    "data_integrity_failure",
                ],
            },
            interruptible: true,
            artifacts: Artifacts {
                when: "on_failure",
                paths: vec![logs],
                expire_in: "1 week",
            },
        };
        let mut out = String::new();
        append_entry(&mut out, TEMPLATE, &template)?;
        if let Some(vars) = &spack {
            let mut before: Vec<Block> = vec![Block(INSTALL_STACKCI), Block(SETUP_SPACK)];
            before.extend(s.before_script.iter().map(|b| Block(b)));
            let t = SpackTemplate {
                extends: TEMPLATE,
                variables: vars.iter().map(|(k, v)| (*k, v.as_str())).collect(),
                before_script: before,
            };
            append_entry(&mut out, SPACK_TEMPLATE, &t)?;
        }
        Ok(Context {
            opts,
            stack,
            template: out,
            image,
        })
    }

    /// The start of a file: header and `stages:`.
    fn head(&self, what: &str, stages: &[&str]) -> Result<String> {
        let mut out = header(what, &self.opts.stack_file);
        append_entry(&mut out, "stages", &stages)?;
        Ok(out)
    }

    /// A pipeline of one job that does nothing but say why.
    fn noop(&self, why: &str) -> Result<String> {
        let mut out = header("GitLab child pipeline", &self.opts.stack_file);
        let job = PlainJob {
            stage: None,
            image: self.image,
            tags: &self.opts.settings.tags,
            needs: None,
            script: vec![format!("echo {}", shell_quote(&format!("stackci: {why}")))],
            artifacts: None,
        };
        append_entry(&mut out, "stackci-nothing-to-do", &job)?;
        Ok(out)
    }

    /// The finish jobs: rebuild the index, report the status.
    fn finish(&self, out: &mut String) -> Result<()> {
        let ok = BuildJob {
            extends: TEMPLATE,
            stage: FINISH_STAGE,
            needs: None,
            when: None,
            script: vec!["stackci index", "stackci status success"],
        };
        append_entry(out, "stackci-index", &ok)?;
        let failed = BuildJob {
            extends: TEMPLATE,
            stage: FINISH_STAGE,
            needs: None,
            when: Some("on_failure"),
            script: vec!["stackci index", "stackci status failure"],
        };
        append_entry(out, "stackci-failed", &failed)
    }

    /// The build pipeline, or the driver and its parts when the jobs do not fit one file.
    fn pipelines(&self, jobs: &[Job]) -> Result<Vec<(String, String)>> {
        let s = &self.opts.settings;
        let stage_names: Vec<String> = (0..=jobs.last().map_or(0, |j| j.level))
            .map(|l| format!("level-{l}"))
            .collect();
        // Each job rendered with all its needs: an upper bound of its size in any part.
        let rendered: Vec<String> = jobs
            .iter()
            .map(|j| render_job(j, jobs, &stage_names, s.max_needs, 0))
            .collect();
        let all_stages: Vec<&str> = stage_names.iter().map(String::as_str).chain([FINISH_STAGE]).collect();
        let head = self.head("GitLab child pipeline", &all_stages)?;
        let body: usize = rendered.iter().map(String::len).sum();

        let mut finish = String::new();
        self.finish(&mut finish)?;
        if jobs.len() + FINISH_JOBS <= s.max_jobs
            && head.len() + self.template.len() + body + finish.len() <= s.max_bytes
        {
            let mut out = String::with_capacity(head.len() + self.template.len() + body + finish.len());
            out.push_str(&head);
            out.push_str(&self.template);
            rendered.iter().for_each(|r| out.push_str(r));
            out.push_str(&finish);
            return Ok(vec![(self.opts.output.clone(), out)]);
        }

        // Cut into parts, in level order; a part's head lists at most every stage.
        let fixed = self
            .head("GitLab child pipeline, part 999999 of 999999", &all_stages)?
            .len()
            + self.template.len();
        let mut parts: Vec<std::ops::Range<usize>> = Vec::new();
        let (mut start, mut bytes) = (0, fixed);
        for (i, r) in rendered.iter().enumerate() {
            if fixed + r.len() > s.max_bytes {
                bail!(
                    "the job of {} alone is {} bytes: over the {}-byte limit of a GitLab file (ci.gitlab.max_bytes)",
                    jobs[i].name,
                    r.len(),
                    s.max_bytes
                );
            }
            if i - start == s.max_jobs || bytes + r.len() > s.max_bytes {
                parts.push(start..i);
                (start, bytes) = (i, fixed);
            }
            bytes += r.len();
        }
        parts.push(start..jobs.len());
        let n = parts.len();
        ensure!(
            1 + n + FINISH_JOBS <= s.max_jobs,
            "{} jobs make {n} parts of at most {} jobs: too many for one driver pipeline; raise ci.gitlab.max_jobs",
            jobs.len(),
            s.max_jobs
        );

        let mut files = Vec::with_capacity(n + 1);
        let part_files: Vec<String> = (1..=n).map(|k| self.opts.sibling(&format!("part-{k}"))).collect();
        for (k, range) in parts.iter().enumerate() {
            let first = jobs[range.start].level;
            let last = jobs[range.end - 1].level;
            let stages: Vec<&str> = stage_names[first..=last].iter().map(String::as_str).collect();
            let mut out = self.head(&format!("GitLab child pipeline, part {} of {n}", k + 1), &stages)?;
            out.push_str(&self.template);
            for i in range.clone() {
                // Needs on jobs of earlier parts are dropped: those parts have finished.
                if jobs[i].deps.first().is_some_and(|&d| (d as usize) < range.start)
                    && jobs[i].deps.len() <= s.max_needs
                {
                    out.push_str(&render_job(&jobs[i], jobs, &stage_names, s.max_needs, range.start));
                } else {
                    out.push_str(&rendered[i]);
                }
            }
            files.push((part_files[k].clone(), out));
        }
        files.insert(0, (self.opts.output.clone(), self.driver(&part_files)?));
        Ok(files)
    }

    /// The driver pipeline: fetch the part files from the generate job, trigger each part
    /// in its own stage (so each starts when the previous one succeeded), then finish.
    fn driver(&self, part_files: &[String]) -> Result<String> {
        let n = part_files.len();
        let stage_names: Vec<String> = (1..=n).map(|k| format!("part-{k}")).collect();
        let stages: Vec<&str> = ["fetch"]
            .into_iter()
            .chain(stage_names.iter().map(String::as_str))
            .chain([FINISH_STAGE])
            .collect();
        let mut out = self.head(&format!("GitLab child pipeline driving {n} parts"), &stages)?;
        out.push_str(&self.template);
        let fetch = PlainJob {
            stage: Some("fetch"),
            image: self.image,
            tags: &self.opts.settings.tags,
            needs: Some([PipelineNeed {
                pipeline: format!("${PARENT_PIPELINE_VAR}"),
                job: &self.opts.generate_job,
            }]),
            script: vec![format!(
                "ls -l {}",
                part_files.iter().map(|f| shell_quote(f)).collect::<Vec<_>>().join(" ")
            )],
            artifacts: Some(FetchArtifacts {
                paths: part_files.to_vec(),
                expire_in: "1 week",
            }),
        };
        append_entry(&mut out, FETCH_JOB, &fetch)?;
        for (k, file) in part_files.iter().enumerate() {
            let job = TriggerJob {
                stage: &stage_names[k],
                trigger: Trigger {
                    include: [IncludeArtifact {
                        artifact: file,
                        job: FETCH_JOB,
                    }],
                    strategy: "depend",
                },
            };
            append_entry(&mut out, &format!("stackci part {} of {n}", k + 1), &job)?;
        }
        self.finish(&mut out)?;
        Ok(out)
    }

    /// The image pipeline: one job per image of the stack's `images:` section.
    fn images(&self) -> Result<String> {
        if self.stack.images.is_empty() {
            return self.noop("the stack has no images");
        }
        let mut out = self.head("GitLab image pipeline", &["images"])?;
        out.push_str(&self.template);
        for name in self.stack.images.keys() {
            ensure!(
                !name.contains(['"', '\\', '`', '$']),
                "image name {name:?} cannot be used in a GitLab job"
            );
            let to = self.opts.settings.image_to.replace("{image}", name);
            let script = format!("stackci image {} --to \"{to}\"", shell_quote(name));
            let job = BuildJob {
                extends: TEMPLATE,
                stage: "images",
                needs: None,
                when: None,
                script: vec![&script],
            };
            append_entry(&mut out, &format!("stackci-image {name}"), &job)?;
        }
        Ok(out)
    }
}

/// Renders one build job; `needs` name its dependencies from job `from` on (those of
/// earlier parts are done), or are omitted beyond `max_needs` (stage order instead).
///
/// Written by hand (the same text [`BuildJob`] serializes to, checked by a test): the
/// serializer's per-call cost dominated generation for large stacks.
fn render_job(job: &Job, jobs: &[Job], stages: &[String], max_needs: usize, from: usize) -> String {
    let mut out = String::with_capacity(160 + 48 * job.deps.len().min(max_needs));
    push_scalar(&mut out, &job.name);
    out.push_str(":\n  extends: ");
    out.push_str(job.template);
    out.push_str("\n  stage: ");
    out.push_str(&stages[job.level]);
    out.push('\n');
    if job.deps.len() <= max_needs {
        let mut needs = job.deps.iter().filter(|&&d| d as usize >= from).peekable();
        if needs.peek().is_none() {
            out.push_str("  needs: []\n");
        } else {
            out.push_str("  needs:\n");
            for &d in needs {
                out.push_str("  - ");
                push_scalar(&mut out, &jobs[d as usize].name);
                out.push('\n');
            }
        }
    }
    if let Some((rule, timeout)) = job.rule {
        push_rule(&mut out, rule, timeout);
    }
    out.push_str("  script:\n  - ");
    push_scalar(&mut out, &job.script);
    out.push('\n');
    out
}

/// The job keys a `ci: mapping:` rule sets: they replace the template's `tags`, `image`
/// and `timeout`; GitLab merges `variables` with the template's.
fn push_rule(out: &mut String, rule: &JobRule, timeout: Option<std::time::Duration>) {
    if let Some(tags) = &rule.tags {
        out.push_str("  tags:\n");
        for t in tags {
            out.push_str("  - ");
            push_scalar(out, t);
            out.push('\n');
        }
    }
    if let Some(image) = &rule.image {
        out.push_str("  image: ");
        push_scalar(out, image);
        out.push('\n');
    }
    if let Some(t) = timeout {
        out.push_str("  timeout: ");
        out.push_str(&duration::show(t));
        out.push('\n');
    }
    if !rule.variables.is_empty() {
        out.push_str("  variables:\n");
        for (k, v) in &rule.variables {
            out.push_str("    ");
            push_scalar(out, k);
            out.push_str(": ");
            push_scalar(out, v);
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests;
