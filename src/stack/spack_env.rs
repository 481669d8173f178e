//! A Spack environment as a stack: where it is, which Spack wrote its lockfile, and the
//! `spack:` section of `stack.yaml` (how stackci runs Spack for it).
//!
//! ```yaml
//! name: tutorial
//! store: /opt/stack
//! spack:
//!   env: envs/tutorial            # holds spack.yaml and spack.lock
//!   root: /opt/spack              # Spack to run (default: $SPACK_ROOT, else `spack` on PATH)
//!   pass_env: [MY_LICENSE_SERVER] # host variables Spack may see besides the documented ones
//!   install_flags: [--no-check-signature]
//!   git: https://github.com/spack/spack.git   # what CI jobs without Spack clone
//!   ref: v0.23.0                              # default: the commit or version in spack.lock
//! ```

use std::path::PathBuf;

/// The Spack environment a stack's packages come from (`spack: { env: DIR }` in
/// `stack.yaml`, or the directory of a bare `spack.lock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpackEnv {
    /// The environment directory (holding `spack.yaml` and `spack.lock`), absolute.
    pub dir: PathBuf,
    /// The lockfile the packages were read from.
    pub lock: PathBuf,
    /// The Spack version that wrote the lockfile (`spack.version`), when it records one.
    pub version: Option<String>,
    /// The Spack commit that wrote the lockfile (`spack.commit`), when it records one.
    pub commit: Option<String>,
    /// How stackci runs Spack (defaults for a bare lockfile).
    pub settings: SpackSettings,
}

/// The `spack:` section of `stack.yaml` besides `env:`. Every field has a default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpackSettings {
    /// `root:` — the Spack installation to run (`<root>/bin/spack`), absolute. Default:
    /// `$SPACK_ROOT`, else `spack` on `PATH`.
    pub root: Option<PathBuf>,
    /// `pass_env:` — names of host environment variables Spack also sees (besides the ones
    /// documented in `docs/spack.md`). Default: none.
    pub pass_env: Vec<String>,
    /// `install_flags:` — extra arguments of every `spack install`. Default: none.
    pub install_flags: Vec<String>,
    /// `git:` — the repository CI jobs clone Spack from when they have none.
    /// Default: [`DEFAULT_SPACK_GIT`].
    pub git: Option<String>,
    /// `ref:` — the commit, tag or branch they clone. Default: the lockfile's
    /// `spack.commit`, else `v<spack.version>` for a release.
    pub git_ref: Option<String>,
}

/// Default of [`SpackSettings::git`].
pub const DEFAULT_SPACK_GIT: &str = "https://github.com/spack/spack.git";

impl SpackEnv {
    /// The repository CI jobs clone Spack from.
    pub fn git(&self) -> &str {
        self.settings.git.as_deref().unwrap_or(DEFAULT_SPACK_GIT)
    }

    /// The ref CI jobs clone: `ref:`, else the commit that wrote the lockfile, else the tag
    /// of the release that wrote it (`v0.22.1`); `None` for a development version without a
    /// recorded commit.
    pub fn git_ref(&self) -> Option<String> {
        if let Some(r) = &self.settings.git_ref {
            return Some(r.clone());
        }
        if let Some(c) = &self.commit {
            return Some(c.clone());
        }
        let v = self.version.as_deref()?;
        (!v.contains("dev")).then(|| format!("v{v}"))
    }
}

/// True when `v` reads as a Spack version: digits and dots (`0.22.1`), optionally followed
/// by a suffix of letters, digits, `.` and `-` (`0.23.0.dev0`, `1.0.0-alpha.1`).
pub fn valid_version(v: &str) -> bool {
    let Some(first) = v.bytes().next() else { return false };
    let numeric = v.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    first.is_ascii_digit()
        && v[..numeric].split('.').filter(|p| !p.is_empty()).count() >= 2
        && v.bytes()
            .skip(numeric)
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for good in ["0.22.0", "0.23.0.dev0", "1.1.0.dev0", "1.0.0-alpha.1", "0.21"] {
            assert!(valid_version(good), "{good}");
        }
        for bad in ["", "7", "dev", "v0.22", "0.22 (abc)", "0..", ".1.2", "0.22/1"] {
            assert!(!valid_version(bad), "{bad}");
        }
    }

    #[test]
    fn clone_ref_defaults() {
        let mut env = SpackEnv {
            dir: PathBuf::from("/e"),
            lock: PathBuf::from("/e/spack.lock"),
            version: Some("0.22.1".into()),
            commit: None,
            settings: SpackSettings::default(),
        };
        assert_eq!(env.git_ref().as_deref(), Some("v0.22.1"));
        assert_eq!(env.git(), DEFAULT_SPACK_GIT);
        env.version = Some("0.23.0.dev0".into());
        assert_eq!(env.git_ref(), None, "a development version names no tag");
        env.commit = Some("abc123".into());
        assert_eq!(env.git_ref().as_deref(), Some("abc123"));
        env.settings.git_ref = Some("releases/v0.23".into());
        assert_eq!(env.git_ref().as_deref(), Some("releases/v0.23"));
    }
}
