//! Command-line arguments: the clap types and their help, nothing else. `src/main.rs`
//! parses them and [`crate::run`] runs the command, one module per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Build a software stack in dependency order, keep the binaries in an OCI mirror, and
/// publish runnable images — locally or from GitLab CI and GitHub Actions.
#[derive(Debug, Parser)]
#[command(name = "stackci", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "\
The stack is --stack, else $STACKCI_STACK, else ./stack.yaml, else ./spack.lock.
The mirror is --mirror, else $STACKCI_MIRROR, else `mirror:` in the stack, else
file://<stack dir>/.stackci/mirror. Upstreams (read-only, after the mirror) are --upstream,
else $STACKCI_UPSTREAMS, else `upstreams:` in the stack.

Examples:
  stackci plan                       what is cached and what must be built
  stackci run -j 4                   build everything missing, 4 packages at a time
  stackci install hello --root /tmp/root
  stackci --mirror oci://ghcr.io/me/stack plan --json
  stackci --mirror oci://ghcr.io/me/stack-pr-7 --upstream oci://ghcr.io/me/stack run
  stackci --stack envs/tutorial/spack.lock build zlib
                                     one spec of a Spack environment, built by Spack
                                     (docs/spack.md; a stack.yaml says `spack: { env: DIR }`)")]
pub struct Cli {
    // Every `env =` argument has `hide_env_values`: `--help` would otherwise print the
    // variable's value, and a mirror or endpoint URL may carry a secret.
    /// Stack file (stack.yaml or spack.lock).
    #[arg(long, global = true, value_name = "FILE", env = crate::env_vars::STACKCI_STACK)]
    #[arg(hide_env_values = true)]
    pub stack: Option<PathBuf>,

    /// Mirror URL: file://DIR, s3://BUCKET/PREFIX, oci://HOST/REPO or oci+http://HOST/REPO.
    #[arg(long, global = true, value_name = "URL", env = crate::env_vars::STACKCI_MIRROR)]
    #[arg(hide_env_values = true)]
    pub mirror: Option<String>,

    /// Target platform, OS/ARCH[/VARIANT] (linux/amd64, linux/arm64): what packages are built
    /// for (part of their hashes) and which manifest of a multi-platform base is used;
    /// default: `platform:` in the stack, else this machine's. `image` takes a
    /// comma-separated list and writes one multi-platform image index.
    #[arg(long, global = true, value_name = "PLATFORM", env = crate::env_vars::STACKCI_PLATFORM)]
    #[arg(hide_env_values = true)]
    pub platform: Option<String>,

    /// Read-only mirror consulted after --mirror (repeatable; $STACKCI_UPSTREAMS is
    /// comma-separated; default: `upstreams:` in the stack). A package found in any of them
    /// is cached; pushes go to --mirror only, each manifest with every blob it names.
    #[arg(long = "upstream", global = true, value_name = "URL", env = crate::env_vars::STACKCI_UPSTREAMS)]
    #[arg(value_delimiter = ',', hide_env_values = true)]
    pub upstreams: Vec<String>,

    /// Extra CA certificate (PEM) for TLS connections to the mirror and registries; the
    /// file in $SSL_CERT_FILE, when set, is trusted too.
    // Not `env = SSL_CERT_FILE`: clap would then count the flag as given and show
    // `--ca-cert <FILE>` in every usage error; the transport reads the variable itself.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// S3-compatible endpoint URL for s3:// mirrors (MinIO, R2, Ceph...).
    #[arg(long, global = true, value_name = "URL", env = crate::env_vars::STACKCI_S3_ENDPOINT)]
    #[arg(hide_env_values = true)]
    pub s3_endpoint: Option<String>,

    /// Most bytes one layer may expand to when it is unpacked or checked (install, build,
    /// run, image), e.g. 64GiB, 500M; a layer beyond it is refused before anything is written.
    #[arg(long, global = true, value_name = "SIZE", env = crate::env_vars::STACKCI_MAX_LAYER_SIZE,
          default_value = "64GiB", value_parser = crate::layer::stream::parse_size)]
    pub max_layer_size: u64,

    /// Show more: recipe output as plain lines.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Show only errors and the final summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Print machine-readable JSON on stdout (see docs/json.md).
    #[arg(long, global = true)]
    pub json: bool,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show each package: name, version, hash, status (cached|build|external), dependencies.
    Plan(PlanArgs),
    /// Build what the mirror lacks, in dependency order, and push each package.
    ///
    /// Independent branches keep building when one package fails; the exit code is 1 if
    /// any package failed or was skipped. Ctrl-C stops running recipes and leaves no
    /// half-written mirror entry.
    Run(RunArgs),
    /// Build one package as a CI job does: fetch its dependencies from the mirror, build,
    /// pack and push it. Does nothing if the mirror already has it (unless --force).
    ///
    /// A Spack spec is built by Spack (`spack: root:`, $SPACK_ROOT or `spack` on PATH):
    /// `spack reindex`, then `spack install --only package --no-add /HASH` into the store.
    Build(BuildArgs),
    /// Fetch packages and their runtime closure from the mirror, verify every blob, and
    /// unpack them under a root directory.
    Install(InstallArgs),
    /// Rebuild the mirror's index from the manifests it holds.
    Index,
    /// Assemble an image of the stack's `images:` section from the mirror's layers.
    ///
    /// REF is oci://HOST/REPO:TAG, oci+http://HOST/REPO:TAG, docker://NAME:TAG,
    /// oci-layout:DIR[:TAG] or docker-archive:FILE[:NAME[:TAG]]. Blobs the target already has
    /// are neither read nor uploaded; the same inputs give the same image digest (set
    /// SOURCE_DATE_EPOCH). With --platform A,B, one image per platform (each from that
    /// platform's packages) under one OCI image index.
    #[command(after_help = "\
Examples:
  stackci image demo --to oci-layout:out:demo
  stackci image demo --to oci://ghcr.io/me/demo:1.0
  stackci image demo --to docker://me/demo:1.0            # Docker Hub (registry-1.docker.io)
  stackci image demo --to docker-archive:demo.tar:demo:1.0 && podman load -i demo.tar
  stackci --platform linux/amd64,linux/arm64 image demo --to oci://ghcr.io/me/demo:1.0")]
    Image(ImageArgs),
    /// Post a commit status to GitHub or GitLab (detected from the CI environment).
    ///
    /// On GitHub Actions it posts to the pull request's head commit with GITHUB_TOKEN; on
    /// GitLab CI to CI_COMMIT_SHA with STACKCI_GITLAB_TOKEN/GITLAB_TOKEN, or to GitHub with
    /// --github-repo. Tokens are never printed.
    Status(StatusArgs),
    /// Write the CI pipeline for the stack (GitLab child pipeline or GitHub workflow).
    #[command(subcommand)]
    Generate(Generate),
    /// Check each package's cosign signature against the trusted keys.
    ///
    /// Trusted keys: --key, else STACKCI_TRUST_KEYS, else `trust: { keys: }` in the stack.
    /// Exit 0 when every package in the mirror has a valid signature by one of them, 1 when
    /// one is unsigned or its signature is invalid (or a named package is missing).
    #[command(after_help = "\
Examples:
  stackci verify                          every package of the stack that the mirror holds
  stackci verify hello zlib --json        two packages, as JSON (docs/json.md)
  stackci verify --key cosign.pub --image oci://ghcr.io/acme/tools:1.0
                                          an image and its SBOM, as `cosign verify --key` would")]
    Verify(VerifyArgs),
    /// Write a cosign-compatible key pair: PREFIX.key (encrypted) and PREFIX.pub.
    ///
    /// The private key is ECDSA P-256 in cosign's format (`ENCRYPTED SIGSTORE PRIVATE KEY`,
    /// scrypt + NaCl secretbox), encrypted with STACKCI_SIGNING_PASSWORD, else
    /// COSIGN_PASSWORD, else an empty password. `cosign sign --key PREFIX.key` and
    /// `cosign verify --key PREFIX.pub` read them; stackci signs with the key named (or held)
    /// by STACKCI_SIGNING_KEY.
    #[command(after_help = "\
Examples:
  STACKCI_SIGNING_PASSWORD=... stackci keygen --out keys/stackci
      then store keys/stackci.key in a masked CI variable STACKCI_SIGNING_KEY (and the
      password in STACKCI_SIGNING_PASSWORD), and commit keys/stackci.pub with
      `trust: { keys: [keys/stackci.pub] }` in stack.yaml")]
    Keygen(KeygenArgs),
    /// Start a pipeline in another CI system (from a GitHub job: a GitLab pipeline).
    #[command(subcommand)]
    Trigger(Trigger),
    /// Copy packages between mirrors, remove what no stack needs, check a mirror.
    #[command(subcommand)]
    Mirror(MirrorCommand),
}

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Packages to check (names, tags or hashes); default: every package of the stack.
    #[arg(value_name = "PKG")]
    pub packages: Vec<String>,

    /// Trust this public key (PEM, as cosign.pub) instead of the configured ones; repeatable.
    #[arg(long, value_name = "FILE")]
    pub key: Vec<PathBuf>,

    /// Also check this image (oci://HOST/REPO:TAG or oci-layout:DIR:TAG) and its SBOM.
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
}

/// Arguments of `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write PREFIX.key and PREFIX.pub.
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,

    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

/// The CI systems `trigger` starts pipelines in.
#[derive(Debug, Subcommand)]
pub enum Trigger {
    /// Start a GitLab pipeline with a pipeline trigger token, passing the GitHub repository
    /// and commit as variables, and with --wait follow it to its end.
    ///
    /// The pipeline gets STACKCI_GITHUB_REPOSITORY, STACKCI_GITHUB_SHA (the pull request's
    /// head commit) and STACKCI_GITHUB_RUN_URL, so its jobs report to the right commit with
    /// `stackci run --github-repo "$STACKCI_GITHUB_REPOSITORY"`. On GitHub Actions a
    /// `pending` commit status linking the pipeline is posted first (GITHUB_TOKEN), and with
    /// --wait the final one. Tokens are never printed.
    #[command(after_help = "\
Examples:
  # in a GitHub workflow step, with the token in a repository secret
  STACKCI_GITLAB_TRIGGER_TOKEN=${{ secrets.GITLAB_TRIGGER_TOKEN }} \\
    stackci trigger gitlab --gitlab-url https://gitlab.example --project group/stack --ref main --wait
  stackci trigger gitlab --project 4242 --ref main --var STACKCI_FORCE=1")]
    Gitlab(TriggerGitlabArgs),
}

/// Arguments of `trigger gitlab`.
#[derive(Debug, Args)]
pub struct TriggerGitlabArgs {
    /// The GitLab project: its numeric id or its path (group/project).
    #[arg(long, value_name = "ID|PATH")]
    pub project: String,

    /// Branch or tag of the GitLab project to run the pipeline on.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: String,

    /// Wait for the pipeline to finish; exit 0 when it succeeded, 1 otherwise.
    #[arg(long)]
    pub wait: bool,

    /// The GitLab instance (https://gitlab.example) or its API base (.../api/v4);
    /// default: $CI_API_V4_URL, else https://gitlab.com.
    #[arg(long, value_name = "URL", env = crate::env_vars::STACKCI_GITLAB_URL)]
    #[arg(hide_env_values = true)]
    pub gitlab_url: Option<String>,

    /// Read the pipeline trigger token from this variable (default: STACKCI_GITLAB_TRIGGER_TOKEN).
    #[arg(long, value_name = "NAME")]
    pub token_env: Option<String>,

    /// Another pipeline variable, KEY=VALUE (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,

    /// Name of the commit statuses (default: `stackci/<stack>`, else `stackci/<repo>`).
    #[arg(long, value_name = "C")]
    pub context: Option<String>,

    /// Post no commit status on GitHub.
    #[arg(long)]
    pub no_status: bool,

    /// Seconds between two looks at the pipeline with --wait.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub interval: f64,

    /// Give up waiting after this long (e.g. 90m, 6h); the pipeline goes on.
    #[arg(long, value_name = "DURATION", default_value = "6h")]
    pub timeout: String,
}

/// The `mirror` commands: a mirror's lifecycle.
#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Copy packages, with their signatures and referrers, between any two mirrors.
    ///
    /// SRC and DST are mirror URLs (file://DIR or a path, s3://BUCKET/PREFIX, oci://HOST/REPO,
    /// oci+http://HOST/REPO). Without PKG every tag is copied; with PKG (a name in the
    /// current stack, or a tag) those packages and every package they depend on. Manifests
    /// are copied byte for byte (digests and signatures stay valid), blobs the destination
    /// has are skipped, and within one registry blobs are mounted instead of copied. Blobs
    /// go first and tags last, so an interrupted copy is simply run again.
    #[command(after_help = "\
Examples:
  stackci mirror copy oci://ghcr.io/acme/stack-pr-7 oci://ghcr.io/acme/stack    promote a PR mirror
  stackci mirror copy .stackci/mirror s3://stacks/demo -j 16                 a file mirror to S3
  stackci mirror copy oci://reg/stack file:///srv/mirror hello             hello and its dependencies
  stackci mirror copy --dry-run SRC DST                                     what would be copied")]
    Copy(MirrorCopyArgs),
    /// Remove package tags no kept stack needs, their signatures and SBOMs, and (file and S3
    /// mirrors) the blobs nothing references any more.
    ///
    /// Kept: every package of each --keep-stack (default: the current stack), tags matching
    /// --keep-tag, tags of other tools, and with --older-than everything newer. On a
    /// registry manifests are deleted through the API and the registry's garbage collection
    /// frees the blobs. Safe next to a running push: a tag re-pushed meanwhile stays, and a
    /// blob written less than --grace before the prune started is kept (docs/mirrors.md).
    #[command(after_help = "\
Examples:
  stackci mirror prune --dry-run                               what would go (current stack kept)
  stackci --mirror s3://stacks/main mirror prune --keep-stack stack.yaml --keep-stack old/stack.yaml
  stackci --mirror oci://reg/stack-pr-7 mirror prune --keep-tag 'hello-*' --older-than 14d")]
    Prune(MirrorPruneArgs),
    /// Check a mirror: every tag resolves, every manifest and blob matches its digest and size.
    ///
    /// Every blob is read and hashed once (--quick only looks it up). Exits 1 naming each bad
    /// tag, manifest and blob, with the tags that need it.
    #[command(after_help = "\
Examples:
  stackci mirror verify                             the current stack's mirror
  stackci mirror verify s3://stacks/main --json     machine-readable report
  stackci mirror verify oci://reg/stack --quick     existence only, no downloads")]
    Verify(MirrorVerifyArgs),
}

/// Arguments of `mirror copy`.
#[derive(Debug, Args)]
pub struct MirrorCopyArgs {
    /// The mirror to copy from.
    #[arg(value_name = "SRC")]
    pub source: String,

    /// The mirror to copy to.
    #[arg(value_name = "DST")]
    pub destination: String,

    /// Packages to copy (names in the current stack, or tags), with what they depend on;
    /// default: every tag.
    #[arg(value_name = "PKG")]
    pub packages: Vec<String>,

    /// Blobs copied at once.
    #[arg(short, long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,

    /// Only show what would be copied.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `mirror prune`.
#[derive(Debug, Args)]
pub struct MirrorPruneArgs {
    /// Keep every package of this stack (stack.yaml or spack.lock; repeatable). Default: the
    /// current stack.
    #[arg(long = "keep-stack", value_name = "FILE")]
    pub keep_stacks: Vec<PathBuf>,

    /// Keep package tags matching this glob (`*`, `?`, `[...]`; repeatable).
    #[arg(long = "keep-tag", value_name = "GLOB")]
    pub keep_tags: Vec<String>,

    /// Only remove packages pushed longer ago than this (30d, 12h, ...; file and S3 mirrors).
    #[arg(long, value_name = "DURATION", value_parser = crate::lifecycle::parse_age)]
    pub older_than: Option<std::time::Duration>,

    /// Keep unreferenced blobs written less than this before the prune started (pushes in
    /// flight); 0 removes every unreferenced blob (only when nothing pushes).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::lifecycle::parse_age)]
    pub grace: std::time::Duration,

    /// Only show what would be removed.
    #[arg(long)]
    pub dry_run: bool,

    /// Manifests read and objects deleted at once.
    #[arg(short, long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,
}

/// Arguments of `mirror verify`.
#[derive(Debug, Args)]
pub struct MirrorVerifyArgs {
    /// The mirror to check (default: --mirror, else the current stack's).
    #[arg(value_name = "URL")]
    pub url: Option<String>,

    /// Only check that every blob exists; do not read them.
    #[arg(long)]
    pub quick: bool,

    /// Blobs checked at once.
    #[arg(short, long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,
}

/// Arguments of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Append what the generated GitHub workflow must build to $GITHUB_OUTPUT.
    #[arg(long)]
    pub github_output: bool,

    /// With --github-output: rebuild the selected packages even if the mirror has them.
    #[arg(long, requires = "github_output")]
    pub force: bool,

    /// Only these packages and what they need (what `run PKG...` would build); with
    /// --github-output, what the workflow builds. Default: the whole stack.
    #[arg(value_name = "PKG")]
    pub packages: Vec<String>,
}

/// The CI systems `generate` writes for.
#[derive(Debug, Subcommand)]
pub enum Generate {
    /// A GitLab dynamic child pipeline: one job per package to build, in dependency order,
    /// within GitLab's limits (50 needs per job, --max-jobs per pipeline, 2 MB per file).
    Gitlab(GenerateGitlabArgs),
    /// A GitHub Actions workflow whose jobs follow the stack's DAG and skip what is cached.
    Github(GenerateGithubArgs),
}

/// Arguments of `generate gitlab`.
#[derive(Debug, Args)]
pub struct GenerateGitlabArgs {
    /// Output file (part and image pipelines are written beside it).
    #[arg(short, long, value_name = "FILE", default_value = crate::generate::gitlab::DEFAULT_OUTPUT)]
    pub output: PathBuf,

    /// Most jobs per child pipeline; larger plans are split by level (default: ci.gitlab.max_jobs, 500).
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<usize>,

    /// Image of the build jobs when the stack sets no ci.gitlab.image.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// Accept the default mirror (a directory beside the stack) in CI: only when that
    /// directory is on storage every runner mounts.
    #[arg(long)]
    pub allow_local_mirror: bool,
}

/// Arguments of `generate github`.
#[derive(Debug, Args)]
pub struct GenerateGithubArgs {
    /// Output file.
    #[arg(short, long, value_name = "FILE", default_value = crate::generate::github::DEFAULT_OUTPUT)]
    pub output: PathBuf,

    /// Do not write: exit 1 with a diff when the file differs from what would be written.
    #[arg(long)]
    pub check: bool,
}

/// Arguments of `image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The image's name in the stack's `images:` section.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Where to write it.
    #[arg(long, value_name = "REF")]
    pub to: String,

    /// Use this base instead of the stack's `base:` (scratch, oci://..., oci-layout:DIR:TAG).
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,

    /// Most layers the image may have; beyond it the smallest package layers are merged.
    #[arg(long, value_name = "N", default_value_t = crate::image::DEFAULT_LAYER_BUDGET)]
    pub layer_budget: usize,
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Packages to build (with everything they need); default: the whole stack.
    #[arg(value_name = "PKG")]
    pub packages: Vec<String>,

    /// Packages built at the same time.
    #[arg(short, long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,

    /// `$JOBS` given to each recipe (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    pub build_jobs: Option<usize>,

    /// Commit status and report options.
    #[command(flatten)]
    pub status: StatusFlags,
}

/// How `run` and `build` report to the CI they run in.
#[derive(Debug, Clone, Default, Args)]
pub struct StatusFlags {
    /// Post commit statuses to this GitHub repository (OWNER/REPO) even from GitLab CI;
    /// default: `status: { github: }` in the stack, else the CI's own project.
    #[arg(long, value_name = "OWNER/REPO")]
    pub github_repo: Option<String>,

    /// Read the API token from this environment variable (default: GITHUB_TOKEN on GitHub,
    /// STACKCI_GITLAB_TOKEN or GITLAB_TOKEN on GitLab).
    #[arg(long, value_name = "NAME")]
    pub token_env: Option<String>,

    /// Also post one status per package (`stackci/<stack>/<package>`).
    #[arg(long)]
    pub per_package: bool,

    /// Fail when a status cannot be posted (default: warn and go on).
    #[arg(long)]
    pub strict: bool,

    /// Write a JUnit XML report (one test case per package) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// Arguments of `build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The package: a name, a tag (`name-version-hash`) or a hash.
    #[arg(value_name = "PKG")]
    pub package: String,

    /// Build and push even if the mirror already has it.
    #[arg(long)]
    pub force: bool,

    /// `$JOBS` given to the recipe (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    pub build_jobs: Option<usize>,

    /// Commit status and report options.
    #[command(flatten)]
    pub status: StatusFlags,
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// pending, running, success, failure, error or canceled.
    #[arg(value_name = "STATE")]
    pub state: crate::ci::status::State,

    /// Status name (default: `stackci/<stack>`).
    #[arg(long, value_name = "C")]
    pub context: Option<String>,

    /// Short text shown next to the status.
    #[arg(long, value_name = "D")]
    pub description: Option<String>,

    /// Link for the status (default: this CI run or pipeline).
    #[arg(long, value_name = "URL")]
    pub target_url: Option<String>,

    /// Destination and token options.
    #[command(flatten)]
    pub status: StatusFlags,
}

/// Arguments of `install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Packages to install (each with its runtime closure).
    #[arg(value_name = "PKG", required = true)]
    pub packages: Vec<String>,

    /// Directory the store is unpacked under (`<root>/<store>/<name>-<version>-<hash>`).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
}
