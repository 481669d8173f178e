//! `stackci mirror prune`: removes the package tags no kept stack needs, with what hangs off
//! them (signatures, SBOMs, referrers), and on image layouts (file, S3) the blobs no
//! remaining manifest references.
//!
//! The rules, in the order they run:
//!
//! 1. **What goes.** A tag is removed only when it is a stackci package (its shape is
//!    `<name>-<version>-<hash>` and its manifest's `dev.stackci.tag` annotation says so), no
//!    kept stack has that package, no `--keep-tag` glob matches it, no kept tag names the
//!    same manifest, and (with `--older-than`) its manifest was written before that age.
//!    Tags of other tools are never touched. What hangs off a removed manifest by name
//!    (`sha256-<hex>.sig`, `.att`, `.sbom`, the `sha256-<hex>` referrers index) goes with
//!    it, removed before it, so an interrupted prune never leaves a signature of nothing.
//! 2. **Only what was decided.** A tag is removed only while it still names the manifest the
//!    prune examined (a compare-and-swap on the index; a registry HEAD before its DELETE),
//!    so a tag re-pushed during the prune stays.
//! 3. **Blobs (layouts only).** The prune first writes a marker object
//!    (`.stackci/prune/<host>-<pid>-<n>`); the store's own clock (file mtime, S3
//!    `LastModified`) stamps it, so the start time needs no clock agreement with this host.
//!    After the tags are removed it lists the blobs, then re-reads the index. A blob is
//!    deleted only if no manifest reachable from the index references it, no manifest
//!    written after the cut-off references it, and it was itself last written before the
//!    cut-off: the prune's start minus `grace` (default 1 h, as `git gc` keeps recent loose
//!    objects). So a blob written during the prune survives it, and so do the blobs of a
//!    push that started up to `grace` before the prune and has not written its tag yet.
//!    The index is read once more right before the deletions; a tag that appeared since
//!    protects its blobs too.
//! 4. **Registries** delete manifests through the API; their storage frees the blobs when
//!    the registry's garbage collection runs, so `bytes_freed` counts none there.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::graph;
use crate::digest::Digest;
use crate::mirror::layout::LayoutOps;
use crate::mirror::{Mirror, probe};
use crate::spec::{self, TAG_ANNOTATION};

/// Largest blob read to see whether a recent blob is a manifest (as for manifests elsewhere).
const MAX_MANIFEST: u64 = 4 << 20;
/// Where prune markers live in a layout.
const MARKERS: &str = ".stackci/prune/";

/// How [`prune`] runs.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Package tags matching any of these are kept. Default: none.
    pub keep_tags: Vec<glob::Pattern>,
    /// Only remove package tags whose manifest is older than this (image layouts only).
    /// Default: any age.
    pub older_than: Option<Duration>,
    /// Blobs written less than this before the prune started are kept even when nothing
    /// references them (pushes in flight). Default: 1 hour.
    pub grace: Duration,
    /// Only report what would be removed. Default: remove.
    pub dry_run: bool,
    /// Manifests read and objects deleted at once (at least 1). Default 8.
    pub jobs: usize,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            keep_tags: Vec::new(),
            older_than: None,
            grace: Duration::from_secs(3600),
            dry_run: false,
            jobs: 8,
        }
    }
}

/// A tag the prune removed (or, dry, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedTag {
    /// The tag.
    pub tag: String,
    /// The manifest it named.
    pub digest: Digest,
    /// `package`, or `attached` (a signature, SBOM or referrers index of a removed package).
    pub kind: &'static str,
}

/// What [`prune`] did.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    /// The mirror pruned.
    pub mirror: String,
    /// True when nothing was removed (`--dry-run`).
    pub dry_run: bool,
    /// Package tags kept (a kept stack has them, or a `--keep-tag` glob matched, or they are
    /// newer than `--older-than`).
    pub kept: usize,
    /// Tags removed, what hangs off a package before the package.
    pub removed: Vec<RemovedTag>,
    /// Tags left because they named another manifest (or were gone) by the time the prune
    /// got to them: pushed again meanwhile.
    pub changed: Vec<String>,
    /// Manifests without a tag deleted (a registry's referrers of removed packages).
    pub manifests_removed: usize,
    /// Whether unreferenced blobs were swept (image layouts; registries collect their own).
    pub blobs_swept: bool,
    /// Blobs deleted (dry: that would be).
    pub blobs_removed: usize,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Unreferenced blobs kept because they were written within the grace period.
    pub blobs_recent: usize,
}

/// Prunes `mirror`, keeping every package tag in `keep` (the kept stacks' tags); see the
/// module docs for the rules.
pub fn prune(mirror: &dyn Mirror, keep: &BTreeSet<String>, opts: &PruneOptions) -> Result<PruneReport> {
    let jobs = opts.jobs.max(1);
    let layout = probe::layout(mirror);
    if opts.older_than.is_some() && layout.is_none() {
        bail!(
            "--older-than needs a file:// or s3:// mirror: a registry does not say when a tag was pushed ({})",
            mirror.location()
        );
    }
    let marker = match layout {
        Some(l) if !opts.dry_run => Some(Marker::write(l)?),
        _ => None,
    };
    let start = marker.as_ref().map_or_else(SystemTime::now, |m| m.time);
    let tags = graph::tag_digests(mirror, jobs)?;
    // Blob times answer `--older-than` only.
    let blob_times = match (layout, opts.older_than) {
        (Some(l), Some(_)) => listing(l)?,
        _ => BTreeMap::new(),
    };

    // 1. Package tags to remove.
    let kept_by_rule = |tag: &str| keep.contains(tag) || opts.keep_tags.iter().any(|g| g.matches(tag));
    let kept_digests: BTreeSet<&Digest> = tags
        .iter()
        .filter(|(t, _)| kept_by_rule(t) || !looks_like_package(t))
        .map(|(_, d)| d)
        .collect();
    let candidates: Vec<(&String, &Digest)> = tags
        .iter()
        .filter(|(t, _)| looks_like_package(t) && !kept_by_rule(t))
        .collect();
    let is_package = crate::parallel::try_map(&candidates, jobs, |(tag, digest)| {
        let bytes = mirror.get_manifest(&digest.to_string())?;
        Ok(bytes.is_some_and(|b| names_package(&b, tag)))
    })?;
    let mut kept = tags.keys().filter(|t| looks_like_package(t) && kept_by_rule(t)).count();
    let mut packages: Vec<RemovedTag> = Vec::new();
    for ((tag, digest), package) in candidates.into_iter().zip(is_package) {
        if !package {
            continue;
        }
        let recent = opts.older_than.is_some_and(|age| {
            let written = blob_times.get(digest).and_then(|b| b.modified);
            written.is_none_or(|w| w + age > SystemTime::now())
        });
        if recent || kept_digests.contains(digest) {
            kept += 1;
            continue;
        }
        packages.push(RemovedTag {
            tag: tag.clone(),
            digest: digest.clone(),
            kind: "package",
        });
    }

    // What hangs off them, by name (and off that), and through a registry's referrers API.
    let mut attached: Vec<RemovedTag> = Vec::new();
    let mut subjects: Vec<Digest> = packages.iter().map(|p| p.digest.clone()).collect();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some(d) = subjects.pop() {
        for tag in graph::attached_tags(&d) {
            if let Some(digest) = tags.get(&tag)
                && !opts.keep_tags.iter().any(|g| g.matches(&tag))
                && seen.insert(tag.clone())
            {
                subjects.push(digest.clone());
                attached.push(RemovedTag {
                    tag,
                    digest: digest.clone(),
                    kind: "attached",
                });
            }
        }
    }
    let mut untagged: BTreeSet<Digest> = BTreeSet::new();
    if layout.is_none() {
        untagged = untagged_referrers(mirror, &packages, &attached)?;
    }

    // 2. Remove: attached first, deepest first, then the packages.
    attached.reverse();
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    for t in attached.into_iter().chain(packages) {
        if opts.dry_run || mirror.delete_manifest(&t.tag, &t.digest)? {
            removed.push(t);
        } else {
            changed.push(t.tag);
        }
    }
    let mut manifests_removed = 0;
    for d in &untagged {
        if opts.dry_run || mirror.delete_manifest(&d.to_string(), d)? {
            manifests_removed += 1;
        }
    }

    // 3. Sweep.
    let mut report = PruneReport {
        mirror: mirror.location(),
        dry_run: opts.dry_run,
        kept,
        removed,
        changed,
        manifests_removed,
        blobs_swept: layout.is_some(),
        blobs_removed: 0,
        bytes_freed: 0,
        blobs_recent: 0,
    };
    if let Some(layout) = layout {
        let cutoff = start.checked_sub(opts.grace).unwrap_or(SystemTime::UNIX_EPOCH);
        let gone: BTreeSet<Digest> = if opts.dry_run {
            report.removed.iter().map(|t| t.digest.clone()).collect()
        } else {
            BTreeSet::new()
        };
        sweep(mirror, layout, cutoff, &gone, opts, &mut report)?;
    }
    drop(marker);
    Ok(report)
}

/// A listed blob.
#[derive(Debug, Clone, Copy)]
struct Listed {
    modified: Option<SystemTime>,
    size: u64,
}

/// Every blob of the layout, with when it was written and its size.
fn listing(layout: &dyn LayoutOps) -> Result<BTreeMap<Digest, Listed>> {
    Ok(layout
        .objects()
        .list("blobs/sha256/")?
        .into_iter()
        .filter_map(|o| {
            let digest = Digest::from_hex(o.key.strip_prefix("blobs/sha256/")?).ok()?;
            Some((
                digest,
                Listed {
                    modified: o.modified,
                    size: o.size,
                },
            ))
        })
        .collect())
}

/// Deletes the layout's unreferenced blobs written before `cutoff` (see the module docs).
/// With `dry_run`, counts what would go once the tags in `gone` are removed.
fn sweep(
    mirror: &dyn Mirror,
    layout: &dyn LayoutOps,
    cutoff: SystemTime,
    gone: &BTreeSet<Digest>,
    opts: &PruneOptions,
    report: &mut PruneReport,
) -> Result<()> {
    let blobs = listing(layout)?;
    let index = layout.index()?;
    let roots = |index: &crate::spec::Index| -> BTreeSet<Digest> {
        index
            .manifests
            .iter()
            .filter(|d| !gone.contains(&d.digest))
            .map(|d| d.digest.clone())
            .collect()
    };
    let mut live = reachable(mirror, roots(&index), opts.jobs)?;
    // Manifests written after the cut-off protect what they name (a push whose tag is not
    // written yet); any recent small blob might be one.
    let recent: Vec<Digest> = blobs
        .iter()
        .filter(|(d, b)| !live.contains(*d) && b.size <= MAX_MANIFEST && b.modified.is_none_or(|m| m >= cutoff))
        .map(|(d, _)| d.clone())
        .collect();
    let named = crate::parallel::try_map(&recent, opts.jobs, |d| Ok(manifest_children(mirror, d)))?;
    let extra: BTreeSet<Digest> = named.into_iter().flatten().collect();
    live.extend(reachable(mirror, extra, opts.jobs)?);

    let mut doomed: Vec<(&Digest, u64)> = Vec::new();
    for (digest, b) in &blobs {
        if live.contains(digest) {
            continue;
        }
        match b.modified {
            Some(m) if m < cutoff => doomed.push((digest, b.size)),
            _ => report.blobs_recent += 1,
        }
    }
    // A tag written since the index was read protects its blobs too.
    let again = layout.index()?;
    if again != index {
        let newer = reachable(mirror, roots(&again), opts.jobs)?;
        doomed.retain(|(d, _)| !newer.contains(*d));
    }
    if !opts.dry_run {
        crate::parallel::try_map(&doomed, opts.jobs, |(d, _)| {
            mirror
                .delete_blob(d)
                .with_context(|| format!("removing blob {d} from {}", mirror.location()))
        })?;
    }
    report.blobs_removed = doomed.len();
    report.bytes_freed = doomed.iter().map(|(_, s)| s).sum();
    Ok(())
}

/// Every digest reachable from `roots`: the manifests and everything they name, `jobs`
/// manifests read at a time. A root that is missing names nothing; one that is not a
/// manifest (or is corrupt) names nothing either, and is kept; a read that fails is an
/// error (never a reason to think a blob unreferenced).
fn reachable(mirror: &dyn Mirror, roots: BTreeSet<Digest>, jobs: usize) -> Result<BTreeSet<Digest>> {
    let mut live: BTreeSet<Digest> = BTreeSet::new();
    let mut frontier: Vec<Digest> = roots.into_iter().collect();
    while !frontier.is_empty() {
        live.extend(frontier.iter().cloned());
        let read = crate::parallel::try_map(&frontier, jobs, |d| {
            let bytes = mirror
                .get_manifest(&d.to_string())
                .or_else(|e| if is_corrupt(&e) { Ok(None) } else { Err(e) })
                .with_context(|| format!("reading manifest {d} in {}", mirror.location()))?;
            Ok(bytes.and_then(|b| spec::references(&b).ok()))
        })?;
        let mut next = Vec::new();
        for refs in read.into_iter().flatten() {
            for b in refs.blobs {
                live.insert(b.digest);
            }
            next.extend(
                refs.manifests
                    .into_iter()
                    .map(|m| m.digest)
                    .filter(|d| !live.contains(d)),
            );
        }
        next.sort();
        next.dedup();
        frontier = next;
    }
    Ok(live)
}

/// Whether reading a manifest failed because of its content (corrupt, not a document),
/// not because the store could not be read.
fn is_corrupt(e: &anyhow::Error) -> bool {
    let text = e.to_string();
    text.contains("is corrupt") || text.contains("too large for a manifest")
}

/// The digests a recent blob names when it is a manifest (best effort: a blob that cannot
/// be read or parsed names nothing; it is recent, so it is kept anyway).
fn manifest_children(mirror: &dyn Mirror, digest: &Digest) -> Vec<Digest> {
    let Ok(reader) = mirror.open_blob(digest) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    if reader.take(MAX_MANIFEST + 1).read_to_end(&mut bytes).is_err() || Digest::of(&bytes) != *digest {
        return Vec::new();
    }
    match spec::references(&bytes) {
        Ok(refs) if !refs.blobs.is_empty() || !refs.manifests.is_empty() => std::iter::once(digest.clone())
            .chain(refs.blobs.into_iter().map(|b| b.digest))
            .chain(refs.manifests.into_iter().map(|m| m.digest))
            .collect(),
        _ => Vec::new(),
    }
}

/// For a registry: the manifests without a tag that hang off removed manifests — the
/// referrers the API lists and the children of removed `sha256-<hex>` indexes.
fn untagged_referrers(
    mirror: &dyn Mirror,
    packages: &[RemovedTag],
    attached: &[RemovedTag],
) -> Result<BTreeSet<Digest>> {
    let mut out = BTreeSet::new();
    let registry = probe::registry(mirror);
    let mut api = registry.is_some();
    for t in packages.iter().chain(attached) {
        if let (true, Some(r)) = (api, registry) {
            match r.referrers(&t.digest)? {
                Some(found) => out.extend(found.into_iter().map(|d| d.digest)),
                None => api = false,
            }
        }
        let is_index = graph::is_referrers_index(&t.tag);
        if is_index && let Some(bytes) = mirror.get_manifest(&t.digest.to_string())? {
            out.extend(spec::references(&bytes)?.manifests.into_iter().map(|d| d.digest));
        }
    }
    Ok(out)
}

/// `<name>-<version>-<hash>` with a 32-character lowercase base32 hash.
fn looks_like_package(tag: &str) -> bool {
    tag.rsplit_once('-').is_some_and(|(rest, hash)| {
        rest.contains('-')
            && hash.len() == 32
            && hash
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    })
}

/// Whether manifest `bytes` carries `dev.stackci.tag: <tag>`.
fn names_package(bytes: &[u8], tag: &str) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("annotations")?.get(TAG_ANNOTATION)?.as_str().map(|t| t == tag))
        .unwrap_or(false)
}

/// The prune's marker object: written first, its store timestamp is the prune's start;
/// removed when dropped (a killed prune leaves it; it is harmless).
struct Marker<'a> {
    layout: &'a dyn LayoutOps,
    key: String,
    time: SystemTime,
}

impl<'a> Marker<'a> {
    fn write(layout: &'a dyn LayoutOps) -> Result<Marker<'a>> {
        let host = crate::env_vars::var(crate::env_vars::HOSTNAME).unwrap_or_else(|| "host".into());
        let name = format!("{host}-{}-{}", std::process::id(), fastrand::u64(..));
        let key = format!("{MARKERS}{name}");
        let store = layout.objects();
        store
            .put_bytes(&key, b"stackci mirror prune in progress\n")
            .with_context(|| format!("writing the prune marker {key} in {}", store.location()))?;
        let time = store
            .list(MARKERS)?
            .into_iter()
            .find(|o| o.key == key)
            .and_then(|o| o.modified)
            .with_context(|| format!("{} does not say when {key} was written", store.location()))?;
        Ok(Marker { layout, key, time })
    }
}

impl Drop for Marker<'_> {
    fn drop(&mut self) {
        let _ = self.layout.objects().delete(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_tags_have_a_base32_hash() {
        assert!(looks_like_package("hello-1.0-2zvmfcun5k5wr22ws37fugk3f54kbjbq"));
        assert!(looks_like_package("py-numpy-1.26.4-abcdefghijklmnopqrstuvwxyz234567"));
        assert!(!looks_like_package("hello-1.0-2ZVMFCUN5K5WR22WS37FUGK3F54KBJBQ"));
        assert!(!looks_like_package("latest"));
        assert!(!looks_like_package("x-2zvmfcun5k5wr22ws37fugk3f54kbjbq"));
        assert!(!looks_like_package("sha256-0123.sig"));
    }

    #[test]
    fn the_annotation_decides() {
        let m = br#"{"schemaVersion":2,"annotations":{"dev.stackci.tag":"a-1-x"}}"#;
        assert!(names_package(m, "a-1-x"));
        assert!(!names_package(m, "a-1-y"));
        assert!(!names_package(b"{}", "a-1-x"));
        assert!(!names_package(b"not json", "a-1-x"));
    }
}
