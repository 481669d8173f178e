//! Command-line arguments (clap) and dispatch to one module per command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::commands;

/// Build a software stack in dependency order, keep the binaries in an OCI mirror, and
/// publish runnable images — locally or from GitLab CI and GitHub Actions.
#[derive(Debug, Parser)]
#[command(name = "stackci", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "\
The stack is --stack, else $STACKCI_STACK, else ./stack.yaml, else ./spack.lock.
The mirror is --mirror, else $STACKCI_MIRROR, else `mirror:` in the stack, else
file://<stack dir>/.stackci/mirror.

Examples:
  stackci plan                       what is cached and what must be built
  stackci run -j 4                   build everything missing, 4 packages at a time
  stackci install hello --root /tmp/root
  stackci --mirror oci://ghcr.io/me/stack plan --json")]
pub struct Cli {
    /// Stack file (stack.yaml or spack.lock).
    #[arg(long, global = true, value_name = "FILE", env = "STACKCI_STACK")]
    pub stack: Option<PathBuf>,

    /// Mirror URL: file://DIR, s3://BUCKET/PREFIX, oci://HOST/REPO or oci+http://HOST/REPO.
    #[arg(long, global = true, value_name = "URL", env = "STACKCI_MIRROR")]
    pub mirror: Option<String>,

    /// Extra CA certificate (PEM) for TLS connections to the mirror.
    #[arg(long, global = true, value_name = "FILE", env = "SSL_CERT_FILE")]
    pub ca_cert: Option<PathBuf>,

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
    Plan,
    /// Build what the mirror lacks, in dependency order, and push each package.
    ///
    /// Independent branches keep building when one package fails; the exit code is 1 if
    /// any package failed or was skipped. Ctrl-C stops running recipes and leaves no
    /// half-written mirror entry.
    Run(RunArgs),
    /// Build one package as a CI job does: fetch its dependencies from the mirror, build,
    /// pack and push it. Does nothing if the mirror already has it (unless --force).
    Build(BuildArgs),
    /// Fetch packages and their runtime closure from the mirror, verify every blob, and
    /// unpack them under a root directory.
    Install(InstallArgs),
    /// Rebuild the mirror's index from the manifests it holds.
    Index,
    /// Assemble an image of the stack's `images:` section from the mirror's layers.
    ///
    /// REF is oci://HOST/REPO:TAG, oci+http://HOST/REPO:TAG, oci-layout:DIR[:TAG] or
    /// docker-archive:FILE[:NAME[:TAG]]. Blobs the target already has are neither read nor
    /// uploaded; the same inputs give the same image digest (set SOURCE_DATE_EPOCH).
    Image(ImageArgs),
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

/// Parses the command line and runs the command.
pub fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    commands::run(cli)
}

/// Prints an error with its cause chain, cargo-style.
pub fn print_error(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
