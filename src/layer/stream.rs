//! Reading a layer blob once: compressed digest, gunzip, uncompressed digest (`diff_id`), tar.
//!
//! [`read_layer`] chains `mirror reader → sha256 + byte count of the compressed bytes →
//! gunzip → sha256 + byte count of the tar bytes (capped) → tar entries`, hands each entry
//! to the caller, then reads both streams to their end and checks the blob's digest and
//! size, then its `diff_id`. The caller writes nothing final until it returns `Ok`: a
//! mismatch, a cap overflow or Ctrl-C is reported after or instead of the entries.
//!
//! When reading fails part way (a corrupt gzip stream, a bad tar header, a refused member),
//! the rest of the blob is still read and hashed, so a blob that does not match its digest
//! is reported as such ([`DigestMismatch`]) rather than as whatever its garbage looked like.

use std::io::{self, BufReader, Read};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use flate2::read::MultiGzDecoder;

use crate::cancel;
use crate::digest::{Digest, DigestMismatch, Hasher};
use crate::layer::Layer;

/// Default cap on a layer's uncompressed size: 64 GiB (see `docs/decisions.md`).
pub const DEFAULT_MAX_LAYER_SIZE: u64 = 64 << 30;

/// What a layer blob must be, and where its members may go; checked while it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerCheck {
    /// sha256 of the compressed blob.
    pub digest: Digest,
    /// Size of the compressed blob, when known (the descriptor's).
    pub size: Option<u64>,
    /// sha256 of the uncompressed tar (the config's `diff_id`), when known.
    pub diff_id: Option<Digest>,
    /// The package prefix (absolute): every member must be in it, its ancestors may only be
    /// directories. `None` confines members to the root only.
    pub prefix: Option<PathBuf>,
    /// Most uncompressed bytes the layer may expand to.
    pub max_size: u64,
}

impl LayerCheck {
    /// A blob known only by its digest, confined to the root, with the default cap.
    pub fn digest(digest: &Digest) -> LayerCheck {
        LayerCheck {
            digest: digest.clone(),
            size: None,
            diff_id: None,
            prefix: None,
            max_size: DEFAULT_MAX_LAYER_SIZE,
        }
    }

    /// A package's own layer (descriptor and `diff_id`), confined to its `prefix`.
    pub fn package(layer: &Layer, prefix: &std::path::Path, max_size: u64) -> LayerCheck {
        LayerCheck {
            digest: layer.descriptor.digest.clone(),
            size: Some(layer.descriptor.size),
            diff_id: Some(layer.diff_id.clone()),
            prefix: Some(prefix.to_path_buf()),
            max_size,
        }
    }
}

/// The uncompressed content of a layer does not match the `diff_id` its image config gives.
#[derive(Debug, thiserror::Error)]
#[error("layer {layer}: the uncompressed content has diff_id {actual}, but the image config says {expected}")]
pub struct DiffIdMismatch {
    /// The layer's (compressed) digest.
    pub layer: Digest,
    /// The config's `diff_id`.
    pub expected: Digest,
    /// The sha256 of the tar stream.
    pub actual: Digest,
}

/// A layer expands to more than the cap (a gzip bomb, or a cap set too low).
#[derive(Debug, thiserror::Error)]
#[error(
    "layer {layer} expands to more than {limit} bytes; refusing it (raise the limit with --max-layer-size or STACKCI_MAX_LAYER_SIZE)"
)]
pub struct LayerTooLarge {
    /// The layer's digest.
    pub layer: Digest,
    /// The cap in bytes.
    pub limit: u64,
}

/// The user interrupted reading a layer (Ctrl-C).
#[derive(Debug, thiserror::Error)]
#[error("interrupted while reading layer {0}")]
pub struct Interrupted(pub Digest);

/// A reader that hashes and counts what passes through it, failing past `limit` bytes
/// and, when `cancellable`, after Ctrl-C.
pub struct Tally<R> {
    inner: R,
    hasher: Hasher,
    limit: u64,
    over: bool,
    cancellable: bool,
}

impl<R: Read> Tally<R> {
    fn new(inner: R, limit: u64, cancellable: bool) -> Self {
        Tally {
            inner,
            hasher: Hasher::default(),
            limit,
            over: false,
            cancellable,
        }
    }
}

impl<R: Read> Read for Tally<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancellable && cancel::is_cancelled() {
            // Not `ErrorKind::Interrupted`: readers retry on that.
            return Err(io::Error::other("interrupted"));
        }
        // Never read more than one byte past the limit.
        let room =
            usize::try_from(self.limit.saturating_sub(self.hasher.len()).saturating_add(1)).unwrap_or(usize::MAX);
        let len = buf.len().min(room);
        let n = self.inner.read(&mut buf[..len])?;
        self.hasher.update(&buf[..n]);
        if self.hasher.len() > self.limit {
            self.over = true;
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, "over the size limit"));
        }
        Ok(n)
    }
}

/// The stream tar entries are read from (uncompressed bytes, tallied).
pub type TarStream<R> = Tally<MultiGzDecoder<BufReader<Tally<R>>>>;

/// Reads the layer in `reader` once, calling `on_entry` for each tar entry in order, then
/// checks the digest, size and `diff_id` of `check` (not its prefix: that is the caller's,
/// through [`super::members::Members`]). Returns the uncompressed size. `what` names the
/// source for messages (e.g. the mirror).
pub fn read_layer<R, F>(reader: R, check: &LayerCheck, what: &str, mut on_entry: F) -> Result<u64>
where
    R: Read,
    F: FnMut(&mut tar::Entry<'_, TarStream<R>>) -> Result<()>,
{
    let layer = &check.digest;
    let compressed = Tally::new(reader, check.size.unwrap_or(u64::MAX), true);
    let gz = MultiGzDecoder::new(BufReader::with_capacity(1 << 20, compressed));
    let mut archive = tar::Archive::new(Tally::new(gz, check.max_size, false));
    let mut entries_result = (|| -> Result<()> {
        for entry in archive.entries().with_context(|| format!("reading layer {layer}"))? {
            let mut entry = entry.with_context(|| format!("reading layer {layer}"))?;
            on_entry(&mut entry)?;
        }
        Ok(())
    })();
    let mut tar_stream = archive.into_inner();
    if entries_result.is_ok() {
        // Read to the end so the tar padding is hashed and the gzip trailer is checked.
        entries_result = io::copy(&mut tar_stream, &mut io::sink())
            .map(drop)
            .with_context(|| format!("reading the end of layer {layer}"));
    }
    let Tally {
        inner: gz,
        hasher: tar_hasher,
        over: too_large,
        ..
    } = tar_stream;
    let mut compressed = gz.into_inner().into_inner();
    if cancel::is_cancelled() {
        bail!(Interrupted(layer.clone()));
    }
    if too_large {
        bail!(LayerTooLarge {
            layer: layer.clone(),
            limit: check.max_size,
        });
    }
    // Whatever happened, the blob's own digest decides first whether it is what was asked for.
    let drained = if compressed.over {
        Ok(())
    } else {
        io::copy(&mut compressed, &mut io::sink()).map(drop)
    };
    if compressed.over || drained.is_ok() {
        let (actual, actual_size) = compressed.hasher.finish();
        if actual != *layer || check.size.is_some_and(|s| s != actual_size) {
            return Err(DigestMismatch {
                what: format!("layer {layer} from {what}"),
                expected: layer.clone(),
                actual,
                expected_size: check.size.unwrap_or(actual_size),
                actual_size,
            }
            .into());
        }
    }
    if cancel::is_cancelled() {
        bail!(Interrupted(layer.clone()));
    }
    entries_result?;
    drained.with_context(|| format!("reading layer {layer} from {what}"))?;
    let (diff_id, tar_size) = tar_hasher.finish();
    if let Some(expected) = &check.diff_id
        && *expected != diff_id
    {
        bail!(DiffIdMismatch {
            layer: layer.clone(),
            expected: expected.clone(),
            actual: diff_id,
        });
    }
    Ok(tar_size)
}

/// Parses a layer size cap: a number with an optional unit `K`, `M`, `G`, `T` (powers of
/// 1024; `KiB`, `KB`, `k` are the same), e.g. `64GiB`, `500M`, `1048576`. Empty means
/// [`DEFAULT_MAX_LAYER_SIZE`] (CI templates set unused variables to "").
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(DEFAULT_MAX_LAYER_SIZE);
    }
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let bad = || format!("`{s}` is not a size (e.g. 64GiB, 500M, 1048576)");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("64GiB"), Ok(DEFAULT_MAX_LAYER_SIZE));
        assert_eq!(parse_size("64G"), Ok(DEFAULT_MAX_LAYER_SIZE));
        assert_eq!(parse_size("500 m"), Ok(500 << 20));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size(""), Ok(DEFAULT_MAX_LAYER_SIZE), "an empty variable is unset");
        assert!(parse_size("G").is_err());
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn the_tally_stops_one_byte_past_its_limit() {
        let mut t = Tally::new(&[7u8; 100][..], 10, false);
        let mut out = Vec::new();
        let err = t.read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(t.over);
        assert_eq!(t.hasher.len(), 11);
    }
}
