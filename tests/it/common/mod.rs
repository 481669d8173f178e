//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod fault_proxy;
pub mod packages;
pub mod registry;
pub mod s3;
pub mod spack;

use std::path::{Path, PathBuf};

/// What the example's `hello` prints.
pub const HELLO: &str = "hello from stackci: crc32(\"stackci\")=0x63a29956 crc32c=0x729d1931 adler32=0x0bc502e3\nlibreport 0.3.0, libcrc 1.2.0\n";
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The stackci binary under test.
pub fn stackci() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackci"));
    cmd.env_remove("STACKCI_STACK")
        .env_remove("STACKCI_MIRROR")
        .env_remove("CI")
        .env_remove("SOURCE_DATE_EPOCH");
    cmd
}

/// Runs a command, returning its output; panics with stdout/stderr if it could not start.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command and asserts it succeeded, printing its output otherwise; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies `examples/demo` into `dir/demo`, with its store moved to `store`.
pub fn demo_copy(dir: &Path, store: &Path) -> PathBuf {
    let dest = dir.join("demo");
    copy_dir(&repo().join("examples/demo"), &dest);
    let stack = dest.join("stack.yaml");
    let text = std::fs::read_to_string(&stack).unwrap();
    assert!(
        text.contains("store: /opt/stackci"),
        "examples/demo/stack.yaml no longer sets `store: /opt/stackci`"
    );
    std::fs::write(
        &stack,
        text.replace("store: /opt/stackci", &format!("store: {}", store.display())),
    )
    .unwrap();
    dest
}

/// Recursively copies a directory (files and dirs only), skipping `.stackci`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() == ".stackci" {
            continue;
        }
        let t = e.file_type().unwrap();
        if t.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Asserts that `tool` is on PATH, failing with how to install it.
pub fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: run scripts/install-test-deps.sh (the README's test command does)"
    );
}

/// Parses `stackci plan --json` output into (tag -> status).
pub fn plan_statuses(json: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["tag"].as_str().unwrap().to_string(),
                p["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Writes a stack file of trivial packages: `(name, deps, script)`. Its generated GitHub
/// workflow uses the action from the checkout (`ci.github.action: ./`): a test build of
/// stackci knows no release repository to default to.
pub fn write_stack(dir: &Path, store: &Path, packages: &[(&str, &[&str], &str)]) -> PathBuf {
    let mut y = format!(
        "name: t\nstore: {}\nci:\n  github:\n    action: ./\npackages:\n",
        store.display()
    );
    for (name, deps, script) in packages {
        y.push_str(&format!(
            "  {name}:\n    version: \"1.0\"\n    depends: [{}]\n    build: |\n",
            deps.join(", ")
        ));
        for line in script.lines() {
            y.push_str(&format!("      {line}\n"));
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("stack.yaml");
    std::fs::write(&path, y).unwrap();
    path
}

/// A one-layer base image holding the host's C runtime (what `hello` links against), made with umoci.
pub fn glibc_base(dir: &Path) -> PathBuf {
    require("umoci");
    let layout = dir.join("base");
    ok(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
    ok(Command::new("umoci")
        .args(["new", "--image"])
        .arg(format!("{}:base", layout.display())));
    let bundle = dir.join("base-bundle");
    ok(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:base", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    for lib in ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"] {
        let real = std::fs::canonicalize(lib).unwrap();
        let dest = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&real, &dest).unwrap();
    }
    ok(Command::new("umoci")
        .args(["repack", "--image"])
        .arg(format!("{}:base", layout.display()))
        .arg(&bundle));
    layout
}

/// Loads a docker archive into podman, runs `name` (runc, no network) and removes it; returns stdout.
pub fn podman_run(archive: &Path, name: &str) -> String {
    require("podman");
    require("runc");
    ok(Command::new("podman").arg("load").arg("-i").arg(archive));
    let out = ok(Command::new("podman").args([
        "--runtime",
        "runc",
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        name,
    ]));
    let _ = Command::new("podman").args(["rmi", "-f", name]).output();
    out
}

/// The sha256 of `bytes` in lower-case hex, computed with `sha2` (not stackci's own digest
/// code), so a test checks stackci's digests independently.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(bytes))
}

/// A static HTTP server (python3 -m http.server) over `dir` on a free port; killed on drop.
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Server {
    /// Starts it; the port is the one the server reports, so no other process can take it.
    pub fn start(dir: &Path) -> Server {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting python3 -m http.server");
        let mut first = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = first
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .unwrap_or_else(|| panic!("http.server said: {first}"))
            .to_string();
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
