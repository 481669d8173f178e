//! `stackci mirror verify`: every tag (index entry) resolves to a manifest whose bytes match
//! its digest, and every blob a manifest names exists with the right digest and size.
//!
//! Each manifest and blob is checked once however many tags share it, `jobs` at a time; a
//! blob is read in full and hashed as it streams (never held in memory), or with `quick`
//! only looked up. Problems are collected, not stopped at: the report names each bad tag,
//! manifest and blob, with the tags that reach it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use anyhow::Result;
use serde::Serialize;

use super::graph::{self, Node};
use crate::digest::{Digest, Hasher};
use crate::mirror::{Mirror, probe};
use crate::spec::REF_NAME;

/// How [`verify`] checks.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    /// Manifests and blobs checked at once (at least 1). Default 8.
    pub jobs: usize,
    /// Only check that blobs exist, without reading them. Default: read and hash every blob.
    pub quick: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { jobs: 8, quick: false }
    }
}

/// One thing wrong with the mirror.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `tag`, `manifest` or `blob`.
    pub kind: &'static str,
    /// The manifest's or blob's digest (a tag whose manifest cannot be found has its digest).
    pub digest: Option<Digest>,
    /// The tags that reach it (sorted).
    pub tags: Vec<String>,
    /// What is wrong.
    pub problem: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The mirror checked.
    pub mirror: String,
    /// Tags (index entries) checked.
    pub tags: usize,
    /// Distinct manifests read.
    pub manifests: usize,
    /// Distinct blobs checked.
    pub blobs: usize,
    /// Their total size, as the manifests state it.
    pub bytes: u64,
    /// Whether blobs were only looked up (`--quick`).
    pub quick: bool,
    /// Everything wrong, blobs by digest after tags and manifests.
    pub problems: Vec<Problem>,
}

impl Report {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// An entry point into the mirror: a tag (or an untagged index entry) and its manifest.
struct Root {
    name: String,
    digest: Digest,
    /// The size the index entry states, when there is one.
    size: Option<u64>,
}

/// A manifest to look at: the tag reaching it, its digest, the size its parent states, and
/// the outcome of reading it.
type Pending = (String, Digest, Option<u64>, Result<Option<Node>>);

/// Checks `mirror`; see the module docs. Errors only when the mirror cannot be listed at all.
pub fn verify(mirror: &dyn Mirror, opts: &VerifyOptions) -> Result<Report> {
    let roots = roots(mirror, opts.jobs)?;
    let mut problems = Vec::new();
    let mut manifests: BTreeMap<Digest, Option<Node>> = BTreeMap::new();
    let mut reached_by: BTreeMap<Digest, BTreeSet<String>> = BTreeMap::new();
    // Blob digest -> (size the first manifest naming it states, tags reaching it).
    let mut blobs: BTreeMap<Digest, (u64, BTreeSet<String>)> = BTreeMap::new();

    // Root manifests, read `jobs` at a time.
    let read = crate::parallel::try_map(&roots, opts.jobs, |r| Ok(graph::read_node(mirror, &r.digest)))?;
    let mut pending: Vec<Pending> = roots
        .into_iter()
        .zip(read)
        .map(|(r, node)| (r.name, r.digest, r.size, node))
        .collect();
    while let Some((name, digest, size, node)) = pending.pop() {
        reached_by.entry(digest.clone()).or_default().insert(name.clone());
        if manifests.contains_key(&digest) {
            continue;
        }
        let node = match node {
            Ok(Some(node)) => node,
            Ok(None) => {
                problems.push(problem("manifest", &digest, &name, "missing".into()));
                manifests.insert(digest, None);
                continue;
            }
            Err(e) => {
                problems.push(problem("manifest", &digest, &name, format!("{e:#}")));
                manifests.insert(digest, None);
                continue;
            }
        };
        if let Some(size) = size.filter(|&s| s != node.bytes.len() as u64) {
            problems.push(problem(
                "manifest",
                &digest,
                &name,
                format!("{} bytes, but the index entry says {size}", node.bytes.len()),
            ));
        }
        for child in &node.refs.manifests {
            let read = graph::read_node(mirror, &child.digest);
            pending.push((name.clone(), child.digest.clone(), Some(child.size), read));
        }
        for blob in &node.refs.blobs {
            blobs
                .entry(blob.digest.clone())
                .or_insert_with(|| (blob.size, BTreeSet::new()))
                .1
                .insert(name.clone());
        }
        manifests.insert(digest, Some(node));
    }
    // Tags reaching a bad manifest through an index are named with it.
    for p in &mut problems {
        if let Some(tags) = p.digest.as_ref().and_then(|d| reached_by.get(d)) {
            p.tags = tags.iter().cloned().collect();
        }
    }

    let list: Vec<(&Digest, &(u64, BTreeSet<String>))> = blobs.iter().collect();
    let checked = crate::parallel::try_map(&list, opts.jobs, |(digest, (size, _))| {
        Ok(check_blob(mirror, digest, *size, opts.quick))
    })?;
    for ((digest, (_, tags)), outcome) in list.iter().zip(checked) {
        if let Err(what) = outcome {
            problems.push(Problem {
                kind: "blob",
                digest: Some((*digest).clone()),
                tags: tags.iter().cloned().collect(),
                problem: what,
            });
        }
    }
    Ok(Report {
        mirror: mirror.location(),
        tags: reached_by.values().flatten().collect::<BTreeSet<_>>().len(),
        manifests: manifests.len(),
        blobs: blobs.len(),
        bytes: blobs.values().map(|(s, _)| s).sum(),
        quick: opts.quick,
        problems,
    })
}

fn problem(kind: &'static str, digest: &Digest, tag: &str, what: String) -> Problem {
    Problem {
        kind,
        digest: Some(digest.clone()),
        tags: vec![tag.to_string()],
        problem: what,
    }
}

/// The tags (and untagged index entries of a layout) to start from.
fn roots(mirror: &dyn Mirror, jobs: usize) -> Result<Vec<Root>> {
    if let Some(layout) = probe::layout(mirror) {
        return Ok(layout
            .index()?
            .manifests
            .into_iter()
            .map(|d| Root {
                name: d
                    .annotations
                    .get(REF_NAME)
                    .cloned()
                    .unwrap_or_else(|| format!("(untagged {})", d.digest)),
                digest: d.digest,
                size: Some(d.size),
            })
            .collect());
    }
    Ok(graph::tag_digests(mirror, jobs)?
        .into_iter()
        .map(|(name, digest)| Root {
            name,
            digest,
            size: None,
        })
        .collect())
}

/// `Err(what is wrong)` unless the blob exists (and, unless `quick`, hashes to its digest
/// with `size` bytes).
fn check_blob(mirror: &dyn Mirror, digest: &Digest, size: u64, quick: bool) -> std::result::Result<(), String> {
    match mirror.has_blob(digest) {
        Ok(true) => {}
        Ok(false) => return Err("missing".into()),
        Err(e) => return Err(format!("cannot be checked: {e:#}")),
    }
    if quick {
        return Ok(());
    }
    let mut reader = mirror.open_blob(digest).map_err(|e| format!("cannot be read: {e:#}"))?;
    let mut hasher = Hasher::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot be read: {e}")),
        }
        if crate::cancel::is_cancelled() {
            return Err("not checked: interrupted".into());
        }
    }
    let (got, len) = hasher.finish();
    if got != *digest {
        return Err(format!("corrupt: its {len} bytes hash to {got}"));
    }
    if len != size {
        return Err(format!("{len} bytes, but the manifest says {size}"));
    }
    Ok(())
}
