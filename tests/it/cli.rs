//! The command line as a user meets it: help, stack errors, progress output modes.

use std::fs;
use std::process::Command;

use crate::common::*;

#[test]
fn help_teaches_discovery_and_commands() {
    let help = ok(stackci().arg("--help"));
    for needle in [
        "plan",
        "run",
        "build",
        "install",
        "index",
        "STACKCI_STACK",
        "spack.lock",
        "--mirror",
    ] {
        assert!(help.contains(needle), "--help does not mention {needle}:\n{help}");
    }
    let run_help = ok(stackci().args(["run", "--help"]));
    assert!(
        run_help.contains("--jobs") && run_help.contains("dependency order"),
        "{run_help}"
    );
}

#[test]
fn bad_stack_names_file_line_and_package_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let stack = tmp.path().join("stack.yaml");
    fs::write(
        &stack,
        "name: t\npackages:\n  a:\n    version: \"1\"\n    build: \"true\"\n  b:\n    version: \"1\"\n    depends: [zzz]\n    build: \"true\"\n",
    )
    .unwrap();
    let out = output(stackci().current_dir(tmp.path()).arg("run"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stack.yaml:6") || stderr.contains("stack.yaml:8"),
        "no line in: {stderr}"
    );
    assert!(stderr.contains("`b`") && stderr.contains("zzz"), "{stderr}");
    let entries: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        entries,
        vec![std::ffi::OsString::from("stack.yaml")],
        "a failed load wrote files"
    );

    let out = output(
        stackci()
            .current_dir(tmp.path().join(".."))
            .args(["--stack", "/nonexistent/stack.yaml", "plan"]),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/stack.yaml"));
}

#[test]
fn terminal_gets_progress_bars_pipes_get_plain_lines() {
    require("script");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let stack = write_stack(
        &tmp.path().join("s"),
        &store,
        &[
            ("a", &[], "echo step one\nsleep 1\necho step two"),
            ("b", &["a"], "sleep 0.5"),
        ],
    );
    // Under a pseudo-terminal (util-linux `script`), indicatif draws and redraws with escapes.
    let cmd = format!("{} --stack {} run", env!("CARGO_BIN_EXE_stackci"), stack.display());
    let out = ok(Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env_remove("CI")
        .env("TERM", "xterm"));
    assert!(out.contains('\x1b'), "no terminal control sequences on a tty: {out:?}");
    assert!(out.contains("built") && out.contains("a-1.0-"), "{out:?}");

    // Piped: plain timestamped lines, no control characters at all.
    fs::remove_dir_all(&store).unwrap();
    fs::remove_dir_all(tmp.path().join("s/.stackci")).unwrap();
    let out = output(stackci().arg("--stack").arg(&stack).arg("run"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr
            .lines()
            .filter(|l| !l.is_empty())
            .all(|l| l.starts_with('[') || l.contains("built,")),
        "{stderr}"
    );
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "control characters in piped output: {stderr:?}"
    );
}

#[test]
fn stack_errors_become_github_annotations_in_actions() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("stack.yaml"),
        "name: t\npackages:\n  a:\n    build: \"true\"\n",
    )
    .unwrap();
    let out = output(
        stackci()
            .current_dir(tmp.path())
            .env("GITHUB_ACTIONS", "true")
            .arg("plan"),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("no annotation: {stderr}"));
    assert!(line.contains("file=stack.yaml") && line.contains("line="), "{line}");
    assert!(line.contains("version"), "{line}");
}
