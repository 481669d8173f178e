//! Exclusive lock files that say who holds them.
//!
//! [`Lock::acquire`] opens (creating) a file, takes an exclusive `flock` on it and writes the
//! holder's pid into it. When the lock is busy it polls, and after [`NOTICE_AFTER`] prints
//! once on stderr "waiting for the lock on WHAT held by pid N". Polling instead of a blocking
//! `lock()` lets Ctrl-C end the wait: a run stuck behind another run's two-hour build must
//! still stop when asked. The lock is released when the [`Lock`] is dropped or the process
//! dies (the kernel drops `flock` locks with the last descriptor), so a lock is never stale.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cancel;

/// How long a wait lasts before it is reported.
pub const NOTICE_AFTER: Duration = Duration::from_secs(3);
/// The longest pause between two tries of a busy lock (the first pauses are shorter, for
/// locks held only a moment, like the file mirror's index lock).
const MAX_POLL: Duration = Duration::from_millis(100);

/// An exclusive lock on a file, held until dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
    waited: bool,
}

impl Lock {
    /// Takes the lock on `path` (created with its parent directories if missing); `what`
    /// names the locked thing in the waiting notice. Fails if the run is cancelled while
    /// waiting.
    pub fn acquire(path: &Path, what: &str) -> Result<Lock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening lock file {}", path.display()))?;
        let start = Instant::now();
        let mut noticed = false;
        let mut waited = false;
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("locking {}", path.display()));
                }
            }
            waited = true;
            if cancel::is_cancelled() {
                bail!("interrupted while waiting for the lock on {what}");
            }
            if !noticed && start.elapsed() >= NOTICE_AFTER {
                noticed = true;
                eprintln!("stackci: {}", waiting_notice(&mut file, what));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(MAX_POLL);
        }
        let mut lock = Lock { file, waited };
        lock.write_pid()
            .with_context(|| format!("writing the pid into {}", path.display()))?;
        Ok(lock)
    }

    /// True when another holder made this lock wait.
    pub fn waited(&self) -> bool {
        self.waited
    }

    fn write_pid(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        writeln!(self.file, "{}", std::process::id())
    }
}

/// "waiting for the lock on WHAT held by pid N", with the pid read from the lock file.
fn waiting_notice(file: &mut File, what: &str) -> String {
    let mut text = String::new();
    let pid = file
        .rewind()
        .and_then(|()| file.read_to_string(&mut text))
        .ok()
        .and_then(|_| text.trim().parse::<u32>().ok());
    match pid {
        Some(pid) => format!("waiting for the lock on {what} held by pid {pid}"),
        None => format!("waiting for the lock on {what} held by another process"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_holder_pid_and_excludes_a_second_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/x.lock");
        let lock = Lock::acquire(&path, "x").unwrap();
        assert!(!lock.waited());
        let pid = std::fs::read_to_string(&path).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        // flock excludes other open file descriptions, even in the same process.
        let other = File::options().write(true).open(&path).unwrap();
        assert!(matches!(other.try_lock(), Err(std::fs::TryLockError::WouldBlock)));
        let mut f = File::open(&path).unwrap();
        assert_eq!(
            waiting_notice(&mut f, "x"),
            format!("waiting for the lock on x held by pid {}", std::process::id())
        );
        drop(lock);
        other.try_lock().unwrap();
    }

    #[test]
    fn waits_for_the_holder_to_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("y.lock");
        let first = Lock::acquire(&path, "y").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
        });
        let second = Lock::acquire(&path, "y").unwrap();
        assert!(second.waited());
        release.join().unwrap();
    }
}
