//! Stacks: parsing `stack.yaml` and `spack.lock`, validation, hashing, and the DAG.
//!
//! [`load`] turns a file into a validated [`Stack`] in one step: packages come out in a
//! deterministic dependency order (dependencies first, ties by name), every hash is
//! computed, and every problem is one [`StackError`] naming the file, line and package.
//! [`discover`] finds the file the way the CLI documents.

pub mod dag;
pub mod duration;
mod error;
pub mod hash;
pub mod job_rules;
mod model;
pub mod settings;
mod spack;
pub mod spack_env;
pub mod tree;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::env_vars::STACKCI_STACK as STACK_ENV;

pub use error::{ErrorKind, Position, StackError};
pub use model::*;
pub use yaml::DEFAULT_STORE;

/// Reads and validates the stack at `path`: a Spack lockfile when the name ends in
/// `.lock` or `.json` (or the content starts with `{`), else a `stack.yaml`.
pub fn load(path: &Path) -> Result<Stack, StackError> {
    load_for(path, None)
}

/// [`load`] for the target platform `platform` (`--platform`; `None`: the file's
/// `platform:`, else the host's). A Spack lockfile names its own targets, so the platform is
/// the host's unless given.
pub fn load_for(path: &Path, platform: Option<&crate::platform::Platform>) -> Result<Stack, StackError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut stack = match ext {
        "lock" | "json" => spack::load(path)?,
        "yaml" | "yml" => yaml::load_for(path, platform)?,
        _ => {
            let bytes = std::fs::read(path).map_err(|e| StackError::io(path, "cannot read the stack file", e))?;
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                spack::parse(path, &bytes)?
            } else {
                let text = String::from_utf8(bytes).map_err(|e| {
                    StackError::io(
                        path,
                        "cannot read the stack file",
                        std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                    )
                })?;
                yaml::parse_for(path, &text, platform)?
            }
        }
    };
    if let Some(p) = platform {
        stack.platform = p.clone();
    }
    Ok(stack)
}

/// Finds the stack file: `explicit` (`--stack`), else `$STACKCI_STACK`, else `./stack.yaml`,
/// else `./spack.lock`. A named file must exist; when nothing is found, the error lists
/// what was tried.
pub fn discover(explicit: Option<&Path>) -> Result<PathBuf, StackError> {
    let from_env = crate::env_vars::var(STACK_ENV).map(PathBuf::from);
    discover_in(explicit, from_env.as_deref(), Path::new(""))
}

/// [`discover`] with the environment variable's value passed in, looking for the default
/// names in `dir` (`""`: the current directory, giving the bare names `stack.yaml`, `spack.lock`).
fn discover_in(explicit: Option<&Path>, from_env: Option<&Path>, dir: &Path) -> Result<PathBuf, StackError> {
    let named = explicit.map(|p| (p, "--stack")).or(from_env.map(|p| (p, STACK_ENV)));
    if let Some((path, origin)) = named {
        return match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(path.to_path_buf()),
            Ok(_) => Err(StackError::new(
                path,
                ErrorKind::NotFound,
                format!("not a file (from {origin})"),
            )),
            Err(e) => Err(StackError {
                source: Some(e),
                ..StackError::new(
                    path,
                    ErrorKind::NotFound,
                    format!("cannot open the stack file (from {origin})"),
                )
            }),
        };
    }
    for candidate in ["stack.yaml", "spack.lock"] {
        let path = dir.join(candidate);
        if path.is_file() {
            return Ok(path);
        }
    }
    let shown = if dir.as_os_str().is_empty() {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    } else {
        dir.to_path_buf()
    };
    let msg =
        format!("no stack file found; tried --stack (not given), ${STACK_ENV} (not set), ./stack.yaml, ./spack.lock");
    Err(StackError::new(&shown, ErrorKind::NotFound, msg))
}

impl Stack {
    /// The environment package `i`'s recipe runs with: [`Stack::env`] overlaid with
    /// [`Package::env`].
    pub fn recipe_env(&self, i: usize) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        env.extend(self.packages[i].env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }
}

#[cfg(test)]
mod tests;
