//! Signing and verification keys: ECDSA P-256, cosign's default and the one scheme its
//! signature spec requires.
//!
//! Private keys are read from cosign's encrypted PEM ([`super::cosign_key`]), unencrypted
//! PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`); public keys from PKIX PEM
//! (`PUBLIC KEY`, what `cosign generate-key-pair` writes to `cosign.pub`). Any other key is
//! refused with what it is (an RSA key, an Ed25519 key, a P-384 key, an OpenSSH key...).
//! Keys never appear in `Debug` output or messages; a key is named by where it came from
//! and its [`fingerprint`].

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::der::Decode;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};

use super::cosign_key::{self, COSIGN_LABEL, SIGSTORE_LABEL};
use crate::digest::Digest;
use crate::net::Secret;

/// A trusted public key and where it came from.
#[derive(Clone)]
pub struct PublicKey {
    key: VerifyingKey,
    /// Where the key was read from (a path, or a description such as `STACKCI_SIGNING_KEY`).
    pub source: String,
}

/// A private key to sign with. `Debug` shows only where it came from.
pub struct PrivateKey {
    key: SigningKey,
    /// Where the key was read from; never its content.
    pub source: String,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, ***)", self.source)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.source, self.fingerprint())
    }
}

impl PublicKey {
    /// Parses a PKIX `PUBLIC KEY` PEM; `source` names it in messages.
    pub fn from_pem(pem: &str, source: &str) -> Result<PublicKey> {
        let (label, der) = pem_block(pem).with_context(|| format!("{source} is not a PEM public key"))?;
        if label != "PUBLIC KEY" {
            bail!(
                "{source} holds a `{label}` PEM block, not a public key (`PUBLIC KEY`, as in cosign.pub){}",
                if label.contains("PRIVATE") {
                    "; trust the .pub file, never the private key"
                } else {
                    ""
                }
            );
        }
        let key = VerifyingKey::from_public_key_der(&der).map_err(|_| {
            anyhow::anyhow!(
                "{source} is {}; stackci verifies ECDSA P-256 keys (cosign's default)",
                describe_spki(&der)
            )
        })?;
        Ok(PublicKey {
            key,
            source: source.to_string(),
        })
    }

    /// Reads a public key file.
    pub fn load(path: &Path) -> Result<PublicKey> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read key {}", path.display()))?;
        PublicKey::from_pem(&text, &path.display().to_string())
    }

    /// PKIX PEM (`-----BEGIN PUBLIC KEY-----`), as cosign writes `cosign.pub`.
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 public key always encodes")
    }

    /// `sha256:<hex>` of the key's DER (SubjectPublicKeyInfo) encoding: what messages and
    /// `verify --json` name a key by, whatever file it was read from.
    pub fn fingerprint(&self) -> String {
        let der = self.key.to_public_key_der().expect("a P-256 public key always encodes");
        Digest::of(der.as_bytes()).to_string()
    }

    /// The key's name in messages: its source and the start of its fingerprint.
    pub fn describe(&self) -> String {
        let fp = self.fingerprint();
        format!("{} ({})", self.source, &fp[..19])
    }

    /// Whether `signature` (ASN.1 DER, as cosign stores it) is this key's ECDSA-SHA256
    /// signature of `payload`.
    pub fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        match Signature::from_der(signature) {
            Ok(sig) => self.key.verify(payload, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

impl PrivateKey {
    /// A new random key.
    pub fn generate(source: &str) -> PrivateKey {
        PrivateKey {
            key: SigningKey::random(&mut rand_core::OsRng),
            source: source.to_string(),
        }
    }

    /// Parses a private key PEM: cosign's encrypted format (decrypted with `password`),
    /// unencrypted PKCS#8 or SEC1. `source` names it in messages; the content never appears.
    pub fn from_pem(pem: &str, password: &Secret, source: &str) -> Result<PrivateKey> {
        let (label, der) = pem_block(pem).with_context(|| format!("{source} is not a PEM private key"))?;
        let key = match label.as_str() {
            SIGSTORE_LABEL | COSIGN_LABEL => {
                let pkcs8 = cosign_key::decrypt(&der, password.expose().as_bytes())
                    .with_context(|| format!("cannot open the encrypted key {source}"))?;
                pkcs8_key(&pkcs8, source)?
            }
            "PRIVATE KEY" => pkcs8_key(&der, source)?,
            "EC PRIVATE KEY" => {
                let secret = p256::SecretKey::from_sec1_der(&der).map_err(|_| {
                    anyhow::anyhow!("{source} is an EC key on another curve; stackci signs with ECDSA P-256 keys")
                })?;
                SigningKey::from(secret)
            }
            "PUBLIC KEY" => bail!("{source} is a public key; signing needs the private key (the .key file)"),
            "RSA PRIVATE KEY" => {
                bail!("{source} is an RSA key; stackci signs with ECDSA P-256 keys (cosign's default)")
            }
            "ENCRYPTED PRIVATE KEY" => bail!(
                "{source} is a PKCS#8 key encrypted with a password (openssl's format); use an unencrypted \
                 PKCS#8 key or cosign's format (`stackci keygen`, `cosign generate-key-pair`)"
            ),
            other => bail!(
                "{source} holds a `{other}` PEM block, a key format stackci does not read (it reads \
                 `{SIGSTORE_LABEL}`, `{COSIGN_LABEL}`, `PRIVATE KEY` and `EC PRIVATE KEY`)"
            ),
        };
        Ok(PrivateKey {
            key,
            source: source.to_string(),
        })
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: *self.key.verifying_key(),
            source: self.source.clone(),
        }
    }

    /// ECDSA-SHA256 signature of `payload`, ASN.1 DER (what cosign stores, base64, in the
    /// signature annotation). Deterministic (RFC 6979): the same key and payload always give
    /// the same bytes, so re-signing writes nothing new.
    pub fn sign(&self, payload: &[u8]) -> Vec<u8> {
        let sig: Signature = self.key.sign(payload);
        let der: DerSignature = sig.to_der();
        der.as_bytes().to_vec()
    }

    /// The key in cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`) under `password`.
    pub fn to_encrypted_pem(&self, password: &Secret) -> String {
        let pkcs8 = self.key.to_pkcs8_der().expect("a P-256 key always encodes");
        let body = cosign_key::encrypt(pkcs8.as_bytes(), password.expose().as_bytes());
        pem_rfc7468::encode_string(SIGSTORE_LABEL, LineEnding::LF, &body).expect("PEM encoding of a buffer")
    }
}

/// Decodes the first PEM block of `text` (surrounding whitespace and CRLF line ends, as a
/// CI variable may carry, are accepted); returns its label and bytes.
fn pem_block(text: &str) -> Result<(String, Zeroizing<Vec<u8>>)> {
    let text = text.trim().replace("\r\n", "\n");
    let start = text.find("-----BEGIN ").context("no `-----BEGIN ...-----` line")?;
    let (label, der) = pem_rfc7468::decode_vec(&text.as_bytes()[start..]).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((label.to_string(), Zeroizing::new(der)))
}

/// A P-256 signing key from PKCS#8 DER, or an error saying what the key is instead.
fn pkcs8_key(der: &[u8], source: &str) -> Result<SigningKey> {
    SigningKey::from_pkcs8_der(der).map_err(|_| {
        let what = p256::pkcs8::PrivateKeyInfo::from_der(der)
            .map(|info| describe_algorithm(info.algorithm.oid, info.algorithm.parameters_oid().ok()))
            .unwrap_or_else(|_| "not a valid PKCS#8 key".into());
        anyhow::anyhow!("{source} is {what}; stackci signs with ECDSA P-256 keys (cosign's default)")
    })
}

/// What a SubjectPublicKeyInfo holds, for messages.
fn describe_spki(der: &[u8]) -> String {
    p256::pkcs8::spki::SubjectPublicKeyInfoRef::from_der(der)
        .map(|info| describe_algorithm(info.algorithm.oid, info.algorithm.parameters_oid().ok()))
        .unwrap_or_else(|_| "not a valid public key".into())
}

fn describe_algorithm(oid: p256::pkcs8::ObjectIdentifier, params: Option<p256::pkcs8::ObjectIdentifier>) -> String {
    let name = |oid: p256::pkcs8::ObjectIdentifier| oid.to_string();
    match (name(oid).as_str(), params.map(name).as_deref()) {
        ("1.2.840.10045.2.1", Some("1.3.132.0.34")) => "an ECDSA P-384 key".into(),
        ("1.2.840.10045.2.1", Some("1.3.132.0.35")) => "an ECDSA P-521 key".into(),
        ("1.2.840.10045.2.1", Some(curve)) => format!("an EC key on curve {curve}"),
        ("1.2.840.113549.1.1.1", _) => "an RSA key".into(),
        ("1.3.101.112", _) => "an Ed25519 key".into(),
        (other, _) => format!("a key of algorithm {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_round_trip_through_cosign_pem() {
        let key = PrivateKey::generate("test");
        let pw = Secret::new("correct horse");
        let pem = key.to_encrypted_pem(&pw);
        assert!(
            pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
            "{pem}"
        );
        let back = PrivateKey::from_pem(&pem, &pw, "k.key").unwrap();
        let sig = back.sign(b"payload");
        assert_eq!(sig, key.sign(b"payload"), "RFC 6979 signatures are deterministic");
        let public = PublicKey::from_pem(&key.public().to_pem(), "k.pub").unwrap();
        assert!(public.verifies(b"payload", &sig));
        assert!(!public.verifies(b"payload!", &sig));
        assert!(!public.verifies(b"payload", &sig[..sig.len() - 1]));
        let err = PrivateKey::from_pem(&pem, &Secret::new("wrong"), "k.key").unwrap_err();
        assert!(format!("{err:#}").contains("wrong password"), "{err:#}");
        assert!(!format!("{back:?}").contains("BEGIN"));
    }

    #[test]
    fn reads_pkcs8_and_crlf() {
        let key = PrivateKey::generate("t");
        let pkcs8 = key.key.to_pkcs8_pem(LineEnding::CRLF).unwrap();
        let text = format!("\n  {}\n", pkcs8.as_str());
        let back = PrivateKey::from_pem(&text, &Secret::new(""), "var").unwrap();
        assert_eq!(back.public().fingerprint(), key.public().fingerprint());
    }

    #[test]
    fn refuses_other_keys_clearly() {
        let err = PrivateKey::from_pem(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            &Secret::new(""),
            "id",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("OPENSSH PRIVATE KEY"), "{err:#}");
        let public = PrivateKey::generate("t").public().to_pem();
        let err = PrivateKey::from_pem(&public, &Secret::new(""), "x.pub").unwrap_err();
        assert!(format!("{err:#}").contains("is a public key"), "{err:#}");
        let err = PublicKey::from_pem("hello", "junk").unwrap_err();
        assert!(format!("{err:#}").contains("junk is not a PEM public key"), "{err:#}");
    }
}
