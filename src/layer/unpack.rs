//! Verified, confined extraction of layers, in one pass over the blob.
//!
//! [`unpack`] reads a layer once, straight from the mirror's reader ([`super::stream`]):
//! the compressed bytes are hashed, gunzipped, the tar bytes hashed (and capped), and each
//! member checked ([`super::members`]) and extracted into a staging directory
//! ([`super::staging`]) below a directory the caller names, such as the store, so renames
//! stay on one filesystem. Only when the whole layer is extracted and checked, and its
//! digest, size and `diff_id` match, are its top-level entries moved into place by rename
//! (merging into directories that already exist). A failure, or Ctrl-C, leaves the root as
//! it was and removes the staging directory.
//!
//! Refused, naming the layer digest and the member ([`UnsafeMember`]):
//! - for a package layer ([`LayerCheck::prefix`]), any member that is not the package's
//!   prefix or below it; the prefix's ancestors (`opt`, `opt/stackci`) may appear only as
//!   directories, and symlinks must resolve inside the prefix. So a layer can write neither
//!   over system files (`usr/bin/cc`), nor into another package, nor under `<store>/.stackci`;
//! - absolute member paths and paths with `..` components;
//! - symlinks whose target leaves the root. Targets are resolved the way a container sees
//!   them with `root` as `/`: an absolute target is read relative to the root, and the
//!   resolution follows symlinks already in this layer or in the root; a target is refused
//!   when a `..` would climb above the root at any point;
//! - hard links whose target is not a regular file earlier in the same layer;
//! - device files, fifos and other special entries (GNU sparse files too);
//! - members that would be written through a symlink (a symlink, then a file "under" it),
//!   and members that would replace a directory with a non-directory or the reverse;
//!   symlinks already in the root are never followed when moving into place either.
//!
//! Extracted files keep their permission bits except setuid, setgid and sticky, are owned
//! by the extracting user, and get the member's mtime (directories and symlinks do not).
//! Symlink checks are made against the root as it is when the layer is unpacked; a later
//! layer cannot change what an earlier link resolves to except by adding new symlinks on
//! the path of a dangling one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use super::members::{Admitted, Members, show};
use super::staging::Staging;
pub use super::stream::LayerCheck;
use super::stream::{Interrupted, TarStream, read_layer};
use crate::cancel;
use crate::digest::{Digest, DigestMismatch, Hasher};

/// Why a layer member was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The member path starts with `/`.
    #[error("absolute path")]
    AbsolutePath,
    /// The member path has a `..` component.
    #[error("path contains `..`")]
    ParentDir,
    /// The member path is empty.
    #[error("empty path")]
    EmptyPath,
    /// The member is neither the package prefix (named here), nor below it, nor one of its
    /// ancestor directories.
    #[error("it is outside the package prefix `{0}`")]
    OutsidePrefix(String),
    /// The member is the package prefix (named here) or one of its ancestors, and is not a
    /// directory.
    #[error("it is the package prefix `{0}` or one of its parents, which may only be directories")]
    MustBeDirectory(String),
    /// A symlink whose target leaves the root.
    #[error("symlink target `{0}` leaves the root")]
    SymlinkEscapes(String),
    /// A symlink of a package layer whose target resolves outside the package prefix.
    #[error("symlink target `{target}` leaves the package prefix `{prefix}`")]
    SymlinkLeavesPrefix {
        /// The symlink's target.
        target: String,
        /// The package prefix.
        prefix: String,
    },
    /// A symlink without a target.
    #[error("symlink without a target")]
    EmptyTarget,
    /// A symlink chain that does not end (more than 40 hops).
    #[error("symlink target `{0}` loops")]
    SymlinkLoop(String),
    /// A hard link to something that is not a regular file earlier in the layer.
    #[error("hard link target `{0}` is not a file earlier in the layer")]
    HardLinkOutside(String),
    /// A character or block device.
    #[error("device files are not allowed")]
    Device,
    /// A named pipe.
    #[error("fifos are not allowed")]
    Fifo,
    /// A tar entry type stackci does not extract.
    #[error("unsupported entry type {0:?}")]
    Unsupported(u8),
    /// The member lies under a symlink (the symlink-then-file trick).
    #[error("it would be written through the symlink `{0}`")]
    ThroughSymlink(String),
    /// The member lies under something that is not a directory.
    #[error("`{0}` is not a directory")]
    NotADirectory(String),
    /// A directory would replace a non-directory or the reverse.
    #[error("it would replace `{0}` with a different kind of file")]
    Conflict(String),
}

/// A layer member that extraction refused; nothing of the layer was put in place.
#[derive(Debug, thiserror::Error)]
#[error("layer {layer}: refusing member `{member}`: {reason}")]
pub struct UnsafeMember {
    /// The layer's digest.
    pub layer: Digest,
    /// The member path as stored in the tar (lossy UTF-8).
    pub member: String,
    /// What is wrong with it.
    pub reason: Refusal,
}

/// Checks that the file at `path` has digest `expected` (and `size` bytes, when given),
/// reading it in a stream. A mismatch is a [`DigestMismatch`] in the error chain.
pub fn verify_file(path: &Path, expected: &Digest, size: Option<u64>) -> Result<()> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Hasher::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let (actual, actual_size) = hasher.finish();
    if actual != *expected || size.is_some_and(|s| s != actual_size) {
        return Err(DigestMismatch {
            what: path.display().to_string(),
            expected: expected.clone(),
            actual,
            expected_size: size.unwrap_or(actual_size),
            actual_size,
        }
        .into());
    }
    Ok(())
}

/// Verifies the layer file `blob` against `expected` and unpacks it under `root` (created
/// if missing), confined to the root only. See the module documentation for what is refused.
pub fn unpack_layer(blob: &Path, expected: &Digest, root: &Path) -> Result<()> {
    let file = File::open(blob).with_context(|| format!("opening layer {expected} at {}", blob.display()))?;
    unpack(
        file,
        &LayerCheck::digest(expected),
        &blob.display().to_string(),
        root,
        root,
    )
}

/// Reads the layer in `reader` once (`what` names where it comes from, for messages),
/// extracting it into a staging directory in `staging_parent` (a directory below `root` on
/// the filesystem the files end up on, such as the store's `.stackci`), and moves it under
/// `root` only when every member is acceptable and the digest, size and `diff_id` in
/// `check` match. Nothing is written under `root` otherwise.
pub fn unpack(reader: impl Read, check: &LayerCheck, what: &str, root: &Path, staging_parent: &Path) -> Result<()> {
    stage(reader, check, what, root, staging_parent)?.commit()
}

/// A layer extracted and fully checked in its staging directory, not yet in place; dropping
/// it removes the staging directory.
#[derive(Debug)]
pub struct Staged {
    staging: Staging,
    layer: Digest,
    root: PathBuf,
}

/// The first half of [`unpack`]: reads, checks and extracts the layer into staging, and
/// returns it ready to [`Staged::commit`]. Lets a caller clear what the layer replaces only
/// once the layer is known to be good.
pub fn stage(reader: impl Read, check: &LayerCheck, what: &str, root: &Path, staging_parent: &Path) -> Result<Staged> {
    let layer = &check.digest;
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let staging = Staging::create(staging_parent)?;
    let mut x = Extraction {
        members: Members::new(layer, check.prefix.as_deref()),
        staging: staging.path(),
        dirs: Vec::new(),
    };
    read_layer(reader, check, what, |entry| {
        let member = entry.path_bytes().into_owned();
        x.extract_entry(entry, &member)
            .with_context(|| format!("layer {layer}: extracting `{}`", String::from_utf8_lossy(&member)))
    })?;
    x.members.check_symlinks(Some(root))?;
    x.finish_dirs()?;
    Ok(Staged {
        staging,
        layer: layer.clone(),
        root: root.to_path_buf(),
    })
}

impl Staged {
    /// Moves the staged layer into place (refusing to replace a directory by a file or to go
    /// through a symlink in the root, before anything moves) and removes the staging
    /// directory. Does nothing but clean up after Ctrl-C.
    pub fn commit(self) -> Result<()> {
        let (layer, root) = (&self.layer, &self.root);
        if cancel::is_cancelled() {
            bail!(Interrupted(layer.clone()));
        }
        move_into_place(self.staging.path(), root).map_err(|e| match e.downcast::<Refusal>() {
            Ok(reason) => anyhow::Error::new(UnsafeMember {
                layer: layer.clone(),
                member: reason_path(&reason),
                reason,
            }),
            Err(e) => e.context(format!("moving layer {layer} into {}", root.display())),
        })?;
        self.staging.close()
    }
}

/// Reads the layer in `reader` once and checks everything [`unpack`] checks (digest, size,
/// `diff_id`, cap, every member, symlinks within the layer) without writing anything;
/// returns the uncompressed size.
pub fn verify_layer(reader: impl Read, check: &LayerCheck, what: &str) -> Result<u64> {
    let layer = &check.digest;
    let mut members = Members::new(layer, check.prefix.as_deref());
    let size = read_layer(reader, check, what, |entry| {
        let member = entry.path_bytes().into_owned();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        members.admit(entry.header().entry_type(), &member, link.as_deref())?;
        Ok(())
    })?;
    members.check_symlinks(None)?;
    Ok(size)
}

fn reason_path(r: &Refusal) -> String {
    match r {
        Refusal::Conflict(p) | Refusal::ThroughSymlink(p) => p.clone(),
        _ => String::new(),
    }
}

struct Extraction<'a> {
    members: Members,
    staging: &'a Path,
    /// Directories from the archive and their modes, applied at the end.
    dirs: Vec<(PathBuf, u32)>,
}

impl Extraction<'_> {
    fn extract_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, TarStream<R>>, member: &[u8]) -> Result<()> {
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let admitted = self
            .members
            .admit(entry.header().entry_type(), member, link.as_deref())?;
        let mode = entry.header().mode().context("reading the mode")? & 0o777;
        let (rel, replaces) = match &admitted {
            Admitted::Skip => return Ok(()),
            Admitted::Dir { path, exists: true } => {
                self.dirs.push((path.clone(), mode));
                return Ok(());
            }
            Admitted::Dir { path, exists: false } => (path, false),
            Admitted::File { path, replaces }
            | Admitted::Symlink { path, replaces, .. }
            | Admitted::HardLink { path, replaces, .. } => (path, *replaces),
        };
        let dest = self.staging.join(rel);
        if let Some(parent) = dest.parent() {
            // Every existing parent is a directory the layer made (checked by `admit`).
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        if replaces {
            // A later member replaces an earlier file or symlink (unlink never follows links).
            fs::remove_file(&dest).with_context(|| format!("replacing {}", dest.display()))?;
        }
        match admitted {
            Admitted::Skip => {}
            Admitted::Dir { path, .. } => {
                fs::create_dir(&dest).with_context(|| format!("creating {}", dest.display()))?;
                self.dirs.push((path, mode));
            }
            Admitted::Symlink { target, .. } => {
                std::os::unix::fs::symlink(&target, &dest)
                    .with_context(|| format!("creating symlink {}", dest.display()))?;
            }
            Admitted::HardLink { target, .. } => {
                fs::hard_link(self.staging.join(&target), &dest)
                    .with_context(|| format!("creating hard link {}", dest.display()))?;
            }
            Admitted::File { .. } => {
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&dest)
                    .with_context(|| format!("creating {}", dest.display()))?;
                io::copy(entry, &mut out).with_context(|| format!("writing {}", dest.display()))?;
                out.set_permissions(fs::Permissions::from_mode(mode))
                    .with_context(|| format!("setting permissions of {}", dest.display()))?;
                let mtime = entry.header().mtime().context("reading the mtime")?;
                out.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime))
                    .with_context(|| format!("setting the mtime of {}", dest.display()))?;
            }
        }
        Ok(())
    }

    /// Applies directory modes, deepest first (so a read-only directory is filled first).
    fn finish_dirs(&mut self) -> Result<()> {
        self.dirs.sort_by_key(|d| std::cmp::Reverse(d.0.components().count()));
        for (rel, mode) in &self.dirs {
            let dir = self.staging.join(rel);
            fs::set_permissions(&dir, fs::Permissions::from_mode(*mode))
                .with_context(|| format!("setting permissions of {}", dir.display()))?;
        }
        Ok(())
    }
}

/// Moves the staged tree into `root`: every conflict is found first ([`plan_moves`]), then
/// the planned entries are renamed into place, so a refused layer changes nothing.
fn move_into_place(staging: &Path, root: &Path) -> Result<()> {
    let mut moves = Vec::new();
    plan_moves(staging, root, Path::new(""), &mut moves)?;
    for rel in moves {
        rename_or_merge(staging, root, &rel)?;
    }
    Ok(())
}

/// Lists what to rename from `staging/rel` into `root/rel`: entries missing in the root are
/// moved whole; directories present on both sides are descended into; files and symlinks
/// replace files and symlinks. Refuses to replace a directory by a non-directory or the
/// reverse, and never goes through a symlink in the root.
fn plan_moves(staging: &Path, root: &Path, rel: &Path, moves: &mut Vec<PathBuf>) -> Result<()> {
    let from_dir = staging.join(rel);
    let mut names: Vec<_> = fs::read_dir(&from_dir)
        .with_context(|| format!("listing {}", from_dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .with_context(|| format!("listing {}", from_dir.display()))?;
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let (src, dst) = (staging.join(&rel), root.join(&rel));
        if dst == staging {
            bail!(Refusal::Conflict(show(&rel)));
        }
        let src_is_dir = fs::symlink_metadata(&src)
            .with_context(|| format!("reading {}", src.display()))?
            .is_dir();
        match fs::symlink_metadata(&dst) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => moves.push(rel),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", dst.display()))),
            Ok(m) if m.is_dir() && src_is_dir => plan_moves(staging, root, &rel, moves)?,
            Ok(m) if m.file_type().is_symlink() && src_is_dir => bail!(Refusal::ThroughSymlink(show(&rel))),
            Ok(m) if m.is_dir() || src_is_dir => bail!(Refusal::Conflict(show(&rel))),
            Ok(_) => moves.push(rel),
        }
    }
    Ok(())
}

/// Renames `staging/rel` to `root/rel`; when another unpack created that directory in the
/// meantime, merges into it instead.
fn rename_or_merge(staging: &Path, root: &Path, rel: &Path) -> Result<()> {
    let (src, dst) = (staging.join(rel), root.join(rel));
    match fs::rename(&src, &dst) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::AlreadyExists
            ) =>
        {
            let mut moves = Vec::new();
            plan_moves(staging, root, rel, &mut moves)?;
            moves.iter().try_for_each(|m| rename_or_merge(staging, root, m))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("moving {} to {}", src.display(), dst.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_created_after_planning_is_merged_into() {
        let tmp = tempfile::tempdir().unwrap();
        let (staging, root) = (tmp.path().join("staging"), tmp.path().join("root"));
        fs::create_dir_all(staging.join("opt/p")).unwrap();
        fs::write(staging.join("opt/p/new"), b"new").unwrap();
        fs::create_dir(&root).unwrap();
        let mut moves = Vec::new();
        plan_moves(&staging, &root, Path::new(""), &mut moves).unwrap();
        assert_eq!(moves, vec![PathBuf::from("opt")]);
        // Another unpack lands `opt` between planning and renaming.
        fs::create_dir_all(root.join("opt/q")).unwrap();
        rename_or_merge(&staging, &root, Path::new("opt")).unwrap();
        assert_eq!(fs::read(root.join("opt/p/new")).unwrap(), b"new");
        assert!(root.join("opt/q").is_dir());
    }
}
