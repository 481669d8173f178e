//! What generated build jobs run before stackci: installing stackci when the runner has
//! none (`scripts/install-stackci.sh`), and getting Spack for a Spack stack
//! (`scripts/setup-spack.sh`). Both are POSIX shell, embedded in the generated files as
//! they are (GitLab `before_script`, GitHub `run:` steps) and configured by variables the
//! generator sets, which a project can override (GitLab CI/CD variables win over the
//! file's).

use crate::stack::Stack;
use crate::stack::settings::InstallSettings;

/// Installs stackci unless it is on `PATH`: the release binary for the machine, checked
/// against its published sha256, else `cargo install --git`. Reads
/// `STACKCI_INSTALL_REPOSITORY`, `STACKCI_INSTALL_VERSION`, and optionally
/// `STACKCI_INSTALL_ROOT` (default `~/.stackci`) and `STACKCI_RELEASE_URL` (a mirror of
/// the releases page); appends to `$GITHUB_PATH` when set.
pub const INSTALL_STACKCI: &str = include_str!("scripts/install-stackci.sh");

/// Makes Spack available: `$SPACK_ROOT` or `spack` on `PATH`, else a clone of `SPACK_REPO`
/// at `SPACK_REF` in `STACKCI_SPACK_DIR` (default `~/.stackci/spack`), exported as
/// `SPACK_ROOT` (and to `$GITHUB_ENV` when set).
pub const SETUP_SPACK: &str = include_str!("scripts/setup-spack.sh");

/// The variables of [`INSTALL_STACKCI`].
pub fn install_vars(s: &InstallSettings) -> [(&'static str, String); 2] {
    [
        ("STACKCI_INSTALL_REPOSITORY", s.repository.clone()),
        ("STACKCI_INSTALL_VERSION", s.version()),
    ]
}

/// The variables of [`SETUP_SPACK`] for `stack`; `None` when the jobs need no Spack step
/// (not a Spack stack, or its `spack: root:` says where Spack is on the runners).
/// `SPACK_REF` is empty when nothing names one (a development Spack without a recorded
/// commit); the step then fails only on a runner that has no Spack.
pub fn spack_vars(stack: &Stack) -> Option<[(&'static str, String); 2]> {
    let env = stack.spack.as_ref()?;
    if env.settings.root.is_some() {
        return None;
    }
    Some([
        (crate::env_vars::SPACK_REPO, env.git().to_string()),
        (crate::env_vars::SPACK_REF, env.git_ref().unwrap_or_default()),
    ])
}
