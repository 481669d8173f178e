//! The `ci:` and `status:` sections of `stack.yaml`. `ci:` holds everything a team
//! customises in the generated CI files (runners, images, timeouts, permissions,
//! environment, setup steps), so that nobody edits generated YAML by hand; `status:` says
//! where commit statuses go.
//!
//! They are part of the stack model: [`crate::generate`] and [`crate::ci`] read them from
//! [`crate::stack::Stack`]. Every field has a default; an absent `ci:` section is
//! [`CiSettings::default()`]. Unknown keys are rejected, so a typo is an error instead of a silently ignored setting.
//!
//! ```yaml
//! status:
//!   github: octo/stack
//! ci:
//!   mapping:                      # per-package runners, first matching rule wins
//!     - match: [llvm, "gcc*"]
//!       tags: [large]
//!       image: registry.example.com/build/big:1
//!       timeout: 6h
//!       variables: { MAKEFLAGS: "-j32" }
//!   install: { repository: my-org/stackci, version: "0.2.0" }
//!   gitlab:
//!     image: registry.example.com/build/stackci:0.1
//!     tags: [linux, x86_64]
//!     before_script: ["source /etc/profile"]
//!     variables: { MAKEFLAGS: "-j8" }
//!     max_jobs: 500
//!   github:
//!     runs_on: [self-hosted, linux]
//!     timeout_minutes: 120
//!     permissions: { contents: read, statuses: write }
//!     env: { CFLAGS: "-O2" }
//!     setup_steps:
//!       - uses: actions/setup-python@v5
//!         with: { python-version: "3.12" }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole `ci:` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CiSettings {
    /// Settings for `stackci generate gitlab` and the GitLab component.
    pub gitlab: GitlabSettings,
    /// Settings for `stackci generate github`.
    pub github: GithubSettings,
    /// Per-package runner settings of the build jobs ([`JobRule`]), for both CI systems.
    pub mapping: Vec<JobRule>,
    /// How generated jobs install stackci when they have none.
    pub install: InstallSettings,
}

pub use super::job_rules::{JobRule, RuleError};

/// `ci: install:` — generated jobs that find no `stackci` on `PATH` download the release
/// binary for their machine from `https://github.com/<repository>/releases/download/v<version>/`
/// (`stackci-<target>.tar.gz`), check it against the published `.sha256`, and otherwise
/// build it with `cargo install --git https://github.com/<repository> --tag v<version>`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstallSettings {
    /// The GitHub repository (OWNER/NAME) of stackci's releases and sources.
    /// Default: [`default_repository`]; empty: a job without stackci fails, naming this setting.
    pub repository: String,
    /// The version to install. Default: the version of the stackci that generated the
    /// pipeline, so jobs run what planned them.
    pub version: Option<String>,
}

/// Default of [`InstallSettings::repository`]: the repository this stackci was built from,
/// when the build was told (`STACKCI_SOURCE_REPOSITORY` at compile time, as for
/// [`default_action`]); else empty. Never a guessed placeholder.
pub fn default_repository() -> String {
    option_env!("STACKCI_SOURCE_REPOSITORY")
        .filter(|r| r.contains('/'))
        .unwrap_or_default()
        .to_string()
}

impl Default for InstallSettings {
    fn default() -> Self {
        InstallSettings {
            repository: default_repository(),
            version: None,
        }
    }
}

impl InstallSettings {
    /// The version jobs install (without a leading `v`).
    pub fn version(&self) -> String {
        let v = self.version.as_deref().unwrap_or(env!("CARGO_PKG_VERSION"));
        v.strip_prefix('v').unwrap_or(v).to_string()
    }
}

/// `ci: gitlab:` — shared settings of every generated GitLab job (they live in one hidden
/// template job that all jobs `extends`), and the pipeline limits.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GitlabSettings {
    /// Image of the build jobs. Default: none here, so the image given to the generator
    /// (the component passes its `image` input) or else the runner's default image.
    pub image: Option<String>,
    /// Runner tags of the build jobs. Default: none (any runner).
    pub tags: Vec<String>,
    /// Commands run before each job's script (install tools, source environments).
    /// Default: none.
    pub before_script: Vec<String>,
    /// Extra CI/CD variables of every job. Default: none. `STACKCI_STACK` and
    /// `STACKCI_MIRROR` are always set by the generator.
    pub variables: BTreeMap<String, String>,
    /// Most jobs in one child pipeline; larger plans are split into parts that run one
    /// after another. Default: 500.
    pub max_jobs: usize,
    /// Most `needs` entries of one job (GitLab's limit is 50); a job with more
    /// dependencies in its pipeline waits for all earlier stages instead. Default: 50.
    pub max_needs: usize,
    /// Largest generated file in bytes (GitLab's `max_yaml_size_bytes`). Default: 2 MiB.
    pub max_bytes: usize,
    /// Job timeout (`timeout:`, e.g. `3h 30m`). Default: none (the project's setting).
    pub timeout: Option<String>,
    /// Where the component's image pipeline pushes each image of the stack's `images:`
    /// section, with `{image}` replaced by the image name; GitLab variables are expanded
    /// by the job's shell. Default: [`DEFAULT_GITLAB_IMAGE_TO`].
    pub image_to: String,
}

/// Default of [`GitlabSettings::image_to`]: the project's own container registry,
/// tagged with the Git tag.
pub const DEFAULT_GITLAB_IMAGE_TO: &str = "oci://${CI_REGISTRY_IMAGE}/{image}:${CI_COMMIT_TAG}";

impl Default for GitlabSettings {
    fn default() -> Self {
        GitlabSettings {
            image: None,
            tags: Vec::new(),
            before_script: Vec::new(),
            variables: BTreeMap::new(),
            max_jobs: 500,
            max_needs: 50,
            max_bytes: 2 * 1024 * 1024,
            timeout: None,
            image_to: DEFAULT_GITLAB_IMAGE_TO.to_string(),
        }
    }
}

/// `ci: github:` — settings of the generated GitHub Actions workflow.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GithubSettings {
    /// `runs-on` of every job: a label or a list of labels. Default: `ubuntu-latest`.
    pub runs_on: RunsOn,
    /// `timeout-minutes` of every job. Default: 360 (GitHub's limit for hosted runners).
    pub timeout_minutes: u32,
    /// Workflow `permissions`. Default: `contents: read` (checkout) and
    /// `statuses: write` (`stackci status`). The image job adds `packages: write`.
    pub permissions: BTreeMap<String, String>,
    /// Workflow-level `env`. Default: none. Set `STACKCI_MIRROR` here when the stack file
    /// has no `mirror:`.
    pub env: BTreeMap<String, String>,
    /// Steps run in every job after checkout and before stackci is installed (each a
    /// step mapping, copied as is). Default: none.
    pub setup_steps: Vec<serde_json::Value>,
    /// `container:` of every job (an image name or a mapping). Default: none.
    pub container: Option<serde_json::Value>,
    /// An action that installs stackci (`uses:`), e.g. `OWNER/stackci@v1`, or `./` in the
    /// stackci repository itself, with `with: { version }`. Default: [`default_action`];
    /// empty: each job runs the install step of `ci: install:` instead.
    pub action: String,
    /// stackci version the action installs. Default: `latest`.
    pub version: String,
    /// Most build-able (non-external) packages for one job per package; larger stacks get
    /// one matrix job per dependency level instead. Default: 200.
    pub max_package_jobs: usize,
    /// Most entries of one matrix job (GitHub allows 256); larger levels are split.
    /// Default: 256.
    pub max_matrix: usize,
    /// Where the tag job pushes each image of the stack's `images:` section, with
    /// `{image}` replaced by the image name; expanded by bash at run time.
    /// Default: [`DEFAULT_GITHUB_IMAGE_TO`].
    pub image_to: String,
}

/// Default of [`GithubSettings::action`]: `OWNER/NAME@vMAJOR` of the repository this
/// stackci was built from, when the build was told (`STACKCI_SOURCE_REPOSITORY` at compile
/// time: the release workflow and the action's `cargo install` fallback set it); else empty,
/// and `generate github` asks for `ci.github.action`. Never a guessed placeholder.
pub fn default_action() -> String {
    match option_env!("STACKCI_SOURCE_REPOSITORY").filter(|r| r.contains('/')) {
        Some(repo) => format!("{repo}@v{}", env!("CARGO_PKG_VERSION_MAJOR")),
        None => String::new(),
    }
}

/// Default of [`GithubSettings::image_to`]: GitHub's container registry under the
/// repository (lowercased, as OCI requires), tagged with the Git tag.
pub const DEFAULT_GITHUB_IMAGE_TO: &str = "oci://ghcr.io/${GITHUB_REPOSITORY,,}/{image}:${GITHUB_REF_NAME}";

impl Default for GithubSettings {
    fn default() -> Self {
        GithubSettings {
            runs_on: RunsOn::Label("ubuntu-latest".to_string()),
            timeout_minutes: 360,
            permissions: BTreeMap::from([
                ("contents".to_string(), "read".to_string()),
                ("statuses".to_string(), "write".to_string()),
            ]),
            env: BTreeMap::new(),
            setup_steps: Vec::new(),
            container: None,
            action: default_action(),
            version: "latest".to_string(),
            max_package_jobs: 200,
            max_matrix: 256,
            image_to: DEFAULT_GITHUB_IMAGE_TO.to_string(),
        }
    }
}

/// The `status:` section (`status: { github: OWNER/REPO }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    /// Post statuses to this GitHub repository even when running elsewhere (GitLab CI
    /// "CI/CD for external repository"); same as `--github-repo`.
    pub github: Option<String>,
}

/// The `trust:` section: which keys packages must be signed by, and which base images too.
///
/// ```yaml
/// trust:
///   keys: [keys/stackci.pub]          # PEM public keys, relative to the stack file
///   bases: [oci://ghcr.io/acme/base]  # base images (repositories) that must be signed too
/// ```
///
/// `STACKCI_TRUST_KEYS` (comma-separated paths) replaces `keys` when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSettings {
    /// Public keys (cosign's `cosign.pub` format); a relative path is relative to the stack.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Base image repositories (`oci://HOST/REPO`) whose images must carry a signature by
    /// one of the keys; a base is covered when its reference starts with an entry.
    #[serde(default)]
    pub bases: Vec<String>,
}

/// A `runs-on` value: one label or a list of labels.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RunsOn {
    /// A single label, such as `ubuntu-latest`.
    Label(String),
    /// Several labels that a runner must all carry.
    Labels(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        ci: CiSettings,
    }

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
ci:
  gitlab:
    image: registry.example.com/build/stackci:0.1
    tags: [linux, x86_64]
    before_script: ["source /etc/profile"]
    variables: { MAKEFLAGS: "-j8" }
    max_jobs: 300
  github:
    runs_on: [self-hosted, linux]
    timeout_minutes: 120
    permissions: { contents: read, statuses: write }
    env: { CFLAGS: "-O2" }
    container: { image: "debian:12", options: "--user 0" }
    setup_steps:
      - uses: actions/setup-python@v5
        with: { python-version: "3.12" }
"#;
        let ci = serde_saphyr::from_str::<Doc>(text).unwrap().ci;
        assert_eq!(ci.gitlab.tags, ["linux", "x86_64"]);
        assert_eq!(ci.gitlab.max_jobs, 300);
        assert_eq!(ci.gitlab.max_needs, 50, "defaults fill what is not given");
        assert_eq!(ci.gitlab.variables["MAKEFLAGS"], "-j8");
        assert_eq!(
            ci.github.runs_on,
            RunsOn::Labels(vec!["self-hosted".into(), "linux".into()])
        );
        assert_eq!(ci.github.timeout_minutes, 120);
        assert_eq!(ci.github.setup_steps[0]["with"]["python-version"], "3.12");
        assert_eq!(ci.github.container.as_ref().unwrap()["image"], "debian:12");
        assert_eq!(ci.github.action, default_action());
        assert_eq!(ci.install, InstallSettings::default());
        let one: Doc = serde_saphyr::from_str("ci: { github: { runs_on: ubuntu-24.04 } }").unwrap();
        assert_eq!(one.ci.github.runs_on, RunsOn::Label("ubuntu-24.04".into()));
        let empty: Doc = serde_saphyr::from_str("ci: {}").unwrap();
        assert_eq!(empty.ci, CiSettings::default());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = serde_saphyr::from_str::<Doc>("ci: { gitlab: { imgae: x } }")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("imgae"), "{err}");
        assert!(serde_saphyr::from_str::<Doc>("ci: { circle: {} }").is_err());
    }
}
