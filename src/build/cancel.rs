//! Ctrl-C handling: stop launching work and terminate running recipe process groups.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

static CANCELLED: AtomicBool = AtomicBool::new(false);
static GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the SIGINT/SIGTERM handler once: it marks the run cancelled and sends SIGTERM
/// to every running recipe's process group.
pub fn install_handler() {
    INSTALLED.get_or_init(|| {
        let _ = ctrlc::set_handler(|| {
            CANCELLED.store(true, Ordering::SeqCst);
            for &pgid in GROUPS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                // SAFETY: killpg only sends a signal; a stale group id fails harmlessly.
                unsafe { libc::killpg(pgid, libc::SIGTERM) };
            }
        });
    });
}

/// Whether the user asked to stop.
pub fn is_cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// Registers a running process group for the lifetime of the guard.
pub struct GroupGuard(i32);

impl GroupGuard {
    /// Tracks process group `pgid` (the child's pid when spawned with `process_group(0)`).
    pub fn new(pgid: u32) -> GroupGuard {
        let pgid = pgid as i32;
        GROUPS.lock().unwrap_or_else(|e| e.into_inner()).insert(pgid);
        if is_cancelled() {
            // SAFETY: as above.
            unsafe { libc::killpg(pgid, libc::SIGTERM) };
        }
        GroupGuard(pgid)
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        GROUPS.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0);
    }
}
