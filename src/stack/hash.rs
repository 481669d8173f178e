//! Package identity for `stack.yaml` packages.
//!
//! A package's hash is the sha256 of a canonical byte encoding of everything that can
//! change what the package installs, written as the first 32 characters of its lowercase
//! RFC 4648 base32 form (no padding; 160 bits). Spack packages keep Spack's DAG hash.
//!
//! The encoding is a sequence of fields in this fixed order. A *string* is its u64
//! big-endian byte length followed by its bytes; a *list* is its u64 big-endian item
//! count followed by its items:
//!
//! ```text
//! string "stackci-hash-v1"          format version; bumped whenever this encoding changes
//! string name
//! string version
//! string recipe script              (the `build:` text, byte for byte)
//! string source                     "none" | "path:<hex tree digest>" | "url:<hex sha256>"
//! list   env                        (key string, value string), sorted by key: the stack's
//!                                   `env:` overlaid with the package's `env:`
//! string store root                 normalized absolute path, e.g. "/opt/stackci"
//! string platform                   "<arch>-<os>" of the target platform (`platform:`,
//!                                   `--platform`, default the host's), e.g. "x86_64-linux"
//!                                   ([`crate::platform::Platform::hash_name`])
//! list   dependencies               (name string, kind string "runtime"|"build", hash string),
//!                                   sorted
//! ```
//!
//! Since every field is length-prefixed and the order is fixed, the byte stream decodes
//! back to exactly one input: different inputs never produce the same bytes. A URL source
//! contributes only its sha256 (moving a tarball to another server changes nothing);
//! a path source contributes its tree digest ([`crate::stack::tree`]). A dependency's
//! hash covers everything below it, so a change anywhere below a package changes its hash.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::{DepKind, Source};

/// The inputs to a package's hash.
#[derive(Debug, Clone)]
pub struct HashInput<'a> {
    /// Package name.
    pub name: &'a str,
    /// Package version.
    pub version: &'a str,
    /// The `build:` script.
    pub script: &'a str,
    /// The source, if any.
    pub source: Option<&'a Source>,
    /// The recipe environment: stack `env:` overlaid with package `env:`.
    pub env: &'a BTreeMap<String, String>,
    /// The store root.
    pub store: &'a Path,
    /// `<arch>-<os>`, see [`platform`] and [`crate::platform::Platform::hash_name`].
    pub platform: &'a str,
    /// Direct dependencies: (name, kind, hash).
    pub deps: Vec<(&'a str, DepKind, &'a str)>,
}

/// The platform part of the hash of a package built for the host: `<arch>-<os>` of this
/// build of stackci (`x86_64-linux`).
pub fn platform() -> String {
    crate::platform::Platform::host().hash_name()
}

/// The 32-character lowercase base32 hash of a package (see the module docs).
pub fn package_hash(input: &HashInput<'_>) -> String {
    let mut h = Sha256::new();
    let string = |h: &mut Sha256, s: &[u8]| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s);
    };
    let count = |h: &mut Sha256, n: usize| h.update((n as u64).to_be_bytes());

    string(&mut h, b"stackci-hash-v1");
    string(&mut h, input.name.as_bytes());
    string(&mut h, input.version.as_bytes());
    string(&mut h, input.script.as_bytes());
    let source = match input.source {
        None => "none".to_string(),
        Some(Source::Path { digest, .. }) => format!("path:{}", digest.hex()),
        Some(Source::Url { sha256, .. }) => format!("url:{}", sha256.hex()),
    };
    string(&mut h, source.as_bytes());
    count(&mut h, input.env.len());
    for (k, v) in input.env {
        string(&mut h, k.as_bytes());
        string(&mut h, v.as_bytes());
    }
    string(&mut h, input.store.as_os_str().as_bytes());
    string(&mut h, input.platform.as_bytes());
    let mut deps = input.deps.clone();
    deps.sort_unstable_by_key(|&(name, kind, hash)| (name, kind_str(kind), hash));
    count(&mut h, deps.len());
    for (name, kind, hash) in deps {
        string(&mut h, name.as_bytes());
        string(&mut h, kind_str(kind).as_bytes());
        string(&mut h, hash.as_bytes());
    }
    let mut out = data_encoding::BASE32_NOPAD.encode(&h.finalize());
    out.truncate(32);
    out.make_ascii_lowercase();
    out
}

/// The name of a dependency kind inside the encoding.
fn kind_str(kind: DepKind) -> &'static str {
    match kind {
        DepKind::Runtime => "runtime",
        DepKind::Build => "build",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn input<'a>(env: &'a BTreeMap<String, String>) -> HashInput<'a> {
        HashInput {
            name: "zlib",
            version: "1.3.1",
            script: "make install",
            source: None,
            env,
            store: Path::new("/opt/stackci"),
            platform: "x86_64-linux",
            deps: vec![],
        }
    }

    #[test]
    fn shape_and_pinned_value() {
        let env = BTreeMap::new();
        let h = package_hash(&input(&env));
        assert_eq!(h.len(), 32);
        assert!(h.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')), "{h}");
        assert_eq!(
            h, "z7ydhyfqzxuzlwvz52us6wqfl3mkngyd",
            "encoding changed: bump the version tag"
        );
    }

    #[test]
    fn every_field_counts() {
        let env = BTreeMap::new();
        let base = package_hash(&input(&env));
        let env2: BTreeMap<String, String> = [("CFLAGS".into(), "-O2".into())].into();
        let src = Source::Url {
            url: "https://x/y.tgz".into(),
            sha256: Digest::of(b"y"),
        };
        let variants: Vec<HashInput> = vec![
            HashInput {
                name: "zlib-ng",
                ..input(&env)
            },
            HashInput {
                version: "1.3.2",
                ..input(&env)
            },
            HashInput {
                script: "make  install",
                ..input(&env)
            },
            HashInput {
                source: Some(&src),
                ..input(&env)
            },
            input(&env2),
            HashInput {
                store: Path::new("/opt/other"),
                ..input(&env)
            },
            HashInput {
                platform: "aarch64-linux",
                ..input(&env)
            },
            HashInput {
                deps: vec![("a", DepKind::Runtime, "h")],
                ..input(&env)
            },
            HashInput {
                deps: vec![("a", DepKind::Build, "h")],
                ..input(&env)
            },
        ];
        let mut seen = std::collections::BTreeSet::from([base]);
        for v in &variants {
            assert!(seen.insert(package_hash(v)), "collision for {v:?}");
        }
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let env = BTreeMap::new();
        let a = package_hash(&HashInput {
            name: "ab",
            version: "c",
            ..input(&env)
        });
        let b = package_hash(&HashInput {
            name: "a",
            version: "bc",
            ..input(&env)
        });
        assert_ne!(a, b);
    }

    #[test]
    fn dependency_order_does_not_matter() {
        let env = BTreeMap::new();
        let a = package_hash(&HashInput {
            deps: vec![("x", DepKind::Runtime, "1"), ("y", DepKind::Build, "2")],
            ..input(&env)
        });
        let b = package_hash(&HashInput {
            deps: vec![("y", DepKind::Build, "2"), ("x", DepKind::Runtime, "1")],
            ..input(&env)
        });
        assert_eq!(a, b);
    }

    #[test]
    fn url_is_not_part_of_identity_only_its_sha() {
        let env = BTreeMap::new();
        let one = Source::Url {
            url: "https://a/x.tgz".into(),
            sha256: Digest::of(b"x"),
        };
        let two = Source::Url {
            url: "https://b/x.tgz".into(),
            sha256: Digest::of(b"x"),
        };
        assert_eq!(
            package_hash(&HashInput {
                source: Some(&one),
                ..input(&env)
            }),
            package_hash(&HashInput {
                source: Some(&two),
                ..input(&env)
            })
        );
    }
}
