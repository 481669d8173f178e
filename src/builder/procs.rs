//! The processes of one recipe, and how they are stopped.
//!
//! A recipe runs as its own process group, and what it starts usually stays there
//! (background jobs, `make -j`), where `killpg` reaches it. A process can leave the group
//! (`setsid`, `setpgid`); such *strays* are found among stackci's descendants by the
//! recipe's marker (`STACKCI_HASH=<hash>`), which they inherit through the environment.
//! stackci is a child subreaper ([`become_subreaper`]), so a recipe's orphans are
//! re-parented to stackci instead of init: they stay descendants, can be found and
//! killed, and stackci reaps them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Once;
use std::time::{Duration, Instant};

/// How long processes get between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);
/// How often a stopping recipe is checked on.
const TICK: Duration = Duration::from_millis(50);

/// Makes stackci the reaper of its orphaned descendants (Linux `PR_SET_CHILD_SUBREAPER`),
/// once per process; elsewhere a no-op (strays of a finished recipe then escape).
pub fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(target_os = "linux")]
        // SAFETY: this prctl only changes where this process's orphaned descendants go.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
    });
}

/// One recipe's processes: its process group and the strays carrying its marker.
#[derive(Debug)]
pub struct Tree {
    pgid: i32,
    marker: Vec<u8>,
    /// Strays seen so far, to be reaped once they exit.
    strays: BTreeSet<i32>,
}

impl Tree {
    /// The processes of group `pgid` and the descendants whose environment holds `marker`
    /// (a whole `NAME=value` entry).
    pub fn new(pgid: u32, marker: &str) -> Tree {
        Tree {
            pgid: pgid as i32,
            marker: marker.as_bytes().to_vec(),
            strays: BTreeSet::new(),
        }
    }

    /// Sends `sig` to the group and to every stray.
    pub fn signal(&mut self, sig: i32) {
        // SAFETY: killpg/kill only send signals; the group id is held by the group's members.
        unsafe { libc::killpg(self.pgid, sig) };
        for pid in marked_descendants(&self.marker) {
            self.strays.insert(pid);
            // SAFETY: as above; `pid` was alive and ours a moment ago.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// True while a group member or a stray is alive (exited ones are reaped first). Call it
    /// only after the group leader (the recipe's shell) has been waited for.
    pub fn alive(&mut self) -> bool {
        self.reap();
        // SAFETY: signal 0 only checks that the group exists.
        let group = unsafe { libc::killpg(self.pgid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        group || !marked_descendants(&self.marker).is_empty()
    }

    /// Waits until nothing is left, for at most `limit` or until `stop()` is true, and
    /// returns whether everything is gone. As for [`Tree::alive`], the shell must be gone.
    pub fn wait_gone(&mut self, limit: Duration, stop: &dyn Fn() -> bool) -> bool {
        let start = Instant::now();
        loop {
            if !self.alive() {
                return true;
            }
            if start.elapsed() >= limit || stop() {
                return false;
            }
            std::thread::sleep(TICK);
        }
    }

    /// Reaps exited processes of the group and strays that were re-parented to stackci.
    fn reap(&mut self) {
        loop {
            // SAFETY: waitid writes only into `info`; P_PGID limits it to this recipe's group.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let r = unsafe {
                libc::waitid(
                    libc::P_PGID,
                    self.pgid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOHANG,
                )
            };
            // SAFETY: si_pid is valid for the WEXITED waits above.
            if r != 0 || unsafe { info.si_pid() } == 0 {
                break;
            }
        }
        let me = std::process::id() as i32;
        self.strays.retain(|&pid| {
            if !matches!(stat(pid), Some(('Z', ppid)) if ppid == me) {
                return stat(pid).is_some();
            }
            let mut status = 0;
            // SAFETY: `pid` is our own exited child (checked just above).
            unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            false
        });
    }
}

/// Descendants of this process (live ones: zombies have no environment) whose
/// environment holds `marker`.
fn marked_descendants(marker: &[u8]) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some((_, ppid)) = stat(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![std::process::id() as i32];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).map_or(&[][..], Vec::as_slice) {
            todo.push(c);
            let env = std::fs::read(format!("/proc/{c}/environ")).unwrap_or_default();
            if env.split(|&b| b == 0).any(|entry| entry == marker) {
                out.push(c);
            }
        }
    }
    out
}

/// State letter and parent pid of `pid`, from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S ppid ...`; comm may contain spaces and parentheses.
    let mut rest = text.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn finds_and_stops_a_setsid_stray_by_its_marker() {
        become_subreaper();
        let marker = format!("STACKCI_HASH=procs-test-{}", std::process::id());
        let (k, v) = marker.split_once('=').unwrap();
        let mut shell = Command::new("bash")
            .arg("-c")
            .arg("trap '' TERM; setsid sleep 30 & sleep 30 & echo started")
            .env(k, v)
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(shell.stdout.take().unwrap()), &mut line).unwrap();
        // The shell exits at once, its children are orphans re-parented to this process.
        shell.wait().unwrap();
        let mut tree = Tree::new(shell.id(), &marker);
        let start = Instant::now();
        while marked_descendants(marker.as_bytes()).len() < 2 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(TICK);
        }
        assert_eq!(marked_descendants(marker.as_bytes()).len(), 2);
        tree.signal(libc::SIGTERM);
        assert!(
            !tree.wait_gone(Duration::from_millis(300), &|| false),
            "TERM is ignored"
        );
        tree.signal(libc::SIGKILL);
        assert!(tree.wait_gone(Duration::from_secs(10), &|| false));
        assert!(marked_descendants(marker.as_bytes()).is_empty());
    }

    #[test]
    fn parses_stat_lines_with_odd_names() {
        let me = std::process::id() as i32;
        let (state, ppid) = stat(me).unwrap();
        assert!(state.is_ascii_alphabetic());
        assert!(ppid > 0);
    }
}
