//! Temporary files of a `file://` mirror: named after their writer, removed once it is gone.
//!
//! A writer killed mid-push (`kill -9`, a lost CI runner) leaves its temporary file behind.
//! Each one is named `.tmp-<host>-<pid>-<random>`, where `<host>` is the host name (plus
//! `+<inode>` of the PID namespace when it is not the initial one, so containers that share
//! a host name never judge each other's processes). The rule for removing one:
//!
//! - written on this host (same name, same PID namespace): removed when process `<pid>` no
//!   longer exists; kept while it does, even if the PID was reused (never a live writer's);
//! - written elsewhere, or named otherwise (older stackci versions): removed when it has
//!   not been modified for [`FOREIGN_MAX_AGE`] (a live writer keeps its file's mtime fresh).

use std::fs;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// Prefix of every temporary file in a mirror (listings skip these names).
pub const PREFIX: &str = ".tmp-";
/// Age after which a temporary file of another host (or of unknown origin) is stale.
pub const FOREIGN_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// Inode of the initial PID namespace on Linux (`PROC_PID_INIT_INO`).
const INITIAL_PID_NS: u64 = 0xEFFF_FFFC;

/// `<host>` of this process's temporary file names.
fn owner() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let host = host_name();
        match pid_namespace() {
            Some(ns) if ns != INITIAL_PID_NS => format!("{host}+{ns}"),
            _ => host,
        }
    })
}

/// The host name with anything but letters, digits, `.`, `-` and `_` replaced by `_`.
fn host_name() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| crate::env_vars::var(crate::env_vars::HOSTNAME))
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() { "localhost".into() } else { clean }
}

/// The inode of this process's PID namespace, where `/proc` shows it.
fn pid_namespace() -> Option<u64> {
    let link = fs::read_link("/proc/self/ns/pid").ok()?;
    let text = link.to_str()?;
    text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// The prefix of this process's temporary files: `.tmp-<host>-<pid>-`.
pub fn name_prefix() -> String {
    format!("{PREFIX}{}-{}-", owner(), std::process::id())
}

/// `(host, pid)` from a temporary file name written by [`name_prefix`].
fn parse(name: &str) -> Option<(&str, u32)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (rest, random) = rest.rsplit_once('-')?;
    let (host, pid) = rest.rsplit_once('-')?;
    if host.is_empty() || random.is_empty() {
        return None;
    }
    Some((host, pid.parse().ok()?))
}

/// Whether process `pid` exists on this host (`kill(pid, 0)`; a process of another user
/// counts as existing).
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether the temporary file `name`, last modified at `modified`, is stale by the module's rule.
fn is_stale(name: &str, modified: Option<SystemTime>, now: SystemTime) -> bool {
    match parse(name) {
        Some((host, pid)) if host == owner() => !alive(pid),
        _ => modified
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > FOREIGN_MAX_AGE),
    }
}

/// Removes the stale temporary files directly in `dir`; returns how many it removed.
/// Best effort: an unreadable directory or a file another cleaner removed first is skipped.
pub fn remove_stale(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(PREFIX) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() && is_stale(name, meta.modified().ok(), now) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_host_and_pid() {
        let name = format!("{}Ab12Cd", name_prefix());
        assert_eq!(parse(&name), Some((owner(), std::process::id())));
        assert_eq!(parse(".tmp-my-host.example-42-x"), Some(("my-host.example", 42)));
        assert_eq!(parse(".tmp-AbCdEf"), None);
        assert_eq!(parse(".tmp-h-notapid-x"), None);
    }

    #[test]
    fn only_dead_local_writers_and_old_foreign_files_are_stale() {
        let now = SystemTime::now();
        let fresh = Some(now);
        let old = Some(now - FOREIGN_MAX_AGE - Duration::from_secs(60));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        assert!(is_stale(&format!("{PREFIX}{}-{dead}-x", owner()), fresh, now));
        assert!(!is_stale(&format!("{PREFIX}{}-{me}-x", owner()), old, now));
        assert!(!is_stale(".tmp-elsewhere-1-x", fresh, now));
        assert!(is_stale(".tmp-elsewhere-1-x", old, now));
        assert!(!is_stale(".tmp-AbCdEf", fresh, now));
        assert!(is_stale(".tmp-AbCdEf", old, now));
        assert!(!is_stale(".tmp-AbCdEf", None, now));
    }
}
