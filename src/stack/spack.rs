//! Spack lockfiles (`spack.lock`, lockfile versions 4–6) as stacks.
//!
//! Every entry of `concrete_specs` is a package, identified by its DAG hash (the key).
//! Only the fields stackci needs are deserialized, borrowing strings from the file
//! where possible. Dependency edges: deptypes with `link` or `run` are runtime edges,
//! `build` alone is a build edge, `test` alone is ignored. Versions 5–6 give deptypes
//! as `parameters.deptypes`; version 4 as `type`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use super::error::{ErrorKind, Position, StackError};
use super::spack_env::{SpackEnv, valid_version};
use super::yaml::DEFAULT_STORE;
use super::{Dep, DepKind, Package, Recipe, Stack, StackKind, dag};

/// Lockfile versions this module reads.
const VERSIONS: std::ops::RangeInclusive<u64> = 4..=6;

/// Just `_meta.lockfile-version`, read when the full parse fails or the version is wrong.
#[derive(Deserialize)]
struct MetaOnly {
    #[serde(rename = "_meta")]
    meta: Meta,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "lockfile-version")]
    version: u64,
}

#[derive(Deserialize)]
struct Lock<'a> {
    #[serde(rename = "_meta")]
    meta: Meta,
    /// Which Spack wrote the file (`{"version": "0.22.1", "type": "git", "commit": "..."}`;
    /// versions 5 and later), read as a value so a malformed one gets its own error.
    #[serde(default)]
    spack: Option<serde_json::Value>,
    #[serde(borrow)]
    concrete_specs: Specs<'a>,
}

/// `concrete_specs` in file order.
struct Specs<'a>(Vec<(Cow<'a, str>, Spec<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Specs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Specs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map from DAG hash to spec")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((k, v)) = map.next_entry::<Borrowed<'a>, Spec<'a>>()? {
                    out.push((k.0, v));
                }
                Ok(Specs(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A string borrowed from the input unless it has escapes.
struct Borrowed<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Borrowed<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct W<'a>(#[serde(borrow)] Cow<'a, str>);
        W::deserialize(d).map(|w| Borrowed(w.0))
    }
}

#[derive(Deserialize)]
struct Spec<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    version: Cow<'a, str>,
    #[serde(default, borrow)]
    dependencies: Vec<SpecDep<'a>>,
    #[serde(default, borrow)]
    external: Option<External<'a>>,
}

#[derive(Deserialize)]
struct SpecDep<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    hash: Cow<'a, str>,
    /// Versions 5–6.
    #[serde(default)]
    parameters: Option<DepParameters>,
    /// Version 4.
    #[serde(default, rename = "type")]
    types: Option<DepTypes>,
}

#[derive(Deserialize)]
struct DepParameters {
    #[serde(default)]
    deptypes: DepTypes,
}

/// A list of Spack deptypes read straight into bits, without allocating.
#[derive(Default, Clone, Copy)]
struct DepTypes(u8);

impl DepTypes {
    const BUILD: u8 = 1;
    const LINK: u8 = 2;
    const RUN: u8 = 4;

    /// The stackci edge kind: link or run is runtime, build alone is build, else none.
    fn kind(self) -> Option<DepKind> {
        if self.0 & (Self::LINK | Self::RUN) != 0 {
            Some(DepKind::Runtime)
        } else if self.0 & Self::BUILD != 0 {
            Some(DepKind::Build)
        } else {
            None
        }
    }
}

impl<'de> Deserialize<'de> for DepTypes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DepTypes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of deptypes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<DepTypes, A::Error> {
                let mut bits = 0;
                while let Some(t) = seq.next_element::<Borrowed<'de>>()? {
                    bits |= match t.0.as_ref() {
                        "build" => DepTypes::BUILD,
                        "link" => DepTypes::LINK,
                        "run" => DepTypes::RUN,
                        _ => 0, // "test", and anything newer: not needed to build or run
                    };
                }
                Ok(DepTypes(bits))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
struct External<'a> {
    #[serde(default, borrow)]
    path: Option<Cow<'a, str>>,
}

/// Reads the Spack lockfile at `path`.
pub(crate) fn load(path: &Path) -> Result<Stack, StackError> {
    let bytes = std::fs::read(path).map_err(|e| StackError::io(path, "cannot read the lockfile", e))?;
    parse(path, &bytes)
}

/// Converts lockfile bytes read from `path` into a stack.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Stack, StackError> {
    let fail = |kind, at, msg: String| StackError::new(path, kind, msg).at(at);
    let lock: Lock = match serde_json::from_slice(bytes) {
        Ok(lock) => lock,
        Err(e) => {
            if let Ok(m) = serde_json::from_slice::<MetaOnly>(bytes)
                && !VERSIONS.contains(&m.meta.version)
            {
                return Err(unsupported(path, bytes, m.meta.version));
            }
            return Err(json_error(path, &e));
        }
    };
    if !VERSIONS.contains(&lock.meta.version) {
        return Err(unsupported(path, bytes, lock.meta.version));
    }
    let (version, commit) = spack_meta(path, bytes, lock.spack.as_ref())?;
    let specs = lock.concrete_specs.0;

    let mut by_hash: HashMap<&str, usize> = HashMap::with_capacity(specs.len());
    for (i, (hash, spec)) in specs.iter().enumerate() {
        let label = || format!("{}/{hash}", spec.name);
        if hash.len() != 32 || !hash.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')) {
            let msg = "not a Spack DAG hash (32 lowercase base32 characters)".to_string();
            return Err(fail(ErrorKind::Invalid, spec_position(bytes, hash), msg).package(label()));
        }
        if by_hash.insert(hash, i).is_some() {
            let msg = "duplicate entry in `concrete_specs`".to_string();
            return Err(fail(ErrorKind::Syntax, spec_position(bytes, hash), msg).package(label()));
        }
    }

    let mut deps: Vec<Vec<Dep>> = Vec::with_capacity(specs.len());
    for (hash, spec) in &specs {
        let mut out: Vec<Dep> = Vec::with_capacity(spec.dependencies.len());
        for d in &spec.dependencies {
            let Some(&index) = by_hash.get(d.hash.as_ref()) else {
                let msg = format!("depends on `{}/{}`, which is not in `concrete_specs`", d.name, d.hash);
                let at = spec_position(bytes, hash);
                return Err(fail(ErrorKind::UnknownPackage, at, msg).package(format!("{}/{hash}", spec.name)));
            };
            let types = d
                .parameters
                .as_ref()
                .map(|p| p.deptypes)
                .or(d.types)
                .unwrap_or_default();
            let Some(kind) = types.kind() else {
                continue; // test-only (or no type): not needed to build or run
            };
            match out.iter_mut().find(|e| e.index == index) {
                Some(e) if kind == DepKind::Runtime => e.kind = kind,
                Some(_) => {}
                None => out.push(Dep { index, kind }),
            }
        }
        deps.push(out);
    }

    let keys: Vec<(&str, &str)> = specs.iter().map(|(h, s)| (s.name.as_ref(), h.as_ref())).collect();
    let edges: Vec<Vec<usize>> = deps.iter().map(|ds| ds.iter().map(|d| d.index).collect()).collect();
    let order = dag::toposort(&keys, &edges).map_err(|cycle| {
        let label = |i: usize| format!("{}/{}", keys[i].0, keys[i].1);
        let msg = format!("dependency cycle: {}", dag::format_cycle(&cycle, label));
        fail(ErrorKind::Cycle, spec_position(bytes, keys[cycle[0]].1), msg).package(label(cycle[0]))
    })?;

    let mut new_index = vec![0; specs.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    let mut slots: Vec<Option<(Cow<str>, Spec)>> = specs.into_iter().map(Some).collect();
    let mut packages = Vec::with_capacity(order.len());
    for &old in &order {
        let Some((hash, spec)) = slots[old].take() else {
            continue;
        };
        let recipe = match spec.external {
            None => Recipe::Spack,
            Some(External { path: Some(p) }) => Recipe::External {
                path: PathBuf::from(p.as_ref()),
            },
            Some(External { path: None }) => {
                let msg = "external without a `path` (module-only externals are not supported)".to_string();
                return Err(
                    fail(ErrorKind::Invalid, spec_position(bytes, &hash), msg).package(format!("{}/{hash}", spec.name))
                );
            }
        };
        let mut ds: Vec<Dep> = std::mem::take(&mut deps[old])
            .into_iter()
            .map(|d| Dep {
                index: new_index[d.index],
                kind: d.kind,
            })
            .collect();
        ds.sort_unstable_by_key(|d| d.index);
        packages.push(Package {
            name: spec.name.into_owned(),
            version: spec.version.into_owned(),
            hash: hash.into_owned(),
            deps: ds,
            recipe,
            source: None,
            env: BTreeMap::new(),
            timeout: None,
        });
    }

    let lock =
        std::path::absolute(path).map_err(|e| StackError::io(path, "cannot resolve the lockfile's directory", e))?;
    let dir = lock.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let name = dir
        .file_name()
        .map_or_else(|| "spack".to_string(), |n| n.to_string_lossy().into_owned());
    Ok(Stack {
        name,
        path: path.to_path_buf(),
        dir: dir.clone(),
        kind: StackKind::SpackLock,
        store: PathBuf::from(DEFAULT_STORE),
        platform: crate::platform::Platform::host(),
        env: BTreeMap::new(),
        mirror: None,
        upstreams: Vec::new(),
        packages,
        images: BTreeMap::new(),
        status: Default::default(),
        ci: Default::default(),
        spack: Some(SpackEnv {
            dir,
            lock,
            version,
            commit,
            settings: Default::default(),
        }),
        trust: Default::default(),
    })
}

/// The Spack version and commit recorded in the lockfile's `spack` entry. The entry is
/// optional (version 4 files have none), but when present its `version` must read as a
/// Spack version: CI jobs clone that Spack and builds check they run it.
fn spack_meta(
    path: &Path,
    bytes: &[u8],
    meta: Option<&serde_json::Value>,
) -> Result<(Option<String>, Option<String>), StackError> {
    let Some(meta) = meta else { return Ok((None, None)) };
    // The key inside the `spack` entry when it is there, else the entry itself.
    let at = |key: &[u8]| {
        let start = find(bytes, b"\"spack\"")?;
        let rel = meta
            .get(std::str::from_utf8(&key[1..key.len() - 1]).ok()?)
            .and_then(|_| find(&bytes[start..], key));
        Some(Position::of_offset(bytes, start + rel.unwrap_or(0)))
    };
    let unreadable = |what: String| {
        let msg = format!("unreadable Spack version in `spack.version`: {what} (expected a version like 0.22.1)");
        StackError::new(path, ErrorKind::Invalid, msg).at(at(b"\"version\""))
    };
    let version = match meta.get("version") {
        None => return Err(unreadable("missing".into())),
        Some(serde_json::Value::String(v)) if valid_version(v) => v.clone(),
        Some(serde_json::Value::String(v)) => return Err(unreadable(format!("`{v}`"))),
        Some(other) => return Err(unreadable(format!("`{other}` is not a string"))),
    };
    let commit = match meta.get("commit") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(c)) if !c.is_empty() && c.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(c.clone())
        }
        Some(other) => {
            let msg = format!("unreadable Spack commit in `spack.commit`: `{other}` (expected hexadecimal)");
            return Err(StackError::new(path, ErrorKind::Invalid, msg).at(at(b"\"commit\"")));
        }
    };
    Ok((Some(version), commit))
}

/// The error for a lockfile version outside 4–6, pointing at the version number.
fn unsupported(path: &Path, bytes: &[u8], version: u64) -> StackError {
    let at = find(bytes, b"\"lockfile-version\"").map(|o| Position::of_offset(bytes, o));
    let msg = format!("unsupported Spack lockfile version {version} (supported: 4, 5, 6)");
    StackError::new(path, ErrorKind::UnsupportedVersion, msg).at(at)
}

/// A `serde_json` error with its position split out of the message.
fn json_error(path: &Path, e: &serde_json::Error) -> StackError {
    let mut msg = e.to_string();
    let at = (e.line() > 0).then(|| {
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        if msg.ends_with(&suffix) {
            msg.truncate(msg.len() - suffix.len());
        }
        Position {
            line: e.line(),
            column: e.column(),
        }
    });
    StackError::new(path, ErrorKind::Syntax, format!("malformed lockfile: {msg}")).at(at)
}

/// Where the `concrete_specs` entry keyed `hash` starts: the first `"hash"` followed by `:`.
fn spec_position(bytes: &[u8], hash: &str) -> Option<Position> {
    let needle = format!("\"{hash}\"");
    let mut from = 0;
    while let Some(o) = find(&bytes[from..], needle.as_bytes()).map(|o| o + from) {
        let after = o + needle.len();
        let next = bytes[after..].iter().find(|b| !b.is_ascii_whitespace());
        if next == Some(&b':') {
            return Some(Position::of_offset(bytes, o));
        }
        from = after;
    }
    None
}

/// Offset of the first `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
