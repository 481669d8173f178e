//! `stackci mirror copy SRC DST [PKG...]`: packages, with their signatures and referrers,
//! from any mirror to any other (file, S3, registry), digests preserved.
//!
//! Manifests are copied byte for byte, so every digest (and every signature over one)
//! stays valid. The order makes a copy resumable: blobs first (`jobs` at a time, each
//! skipped when the destination has it, mounted when both mirrors are repositories of one
//! registry), then the manifests an index lists, then the tagged manifests, subjects
//! before what hangs off them (signatures, SBOMs), tags last (an image layout gets them all
//! in one index update). An interrupted copy leaves blobs without tags, never a tag
//! without its content, and a rerun skips every tag that already names the same manifest.
//!
//! What hangs off a manifest is found by name ([`graph::attached_tags`]) and, on a source
//! registry with the referrers API, through the API. A destination without that API gets
//! the referrers tag schema: the `sha256-<hex>` index, merged with the one it has.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::graph::{self, Closure, Node, attached_to};
use crate::digest::Digest;
use crate::mirror::copy::{Copied, copy_blobs};
use crate::mirror::{Mirror, probe};
use crate::package::{LABEL_PREFIX, read_package};
use crate::spec::{self, Descriptor, INDEX_MEDIA_TYPE, Index};

/// How [`copy`] runs.
#[derive(Debug, Clone, Copy)]
pub struct CopyOptions {
    /// Blobs (and tags on a registry) copied at once, at least 1. Default 8.
    pub jobs: usize,
    /// Only find out what would be copied; write nothing. Default: copy.
    pub dry_run: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            jobs: 8,
            dry_run: false,
        }
    }
}

/// What to copy.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every tag of the source.
    All,
    /// These package tags with every package they depend on (from the `dev.stackci.deps`
    /// label of each config), and whatever hangs off them.
    Packages(Vec<String>),
}

/// What happened to one tag.
#[derive(Debug, Clone, Serialize)]
pub struct TagCopy {
    /// The tag.
    pub tag: String,
    /// The manifest it names in the source (for `merged`, the merged index written).
    pub digest: Digest,
    /// `copied` (new in the destination), `replaced` (the destination's tag named another
    /// manifest), `merged` (a referrers index combined with the destination's),
    /// `present` (already the same), or with `--dry-run` what would happen.
    pub action: &'static str,
}

/// Blob counts of a copy.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlobCounts {
    /// Transferred (read from the source, written to the destination).
    pub copied: usize,
    /// Mounted from the source repository (same registry); no bytes moved.
    pub mounted: usize,
    /// Already in the destination.
    pub present: usize,
    /// Bytes transferred (dry run: that would be).
    pub bytes_copied: u64,
}

/// What [`copy`] did (or, dry, would do).
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// The source mirror.
    pub source: String,
    /// The destination mirror.
    pub destination: String,
    /// True when nothing was written.
    pub dry_run: bool,
    /// Each tag, subjects before what hangs off them.
    pub tags: Vec<TagCopy>,
    /// Manifests written without a tag (an index's children, referrers).
    pub manifests: usize,
    /// The blobs.
    pub blobs: BlobCounts,
}

/// A tag to write and what it needs.
struct Planned {
    tag: String,
    node: Node,
    action: &'static str,
}

/// Copies `selection` from `src` to `dst`; see the module docs.
pub fn copy(src: &dyn Mirror, dst: &dyn Mirror, selection: &Selection, opts: &CopyOptions) -> Result<CopyReport> {
    let jobs = opts.jobs.max(1);
    let src_tags = graph::tag_digests(src, jobs).with_context(|| format!("listing {}", src.location()))?;
    let dst_tags = graph::tag_digests(dst, jobs).with_context(|| format!("listing {}", dst.location()))?;
    let wanted = select(src, &src_tags, &dst_tags, selection)?;

    // The manifests to copy, read `jobs` at a time (a remote source answers slowly).
    let missing: Vec<&Digest> = wanted
        .iter()
        .filter(|(t, d)| dst_tags.get(t) != Some(d))
        .map(|(_, d)| d)
        .collect();
    let read = crate::parallel::try_map(&missing, jobs, |d| graph::read_node(src, d))?;
    let mut nodes: BTreeMap<Digest, Node> = read.into_iter().flatten().map(|n| (n.digest.clone(), n)).collect();

    let mut closure = Closure::default();
    let mut planned = Vec::new();
    let mut tags = Vec::new();
    for (tag, digest) in &wanted {
        let theirs = dst_tags.get(tag);
        if theirs == Some(digest) {
            tags.push(TagCopy {
                tag: tag.clone(),
                digest: digest.clone(),
                action: "present",
            });
            continue;
        }
        let node = nodes
            .remove(digest)
            .or_else(|| closure.manifests.iter().find(|n| n.digest == *digest).cloned())
            .with_context(|| {
                format!(
                    "tag `{tag}` names manifest {digest}, which is not in {}",
                    src.location()
                )
            })?;
        closure.add_node(src, node.clone(), &format!("tag `{tag}`"))?;
        let is_referrers_index = graph::is_referrers_index(tag);
        let (node, action) = match theirs {
            None => (node, "copied"),
            Some(theirs) if is_referrers_index => {
                let merged = merge_referrers(dst, tag, theirs, node)?;
                if merged.digest == *theirs {
                    // The destination's index lists everything already.
                    tags.push(TagCopy {
                        tag: tag.clone(),
                        digest: theirs.clone(),
                        action: "present",
                    });
                    continue;
                }
                (merged, "merged")
            }
            Some(_) => (node, "replaced"),
        };
        tags.push(TagCopy {
            tag: tag.clone(),
            digest: node.digest.clone(),
            action,
        });
        planned.push(Planned {
            tag: tag.clone(),
            node,
            action,
        });
    }
    // Referrers the source's API knows of, for manifests being copied.
    let api = referrers_from_api(src, dst, &mut closure, &planned)?;

    // Blobs first.
    let blobs: Vec<(&dyn Mirror, &Descriptor)> = closure.blobs.values().map(|d| (src, d)).collect();
    let mut counts = BlobCounts::default();
    if opts.dry_run {
        for (_, d) in &blobs {
            if dst.has_blob(&d.digest)? {
                counts.present += 1;
            } else {
                counts.copied += 1;
                counts.bytes_copied += d.size;
            }
        }
    } else {
        let copied = copy_blobs(&blobs, dst, jobs)?;
        for ((_, d), how) in blobs.iter().zip(copied) {
            match how {
                Copied::Present => counts.present += 1,
                Copied::Mounted => counts.mounted += 1,
                Copied::Transferred => {
                    counts.copied += 1;
                    counts.bytes_copied += d.size;
                }
            }
        }
    }

    // Then manifests without a tag (children before the indexes listing them), then tags.
    let tagged: BTreeSet<&Digest> = planned
        .iter()
        .map(|p| &p.node.digest)
        .chain(wanted.iter().map(|(_, d)| d))
        .collect();
    let mut untagged = 0;
    for node in closure.manifests.iter().filter(|n| !tagged.contains(&n.digest)) {
        if dst.manifest_digest(&node.digest.to_string())?.is_none() {
            untagged += 1;
            if !opts.dry_run {
                dst.put_manifest(&node.digest.to_string(), &node.refs.media_type, &node.bytes)
                    .with_context(|| format!("copying manifest {} to {}", node.digest, dst.location()))?;
            }
        }
    }
    if !opts.dry_run {
        write_tags(dst, &planned, jobs)?;
        for (tag, index) in api {
            write_index(dst, &tag, &index)?;
        }
    }
    Ok(CopyReport {
        source: src.location(),
        destination: dst.location(),
        dry_run: opts.dry_run,
        tags,
        manifests: untagged,
        blobs: counts,
    })
}

/// The tags to copy with their digests, subjects before what hangs off them.
fn select(
    src: &dyn Mirror,
    src_tags: &BTreeMap<String, Digest>,
    dst_tags: &BTreeMap<String, Digest>,
    selection: &Selection,
) -> Result<Vec<(String, Digest)>> {
    let mut chosen: BTreeMap<String, Digest> = BTreeMap::new();
    match selection {
        Selection::All => chosen.clone_from(src_tags),
        Selection::Packages(roots) => {
            let mut queue: VecDeque<(String, Option<String>)> = roots.iter().map(|t| (t.clone(), None)).collect();
            while let Some((tag, needed_by)) = queue.pop_front() {
                if chosen.contains_key(&tag) {
                    continue;
                }
                let Some(digest) = src_tags.get(&tag) else {
                    match needed_by {
                        // The destination has it already: a PR mirror's deps live in main.
                        Some(_) if dst_tags.contains_key(&tag) => continue,
                        Some(by) => bail!(
                            "`{tag}` (a dependency of `{by}`) is in neither {} nor {}",
                            src.location(),
                            "the destination"
                        ),
                        None => bail!("`{tag}` is not in {}", src.location()),
                    }
                };
                chosen.insert(tag.clone(), digest.clone());
                // A tag that is not a stackci package (an image, another tool's) is copied as
                // it is; only packages name dependencies (for any platform, so no platform check).
                let image = match read_package(src, &tag) {
                    Ok(found) => found.with_context(|| format!("`{tag}` vanished from {}", src.location()))?,
                    Err(_) => continue,
                };
                if let Some(deps) = image.config.config.labels.get(&format!("{LABEL_PREFIX}deps")) {
                    for dep in deps.split(',').filter(|d| !d.is_empty()) {
                        queue.push_back((dep.to_string(), Some(tag.clone())));
                    }
                }
            }
            // And whatever hangs off what is chosen, and off that, by name.
            let mut subjects: Vec<Digest> = chosen.values().cloned().collect();
            while let Some(d) = subjects.pop() {
                for tag in graph::attached_tags(&d) {
                    if let Some(digest) = src_tags.get(&tag)
                        && chosen.insert(tag, digest.clone()).is_none()
                    {
                        subjects.push(digest.clone());
                    }
                }
            }
        }
    }
    // Order: a tag after the tags whose manifest it hangs off (depth in that chain).
    let by_digest: BTreeMap<&Digest, &String> = chosen.iter().map(|(t, d)| (d, t)).collect();
    let depth = |tag: &str| {
        let mut depth = 0;
        let mut at = tag.to_string();
        while let Some(subject) = attached_to(&at) {
            depth += 1;
            match by_digest.get(&subject) {
                Some(t) if depth < 16 => at = (*t).clone(),
                _ => break,
            }
        }
        depth
    };
    let mut ordered: Vec<(usize, String, Digest)> =
        chosen.iter().map(|(t, d)| (depth(t), t.clone(), d.clone())).collect();
    ordered.sort();
    Ok(ordered.into_iter().map(|(_, t, d)| (t, d)).collect())
}

/// The source's referrers index `node` for `tag`, combined with the destination's (digest
/// `theirs`): the destination's entries, then the source's it lacks.
fn merge_referrers(dst: &dyn Mirror, tag: &str, theirs: &Digest, node: Node) -> Result<Node> {
    let Some(other) = graph::read_node(dst, theirs)? else {
        return Ok(node);
    };
    let mut index: Index = serde_json::from_slice(&other.bytes)
        .with_context(|| format!("`{tag}` in {} is not an image index", dst.location()))?;
    let have: BTreeSet<Digest> = index.manifests.iter().map(|d| d.digest.clone()).collect();
    index.manifests.extend(
        node.refs
            .manifests
            .iter()
            .filter(|d| !have.contains(&d.digest))
            .cloned(),
    );
    let bytes = spec::to_bytes(&index);
    Ok(Node {
        digest: Digest::of(&bytes),
        refs: spec::references(&bytes)?,
        bytes,
    })
}

/// For a source registry with the referrers API: adds the referrers of every manifest being
/// copied to `closure`, and returns the `sha256-<hex>` indexes to write when the destination
/// has no such API (merged with what it has).
fn referrers_from_api(
    src: &dyn Mirror,
    dst: &dyn Mirror,
    closure: &mut Closure,
    planned: &[Planned],
) -> Result<Vec<(String, Index)>> {
    let Some(registry) = probe::registry(src) else {
        return Ok(Vec::new());
    };
    let mut indexes = Vec::new();
    let mut dst_has_api: Option<bool> = None;
    for p in planned {
        let Some(found) = registry.referrers(&p.node.digest)? else {
            // No referrers API on the source: the tag schema carried everything.
            return Ok(indexes);
        };
        if found.is_empty() {
            continue;
        }
        for d in &found {
            closure.add(src, &d.digest, &format!("a referrer of `{}`", p.tag))?;
        }
        let has_api = match dst_has_api {
            Some(v) => v,
            None => {
                let v = match probe::registry(dst) {
                    Some(r) => r.referrers(&p.node.digest)?.is_some(),
                    None => false,
                };
                *dst_has_api.insert(v)
            }
        };
        if !has_api {
            let tag = crate::mirror::referrers::referrers_tag(&p.node.digest);
            let mut index = match dst.get_manifest(&tag)? {
                Some(bytes) => serde_json::from_slice(&bytes)
                    .with_context(|| format!("`{tag}` in {} is not an image index", dst.location()))?,
                None => Index::empty(),
            };
            let have: BTreeSet<Digest> = index.manifests.iter().map(|d| d.digest.clone()).collect();
            index
                .manifests
                .extend(found.into_iter().filter(|d| !have.contains(&d.digest)));
            indexes.push((tag, index));
        }
    }
    Ok(indexes)
}

/// Writes the referrers index `index` as `tag` (its children are already there).
fn write_index(dst: &dyn Mirror, tag: &str, index: &Index) -> Result<()> {
    let bytes = spec::to_bytes(index);
    dst.put_manifest(tag, INDEX_MEDIA_TYPE, &bytes)
        .with_context(|| format!("writing the referrers index `{tag}` to {}", dst.location()))?;
    Ok(())
}

/// Writes the tagged manifests, subjects first: into an image layout as manifest blobs and
/// then one index update; into a registry `jobs` at a time within each level of `planned`
/// (a signature only after its image).
fn write_tags(dst: &dyn Mirror, planned: &[Planned], jobs: usize) -> Result<()> {
    if let Some(layout) = probe::layout(dst) {
        crate::parallel::try_map(planned, jobs, |p| {
            dst.put_manifest(&p.node.digest.to_string(), &p.node.refs.media_type, &p.node.bytes)
                .with_context(|| format!("copying the manifest of `{}` to {}", p.tag, dst.location()))
        })?;
        let entries: Vec<(&str, Descriptor)> = planned
            .iter()
            .map(|p| {
                let desc = Descriptor {
                    media_type: p.node.refs.media_type.clone(),
                    digest: p.node.digest.clone(),
                    size: p.node.bytes.len() as u64,
                    annotations: Default::default(),
                    extra: Default::default(),
                };
                (p.tag.as_str(), desc)
            })
            .collect();
        return layout.change_index(&|index| {
            let mut changed = false;
            for (tag, desc) in &entries {
                changed |= index.set(tag, desc.clone());
            }
            changed
        });
    }
    let mut level_start = 0;
    while level_start < planned.len() {
        let depth = |p: &Planned| attached_to(&p.tag).is_some();
        let first = depth(&planned[level_start]);
        let level_end = planned[level_start..]
            .iter()
            .position(|p| depth(p) != first)
            .map_or(planned.len(), |n| level_start + n);
        let level = &planned[level_start..level_end];
        crate::parallel::try_map(level, jobs, |p| {
            dst.put_manifest(&p.tag, &p.node.refs.media_type, &p.node.bytes)
                .with_context(|| format!("copying `{}` to {} ({})", p.tag, dst.location(), p.action))
        })?;
        level_start = level_end;
    }
    Ok(())
}
