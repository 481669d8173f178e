//! Staging directories for unpacks, and removing the ones a killed process left behind.
//!
//! A staging directory is `<parent>/.stackci-unpack-<host>-<pid>-<random>`. Its owner holds
//! an exclusive `flock` on it while it exists and removes it when done (also on error and on
//! Ctrl-C, which the extraction loop checks). A process killed outright (`kill -9`, power
//! loss) cannot clean up; the next unpack into the same parent, and every `install` and
//! `build`, sweeps such leftovers with [`sweep_stale`]: a directory is removed only when it
//! names this host, its pid is not a live process here, and its lock can be taken — so a
//! live unpacker's staging is never touched, whether it runs in this pid namespace or in
//! another one sharing the store. Directories of other hosts (a store on a shared
//! filesystem) are left to their hosts.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Name prefix of staging directories.
pub const STAGING_PREFIX: &str = ".stackci-unpack-";

/// A locked staging directory, removed when dropped.
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
    lock: Option<File>,
}

impl Staging {
    /// Creates and locks a fresh staging directory in `parent` (created if missing), after
    /// sweeping stale ones.
    pub fn create(parent: &Path) -> Result<Staging> {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        sweep_stale(parent)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{STAGING_PREFIX}{}-{}-", host(), std::process::id()))
            .rand_bytes(8)
            .tempdir_in(parent)
            .with_context(|| format!("creating a staging directory in {}", parent.display()))?;
        // From here on, dropping `staging` removes the directory.
        let mut staging = Staging {
            path: dir.keep(),
            lock: None,
        };
        let lock = File::open(&staging.path).with_context(|| format!("opening {}", staging.path.display()))?;
        lock.try_lock()
            .with_context(|| format!("locking {}", staging.path.display()))?;
        staging.lock = Some(lock);
        Ok(staging)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the directory, reporting a failure (dropping removes it silently).
    pub fn close(mut self) -> Result<()> {
        let path = std::mem::take(&mut self.path);
        remove_tree(&path).with_context(|| format!("removing the staging directory {}", path.display()))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = remove_tree(&self.path);
        }
        drop(self.lock.take());
    }
}

/// Removes the staging directories in `parent` whose owner is gone (see the module
/// documentation); returns how many. A missing `parent` has none.
pub fn sweep_stale(parent: &Path) -> Result<usize> {
    let entries = match fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("listing {}", parent.display())),
    };
    let me = host();
    let mut removed = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", parent.display()))?;
        let name = entry.file_name();
        let Some((host, pid)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        if host != me || pid_alive(pid) {
            continue;
        }
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        // The owner holds the lock for as long as it uses the directory.
        let Ok(lock) = File::open(&path) else { continue };
        if lock.try_lock().is_err() {
            continue;
        }
        remove_tree(&path).with_context(|| format!("removing the stale staging directory {}", path.display()))?;
        removed += 1;
    }
    Ok(removed)
}

/// `(host, pid)` from a staging directory name.
fn parse_name(name: &str) -> Option<(&str, i32)> {
    let rest = name.strip_prefix(STAGING_PREFIX)?;
    let mut parts = rest.split('-');
    let (host, pid, random) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || random.is_empty() {
        return None;
    }
    Some((host, pid.parse().ok().filter(|&p| p > 0)?))
}

/// This host's name, reduced to `[A-Za-z0-9._]` so it never contains the `-` separator.
fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let name: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' })
        .collect();
    if name.is_empty() { "localhost".into() } else { name }
}

/// Whether `pid` is a live process in this pid namespace (a process of another user counts).
fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes a directory tree, first making its directories writable (a layer may have
/// staged read-only directories). Never follows symlinks.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Ok(()) => return Ok(()),
        Err(_) => {}
    }
    make_writable(path);
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

fn make_writable(dir: &Path) {
    let Ok(meta) = fs::symlink_metadata(dir) else { return };
    if !meta.is_dir() {
        return;
    }
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_name(".stackci-unpack-box.lan-42-Ab3dE9xZ"), Some(("box.lan", 42)));
        assert_eq!(
            parse_name(".stackci-unpack-Ab3dE9"),
            None,
            "the old format has no owner"
        );
        assert_eq!(parse_name(".stackci-unpack-h-0-x"), None);
        assert_eq!(parse_name(".stackci-unpack-h-12-"), None);
        assert!(!host().contains('-'));
    }

    #[test]
    fn a_live_staging_is_kept_and_a_dead_one_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let live = Staging::create(tmp.path()).unwrap();
        fs::create_dir(live.path().join("ro")).unwrap();
        fs::write(live.path().join("ro/f"), b"x").unwrap();
        fs::set_permissions(live.path().join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
        assert_eq!(sweep_stale(tmp.path()).unwrap(), 0, "our own pid is alive");

        // A child that exited: its pid is dead, and nobody holds the lock.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = tmp.path().join(format!("{STAGING_PREFIX}{}-{pid}-xyz", host()));
        fs::create_dir_all(dead.join("deep/er")).unwrap();
        fs::set_permissions(dead.join("deep"), fs::Permissions::from_mode(0o500)).unwrap();
        let other_host = tmp.path().join(format!("{STAGING_PREFIX}elsewhere-{pid}-xyz"));
        fs::create_dir(&other_host).unwrap();
        assert_eq!(sweep_stale(tmp.path()).unwrap(), 1);
        assert!(!dead.exists());
        assert!(other_host.exists(), "another host's staging is left alone");
        assert!(live.path().exists());
        let path = live.path().to_path_buf();
        live.close().unwrap();
        assert!(!path.exists(), "read-only directories do not stop the removal");
    }
}
