//! A directory as an [`ObjectStore`]: the `file://` mirror.
//!
//! Objects are written to a temporary file in the same directory and renamed into place,
//! so readers never see partial content. Conditional writes hold an exclusive lock on
//! `<root>/.stackci-lock` while they compare versions and rename, which makes the
//! read-compare-write of `index.json` atomic across processes. Files get the mode
//! `File::create` would give (`0666` minus the umask). A blob handed over by its writer (a
//! freshly packed layer, [`super::BlobSource::movable`]) is renamed into place when it is on
//! the mirror's file system, and copied otherwise. Temporary files left by a killed
//! writer are removed by the next writer or `stackci index` ([`temp`] has the rule).

mod temp;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use anyhow::{Context, Result};

use super::BlobSource;
use super::store::{Listed, ObjectStore, Precondition, Version};
use crate::digest::Digest;
use crate::lockfile::Lock;

const LOCK: &str = ".stackci-lock";

/// An object store rooted at a local directory.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    /// Stale temporary files are removed once, before this store's first write.
    cleaned: Arc<Once>,
}

/// Directories of the layout that hold temporary files (every key's parent).
const TEMP_DIRS: [&str; 2] = ["", "blobs/sha256"];

impl FsStore {
    /// A store at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsStore {
            root: root.into(),
            cleaned: Arc::new(Once::new()),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The file holding `key`, when it exists (lets readers use it in place).
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        Some(self.path(key)).filter(|p| p.is_file())
    }

    /// Creates a temporary file, named after this process, in the directory that will hold `key`.
    fn temp_for(&self, key: &str) -> Result<tempfile::NamedTempFile> {
        self.cleaned.call_once(|| {
            self.remove_stale_temporaries();
        });
        let dest = self.path(key);
        let dir = dest.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        crate::newfile::temp_in(dir, &temp::name_prefix())
            .with_context(|| format!("creating a temporary file in {}", dir.display()))
    }

    /// Moves the handed-over `file` to `key` by rename, with the mode a new file gets and
    /// synced like any other object; `Ok(false)` when it is on another file system.
    fn move_into(&self, file: &Path, key: &str) -> Result<bool> {
        let dest = self.path(key);
        let dir = dest.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
        f.set_permissions(fs::Permissions::from_mode(new_file_mode()))
            .and_then(|()| f.sync_all())
            .with_context(|| format!("syncing {}", file.display()))?;
        match fs::rename(file, &dest) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("renaming {} to {}", file.display(), dest.display())),
        }
    }

    fn write_atomic(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path(key);
        let mut tmp = self.temp_for(key)?;
        tmp.write_all(bytes)
            .and_then(|_| tmp.as_file().sync_all())
            .with_context(|| format!("writing {}", dest.display()))?;
        tmp.persist(&dest)
            .with_context(|| format!("renaming into {}", dest.display()))?;
        Ok(())
    }
}

/// The mode `File::create` gives: `0666` minus the process umask (read from `/proc`, which
/// unlike `umask(2)` does not change it; `0644` where `/proc` does not say).
fn new_file_mode() -> u32 {
    static MODE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| {
        let umask = fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o022);
        0o666 & !umask
    })
}

fn version_of(bytes: &[u8]) -> Version {
    Version(Digest::of(bytes).hex())
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

impl ObjectStore for FsStore {
    fn location(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key);
        path.try_exists()
            .with_context(|| format!("checking {}", path.display()))
    }

    fn open(&self, key: &str) -> Result<Option<Box<dyn Read + Send>>> {
        let path = self.path(key);
        match File::open(&path) {
            Ok(f) => Ok(Some(Box::new(f))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("opening {}", path.display())),
        }
    }

    fn put(&self, key: &str, source: &dyn BlobSource) -> Result<()> {
        let dest = self.path(key);
        if let Some(file) = source.path().filter(|_| source.movable())
            && self.move_into(file, key)?
        {
            return Ok(());
        }
        let mut tmp = self.temp_for(key)?;
        // Not `fs::copy`: it would give the blob the source's mode instead of the umask's.
        let what = source
            .path()
            .map_or_else(|| "a blob".to_string(), |p| p.display().to_string());
        let mut src = source.open()?;
        io::copy(&mut src, tmp.as_file_mut()).with_context(|| format!("copying {what} to {}", dest.display()))?;
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("syncing {}", dest.display()))?;
        tmp.persist(&dest)
            .with_context(|| format!("renaming into {}", dest.display()))?;
        Ok(())
    }

    fn put_bytes(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.write_atomic(key, bytes)
    }

    fn read_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        Ok(read_optional(&self.path(key))?.map(|b| {
            let v = version_of(&b);
            (b, v)
        }))
    }

    fn write_if(&self, key: &str, bytes: &[u8], pre: &Precondition) -> Result<bool> {
        fs::create_dir_all(&self.root).with_context(|| format!("creating {}", self.root.display()))?;
        let _lock = Lock::acquire(&self.root.join(LOCK), &format!("the index of {}", self.root.display()))?;
        let current = read_optional(&self.path(key))?.map(|b| version_of(&b));
        let ok = match (pre, &current) {
            (Precondition::Absent, None) => true,
            (Precondition::Matches(want), Some(have)) => want == have,
            _ => false,
        };
        if ok {
            self.write_atomic(key, bytes)?;
        }
        // Dropping `_lock` releases it.
        Ok(ok)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }

    fn remove_stale_temporaries(&self) -> usize {
        TEMP_DIRS
            .iter()
            .map(|dir| temp::remove_stale(&self.root.join(dir)))
            .sum()
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let dir = self.path(prefix);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(temp::PREFIX) {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(m) => m,
                // Renamed or removed since the directory was read: not part of this listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("reading {}", entry.path().display())),
            };
            if meta.is_file() {
                keys.push(Listed {
                    key: format!("{prefix}{name}"),
                    modified: meta.modified().ok(),
                    size: meta.len(),
                });
            }
        }
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn conditional_writes() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStore::new(dir.path());
        assert!(s.write_if("index.json", b"1", &Precondition::Absent).unwrap());
        assert!(!s.write_if("index.json", b"2", &Precondition::Absent).unwrap());
        let (bytes, v) = s.read_versioned("index.json").unwrap().unwrap();
        assert_eq!(bytes, b"1");
        assert!(
            s.write_if("index.json", b"3", &Precondition::Matches(v.clone()))
                .unwrap()
        );
        assert!(!s.write_if("index.json", b"4", &Precondition::Matches(v)).unwrap());
        assert_eq!(s.read_versioned("index.json").unwrap().unwrap().0, b"3");
    }

    #[test]
    fn a_handed_over_file_is_renamed_into_place_with_the_usual_mode() {
        use std::os::unix::fs::PermissionsExt;

        use crate::mirror::FileSource;
        let dir = tempfile::tempdir().unwrap();
        let s = FsStore::new(dir.path().join("m"));
        let kept = dir.path().join("kept");
        fs::write(&kept, b"copied").unwrap();
        s.put("blobs/sha256/a", &FileSource::new(&kept, 6)).unwrap();
        assert!(kept.exists(), "a file that is not handed over stays");

        let given = dir.path().join("given");
        fs::write(&given, b"moved").unwrap();
        fs::set_permissions(&given, fs::Permissions::from_mode(0o600)).unwrap();
        let inode = fs::metadata(&given).unwrap().ino();
        s.put("blobs/sha256/b", &FileSource::hand_over(&given, 5)).unwrap();
        assert!(!given.exists(), "renamed, not copied");
        let stored = fs::metadata(dir.path().join("m/blobs/sha256/b")).unwrap();
        assert_eq!(stored.ino(), inode);
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let mode = |m: &fs::Metadata| m.permissions().mode() & 0o777;
        assert_eq!(mode(&stored), mode(&fs::metadata(&plain).unwrap()));

        // From another file system (when /dev/shm is one), the store copies instead.
        if let Ok(shm) = tempfile::tempdir_in("/dev/shm") {
            let far = shm.path().join("far");
            fs::write(&far, b"far away").unwrap();
            s.put("blobs/sha256/c", &FileSource::hand_over(&far, 8)).unwrap();
            assert_eq!(fs::read(dir.path().join("m/blobs/sha256/c")).unwrap(), b"far away");
        }
    }

    #[test]
    fn concurrent_index_updates_lose_nothing() {
        use crate::mirror::layout::LayoutMirror;
        use crate::spec::Descriptor;
        let dir = tempfile::tempdir().unwrap();
        let m = std::sync::Arc::new(LayoutMirror::new(FsStore::new(dir.path())));
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let d = Descriptor {
                            media_type: "x".into(),
                            digest: Digest::of(format!("{t}-{i}").as_bytes()),
                            size: 1,
                            annotations: Default::default(),
                            extra: Default::default(),
                        };
                        m.update_index(|idx| idx.set(&format!("t{t}-{i}"), d.clone())).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(m.read_index().unwrap().tags().count(), 160);
    }
}
