//! Deterministic package layers: an install prefix packed into a reproducible `tar.gz`.
//!
//! Member paths are the absolute prefix path without its leading `/`
//! (`opt/stackci/zlib-1.3-abc/lib/libz.a`), preceded by entries for the prefix's ancestor
//! directories (mode 0755), so a layer extracts at the right place under any root. Entries
//! are sorted by path bytes (a directory comes before its contents); every entry has
//! mtime = `source_date_epoch`, uid/gid 0 and no user or group names; permission bits are
//! kept as on disk; symlinks are stored as symlinks with their target unchanged; files
//! hard-linked together inside the prefix are stored once, then as tar hard links. Paths
//! and link targets of 100 bytes or more use GNU long-name entries (as GNU tar does); the
//! headers are GNU format, directory names without a trailing `/`. Sockets, fifos and
//! device files are refused.
//!
//! Compression is [`super::pgzip`]: parallel, but chunked by byte offset so the output is
//! the same for any thread count. See `bench/README.md` for speed and the level choice.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use tar::{EntryType, Header};

use super::Layer;
use super::pgzip::ParallelGz;
use crate::mirror::BlobSource;

/// Default deflate level: zlib-rs level 2 (`deflate_fast`) is the measured sweet spot —
/// level 1 (`deflate_quick`, static Huffman only) saves about a third of the CPU but makes
/// layers ~20 % larger; level 3 costs ~20 % more CPU for 1.6 % smaller (`bench/README.md`).
pub const DEFAULT_LEVEL: u32 = 2;

/// How to pack a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackOptions {
    /// mtime of every entry (`SOURCE_DATE_EPOCH`; default 0).
    pub source_date_epoch: u64,
    /// Compression threads; 0 means the machine's available parallelism. Does not change
    /// the output.
    pub threads: usize,
    /// Deflate level 0..=9 (default [`DEFAULT_LEVEL`]). Changes the output.
    pub level: u32,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            source_date_epoch: 0,
            threads: 0,
            level: DEFAULT_LEVEL,
        }
    }
}

/// A packed layer in a temporary file, removed when dropped unless a store took it.
///
/// As a [`BlobSource`] the file is handed over: a `file://` mirror on the same file system
/// renames it into place ([`crate::mirror::Mirror::put_blob`]).
#[derive(Debug)]
pub struct Packed {
    /// The layer's identity.
    pub layer: Layer,
    file: tempfile::TempPath,
}

impl Packed {
    /// Renames the file to `out` (on the same file system) and returns the layer.
    pub fn persist(self, out: &Path) -> Result<Layer> {
        self.file
            .persist(out)
            .with_context(|| format!("renaming the packed layer to {}", out.display()))?;
        Ok(self.layer)
    }
}

impl BlobSource for Packed {
    fn size(&self) -> u64 {
        self.layer.size()
    }

    fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        let file = File::open(&self.file).with_context(|| format!("opening {}", self.file.display()))?;
        Ok(Box::new(file))
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.file)
    }

    fn movable(&self) -> bool {
        true
    }
}

/// Packs directory `prefix` (an absolute path, e.g. `/opt/stackci/zlib-1.3-abc...`) into a
/// temporary file in `dir`, with the mode `File::create` gives. Put `dir` on the mirror's
/// file system and pushing it costs a rename. The file is not fsynced.
pub fn pack_into(prefix: &Path, dir: &Path, opts: &PackOptions) -> Result<Packed> {
    let what = || format!("packing {} into {}", prefix.display(), dir.display());
    pack(prefix, dir, opts).with_context(what)
}

/// Packs directory `prefix` into the gzip file `out`: [`pack_into`] next to `out`, then a
/// rename, so `out` is never left half-written.
pub fn pack_prefix(prefix: &Path, out: &Path, opts: &PackOptions) -> Result<Layer> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let what = || format!("packing {} into {}", prefix.display(), out.display());
    pack(prefix, dir, opts).and_then(|p| p.persist(out)).with_context(what)
}

fn pack(prefix: &Path, dir: &Path, opts: &PackOptions) -> Result<Packed> {
    let ancestors = prefix_names(prefix)?;
    let meta = fs::symlink_metadata(prefix).with_context(|| format!("reading {}", prefix.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", prefix.display());
    }
    let members = collect(prefix, ancestors.last().expect("prefix has a component"), &meta)?;

    let tmp = crate::newfile::temp_in(dir, ".stackci-pack-")
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let file = tmp
        .as_file()
        .try_clone()
        .with_context(|| format!("opening {}", tmp.path().display()))?;
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };
    let gz = ParallelGz::new(file, tmp.path().to_path_buf(), threads, opts.level)?;
    let mut tar = tar::Builder::new(gz);
    let mtime = opts.source_date_epoch;
    for name in &ancestors[..ancestors.len() - 1] {
        append(
            &mut tar,
            &entry_header(EntryType::Directory, 0o755, 0, mtime),
            name,
            None,
            io::empty(),
        )?;
    }
    for m in &members {
        append_member(&mut tar, m, mtime)?;
    }
    let layer = tar.into_inner().context("ending the tar stream")?.finish()?;
    Ok(Packed {
        layer,
        file: tmp.into_temp_path(),
    })
}

/// Tar names of the prefix and each of its ancestors, outermost first:
/// `/opt/stackci/x` gives `opt`, `opt/stackci`, `opt/stackci/x`.
fn prefix_names(prefix: &Path) -> Result<Vec<Vec<u8>>> {
    if !prefix.is_absolute() {
        bail!("the prefix {} is not an absolute path", prefix.display());
    }
    let mut names = Vec::new();
    let mut name = Vec::new();
    for c in prefix.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(part) => {
                if !name.is_empty() {
                    name.push(b'/');
                }
                name.extend_from_slice(part.as_bytes());
                names.push(name.clone());
            }
            _ => bail!(
                "the prefix {} must not contain `.` or `..` components",
                prefix.display()
            ),
        }
    }
    if names.is_empty() {
        bail!("the prefix must not be the filesystem root");
    }
    Ok(names)
}

/// One entry to write, with its tar name.
struct Member {
    name: Vec<u8>,
    disk: PathBuf,
    mode: u32,
    kind: Kind,
}

enum Kind {
    Dir,
    File { size: u64, inode: Option<(u64, u64)> },
    HardLink { target: Vec<u8> },
    Symlink { target: Vec<u8> },
}

/// Walks the prefix (without following symlinks) and returns its entries sorted by name,
/// the prefix itself first, later occurrences of a hard-linked file turned into links.
fn collect(prefix: &Path, prefix_name: &[u8], meta: &fs::Metadata) -> Result<Vec<Member>> {
    let mut members = vec![Member {
        name: prefix_name.to_vec(),
        disk: prefix.to_path_buf(),
        mode: meta.mode() & 0o7777,
        kind: Kind::Dir,
    }];
    let mut dirs = vec![0usize];
    while let Some(i) = dirs.pop() {
        let (dir, dir_name) = (members[i].disk.clone(), members[i].name.clone());
        let entries = fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let disk = entry.path();
            let meta = entry
                .metadata()
                .with_context(|| format!("reading {}", disk.display()))?;
            let mut name = dir_name.clone();
            name.push(b'/');
            name.extend_from_slice(entry.file_name().as_bytes());
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                dirs.push(members.len());
                Kind::Dir
            } else if ft.is_file() {
                let inode = (meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
                Kind::File {
                    size: meta.len(),
                    inode,
                }
            } else if ft.is_symlink() {
                let target = fs::read_link(&disk).with_context(|| format!("reading symlink {}", disk.display()))?;
                Kind::Symlink {
                    target: target.as_os_str().as_bytes().to_vec(),
                }
            } else {
                bail!(
                    "cannot pack {}: sockets, fifos and device files are not supported",
                    disk.display()
                );
            };
            members.push(Member {
                name,
                disk,
                mode: meta.mode() & 0o7777,
                kind,
            });
        }
    }
    members.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let mut first_of_inode: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    for m in &mut members {
        if let Kind::File { inode: Some(key), .. } = m.kind {
            match first_of_inode.get(&key) {
                Some(first) => m.kind = Kind::HardLink { target: first.clone() },
                None => {
                    first_of_inode.insert(key, m.name.clone());
                }
            }
        }
    }
    Ok(members)
}

fn append_member(tar: &mut tar::Builder<ParallelGz>, m: &Member, mtime: u64) -> Result<()> {
    match &m.kind {
        Kind::Dir => append(
            tar,
            &entry_header(EntryType::Directory, m.mode, 0, mtime),
            &m.name,
            None,
            io::empty(),
        ),
        Kind::Symlink { target } => append(
            tar,
            &entry_header(EntryType::Symlink, 0o777, 0, mtime),
            &m.name,
            Some(target),
            io::empty(),
        ),
        Kind::HardLink { target } => append(
            tar,
            &entry_header(EntryType::Link, m.mode, 0, mtime),
            &m.name,
            Some(target),
            io::empty(),
        ),
        Kind::File { size, .. } => {
            let file = File::open(&m.disk).with_context(|| format!("opening {}", m.disk.display()))?;
            let data = ExactReader {
                file,
                left: *size,
                path: &m.disk,
            };
            append(
                tar,
                &entry_header(EntryType::Regular, m.mode, *size, mtime),
                &m.name,
                None,
                data,
            )
        }
    }
}

/// A GNU header with everything but the name fields set; names and user names stay empty.
fn entry_header(kind: EntryType, mode: u32, size: u64, mtime: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

/// Length from which a name goes into a GNU long-name entry (GNU tar's rule).
const NAME_FIELD: usize = 100;

/// Writes one entry: long-name entries first when needed, then the header and `data`.
fn append(
    tar: &mut tar::Builder<ParallelGz>,
    header: &Header,
    name: &[u8],
    link: Option<&[u8]>,
    data: impl Read,
) -> Result<()> {
    let mut header = header.clone();
    let shown = || String::from_utf8_lossy(name).into_owned();
    let old = header.as_old_mut();
    if name.len() >= NAME_FIELD {
        long_name(tar, EntryType::GNULongName, name)
            .with_context(|| format!("writing the long name of {}", shown()))?;
    }
    let n = name.len().min(NAME_FIELD);
    old.name[..n].copy_from_slice(&name[..n]);
    if let Some(link) = link {
        if link.len() >= NAME_FIELD {
            long_name(tar, EntryType::GNULongLink, link)
                .with_context(|| format!("writing the link target of {}", shown()))?;
        }
        let n = link.len().min(NAME_FIELD);
        old.linkname[..n].copy_from_slice(&link[..n]);
    }
    header.set_cksum();
    tar.append(&header, data)
        .with_context(|| format!("writing {}", shown()))
}

/// A `././@LongLink` entry carrying `value` (NUL-terminated), as GNU tar writes it.
fn long_name(tar: &mut tar::Builder<ParallelGz>, kind: EntryType, value: &[u8]) -> io::Result<()> {
    let mut h = entry_header(kind, 0o644, value.len() as u64 + 1, 0);
    let tag = b"././@LongLink";
    h.as_old_mut().name[..tag.len()].copy_from_slice(tag);
    h.set_cksum();
    tar.append(&h, value.chain(&[0u8][..]))
}

/// Reads exactly the size recorded in the header; a file that shrank while packing is an
/// error instead of a corrupt archive (one that grew is cut at the recorded size).
struct ExactReader<'a> {
    file: File,
    left: u64,
    path: &'a Path,
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while it was being packed", self.path.display()),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;
    use crate::digest::Digest;

    fn write_file(path: &Path, data: &[u8], mode: u32) {
        let mut f = File::create(path).unwrap();
        f.write_all(data).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A prefix under a temp dir, with a nested path so ancestor entries show.
    fn sample_prefix(root: &Path) -> PathBuf {
        let prefix = root.join("opt/stackci/demo-1.0-abc");
        fs::create_dir_all(prefix.join("lib/pkgconfig")).unwrap();
        fs::create_dir_all(prefix.join("bin")).unwrap();
        write_file(&prefix.join("bin/tool"), b"#!/bin/sh\necho hi\n", 0o755);
        write_file(&prefix.join("lib/libdemo.so.1.0"), &vec![7u8; 300_000], 0o644);
        symlink("libdemo.so.1.0", prefix.join("lib/libdemo.so")).unwrap();
        fs::hard_link(prefix.join("bin/tool"), prefix.join("bin/tool-again")).unwrap();
        write_file(&prefix.join("lib/pkgconfig/demo.pc"), b"Name: demo\n", 0o600);
        write_file(&prefix.join("setuid"), b"x", 0o4755);
        let long = "d".repeat(60);
        let deep = prefix.join(&long).join(&long).join(&long);
        fs::create_dir_all(&deep).unwrap();
        write_file(&deep.join("long-file"), b"deep", 0o644);
        let long_target = format!("{long}/{long}/{long}/long-file");
        symlink(&long_target, prefix.join("long-link")).unwrap();
        prefix
    }

    #[test]
    fn same_digest_for_any_thread_count_and_members_as_specified() {
        let root = tempfile::tempdir().unwrap();
        let prefix = sample_prefix(root.path());
        let opts = |threads| PackOptions {
            source_date_epoch: 1_700_000_000,
            threads,
            level: DEFAULT_LEVEL,
        };
        let out1 = root.path().join("one.tar.gz");
        let out4 = root.path().join("four.tar.gz");
        let one = pack_prefix(&prefix, &out1, &opts(1)).unwrap();
        let four = pack_prefix(&prefix, &out4, &opts(4)).unwrap();
        assert_eq!(one, four);
        assert_eq!(fs::read(&out1).unwrap(), fs::read(&out4).unwrap());
        assert_eq!(*one.digest(), Digest::of(&fs::read(&out1).unwrap()));
        assert_eq!(one.size(), fs::metadata(&out1).unwrap().len());

        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(File::open(&out1).unwrap())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(one.diff_id, Digest::of(&tar_bytes));

        let base = prefix.strip_prefix("/").unwrap().to_path_buf();
        let mut names = Vec::new();
        for e in tar::Archive::new(&tar_bytes[..]).entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 1_700_000_000);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.username_bytes(), Some(&b""[..]));
            assert_eq!(h.groupname_bytes(), Some(&b""[..]));
            let path = e.path().unwrap().into_owned();
            let rel = path.strip_prefix(&base).ok().map(|p| p.to_string_lossy().into_owned());
            match rel.as_deref() {
                Some("setuid") => assert_eq!(h.mode().unwrap(), 0o4755),
                Some("lib/pkgconfig/demo.pc") => assert_eq!(h.mode().unwrap(), 0o600),
                Some("lib/libdemo.so") => {
                    assert_eq!(h.entry_type(), EntryType::Symlink);
                    assert_eq!(e.link_name().unwrap().unwrap().as_os_str(), "libdemo.so.1.0");
                }
                Some("long-link") => assert_eq!(e.link_name().unwrap().unwrap().to_string_lossy().len(), 3 * 61 + 9),
                Some("bin/tool-again") => {
                    assert_eq!(h.entry_type(), EntryType::Link);
                    assert_eq!(e.link_name().unwrap().unwrap(), base.join("bin/tool"));
                }
                Some("bin/tool") => assert_eq!(h.entry_type(), EntryType::Regular),
                _ => {}
            }
            if rel.is_none() {
                assert_eq!(h.entry_type(), EntryType::Directory, "{}", path.display());
                assert_eq!(h.mode().unwrap(), 0o755);
            }
            names.push(path.as_os_str().as_bytes().to_vec());
        }
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // Ancestors of the prefix, from the top, come first.
        let comps: Vec<_> = base.components().collect();
        for (i, name) in names.iter().take(comps.len()).enumerate() {
            let want: PathBuf = comps[..=i].iter().collect();
            assert_eq!(name, want.as_os_str().as_bytes());
        }
        assert!(
            names.iter().any(|n| n.len() > 200),
            "a path longer than 200 bytes is stored"
        );
    }

    #[test]
    fn external_tools_read_the_layer() {
        let root = tempfile::tempdir().unwrap();
        let prefix = sample_prefix(root.path());
        let out = root.path().join("layer.tar.gz");
        pack_prefix(&prefix, &out, &PackOptions::default()).unwrap();
        let run = |cmd: &mut std::process::Command| {
            let o = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
            assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        run(std::process::Command::new("gzip").arg("-t").arg(&out));
        let listing = run(std::process::Command::new("tar").arg("-tzf").arg(&out));
        assert!(listing.lines().any(|l| l.ends_with("long-file")), "{listing}");
        let x = root.path().join("x");
        fs::create_dir(&x).unwrap();
        run(std::process::Command::new("tar")
            .arg("-xzf")
            .arg(&out)
            .arg("-C")
            .arg(&x));
        let base = x.join(prefix.strip_prefix("/").unwrap());
        assert_eq!(fs::read(base.join("bin/tool-again")).unwrap(), b"#!/bin/sh\necho hi\n");
        assert_eq!(fs::metadata(base.join("bin/tool")).unwrap().nlink(), 2);
        assert_eq!(
            fs::read_link(base.join("lib/libdemo.so")).unwrap(),
            Path::new("libdemo.so.1.0")
        );
        let script =
            "import sys, tarfile\nwith tarfile.open(sys.argv[1], 'r:gz') as t:\n    print(len(t.getmembers()))\n";
        let n = run(std::process::Command::new("python3").arg("-c").arg(script).arg(&out));
        assert!(n.trim().parse::<usize>().unwrap() > 10, "{n}");
    }

    #[test]
    fn refuses_fifos_and_bad_prefixes() {
        let root = tempfile::tempdir().unwrap();
        let prefix = root.path().join("p");
        fs::create_dir(&prefix).unwrap();
        let fifo = prefix.join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let out = root.path().join("out.tar.gz");
        let err = format!("{:#}", pack_prefix(&prefix, &out, &PackOptions::default()).unwrap_err());
        assert!(err.contains("pipe") && err.contains("fifos"), "{err}");
        assert!(!out.exists());
        let leftovers: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind: {leftovers:?}");
        assert!(pack_prefix(Path::new("relative/p"), &out, &PackOptions::default()).is_err());
        assert!(pack_prefix(Path::new("/"), &out, &PackOptions::default()).is_err());
    }
}
