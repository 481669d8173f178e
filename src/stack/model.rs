//! The validated stack: what every command works from.
//!
//! Raw files (`stack.yaml`, `spack.lock`) become a [`Stack`] in one pure step
//! ([`crate::stack::load`]); after that, packages are in dependency order and every
//! hash is known, so nothing downstream re-validates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::digest::Digest;

/// Which file format a stack came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StackKind {
    /// A `stack.yaml` in stackci's own format.
    Yaml,
    /// A concretized Spack lockfile (`spack.lock`, lockfile versions 4–6).
    SpackLock,
}

/// A validated stack: packages sorted so that every package comes after its dependencies.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The stack's name (`name:`; for a Spack lockfile, the file's directory name).
    pub name: String,
    /// The file the stack was read from.
    pub path: PathBuf,
    /// The directory relative `source: { path: }` entries resolve against.
    pub dir: PathBuf,
    /// The input format.
    pub kind: StackKind,
    /// Absolute install root; every prefix is `<store>/<name>-<version>-<hash>`.
    pub store: PathBuf,
    /// The platform the packages are built for (part of every hash; `platform:`,
    /// `--platform`, default the host's).
    pub platform: crate::platform::Platform,
    /// Environment for every recipe.
    pub env: BTreeMap<String, String>,
    /// The `mirror:` URL from the stack file, if any.
    pub mirror: Option<String>,
    /// The `upstreams:` mirrors from the stack file: read-only, consulted after the mirror.
    pub upstreams: Vec<String>,
    /// Packages in dependency order (dependencies first).
    pub packages: Vec<Package>,
    /// The `images:` section.
    pub images: BTreeMap<String, ImageSpec>,
    /// The `status:` section (where commit statuses go).
    pub status: super::settings::StatusConfig,
    /// The `ci:` section (settings of the generated pipelines).
    pub ci: super::settings::CiSettings,
    /// The Spack environment the packages come from (`spack:`, or a bare `spack.lock`);
    /// `None` for a stack of recipes.
    pub spack: Option<super::spack_env::SpackEnv>,
    /// The `trust:` section (keys that signatures are checked against).
    pub trust: super::settings::TrustSettings,
}

/// One package of a stack.
#[derive(Debug, Clone)]
pub struct Package {
    /// Package name (unique in a `stack.yaml`; not in a Spack lockfile).
    pub name: String,
    /// Version string.
    pub version: String,
    /// 32 lowercase base32 characters identifying the package and everything below it.
    pub hash: String,
    /// Direct dependencies, as indices into [`Stack::packages`] (always smaller than this package's).
    pub deps: Vec<Dep>,
    /// How the package is built.
    pub recipe: Recipe,
    /// Where its source comes from (none for Spack packages and recipes that need none).
    pub source: Option<Source>,
    /// The package's own `env:`; its recipe runs with [`Stack::env`] overlaid with this.
    pub env: BTreeMap<String, String>,
    /// How long its recipe may run (`timeout:`, else the stack's); not part of the hash.
    pub timeout: Option<Duration>,
}

/// A dependency edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dep {
    /// Index of the dependency in [`Stack::packages`].
    pub index: usize,
    /// Whether it is needed at run time or only to build.
    pub kind: DepKind,
}

/// The kind of a dependency edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DepKind {
    /// Needed to build, link and run (`depends:`; Spack `link`/`run`).
    Runtime,
    /// Needed only to build (`build-depends:`; Spack `build`-only).
    Build,
}

/// How a package is produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipe {
    /// A bash script run with `bash -e` in a fresh build directory.
    Script(String),
    /// A Spack spec: the job runs the stack's Spack command template for this hash.
    Spack,
    /// Provided by the system (Spack `external`): never built, never in the mirror.
    External {
        /// The external prefix on the build machine.
        path: PathBuf,
    },
}

/// Where a package's source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory in the repository (absolute, resolved against [`Stack::dir`]), with
    /// the digest of its contents (paths, modes, bytes) taken when the stack was loaded.
    Path {
        /// The directory.
        path: PathBuf,
        /// Content digest of the tree.
        digest: Digest,
    },
    /// A downloaded archive, verified against `sha256` before use.
    Url {
        /// `file://`, `http://` or `https://` URL.
        url: String,
        /// Expected sha256 of the downloaded file.
        sha256: Digest,
    },
}

/// One entry of the `images:` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageSpec {
    /// `scratch`, `oci://HOST/REPO:TAG` or `oci-layout:DIR:TAG`.
    pub base: String,
    /// Indices of the packages to include (their runtime closure is added).
    pub packages: Vec<usize>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Entrypoint argv.
    pub entrypoint: Vec<String>,
    /// Default arguments.
    pub cmd: Vec<String>,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
}

/// The variable holding a dependency's prefix in a recipe's environment: `<NAME>_PREFIX`,
/// the name uppercased with every other character as `_` (`foo-bar` → `FOO_BAR_PREFIX`).
pub fn prefix_var(name: &str) -> String {
    let mut var: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    var.push_str("_PREFIX");
    var
}

impl Package {
    /// `<name>-<version>-<hash>`: the mirror tag and the prefix directory name.
    ///
    /// Characters not allowed in an OCI tag become `_`; the result is at most 128 characters.
    pub fn tag(&self) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        let mut head = format!("{}-{}", clean(&self.name), clean(&self.version));
        head.truncate(128 - 1 - self.hash.len());
        if head.starts_with(['.', '-']) {
            head.replace_range(0..1, "_");
        }
        format!("{head}-{}", self.hash)
    }

    /// True for packages that are never built or stored.
    pub fn is_external(&self) -> bool {
        matches!(self.recipe, Recipe::External { .. })
    }
}

impl Stack {
    /// The install prefix of package `i`: `<store>/<tag>` (or the external path).
    pub fn prefix(&self, i: usize) -> PathBuf {
        match &self.packages[i].recipe {
            Recipe::External { path } => path.clone(),
            _ => self.store.join(self.packages[i].tag()),
        }
    }

    /// Runtime closure of package `i` in dependency order, `i` itself last; externals excluded.
    pub fn runtime_closure(&self, i: usize) -> Vec<usize> {
        self.closure(&[i], |d| d.kind == DepKind::Runtime)
    }

    /// Everything that must be in the store to build package `i`: its direct dependencies
    /// (runtime and build) and their runtime closures, in dependency order, `i` excluded.
    pub fn build_closure(&self, i: usize) -> Vec<usize> {
        let direct: Vec<usize> = self.packages[i].deps.iter().map(|d| d.index).collect();
        self.closure(&direct, |d| d.kind == DepKind::Runtime)
    }

    /// Union of the closures of `roots` following edges accepted by `follow`, sorted
    /// by index (which is a dependency order); externals excluded.
    fn closure(&self, roots: &[usize], follow: impl Fn(&Dep) -> bool) -> Vec<usize> {
        let mut seen = vec![false; self.packages.len()];
        let mut stack: Vec<usize> = roots.to_vec();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            stack.extend(self.packages[i].deps.iter().filter(|d| follow(d)).map(|d| d.index));
        }
        (0..self.packages.len())
            .filter(|&i| seen[i] && !self.packages[i].is_external())
            .collect()
    }

    /// Index of the package named `name` (or whose tag or hash is `name`), if unique.
    pub fn find(&self, name: &str) -> Option<usize> {
        let by = |f: &dyn Fn(&Package) -> bool| {
            let mut it = self.packages.iter().enumerate().filter(|(_, p)| f(p)).map(|(i, _)| i);
            match (it.next(), it.next()) {
                (Some(i), None) => Some(i),
                _ => None,
            }
        };
        by(&|p| p.hash == name || p.tag() == name).or_else(|| by(&|p| p.name == name))
    }

    /// The directory holding this stack's local state (default mirror, caches, logs).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(".stackci")
    }

    /// Where `path` is shown relative to the stack directory when possible.
    pub fn display_path<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.dir).unwrap_or(path)
    }
}
