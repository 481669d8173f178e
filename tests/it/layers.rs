//! Layers end to end: pack a prefix, unpack it under a root, and refuse crafted hostile
//! tarballs without leaving anything behind; package layers confined to their prefix,
//! checked against their digest, diff_id and a size cap in one pass.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use stackci::digest::{Digest, DigestMismatch};
use stackci::layer::pack::{PackOptions, pack_prefix};
use stackci::layer::stream::{DEFAULT_MAX_LAYER_SIZE, DiffIdMismatch, LayerTooLarge};
use stackci::layer::unpack::{LayerCheck, Refusal, UnsafeMember, unpack, unpack_layer, verify_file, verify_layer};
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
    unpack_layer(&tmp.path().join("a.tar.gz"), &la.descriptor.digest, &root).unwrap();
    unpack_layer(&tmp.path().join("b.tar.gz"), &lb.descriptor.digest, &root).unwrap();
    // Unpacking again is harmless (files are replaced, directories merged).
    unpack_layer(&tmp.path().join("a.tar.gz"), &la.descriptor.digest, &root).unwrap();

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
            (prefix, blob, layer.descriptor.digest)
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
        let err = unpack_layer(&bad, &layer.descriptor.digest, &root).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(&layer.descriptor.digest.to_string()), "{what}: {msg}");
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

// ---- Package layers: confined to their prefix, checked in one pass ----

/// The prefix of the package whose layer the tests below unpack.
const PREFIX: &str = "/opt/stackci/p-1.0-hash";

/// The store state directory (receipts; staging directories go here too).
const STATE: &str = "opt/stackci/.stackci";

fn package_check(blob: &Path, digest: &Digest) -> LayerCheck {
    LayerCheck {
        digest: digest.clone(),
        size: Some(fs::metadata(blob).unwrap().len()),
        diff_id: None,
        prefix: Some(PathBuf::from(PREFIX)),
        max_size: DEFAULT_MAX_LAYER_SIZE,
    }
}

/// A root holding a system file, another package and the store's receipts, as a build
/// host does.
fn host_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("usr/bin/cc"), b"the real cc").unwrap();
    fs::create_dir_all(root.join("opt/stackci/q-1.0-hash/bin")).unwrap();
    fs::write(root.join("opt/stackci/q-1.0-hash/bin/q"), b"q").unwrap();
    fs::create_dir_all(root.join(STATE).join("layers")).unwrap();
    root
}

/// Unpacks a crafted layer of the package at [`PREFIX`] into a host root, and also verifies
/// it without a root; expects both to refuse it the same way, the root (staging included)
/// unchanged. Returns the refusal and the member.
fn refused_in_prefix(name: &str, entries: &[Raw]) -> (Refusal, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (blob, digest) = craft(tmp.path(), name, entries, None);
    let root = host_root(tmp.path());
    let snapshot = tree(&root);
    let check = package_check(&blob, &digest);
    let err = unpack(fs::File::open(&blob).unwrap(), &check, "test", &root, &root.join(STATE)).expect_err(name);
    let msg = format!("{err:#}");
    assert!(msg.contains(&digest.to_string()), "{name}: names the layer: {msg}");
    assert_eq!(tree(&root), snapshot, "{name}: root unchanged, no staging left");
    let refusal = err
        .chain()
        .find_map(|e| e.downcast_ref::<UnsafeMember>())
        .unwrap_or_else(|| panic!("{name}: not an UnsafeMember: {msg}"));
    assert!(
        msg.contains(&format!("`{}`", refusal.member)),
        "{name}: names the member: {msg}"
    );
    let verified = verify_layer(fs::File::open(&blob).unwrap(), &check, "test").expect_err(name);
    let again = verified
        .chain()
        .find_map(|e| e.downcast_ref::<UnsafeMember>())
        .unwrap_or_else(|| panic!("{name}: verify_layer: {verified:#}"));
    assert_eq!(
        (&again.reason, &again.member),
        (&refusal.reason, &refusal.member),
        "{name}"
    );
    (refusal.reason.clone(), refusal.member.clone())
}

/// The parents of [`PREFIX`], the prefix and a file in it: a well-formed start.
fn good_start() -> Vec<Raw<'static>> {
    vec![
        raw(EntryType::Directory, "opt"),
        raw(EntryType::Directory, "opt/stackci"),
        raw(EntryType::Directory, "opt/stackci/p-1.0-hash"),
        raw(EntryType::Directory, "opt/stackci/p-1.0-hash/bin"),
        file("opt/stackci/p-1.0-hash/bin/ok", b"fine"),
    ]
}

fn with(mut entries: Vec<Raw<'static>>, last: Raw<'static>) -> Vec<Raw<'static>> {
    entries.push(last);
    entries
}

#[test]
fn a_packed_prefix_unpacks_confined_to_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let prefix = make_prefix(&src, "a-1.0-aaaa");
    let blob = tmp.path().join("a.tar.gz");
    let packed = pack_prefix(&prefix, &blob, &PackOptions::default()).unwrap();
    let root = tmp.path().join("root");
    let check = LayerCheck {
        digest: packed.descriptor.digest.clone(),
        size: Some(packed.descriptor.size),
        diff_id: Some(packed.diff_id.clone()),
        prefix: Some(prefix.clone()),
        max_size: DEFAULT_MAX_LAYER_SIZE,
    };
    let size = verify_layer(fs::File::open(&blob).unwrap(), &check, "test").unwrap();
    assert!(size > 100_000, "the uncompressed size is returned: {size}");
    let staging_parent = root.join("state");
    unpack(fs::File::open(&blob).unwrap(), &check, "test", &root, &staging_parent).unwrap();
    assert_eq!(tree(&root.join(prefix.strip_prefix("/").unwrap())), tree(&prefix));
    assert_eq!(fs::read_dir(&staging_parent).unwrap().count(), 0, "staging removed");
}

#[test]
fn package_layers_write_only_inside_their_prefix() {
    let outside = Refusal::OutsidePrefix(PREFIX.into());
    // Another package's prefix.
    let (r, m) = refused_in_prefix(
        "other-package",
        &with(good_start(), file("opt/stackci/q-1.0-hash/bin/q", b"evil")),
    );
    assert_eq!((r, m.as_str()), (outside.clone(), "opt/stackci/q-1.0-hash/bin/q"));
    // A receipt planted in the store's state directory.
    let receipt = "opt/stackci/.stackci/layers/0000000000000000000000000000000000000000000000000000000000000000";
    let (r, m) = refused_in_prefix(
        "receipt",
        &with(good_start(), file(receipt, b"/opt/stackci/q-1.0-hash\n")),
    );
    assert_eq!((r, m.as_str()), (outside.clone(), receipt));
    let (r, _) = refused_in_prefix("state-dir", &with(good_start(), raw(EntryType::Directory, STATE)));
    assert_eq!(r, outside);
    // A system file, relative to the root.
    let (r, m) = refused_in_prefix("cc", &with(good_start(), file("usr/bin/cc", b"evil cc")));
    assert_eq!((r, m.as_str()), (outside.clone(), "usr/bin/cc"));
    let (r, _) = refused_in_prefix("first", &[file("./usr/bin/cc", b"evil cc")]);
    assert_eq!(r, outside);
    // Directories outside count too; a name that merely starts like the prefix is outside.
    let (r, _) = refused_in_prefix("etc", &with(good_start(), raw(EntryType::Directory, "etc")));
    assert_eq!(r, outside);
    let (r, m) = refused_in_prefix("sibling", &with(good_start(), file("opt/stackci/p-1.0-hashX/f", b"x")));
    assert_eq!((r, m.as_str()), (outside, "opt/stackci/p-1.0-hashX/f"));
}

#[test]
fn the_prefix_and_its_parents_may_only_be_directories() {
    let must = Refusal::MustBeDirectory(PREFIX.into());
    let (r, m) = refused_in_prefix(
        "file-parent",
        &[raw(EntryType::Directory, "opt"), file("opt/stackci", b"x")],
    );
    assert_eq!((r, m.as_str()), (must.clone(), "opt/stackci"));
    let (r, _) = refused_in_prefix("link-parent", &[link(EntryType::Symlink, "opt", "/tmp")]);
    assert_eq!(r, must);
    let (r, m) = refused_in_prefix(
        "link-prefix",
        &[
            raw(EntryType::Directory, "opt/stackci"),
            link(EntryType::Symlink, "opt/stackci/p-1.0-hash", "/etc"),
        ],
    );
    assert_eq!((r, m.as_str()), (must.clone(), "opt/stackci/p-1.0-hash"));
    let (r, _) = refused_in_prefix(
        "hardlink-parent",
        &with(
            good_start(),
            link(EntryType::Link, "opt", "opt/stackci/p-1.0-hash/bin/ok"),
        ),
    );
    assert_eq!(r, must);
}

#[test]
fn package_links_stay_in_the_prefix() {
    let leaves = |t: &str| Refusal::SymlinkLeavesPrefix {
        target: t.into(),
        prefix: PREFIX.into(),
    };
    for (name, target) in [
        ("passwd", "/etc/passwd"),
        ("other-package", "../../q-1.0-hash/bin/q"),
        ("other-abs", "/opt/stackci/q-1.0-hash/bin/q"),
        ("state", "../../.stackci/layers"),
        ("parent", "../.."),
    ] {
        let (r, m) = refused_in_prefix(
            name,
            &with(
                good_start(),
                link(EntryType::Symlink, "opt/stackci/p-1.0-hash/bin/x", target),
            ),
        );
        assert_eq!(
            (r, m.as_str()),
            (leaves(target), "opt/stackci/p-1.0-hash/bin/x"),
            "{name}"
        );
    }
    // A hard link to a file of the root (not of the layer).
    let (r, _) = refused_in_prefix(
        "hardlink-cc",
        &with(
            good_start(),
            link(EntryType::Link, "opt/stackci/p-1.0-hash/bin/h", "usr/bin/cc"),
        ),
    );
    assert_eq!(r, Refusal::HardLinkOutside("usr/bin/cc".into()));

    // Links that resolve inside the prefix are fine, absolute ones included.
    let tmp = tempfile::tempdir().unwrap();
    let mut entries = good_start();
    entries.extend([
        link(
            EntryType::Symlink,
            "opt/stackci/p-1.0-hash/bin/abs",
            "/opt/stackci/p-1.0-hash/bin/ok",
        ),
        link(EntryType::Symlink, "opt/stackci/p-1.0-hash/bin/rel", "ok"),
        link(
            EntryType::Symlink,
            "opt/stackci/p-1.0-hash/bin/round",
            "../../p-1.0-hash/bin/ok",
        ),
        link(EntryType::Symlink, "opt/stackci/p-1.0-hash/bin/top", ".."),
        link(
            EntryType::Link,
            "opt/stackci/p-1.0-hash/bin/hard",
            "opt/stackci/p-1.0-hash/bin/ok",
        ),
    ]);
    let (blob, digest) = craft(tmp.path(), "fine", &entries, None);
    let root = host_root(tmp.path());
    unpack(
        fs::File::open(&blob).unwrap(),
        &package_check(&blob, &digest),
        "test",
        &root,
        &root.join(STATE),
    )
    .unwrap();
    assert_eq!(
        fs::read(root.join("opt/stackci/p-1.0-hash/bin/round")).unwrap(),
        b"fine"
    );
    assert_eq!(fs::read(root.join("usr/bin/cc")).unwrap(), b"the real cc");
}

#[test]
fn the_diff_id_is_checked_in_the_same_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = make_prefix(&tmp.path().join("src"), "d-1-dddd");
    let blob = tmp.path().join("d.tar.gz");
    let packed = pack_prefix(&prefix, &blob, &PackOptions::default()).unwrap();
    let wrong = Digest::of(b"not the tar stream");
    let check = LayerCheck {
        digest: packed.descriptor.digest.clone(),
        size: Some(packed.descriptor.size),
        diff_id: Some(wrong.clone()),
        prefix: Some(prefix.clone()),
        max_size: DEFAULT_MAX_LAYER_SIZE,
    };
    let root = tmp.path().join("root");
    fs::create_dir(&root).unwrap();
    for err in [
        unpack(
            fs::File::open(&blob).unwrap(),
            &check,
            "test",
            &root,
            &root.join("state"),
        )
        .unwrap_err(),
        verify_layer(fs::File::open(&blob).unwrap(), &check, "test").unwrap_err(),
    ] {
        let msg = format!("{err:#}");
        let mismatch = err
            .chain()
            .find_map(|e| e.downcast_ref::<DiffIdMismatch>())
            .unwrap_or_else(|| panic!("not a DiffIdMismatch: {msg}"));
        assert_eq!(
            (&mismatch.layer, &mismatch.expected, &mismatch.actual),
            (&packed.descriptor.digest, &wrong, &packed.diff_id)
        );
        assert!(
            msg.contains(&packed.descriptor.digest.to_string()) && msg.contains(&wrong.to_string()),
            "{msg}"
        );
    }
    assert_eq!(
        tree(&root),
        vec![(PathBuf::from("state"), "dir 755".to_string())],
        "nothing unpacked"
    );
}

/// A gzip stream of a tar holding one file of `size` zero bytes under [`PREFIX`], written
/// without holding the file in memory.
fn zero_bomb(dir: &Path, size: u64) -> (PathBuf, Digest) {
    let path = dir.join("bomb.tar.gz");
    let gz = flate2::write::GzEncoder::new(fs::File::create(&path).unwrap(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    let name = format!("{}/zeros", &PREFIX[1..]);
    tar.append_data(&mut h, &name, std::io::Read::take(std::io::repeat(0), size))
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let digest = Digest::of(&fs::read(&path).unwrap());
    (path, digest)
}

#[test]
fn a_gzip_bomb_stops_at_the_size_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let (blob, digest) = zero_bomb(tmp.path(), 256 << 20);
    let compressed = fs::metadata(&blob).unwrap().len();
    assert!(
        compressed < 1 << 20,
        "a small blob ({compressed} bytes) expanding 256 MiB"
    );
    let root = host_root(tmp.path());
    let snapshot = tree(&root);
    let check = LayerCheck {
        max_size: 1 << 20,
        ..package_check(&blob, &digest)
    };
    let start = std::time::Instant::now();
    let err = unpack(fs::File::open(&blob).unwrap(), &check, "test", &root, &root.join(STATE)).unwrap_err();
    let too_large = err
        .chain()
        .find_map(|e| e.downcast_ref::<LayerTooLarge>())
        .unwrap_or_else(|| panic!("not a LayerTooLarge: {err:#}"));
    assert_eq!((&too_large.layer, too_large.limit), (&digest, 1 << 20));
    assert!(format!("{err:#}").contains("--max-layer-size"), "{err:#}");
    assert_eq!(tree(&root), snapshot, "nothing written, no staging left");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "stops at the cap instead of expanding everything ({:?})",
        start.elapsed()
    );
    let err = verify_layer(fs::File::open(&blob).unwrap(), &check, "test").unwrap_err();
    assert!(err.chain().any(|e| e.is::<LayerTooLarge>()), "{err:#}");
    // Under a cap it fits, it unpacks.
    let fits = LayerCheck {
        max_size: 512 << 20,
        ..check
    };
    assert!(verify_layer(fs::File::open(&blob).unwrap(), &fits, "test").unwrap() > 256 << 20);
}

#[test]
fn a_blob_longer_than_its_descriptor_is_a_digest_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let (blob, digest) = craft(tmp.path(), "ok", &good_start(), None);
    let len = fs::metadata(&blob).unwrap().len();
    let check = LayerCheck {
        size: Some(len - 1),
        ..package_check(&blob, &digest)
    };
    let err = verify_layer(fs::File::open(&blob).unwrap(), &check, "test").unwrap_err();
    let mismatch = err
        .chain()
        .find_map(|e| e.downcast_ref::<DigestMismatch>())
        .unwrap_or_else(|| panic!("{err:#}"));
    assert_eq!(mismatch.expected_size, len - 1);
}
