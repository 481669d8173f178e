//! Two runs of one stack directory at once, and the prefix locks between them.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn two_runs_of_one_stack_directory_build_each_package_once() {
    let tmp = tempfile::tempdir().unwrap();
    let count = tmp.path().join("count");
    let step = format!(
        "echo \"$STACKCI_PACKAGE\" >> {}\nsleep 1\nmkdir -p \"$PREFIX/bin\"\necho \"$STACKCI_PACKAGE\" > \"$PREFIX/bin/name\"",
        count.display()
    );
    let stack = write_stack(
        &tmp.path().join("s"),
        &tmp.path().join("store"),
        &[
            ("base", &[], &step),
            ("left", &["base"], &step),
            ("right", &["base"], &step),
            ("top", &["left", "right"], &step),
        ],
    );
    let runs: Vec<_> = (0..2)
        .map(|_| {
            stackci()
                .arg("--stack")
                .arg(&stack)
                .args(["run", "-j", "2"])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut built: Vec<String> = fs::read_to_string(&count)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    built.sort();
    assert_eq!(built, ["base", "left", "right", "top"], "each recipe runs exactly once");
    let plan = plan_statuses(&ok(stackci().arg("--stack").arg(&stack).args(["plan", "--json"])));
    assert!(plan.iter().all(|(_, s)| s == "cached"), "{plan:?}");
    let scratch = tmp.path().join("s/.stackci/build");
    let left: Vec<_> = fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "build directories left behind: {left:?}");
}

#[test]
fn a_run_waiting_on_a_prefix_lock_names_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let stack = write_stack(&tmp.path().join("s"), &store, &[("one", &[], "touch \"$PREFIX/x\"")]);
    let plan = plan_statuses(&ok(stackci().arg("--stack").arg(&stack).args(["plan", "--json"])));
    let lock = store.join(".stackci/locks").join(format!("{}.lock", plan[0].0));
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    // Another live process holds the lock, as a second stackci would, with its pid inside:
    // the shell locks the file on fd 9, writes its pid and becomes `sleep` (same pid, same fd).
    let mut holder = Command::new("sh")
        .arg("-c")
        .arg("exec 9>>\"$0\" && flock 9 && echo $$ > \"$0\" && exec sleep 120")
        .arg(&lock)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while fs::read_to_string(&lock).unwrap_or_default().trim() != holder.id().to_string() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the holder never took the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut run = stackci()
        .arg("--stack")
        .arg(&stack)
        .arg("run")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let want = format!(
        "waiting for the lock on {} held by pid {}",
        store.join(&plan[0].0).display(),
        holder.id()
    );
    let mut stderr = BufReader::new(run.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while !seen.contains(&want) {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no notice; stderr:\n{seen}");
        seen.push_str(&line);
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    let rest = std::io::read_to_string(stderr).unwrap();
    assert!(run.wait().unwrap().success(), "{seen}{rest}");
    assert!(rest.contains("built"), "{seen}{rest}");
}
