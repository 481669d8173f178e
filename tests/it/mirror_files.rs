//! Files of a `file://` mirror as other users and later runs see them: modes that follow
//! the umask (issue 9, item 1) and temporary files of killed writers (issue 9, item 3).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

use crate::common::*;

/// `stackci ARGS` run by `sh` under `umask MASK`, as a shell user would.
fn stackci_with_umask(mask: &str) -> Command {
    let mut cmd = Command::new("sh");
    let exe = stackci().get_program().to_owned();
    cmd.arg("-c")
        .arg(format!("umask {mask} && exec \"$0\" \"$@\""))
        .arg(exe)
        .env_remove("STACKCI_STACK")
        .env_remove("STACKCI_MIRROR")
        .env_remove("CI")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI");
    cmd
}

/// Every regular file under `dir`, with its permission bits.
fn modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let t = e.file_type().unwrap();
        if t.is_dir() {
            out.extend(modes(&e.path()));
        } else if t.is_file() {
            out.push((e.path(), e.metadata().unwrap().permissions().mode() & 0o777));
        }
    }
    out
}

#[test]
fn mirror_and_generated_files_follow_the_umask() {
    for (mask, want) in [("022", 0o644), ("077", 0o600)] {
        let tmp = tempfile::tempdir().unwrap();
        let stack = write_stack(
            &tmp.path().join("s"),
            &tmp.path().join("store"),
            &[("a", &[], "mkdir -p \"$PREFIX/bin\"\necho hi > \"$PREFIX/bin/a\"")],
        );
        let mirror = tmp.path().join("mirror");
        let m = format!("file://{}", mirror.display());
        let out = tmp.path().join("ci");
        let run = |args: &[&str]| {
            ok(stackci_with_umask(mask)
                .arg("--stack")
                .arg(&stack)
                .args(["--mirror", &m])
                .args(args));
        };
        run(&["generate", "gitlab", "-o", &out.join("child.yml").display().to_string()]);
        run(&["run"]);
        run(&["generate", "github", "-o", &out.join("stack.yml").display().to_string()]);
        run(&["index"]);

        let mirror_files = modes(&mirror);
        assert!(
            mirror_files.iter().any(|(p, _)| p.ends_with("index.json"))
                && mirror_files
                    .iter()
                    .filter(|(p, _)| p.starts_with(mirror.join("blobs")))
                    .count()
                    >= 3,
            "{mirror_files:?}"
        );
        let generated = modes(&out);
        assert_eq!(generated.len(), 3, "{generated:?}");
        for (path, mode) in mirror_files.iter().chain(&generated) {
            assert_eq!(*mode, want, "umask {mask}: {} is {mode:o}", path.display());
        }
    }
}

/// `<host>` as stackci names its temporary files (see `src/mirror/fs/temp.rs`).
fn owner() -> String {
    let host: String = fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
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
    let ns = fs::read_link("/proc/self/ns/pid").unwrap().display().to_string();
    let ns = ns.trim_start_matches("pid:[").trim_end_matches(']');
    if ns == "4026531836" {
        host
    } else {
        format!("{host}+{ns}")
    }
}

fn temporaries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".tmp-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn kill_9(child: &mut Child) {
    ok(Command::new("kill").arg("-9").arg(child.id().to_string()));
    child.wait().unwrap();
}

/// Kills a push of a large layer into `mirror` with SIGKILL while the blob's temporary file
/// exists there; returns that file's name. `run` renames a layer it packed into a file
/// mirror (no temporary for long enough to catch), so the killed writer is `mirror copy`
/// from a mirror `run` filled first: it streams the layer through a temporary file.
fn kill_during_push(stack: &Path, mirror: &Path) -> String {
    let blobs = mirror.join("blobs/sha256");
    let source = mirror.with_file_name("filled-by-run");
    ok(stackci()
        .arg("--stack")
        .arg(stack)
        .args(["--mirror", &format!("file://{}", source.display()), "run"]));
    fs::create_dir_all(&blobs).unwrap();
    for _attempt in 0..3 {
        let mut child = stackci()
            .arg("--stack")
            .arg(stack)
            .args(["mirror", "copy"])
            .arg(format!("file://{}", source.display()))
            .arg(format!("file://{}", mirror.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(name) = temporaries(&blobs).pop() {
                kill_9(&mut child);
                // The kill may have come just after the rename; then try again.
                if blobs.join(&name).exists() {
                    return name;
                }
                break;
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
        let _ = fs::remove_dir_all(mirror);
        fs::create_dir_all(&blobs).unwrap();
    }
    panic!("could not kill `stackci mirror copy` while it wrote a blob (3 attempts)");
}

/// A 64 MiB incompressible file: its layer takes a while to copy into the mirror.
const BIG: &str = "mkdir -p \"$PREFIX\"\nhead -c 67108864 /dev/urandom > \"$PREFIX/big\"";

#[test]
fn killed_pushes_leave_temporaries_that_the_next_run_and_index_remove_but_never_a_live_writers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mirror = tmp.path().join("mirror");
    let blobs = mirror.join("blobs/sha256");
    let stack = write_stack(&tmp.path().join("s"), &store, &[("big", &[], BIG)]);

    let killed = kill_during_push(&stack, &mirror);
    assert!(killed.starts_with(&format!(".tmp-{}-", owner())), "{killed}");

    // A live writer on this host, another host's fresh and day-old files, a legacy name.
    let mut live = Command::new("sleep").arg("300").spawn().unwrap();
    let live_name = format!(".tmp-{}-{}-Live01", owner(), live.id());
    let plant = |name: &str, age: Duration| {
        let path = blobs.join(name);
        fs::write(&path, b"partial").unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    };
    let two_days = Duration::from_secs(2 * 24 * 3600);
    plant(&live_name, two_days);
    plant(".tmp-other-host-7-Fresh1", Duration::ZERO);
    plant(".tmp-other-host-8-Old001", two_days);
    plant(".tmp-AbCdEf", two_days);

    // The next run (which pushes) removes the killed writer's file and the stale foreign ones.
    ok(stackci()
        .arg("--stack")
        .arg(&stack)
        .args(["--mirror", &format!("file://{}", mirror.display()), "run"]));
    let mut want = vec![live_name.clone(), ".tmp-other-host-7-Fresh1".to_string()];
    want.sort();
    assert_eq!(temporaries(&blobs), want);

    // `index` does the same, in the layout root too, for a writer that has since died.
    let mut dead = Command::new("sleep").arg("300").spawn().unwrap();
    let dead_name = format!(".tmp-{}-{}-Dead01", owner(), dead.id());
    kill_9(&mut dead);
    fs::write(mirror.join(&dead_name), b"{").unwrap();
    plant(&dead_name, Duration::ZERO);
    ok(stackci()
        .arg("--stack")
        .arg(&stack)
        .args(["--mirror", &format!("file://{}", mirror.display()), "index"]));
    assert_eq!(temporaries(&blobs), want);
    assert_eq!(temporaries(&mirror), Vec::<String>::new());
    kill_9(&mut live);
}
