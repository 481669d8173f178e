//! `stackci index` on a layout: restore the tags `index.json` lost, never move one.
//!
//! The rule:
//! - an entry of `index.json` whose manifest is still stored is kept as it is, so a tag is
//!   never rolled back to an older manifest (a re-pushed package leaves its old manifest
//!   behind as an unreferenced blob);
//! - an entry whose manifest is gone is dropped;
//! - a stackci manifest (`dev.stackci.tag` annotation) whose tag is missing from the index
//!   restores it; when several carry the tag, the most recently written object wins, and
//!   between equally recent ones the larger digest, so every run picks the same one.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::time::SystemTime;

use anyhow::Result;

use super::{LayoutMirror, blob_key};
use crate::digest::Digest;
use crate::mirror::store::ObjectStore;
use crate::spec::{Descriptor, Index, Manifest};

/// A stored manifest that names a tag.
struct Candidate {
    modified: Option<SystemTime>,
    desc: Descriptor,
}

impl Candidate {
    /// Ordering key: newer wins, then the larger digest.
    fn rank(&self) -> (Option<SystemTime>, &Digest) {
        (self.modified, &self.desc.digest)
    }
}

impl<S: ObjectStore> LayoutMirror<S> {
    /// Applies the module's rule to `index.json` and returns the number of tags it then holds.
    /// Stale temporary files of killed writers are removed first.
    pub(super) fn rebuild_index(&self) -> Result<usize> {
        self.store.remove_stale_temporaries();
        let (present, candidates) = self.scan()?;
        let tags = Cell::new(0);
        self.update_index(|index| {
            let before = index.clone();
            index.manifests.retain(|d| present.contains(&d.digest));
            for (tag, desc) in &candidates {
                if index.find(tag).is_none() {
                    index.set(tag, desc.clone());
                }
            }
            tags.set(tag_count(index));
            *index != before
        })?;
        Ok(tags.get())
    }

    /// Every stored blob's digest, and for each tag named by a stackci manifest, the
    /// descriptor of its best candidate.
    fn scan(&self) -> Result<(BTreeSet<Digest>, BTreeMap<String, Descriptor>)> {
        let mut present = BTreeSet::new();
        let mut best: BTreeMap<String, Candidate> = BTreeMap::new();
        for object in self.store.list("blobs/sha256/")? {
            let Some(digest) = object
                .key
                .strip_prefix("blobs/sha256/")
                .and_then(|hex| Digest::from_hex(hex).ok())
            else {
                continue;
            };
            present.insert(digest.clone());
            let Some((tag, desc)) = self.package_manifest(&digest)? else {
                continue;
            };
            let candidate = Candidate {
                modified: object.modified,
                desc,
            };
            match best.get(&tag) {
                Some(held) if held.rank() >= candidate.rank() => {}
                _ => {
                    best.insert(tag, candidate);
                }
            }
        }
        Ok((present, best.into_iter().map(|(t, c)| (t, c.desc)).collect()))
    }

    /// The tag and descriptor of blob `digest` when it is a stackci package manifest.
    fn package_manifest(&self, digest: &Digest) -> Result<Option<(String, Descriptor)>> {
        let Some(mut reader) = self.store.open(&blob_key(digest))? else {
            return Ok(None);
        };
        let mut first = [0u8; 1];
        if reader.read(&mut first)? != 1 || first[0] != b'{' {
            return Ok(None);
        }
        drop(reader);
        let Ok(bytes) = self.read_document(digest) else {
            return Ok(None);
        };
        let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) else {
            return Ok(None);
        };
        let Some(tag) = manifest.annotations.get(crate::spec::TAG_ANNOTATION) else {
            return Ok(None);
        };
        let desc = Descriptor {
            media_type: manifest
                .media_type
                .clone()
                .unwrap_or_else(|| crate::spec::MANIFEST_MEDIA_TYPE.into()),
            digest: digest.clone(),
            size: bytes.len() as u64,
            annotations: Default::default(),
            extra: Default::default(),
        };
        Ok(Some((tag.clone(), desc)))
    }
}

/// The number of distinct tags in `index`.
fn tag_count(index: &Index) -> usize {
    index.tags().collect::<BTreeSet<_>>().len()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::mirror::Mirror;
    use crate::mirror::fs::FsStore;

    /// Stores a package manifest for `tag` (made distinct by `note`), written at `when`.
    fn plant(dir: &std::path::Path, tag: &str, note: &str, when: SystemTime) -> Digest {
        let bytes = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::spec::MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": "x", "digest": Digest::of(b"c").to_string(), "size": 1},
            "layers": [],
            "annotations": {(crate::spec::TAG_ANNOTATION): tag, "note": note},
        }))
        .unwrap();
        let digest = Digest::of(&bytes);
        let path = dir.join(blob_key(&digest));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(when)
            .unwrap();
        digest
    }

    #[test]
    fn missing_tags_come_back_newest_first_and_present_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let old = plant(dir.path(), "p-1-x", "old", now - Duration::from_secs(3600));
        let new = plant(dir.path(), "p-1-x", "new", now);
        let same_a = plant(dir.path(), "q-1-y", "a", now);
        let same_b = plant(dir.path(), "q-1-y", "b", now);
        let m = LayoutMirror::new(FsStore::new(dir.path()));
        assert_eq!(m.reindex().unwrap(), 2);
        let index = m.read_index().unwrap();
        assert_eq!(index.find("p-1-x").unwrap().digest, new);
        assert_eq!(index.find("q-1-y").unwrap().digest, same_a.max(same_b));

        // An entry whose manifest is present is never moved, even to a newer one.
        m.update_index(|i| {
            i.set(
                "p-1-x",
                Descriptor {
                    digest: old.clone(),
                    ..index.find("p-1-x").unwrap().clone()
                },
            )
        })
        .unwrap();
        assert_eq!(m.reindex().unwrap(), 2);
        assert_eq!(m.read_index().unwrap().find("p-1-x").unwrap().digest, old);
    }
}
