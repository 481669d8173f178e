//! cosign's encrypted private-key format: the body of an `ENCRYPTED SIGSTORE PRIVATE KEY`
//! (or older `ENCRYPTED COSIGN PRIVATE KEY`) PEM block.
//!
//! The body is secure-systems-lab's "encrypted" JSON envelope, which cosign writes with
//! go-securesystemslib's `encrypted.Encrypt`:
//!
//! ```json
//! {"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"<32 bytes, base64>"},
//!  "cipher":{"name":"nacl/secretbox","nonce":"<24 bytes, base64>"},
//!  "ciphertext":"<secretbox(PKCS#8 DER), base64>"}
//! ```
//!
//! The key is scrypt(password, salt) (32 bytes); the ciphertext is NaCl `secretbox`
//! (XSalsa20-Poly1305, the 16-byte tag first). Written with cosign's parameters; read with
//! any power-of-two `N` up to [`MAX_SCRYPT_COST`] so a hostile file cannot ask for
//! gigabytes of memory.

use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use p256::elliptic_curve::zeroize::Zeroizing;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// PEM label cosign writes since v2 (and stackci writes).
pub const SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label of keys made by cosign before v2; read the same way.
pub const COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

const KDF_NAME: &str = "scrypt";
const CIPHER_NAME: &str = "nacl/secretbox";
/// cosign's scrypt parameters: N = 2^15, r = 8, p = 1 (32 MiB, ~0.1 s).
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// Most memory a key file may ask scrypt for, as `N * r` (128 MiB = 128 * 2^20 bytes).
pub const MAX_SCRYPT_COST: u64 = 1 << 20;

/// Why an encrypted key could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    /// The authenticator did not match: a wrong password, or a corrupted key.
    #[error("wrong password (or a corrupted key): the key does not decrypt")]
    WrongPassword,
    /// The envelope is not the JSON cosign writes.
    #[error("not cosign's encrypted key format: {0}")]
    Malformed(String),
    /// A KDF, cipher or parameter stackci does not read.
    #[error("unsupported encrypted key: {0}")]
    Unsupported(String),
}

/// Bytes that serialize as standard base64 (Go's `[]byte` in JSON).
#[derive(Clone, PartialEq, Eq)]
struct B64(Vec<u8>);

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::BASE64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        data_encoding::BASE64
            .decode(s.as_bytes())
            .map(B64)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// The envelope, fields in go-securesystemslib's order.
#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: B64,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: B64,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: B64,
}

/// Encrypts `plaintext` (a PKCS#8 DER key) under `password` with a fresh salt and nonce;
/// returns the JSON envelope (the PEM block's body).
pub fn encrypt(plaintext: &[u8], password: &[u8]) -> Vec<u8> {
    let mut salt = vec![0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let mut nonce = vec![0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let params = ScryptParams {
        n: 1 << SCRYPT_LOG_N,
        r: SCRYPT_R,
        p: SCRYPT_P,
    };
    let key = derive(password, &salt, &params).expect("cosign's scrypt parameters are valid");
    let ciphertext = XSalsa20Poly1305::new(Key::from_slice(key.as_slice()))
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .expect("secretbox encryption of an in-memory buffer cannot fail");
    let envelope = Envelope {
        kdf: Kdf {
            name: KDF_NAME.into(),
            params,
            salt: B64(salt),
        },
        cipher: Cipher {
            name: CIPHER_NAME.into(),
            nonce: B64(nonce),
        },
        ciphertext: B64(ciphertext),
    };
    serde_json::to_vec(&envelope).expect("the envelope always serializes")
}

/// Opens an envelope written by [`encrypt`], cosign or go-securesystemslib.
pub fn decrypt(envelope: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let env: Envelope = serde_json::from_slice(envelope).map_err(|e| DecryptError::Malformed(e.to_string()))?;
    if env.kdf.name != KDF_NAME {
        return Err(DecryptError::Unsupported(format!(
            "key derivation `{}` (stackci reads `{KDF_NAME}`)",
            env.kdf.name
        )));
    }
    if env.cipher.name != CIPHER_NAME {
        return Err(DecryptError::Unsupported(format!(
            "cipher `{}` (stackci reads `{CIPHER_NAME}`)",
            env.cipher.name
        )));
    }
    if env.cipher.nonce.0.len() != NONCE_LEN {
        return Err(DecryptError::Malformed(format!(
            "the nonce is {} bytes, expected {NONCE_LEN}",
            env.cipher.nonce.0.len()
        )));
    }
    let key = derive(password, &env.kdf.salt.0, &env.kdf.params)?;
    XSalsa20Poly1305::new(Key::from_slice(key.as_slice()))
        .decrypt(Nonce::from_slice(&env.cipher.nonce.0), env.ciphertext.0.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| DecryptError::WrongPassword)
}

/// scrypt(password, salt) → a 32-byte secretbox key, refusing parameters beyond
/// [`MAX_SCRYPT_COST`].
fn derive(password: &[u8], salt: &[u8], p: &ScryptParams) -> Result<Zeroizing<[u8; 32]>, DecryptError> {
    if !p.n.is_power_of_two() || p.n < 2 {
        return Err(DecryptError::Unsupported(format!(
            "scrypt N = {} is not a power of two",
            p.n
        )));
    }
    if p.n.saturating_mul(u64::from(p.r)) > MAX_SCRYPT_COST || p.p == 0 || p.p > 16 {
        return Err(DecryptError::Unsupported(format!(
            "scrypt parameters N = {}, r = {}, p = {} ask for more work than stackci allows \
             (N * r at most {MAX_SCRYPT_COST}, p at most 16)",
            p.n, p.r, p.p
        )));
    }
    let log_n = p.n.trailing_zeros() as u8;
    let params = scrypt::Params::new(log_n, p.r, p.p, 32)
        .map_err(|e| DecryptError::Unsupported(format!("scrypt parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, salt, &params, key.as_mut())
        .map_err(|e| DecryptError::Unsupported(format!("scrypt: {e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_password() {
        let env = encrypt(b"secret key bytes", b"pw");
        let text = String::from_utf8(env.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":""#),
            "{text}"
        );
        assert!(
            text.contains(r#""cipher":{"name":"nacl/secretbox","nonce":""#),
            "{text}"
        );
        assert_eq!(&*decrypt(&env, b"pw").unwrap(), b"secret key bytes");
        assert!(matches!(decrypt(&env, b"PW"), Err(DecryptError::WrongPassword)));
        assert!(matches!(decrypt(&env, b""), Err(DecryptError::WrongPassword)));
    }

    #[test]
    fn empty_password_is_allowed() {
        let env = encrypt(b"k", b"");
        assert_eq!(&*decrypt(&env, b"").unwrap(), b"k");
    }

    /// An envelope written by go-securesystemslib (cosign's test vector in sigstore-rs):
    /// it must parse, and a wrong password must be reported as such.
    #[test]
    fn reads_cosign_envelopes() {
        let cosign = br#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"+QseLb/O/0j2dG201MALNSv2xLcclv6UvpXZVvXGT0k="},"cipher":{"name":"nacl/secretbox","nonce":"B5zH5d9AwoPkgaPAwIgpnft2BO6HZM/j"},"ciphertext":"RQPqIJtoWjlVC49xXNG+zfkGrJF3DWIhdRArI0XeTjGx04QzjAAeybGgW4T9JWKuYYe49NIZCEOD2G8cisMJ9KXHPaxT6Q/lLa8XrkavRrzkaD3xj8tc2AAntvUz8OACtH3zmimeFLr+EtecDb/UNjNFCtW1SlIh6DsfTsbBL67uQqLrFQMW8r70SvsZLkXV8mFhMsKyVryWlQ=="}"#;
        assert!(matches!(decrypt(cosign, b"not it"), Err(DecryptError::WrongPassword)));
    }

    #[test]
    fn refuses_hostile_parameters() {
        let env = String::from_utf8(encrypt(b"k", b"")).unwrap();
        let huge = env.replace(r#""N":32768"#, r#""N":1073741824"#);
        assert!(matches!(
            decrypt(huge.as_bytes(), b""),
            Err(DecryptError::Unsupported(_))
        ));
        let odd = env.replace(r#""N":32768"#, r#""N":30000"#);
        assert!(matches!(
            decrypt(odd.as_bytes(), b""),
            Err(DecryptError::Unsupported(_))
        ));
        let kdf = env.replace(r#""name":"scrypt""#, r#""name":"pbkdf2""#);
        let err = decrypt(kdf.as_bytes(), b"").unwrap_err();
        assert!(err.to_string().contains("pbkdf2"), "{err}");
        assert!(matches!(decrypt(b"{}", b""), Err(DecryptError::Malformed(_))));
    }
}
