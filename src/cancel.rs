//! Ctrl-C handling: stop launching work and terminate running recipe process groups.
//!
//! The first SIGINT/SIGTERM/SIGHUP cancels the run and sends SIGTERM to every running
//! recipe's process group; each recipe's supervisor ([`crate::builder::recipe::run`]) then also stops
//! the processes that left the group and escalates to SIGKILL after [`crate::builder::procs::GRACE`].
//! A second signal sends SIGKILL at once.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// How many termination signals arrived (0: not cancelled).
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the SIGINT/SIGTERM/SIGHUP handler once: the first signal marks the run
/// cancelled and sends SIGTERM to every running recipe's process group, the next ones
/// send SIGKILL.
pub fn install_handler() {
    INSTALLED.get_or_init(|| {
        let _ = ctrlc::set_handler(|| {
            let n = SIGNALS.fetch_add(1, Ordering::SeqCst) + 1;
            let sig = if n == 1 { libc::SIGTERM } else { libc::SIGKILL };
            for &pgid in GROUPS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                // SAFETY: killpg only sends a signal; a stale group id fails harmlessly.
                unsafe { libc::killpg(pgid, sig) };
            }
        });
    });
}

/// Whether the user asked to stop.
pub fn is_cancelled() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// Whether the user asked twice: recipes are killed without a grace period.
pub fn is_forced() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 1
}

/// Registers a running process group for the lifetime of the guard.
pub struct GroupGuard(i32);

impl GroupGuard {
    /// Tracks process group `pgid` (the child's pid when spawned with `process_group(0)`).
    pub fn new(pgid: u32) -> GroupGuard {
        let pgid = pgid as i32;
        GROUPS.lock().unwrap_or_else(|e| e.into_inner()).insert(pgid);
        if is_cancelled() {
            let sig = if is_forced() { libc::SIGKILL } else { libc::SIGTERM };
            // SAFETY: as above.
            unsafe { libc::killpg(pgid, sig) };
        }
        GroupGuard(pgid)
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        GROUPS.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0);
    }
}
