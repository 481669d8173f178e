//! Package sources: copy a `path:` tree, or download a `url:` archive (verified and cached
//! by digest) and unpack it into a fresh build directory.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::digest::{Digest, VerifyingReader};
use crate::stack::Source;

/// Puts the source of a package into `dest` (an empty directory); downloads go through `cache`.
pub fn prepare(source: &Source, dest: &Path, cache: &Path) -> Result<()> {
    match source {
        Source::Path { path, .. } => copy_tree(path, dest),
        Source::Url { url, sha256 } => {
            let file = fetch(url, sha256, cache)?;
            unpack_archive(&file, url, dest)
        }
    }
}

/// Downloads `url` into `cache/<sha256>` unless present, verifying the digest before the
/// file gets its final name.
pub fn fetch(url: &str, sha256: &Digest, cache: &Path) -> Result<PathBuf> {
    let dest = cache.join(sha256.hex());
    if dest.exists() {
        return Ok(dest);
    }
    fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(cache).with_context(|| format!("creating a file in {}", cache.display()))?;
    let reader: Box<dyn io::Read> = if let Some(path) = url.strip_prefix("file://") {
        Box::new(File::open(path).with_context(|| format!("opening source {url}"))?)
    } else if url.starts_with("http://") || url.starts_with("https://") {
        let resp = reqwest::blocking::get(url).with_context(|| format!("downloading {url}"))?;
        if !resp.status().is_success() {
            bail!("downloading {url}: server answered {}", resp.status());
        }
        Box::new(resp)
    } else {
        bail!("unsupported source URL `{url}`: use file://, http:// or https://");
    };
    let mut verifying = VerifyingReader::new(reader, sha256.clone(), None, url.to_string());
    io::copy(&mut verifying, &mut tmp).with_context(|| format!("downloading {url}"))?;
    tmp.persist(&dest)
        .with_context(|| format!("saving {}", dest.display()))?;
    Ok(dest)
}

/// Unpacks a downloaded archive into `dest`, dropping a single top-level directory the way
/// release tarballs are laid out. Files that are not archives are copied as they are.
fn unpack_archive(file: &Path, url: &str, dest: &Path) -> Result<()> {
    let name = url.rsplit('/').next().unwrap_or("source");
    let is_tar = [
        ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar.zst",
    ]
    .iter()
    .any(|s| name.ends_with(s));
    if !is_tar {
        fs::copy(file, dest.join(name)).with_context(|| format!("copying {url} into {}", dest.display()))?;
        return Ok(());
    }
    let staging = tempfile::tempdir_in(dest).with_context(|| format!("creating a directory in {}", dest.display()))?;
    // GNU tar detects the compression and refuses members that leave the directory.
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(file)
        .arg("-C")
        .arg(staging.path())
        .arg("--no-same-owner")
        .status()
        .context("running tar to unpack a source archive")?;
    if !status.success() {
        bail!("unpacking {url} failed (tar exited with {status})");
    }
    let entries: Vec<_> = fs::read_dir(staging.path())?.collect::<io::Result<_>>()?;
    let top = match entries.as_slice() {
        [one] if one.file_type()?.is_dir() => one.path(),
        _ => staging.path().to_path_buf(),
    };
    for entry in fs::read_dir(&top)? {
        let entry = entry?;
        fs::rename(entry.path(), dest.join(entry.file_name()))
            .with_context(|| format!("moving {} into {}", entry.path().display(), dest.display()))?;
    }
    Ok(())
}

/// Copies a directory tree, keeping modes and symlinks.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src).with_context(|| format!("reading {}", src.display()))?;
        if meta.is_dir() {
            copy_tree(&src, &dst)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(meta.permissions().mode()))?;
        } else if meta.file_type().is_symlink() {
            symlink(fs::read_link(&src)?, &dst).with_context(|| format!("creating link {}", dst.display()))?;
        } else if meta.is_file() {
            fs::copy(&src, &dst).with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        } else {
            bail!("{} is not a regular file, directory or symlink", src.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_verifies_and_caches() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        fs::write(&file, b"source").unwrap();
        let url = format!("file://{}", file.display());
        let cache = dir.path().join("cache");
        let good = Digest::of(b"source");
        let got = fetch(&url, &good, &cache).unwrap();
        assert_eq!(fs::read(got).unwrap(), b"source");
        let bad = Digest::of(b"other");
        let err = fetch(&url, &bad, &cache).unwrap_err();
        assert!(format!("{err:#}").contains("does not match"), "{err:#}");
        assert!(!cache.join(bad.hex()).exists());
    }
}
