//! Content digests (`sha256:<hex>`) and a reader that verifies one while streaming.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A `sha256:<64 lowercase hex>` content digest, as used by OCI descriptors.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// Why a string is not a valid digest.
#[derive(Debug, thiserror::Error)]
#[error("invalid digest `{0}`: expected `sha256:` followed by 64 lowercase hex characters")]
pub struct ParseDigestError(pub String);

impl Digest {
    /// Wraps raw sha256 output.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The digest of `data`, for small in-memory documents (manifests, configs).
    pub fn of(data: &[u8]) -> Self {
        Digest(Sha256::digest(data).into())
    }

    /// The 64-character lowercase hex part, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }

    /// Parses a bare 64-character hex string (as in `source: { sha256: ... }`).
    pub fn from_hex(hex: &str) -> Result<Self, ParseDigestError> {
        let bad = || ParseDigestError(hex.to_string());
        if hex.len() != 64 || hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let bytes = data_encoding::HEXLOWER.decode(hex.as_bytes()).map_err(|_| bad())?;
        Ok(Digest(bytes.try_into().map_err(|_| bad())?))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = ParseDigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| ParseDigestError(s.to_string()))?;
        Digest::from_hex(hex).map_err(|_| ParseDigestError(s.to_string()))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 that also counts bytes.
#[derive(Default, Clone)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.sha.update(data);
        self.len += data.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest and the byte count.
    pub fn finish(self) -> (Digest, u64) {
        (Digest(self.sha.finalize().into()), self.len)
    }
}

/// Digest mismatch found while reading a blob.
#[derive(Debug, thiserror::Error)]
#[error(
    "content of {what} does not match its digest: expected {expected} ({expected_size} bytes), got {actual} ({actual_size} bytes)"
)]
pub struct DigestMismatch {
    /// What was read (a blob, a file, a URL).
    pub what: String,
    /// The digest the content should have.
    pub expected: Digest,
    /// The digest the content has.
    pub actual: Digest,
    /// The size the content should have, when known.
    pub expected_size: u64,
    /// The size read.
    pub actual_size: u64,
}

/// Reads `inner` while hashing it; at end of stream, fails with [`DigestMismatch`]
/// (as an `io::Error` of kind `InvalidData`) unless the content matched (digest, and size
/// when one is expected).
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Hasher,
    expected: Digest,
    expected_size: Option<u64>,
    what: String,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, expecting `expected` (and `expected_size` bytes, when given).
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>, what: impl Into<String>) -> Self {
        VerifyingReader {
            inner,
            hasher: Hasher::default(),
            expected,
            expected_size,
            what: what.into(),
            done: false,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if let Some(size) = self.expected_size
            && self.hasher.len() > size
        {
            return Err(self.mismatch());
        }
        if n == 0 && !buf.is_empty() && !self.done {
            self.done = true;
            let (actual, actual_size) = self.hasher.clone().finish();
            if actual != self.expected || self.expected_size.is_some_and(|s| s != actual_size) {
                return Err(self.mismatch());
            }
        }
        Ok(n)
    }
}

impl<R> VerifyingReader<R> {
    fn mismatch(&self) -> io::Error {
        let (actual, actual_size) = self.hasher.clone().finish();
        io::Error::new(
            io::ErrorKind::InvalidData,
            DigestMismatch {
                what: self.what.clone(),
                expected: self.expected.clone(),
                actual,
                expected_size: self.expected_size.unwrap_or(actual_size),
                actual_size,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!("sha256:E3B0".parse::<Digest>().is_err());
        assert!("md5:abc".parse::<Digest>().is_err());
    }

    #[test]
    fn verifying_reader_rejects_corruption() {
        let good = Digest::of(b"hello");
        let mut out = Vec::new();
        VerifyingReader::new(&b"hello"[..], good.clone(), Some(5), "t")
            .read_to_end(&mut out)
            .unwrap();
        let err = VerifyingReader::new(&b"hellO"[..], good.clone(), Some(5), "t")
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("does not match"), "{err}");
        let err = VerifyingReader::new(&b"hello!"[..], good, Some(5), "t")
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
