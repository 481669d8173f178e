//! Recipe processes: what a recipe leaves running, Ctrl-C against recipes that resist it,
//! and `timeout:`. Processes are found by a marker in their argv (`exec -a`), unique per
//! test, so tests running in parallel never see each other's processes.

use std::fs;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::*;

/// A string no other test's process has in its argv.
fn marker(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("stackci-{what}-{}-{nanos}", std::process::id())
}

/// Command lines of live processes containing `marker` (zombies have no command line).
fn survivors(marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                out.push(cmdline);
            }
        }
    }
    out
}

/// Polls `done` every 50 ms for at most `limit`; true when it became true.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

fn sigint(child: &Child) {
    // SAFETY: sending SIGINT to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
}

/// `stackci run --json` outcome and detail of package `name`.
fn outcome(json: &[u8], name: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(json).unwrap();
    let p = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
        .clone();
    (
        p["outcome"].as_str().unwrap().to_string(),
        p["detail"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn a_background_child_does_not_hold_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mark = marker("bg");
    let script = format!("( exec -a {mark} sleep 40 & )\necho done");
    let stack = write_stack(
        &tmp.path().join("s"),
        &tmp.path().join("store"),
        &[("bg", &[], &script)],
    );
    let start = Instant::now();
    ok(stackci().arg("--stack").arg(&stack).arg("run"));
    // Today's bound is the 40 s child; a loaded 2-core machine still finishes far earlier.
    assert!(
        start.elapsed() < Duration::from_secs(25),
        "the run waited for the background child"
    );
    assert_eq!(
        survivors(&mark),
        Vec::<String>::new(),
        "the background child outlived the run"
    );
    let log = fs::read_dir(tmp.path().join("s/.stackci/logs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(fs::read_to_string(log).unwrap().contains("left processes running"));
}

/// A recipe that ignores SIGTERM, with a `setsid` child (which ignores it too) and a
/// foreground child; returns the running `stackci run` once all three are up.
fn start_stubborn_recipe(dir: &Path, mark: &str) -> Child {
    let script = format!(
        "trap '' TERM\nsetsid bash -c 'exec -a {mark}-setsid sleep 60' &\n( exec -a {mark}-fg sleep 60 )\ntouch \"$PREFIX/done\""
    );
    let stack = write_stack(&dir.join("s"), &dir.join("store"), &[("stubborn", &[], &script)]);
    let child = stackci().arg("--stack").arg(&stack).arg("run").spawn().unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || survivors(mark).len() == 2),
        "the recipe's processes never started: {:?}",
        survivors(mark)
    );
    child
}

#[test]
fn ctrl_c_kills_a_recipe_that_ignores_sigterm_and_its_setsid_child() {
    let tmp = tempfile::tempdir().unwrap();
    let mark = marker("stubborn");
    let mut child = start_stubborn_recipe(tmp.path(), &mark);
    let start = Instant::now();
    sigint(&child);
    let status = child.wait().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(status.code(), Some(130));
    // 5 s grace, then SIGKILL; far from the 60 s the processes would otherwise take.
    assert!(
        elapsed >= Duration::from_secs(4),
        "SIGKILL came before the grace period: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(25), "Ctrl-C took {elapsed:?}");
    assert_eq!(survivors(&mark), Vec::<String>::new(), "processes outlived stackci");
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mark = marker("twice");
    let mut child = start_stubborn_recipe(tmp.path(), &mark);
    sigint(&child);
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    sigint(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "the second Ctrl-C waited {elapsed:?} (grace is 5 s)"
    );
    assert_eq!(survivors(&mark), Vec::<String>::new(), "processes outlived stackci");
}

#[test]
fn ctrl_c_stops_recipes_and_writes_no_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let mark = marker("ctrl-c");
    let started = tmp.path().join("started");
    let script = format!(
        "touch {}\n( exec -a {mark} sleep 60 )\ntouch \"$PREFIX/done\"",
        started.display()
    );
    let stack = write_stack(
        &tmp.path().join("s"),
        &tmp.path().join("store"),
        &[("slow", &[], &script)],
    );
    let mut child = stackci().arg("--stack").arg(&stack).arg("run").spawn().unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || !survivors(&mark).is_empty()),
        "recipe never started"
    );
    let start = Instant::now();
    sigint(&child);
    let status = child.wait().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "run did not stop after Ctrl-C"
    );
    assert_eq!(status.code(), Some(130));
    // Checked right after exit: stackci waits for the recipe's processes to be gone.
    assert_eq!(
        survivors(&mark),
        Vec::<String>::new(),
        "the recipe's children survived Ctrl-C"
    );
    let plan = plan_statuses(&ok(stackci().arg("--stack").arg(&stack).args(["plan", "--json"])));
    assert_eq!(plan[0].1, "build", "an interrupted build left a tag");
}

#[test]
fn a_timeout_fails_the_package_and_skips_its_dependents() {
    let tmp = tempfile::tempdir().unwrap();
    let mark = marker("timeout");
    let yaml = format!(
        "name: t\nstore: {store}\ntimeout: 2\npackages:\n  slow:\n    version: '1'\n    build: ( exec -a {mark} sleep 60 )\n  \
         top:\n    version: '1'\n    depends: [slow]\n    build: 'true'\n  patient:\n    version: '1'\n    timeout: 1h\n    build: sleep 3\n",
        store = tmp.path().join("store").display()
    );
    let dir = tmp.path().join("s");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("stack.yaml"), yaml).unwrap();
    let start = Instant::now();
    let out = output(
        stackci()
            .arg("--stack")
            .arg(dir.join("stack.yaml"))
            .args(["run", "-j", "2", "--json"]),
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the timeout did not stop the recipe"
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let (slow, error) = outcome(&out.stdout, "slow");
    assert_eq!(slow, "failed");
    assert!(error.starts_with("timed out after 2s; log: "), "{error}");
    let log = fs::read_to_string(error.trim_start_matches("timed out after 2s; log: ")).unwrap();
    assert!(log.contains("stackci: timed out after 2s"), "{log}");
    assert_eq!(outcome(&out.stdout, "top").0, "skipped");
    assert_eq!(
        outcome(&out.stdout, "patient").0,
        "built",
        "a package's own timeout overrides the stack's"
    );
    assert_eq!(survivors(&mark), Vec::<String>::new());
}
