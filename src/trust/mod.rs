//! Trust: cosign-compatible signatures on every package and image stackci pushes, and
//! verification before anything is unpacked or built upon.
//!
//! - [`keys`]: ECDSA P-256 keys; [`cosign_key`]: cosign's encrypted private-key format.
//! - [`payload`]: the simple-signing payload a signature covers.
//! - [`sign`]: storing a signature as cosign does (`sha256-<hex>.sig`).
//! - [`verify`]: checking one against trusted keys.
//!
//! [`Trust`] is what commands hold: the trusted keys (`trust: { keys: }` in the stack, or
//! `STACKCI_TRUST_KEYS`) and the signing key (`STACKCI_SIGNING_KEY`). When any key is
//! trusted, [`Trust::read_package`] refuses a package whose manifest has no valid signature
//! by one of them, before its config or any layer is read; without trusted keys it reads
//! packages as before.

pub mod cosign_key;
pub mod keys;
pub mod payload;
pub mod sign;
pub mod verify;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::digest::Digest;
use crate::env_vars::{self, COSIGN_PASSWORD, STACKCI_SIGNING_KEY, STACKCI_SIGNING_PASSWORD, STACKCI_TRUST_KEYS};
use crate::mirror::Mirror;
use crate::mirror::location::Location;
use crate::net::Secret;
use crate::package::{PackageImage, package_from_manifest};
use crate::spec::Descriptor;
use crate::stack::Stack;
pub use keys::{PrivateKey, PublicKey};
pub use sign::Signed;
pub use verify::Verified;

/// A manifest refused for want of a valid signature by a trusted key.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing {what} (manifest {digest}) from {mirror}: no valid signature by a trusted key \
     (tried {tried}): {rejected}"
)]
pub struct Untrusted {
    /// What was refused (`` `hello-1.0-<hash>` ``, "base image ...").
    pub what: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// Where it was read from.
    pub mirror: String,
    /// The keys tried, each as [`PublicKey::describe`] names it.
    pub tried: String,
    /// Why each signature found failed.
    pub rejected: verify::Rejected,
}

/// The trusted keys and the signing key of a command.
#[derive(Debug, Default)]
pub struct Trust {
    keys: Vec<PublicKey>,
    bases: Vec<String>,
    signer: Option<PrivateKey>,
}

impl Trust {
    /// No trusted keys, no signing key: packages are read as they are, nothing is signed.
    pub fn none() -> Trust {
        Trust::default()
    }

    /// The trusted keys of `stack` (`STACKCI_TRUST_KEYS` replaces `trust: { keys: }`) and,
    /// when `signing`, the key from `STACKCI_SIGNING_KEY`. A key that cannot be read is an
    /// error naming it.
    pub fn load(stack: &Stack, signing: bool) -> Result<Trust> {
        let keys = trusted_key_paths(stack)
            .iter()
            .map(|p| PublicKey::load(p).context("loading the trusted keys"))
            .collect::<Result<Vec<_>>>()?;
        let signer = if signing { signing_key_from_env()? } else { None };
        Ok(Trust {
            keys,
            bases: stack.trust.bases.clone(),
            signer,
        })
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Whether signatures are checked (any key is trusted).
    pub fn enforced(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The key pushes are signed with, if any.
    pub fn signer(&self) -> Option<&PrivateKey> {
        self.signer.as_ref()
    }

    /// The trusted keys as messages name them, comma-separated.
    pub fn tried(&self) -> String {
        self.keys.iter().map(PublicKey::describe).collect::<Vec<_>>().join(", ")
    }

    /// Checks that `manifest` (the bytes of `what`, read from `mirror`) carries a valid
    /// signature by a trusted key; `Ok(None)` when no key is trusted. The error is an
    /// [`Untrusted`] naming what, the digest and the keys tried.
    pub fn check(&self, mirror: &dyn Mirror, what: &str, manifest: &[u8]) -> Result<Option<Verified>> {
        if !self.enforced() {
            return Ok(None);
        }
        let digest = Digest::of(manifest);
        verify::verify(mirror, &digest, &self.keys)
            .map(Some)
            .map_err(|rejected| {
                Untrusted {
                    what: what.to_string(),
                    digest,
                    mirror: mirror.location(),
                    tried: self.tried(),
                    rejected,
                }
                .into()
            })
    }

    /// Reads package `tag` like [`crate::package::read_package`], first checking its
    /// manifest's signature when keys are trusted: the config and layers used are those of
    /// the very bytes verified. `None` when the tag does not exist.
    pub fn read_package(&self, mirror: &dyn Mirror, tag: &str) -> Result<Option<PackageImage>> {
        let Some(bytes) = mirror.get_manifest(tag)? else {
            return Ok(None);
        };
        self.check(mirror, &format!("`{tag}`"), &bytes)?;
        package_from_manifest(mirror, tag, &bytes).map(Some)
    }

    /// Signs `subject` in `mirror` with the signing key; `None` when there is none.
    pub fn sign(&self, mirror: &dyn Mirror, subject: &Descriptor) -> Result<Option<Signed>> {
        match &self.signer {
            Some(key) => sign::sign(mirror, key, subject).map(Some),
            None => Ok(None),
        }
    }

    /// Whether base image `base` must be signed: it is in a registry and `trust: { bases: }`
    /// lists its repository, a repository above it, or `*`.
    pub fn covers_base(&self, base: &Location) -> bool {
        let Location::Registry(reference) = base else {
            return false;
        };
        let repo = reference.repository_url();
        let repo = repo.split_once("://").map_or(repo.as_str(), |(_, r)| r);
        self.bases.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.split_once("://").map_or(entry.as_str(), |(_, r)| r);
            let entry = entry.trim_end_matches('/');
            repo == entry || repo.starts_with(&format!("{entry}/"))
        })
    }
}

/// Where the trusted keys are: `STACKCI_TRUST_KEYS` (comma-separated, relative to the
/// current directory) when set, else `trust: { keys: }` (relative to the stack's directory).
pub fn trusted_key_paths(stack: &Stack) -> Vec<PathBuf> {
    match env_vars::var(STACKCI_TRUST_KEYS) {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect(),
        None => stack.trust.keys.iter().map(|k| stack.dir.join(k)).collect(),
    }
}

/// The password for an encrypted signing key: `STACKCI_SIGNING_PASSWORD`, else
/// `COSIGN_PASSWORD`, else empty (cosign's keys may have an empty password).
pub fn signing_password() -> Secret {
    Secret::new(
        env_vars::var(STACKCI_SIGNING_PASSWORD)
            .or_else(|| env_vars::var(COSIGN_PASSWORD))
            .unwrap_or_default(),
    )
}

/// The signing key `STACKCI_SIGNING_KEY` names or holds; `None` when it is unset.
pub fn signing_key_from_env() -> Result<Option<PrivateKey>> {
    let Some(value) = env_vars::var(STACKCI_SIGNING_KEY) else {
        return Ok(None);
    };
    let password = signing_password();
    let key = if value.trim_start().starts_with("-----BEGIN") {
        PrivateKey::from_pem(&value, &password, &format!("the key in {STACKCI_SIGNING_KEY}"))?
    } else {
        let path = Path::new(value.trim());
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the signing key {} ({STACKCI_SIGNING_KEY})", path.display()))?;
        PrivateKey::from_pem(&text, &password, &path.display().to_string())?
    };
    Ok(Some(key))
}
