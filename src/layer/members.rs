//! The rules every member of a layer must follow, checked one tar header at a time,
//! before anything of the member is written.
//!
//! [`Members`] holds what the layer has declared so far (directories, files, symlinks), so
//! it can refuse a member that would be written through a symlink, a directory replaced by
//! a file, or a hard link to something the layer does not hold. Given a package prefix, it
//! also confines the layer: every member is the prefix or below it, and the prefix's
//! ancestors (`opt`, `opt/stackci`) may only appear as directories; symlinks must resolve
//! inside the prefix. The same rules serve extraction ([`super::unpack`]), verification
//! without extraction, and merging layers into one ([`crate::image::budget`]).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::unpack::{Refusal, UnsafeMember};
use crate::digest::Digest;

/// What a member path is in the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file (or a hard link to one).
    File,
    /// A symlink with its target.
    Symlink(PathBuf),
}

/// What to do with an admitted member, paths relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// Nothing to write (a global header, or the root itself).
    Skip,
    /// Create a directory (or, when it exists already, just take this entry's mode).
    Dir {
        /// Where.
        path: PathBuf,
        /// Whether the layer already made it.
        exists: bool,
    },
    /// Write a regular file from the entry's data.
    File {
        /// Where.
        path: PathBuf,
        /// Whether an earlier file or symlink of the layer is replaced.
        replaces: bool,
    },
    /// Create a symlink.
    Symlink {
        /// Where.
        path: PathBuf,
        /// Its target, unchanged.
        target: PathBuf,
        /// Whether an earlier file or symlink of the layer is replaced.
        replaces: bool,
    },
    /// Create a hard link to a file earlier in the layer.
    HardLink {
        /// Where.
        path: PathBuf,
        /// The earlier file.
        target: PathBuf,
        /// Whether an earlier file or symlink of the layer is replaced.
        replaces: bool,
    },
}

/// The members of one layer seen so far, and the rules for the next one.
#[derive(Debug)]
pub struct Members {
    layer: Digest,
    /// The package prefix relative to the root (`opt/stackci/zlib-1.3-abc`), when confined.
    prefix: Option<PathBuf>,
    /// The prefix as given, for messages.
    shown_prefix: String,
    kinds: HashMap<PathBuf, Kind>,
}

impl Members {
    /// Rules for layer `layer`; with `prefix` (an absolute path), every member must be in it.
    pub fn new(layer: &Digest, prefix: Option<&Path>) -> Members {
        Members {
            layer: layer.clone(),
            prefix: prefix.map(|p| p.components().filter(|c| matches!(c, Component::Normal(_))).collect()),
            shown_prefix: prefix.map(|p| p.display().to_string()).unwrap_or_default(),
            kinds: HashMap::new(),
        }
    }

    /// What the layer holds at `rel` (relative to the root), if anything.
    pub fn kind(&self, rel: &Path) -> Option<&Kind> {
        self.kinds.get(rel)
    }

    fn refuse(&self, member: &[u8], reason: Refusal) -> UnsafeMember {
        UnsafeMember {
            layer: self.layer.clone(),
            member: String::from_utf8_lossy(member).into_owned(),
            reason,
        }
    }

    /// Checks the member `member` (its raw tar path) of type `kind`, with `link` its link
    /// target for symlinks and hard links, and records it. Symlink targets are checked
    /// later, by [`Members::check_symlinks`], once the whole layer is known.
    pub fn admit(&mut self, kind: EntryType, member: &[u8], link: Option<&[u8]>) -> Result<Admitted, UnsafeMember> {
        match kind {
            EntryType::XGlobalHeader => return Ok(Admitted::Skip),
            EntryType::Char | EntryType::Block => return Err(self.refuse(member, Refusal::Device)),
            EntryType::Fifo => return Err(self.refuse(member, Refusal::Fifo)),
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link => {}
            other => return Err(self.refuse(member, Refusal::Unsupported(other.as_byte()))),
        }
        let is_dir = kind == EntryType::Directory;
        let rel = match clean_path(member) {
            Ok(Some(rel)) => rel,
            Ok(None) if is_dir => return Ok(Admitted::Skip),
            Ok(None) => return Err(self.refuse(member, Refusal::EmptyPath)),
            Err(reason) => return Err(self.refuse(member, reason)),
        };
        if let Some(prefix) = &self.prefix {
            if !rel.starts_with(prefix) {
                let reason = if prefix.starts_with(&rel) {
                    (!is_dir).then(|| Refusal::MustBeDirectory(self.shown_prefix.clone()))
                } else {
                    Some(Refusal::OutsidePrefix(self.shown_prefix.clone()))
                };
                if let Some(reason) = reason {
                    return Err(self.refuse(member, reason));
                }
            } else if &rel == prefix && !is_dir {
                return Err(self.refuse(member, Refusal::MustBeDirectory(self.shown_prefix.clone())));
            }
        }
        self.check_parents(&rel, member)?;
        let replaces = match self.kinds.get(&rel) {
            Some(Kind::Dir) if is_dir => {
                return Ok(Admitted::Dir {
                    path: rel,
                    exists: true,
                });
            }
            Some(Kind::Dir) => return Err(self.refuse(member, Refusal::Conflict(show(&rel)))),
            Some(_) if is_dir => return Err(self.refuse(member, Refusal::Conflict(show(&rel)))),
            Some(_) => true,
            None => false,
        };
        let admitted = match kind {
            EntryType::Directory => {
                self.kinds.insert(rel.clone(), Kind::Dir);
                Admitted::Dir {
                    path: rel,
                    exists: false,
                }
            }
            EntryType::Symlink => {
                let Some(target) = link.filter(|t| !t.is_empty()) else {
                    return Err(self.refuse(member, Refusal::EmptyTarget));
                };
                let target = PathBuf::from(OsStr::from_bytes(target));
                self.kinds.insert(rel.clone(), Kind::Symlink(target.clone()));
                Admitted::Symlink {
                    path: rel,
                    target,
                    replaces,
                }
            }
            EntryType::Link => {
                let target = link.unwrap_or_default();
                let outside = || Refusal::HardLinkOutside(String::from_utf8_lossy(target).into_owned());
                let target_rel = match clean_path(target) {
                    Ok(Some(t)) if matches!(self.kinds.get(&t), Some(Kind::File)) && t != rel => t,
                    _ => return Err(self.refuse(member, outside())),
                };
                self.kinds.insert(rel.clone(), Kind::File);
                Admitted::HardLink {
                    path: rel,
                    target: target_rel,
                    replaces,
                }
            }
            _ => {
                self.kinds.insert(rel.clone(), Kind::File);
                Admitted::File { path: rel, replaces }
            }
        };
        Ok(admitted)
    }

    /// Refuses a member below a symlink or a file of the layer; records missing parents as
    /// directories (extraction creates them).
    fn check_parents(&mut self, rel: &Path, member: &[u8]) -> Result<(), UnsafeMember> {
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
                    self.kinds.insert(parent.clone(), Kind::Dir);
                }
            }
        }
        Ok(())
    }

    /// Resolves every symlink of the layer (sorted, for stable errors) and refuses the first
    /// one that leaves the root, or the package prefix when confined, or loops. `root`, when
    /// given, is the directory the layer lands in: symlinks already there are followed too.
    pub fn check_symlinks(&self, root: Option<&Path>) -> anyhow::Result<()> {
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
            match self.resolve(path, target, root) {
                Ok(()) => {}
                Err(Resolve::Escapes) => return Err(refuse(Refusal::SymlinkEscapes(shown)).into()),
                Err(Resolve::LeavesPrefix) => {
                    let prefix = self.shown_prefix.clone();
                    return Err(refuse(Refusal::SymlinkLeavesPrefix { target: shown, prefix }).into());
                }
                Err(Resolve::Loops) => return Err(refuse(Refusal::SymlinkLoop(shown)).into()),
                Err(Resolve::Io(e)) => {
                    return Err(e.context(format!("layer {}: resolving symlink `{}`", self.layer, show(path))));
                }
            }
        }
        Ok(())
    }

    /// Whether resolution may pass through `at`: inside the prefix, or one of its ancestors
    /// (an absolute target starts at the root and walks down to the prefix).
    fn may_visit(&self, at: &Path) -> bool {
        self.prefix
            .as_ref()
            .is_none_or(|p| at.starts_with(p) || p.starts_with(at))
    }

    /// Follows `target` (of the symlink at `link`) component by component through this
    /// layer's symlinks and the root's, with the root as `/`.
    fn resolve(&self, link: &Path, target: &Path, root: Option<&Path>) -> Result<(), Resolve> {
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
            } else {
                at.push(c);
                let here: PathBuf = at.iter().collect();
                if let Some(next) = self.link_at(&here, root)? {
                    hops += 1;
                    if hops > 40 {
                        return Err(Resolve::Loops);
                    }
                    at.pop();
                    push_target(&mut todo, &mut at, &next);
                }
            }
            if !self.may_visit(&at.iter().collect::<PathBuf>()) {
                return Err(Resolve::LeavesPrefix);
            }
        }
        let end: PathBuf = at.iter().collect();
        match &self.prefix {
            Some(p) if !end.starts_with(p) => Err(Resolve::LeavesPrefix),
            _ => Ok(()),
        }
    }

    /// The symlink target at `rel` in the merged view (this layer over the root), if `rel`
    /// is a symlink.
    fn link_at(&self, rel: &Path, root: Option<&Path>) -> Result<Option<PathBuf>, Resolve> {
        match self.kinds.get(rel) {
            Some(Kind::Symlink(t)) => return Ok(Some(t.clone())),
            Some(_) => return Ok(None),
            None => {}
        }
        let Some(root) = root else { return Ok(None) };
        if self.prefix.as_ref().is_some_and(|p| rel.starts_with(p)) {
            // A package layer is all of its prefix: whatever the root holds there is replaced.
            return Ok(None);
        }
        let path = root.join(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => std::fs::read_link(&path)
                .map(Some)
                .map_err(|e| Resolve::Io(anyhow::Error::new(e).context(format!("reading {}", path.display())))),
            _ => Ok(None),
        }
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

/// Why a symlink did not resolve inside the root (or the prefix).
enum Resolve {
    Escapes,
    LeavesPrefix,
    Loops,
    Io(anyhow::Error),
}

/// A member path as a relative path of normal components (`.` and empty parts dropped);
/// `None` when nothing is left.
pub(crate) fn clean_path(bytes: &[u8]) -> Result<Option<PathBuf>, Refusal> {
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

pub(crate) fn show(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path(b"./a//b/./c/").unwrap(), Some(PathBuf::from("a/b/c")));
        assert_eq!(clean_path(b"./").unwrap(), None);
        assert_eq!(clean_path(b"/etc/passwd"), Err(Refusal::AbsolutePath));
        assert_eq!(clean_path(b"a/../../b"), Err(Refusal::ParentDir));
        assert_eq!(clean_path(b"a/..b"), Ok(Some(PathBuf::from("a/..b"))));
    }

    fn confined() -> Members {
        Members::new(&Digest::of(b"layer"), Some(Path::new("/opt/stackci/p-1-h")))
    }

    #[test]
    fn a_confined_layer_holds_its_prefix_and_its_parents_as_directories() {
        let mut m = confined();
        for dir in ["opt", "opt/stackci/", "./opt/stackci/p-1-h", "opt/stackci/p-1-h/bin"] {
            assert!(
                matches!(
                    m.admit(EntryType::Directory, dir.as_bytes(), None),
                    Ok(Admitted::Dir { .. })
                ),
                "{dir}"
            );
        }
        m.admit(EntryType::Regular, b"opt/stackci/p-1-h/bin/x", None).unwrap();
        let refused = |m: &mut Members, kind, path: &str| m.admit(kind, path.as_bytes(), None).unwrap_err().reason;
        let outside = Refusal::OutsidePrefix("/opt/stackci/p-1-h".into());
        let must_dir = Refusal::MustBeDirectory("/opt/stackci/p-1-h".into());
        assert_eq!(refused(&mut m, EntryType::Regular, "usr/bin/cc"), outside);
        assert_eq!(refused(&mut m, EntryType::Directory, "usr"), outside);
        assert_eq!(refused(&mut m, EntryType::Regular, "opt/stackci/q-1-h/x"), outside);
        assert_eq!(refused(&mut m, EntryType::Regular, "opt/stackci/p-1-hh"), outside);
        assert_eq!(
            refused(&mut m, EntryType::Regular, "opt/stackci/.stackci/layers/x"),
            outside
        );
        assert_eq!(refused(&mut m, EntryType::Regular, "opt/stackci"), must_dir);
        assert_eq!(refused(&mut m, EntryType::Symlink, "opt"), must_dir);
        assert_eq!(refused(&mut m, EntryType::Regular, "opt/stackci/p-1-h"), must_dir);
    }

    #[test]
    fn confined_symlinks_stay_in_the_prefix() {
        let mut m = confined();
        let links = [
            ("opt/stackci/p-1-h/lib/a", "b"),
            ("opt/stackci/p-1-h/lib/abs", "/opt/stackci/p-1-h/lib/b"),
            ("opt/stackci/p-1-h/lib/up", ".."),
            ("opt/stackci/p-1-h/lib/round", "../../p-1-h/lib/b"),
        ];
        for (path, target) in links {
            m.admit(EntryType::Symlink, path.as_bytes(), Some(target.as_bytes()))
                .unwrap();
        }
        m.check_symlinks(None).unwrap();
        for (path, target) in [
            ("opt/stackci/p-1-h/x", "/etc/passwd"),
            ("opt/stackci/p-1-h/x", "../q-1-h/lib"),
            ("opt/stackci/p-1-h/x", ".."),
            ("opt/stackci/p-1-h/x", "../q-1-h/../p-1-h"),
            ("opt/stackci/p-1-h/x", "/opt/stackci/.stackci"),
        ] {
            let mut m = confined();
            m.admit(EntryType::Symlink, path.as_bytes(), Some(target.as_bytes()))
                .unwrap();
            let err = m.check_symlinks(None).unwrap_err();
            let refusal = err.downcast_ref::<UnsafeMember>().expect("an UnsafeMember");
            assert!(
                matches!(&refusal.reason, Refusal::SymlinkLeavesPrefix { target: t, .. } if t == target),
                "{target}: {err:#}"
            );
        }
    }
}
