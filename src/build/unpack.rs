//! Verified, safe extraction of layers.
//!
//! A layer is hashed in full before anything is extracted. It is then extracted into a
//! staging directory inside the root (`<root>/.stackci-unpack-XXXX`, or below a directory the
//! caller names, such as the store, so renames stay on one filesystem), every member checked
//! explicitly rather than trusting the tar crate's `unpack_in`, and only when the whole layer
//! is extracted and checked are its top-level entries moved into place by rename (merging
//! into directories that already exist). A failure leaves the root as it was.
//!
//! Refused, naming the layer digest and the member ([`UnsafeMember`]):
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

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use tar::EntryType;

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
    /// A symlink whose target leaves the root.
    #[error("symlink target `{0}` leaves the root")]
    SymlinkEscapes(String),
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
    verify_open(&mut file, path, expected, size)
}

fn verify_open(file: &mut File, path: &Path, expected: &Digest, size: Option<u64>) -> Result<()> {
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

/// Verifies `blob` (a local `.tar.gz` file) against `expected`, then extracts it into
/// `root` (created if missing). See the module documentation for what is refused.
pub fn unpack_layer(blob: &Path, expected: &Digest, root: &Path) -> Result<()> {
    unpack_layer_staged(blob, expected, root, root)
}

/// Like [`unpack_layer`], staging the extraction in `staging_parent` (a directory below
/// `root` on the filesystem the files end up on, such as the store), so the final renames
/// never cross a mount point.
pub fn unpack_layer_staged(blob: &Path, expected: &Digest, root: &Path, staging_parent: &Path) -> Result<()> {
    let mut file = File::open(blob).with_context(|| format!("opening layer {expected} at {}", blob.display()))?;
    verify_open(&mut file, blob, expected, None).with_context(|| format!("verifying layer {expected}"))?;
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("reading {}", blob.display()))?;
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    fs::create_dir_all(staging_parent).with_context(|| format!("creating {}", staging_parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".stackci-unpack-")
        .tempdir_in(staging_parent)
        .with_context(|| format!("creating a staging directory in {}", staging_parent.display()))?;
    let mut x = Extraction {
        layer: expected,
        root,
        staging: staging.path(),
        kinds: HashMap::new(),
        dirs: Vec::new(),
    };
    x.extract(file)?;
    x.check_symlinks()?;
    x.finish_dirs()?;
    move_into_place(staging.path(), root).map_err(|e| match e.downcast::<Refusal>() {
        Ok(reason) => anyhow::Error::new(UnsafeMember {
            layer: expected.clone(),
            member: reason_path(&reason),
            reason,
        }),
        Err(e) => e.context(format!("moving layer {expected} into {}", root.display())),
    })?;
    staging
        .close()
        .with_context(|| format!("removing the staging directory in {}", root.display()))
}

fn reason_path(r: &Refusal) -> String {
    match r {
        Refusal::Conflict(p) | Refusal::ThroughSymlink(p) => p.clone(),
        _ => String::new(),
    }
}

/// What a staged path is.
#[derive(Debug, Clone)]
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

struct Extraction<'a> {
    layer: &'a Digest,
    root: &'a Path,
    staging: &'a Path,
    /// Every path created in staging, relative to it.
    kinds: HashMap<PathBuf, Kind>,
    /// Directories from the archive and their modes, applied at the end.
    dirs: Vec<(PathBuf, u32)>,
}

impl Extraction<'_> {
    fn refuse(&self, member: &[u8], reason: Refusal) -> anyhow::Error {
        UnsafeMember {
            layer: self.layer.clone(),
            member: String::from_utf8_lossy(member).into_owned(),
            reason,
        }
        .into()
    }

    fn extract(&mut self, file: File) -> Result<()> {
        let layer = self.layer.clone();
        let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(
            1 << 20,
            file,
        )));
        let entries = archive.entries().with_context(|| format!("reading layer {layer}"))?;
        for entry in entries {
            let mut entry = entry.with_context(|| format!("reading layer {layer}"))?;
            let member = entry.path_bytes().into_owned();
            self.extract_entry(&mut entry, &member)
                .with_context(|| format!("layer {layer}: extracting `{}`", String::from_utf8_lossy(&member)))?;
        }
        // Read to the end so the gzip trailer (CRC-32, length) is checked too.
        io::copy(&mut archive.into_inner(), &mut io::sink())
            .with_context(|| format!("reading the end of layer {layer}"))?;
        Ok(())
    }

    fn extract_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, member: &[u8]) -> Result<()> {
        let kind = entry.header().entry_type();
        match kind {
            EntryType::XGlobalHeader => return Ok(()),
            EntryType::Char | EntryType::Block => return Err(self.refuse(member, Refusal::Device)),
            EntryType::Fifo => return Err(self.refuse(member, Refusal::Fifo)),
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link => {}
            other => return Err(self.refuse(member, Refusal::Unsupported(other.as_byte()))),
        }
        let rel = match clean_path(member) {
            Ok(Some(rel)) => rel,
            Ok(None) if kind == EntryType::Directory => return Ok(()),
            Ok(None) => return Err(self.refuse(member, Refusal::EmptyPath)),
            Err(reason) => return Err(self.refuse(member, reason)),
        };
        self.make_parents(&rel, member)?;
        let dest = self.staging.join(&rel);
        let mode = entry.header().mode().context("reading the mode")? & 0o777;
        match self.kinds.get(&rel) {
            Some(Kind::Dir) if kind == EntryType::Directory => {
                self.dirs.push((rel, mode));
                return Ok(());
            }
            Some(Kind::Dir) => return Err(self.refuse(member, Refusal::Conflict(show(&rel)))),
            Some(_) if kind == EntryType::Directory => {
                return Err(self.refuse(member, Refusal::Conflict(show(&rel))));
            }
            // A later member replaces an earlier file or symlink (unlink never follows links).
            Some(_) => fs::remove_file(&dest).with_context(|| format!("replacing {}", dest.display()))?,
            None => {}
        }
        match kind {
            EntryType::Directory => {
                fs::create_dir(&dest).with_context(|| format!("creating {}", dest.display()))?;
                self.kinds.insert(rel.clone(), Kind::Dir);
                self.dirs.push((rel, mode));
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().context("symlink without a target")?;
                let target = PathBuf::from(OsStr::from_bytes(&target));
                std::os::unix::fs::symlink(&target, &dest)
                    .with_context(|| format!("creating symlink {}", dest.display()))?;
                self.kinds.insert(rel, Kind::Symlink(target));
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .context("hard link without a target")?
                    .into_owned();
                let outside = || Refusal::HardLinkOutside(String::from_utf8_lossy(&target).into_owned());
                let target_rel = match clean_path(&target) {
                    Ok(Some(t)) if matches!(self.kinds.get(&t), Some(Kind::File)) => t,
                    _ => return Err(self.refuse(member, outside())),
                };
                fs::hard_link(self.staging.join(&target_rel), &dest)
                    .with_context(|| format!("creating hard link {}", dest.display()))?;
                self.kinds.insert(rel, Kind::File);
            }
            _ => {
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
                self.kinds.insert(rel, Kind::File);
            }
        }
        Ok(())
    }

    /// Creates the missing parents of `rel` in staging, refusing to go through a symlink or
    /// a file.
    fn make_parents(&mut self, rel: &Path, member: &[u8]) -> Result<()> {
        let mut parent = PathBuf::new();
        let comps: Vec<_> = rel.components().collect();
        for c in &comps[..comps.len() - 1] {
            parent.push(c);
            match self.kinds.get(&parent) {
                Some(Kind::Dir) => {}
                Some(Kind::Symlink(_)) => {
                    return Err(self.refuse(member, Refusal::ThroughSymlink(show(&parent))));
                }
                Some(Kind::File) => {
                    return Err(self.refuse(member, Refusal::NotADirectory(show(&parent))));
                }
                None => {
                    let dir = self.staging.join(&parent);
                    fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
                    self.kinds.insert(parent.clone(), Kind::Dir);
                }
            }
        }
        Ok(())
    }

    /// Resolves every symlink of the layer (sorted, for stable errors) and refuses the
    /// first one that leaves the root.
    fn check_symlinks(&self) -> Result<()> {
        let mut links: Vec<_> = self
            .kinds
            .iter()
            .filter_map(|(p, k)| if let Kind::Symlink(t) = k { Some((p, t)) } else { None })
            .collect();
        links.sort();
        for (path, target) in links {
            let shown = target.to_string_lossy().into_owned();
            let refuse = |reason| UnsafeMember {
                layer: self.layer.clone(),
                member: show(path),
                reason,
            };
            match self.resolve(path, target) {
                Ok(()) => {}
                Err(Resolve::Escapes) => return Err(refuse(Refusal::SymlinkEscapes(shown)).into()),
                Err(Resolve::Loops) => return Err(refuse(Refusal::SymlinkLoop(shown)).into()),
                Err(Resolve::Io(e)) => {
                    return Err(e.context(format!("layer {}: resolving symlink `{}`", self.layer, show(path))));
                }
            }
        }
        Ok(())
    }

    /// Follows `target` (of the symlink at `link`) component by component through this
    /// layer's symlinks and the root's, with the root as `/`.
    fn resolve(&self, link: &Path, target: &Path) -> Result<(), Resolve> {
        let mut at: Vec<PathBuf> = Vec::new();
        let mut todo: Vec<PathBuf> = Vec::new();
        at.extend(
            link.parent()
                .into_iter()
                .flat_map(|p| p.components())
                .map(|c| PathBuf::from(c.as_os_str())),
        );
        push_target(&mut todo, &mut at, target);
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            if c.as_os_str() == ".." {
                if at.pop().is_none() {
                    return Err(Resolve::Escapes);
                }
                continue;
            }
            at.push(c);
            let here: PathBuf = at.iter().collect();
            if let Some(next) = self.link_at(&here)? {
                hops += 1;
                if hops > 40 {
                    return Err(Resolve::Loops);
                }
                at.pop();
                push_target(&mut todo, &mut at, &next);
            }
        }
        Ok(())
    }

    /// The symlink target at `rel` in the merged view (this layer over the root), if `rel`
    /// is a symlink.
    fn link_at(&self, rel: &Path) -> Result<Option<PathBuf>, Resolve> {
        match self.kinds.get(rel) {
            Some(Kind::Symlink(t)) => return Ok(Some(t.clone())),
            Some(_) => return Ok(None),
            None => {}
        }
        let path = self.root.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => fs::read_link(&path)
                .map(Some)
                .map_err(|e| Resolve::Io(anyhow::Error::new(e).context(format!("reading {}", path.display())))),
            _ => Ok(None),
        }
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

/// Queues the components of symlink target `t` (an absolute one restarts at the root).
fn push_target(todo: &mut Vec<PathBuf>, at: &mut Vec<PathBuf>, t: &Path) {
    if t.has_root() {
        at.clear();
    }
    for c in t.components().rev() {
        match c {
            Component::Normal(n) => todo.push(PathBuf::from(n)),
            Component::ParentDir => todo.push(PathBuf::from("..")),
            _ => {}
        }
    }
}

/// Why a symlink did not resolve inside the root.
enum Resolve {
    Escapes,
    Loops,
    Io(anyhow::Error),
}

/// A member path as a relative path of normal components (`.` and empty parts dropped);
/// `None` when nothing is left.
fn clean_path(bytes: &[u8]) -> Result<Option<PathBuf>, Refusal> {
    if bytes.starts_with(b"/") {
        return Err(Refusal::AbsolutePath);
    }
    let mut out = PathBuf::new();
    for part in bytes.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(Refusal::ParentDir),
            p => out.push(OsStr::from_bytes(p)),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

fn show(p: &Path) -> String {
    p.to_string_lossy().into_owned()
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

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path(b"./a//b/./c/").unwrap(), Some(PathBuf::from("a/b/c")));
        assert_eq!(clean_path(b"./").unwrap(), None);
        assert_eq!(clean_path(b"/etc/passwd"), Err(Refusal::AbsolutePath));
        assert_eq!(clean_path(b"a/../../b"), Err(Refusal::ParentDir));
        assert_eq!(clean_path(b"a/..b"), Ok(Some(PathBuf::from("a/..b"))));
    }
}
