//! Hand-built stacks and plans for the generator tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::digest::Digest;
use crate::plan::Plan;
use crate::stack::{Dep, DepKind, ImageSpec, Package, Recipe, Stack, StackKind};

/// A 32-character lowercase base32 hash derived from `seed`.
pub(crate) fn fake_hash(seed: &str) -> String {
    let d = Digest::of(seed.as_bytes()).hex();
    data_encoding::BASE32_NOPAD.encode(d.as_bytes()).to_ascii_lowercase()[..32].to_string()
}

/// A stack of script packages `(name, version, deps)`, deps by name, in dependency order.
pub(crate) fn stack(name: &str, pkgs: &[(&str, &str, &[&str])]) -> Stack {
    let mut packages: Vec<Package> = Vec::new();
    for (n, v, deps) in pkgs {
        let deps = deps
            .iter()
            .map(|d| Dep {
                index: packages
                    .iter()
                    .position(|p| p.name == *d)
                    .expect("dependency listed first"),
                kind: DepKind::Runtime,
            })
            .collect();
        packages.push(Package {
            name: n.to_string(),
            version: v.to_string(),
            hash: fake_hash(&format!("{n}-{v}")),
            deps,
            recipe: Recipe::Script("make install".into()),
            source: None,
            env: BTreeMap::new(),
            timeout: None,
        });
    }
    Stack {
        name: name.into(),
        path: PathBuf::from("/project/stack.yaml"),
        dir: PathBuf::from("/project"),
        kind: StackKind::Yaml,
        store: PathBuf::from("/opt/stackci"),
        platform: crate::platform::Platform::host(),
        env: BTreeMap::new(),
        mirror: None,
        upstreams: Vec::new(),
        packages,
        images: BTreeMap::new(),
        status: Default::default(),
        ci: Default::default(),
        spack: None,
        trust: Default::default(),
    }
}

/// The demo-like stack used by the snapshot tests: five packages, one image.
pub(crate) fn small() -> Stack {
    let mut s = stack(
        "demo",
        &[
            ("zlib", "1.3.1", &[]),
            ("crcgen", "1.0", &[]),
            ("libcrc", "2.1", &["crcgen"]),
            ("libreport", "0.4", &["zlib", "libcrc"]),
            ("hello", "1.0", &["libreport", "zlib"]),
        ],
    );
    s.packages[1].deps.clear();
    s.packages[2].deps = vec![Dep {
        index: 1,
        kind: DepKind::Build,
    }];
    s.images.insert(
        "tools".into(),
        ImageSpec {
            base: "scratch".into(),
            packages: vec![4],
            entrypoint: vec!["hello".into()],
            ..Default::default()
        },
    );
    s
}

/// `n` packages with a realistic fan-in: package `i` depends on up to 6 of the 40
/// packages before it (a deterministic pseudo-random pick), so levels are deep and wide.
pub(crate) fn synthetic(n: usize) -> Stack {
    let mut s = stack("synthetic", &[]);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        let mut deps: Vec<Dep> = Vec::new();
        if i > 0 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            for k in 0..((x >> 33) % 7) {
                let back = 1 + ((x >> (8 * k)) % 40.min(i as u64)) as usize;
                if !deps.iter().any(|d| d.index == i - back) {
                    deps.push(Dep {
                        index: i - back,
                        kind: DepKind::Runtime,
                    });
                }
            }
        }
        s.packages.push(Package {
            name: format!("pkg{i}"),
            version: "1.0".into(),
            hash: fake_hash(&format!("pkg{i}")),
            deps,
            recipe: Recipe::Script("true".into()),
            source: None,
            env: BTreeMap::new(),
            timeout: None,
        });
    }
    s
}

/// The plan of `stack` against a mirror holding the packages named in `cached`.
pub(crate) fn plan(stack: &Stack, cached: &[&str]) -> Plan {
    let tags: BTreeSet<String> = stack
        .packages
        .iter()
        .filter(|p| cached.contains(&p.name.as_str()))
        .map(|p| p.tag())
        .collect();
    Plan::new(stack, "file:///srv/mirror".into(), &tags)
}

/// Parses generated YAML back into a JSON value (keys in file order).
pub(crate) fn parse(yaml: &str) -> serde_json::Value {
    serde_saphyr::from_str(yaml).expect("generated YAML parses")
}
