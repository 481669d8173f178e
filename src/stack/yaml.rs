//! `stack.yaml`: raw serde structs (with source positions) and their conversion into a
//! validated [`Stack`].
//!
//! Parsing uses `serde_saphyr` with duplicate keys as errors and unknown keys rejected.
//! Positions come from [`Spanned`]; a syntax error is attributed to the package whose
//! entry contains it by a second, lenient pass that only records where each package starts.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, MessageFormatter, Options, Spanned, UserMessageFormatter};

use super::error::{ErrorKind, Position, StackError, suggest};
use super::hash::{HashInput, package_hash};
use super::tree::tree_digest;
use super::{Dep, DepKind, ImageSpec, Package, Recipe, Source, Stack, StackKind, dag, duration, prefix_var};
use crate::digest::Digest;
use crate::platform::Platform;

mod spack_section;

/// The store root when `store:` is not given.
pub const DEFAULT_STORE: &str = "/opt/stackci";

/// A YAML mapping kept as a list in file order, with the position of every key.
/// (`null` or an empty value reads as an empty mapping.)
struct Entries<T>(Vec<(Spanned<String>, T)>);

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Entries(Vec::new()))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Entries(Vec::new()))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// The whole `stack.yaml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    name: Option<Spanned<String>>,
    store: Option<Spanned<String>>,
    #[serde(default)]
    env: Entries<String>,
    mirror: Option<Spanned<String>>,
    /// `platform: linux/arm64`: what the packages are built for (default: the host's).
    platform: Option<Spanned<String>>,
    /// `platforms: { linux/arm64: { env: {...} } }`: settings for one target platform.
    #[serde(default)]
    platforms: Entries<RawPlatform>,
    #[serde(default)]
    upstreams: Vec<Spanned<String>>,
    timeout: Option<Spanned<RawDuration>>,
    packages: Option<Entries<RawPackage>>,
    #[serde(default)]
    images: Entries<RawImage>,
    #[serde(default)]
    status: super::settings::StatusConfig,
    #[serde(default)]
    ci: super::settings::CiSettings,
    #[serde(default)]
    trust: super::settings::TrustSettings,
    spack: Option<Spanned<spack_section::RawSpack>>,
}

/// One entry of `platforms:`: the environment a build for that platform adds (a cross
/// toolchain: `CC: aarch64-linux-gnu-gcc`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    #[serde(default)]
    env: Entries<String>,
}

/// The stack-wide settings both kinds of stack share.
struct Common {
    store: PathBuf,
    platform: Platform,
    env: BTreeMap<String, String>,
    timeout: Option<Duration>,
    mirror: Option<String>,
    upstreams: Vec<String>,
}

/// One entry of `packages:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    version: Option<Spanned<String>>,
    source: Option<Spanned<RawSource>>,
    build: Option<String>,
    #[serde(default)]
    depends: Vec<Spanned<String>>,
    #[serde(default, rename = "build-depends")]
    build_depends: Vec<Spanned<String>>,
    #[serde(default)]
    env: Entries<String>,
    timeout: Option<Spanned<RawDuration>>,
}

/// A duration as written (`30m`, `90s`, `2h`, or a number of seconds), checked later.
struct RawDuration(String);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration like `30m`, `90s`, `2h` or a number of seconds")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `source: { url, sha256 }` or `source: { path }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    url: Option<Spanned<String>>,
    sha256: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
}

/// One entry of `images:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    base: Option<Spanned<String>>,
    #[serde(default)]
    packages: Vec<Spanned<String>>,
    #[serde(default)]
    env: Entries<String>,
    #[serde(default)]
    entrypoint: Vec<String>,
    #[serde(default)]
    cmd: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Reads and validates the `stack.yaml` at `path` for `platform` (see [`parse_for`]).
pub(crate) fn load_for(path: &Path, platform: Option<&Platform>) -> Result<Stack, StackError> {
    let text = std::fs::read_to_string(path).map_err(|e| StackError::io(path, "cannot read the stack file", e))?;
    parse_for(path, &text, platform)
}

/// Validates the `stack.yaml` text read from `path` (which locates relative sources) for the
/// target platform `platform` (`--platform`), which wins over the file's `platform:`.
pub(crate) fn parse_for(path: &Path, text: &str, platform: Option<&Platform>) -> Result<Stack, StackError> {
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    let raw: RawStack = serde_saphyr::from_str_with_options(text, options).map_err(|e| syntax_error(path, text, &e))?;
    let mut converter = Converter::new(path)?;
    converter.platform = platform.cloned();
    converter.convert(raw)
}

/// The position of a YAML node.
fn pos<T>(s: &Spanned<T>) -> Option<Position> {
    Position::from_yaml(s.referenced)
}

/// Turns a `serde_saphyr` error into a [`StackError`], naming the package (or image) it is in.
fn syntax_error(path: &Path, text: &str, e: &serde_saphyr::Error) -> StackError {
    let e = e.without_snippet();
    let at = e.location().and_then(Position::from_yaml);
    let mut err = StackError::new(
        path,
        ErrorKind::Syntax,
        UserMessageFormatter.format_message(e).into_owned(),
    )
    .at(at);
    let Some(at) = at else { return err };
    let Some((section, entries)) = outline(text, at).or_else(|| text_outline(text, at)) else {
        return err;
    };
    let Some((mut name, _)) = entries.iter().rev().find(|(_, p)| *p <= at).cloned() else {
        return err;
    };
    if let serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } = e
        && let Some((_, first)) = entries
            .iter()
            .find(|(n, p)| n == key && p.column == at.column && *p < at)
    {
        let what = if section == "packages" { "package" } else { "image" };
        err.message = format!("duplicate {what} `{key}` (first defined at line {})", first.line);
        name.clone_from(key);
    }
    if section == "packages" {
        err.package = Some(name);
    } else {
        err.message = format!("image `{name}`: {}", err.message);
    }
    err
}

/// For a position in `text`: the top-level section (`packages` or `images`) containing it
/// and that section's entries (name, position). Lenient: duplicate keys keep the first.
fn outline(text: &str, at: Position) -> Option<(String, Vec<(String, Position)>)> {
    /// A top-level value: the keys of a mapping, or nothing.
    struct Keys(Vec<(String, Position)>);
    impl<'de> Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("anything")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, IgnoredAny)) = map.next_entry::<Spanned<String>, IgnoredAny>()? {
                        out.extend(pos(&k).map(|p| (k.value, p)));
                    }
                    Ok(Keys(out))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Keys, A::Error> {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(Keys(Vec::new()))
                }
                fn visit_str<E>(self, _: &str) -> Result<Keys, E> {
                    Ok(Keys(Vec::new()))
                }
                fn visit_bool<E>(self, _: bool) -> Result<Keys, E> {
                    Ok(Keys(Vec::new()))
                }
                fn visit_i64<E>(self, _: i64) -> Result<Keys, E> {
                    Ok(Keys(Vec::new()))
                }
                fn visit_u64<E>(self, _: u64) -> Result<Keys, E> {
                    Ok(Keys(Vec::new()))
                }
                fn visit_f64<E>(self, _: f64) -> Result<Keys, E> {
                    Ok(Keys(Vec::new()))
                }
                fn visit_unit<E>(self) -> Result<Keys, E> {
                    Ok(Keys(Vec::new()))
                }
            }
            d.deserialize_any(V)
        }
    }
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::FirstWins;
    let top: Entries<Keys> = serde_saphyr::from_str_with_options(text, options).ok()?;
    let (key, Keys(entries)) = top.0.into_iter().rev().find(|(k, _)| pos(k).is_some_and(|p| p <= at))?;
    matches!(key.value.as_str(), "packages" | "images").then_some((key.value, entries))
}

/// [`outline`] for text that is not valid YAML: reads block-style indentation only.
/// Top-level keys start in column 1; a section's entries are its least-indented keys.
fn text_outline(text: &str, at: Position) -> Option<(String, Vec<(String, Position)>)> {
    let key_of = |line: &str| -> Option<String> {
        let key = line.trim_start().split_once(':')?.0.trim();
        let key = key.trim_matches(|c| c == '"' || c == '\'');
        (!key.is_empty() && !key.starts_with(['-', '?', '#', '{', '['])).then(|| key.to_string())
    };
    let mut section: Option<(String, Vec<(String, Position)>)> = None;
    let mut indent = None;
    for (i, line) in text.lines().enumerate().take(at.line) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with("---") {
            continue;
        }
        let depth = line.len() - trimmed.len();
        if depth == 0 {
            section = key_of(line).map(|k| (k, Vec::new()));
            indent = None;
        } else if let Some((_, entries)) = &mut section {
            let want = *indent.get_or_insert(depth);
            if depth == want
                && let Some(key) = key_of(line)
            {
                entries.push((
                    key,
                    Position {
                        line: i + 1,
                        column: depth + 1,
                    },
                ));
            }
        }
    }
    section.filter(|(k, _)| matches!(k.as_str(), "packages" | "images"))
}

/// Package and image names: `[a-z0-9][a-z0-9._+-]*`.
fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'+' | b'-'))
}

/// The naming rule, as shown in errors.
const NAME_RULE: &str = "names are lowercase letters, digits and `._+-`, starting with a letter or digit";

/// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`.
pub(super) fn valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// State shared by the conversion steps.
struct Converter<'a> {
    /// The stack file, as given.
    file: &'a Path,
    /// Its directory, absolute.
    dir: PathBuf,
    /// The target platform given on the command line, if any.
    platform: Option<Platform>,
}

/// A package after the per-package checks, before ordering and hashing.
struct Checked {
    name: Spanned<String>,
    version: String,
    script: String,
    source: Option<PendingSource>,
    env: BTreeMap<String, String>,
    timeout: Option<Duration>,
    /// (dependency index in file order, kind, position of the entry naming it).
    deps: Vec<(usize, DepKind, Option<Position>)>,
}

/// Where a package and its dependency entries are written, by index in dependency order.
struct Spots {
    name: Option<Position>,
    deps: Vec<(usize, Option<Position>)>,
}

/// A source whose tree digest is computed once everything else is known to be valid.
enum PendingSource {
    Path {
        path: PathBuf,
        shown: String,
        at: Option<Position>,
    },
    Url {
        url: String,
        sha256: Digest,
    },
}

impl<'a> Converter<'a> {
    fn new(file: &'a Path) -> Result<Self, StackError> {
        let parent = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = std::path::absolute(parent)
            .map_err(|e| StackError::io(file, "cannot resolve the stack file's directory", e))?;
        Ok(Converter {
            file,
            dir: normalize(&dir),
            platform: None,
        })
    }

    fn err(&self, kind: ErrorKind, at: Option<Position>, message: impl Into<String>) -> StackError {
        StackError::new(self.file, kind, message).at(at)
    }

    fn convert(&self, raw: RawStack) -> Result<Stack, StackError> {
        if raw.spack.is_some() {
            return self.convert_spack(raw);
        }
        let raw_status = raw.status.clone();
        let raw_ci = raw.ci.clone();
        let raw_trust = raw.trust.clone();
        let name = raw
            .name
            .as_ref()
            .ok_or_else(|| self.err(ErrorKind::Invalid, None, "missing `name:`"))?;
        self.check_stack_name(name)?;
        let name = name.clone();
        let Common {
            store,
            platform,
            env,
            timeout,
            mirror,
            upstreams,
        } = self.common(&raw)?;
        let raw_packages = raw.packages.ok_or_else(|| {
            self.err(
                ErrorKind::Invalid,
                None,
                "missing `packages:` (an empty stack is `packages: {}`; a Spack environment is `spack: { env: DIR }`)",
            )
        })?;

        let names: HashMap<&str, usize> = raw_packages
            .0
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.value.as_str(), i))
            .collect();
        let mut checked = Vec::with_capacity(raw_packages.0.len());
        for (key, raw) in &raw_packages.0 {
            checked.push(self.package(key, raw, &names)?);
        }
        let mut images = BTreeMap::new();
        for (key, raw) in raw.images.0 {
            let image = self.image(&key, raw, &names)?;
            images.insert(key.value, image);
        }

        let keys: Vec<&str> = checked.iter().map(|c| c.name.value.as_str()).collect();
        let edges: Vec<Vec<usize>> = checked.iter().map(|c| c.deps.iter().map(|d| d.0).collect()).collect();
        let order = dag::toposort(&keys, &edges).map_err(|cycle| {
            let first = &checked[cycle[0]];
            let next = cycle.get(1).copied().unwrap_or(cycle[0]);
            let at = first
                .deps
                .iter()
                .find(|d| d.0 == next)
                .and_then(|d| d.2)
                .or(pos(&first.name));
            let path = dag::format_cycle(&cycle, |i| keys[i].to_string());
            self.err(ErrorKind::Cycle, at, format!("dependency cycle: {path}"))
                .package(keys[cycle[0]])
        })?;

        let mut new_index = vec![0; checked.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let mut slots: Vec<Option<Checked>> = checked.into_iter().map(Some).collect();
        let platform_name = platform.hash_name();
        let state_dir = self.dir.join(".stackci");
        let mut packages: Vec<Package> = Vec::with_capacity(order.len());
        // Where each package (new order) and each of its dependency entries is written.
        let mut spots: Vec<Spots> = Vec::with_capacity(order.len());
        for &old in &order {
            let Some(c) = slots[old].take() else { continue };
            spots.push(Spots {
                name: pos(&c.name),
                deps: c.deps.iter().map(|&(d, _, at)| (new_index[d], at)).collect(),
            });
            let source = match c.source {
                None => None,
                Some(PendingSource::Url { url, sha256 }) => Some(Source::Url { url, sha256 }),
                Some(PendingSource::Path { path, shown, at }) => {
                    let digest = tree_digest(&path, Some(&state_dir)).map_err(|e| {
                        let msg = format!("source path `{shown}`: cannot read `{}`", e.path.display());
                        StackError {
                            source: Some(e.source),
                            ..self.err(ErrorKind::Io, at, msg)
                        }
                        .package(&c.name.value)
                    })?;
                    Some(Source::Path { path, digest })
                }
            };
            let mut deps: Vec<Dep> = c
                .deps
                .iter()
                .map(|&(i, kind, _)| Dep {
                    index: new_index[i],
                    kind,
                })
                .collect();
            deps.sort_unstable_by_key(|d| d.index);
            let mut recipe_env = env.clone();
            recipe_env.extend(c.env.iter().map(|(k, v)| (k.clone(), v.clone())));
            let hash = package_hash(&HashInput {
                name: &c.name.value,
                version: &c.version,
                script: &c.script,
                source: source.as_ref(),
                env: &recipe_env,
                store: &store,
                platform: &platform_name,
                deps: deps
                    .iter()
                    .map(|d| (packages[d.index].name.as_str(), d.kind, packages[d.index].hash.as_str()))
                    .collect(),
            });
            packages.push(Package {
                name: c.name.value,
                version: c.version,
                hash,
                deps,
                recipe: Recipe::Script(c.script),
                source,
                env: c.env,
                timeout: c.timeout.or(timeout),
            });
        }
        for image in images.values_mut() {
            for i in &mut image.packages {
                *i = new_index[*i];
            }
        }

        let stack = Stack {
            name: name.value,
            path: self.file.to_path_buf(),
            dir: self.dir.clone(),
            kind: StackKind::Yaml,
            store,
            platform,
            env,
            mirror,
            upstreams,
            packages,
            images,
            status: raw_status,
            ci: raw_ci,
            trust: raw_trust,
            spack: None,
        };
        self.prefix_vars(&stack, &spots)?;
        Ok(stack)
    }

    /// Checks the stack's `name:`.
    fn check_stack_name(&self, name: &Spanned<String>) -> Result<(), StackError> {
        if valid_name(&name.value) {
            return Ok(());
        }
        Err(self.err(
            ErrorKind::Invalid,
            pos(name),
            format!("invalid stack name `{}`: {NAME_RULE}", name.value),
        ))
    }

    /// The stack-wide settings: `store:`, `platform:` (with its `platforms:` env), `env:`,
    /// `timeout:`, `mirror:`; and `ci: mapping:` is checked.
    fn common(&self, raw: &RawStack) -> Result<Common, StackError> {
        let store = match &raw.store {
            None => PathBuf::from(DEFAULT_STORE),
            Some(s) => {
                let p = Path::new(&s.value);
                if !p.is_absolute() {
                    let msg = format!("`store: {}` must be an absolute path", s.value);
                    return Err(self.err(ErrorKind::Invalid, pos(s), msg));
                }
                // Prefixes and the receipts under `<store>/.stackci` must be where they read.
                if p.components().any(|c| c == Component::ParentDir) {
                    let msg = format!("`store: {}` must not contain `..` components", s.value);
                    return Err(self.err(ErrorKind::Invalid, pos(s), msg));
                }
                normalize(p)
            }
        };
        let mut env = self.env(&raw.env, None)?;
        let platform = self.target_platform(raw.platform.as_ref())?;
        for (key, settings) in &raw.platforms.0 {
            let p = Platform::parse(&key.value)
                .map_err(|e| self.err(ErrorKind::Invalid, pos(key), format!("`platforms:` key: {e:#}")))?;
            if p == platform {
                env.extend(self.env(&settings.env, None)?);
            }
        }
        let timeout = raw.timeout.as_ref().map(|t| self.timeout(t, None)).transpose()?;
        let mirror = match &raw.mirror {
            Some(m) if m.value.trim().is_empty() => {
                return Err(self.err(ErrorKind::Invalid, pos(m), "`mirror:` is empty"));
            }
            m => m.as_ref().map(|m| m.value.clone()),
        };
        let mut upstreams: Vec<String> = Vec::with_capacity(raw.upstreams.len());
        for u in &raw.upstreams {
            if u.value.trim().is_empty() {
                return Err(self.err(ErrorKind::Invalid, pos(u), "an entry of `upstreams:` is empty"));
            }
            if upstreams.contains(&u.value) || mirror.as_ref() == Some(&u.value) {
                let msg = format!("`upstreams:` lists {} twice (or it is the `mirror:` itself)", u.value);
                return Err(self.err(ErrorKind::Invalid, pos(u), msg));
            }
            upstreams.push(u.value.clone());
        }
        super::job_rules::Rules::new(&raw.ci.mapping).map_err(|e| self.err(ErrorKind::Invalid, None, e.to_string()))?;
        Ok(Common {
            store,
            platform,
            env,
            timeout,
            mirror,
            upstreams,
        })
    }

    /// The platform to build for: `--platform`, else `platform:`, else the host's.
    fn target_platform(&self, written: Option<&Spanned<String>>) -> Result<Platform, StackError> {
        if let Some(p) = &self.platform {
            return Ok(p.clone());
        }
        match written {
            None => Ok(Platform::host()),
            Some(p) => Platform::parse(&p.value)
                .map_err(|e| self.err(ErrorKind::Invalid, pos(p), format!("`platform:` {e:#}"))),
        }
    }

    /// Fails when two packages of one build environment would set the same `<NAME>_PREFIX`
    /// (`foo-bar`, `foo_bar` and `foo.bar` all give `FOO_BAR_PREFIX`).
    fn prefix_vars(&self, stack: &Stack, spots: &[Spots]) -> Result<(), StackError> {
        let mut owners: HashMap<String, usize> = HashMap::new();
        for p in &stack.packages {
            *owners.entry(prefix_var(&p.name)).or_default() += 1;
        }
        if owners.values().all(|&n| n < 2) {
            return Ok(());
        }
        for (i, pkg) in stack.packages.iter().enumerate() {
            let mut by_var: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for d in stack.build_closure(i) {
                by_var.entry(prefix_var(&stack.packages[d].name)).or_default().push(d);
            }
            let Some((var, clash)) = by_var.into_iter().find(|(_, ds)| ds.len() > 1) else {
                continue;
            };
            let mut names: Vec<String> = clash.iter().map(|&d| format!("`{}`", stack.packages[d].name)).collect();
            names.sort();
            let last = names.pop().unwrap_or_default();
            // Point at the last entry naming one of them directly, else at the package.
            let at = spots[i]
                .deps
                .iter()
                .filter(|(d, _)| clash.contains(d))
                .filter_map(|(_, at)| *at)
                .max()
                .or(spots[i].name);
            let all = if names.len() == 1 { "both" } else { "all" };
            let msg = format!(
                "dependencies {} and {last} would {all} set `{var}` in its build environment; rename one of them",
                names.join(", ")
            );
            return Err(self.err(ErrorKind::Invalid, at, msg).package(&pkg.name));
        }
        Ok(())
    }

    /// Checks one package entry and resolves its dependency names.
    fn package(
        &self,
        key: &Spanned<String>,
        raw: &RawPackage,
        names: &HashMap<&str, usize>,
    ) -> Result<Checked, StackError> {
        let name = key.value.as_str();
        let at = pos(key);
        let fail = |kind, at, msg: String| self.err(kind, at, msg).package(name);
        if !valid_name(name) {
            return Err(fail(
                ErrorKind::Invalid,
                at,
                format!("invalid package name: {NAME_RULE}"),
            ));
        }
        let version = raw
            .version
            .as_ref()
            .ok_or_else(|| fail(ErrorKind::Invalid, at, "missing `version:`".into()))?;
        if version.value.is_empty()
            || version
                .value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            let msg = format!(
                "invalid version `{}`: must be non-empty, without spaces or `/`",
                version.value
            );
            return Err(fail(ErrorKind::Invalid, pos(version), msg));
        }
        let script = raw
            .build
            .clone()
            .ok_or_else(|| fail(ErrorKind::Invalid, at, "missing `build:` script".into()))?;
        let source = match &raw.source {
            None => None,
            Some(s) => Some(self.source(s).map_err(|e| e.package(name))?),
        };
        let env = self.env(&raw.env, Some(name))?;
        let timeout = raw.timeout.as_ref().map(|t| self.timeout(t, Some(name))).transpose()?;

        let mut deps: Vec<(usize, DepKind, Option<Position>)> = Vec::new();
        for (list, kind) in [(&raw.depends, DepKind::Runtime), (&raw.build_depends, DepKind::Build)] {
            for dep in list {
                let at = pos(dep);
                let Some(&index) = names.get(dep.value.as_str()) else {
                    let mut msg = format!("depends on unknown package `{}`", dep.value);
                    if let Some(close) = suggest(&dep.value, names.keys().copied()) {
                        msg.push_str(&format!(" (did you mean `{close}`?)"));
                    }
                    return Err(fail(ErrorKind::UnknownPackage, at, msg));
                };
                if deps.iter().any(|d| d.0 == index) {
                    let msg = format!(
                        "lists `{}` twice (a dependency goes once, in either `depends` or `build-depends`)",
                        dep.value
                    );
                    return Err(fail(ErrorKind::Invalid, at, msg));
                }
                deps.push((index, kind, at));
            }
        }
        Ok(Checked {
            name: key.clone(),
            version: version.value.clone(),
            script,
            source,
            env,
            timeout,
            deps,
        })
    }

    /// Checks a `source:` entry; path sources must be existing directories.
    fn source(&self, s: &Spanned<RawSource>) -> Result<PendingSource, StackError> {
        let invalid = |at, msg: String| self.err(ErrorKind::Invalid, at, msg);
        let raw = &s.value;
        match (&raw.url, &raw.path) {
            (Some(_), Some(_)) | (None, None) => Err(invalid(
                pos(s),
                "`source:` needs exactly one of `url:` (with `sha256:`) or `path:`".into(),
            )),
            (Some(url), None) => {
                let u = url.value.as_str();
                if !["file://", "http://", "https://"]
                    .iter()
                    .any(|scheme| u.starts_with(scheme))
                {
                    return Err(invalid(
                        pos(url),
                        format!("source url `{u}`: only file://, http:// and https:// URLs are supported"),
                    ));
                }
                let sha = raw
                    .sha256
                    .as_ref()
                    .ok_or_else(|| invalid(pos(url), "`source: { url: }` needs `sha256:`".into()))?;
                let sha256 = Digest::from_hex(&sha.value).map_err(|_| {
                    invalid(
                        pos(sha),
                        format!("bad sha256 `{}`: expected 64 lowercase hex characters", sha.value),
                    )
                })?;
                Ok(PendingSource::Url {
                    url: url.value.clone(),
                    sha256,
                })
            }
            (None, Some(path)) => {
                if let Some(sha) = &raw.sha256 {
                    return Err(invalid(
                        pos(sha),
                        "`sha256:` belongs to `url:` sources; a `path:` source is digested as it is".into(),
                    ));
                }
                let resolved = normalize(&self.dir.join(&path.value));
                if !resolved.is_dir() {
                    let what = if resolved.exists() {
                        "is not a directory"
                    } else {
                        "does not exist"
                    };
                    // Shown the way the stack file was named: relative stays relative.
                    let shown = normalize(&self.file.parent().unwrap_or(Path::new("")).join(&path.value));
                    let msg = format!("source path `{}` {what} (looked for `{}`)", path.value, shown.display());
                    return Err(invalid(pos(path), msg));
                }
                Ok(PendingSource::Path {
                    path: resolved,
                    shown: path.value.clone(),
                    at: pos(path),
                })
            }
        }
    }

    /// Checks one `images:` entry; package names become indices in file order.
    fn image(
        &self,
        key: &Spanned<String>,
        raw: RawImage,
        names: &HashMap<&str, usize>,
    ) -> Result<ImageSpec, StackError> {
        let name = key.value.as_str();
        let invalid = |kind, at, msg: String| self.err(kind, at, format!("image `{name}`: {msg}"));
        if !valid_name(name) {
            return Err(invalid(
                ErrorKind::Invalid,
                pos(key),
                format!("invalid image name: {NAME_RULE}"),
            ));
        }
        let base = match raw.base {
            None => "scratch".to_string(),
            Some(b) => {
                // The one image-reference parser decides, so a base accepts what `--base` does.
                let v = b.value.as_str();
                let why = match crate::mirror::location::Location::image(v) {
                    Ok(crate::mirror::location::Location::DockerArchive { .. }) => {
                        Some("a docker archive cannot be a base".to_string())
                    }
                    Ok(_) => None,
                    Err(e) => Some(format!("{e:#}")),
                };
                if let Some(why) = why {
                    let msg = format!(
                        "base `{}`: expected `scratch`, `oci://HOST/REPO:TAG`, `docker://NAME:TAG` or `oci-layout:DIR:TAG` ({why})",
                        crate::net::redact::url(v)
                    );
                    return Err(invalid(ErrorKind::Invalid, pos(&b), msg));
                }
                b.value
            }
        };
        let mut packages = Vec::with_capacity(raw.packages.len());
        for p in &raw.packages {
            let Some(&i) = names.get(p.value.as_str()) else {
                let mut msg = format!("unknown package `{}`", p.value);
                if let Some(close) = suggest(&p.value, names.keys().copied()) {
                    msg.push_str(&format!(" (did you mean `{close}`?)"));
                }
                return Err(invalid(ErrorKind::UnknownPackage, pos(p), msg));
            };
            if !packages.contains(&i) {
                packages.push(i);
            }
        }
        let env = self.env(&raw.env, None).map_err(|mut e| {
            e.message = format!("image `{name}`: {}", e.message);
            e
        })?;
        Ok(ImageSpec {
            base,
            packages,
            env,
            entrypoint: raw.entrypoint,
            cmd: raw.cmd,
            labels: raw.labels,
        })
    }

    /// Checks a `timeout:` value.
    fn timeout(&self, raw: &Spanned<RawDuration>, package: Option<&str>) -> Result<Duration, StackError> {
        duration::parse(&raw.value.0).ok_or_else(|| {
            let msg = format!(
                "invalid timeout `{}`: expected a positive duration like `90s`, `45m`, `2h` or a number of seconds",
                raw.value.0
            );
            let mut e = self.err(ErrorKind::Invalid, pos(raw), msg);
            e.package = package.map(str::to_string);
            e
        })
    }

    /// Checks environment variable names.
    fn env(&self, raw: &Entries<String>, package: Option<&str>) -> Result<BTreeMap<String, String>, StackError> {
        let mut out = BTreeMap::new();
        for (k, v) in &raw.0 {
            if !valid_env_name(&k.value) {
                let msg = format!(
                    "invalid environment variable name `{}`: expected letters, digits and `_`, not starting with a digit",
                    k.value
                );
                let mut e = self.err(ErrorKind::Invalid, pos(k), msg);
                e.package = package.map(str::to_string);
                return Err(e);
            }
            out.insert(k.value.clone(), v.clone());
        }
        Ok(out)
    }
}

/// `path` with `.` components and repeated or trailing separators removed (`..` is kept:
/// resolving it lexically would be wrong across symbolic links).
fn normalize(path: &Path) -> PathBuf {
    path.components().filter(|c| !matches!(c, Component::CurDir)).collect()
}
