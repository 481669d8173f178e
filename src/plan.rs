//! What a run must do: each package's status against the mirror, computed from one tag listing.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::stack::Stack;

/// Whether a package must be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The mirror already holds it.
    Cached,
    /// It must be built (and pushed).
    Build,
    /// Provided by the system; never built.
    External,
}

/// One package's line in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Index into [`Stack::packages`].
    #[serde(skip)]
    pub index: usize,
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// Package hash.
    pub hash: String,
    /// Mirror tag (`<name>-<version>-<hash>`).
    pub tag: String,
    /// What must happen to it.
    pub status: Status,
    /// Where a cached package is: the mirror, or the upstream holding it (the first, in
    /// order). `None` for packages to build and external ones.
    pub found_in: Option<String>,
    /// Hashes of its direct dependencies (runtime and build).
    pub deps: Vec<String>,
    /// For packages to build: 0 when no dependency is built in this plan, else one more
    /// than the highest level among the dependencies that are. Cached/external: 0.
    pub level: usize,
}

/// Each package of a stack with its status; `--json` prints this.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Stack name.
    pub stack: String,
    /// Mirror location the statuses were computed against (where pushes go).
    pub mirror: String,
    /// The read-only upstream mirrors also consulted, in order (empty without layering).
    pub upstreams: Vec<String>,
    /// Packages in dependency order.
    pub packages: Vec<Entry>,
}

impl Plan {
    /// Computes statuses from the mirror's tag list (`tags`), read once by the caller.
    pub fn new(stack: &Stack, mirror: String, tags: &BTreeSet<String>) -> Plan {
        Plan::layered(stack, &[(mirror, tags.clone())])
    }

    /// Computes statuses from each member's location and tag list, the mirror first and
    /// then its upstreams: a package any of them holds is cached, found in the first.
    pub fn layered(stack: &Stack, members: &[(String, BTreeSet<String>)]) -> Plan {
        let mirror = members.first().map(|(m, _)| m.clone()).unwrap_or_default();
        let upstreams = members.iter().skip(1).map(|(m, _)| m.clone()).collect();
        let mut packages: Vec<Entry> = Vec::with_capacity(stack.packages.len());
        for (index, p) in stack.packages.iter().enumerate() {
            let tag = p.tag();
            let found_in = if p.is_external() {
                None
            } else {
                members
                    .iter()
                    .find(|(_, tags)| tags.contains(&tag))
                    .map(|(m, _)| m.clone())
            };
            let status = if p.is_external() {
                Status::External
            } else if found_in.is_some() {
                Status::Cached
            } else {
                Status::Build
            };
            let level = if status == Status::Build {
                p.deps
                    .iter()
                    .filter(|d| packages[d.index].status == Status::Build)
                    .map(|d| packages[d.index].level + 1)
                    .max()
                    .unwrap_or(0)
            } else {
                0
            };
            packages.push(Entry {
                index,
                name: p.name.clone(),
                version: p.version.clone(),
                hash: p.hash.clone(),
                tag,
                status,
                found_in,
                deps: p.deps.iter().map(|d| stack.packages[d.index].hash.clone()).collect(),
                level,
            });
        }
        Plan {
            stack: stack.name.clone(),
            mirror,
            upstreams,
            packages,
        }
    }

    /// The entries that must be built, in dependency order.
    pub fn to_build(&self) -> impl Iterator<Item = &Entry> {
        self.packages.iter().filter(|e| e.status == Status::Build)
    }
}
