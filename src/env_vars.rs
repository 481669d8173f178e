//! Every environment variable stackci reads, as a documented constant, and the one place
//! that reads the process environment ([`var`], [`snapshot`]).
//!
//! `grep`ping this file answers "what does stackci look at" (uv's `uv-static` does the same).
//! An empty value counts as unset everywhere: CI templates set unused variables to "".
//! The AWS SDK reads its own variables (`AWS_*`, profiles) through its credential chain.

// ---- stackci's own ----

/// The stack file when `--stack` is not given.
pub const STACKCI_STACK: &str = "STACKCI_STACK";
/// The mirror URL when `--mirror` is not given.
pub const STACKCI_MIRROR: &str = "STACKCI_MIRROR";
/// Read-only upstream mirrors, comma-separated, when no `--upstream` is given.
pub const STACKCI_UPSTREAMS: &str = "STACKCI_UPSTREAMS";
/// S3-compatible endpoint for `s3://` mirrors when `--s3-endpoint` is not given.
pub const STACKCI_S3_ENDPOINT: &str = "STACKCI_S3_ENDPOINT";
/// Most bytes one layer may expand to (`--max-layer-size`).
pub const STACKCI_MAX_LAYER_SIZE: &str = "STACKCI_MAX_LAYER_SIZE";
/// Registry user name when the docker config has none for the registry.
pub const STACKCI_REGISTRY_USERNAME: &str = "STACKCI_REGISTRY_USERNAME";
/// Registry password or token, with [`STACKCI_REGISTRY_USERNAME`].
pub const STACKCI_REGISTRY_PASSWORD: &str = "STACKCI_REGISTRY_PASSWORD";
/// The private key every pushed package and image is signed with: a path, or the PEM
/// itself (as a CI variable holds it). cosign's encrypted format, PKCS#8 or SEC1.
pub const STACKCI_SIGNING_KEY: &str = "STACKCI_SIGNING_KEY";
/// Password of an encrypted [`STACKCI_SIGNING_KEY`] (default: [`COSIGN_PASSWORD`], else empty).
pub const STACKCI_SIGNING_PASSWORD: &str = "STACKCI_SIGNING_PASSWORD";
/// cosign's password variable, read when [`STACKCI_SIGNING_PASSWORD`] is not set.
pub const COSIGN_PASSWORD: &str = "COSIGN_PASSWORD";
/// Trusted public keys, comma-separated paths; replaces the stack's `trust: { keys: }`.
pub const STACKCI_TRUST_KEYS: &str = "STACKCI_TRUST_KEYS";

/// The target platform(s) when `--platform` is not given (`linux/arm64`).
pub const STACKCI_PLATFORM: &str = "STACKCI_PLATFORM";
/// Seconds a docker credential helper may take to answer (default 30).
pub const STACKCI_CREDENTIAL_HELPER_TIMEOUT: &str = "STACKCI_CREDENTIAL_HELPER_TIMEOUT";

// ---- Reproducibility, TLS, registries ----

/// Seconds since the epoch used for layer mtimes, image `created` and recipes (default 0).
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// Extra CA certificate (PEM) for TLS, when `--ca-cert` is not given.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
/// podman/skopeo's registry credentials file, read before the docker config.
pub const REGISTRY_AUTH_FILE: &str = "REGISTRY_AUTH_FILE";
/// Directory holding the docker `config.json` (default `~/.docker`).
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// Where programs are looked up (docker credential helpers, `spack`); after
/// `$SPACK_ROOT/bin`, Spack's own `PATH`, on which it finds python3, compilers and build tools.
pub const PATH: &str = "PATH";
/// The home directory (`~/.docker/config.json`).
pub const HOME: &str = "HOME";
/// This host's name, for naming temporary files other processes may judge stale.
pub const HOSTNAME: &str = "HOSTNAME";
/// Set by most CI systems; plain log lines instead of progress bars when set.
pub const CI: &str = "CI";

// ---- GitHub Actions (https://docs.github.com/en/actions/reference/variables-reference) ----

/// Set to `true` by GitHub Actions in every step.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// `OWNER/REPO` of the workflow's repository.
pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";
/// The commit that triggered the workflow; for pull requests, GitHub's merge commit.
pub const GITHUB_SHA: &str = "GITHUB_SHA";
/// REST API base, e.g. `https://api.github.com` or `https://HOST/api/v3` on GitHub Enterprise Server.
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
/// Web base, e.g. `https://github.com`; used to build the run's URL.
pub const GITHUB_SERVER_URL: &str = "GITHUB_SERVER_URL";
/// Numeric id of the workflow run; used to build the run's URL.
pub const GITHUB_RUN_ID: &str = "GITHUB_RUN_ID";
/// Name of the triggering event (`push`, `pull_request`, `pull_request_target`, ...).
pub const GITHUB_EVENT_NAME: &str = "GITHUB_EVENT_NAME";
/// Path of the JSON webhook payload of the triggering event.
pub const GITHUB_EVENT_PATH: &str = "GITHUB_EVENT_PATH";
/// Token for the GitHub API; not set by Actions itself, the workflow passes it
/// (`env: { GITHUB_TOKEN: ${{ github.token }} }`). `--token-env NAME` reads another variable.
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
/// File that step outputs are appended to (`key=value` or heredoc-style entries).
pub const GITHUB_OUTPUT: &str = "GITHUB_OUTPUT";
/// File whose Markdown is shown on the run's summary page.
pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";

/// Default for [`GITHUB_API_URL`] when unset (e.g. GitLab CI reporting to github.com).
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
/// Default for [`GITHUB_SERVER_URL`] when unset.
pub const DEFAULT_GITHUB_SERVER_URL: &str = "https://github.com";

// ---- GitLab CI (https://docs.gitlab.com/ci/variables/predefined_variables/) ----

/// Set to `true` by GitLab CI in every job.
pub const GITLAB_CI: &str = "GITLAB_CI";
/// REST API v4 base, e.g. `https://gitlab.com/api/v4`.
pub const CI_API_V4_URL: &str = "CI_API_V4_URL";
/// Numeric id of the project the pipeline runs in.
pub const CI_PROJECT_ID: &str = "CI_PROJECT_ID";
/// The project's name (the last part of its path); names the status when there is no stack.
pub const CI_PROJECT_NAME: &str = "CI_PROJECT_NAME";
/// The commit the pipeline builds.
pub const CI_COMMIT_SHA: &str = "CI_COMMIT_SHA";
/// Numeric id of the running pipeline; statuses are attached to it (`pipeline_id`).
pub const CI_PIPELINE_ID: &str = "CI_PIPELINE_ID";
/// Web URL of the running pipeline; the `target_url` when reporting to GitHub.
pub const CI_PIPELINE_URL: &str = "CI_PIPELINE_URL";
/// Web URL of the running job; the default `target_url` of GitLab statuses.
pub const CI_JOB_URL: &str = "CI_JOB_URL";
/// GitLab token for commit statuses (preferred over [`GITLAB_TOKEN`]): a personal, project
/// or group access token with the `api` scope whose user has at least the Developer role.
/// `CI_JOB_TOKEN` cannot post commit statuses, so it is never used.
pub const STACKCI_GITLAB_TOKEN: &str = "STACKCI_GITLAB_TOKEN";
/// The pipeline trigger token `stackci trigger gitlab` starts pipelines with.
pub const STACKCI_GITLAB_TRIGGER_TOKEN: &str = "STACKCI_GITLAB_TRIGGER_TOKEN";
/// The GitLab instance (or its API base) `stackci trigger gitlab` talks to (`--gitlab-url`).
pub const STACKCI_GITLAB_URL: &str = "STACKCI_GITLAB_URL";
/// Set by `stackci trigger gitlab` in the pipeline it starts: the GitHub `OWNER/REPO`.
pub const STACKCI_GITHUB_REPOSITORY: &str = "STACKCI_GITHUB_REPOSITORY";
/// Set by `stackci trigger gitlab`: the GitHub commit to report on (a pull request's head);
/// with `--github-repo` in GitLab CI, statuses go to this commit instead of `CI_COMMIT_SHA`.
pub const STACKCI_GITHUB_SHA: &str = "STACKCI_GITHUB_SHA";
/// Set by `stackci trigger gitlab`: the GitHub workflow run that started the pipeline.
pub const STACKCI_GITHUB_RUN_URL: &str = "STACKCI_GITHUB_RUN_URL";
/// Fallback GitLab token, same requirements as [`STACKCI_GITLAB_TOKEN`].
pub const GITLAB_TOKEN: &str = "GITLAB_TOKEN";

// ---- GitLab container registry defaults (https://docs.gitlab.com/user/packages/container_registry/) ----

/// The GitLab project's container registry host, e.g. `registry.gitlab.com`.
pub const CI_REGISTRY: &str = "CI_REGISTRY";
/// User name for [`CI_REGISTRY`] in a GitLab job.
pub const CI_REGISTRY_USER: &str = "CI_REGISTRY_USER";
/// Password for [`CI_REGISTRY`] in a GitLab job.
pub const CI_REGISTRY_PASSWORD: &str = "CI_REGISTRY_PASSWORD";
/// The GitHub user running the workflow; the user name for `ghcr.io` with [`GITHUB_TOKEN`].
pub const GITHUB_ACTOR: &str = "GITHUB_ACTOR";

// ---- Spack (what reaches Spack's environment: docs/spack.md) ----

/// The Spack installation to run (`$SPACK_ROOT/bin/spack`) when the stack's `spack: root:`
/// is not set; given to Spack as the root it runs from.
pub const SPACK_ROOT: &str = "SPACK_ROOT";
/// Spack's user configuration scope (default `~/.spack`).
pub const SPACK_USER_CONFIG_PATH: &str = "SPACK_USER_CONFIG_PATH";
/// Spack's user cache (default `~/.spack`).
pub const SPACK_USER_CACHE_PATH: &str = "SPACK_USER_CACHE_PATH";
/// Spack's system configuration scope (default `/etc/spack`).
pub const SPACK_SYSTEM_CONFIG_PATH: &str = "SPACK_SYSTEM_CONFIG_PATH";
/// Set: Spack ignores the user and system configuration scopes.
pub const SPACK_DISABLE_LOCAL_CONFIG: &str = "SPACK_DISABLE_LOCAL_CONFIG";
/// The Python interpreter Spack runs with (default: the first python3 on `PATH`).
pub const SPACK_PYTHON: &str = "SPACK_PYTHON";
/// Where CI jobs clone Spack from when they have none (default: the stack's `spack: git:`).
pub const SPACK_REPO: &str = "SPACK_REPO";
/// The commit, tag or branch CI jobs clone (default: the stack's `spack: ref:`).
pub const SPACK_REF: &str = "SPACK_REF";

/// Host variables Spack sees when they are set, besides [`PATH`], [`HOME`] and the stack's
/// `env:` and `spack: pass_env:`: the user's identity and locale, proxies and CA
/// certificates for fetching sources, and Spack's own configuration variables. Nothing
/// else of the caller's environment (CI tokens, cloud credentials) reaches Spack.
pub const SPACK_PASS_THROUGH: &[&str] = &[
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TZ",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    SSL_CERT_FILE,
    "SSL_CERT_DIR",
    SPACK_USER_CONFIG_PATH,
    SPACK_USER_CACHE_PATH,
    SPACK_SYSTEM_CONFIG_PATH,
    SPACK_DISABLE_LOCAL_CONFIG,
    SPACK_PYTHON,
];

/// The value of environment variable `name`, `None` when unset, empty or not UTF-8.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Every environment variable of the process with a UTF-8 name and value (for
/// [`crate::ci::env::Vars`], which detects the CI from a snapshot).
pub fn snapshot() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}
