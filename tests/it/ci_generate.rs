//! Generated CI files checked by the real validators (check-jsonschema with GitLab's and
//! GitHub's schemas, actionlint) through `tests/peers/validate.sh`, which installs them when
//! missing. A validator that cannot run fails the test with its output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use stackci::digest::Digest;
use stackci::generate::github::{GithubOptions, github_workflow};
use stackci::generate::gitlab::{GitlabOptions, gitlab_pipeline};
use stackci::plan::Plan;
use stackci::stack::settings::{CiSettings, GithubSettings, GitlabSettings};
use stackci::stack::{Dep, DepKind, ImageSpec, Package, Recipe, Stack, StackKind};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `tests/peers/validate.sh KIND FILES...`; panics with its output unless all pass.
fn validate(kind: &str, files: &[PathBuf]) {
    assert!(!files.is_empty());
    let out = Command::new("bash")
        .arg(root().join("tests/peers/validate.sh"))
        .arg(kind)
        .args(files)
        .output()
        .expect("running tests/peers/validate.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "validate.sh {kind} failed:\n{text}");
    let passes = text.lines().filter(|l| l.starts_with("PASS ")).count();
    let per_file = if kind == "workflow" { 2 } else { 1 };
    assert_eq!(
        passes,
        files.len() * per_file,
        "every file passes every validator:\n{text}"
    );
}

/// Writes generated `(path, yaml)` files under `dir`; returns their paths.
fn write_all(dir: &Path, files: &[(String, String)]) -> Vec<PathBuf> {
    files
        .iter()
        .map(|(name, yaml)| {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, yaml).unwrap();
            p
        })
        .collect()
}

fn hash(seed: &str) -> String {
    data_encoding::BASE32_NOPAD
        .encode(Digest::of(seed.as_bytes()).hex().as_bytes())
        .to_ascii_lowercase()[..32]
        .to_string()
}

fn package(name: &str, deps: Vec<Dep>) -> Package {
    Package {
        name: name.into(),
        version: "1.0".into(),
        hash: hash(name),
        deps,
        recipe: Recipe::Script("make".into()),
        source: None,
        env: BTreeMap::new(),
        timeout: None,
    }
}

/// Default GitHub settings with an action named (a test build has no source repository to
/// derive it from).
fn gh_settings() -> GithubSettings {
    GithubSettings {
        action: "stackci/stackci@v1".into(),
        ..GithubSettings::default()
    }
}

fn empty_stack(name: &str) -> Stack {
    Stack {
        name: name.into(),
        path: PathBuf::from("/project/stack.yaml"),
        dir: PathBuf::from("/project"),
        kind: StackKind::Yaml,
        store: PathBuf::from("/opt/stackci"),
        platform: stackci::platform::Platform::host(),
        env: BTreeMap::new(),
        mirror: None,
        upstreams: Vec::new(),
        packages: Vec::new(),
        images: BTreeMap::new(),
        status: Default::default(),
        ci: Default::default(),
        spack: None,
        trust: Default::default(),
    }
}

/// Five packages (one build-only edge) and two images.
fn small() -> Stack {
    let mut s = empty_stack("demo");
    let dep = |index, kind| Dep { index, kind };
    s.packages = vec![
        package("zlib", vec![]),
        package("crcgen", vec![]),
        package("libcrc", vec![dep(1, DepKind::Build)]),
        package("libreport", vec![dep(0, DepKind::Runtime), dep(2, DepKind::Runtime)]),
        package("hello", vec![dep(3, DepKind::Runtime)]),
    ];
    s.images.insert(
        "tools".into(),
        ImageSpec {
            base: "scratch".into(),
            packages: vec![4],
            ..Default::default()
        },
    );
    s.images.insert(
        "libs".into(),
        ImageSpec {
            base: "scratch".into(),
            packages: vec![3],
            ..Default::default()
        },
    );
    s
}

/// `n` packages; package `i` depends on up to 6 packages, biased towards the first ones
/// (core libraries with a large fan-in), as real stacks do.
fn synthetic(n: usize) -> Stack {
    let mut s = empty_stack("synthetic");
    let mut x: u64 = 42;
    for i in 0..n {
        let mut deps: Vec<Dep> = Vec::new();
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        for k in 0..if i == 0 { 0 } else { (x >> 60) % 7 } {
            let u = ((x >> (4 * k)) & 0xffff) as f64 / 65536.0;
            let d = ((i as f64) * u * u) as usize;
            if !deps.iter().any(|e| e.index == d) {
                deps.push(Dep {
                    index: d,
                    kind: DepKind::Runtime,
                });
            }
        }
        s.packages.push(package(&format!("pkg{i}"), deps));
    }
    s
}

fn plan(stack: &Stack) -> Plan {
    Plan::new(stack, "file:///srv/mirror".into(), &BTreeSet::new())
}

/// The package build jobs of a GitLab file: jobs extending the template, except stackci's own.
fn build_jobs(yaml: &str) -> Vec<String> {
    let v: serde_json::Value = serde_saphyr::from_str(yaml).expect("generated YAML parses");
    v.as_object()
        .unwrap()
        .iter()
        .filter(|(k, j)| !k.starts_with("stackci") && !k.starts_with('.') && j.get("extends").is_some())
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn gitlab_small_stack_passes_the_gitlab_schema() {
    let dir = tempfile::tempdir().unwrap();
    let s = small();
    let mut opts = GitlabOptions::new("stack.yaml", GitlabSettings::default());
    opts.image = Some("debian:12".into());
    opts.settings.tags = vec!["linux".into()];
    opts.settings.before_script = vec!["echo setup".into()];
    opts.settings.variables.insert("MAKEFLAGS".into(), "-j4".into());
    opts.settings.timeout = Some("2h 30m".into());
    let mut files = gitlab_pipeline(&plan(&s), &s, &opts).unwrap();
    // Nothing to build: the no-op pipeline.
    let tags: BTreeSet<String> = s.packages.iter().map(|p| p.tag()).collect();
    let noop = gitlab_pipeline(&Plan::new(&s, "file:///srv/mirror".into(), &tags), &s, &opts).unwrap();
    files.push(("noop.yml".into(), noop[0].1.clone()));
    validate("gitlab", &write_all(dir.path(), &files));
}

#[test]
fn gitlab_split_pipelines_pass_the_schema_and_hold_every_job() {
    let dir = tempfile::tempdir().unwrap();
    let s = synthetic(1200);
    let opts = GitlabOptions::new("stack.yaml", GitlabSettings::default());
    let files = gitlab_pipeline(&plan(&s), &s, &opts).unwrap();
    assert!(
        files.len() >= 4,
        "driver, at least 2 parts, images: got {}",
        files.len()
    );
    let parts: Vec<&(String, String)> = files.iter().filter(|f| f.0.contains("-part-")).collect();
    assert!(parts.len() >= 3, "1200 jobs at most 500 per part");
    assert_eq!(parts.iter().map(|p| build_jobs(&p.1).len()).sum::<usize>(), 1200);
    validate("gitlab", &write_all(dir.path(), &files));
}

#[test]
fn github_workflows_pass_the_schema_and_actionlint() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let s = small();
    let mut settings = gh_settings();
    files.push((
        "small.yml".to_string(),
        github_workflow(&s, &GithubOptions::new("stack.yaml", settings.clone())).unwrap(),
    ));
    settings.setup_steps = vec![serde_json::json!({"name": "Tools", "run": "sudo apt-get install -y gfortran"})];
    settings.container = Some(serde_json::json!("debian:12"));
    settings
        .env
        .insert("STACKCI_MIRROR".into(), "oci://ghcr.io/acme/mirror".into());
    files.push((
        "custom.yml".to_string(),
        github_workflow(&s, &GithubOptions::new("envs/stack.yaml", settings)).unwrap(),
    ));
    // Matrix mode, with levels split into chunks.
    let big = synthetic(2000);
    let st = GithubSettings {
        max_matrix: 100,
        ..gh_settings()
    };
    let wf = github_workflow(&big, &GithubOptions::new("stack.yaml", st)).unwrap();
    assert!(wf.contains("strategy:") && wf.contains("_2) }}"), "matrix chunks");
    files.push(("matrix.yml".to_string(), wf));
    validate("workflow", &write_all(dir.path(), &files));
}

/// A stand-in for the stackci binary in gitlab-ci-local runs: `generate` copies the files
/// the test generated, `build TAG` fails unless every dependency of TAG was built before.
/// State lives next to the script (the test's directory), outside gitlab-ci-local's
/// workspace copy.
const FAKE_STACKCI: &str = r#"#!/bin/bash
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
echo "$*" >> "$root/calls.log"
case "$1" in
  generate) cp "$root"/pre/*.yml . ;;
  build)
    while read -r dep; do
      [ -z "$dep" ] || [ -e "$root/built/$dep" ] || { echo "$2 built before its dependency $dep"; exit 1; }
    done < "$root/deps/$2"
    mkdir -p "$root/built" && touch "$root/built/$2" ;;
  index|status|image) ;;
  --version) echo "stackci 0.0.0-fake" ;;
  *) echo "unexpected: $*"; exit 2 ;;
esac
"#;

#[test]
fn gitlab_component_runs_a_split_pipeline_in_gitlab_ci_local() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("project");
    let state = dir.path().join("state");
    for d in [
        src.join("templates"),
        state.join("bin"),
        state.join("pre"),
        state.join("deps"),
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(root().join("templates/stackci.yml"), src.join("templates/stackci.yml")).unwrap();
    std::fs::write(
        src.join(".gitlab-ci.yml"),
        "include:\n  - local: templates/stackci.yml\n    inputs:\n      stack: stack.yaml\n      runner_tags: [linux]\nstages: [build]\n",
    )
    .unwrap();
    let fake = state.join("bin/stackci");
    std::fs::write(&fake, FAKE_STACKCI).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let s = synthetic(40);
    for p in &s.packages {
        let deps: Vec<String> = p.deps.iter().map(|d| s.packages[d.index].tag()).collect();
        std::fs::write(state.join("deps").join(p.tag()), deps.join("\n") + "\n").unwrap();
    }
    let mut opts = GitlabOptions::new("stack.yaml", GitlabSettings::default());
    opts.settings.max_jobs = 12;
    let files = gitlab_pipeline(&plan(&s), &s, &opts).unwrap();
    let parts = files.iter().filter(|f| f.0.contains("-part-")).count();
    assert!(parts >= 4, "{parts} parts");
    write_all(&state.join("pre"), &files);

    let path = format!("{}:{}", state.join("bin").display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .arg(root().join("tests/peers/gitlab-local.sh"))
        .arg(&src)
        .env("PATH", path)
        .output()
        .expect("running tests/peers/gitlab-local.sh");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "gitlab-ci-local failed:\n{log}");
    let built = std::fs::read_dir(state.join("built")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(built, 40, "every package built once, dependencies first:\n{log}");
    let calls = std::fs::read_to_string(state.join("calls.log")).unwrap();
    assert!(
        calls
            .lines()
            .next()
            .unwrap()
            .starts_with("generate gitlab -o stackci-pipeline.yml"),
        "{calls}"
    );
    assert!(
        calls.ends_with("index\nstatus success\n"),
        "the finish job runs last:\n{calls}"
    );
    for k in 1..=parts {
        assert!(
            log.contains(&format!("stackci part {k} of {parts}")),
            "part {k} ran:\n{log}"
        );
    }
}

/// `curl` stand-in for the install script: serves github.com release URLs from a directory.
const FAKE_CURL: &str = r#"#!/bin/bash
out=""; url=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift 2 ;;
    -*) shift ;;
    *) url="$1"; shift ;;
  esac
done
echo "$url" >> "$FAKE_RELEASES/requests.log"
file="$FAKE_RELEASES/${url#https://github.com/}"
[ -f "$file" ] || exit 22
if [ -n "$out" ]; then cp "$file" "$out"; else cat "$file"; fi
"#;

#[test]
fn action_install_script_verifies_the_release_archive() {
    let dir = tempfile::tempdir().unwrap();
    let target = match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-gnu",
        "aarch64" => "aarch64-unknown-linux-gnu",
        other => panic!("no release binary for {other}: this test needs Linux x86_64 or aarch64"),
    };
    let releases = dir.path().join("releases");
    let latest = releases.join("acme/stackci/releases/latest/download");
    std::fs::create_dir_all(&latest).unwrap();
    let payload = dir.path().join("payload");
    std::fs::create_dir_all(&payload).unwrap();
    std::fs::write(payload.join("stackci"), "#!/bin/sh\necho 'stackci 9.9.9'\n").unwrap();
    std::fs::set_permissions(
        payload.join("stackci"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let asset = format!("stackci-{target}.tar.gz");
    let tar = Command::new("tar")
        .arg("-czf")
        .arg(latest.join(&asset))
        .arg("-C")
        .arg(&payload)
        .arg("stackci")
        .status()
        .unwrap();
    assert!(tar.success());
    let sum = Digest::of(&std::fs::read(latest.join(&asset)).unwrap()).hex();
    std::fs::write(latest.join(format!("{asset}.sha256")), format!("{sum}  {asset}\n")).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("curl"), FAKE_CURL).unwrap();
    std::fs::set_permissions(bin.join("curl"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let run = |sha: &str, rt: &str| {
        let (gh_path, gh_out) = (
            dir.path().join(format!("{rt}.path")),
            dir.path().join(format!("{rt}.out")),
        );
        let out = Command::new("bash")
            .arg(root().join("scripts/install-stackci.sh"))
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
            .env("FAKE_RELEASES", &releases)
            .env("INPUT_REPOSITORY", "acme/stackci")
            .env("INPUT_VERSION", "latest")
            .env("INPUT_SHA256", sha)
            .env("INPUT_CARGO_FALLBACK", "false")
            .env("RUNNER_TEMP", dir.path().join(rt))
            .env("GITHUB_PATH", &gh_path)
            .env("GITHUB_OUTPUT", &gh_out)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        (
            out.status.success(),
            log,
            std::fs::read_to_string(gh_out).unwrap_or_default(),
        )
    };
    let (ok, log, outputs) = run("", "rt1");
    assert!(ok, "{log}");
    let installed = dir.path().join("rt1/stackci/bin");
    assert_eq!(
        outputs,
        format!("version=9.9.9\npath={}/stackci\n", installed.display()),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("rt1.path")).unwrap(),
        format!("{}\n", installed.display())
    );
    // A pinned checksum that does not match: refused, nothing installed.
    let (ok, log, _) = run(&"0".repeat(64), "rt2");
    assert!(!ok && log.contains("sha256 mismatch"), "{log}");
    assert!(!dir.path().join("rt2/stackci/bin/stackci").exists());
}

#[test]
fn project_workflows_and_action_are_valid() {
    let mut workflows: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    workflows.sort();
    assert!(workflows.len() >= 2, "{workflows:?}");
    validate("workflow", &workflows);
    validate("action", &[root().join("action.yml")]);
}

/// The component's `spec:` document and its jobs with the inputs filled in (as GitLab does
/// before validating), each checked against GitLab's schema.
#[test]
fn gitlab_component_is_valid_once_its_inputs_are_filled_in() {
    let text = std::fs::read_to_string(root().join("templates/stackci.yml")).unwrap();
    let (spec, body) = text.split_once("\n---\n").expect("spec document, then the jobs");
    let spec_doc: serde_json::Value = serde_saphyr::from_str(spec).unwrap();
    let inputs = spec_doc["spec"]["inputs"].as_object().unwrap();
    let names: BTreeSet<&str> = inputs.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "image",
            "image_tags",
            "mirror",
            "repository",
            "runner_tags",
            "stack",
            "stage",
            "upstreams",
            "version"
        ])
    );
    let values = BTreeMap::from([
        ("stack", "envs/stack.yaml"),
        ("mirror", "oci://registry.example.com/mirror"),
        ("upstreams", "oci://registry.example.com/main"),
        ("image", "registry.example.com/stackci:0.1"),
        ("runner_tags", "[linux, big]"),
        ("version", "0.1.0"),
        ("repository", "acme/stackci"),
        ("image_tags", r"/^stack-\d+[.]\d+$/"),
        ("stage", "build"),
    ]);
    let mut filled = body.to_string();
    for (k, v) in &values {
        filled = filled.replace(&format!("$[[ inputs.{k} ]]"), v);
    }
    assert!(!filled.contains("$[["), "every interpolation is an input:\n{filled}");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("spec.yml"), dir.path().join("jobs.yml"));
    std::fs::write(&a, format!("{spec}\n")).unwrap();
    std::fs::write(&b, filled).unwrap();
    validate("gitlab", &[a, b]);
}

/// Loads a stack file of the repository and plans it against an empty mirror.
fn load(rel: &str) -> (Stack, Plan) {
    let stack = stackci::stack::load(&root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let plan = plan(&stack);
    (stack, plan)
}

/// Both real Spack lockfiles: one job per non-external spec, at most 50 needs each, every
/// need a job of the same file in an earlier stage, and GitLab's schema passes. Their
/// workflows (SLAC's is large enough for matrix jobs) pass the schema and actionlint.
#[test]
fn spack_fixtures_generate_valid_pipelines_and_workflows() {
    let dir = tempfile::tempdir().unwrap();
    let mut gitlab_files = Vec::new();
    let mut workflows = Vec::new();
    for (name, specs, externals) in [("all-pythons", 81, 4), ("slac-relmanage", 514, 1)] {
        let rel = format!("tests/fixtures/spack/{name}.spack.lock");
        let (stack, plan) = load(&rel);
        assert_eq!(stack.packages.len(), specs, "{name}");
        assert_eq!(
            stack.packages.iter().filter(|p| p.is_external()).count(),
            externals,
            "{name}"
        );
        let opts = GitlabOptions::new(&rel, GitlabSettings::default());
        let files = gitlab_pipeline(&plan, &stack, &opts).unwrap();
        // 513 jobs and the 2 finish jobs exceed 500: SLAC's plan is split in two parts.
        assert_eq!(files.len(), if specs - externals + 2 > 500 { 4 } else { 2 }, "{name}");
        let mut total = 0;
        for (file, yaml) in files.iter().filter(|f| !f.0.ends_with("-images.yml")) {
            let v: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
            let jobs = build_jobs(yaml);
            total += jobs.len();
            let stages: Vec<&str> = v["stages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            let stage_of = |job: &str| stages.iter().position(|s| *s == v[job]["stage"]).unwrap();
            for job in &jobs {
                let script = v[job]["script"][0].as_str().unwrap();
                let hash = &script[script.len() - 32..];
                let i = stack
                    .find(hash)
                    .unwrap_or_else(|| panic!("{script}: not a package's tag"));
                assert_eq!(script, format!("stackci build {}", stack.packages[i].tag()));
                assert_eq!(v[job]["extends"], ".stackci-spack", "{job}");
                if let Some(needs) = v[job].get("needs") {
                    let needs = needs.as_array().unwrap();
                    assert!(needs.len() <= 50, "{file}: {job} has {} needs", needs.len());
                    for n in needs {
                        assert!(stage_of(n.as_str().unwrap()) < stage_of(job), "{file}: {job} needs {n}");
                    }
                }
            }
        }
        assert_eq!(total, specs - externals, "{name}: one job per non-external spec");
        gitlab_files.extend(write_all(&dir.path().join(name), &files));
        let wf = github_workflow(&stack, &GithubOptions::new(&rel, gh_settings())).unwrap();
        assert_eq!(
            wf.contains("strategy:"),
            specs - externals > 200,
            "{name}: matrix jobs only beyond 200 packages"
        );
        workflows.extend(write_all(&dir.path().join(name), &[("workflow.yml".to_string(), wf)]));
    }
    validate("gitlab", &gitlab_files);
    validate("workflow", &workflows);
}

/// The example stack's generated files, pinned.
#[test]
fn example_stack_snapshots() {
    assert_eq!(
        std::env::consts::ARCH,
        "x86_64",
        "hashes include the platform; these snapshots are for x86_64-linux"
    );
    let (stack, plan) = load("examples/demo/stack.yaml");
    let files = gitlab_pipeline(
        &plan,
        &stack,
        &GitlabOptions::new("examples/demo/stack.yaml", GitlabSettings::default()),
    )
    .unwrap();
    let mut gitlab = String::new();
    for (name, yaml) in &files {
        gitlab.push_str(&format!("=== {name}\n{yaml}"));
    }
    let gitlab = gitlab.replace(&plan.mirror, "file:///srv/mirror");
    insta::assert_snapshot!("example_gitlab", gitlab);
    let opts = GithubOptions::new("examples/demo/stack.yaml", gh_settings());
    insta::assert_snapshot!("example_github", github_workflow(&stack, &opts).unwrap());
}

/// `.github/workflows/stackci-demo.yml` is what the generator makes of the example stack
/// (`STACKCI_UPDATE_WORKFLOWS=1` rewrites it).
#[test]
fn example_workflow_is_up_to_date() {
    let (stack, _) = load("examples/demo/stack.yaml");
    assert_eq!(
        stack.ci.github.action, "./",
        "examples/demo/stack.yaml lost its ci: github: settings"
    );
    let mut opts = GithubOptions::new("examples/demo/stack.yaml", stack.ci.github.clone());
    opts.output = ".github/workflows/stackci-demo.yml".into();
    let rendered = github_workflow(&stack, &opts).unwrap();
    let path = root().join(&opts.output);
    if std::env::var_os("STACKCI_UPDATE_WORKFLOWS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    if let Err(e) = stackci::generate::check::check(&path, &rendered, &opts.regenerate_command()) {
        panic!("{e}\n(or STACKCI_UPDATE_WORKFLOWS=1 cargo test --test it ci_generate::example_workflow)");
    }
}

/// The YAML code blocks of `docs/mirrors.md`, in order.
fn mirrors_doc_blocks() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("docs/mirrors.md")).unwrap();
    text.split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

/// docs/mirrors.md's PR-mirror-over-main pattern is valid as written: the `ci.github.env` it
/// shows generates a workflow that passes the schema and actionlint, its promotion workflow
/// passes too, and its `.gitlab-ci.yml` passes GitLab's schema.
#[test]
fn the_pr_mirror_workflows_in_docs_mirrors_md_are_valid() {
    let blocks = mirrors_doc_blocks();
    let github_env = blocks
        .iter()
        .find(|b| b.starts_with("ci:\n  github:"))
        .expect("the ci.github block");
    let parsed: serde_json::Value = serde_saphyr::from_str(github_env).unwrap();
    let mut settings = CiSettings::default().github;
    settings.action = parsed["ci"]["github"]["action"].as_str().unwrap().to_string();
    for (k, v) in parsed["ci"]["github"]["env"].as_object().unwrap() {
        settings.env.insert(k.clone(), v.as_str().unwrap().to_string());
    }
    assert!(settings.env.contains_key("STACKCI_UPSTREAMS"));
    let workflow = github_workflow(&small(), &GithubOptions::new("stack.yaml", settings)).unwrap();
    assert!(
        workflow.contains("STACKCI_UPSTREAMS: ${{ github.event_name == 'pull_request'"),
        "{workflow}"
    );
    let promote = blocks
        .iter()
        .find(|b| b.starts_with("# .github/workflows/stackci-promote.yml"))
        .unwrap();
    let gitlab = blocks
        .iter()
        .find(|b| b.starts_with("include:\n  - component:"))
        .unwrap();
    assert!(promote.contains("stackci mirror copy") && gitlab.contains("stackci mirror copy"));
    let dir = tempfile::tempdir().unwrap();
    validate(
        "workflow",
        &write_all(
            dir.path(),
            &[("pr.yml".into(), workflow), ("promote.yml".into(), promote.clone())],
        ),
    );
    validate(
        "gitlab",
        &write_all(dir.path(), &[("gitlab-ci.yml".into(), gitlab.clone())]),
    );
}
