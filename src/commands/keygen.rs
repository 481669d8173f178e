//! `stackci keygen --out PREFIX`: a cosign-compatible key pair.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use crate::cli::KeygenArgs;
use crate::trust::{PrivateKey, signing_password};

/// Writes `PREFIX.key` (cosign's encrypted format, mode 0600) and `PREFIX.pub`, each
/// atomically; refuses to replace either unless `--force`.
pub fn run(args: &KeygenArgs, json: bool) -> Result<ExitCode> {
    let key_path = with_suffix(&args.out, "key");
    let pub_path = with_suffix(&args.out, "pub");
    if !args.force {
        for p in [&key_path, &pub_path] {
            if p.exists() {
                bail!("{} exists; use --force to replace it", p.display());
            }
        }
    }
    let key = PrivateKey::generate(&key_path.display().to_string());
    let password = signing_password();
    let public = key.public();
    write_file(&key_path, key.to_encrypted_pem(&password).as_bytes(), 0o600)?;
    write_file(&pub_path, public.to_pem().as_bytes(), 0o644)?;
    if json {
        let doc = serde_json::json!({
            "private_key": key_path.display().to_string(),
            "public_key": pub_path.display().to_string(),
            "fingerprint": public.fingerprint(),
            "encrypted_with_empty_password": password.expose().is_empty(),
        });
        println!("{doc}");
    } else {
        println!("{}", public.fingerprint());
    }
    eprintln!(
        "wrote {} (private, {}) and {} (public)",
        key_path.display(),
        if password.expose().is_empty() {
            "empty password: set STACKCI_SIGNING_PASSWORD to choose one"
        } else {
            "encrypted"
        },
        pub_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `PREFIX.ext` (appended, so `keys/stackci.v2` gives `keys/stackci.v2.key`).
fn with_suffix(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Writes `bytes` to `path` through a temporary file with `mode`, renamed into place.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-keygen-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", tmp.path().display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
