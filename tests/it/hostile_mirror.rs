//! A mirror others can push to: a package replaced by a hostile one (its blobs stored under
//! their true digests, so only the content gives it away) is refused by `install`, `build`,
//! `run` and `image`, naming the layer digest and the member, and nothing is written. Also:
//! manifest format checks, the `--max-layer-size` cap, and interrupted installs.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use stackci::digest::Digest;
use stackci::image::budget::limit_layers;
use stackci::image::verify::{Verified, VerifiedCache, verify_package_layers};
use stackci::image::{Image, assemble};
use stackci::layer::stream::DEFAULT_MAX_LAYER_SIZE;
use stackci::mirror::Mirror;
use stackci::mirror::open::{MirrorOptions, open};
use stackci::spec::MANIFEST_MEDIA_TYPE;

use crate::common::*;

/// A stack `one` ← `two` with an image of `one`, and `one` pushed to a file mirror.
struct Fixture {
    tmp: tempfile::TempDir,
    store: PathBuf,
    stack: PathBuf,
    mirror: PathBuf,
    url: String,
    /// `one`'s tag.
    tag: String,
}

impl Fixture {
    fn new(one_script: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let stack = write_stack(
            &tmp.path().join("s"),
            &store,
            &[
                ("one", &[], one_script),
                (
                    "two",
                    &["one"],
                    "mkdir -p \"$PREFIX/bin\"\necho two > \"$PREFIX/bin/two\"",
                ),
            ],
        );
        let mut text = fs::read_to_string(&stack).unwrap();
        text.push_str("images:\n  img:\n    base: scratch\n    packages: [one]\n");
        text.push_str("  both:\n    base: scratch\n    packages: [two]\n");
        fs::write(&stack, text).unwrap();
        let mirror = tmp.path().join("mirror");
        let url = format!("file://{}", mirror.display());
        let mut f = Fixture {
            tmp,
            store,
            stack,
            mirror,
            url,
            tag: String::new(),
        };
        ok(&mut f.cmd(&["run", "one"]));
        let plan = plan_statuses(&ok(&mut f.cmd(&["plan", "--json"])));
        f.tag = plan.iter().find(|(t, _)| t.starts_with("one-")).unwrap().0.clone();
        f
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = stackci();
        c.arg("--stack")
            .arg(&self.stack)
            .args(["--mirror", &self.url])
            .args(args);
        c
    }

    /// `one`'s install prefix.
    fn prefix(&self) -> PathBuf {
        self.store.join(&self.tag)
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    fn install(&self, extra: &[&str]) -> Output {
        let mut c = self.cmd(&[]);
        c.args(extra).args(["install", "one", "--root"]).arg(self.root());
        output(&mut c)
    }

    /// Staging directories left in a store's state directory.
    fn staging_in(state: &Path) -> Vec<String> {
        fs::read_dir(state)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(".stackci-unpack-"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A path as a layer member: absolute, without the leading `/`.
fn member(p: &Path) -> String {
    p.strip_prefix("/").unwrap().display().to_string()
}

/// What a crafted layer holds.
enum E {
    Dir(String),
    File(String, Vec<u8>),
    Link(String, String),
}

/// The directory entries of `prefix` and its ancestors, as `pack` writes them.
fn dirs_to(prefix: &Path) -> Vec<E> {
    let mut out = Vec::new();
    let mut p = PathBuf::new();
    for c in prefix.strip_prefix("/").unwrap().components() {
        p.push(c);
        out.push(E::Dir(p.display().to_string()));
    }
    out
}

/// A gzip tar of `entries` (GNU headers, long names allowed).
fn tar_gz(entries: &[E]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                tar.append_data(&mut h, p, &data[..]).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// The sha256 of a gzip blob's uncompressed content.
fn true_diff_id(gz: &[u8]) -> Digest {
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(gz).read_to_end(&mut tar).unwrap();
    Digest::of(&tar)
}

/// Replaces package `tag` in the file mirror at `dir` the way anyone with write access
/// could: its own layer becomes `layer`, its config's last `diff_id` becomes `diff_id`
/// (default: the true one), `edit` may change the manifest, every blob is stored under its
/// true digest and the tag is repointed. Returns the layer's digest.
fn tamper(dir: &Path, tag: &str, layer: &[u8], diff_id: Option<Digest>, edit: impl FnOnce(&mut Value)) -> Digest {
    let m = open(
        &format!("file://{}", dir.display()),
        Path::new("/"),
        &MirrorOptions::default(),
    )
    .unwrap();
    let put = |bytes: &[u8]| {
        let digest = Digest::of(bytes);
        m.put_blob(&digest, &bytes.to_vec()).unwrap();
        digest
    };
    let mut manifest: Value = serde_json::from_slice(&m.get_manifest(tag).unwrap().unwrap()).unwrap();
    let config_digest: Digest = manifest["config"]["digest"].as_str().unwrap().parse().unwrap();
    let mut config = Vec::new();
    m.open_blob(&config_digest).unwrap().read_to_end(&mut config).unwrap();
    let mut config: Value = serde_json::from_slice(&config).unwrap();

    let layer_digest = put(layer);
    let diff_id = diff_id.unwrap_or_else(|| true_diff_id(layer));
    let ids = config["rootfs"]["diff_ids"].as_array_mut().unwrap();
    *ids.last_mut().unwrap() = Value::String(diff_id.to_string());
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = put(&config);
    manifest["config"]["digest"] = Value::String(config_digest.to_string());
    manifest["config"]["size"] = config.len().into();
    let own = manifest["layers"].as_array_mut().unwrap().last_mut().unwrap();
    own["digest"] = Value::String(layer_digest.to_string());
    own["size"] = layer.len().into();
    edit(&mut manifest);
    m.put_manifest(tag, MANIFEST_MEDIA_TYPE, &serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    layer_digest
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the command failed with exit code `code`, its stderr naming each of `names`.
fn refused(what: &str, out: &Output, code: i32, names: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{what}: {err}");
    for n in names {
        assert!(err.contains(n), "{what}: stderr does not name `{n}`:\n{err}");
    }
}

/// Nothing of `one` under the install root: no prefix, no receipt, no staging.
fn nothing_installed(f: &Fixture) {
    let store = f.root().join(member(&f.store));
    let left: Vec<_> = fs::read_dir(&store)
        .map(|d| d.map(|e| e.unwrap().file_name()).filter(|n| n != ".stackci").collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "install left {left:?}");
    let state = store.join(".stackci");
    assert_eq!(Fixture::staging_in(&state), Vec::<String>::new(), "staging left");
    let receipts = fs::read_dir(state.join("layers")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(receipts, 0, "a receipt was written");
}

#[test]
fn a_layer_writing_outside_its_prefix_is_refused_by_install_build_run_and_image() {
    let f = Fixture::new("mkdir -p \"$PREFIX/bin\"\necho one > \"$PREFIX/bin/one\"");
    let victim = f.tmp.path().join("victim");
    fs::write(&victim, "untouched").unwrap();
    let prefix = f.prefix();
    let mut entries = dirs_to(&prefix);
    entries.push(E::File(format!("{}/bin/one", member(&prefix)), b"evil one".to_vec()));
    entries.push(E::File(member(&victim), b"pwned".to_vec()));
    let layer = tamper(&f.mirror, &f.tag, &tar_gz(&entries), None, |_| {});
    let names = [
        layer.to_string(),
        format!("`{}`", member(&victim)),
        "outside the package prefix".into(),
    ];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();

    refused("install", &f.install(&[]), 2, &names);
    assert!(!f.root().join(member(&victim)).exists());
    nothing_installed(&f);

    // A CI job: `one` comes from the mirror into the real store, with `/` as the root. The
    // legitimate `one` built earlier stays as it was.
    refused("build", &output(&mut f.cmd(&["build", "two"])), 2, &names);
    assert_eq!(fs::read_to_string(prefix.join("bin/one")).unwrap(), "one\n");
    assert_eq!(Fixture::staging_in(&f.store.join(".stackci")), Vec::<String>::new());

    let run = output(&mut f.cmd(&["--json", "run"]));
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let two = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "two")
        .unwrap();
    assert_eq!(two["outcome"], "failed");
    let detail = two["detail"].as_str().unwrap();
    for n in &names {
        assert!(detail.contains(n), "run: `{n}` not in {detail}");
    }

    let out = f.tmp.path().join("out");
    let image = output(&mut f.cmd(&["image", "img", "--to", &format!("oci-layout:{}", out.display())]));
    refused("image", &image, 2, &names);
    assert!(!out.exists(), "image wrote {}", out.display());

    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
    assert_eq!(fs::read_to_string(prefix.join("bin/one")).unwrap(), "one\n");
}

#[test]
fn a_layer_cannot_plant_receipts_or_point_into_the_store_state() {
    let f = Fixture::new("mkdir -p \"$PREFIX/bin\"\necho one > \"$PREFIX/bin/one\"");
    let prefix = f.prefix();
    let receipt = f.store.join(".stackci/layers").join("0".repeat(64));
    let mut entries = dirs_to(&prefix);
    entries.push(E::File(
        member(&receipt),
        format!("{}\n", prefix.display()).into_bytes(),
    ));
    let layer = tamper(&f.mirror, &f.tag, &tar_gz(&entries), None, |_| {});
    refused(
        "install",
        &f.install(&[]),
        2,
        &[&layer.to_string(), &member(&receipt), "outside the package prefix"],
    );
    nothing_installed(&f);
    refused("build", &output(&mut f.cmd(&["build", "two"])), 2, &[&member(&receipt)]);
    assert!(!receipt.exists(), "a receipt was planted in the store");

    // A symlink from the prefix into the state directory.
    let mut entries = dirs_to(&prefix);
    entries.push(E::Link(format!("{}/state", member(&prefix)), "../.stackci".into()));
    let layer = tamper(&f.mirror, &f.tag, &tar_gz(&entries), None, |_| {});
    refused(
        "install",
        &f.install(&[]),
        2,
        &[
            &layer.to_string(),
            &format!("{}/state", member(&prefix)),
            "leaves the package prefix",
        ],
    );
    nothing_installed(&f);
}

#[test]
fn a_diff_id_that_does_not_match_the_layer_is_refused() {
    let f = Fixture::new("mkdir -p \"$PREFIX/bin\"\necho one > \"$PREFIX/bin/one\"");
    let prefix = f.prefix();
    let mut entries = dirs_to(&prefix);
    entries.push(E::File(format!("{}/bin/one", member(&prefix)), b"other one".to_vec()));
    let wrong = Digest::of(b"something else");
    let layer = tamper(&f.mirror, &f.tag, &tar_gz(&entries), Some(wrong.clone()), |_| {});
    let names = [layer.to_string(), wrong.to_string(), "diff_id".into()];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    refused("install", &f.install(&[]), 2, &names);
    nothing_installed(&f);
    let out = f.tmp.path().join("out");
    refused(
        "image",
        &output(&mut f.cmd(&["image", "img", "--to", &format!("oci-layout:{}", out.display())])),
        2,
        &names,
    );
    assert!(!out.exists());
}

#[test]
fn package_manifests_must_be_oci_schema_2_with_oci_media_types() {
    let f = Fixture::new("mkdir -p \"$PREFIX/bin\"\necho one > \"$PREFIX/bin/one\"");
    let prefix = f.prefix();
    let mut entries = dirs_to(&prefix);
    entries.push(E::File(format!("{}/bin/one", member(&prefix)), b"one\n".to_vec()));
    let layer = tar_gz(&entries);
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 5] = [
        (
            "schema 1",
            |m| m["schemaVersion"] = 1.into(),
            "schemaVersion is 1, expected 2",
        ),
        (
            "zstd layer",
            |m| {
                let own = m["layers"].as_array_mut().unwrap().last_mut().unwrap();
                own["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd".into();
            },
            "mediaType `application/vnd.oci.image.layer.v1.tar+zstd`",
        ),
        (
            "docker manifest",
            |m| m["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json".into(),
            "manifest mediaType is `application/vnd.docker.distribution.manifest.v2+json`",
        ),
        (
            "no media type",
            |m| {
                m.as_object_mut().unwrap().remove("mediaType");
            },
            "the manifest has no mediaType",
        ),
        (
            "config type",
            |m| m["config"]["mediaType"] = "application/octet-stream".into(),
            "has mediaType `application/octet-stream`, expected `application/vnd.oci.image.config.v1+json`",
        ),
    ];
    let m = open(&f.url, Path::new("/"), &MirrorOptions::default()).unwrap();
    let original = m.get_manifest(&f.tag).unwrap().unwrap();
    for (what, edit, says) in cases {
        m.put_manifest(&f.tag, MANIFEST_MEDIA_TYPE, &original).unwrap();
        tamper(&f.mirror, &f.tag, &layer, None, edit);
        let names = [f.tag.as_str(), &f.mirror.display().to_string(), says].map(str::to_string);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        refused(what, &f.install(&[]), 2, &names);
        nothing_installed(&f);
        refused(what, &output(&mut f.cmd(&["build", "two"])), 2, &names);
    }
}

#[test]
fn a_gzip_bomb_is_refused_above_max_layer_size() {
    let f = Fixture::new("mkdir -p \"$PREFIX/bin\"\necho one > \"$PREFIX/bin/one\"");
    let prefix = f.prefix();
    let mut entries = dirs_to(&prefix);
    entries.push(E::File(format!("{}/zeros", member(&prefix)), vec![0; 16 << 20]));
    let bomb = tar_gz(&entries);
    assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
    let layer = tamper(&f.mirror, &f.tag, &bomb, None, |_| {});
    let says = [
        layer.to_string(),
        "expands to more than 1048576 bytes".into(),
        "--max-layer-size".into(),
    ];
    let says: Vec<&str> = says.iter().map(String::as_str).collect();
    refused("--max-layer-size", &f.install(&["--max-layer-size", "1M"]), 2, &says);
    nothing_installed(&f);
    let mut build = f.cmd(&["build", "two"]);
    build.env("STACKCI_MAX_LAYER_SIZE", "1MiB");
    refused("STACKCI_MAX_LAYER_SIZE", &output(&mut build), 2, &says);
    let out = f.tmp.path().join("out");
    let mut image = f.cmd(&["--max-layer-size", "1M", "image", "img", "--to"]);
    image.arg(format!("oci-layout:{}", out.display()));
    refused("image", &output(&mut image), 2, &says);
    assert!(!out.exists());
    // Within the default cap the same layer installs.
    ok(f.cmd(&[]).args(["install", "one", "--root"]).arg(f.root()));
    assert_eq!(
        fs::metadata(f.root().join(member(&prefix)).join("zeros"))
            .unwrap()
            .len(),
        16 << 20
    );
}

/// A package `one` with a large incompressible file, so an install takes a while.
fn big_fixture() -> Fixture {
    Fixture::new("mkdir -p \"$PREFIX\"\nhead -c 96M /dev/urandom > \"$PREFIX/data\"")
}

/// Starts `install one` and waits until its staging directory exists; returns the child
/// and the store's state directory under the root.
fn install_until_staging(f: &Fixture) -> (Child, PathBuf) {
    let state = f.root().join(member(&f.store)).join(".stackci");
    let child = f
        .cmd(&["install", "one", "--root"])
        .arg(f.root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while Fixture::staging_in(&state).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no staging directory appeared"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    (child, state)
}

#[test]
fn ctrl_c_during_install_leaves_no_staging_directory() {
    let f = big_fixture();
    let (child, state) = install_until_staging(&f);
    // SAFETY: signals a child we started and have not waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert_eq!(Fixture::staging_in(&state), Vec::<String>::new());
    nothing_installed(&f);
}

#[test]
fn a_killed_install_leaves_staging_that_the_next_install_removes() {
    let f = big_fixture();
    let (mut child, state) = install_until_staging(&f);
    child.kill().unwrap();
    child.wait().unwrap();
    let stale = Fixture::staging_in(&state);
    assert_eq!(stale.len(), 1, "kill -9 leaves the staging directory: {stale:?}");
    let pid = child.id().to_string();
    assert!(stale[0].contains(&format!("-{pid}-")), "named with the pid: {stale:?}");

    ok(f.cmd(&["install", "one", "--root"]).arg(f.root()));
    assert_eq!(
        Fixture::staging_in(&state),
        Vec::<String>::new(),
        "the stale staging is removed"
    );
    assert_eq!(
        fs::metadata(f.root().join(member(&f.prefix())).join("data"))
            .unwrap()
            .len(),
        96 << 20
    );
}

/// A mirror that counts the blobs opened through it.
struct Counting {
    inner: Box<dyn Mirror>,
    opened: AtomicUsize,
}

impl Mirror for Counting {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn has_blob(&self, digest: &Digest) -> anyhow::Result<bool> {
        self.inner.has_blob(digest)
    }
    fn open_blob(&self, digest: &Digest) -> anyhow::Result<Box<dyn Read + Send>> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        self.inner.open_blob(digest)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn put_blob(&self, digest: &Digest, source: &dyn stackci::mirror::BlobSource) -> anyhow::Result<()> {
        self.inner.put_blob(digest, source)
    }
    fn get_manifest(&self, tag: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.inner.get_manifest(tag)
    }
    fn put_manifest(&self, tag: &str, media_type: &str, manifest: &[u8]) -> anyhow::Result<Digest> {
        self.inner.put_manifest(tag, media_type, manifest)
    }
    fn list_tags(&self) -> anyhow::Result<std::collections::BTreeSet<String>> {
        self.inner.list_tags()
    }
}

#[test]
fn image_reads_each_package_layer_once_then_trusts_the_verified_cache() {
    let f = Fixture::new("mkdir -p \"$PREFIX/bin\"\necho one > \"$PREFIX/bin/one\"");
    ok(&mut f.cmd(&["run"]));
    let counting = Arc::new(Counting {
        inner: open(&f.url, Path::new("/"), &MirrorOptions::default()).unwrap(),
        opened: AtomicUsize::new(0),
    });
    let stack = stackci::stack::load(&f.stack).unwrap();
    let image = assemble(
        &stack,
        "both",
        Image::scratch(&stack.platform),
        counting.clone(),
        0,
        &stackci::trust::Trust::none(),
    )
    .unwrap();
    let cache = VerifiedCache::new(&f.tmp.path().join("state"));
    let reads = |image: &Image, max: u64| {
        let before = counting.opened.load(Ordering::SeqCst);
        let result = verify_package_layers(image, &cache, max);
        (result, counting.opened.load(Ordering::SeqCst) - before)
    };
    let (cold, opened) = reads(&image, DEFAULT_MAX_LAYER_SIZE);
    assert_eq!((cold.unwrap(), opened), (Verified { read: 2, cached: 0 }, 2));
    let (warm, opened) = reads(&image, DEFAULT_MAX_LAYER_SIZE);
    assert_eq!(
        (warm.unwrap(), opened),
        (Verified { read: 0, cached: 2 }, 0),
        "a warm check reads no blob"
    );

    // The same blob under another prefix, with another diff_id, or under a cap below its
    // size is another question: it is read again (and refused).
    let mut moved = image.clone();
    moved.layers[0].prefix = Some(f.store.join("elsewhere"));
    let (r, opened) = reads(&moved, DEFAULT_MAX_LAYER_SIZE);
    assert_eq!(opened, 1);
    assert!(format!("{:#}", r.unwrap_err()).contains("outside the package prefix"));
    let mut relabelled = image.clone();
    relabelled.layers[0].layer.diff_id = Digest::of(b"x");
    let (r, opened) = reads(&relabelled, DEFAULT_MAX_LAYER_SIZE);
    assert_eq!(opened, 1);
    assert!(format!("{:#}", r.unwrap_err()).contains("diff_id"));
    let (r, opened) = reads(&image, 100);
    // Layers are checked one per core, so a second worker may have opened the other layer
    // before the first refusal; either way the cached results do not answer a smaller cap.
    assert!((1..=2).contains(&opened), "a smaller cap reads again: opened {opened}");
    assert!(format!("{:#}", r.unwrap_err()).contains("expands to more than 100 bytes"));
    let (warm, opened) = reads(&image, DEFAULT_MAX_LAYER_SIZE);
    assert_eq!(
        (warm.unwrap(), opened),
        (Verified { read: 0, cached: 2 }, 0),
        "failures are not cached"
    );

    // Merging layers under a layer budget reads them and holds them to the same rule.
    let scratch = f.tmp.path().join("scratch");
    let merged = limit_layers(&image, 1, &scratch, DEFAULT_MAX_LAYER_SIZE).unwrap();
    assert_eq!(merged.layers.len(), 1);
    let err = limit_layers(&moved, 1, &scratch, DEFAULT_MAX_LAYER_SIZE).err().unwrap();
    assert!(format!("{err:#}").contains("outside the package prefix"), "{err:#}");
    let err = limit_layers(&relabelled, 1, &scratch, DEFAULT_MAX_LAYER_SIZE)
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("diff_id"), "{err:#}");

    // The command keeps its cache in the stack's state directory.
    let out = f.tmp.path().join("out");
    ok(&mut f.cmd(&["image", "both", "--to", &format!("oci-layout:{}", out.display())]));
    let verified = f.stack.parent().unwrap().join(".stackci/verified/v1");
    let entries = fs::read_dir(&verified).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        entries,
        2,
        "one cache directory per package layer in {}",
        verified.display()
    );
}
