//! Layers end to end: pack a prefix, unpack it under a root, and refuse crafted hostile
//! tarballs without leaving anything behind.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use stackci::build::pack::{PackOptions, pack_prefix};
use stackci::build::unpack::{Refusal, UnsafeMember, unpack_layer, verify_file};
use stackci::digest::{Digest, DigestMismatch};
use tar::EntryType;

fn write_file(path: &Path, data: &[u8], mode: u32) {
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A prefix `<base>/opt/stackci/<name>` with files, a symlink, a hard link and a long path.
fn make_prefix(base: &Path, name: &str) -> PathBuf {
    let prefix = base.join("opt/stackci").join(name);
    fs::create_dir_all(prefix.join("lib")).unwrap();
    fs::create_dir_all(prefix.join("bin")).unwrap();
    write_file(&prefix.join("bin/tool"), b"#!/bin/sh\necho hi\n", 0o755);
    fs::hard_link(prefix.join("bin/tool"), prefix.join("bin/tool2")).unwrap();
    write_file(&prefix.join("lib/libx.so.1"), &vec![3u8; 100_000], 0o644);
    symlink("libx.so.1", prefix.join("lib/libx.so")).unwrap();
    let long = prefix.join("share").join("x".repeat(90)).join("y".repeat(90));
    fs::create_dir_all(&long).unwrap();
    write_file(&long.join("doc.txt"), b"doc", 0o444);
    prefix
}

/// Every path under `dir` (relative), with a description of what it is.
fn tree(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("link {}", fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                todo.push(p.clone());
                format!("dir {:o}", m.mode() & 0o7777)
            } else {
                format!("file {:o} {:?}", m.mode() & 0o7777, fs::read(&p).unwrap().len())
            };
            out.push((p.strip_prefix(dir).unwrap().to_path_buf(), what));
        }
    }
    out.sort();
    out
}

#[test]
fn packed_layers_unpack_to_the_same_tree_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let a = make_prefix(&src, "a-1.0-aaaa");
    let b = make_prefix(&src, "b-2.0-bbbb");
    let opts = PackOptions::default();
    let la = pack_prefix(&a, &tmp.path().join("a.tar.gz"), &opts).unwrap();
    let lb = pack_prefix(&b, &tmp.path().join("b.tar.gz"), &opts).unwrap();

    let root = tmp.path().join("root");
    unpack_layer(&tmp.path().join("a.tar.gz"), &la.digest, &root).unwrap();
    unpack_layer(&tmp.path().join("b.tar.gz"), &lb.digest, &root).unwrap();
    // Unpacking again is harmless (files are replaced, directories merged).
    unpack_layer(&tmp.path().join("a.tar.gz"), &la.digest, &root).unwrap();

    for p in [&a, &b] {
        let there = root.join(p.strip_prefix("/").unwrap());
        assert_eq!(tree(&there), tree(p), "{}", p.display());
        assert_eq!(
            fs::metadata(there.join("bin/tool")).unwrap().nlink(),
            2,
            "hard link kept"
        );
        assert_eq!(fs::metadata(there.join("bin/tool")).unwrap().mtime(), 0);
    }
    let leftovers: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(
        leftovers,
        vec![std::ffi::OsString::from(
            src.strip_prefix("/").unwrap().components().next().unwrap().as_os_str()
        )]
    );
}

#[test]
fn concurrent_unpacks_into_one_root_all_land() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let layers: Vec<_> = (0..6)
        .map(|i| {
            let prefix = make_prefix(&src, &format!("p{i}-1.0-hash"));
            let blob = tmp.path().join(format!("p{i}.tar.gz"));
            let layer = pack_prefix(&prefix, &blob, &PackOptions::default()).unwrap();
            (prefix, blob, layer.digest)
        })
        .collect();
    let root = tmp.path().join("root");
    std::thread::scope(|s| {
        for (_, blob, digest) in &layers {
            let root = &root;
            s.spawn(move || unpack_layer(blob, digest, root).unwrap());
        }
    });
    for (prefix, _, _) in &layers {
        assert_eq!(tree(&root.join(prefix.strip_prefix("/").unwrap())), tree(prefix));
    }
}

#[test]
fn verify_file_checks_digest_and_size() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("blob");
    fs::write(&f, b"hello").unwrap();
    verify_file(&f, &Digest::of(b"hello"), Some(5)).unwrap();
    assert!(verify_file(&f, &Digest::of(b"hello"), Some(6)).is_err());
    let err = verify_file(&f, &Digest::of(b"hellO"), None).unwrap_err();
    assert!(err.downcast_ref::<DigestMismatch>().is_some(), "{err:#}");
}

#[test]
fn corrupted_or_truncated_blobs_extract_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = make_prefix(&tmp.path().join("src"), "c-1-cccc");
    let blob = tmp.path().join("c.tar.gz");
    let layer = pack_prefix(&prefix, &blob, &PackOptions::default()).unwrap();
    let good = fs::read(&blob).unwrap();

    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x01;
    let truncated = good[..good.len() - 100].to_vec();
    for (what, bytes) in [("flipped", flipped), ("truncated", truncated)] {
        let bad = tmp.path().join(what);
        fs::write(&bad, &bytes).unwrap();
        let root = tmp.path().join(format!("root-{what}"));
        fs::create_dir(&root).unwrap();
        let err = unpack_layer(&bad, &layer.digest, &root).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(&layer.digest.to_string()), "{what}: {msg}");
        assert!(
            err.chain().any(|e| e.downcast_ref::<DigestMismatch>().is_some()),
            "{what}: {msg}"
        );
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0, "{what}: nothing extracted");
    }
}

/// One raw tar entry, with names written as-is (the tar crate's setters refuse `..`).
struct Raw<'a> {
    kind: EntryType,
    name: &'a str,
    link: &'a str,
    data: &'a [u8],
}

fn raw(kind: EntryType, name: &'static str) -> Raw<'static> {
    Raw {
        kind,
        name,
        link: "",
        data: b"",
    }
}

fn link(kind: EntryType, name: &'static str, target: &'static str) -> Raw<'static> {
    Raw {
        kind,
        name,
        link: target,
        data: b"",
    }
}

fn file(name: &'static str, data: &'static [u8]) -> Raw<'static> {
    Raw {
        kind: EntryType::Regular,
        name,
        link: "",
        data,
    }
}

/// Writes a gzipped tar of `entries` (after an optional PAX path override for the last
/// one) and returns its path and digest.
fn craft(dir: &Path, name: &str, entries: &[Raw], pax_path: Option<&str>) -> (PathBuf, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    for (i, e) in entries.iter().enumerate() {
        if i + 1 == entries.len()
            && let Some(p) = pax_path
        {
            tar.append_pax_extensions([("path", p.as_bytes())]).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(e.kind);
        h.set_mode(if e.kind == EntryType::Directory { 0o755 } else { 0o644 });
        h.set_size(e.data.len() as u64);
        h.set_mtime(0);
        h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        h.set_cksum();
        tar.append(&h, e.data).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let bytes = gz.finish().unwrap();
    let path = dir.join(format!("{name}.tar.gz"));
    fs::write(&path, &bytes).unwrap();
    (path, Digest::of(&bytes))
}

/// Unpacks a crafted layer into a fresh root (holding `before`), expects the refusal and
/// checks the root is unchanged.
fn refused(name: &str, entries: &[Raw], pax_path: Option<&str>, before: impl Fn(&Path)) -> (Refusal, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (blob, digest) = craft(tmp.path(), name, entries, pax_path);
    let root = tmp.path().join("root");
    fs::create_dir(&root).unwrap();
    before(&root);
    let snapshot = tree(&root);
    let err = unpack_layer(&blob, &digest, &root).expect_err(name);
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&digest.to_string()),
        "{name}: message names the layer: {msg}"
    );
    assert_eq!(tree(&root), snapshot, "{name}: root unchanged");
    let refusal = err
        .chain()
        .find_map(|e| e.downcast_ref::<UnsafeMember>())
        .unwrap_or_else(|| panic!("{name}: not an UnsafeMember: {msg}"));
    assert!(msg.contains(&refusal.member), "{name}: {msg}");
    (refusal.reason.clone(), refusal.member.clone())
}

fn nothing(_: &Path) {}

#[test]
fn refuses_absolute_and_parent_paths() {
    let (r, m) = refused("abs", &[file("/etc/evil", b"x")], None, nothing);
    assert_eq!((r, m.as_str()), (Refusal::AbsolutePath, "/etc/evil"));
    let (r, _) = refused("dotdot", &[file("../evil", b"x")], None, nothing);
    assert_eq!(r, Refusal::ParentDir);
    let (r, _) = refused(
        "inner-dotdot",
        &[raw(EntryType::Directory, "a"), file("a/../../evil", b"x")],
        None,
        nothing,
    );
    assert_eq!(r, Refusal::ParentDir);
    // A PAX `path` record overrides the header name; it is checked too.
    let (r, m) = refused(
        "pax",
        &[file("a/ok", b"x"), file("innocent", b"x")],
        Some("../../pax-evil"),
        nothing,
    );
    assert_eq!((r, m.as_str()), (Refusal::ParentDir, "../../pax-evil"));
}

#[test]
fn refuses_symlinks_that_leave_the_root() {
    let (r, m) = refused(
        "up",
        &[
            raw(EntryType::Directory, "d"),
            link(EntryType::Symlink, "d/up", "../../outside"),
        ],
        None,
        nothing,
    );
    assert_eq!(
        (r, m.as_str()),
        (Refusal::SymlinkEscapes("../../outside".into()), "d/up")
    );
    let (r, _) = refused("abs-up", &[link(EntryType::Symlink, "l", "/../etc")], None, nothing);
    assert_eq!(r, Refusal::SymlinkEscapes("/../etc".into()));
    // Lexically `q/..` is the root, but q is a link to the root itself: the kernel would
    // go one level above it.
    let (r, m) = refused(
        "chain",
        &[
            link(EntryType::Symlink, "q", "."),
            link(EntryType::Symlink, "p", "q/.."),
        ],
        None,
        nothing,
    );
    assert_eq!((r, m.as_str()), (Refusal::SymlinkEscapes("q/..".into()), "p"));
    // Through a symlink already in the root.
    let (r, _) = refused("via-root", &[link(EntryType::Symlink, "x", "up/etc")], None, |root| {
        symlink("..", root.join("up")).unwrap()
    });
    assert_eq!(r, Refusal::SymlinkEscapes("up/etc".into()));
    let (r, _) = refused(
        "loop",
        &[link(EntryType::Symlink, "a", "b"), link(EntryType::Symlink, "b", "a/c")],
        None,
        nothing,
    );
    assert_eq!(r, Refusal::SymlinkLoop("b".into()));
}

#[test]
fn accepts_symlinks_inside_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let entries = [
        raw(EntryType::Directory, "opt/"),
        raw(EntryType::Directory, "opt/p/"),
        link(EntryType::Symlink, "opt/p/abs", "/opt/p/real"),
        link(EntryType::Symlink, "opt/p/rel", "../p/./real"),
        link(EntryType::Symlink, "opt/p/dangling", "nowhere/yet"),
        file("opt/p/real", b"data"),
    ];
    let (blob, digest) = craft(tmp.path(), "ok", &entries, None);
    let root = tmp.path().join("root");
    unpack_layer(&blob, &digest, &root).unwrap();
    assert_eq!(fs::read(root.join("opt/p/rel")).unwrap(), b"data");
    assert_eq!(fs::read_link(root.join("opt/p/abs")).unwrap(), Path::new("/opt/p/real"));
}

#[test]
fn refuses_writing_through_symlinks() {
    let (r, m) = refused(
        "through",
        &[
            raw(EntryType::Directory, "sub"),
            link(EntryType::Symlink, "a", "sub"),
            file("a/f", b"x"),
        ],
        None,
        nothing,
    );
    assert_eq!((r, m.as_str()), (Refusal::ThroughSymlink("a".into()), "a/f"));
    let (r, _) = refused(
        "through-abs",
        &[link(EntryType::Symlink, "t", "/tmp"), file("t/f", b"x")],
        None,
        nothing,
    );
    assert_eq!(r, Refusal::ThroughSymlink("t".into()));
    // A symlink in the root is not followed when the layer is moved into place.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_path_buf();
    let (r, _) = refused(
        "root-link",
        &[raw(EntryType::Directory, "opt/"), file("opt/f", b"x")],
        None,
        |root| symlink(&target, root.join("opt")).unwrap(),
    );
    assert_eq!(r, Refusal::ThroughSymlink("opt".into()));
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written through the root's symlink"
    );
    let (r, _) = refused("replace-dir", &[file("d", b"x")], None, |root| {
        fs::create_dir(root.join("d")).unwrap()
    });
    assert_eq!(r, Refusal::Conflict("d".into()));
    // Conflicts are found before anything moves: `a` (sorted first) is not put in place.
    let (r, _) = refused(
        "late-conflict",
        &[raw(EntryType::Directory, "a/"), file("a/new", b"x"), file("z", b"x")],
        None,
        |root| fs::create_dir(root.join("z")).unwrap(),
    );
    assert_eq!(r, Refusal::Conflict("z".into()));
}

#[test]
fn refuses_hard_links_out_of_the_layer() {
    let (r, m) = refused("hl-abs", &[link(EntryType::Link, "h", "/etc/passwd")], None, nothing);
    assert_eq!((r, m.as_str()), (Refusal::HardLinkOutside("/etc/passwd".into()), "h"));
    let (r, _) = refused("hl-up", &[link(EntryType::Link, "h", "../x")], None, nothing);
    assert_eq!(r, Refusal::HardLinkOutside("../x".into()));
    let (r, _) = refused(
        "hl-missing",
        &[link(EntryType::Link, "h", "later"), file("later", b"x")],
        None,
        nothing,
    );
    assert_eq!(r, Refusal::HardLinkOutside("later".into()));
    let (r, _) = refused(
        "hl-symlink",
        &[
            link(EntryType::Symlink, "s", "/etc/passwd"),
            link(EntryType::Link, "h", "s"),
        ],
        None,
        nothing,
    );
    assert_eq!(r, Refusal::HardLinkOutside("s".into()));
    let (r, _) = refused(
        "hl-root-file",
        &[link(EntryType::Link, "h", "existing")],
        None,
        |root| fs::write(root.join("existing"), b"x").unwrap(),
    );
    assert_eq!(r, Refusal::HardLinkOutside("existing".into()));
}

#[test]
fn refuses_devices_and_fifos() {
    let (r, _) = refused(
        "chr",
        &[file("ok", b"x"), raw(EntryType::Char, "dev/null")],
        None,
        nothing,
    );
    assert_eq!(r, Refusal::Device);
    let (r, _) = refused("blk", &[raw(EntryType::Block, "sda")], None, nothing);
    assert_eq!(r, Refusal::Device);
    let (r, m) = refused("fifo", &[raw(EntryType::Fifo, "pipe")], None, nothing);
    assert_eq!((r, m.as_str()), (Refusal::Fifo, "pipe"));
}
