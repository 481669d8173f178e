//! `stackci generate github`: a GitHub Actions workflow for a stack.
//!
//! The workflow depends on the stack only, never on what the mirror holds, so it stays
//! valid from run to run and `--check` can keep it in sync. At run time a `plan` job runs
//! `stackci plan --github-output`, which writes [`github_plan_outputs`]: which packages
//! this run must build. The other jobs follow the DAG and skip what the plan did not
//! select:
//!
//! - up to [`GithubSettings::max_package_jobs`] build-able packages, one job per package,
//!   `needs` on its direct dependencies' jobs;
//! - beyond, one matrix job per dependency level (split into chunks of at most
//!   [`GithubSettings::max_matrix`] entries), whose matrix is the plan's list for it.
//!
//! Conditions are `!cancelled() && !failure() && <selected>`: a dependency skipped because
//! it was cached is neither a failure nor a cancellation, so its dependents still run,
//! while a failure anywhere upstream (`failure()` looks at all ancestors) skips them.
//! On a tag, an `images` job publishes every image of the stack's `images:` section; a
//! final `report` job always posts the commit status.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Result, bail, ensure};
use serde::Serialize;

use super::setup::{INSTALL_STACKCI, SETUP_SPACK, install_vars, spack_vars};
use super::yaml::{Ordered, append, header, literal, shell_quote};
use crate::plan::{Plan, Status};
use crate::stack::job_rules::Rules;
use crate::stack::settings::{GithubSettings, InstallSettings, RunsOn};
use crate::stack::{DepKind, Recipe, Stack};

/// Default path of the generated workflow.
pub const DEFAULT_OUTPUT: &str = ".github/workflows/stackci.yml";

/// Inputs of [`github_workflow`] besides the stack.
#[derive(Debug, Clone)]
pub struct GithubOptions {
    /// The stack file as the workflow sees it, relative to the repository root (exported
    /// as `STACKCI_STACK`).
    pub stack_file: String,
    /// Where the workflow is written, relative to the repository root (the plan job checks
    /// that it is up to date with `stackci generate github --check -o <output>`).
    pub output: String,
    /// The stack's `ci: github:` settings.
    pub settings: GithubSettings,
}

impl GithubOptions {
    /// Options with the default output path.
    pub fn new(stack_file: impl Into<String>, settings: GithubSettings) -> GithubOptions {
        GithubOptions {
            stack_file: stack_file.into(),
            output: DEFAULT_OUTPUT.to_string(),
            settings,
        }
    }

    /// The command that rewrites the workflow (the `--check` hint).
    pub fn regenerate_command(&self) -> String {
        format!(
            "stackci --stack {} generate github -o {}",
            shell_quote(&self.stack_file),
            shell_quote(&self.output)
        )
    }
}

/// Which packages a run builds: the `workflow_dispatch` inputs.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Rebuild the selected packages even when the mirror has them.
    pub force: bool,
    /// Package names (or tags, or hashes) to build, with whatever they need that the
    /// mirror lacks; empty: every package.
    pub packages: Vec<String>,
}

/// How the workflow is laid out: shared by the workflow and the plan outputs, which must
/// agree on job and output names.
struct Layout {
    /// Per package: the word `stackci build` and the plan outputs use for it (its name when
    /// that is unique, ignoring case as GitHub's `contains` does; else its tag). `None` for
    /// external packages.
    keys: Vec<Option<String>>,
    /// One job per package, or one matrix job per chunk of a level.
    mode: Mode,
}

enum Mode {
    /// Job id per package (`None` for externals).
    PerPackage(Vec<Option<String>>),
    /// Matrix chunks in level order.
    Matrix(Vec<Chunk>),
}

/// One matrix job: a slice of one dependency level.
struct Chunk {
    /// Job id (`level-3`, or `level-3-2` when the level is split).
    id: String,
    /// Plan output holding its matrix (`level_3`, `level_3_2`).
    output: String,
    /// Display name.
    name: String,
    /// Its packages (stack indices).
    members: Vec<usize>,
    /// Ids of the chunks of the level below.
    needs: Vec<usize>,
    /// The `ci: mapping:` rule of all its packages.
    rule: Option<usize>,
}

impl Layout {
    fn new(stack: &Stack, s: &GithubSettings, rules: &Rules) -> Result<Layout> {
        ensure!(
            (1..=256).contains(&s.max_matrix),
            "ci.github.max_matrix is {}; it must be between 1 and 256",
            s.max_matrix
        );
        let n = stack.packages.len();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for p in stack.packages.iter().filter(|p| !p.is_external()) {
            *by_name.entry(p.name.to_lowercase()).or_default() += 1;
        }
        let keys: Vec<Option<String>> = stack
            .packages
            .iter()
            .map(|p| {
                (!p.is_external()).then(|| {
                    if by_name[&p.name.to_lowercase()] == 1 {
                        p.name.clone()
                    } else {
                        p.tag()
                    }
                })
            })
            .collect();
        let buildable = keys.iter().filter(|k| k.is_some()).count();
        if buildable <= s.max_package_jobs {
            let mut ids: Vec<Option<String>> = keys
                .iter()
                .map(|k| k.as_deref().map(|k| format!("build-{}", job_id_part(k))))
                .collect();
            let mut seen: HashMap<String, usize> = HashMap::new();
            for id in ids.iter().flatten() {
                *seen.entry(id.clone()).or_default() += 1;
            }
            for (i, id) in ids.iter_mut().enumerate() {
                if let Some(id) = id.as_mut().filter(|id| seen[id.as_str()] > 1) {
                    id.push('-');
                    id.push_str(&stack.packages[i].hash);
                }
            }
            return Ok(Layout {
                keys,
                mode: Mode::PerPackage(ids),
            });
        }
        // Static levels over non-external edges.
        let mut level = vec![0usize; n];
        let mut levels: Vec<Vec<usize>> = Vec::new();
        for (i, p) in stack.packages.iter().enumerate() {
            if p.is_external() {
                continue;
            }
            level[i] = p
                .deps
                .iter()
                .filter(|d| !stack.packages[d.index].is_external())
                .map(|d| level[d.index] + 1)
                .max()
                .unwrap_or(0);
            if levels.len() <= level[i] {
                levels.resize_with(level[i] + 1, Vec::new);
            }
            levels[level[i]].push(i);
        }
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut below: Vec<usize> = Vec::new();
        for (l, members) in levels.iter().enumerate() {
            // One matrix job runs on one kind of runner: split the level by mapping rule.
            let mut groups: Vec<(Option<usize>, Vec<usize>)> = Vec::new();
            for &i in members {
                let rule = rules.position(&stack.packages[i].name);
                match groups.iter_mut().find(|(r, _)| *r == rule) {
                    Some((_, g)) => g.push(i),
                    None => groups.push((rule, vec![i])),
                }
            }
            let slices: Vec<(Option<usize>, &[usize])> = groups
                .iter()
                .flat_map(|(rule, g)| g.chunks(s.max_matrix).map(move |c| (*rule, c)))
                .collect();
            let parts = slices.len();
            let first = chunks.len();
            for (k, (rule, slice)) in slices.into_iter().enumerate() {
                let (id, output, name) = if parts == 1 {
                    (format!("level-{l}"), format!("level_{l}"), format!("level {l}"))
                } else {
                    (
                        format!("level-{l}-{}", k + 1),
                        format!("level_{l}_{}", k + 1),
                        format!("level {l} ({} of {parts})", k + 1),
                    )
                };
                chunks.push(Chunk {
                    id,
                    output,
                    name,
                    members: slice.to_vec(),
                    needs: below.clone(),
                    rule,
                });
            }
            below = (first..chunks.len()).collect();
        }
        Ok(Layout {
            keys,
            mode: Mode::Matrix(chunks),
        })
    }
}

/// `s` with every character GitHub does not allow in a job id replaced by `_`.
fn job_id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `s` as a single-quoted GitHub expression string literal.
fn expr_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The job outputs `stackci plan --github-output` appends to `$GITHUB_OUTPUT` (with
/// [`crate::ci::output::append_github_output`]): per the workflow's layout, `build` (the
/// keys to build) or one `level_...` list per matrix job, then `force` (the keys to rebuild
/// even if cached); each value is a one-line JSON array.
///
/// Selected packages are built when the mirror lacks them (or always, with `force`);
/// whatever they need that the mirror lacks is built too: all dependencies of a package
/// to build, and the runtime dependencies of a cached one.
pub fn github_plan_outputs(
    stack: &Stack,
    plan: &Plan,
    select: &Selection,
    settings: &GithubSettings,
) -> Result<Vec<(String, String)>> {
    ensure!(
        plan.packages.len() == stack.packages.len(),
        "the plan does not belong to stack {}",
        stack.name
    );
    let layout = Layout::new(stack, settings, &Rules::new(&stack.ci.mapping)?)?;
    let n = stack.packages.len();
    let roots: Vec<usize> = if select.packages.is_empty() {
        (0..n).filter(|&i| !stack.packages[i].is_external()).collect()
    } else {
        let mut roots = Vec::with_capacity(select.packages.len());
        for name in &select.packages {
            let Some(i) = stack.find(name) else {
                bail!("unknown package {name:?} (or ambiguous: use its tag or hash)")
            };
            ensure!(
                !stack.packages[i].is_external(),
                "package {name:?} is external: it is never built"
            );
            roots.push(i);
        }
        roots
    };
    let mut forced = vec![false; n];
    if select.force {
        roots.iter().for_each(|&i| forced[i] = true);
    }
    let mut build = vec![false; n];
    let mut seen = vec![false; n];
    let mut todo = roots;
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut seen[i], true) || stack.packages[i].is_external() {
            continue;
        }
        let p = &stack.packages[i];
        if forced[i] || plan.packages[i].status == Status::Build {
            build[i] = true;
            todo.extend(p.deps.iter().map(|d| d.index));
        } else {
            todo.extend(p.deps.iter().filter(|d| d.kind == DepKind::Runtime).map(|d| d.index));
        }
    }
    let list = |f: &dyn Fn(usize) -> bool, among: &mut dyn Iterator<Item = usize>| -> Result<String> {
        let keys: Vec<&str> = among
            .filter(|&i| f(i))
            .filter_map(|i| layout.keys[i].as_deref())
            .collect();
        Ok(serde_json::to_string(&keys)?)
    };
    let mut out = Vec::new();
    match &layout.mode {
        Mode::PerPackage(_) => out.push(("build".to_string(), list(&|i| build[i], &mut (0..n))?)),
        Mode::Matrix(chunks) => {
            for c in chunks {
                out.push((c.output.clone(), list(&|i| build[i], &mut c.members.iter().copied())?));
            }
        }
    }
    out.push(("force".to_string(), list(&|i| build[i] && forced[i], &mut (0..n))?));
    Ok(out)
}

#[derive(Serialize)]
struct Workflow<'a> {
    name: String,
    on: On,
    permissions: &'a BTreeMap<String, String>,
    env: BTreeMap<&'a str, &'a str>,
    jobs: Ordered<String, Job<'a>>,
}

#[derive(Serialize)]
struct On {
    push: Empty,
    pull_request: Empty,
    workflow_dispatch: Dispatch,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Dispatch {
    inputs: Ordered<&'static str, Input>,
}

#[derive(Serialize)]
struct Input {
    description: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    default: serde_json::Value,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Job<'a> {
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    needs: Vec<String>,
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    condition: Option<String>,
    runs_on: RunsOn,
    timeout_minutes: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<BTreeMap<&'static str, &'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strategy: Option<Strategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outputs: Option<Ordered<String, String>>,
    steps: Vec<Step<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Strategy {
    fail_fast: bool,
    matrix: Matrix,
}

#[derive(Serialize)]
struct Matrix {
    package: String,
}

/// A step: one of ours, or one of `ci.github.setup_steps` copied as is.
#[derive(Serialize)]
#[serde(untagged)]
enum Step<'a> {
    Ours(OurStep),
    Theirs(&'a serde_json::Value),
}

#[derive(Serialize, Default)]
#[serde(rename_all = "kebab-case")]
struct OurStep {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uses: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    with: Option<BTreeMap<&'static str, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<BTreeMap<&'static str, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    continue_on_error: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<Run>,
}

/// A `run:` script: one line plain, several as a literal block.
enum Run {
    Line(String),
    Block(String),
}

impl Serialize for Run {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Run::Line(l) => l.serialize(s),
            Run::Block(b) => literal(b).serialize(s),
        }
    }
}

/// The plan step's script: turns the dispatch inputs into `stackci plan` arguments
/// without putting user text into the script itself.
const PLAN_SCRIPT: &str = r#"args=()
if [ "$FORCE" = true ]; then args+=(--force); fi
read -ra packages <<< "$PACKAGES"
stackci plan --github-output "${args[@]}" "${packages[@]}"
"#;

/// The steps shared by every job: checkout, setup steps, then stackci: the configured
/// action, else the install step (release binary checked against its sha256, or cargo).
fn prelude<'a>(s: &'a GithubSettings, install: &InstallSettings) -> Vec<Step<'a>> {
    let mut steps = vec![Step::Ours(OurStep {
        uses: Some("actions/checkout@v5".into()),
        ..Default::default()
    })];
    steps.extend(s.setup_steps.iter().map(Step::Theirs));
    if s.action.trim().is_empty() {
        steps.push(Step::Ours(OurStep {
            env: Some(install_vars(install).into_iter().collect()),
            ..run("Install stackci", INSTALL_STACKCI)
        }));
    } else {
        steps.push(Step::Ours(OurStep {
            name: Some("Install stackci".into()),
            uses: Some(s.action.clone()),
            with: Some(BTreeMap::from([("version", s.version.clone())])),
            ..Default::default()
        }));
    }
    steps
}

/// The step that gets Spack (`SPACK_ROOT`, `spack` on PATH, else a clone), for jobs that
/// build Spack packages; `None` when the stack needs none.
fn spack_step(stack: &Stack) -> Option<Step<'static>> {
    let vars = spack_vars(stack)?;
    Some(Step::Ours(OurStep {
        env: Some(vars.into_iter().collect()),
        ..run("Set up Spack", SETUP_SPACK)
    }))
}

/// Applies the `ci: mapping:` rule `rule` (an index into `rules`) to a build job.
fn apply_rule(job: &mut Job, rules: &Rules, rule: Option<usize>) {
    let Some(i) = rule else { return };
    let (r, timeout) = rules.get(i);
    if let Some(tags) = &r.tags {
        job.runs_on = RunsOn::Labels(tags.clone());
    }
    if let Some(image) = &r.image {
        job.container = Some(serde_json::Value::String(image.clone()));
    }
    if let Some(t) = timeout {
        job.timeout_minutes = u32::try_from(t.as_secs().div_ceil(60)).unwrap_or(u32::MAX);
    }
    if !r.variables.is_empty() {
        let env = job.env.get_or_insert_with(BTreeMap::new);
        env.extend(r.variables.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Makes the store writable for the job's user: `/opt/stackci` (the default) is root's on
/// GitHub's hosted runners, whose user may `sudo`. The store stays where the stack says,
/// since it is part of every hash: a runner-specific path would never hit the cache that
/// other machines filled.
fn store_step(stack: &Stack) -> OurStep {
    let store = shell_quote(&stack.store.display().to_string());
    run(
        "Make the store writable",
        format!(
            "if [ ! -w {store} ]; then sudo install -d -o \"$(id -u)\" -g \"$(id -g)\" {store} || install -d {store}; fi"
        ),
    )
}

fn run(name: impl Into<String>, script: impl Into<String>) -> OurStep {
    let script = script.into();
    let run = if script.trim_end().contains('\n') {
        Run::Block(script)
    } else {
        Run::Line(script)
    };
    OurStep {
        name: Some(name.into()),
        run: Some(run),
        ..Default::default()
    }
}

/// A job with the settings every job shares.
fn job<'a>(
    s: &'a GithubSettings,
    name: String,
    needs: Vec<String>,
    condition: Option<String>,
    steps: Vec<Step<'a>>,
) -> Job<'a> {
    Job {
        name,
        needs,
        condition,
        runs_on: s.runs_on.clone(),
        timeout_minutes: s.timeout_minutes,
        container: s.container.clone(),
        permissions: None,
        strategy: None,
        env: None,
        outputs: None,
        steps,
    }
}

/// Renders the workflow for `stack`. Pure: nothing is read or written.
pub fn github_workflow(stack: &Stack, opts: &GithubOptions) -> Result<String> {
    let s = &opts.settings;
    for step in &s.setup_steps {
        ensure!(
            step.is_object(),
            "ci.github.setup_steps: each step must be a mapping, found {step}"
        );
    }
    ensure!(
        !s.action.trim().is_empty() || !stack.ci.install.repository.trim().is_empty(),
        "neither ci.github.action nor ci.install.repository is set, and this stackci build does not \
         know its own repository: set `ci: {{ github: {{ action: OWNER/stackci@v1 }} }}` (`./` in a \
         checkout of stackci itself) or `ci: {{ install: {{ repository: OWNER/stackci }} }}` in the stack"
    );
    let rules = Rules::new(&stack.ci.mapping)?;
    let layout = Layout::new(stack, s, &rules)?;
    let job = |name, needs, condition, steps| job(s, name, needs, condition, steps);
    let mut jobs: Vec<(String, Job)> = Vec::new();

    // plan
    let mut steps = prelude(s, &stack.ci.install);
    steps.push(Step::Ours(run(
        "Check that this workflow is up to date",
        format!("stackci generate github --check -o {}", shell_quote(&opts.output)),
    )));
    steps.push(Step::Ours(OurStep {
        continue_on_error: Some(true),
        ..run("Report pending status", "stackci status pending")
    }));
    steps.push(Step::Ours(OurStep {
        id: Some("plan"),
        env: Some(BTreeMap::from([
            ("FORCE", "${{ inputs.force }}".to_string()),
            ("PACKAGES", "${{ inputs.packages }}".to_string()),
        ])),
        ..run("Plan", PLAN_SCRIPT)
    }));
    let output_names: Vec<String> = match &layout.mode {
        Mode::PerPackage(_) => vec!["build".into()],
        Mode::Matrix(chunks) => chunks.iter().map(|c| c.output.clone()).collect(),
    };
    let mut plan = job("plan".into(), vec![], None, steps);
    plan.outputs = Some(Ordered(
        output_names
            .iter()
            .chain(["force".to_string()].iter())
            .map(|o| (o.clone(), format!("${{{{ steps.plan.outputs.{o} }}}}")))
            .collect(),
    ));
    jobs.push(("plan".into(), plan));

    let ok = "!cancelled() && !failure()";
    let force_flag = |key_expr: &str| {
        format!("${{{{ contains(fromJSON(needs.plan.outputs.force), {key_expr}) && '--force' || '' }}}}")
    };
    match &layout.mode {
        Mode::PerPackage(ids) => {
            for (i, id) in ids.iter().enumerate() {
                let (Some(id), Some(key)) = (id, &layout.keys[i]) else {
                    continue;
                };
                let p = &stack.packages[i];
                let mut needs = vec!["plan".to_string()];
                needs.extend(p.deps.iter().filter_map(|d| ids[d.index].clone()));
                needs[1..].sort();
                needs.dedup();
                let cond = format!(
                    "${{{{ {ok} && contains(fromJSON(needs.plan.outputs.build), {}) }}}}",
                    expr_str(key)
                );
                let mut steps = prelude(s, &stack.ci.install);
                steps.push(Step::Ours(store_step(stack)));
                if p.recipe == Recipe::Spack {
                    steps.extend(spack_step(stack));
                }
                steps.push(Step::Ours(run(
                    format!("Build {} {}", p.name, p.version),
                    format!("stackci build {} {}", shell_quote(key), force_flag(&expr_str(key))),
                )));
                let mut j = job(format!("{} {}", p.name, p.version), needs, Some(cond), steps);
                apply_rule(&mut j, &rules, rules.position(&p.name));
                jobs.push((id.clone(), j));
            }
        }
        Mode::Matrix(chunks) => {
            for c in chunks {
                let mut needs = vec!["plan".to_string()];
                needs.extend(c.needs.iter().map(|&k| chunks[k].id.clone()));
                let cond = format!("${{{{ {ok} && needs.plan.outputs.{} != '[]' }}}}", c.output);
                let mut steps = prelude(s, &stack.ci.install);
                steps.push(Step::Ours(store_step(stack)));
                if c.members.iter().any(|&i| stack.packages[i].recipe == Recipe::Spack) {
                    steps.extend(spack_step(stack));
                }
                let mut build = run(
                    "Build ${{ matrix.package }}",
                    format!("stackci build \"$PACKAGE\" {}", force_flag("matrix.package")),
                );
                build.env = Some(BTreeMap::from([("PACKAGE", "${{ matrix.package }}".to_string())]));
                steps.push(Step::Ours(build));
                let mut j = job(
                    format!("{} ${{{{ matrix.package }}}}", c.name),
                    needs,
                    Some(cond),
                    steps,
                );
                apply_rule(&mut j, &rules, c.rule);
                j.strategy = Some(Strategy {
                    fail_fast: false,
                    matrix: Matrix {
                        package: format!("${{{{ fromJSON(needs.plan.outputs.{}) }}}}", c.output),
                    },
                });
                jobs.push((c.id.clone(), j));
            }
        }
    }
    let all: Vec<String> = jobs.iter().map(|(id, _)| id.clone()).collect();

    if !stack.images.is_empty() {
        let mut steps = prelude(s, &stack.ci.install);
        for name in stack.images.keys() {
            ensure!(
                !name.contains(['"', '\\', '`', '$']),
                "image name {name:?} cannot be used in a workflow"
            );
            let to = s.image_to.replace("{image}", name);
            steps.push(Step::Ours(run(
                format!("Publish image {name}"),
                format!("stackci image {} --to \"{to}\"", shell_quote(name)),
            )));
        }
        let mut j = job(
            "images".into(),
            all.clone(),
            Some(format!("${{{{ {ok} && startsWith(github.ref, 'refs/tags/') }}}}")),
            steps,
        );
        j.permissions = Some(BTreeMap::from([("contents", "read"), ("packages", "write")]));
        jobs.push(("images".into(), j));
    }

    let mut steps = prelude(s, &stack.ci.install);
    let mut report = run("Report status", "stackci status \"$STATE\"");
    report.continue_on_error = Some(true);
    report.env = Some(BTreeMap::from([(
        "STATE",
        "${{ contains(needs.*.result, 'failure') && 'failure' || contains(needs.*.result, 'cancelled') && 'canceled' || 'success' }}".to_string(),
    )]));
    steps.push(Step::Ours(report));
    let needs: Vec<String> = jobs.iter().map(|(id, _)| id.clone()).collect();
    jobs.push((
        "report".into(),
        job("report".into(), needs, Some("${{ always() }}".into()), steps),
    ));

    let mut env: BTreeMap<&str, &str> = BTreeMap::from([
        ("STACKCI_STACK", opts.stack_file.as_str()),
        ("GITHUB_TOKEN", "${{ github.token }}"),
    ]);
    for (k, v) in &s.env {
        if env.insert(k, v).is_some() {
            bail!("ci.github.env sets {k}, which the generator sets itself");
        }
    }
    let wf = Workflow {
        name: format!("stackci {}", stack.name),
        on: On {
            push: Empty {},
            pull_request: Empty {},
            workflow_dispatch: Dispatch {
                inputs: Ordered(vec![
                    (
                        "force",
                        Input {
                            description: "Rebuild the selected packages even when the mirror has them",
                            kind: "boolean",
                            default: false.into(),
                        },
                    ),
                    (
                        "packages",
                        Input {
                            description: "Packages to build, separated by spaces (empty: all); what they need that the mirror lacks is built too",
                            kind: "string",
                            default: "".into(),
                        },
                    ),
                ]),
            },
        },
        permissions: &s.permissions,
        env,
        jobs: Ordered(jobs),
    };
    let mut out = header("GitHub workflow", &opts.stack_file);
    append(&mut out, &wf)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
