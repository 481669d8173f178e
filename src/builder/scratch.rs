//! Per-process scratch space: `<state>/build/<pid>-<nonce>/` holds this process's build
//! trees and tarballs, so two runs in one stack directory never touch each other's files.
//!
//! The directory is removed when the process is done with it; one left behind by a process
//! that died (SIGKILL, power loss) is removed by the next process that creates its own.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// This process's scratch directory, removed on drop.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates a fresh directory under `<state>/build/`, first removing those of dead processes.
    pub fn create(state: &Path) -> Result<Scratch> {
        let root = state.join("build");
        fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        remove_stale(&root);
        let dir = root.join(format!("{}-{:08x}", std::process::id(), fastrand::u32(..)));
        fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes `<pid>-<nonce>` directories whose process is gone. Other names (build trees
/// of older stackci versions, anything a user put there) are left alone. A reused pid only
/// delays the removal: a live process's directory is never touched.
fn remove_stale(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((pid, nonce)) = name.to_str().and_then(|n| n.split_once('-')) else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        if pid <= 0 || nonce.len() != 8 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) || alive(pid) {
            continue;
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}

/// Whether process `pid` exists (signal 0 checks without sending anything).
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 sends nothing.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_its_own_directory_and_those_of_dead_processes() {
        let state = tempfile::tempdir().unwrap();
        let build = state.path().join("build");
        // A process that has exited (and been waited for): its pid is free.
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let dead = gone.id();
        gone.wait().unwrap();
        for name in [format!("{dead}-0badc0de"), "zlib-1.3-abc".into(), "1-0000000a".into()] {
            fs::create_dir_all(build.join(name).join("src")).unwrap();
        }
        let scratch = Scratch::create(state.path()).unwrap();
        assert!(scratch.path().is_dir());
        assert!(
            !build.join(format!("{dead}-0badc0de")).exists(),
            "a dead process's directory stays"
        );
        assert!(
            build.join("zlib-1.3-abc").exists(),
            "other names are not ours to remove"
        );
        assert!(build.join("1-0000000a").exists(), "pid 1 is alive");
        let other = Scratch::create(state.path()).unwrap();
        assert!(scratch.path().is_dir(), "a live process's directory was removed");
        let path = scratch.path().to_path_buf();
        drop(scratch);
        assert!(!path.exists());
        drop(other);
    }
}
