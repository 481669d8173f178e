//! Docker credential helpers: `docker-credential-<name> get`, as docker and podman run them
//! for `credsStore` / `credHelpers` in a docker `config.json`.
//!
//! The protocol (docker/docker-credential-helpers): the server address on stdin, and on
//! success a JSON object `{"ServerURL","Username","Secret"}` on stdout; a helper that has
//! nothing for the server exits non-zero printing `credentials not found in native
//! keychain`. A helper gets [`DEFAULT_TIMEOUT`] (or `STACKCI_CREDENTIAL_HELPER_TIMEOUT`
//! seconds) to answer, then it is killed. Its stdout is never shown: it holds the secret.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::auth::Credentials;
use crate::net::Secret;

/// How long a helper may take when `STACKCI_CREDENTIAL_HELPER_TIMEOUT` does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a helper prints when it has no credentials for the server (not an error).
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The server address a helper is asked about: Docker Hub's historical
/// `https://index.docker.io/v1/` (what `docker login` stored), else the host as written.
pub fn server_url(host: &str) -> String {
    if super::reference::is_docker_hub(host) {
        "https://index.docker.io/v1/".into()
    } else {
        host.to_string()
    }
}

/// The helper program for `name` (`desktop` → `docker-credential-desktop`).
pub fn program(name: &str) -> String {
    format!("docker-credential-{name}")
}

/// Runs `docker-credential-<name> get` for `server`, with `path` as its `PATH` when given.
/// `Ok(None)` when the helper says it has no credentials for the server; an error naming
/// the helper (never its output's secret) when it is missing, fails, hangs past `timeout`
/// or answers something that is not the documented JSON.
pub fn get(
    name: &str,
    server: &str,
    path: Option<&str>,
    timeout: Duration,
    origin: &str,
) -> Result<Option<Credentials>> {
    if name.is_empty() || name.contains('/') {
        bail!("{origin} names the credential helper `{name}`, which is not a helper name");
    }
    let program = program(name);
    let mut cmd = Command::new(&program);
    cmd.arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "credential helper `{program}` (from {origin}) is not on PATH; install it or remove it from the config"
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot run credential helper `{program}` (from {origin})")),
    };
    // Write the server and close stdin; read both pipes on threads so a chatty helper
    // never blocks on a full pipe while we wait for it.
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is judged by its exit status.
        let _ = stdin.write_all(server.as_bytes());
    }
    let mut stdout = child.stdout.take().context("helper stdout")?;
    let mut stderr = child.stderr.take().context("helper stderr")?;
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.by_ref().take(1 << 20).read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.by_ref().take(64 << 10).read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "credential helper `{program}` (from {origin}) did not answer within {}s for {server}",
                timeout.as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let said = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_string();
    if !status.success() {
        // The not-found message is on stdout; a failing helper prints no secret.
        if said(&stdout).contains(NOT_FOUND) || said(&stderr).contains(NOT_FOUND) {
            return Ok(None);
        }
        let mut message = said(&stderr);
        if message.is_empty() {
            message = said(&stdout);
        }
        message.truncate(300);
        bail!("credential helper `{program}` (from {origin}) failed for {server} ({status}): {message}");
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: Option<String>,
        secret: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(&stdout).map_err(|_| {
        anyhow::anyhow!(
            "credential helper `{program}` (from {origin}) answered something that is not {{\"Username\",\"Secret\"}} JSON for {server}"
        )
    })?;
    let (Some(username), Some(secret)) = (answer.username, answer.secret.filter(|s| !s.is_empty())) else {
        return Ok(None);
    };
    if username == "<token>" {
        bail!(
            "credential helper `{program}` (from {origin}) gave an identity token for {server}; stackci needs a user name and password or token: set STACKCI_REGISTRY_USERNAME/STACKCI_REGISTRY_PASSWORD"
        );
    }
    Ok(Some(Credentials {
        username,
        password: Secret::new(secret),
        origin: format!("{origin} ({program})"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(program("pass"), "docker-credential-pass");
        assert_eq!(server_url("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(server_url("registry-1.docker.io"), "https://index.docker.io/v1/");
        assert_eq!(server_url("ghcr.io"), "ghcr.io");
    }

    #[test]
    fn a_bad_helper_name_is_refused() {
        let err = get("../x", "h", None, DEFAULT_TIMEOUT, "cfg").unwrap_err().to_string();
        assert!(err.contains("not a helper name"), "{err}");
    }
}
