//! Starts and stops the real docker-registry peer (`tests/peers/registry.sh`) for a test.
//! A peer that cannot start fails the test with the script's output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running docker-registry, stopped on drop.
pub struct Peer {
    /// The env the script printed (`REGISTRY_URL`, `REGISTRY_HOST`, `REGISTRY_PORT`, ...).
    pub env: BTreeMap<String, String>,
    dir: PathBuf,
    auth: bool,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/registry.sh")
}

impl Peer {
    /// Starts a registry with state in `dir` on a free port; `auth` for HTTPS + basic auth.
    pub fn start(dir: &Path, auth: bool) -> Peer {
        Peer::start_on(dir, auth, 0)
    }

    /// Starts a registry on `port` (0: a free one), keeping any data already in `dir`.
    pub fn start_on(dir: &Path, auth: bool, port: u16) -> Peer {
        let mut cmd = Command::new("bash");
        cmd.arg(script())
            .args(["start", "--port", &port.to_string(), "--dir"])
            .arg(dir);
        if auth {
            cmd.arg("--auth");
        }
        let out = cmd.output().expect("cannot run tests/peers/registry.sh");
        assert!(
            out.status.success(),
            "registry peer did not start: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>();
        assert!(
            env.contains_key("REGISTRY_HOST"),
            "registry.sh printed no REGISTRY_HOST: {env:?}"
        );
        Peer {
            env,
            dir: dir.to_path_buf(),
            auth,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.env["REGISTRY_HOST"]
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.env["REGISTRY_PORT"].parse().expect("REGISTRY_PORT is a number")
    }

    /// The mirror URL of `repo` (`oci+http://` for the plain registry, `oci://` with auth).
    pub fn mirror_url(&self, repo: &str) -> String {
        let scheme = if self.auth { "oci" } else { "oci+http" };
        format!("{scheme}://{}/{repo}", self.host())
    }

    /// The CA certificate of the `--auth` registry.
    pub fn ca(&self) -> PathBuf {
        PathBuf::from(&self.env["REGISTRY_CA"])
    }

    /// Stops the registry (idempotent).
    pub fn stop(&self) {
        stop_dir(&self.dir, self.auth);
    }
}

/// Stops the registry whose state is in `dir` (idempotent; by its pid file).
pub fn stop_dir(dir: &Path, auth: bool) {
    let mut cmd = Command::new("bash");
    cmd.arg(script()).args(["stop", "--dir"]).arg(dir);
    if auth {
        cmd.arg("--auth");
    }
    let _ = cmd.output();
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}
