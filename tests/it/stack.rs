//! Loading real stack files: the Spack fixtures, a pinned-hash stack, and every error
//! as the user sees it (paths relative to the crate root, as typed on a command line).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use stackci::stack::{self, DepKind, ErrorKind, Recipe, Source, Stack, StackKind};

/// Every dependency index is smaller than its package's: the order the program relies on.
fn assert_dependency_order(stack: &Stack) {
    for (i, p) in stack.packages.iter().enumerate() {
        for d in &p.deps {
            assert!(
                d.index < i,
                "{} (#{i}) depends on #{} which comes later",
                p.name,
                d.index
            );
        }
    }
}

fn count_edges(stack: &Stack) -> (usize, usize) {
    let all = stack.packages.iter().flat_map(|p| &p.deps);
    let runtime = all.clone().filter(|d| d.kind == DepKind::Runtime).count();
    (runtime, all.count() - runtime)
}

#[test]
fn spack_all_pythons_v6() {
    let path = Path::new("tests/fixtures/spack/all-pythons.spack.lock");
    let stack = stack::load(path).unwrap();
    assert_eq!(stack.kind, StackKind::SpackLock);
    assert_eq!(stack.name, "spack", "named after the lockfile's directory");
    assert_eq!(stack.store, Path::new("/opt/stackci"));
    assert_eq!(stack.packages.len(), 81);
    assert_eq!(stack.packages.iter().filter(|p| p.is_external()).count(), 4);
    assert_eq!(
        count_edges(&stack),
        (327, 250),
        "(runtime, build) edges: link/run vs build-only"
    );
    assert_dependency_order(&stack);

    let python = stack.find("2myq44he5nkui3zyqnb2lgkfgessxwfs").unwrap();
    let p = &stack.packages[python];
    assert_eq!(
        (p.name.as_str(), p.version.as_str(), p.recipe.clone()),
        ("python", "3.13.5", Recipe::Spack)
    );
    assert_eq!(p.tag(), "python-3.13.5-2myq44he5nkui3zyqnb2lgkfgessxwfs");
    let glibc = stack.find("jj453jrztly4nh7pft4tzc7wy3obu6u5").unwrap();
    assert_eq!(stack.packages[glibc].recipe, Recipe::External { path: "/usr".into() });
    assert_eq!(stack.prefix(glibc), Path::new("/usr"));
}

#[test]
fn spack_slac_v5() {
    let path = Path::new("tests/fixtures/spack/slac-relmanage.spack.lock");
    let stack = stack::load(path).unwrap();
    assert_eq!(stack.packages.len(), 514);
    assert_eq!(stack.packages.iter().filter(|p| p.is_external()).count(), 1);
    assert_eq!(count_edges(&stack), (2759, 1450));
    assert_dependency_order(&stack);
    let numpy = stack.find("ksajkzgtait4v43axaetv5hgwkz5fpgo").unwrap();
    let deps: BTreeMap<&str, DepKind> = stack.packages[numpy]
        .deps
        .iter()
        .map(|d| (stack.packages[d.index].name.as_str(), d.kind))
        .collect();
    assert_eq!(deps["openblas"], DepKind::Runtime);
    assert_eq!(deps["py-cython"], DepKind::Build);
    assert_eq!(deps["glibc"], DepKind::Runtime);

    // Loading twice gives the same order: nothing depends on hash-map iteration.
    let again = stack::load(path).unwrap();
    let hashes = |s: &Stack| s.packages.iter().map(|p| p.hash.clone()).collect::<Vec<_>>();
    assert_eq!(hashes(&stack), hashes(&again));

    // Timing only informs here (the target is measured in release builds:
    // `cargo test --release --test it stack::spack_slac -- --nocapture`).
    let runs = 20;
    let (start, cpu) = (Instant::now(), thread_cpu());
    for _ in 0..runs {
        stack::load(path).unwrap();
    }
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    eprintln!(
        "SLAC lockfile (514 specs) loaded in {:?} wall, {:?} CPU on average ({build} build)",
        start.elapsed() / runs,
        (thread_cpu() - cpu) / runs
    );
}

/// CPU time used by this thread (less noisy than wall time on a busy machine).
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn spack_v4_uses_type_lists() {
    let stack = stack::load(Path::new("tests/fixtures/spack/v4-mini.spack.lock")).unwrap();
    let names: Vec<&str> = stack.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["check", "perl", "zlib", "cmake", "hello"]);
    assert_dependency_order(&stack);
    let hello = &stack.packages[4];
    let deps: Vec<(&str, DepKind)> = hello
        .deps
        .iter()
        .map(|d| (stack.packages[d.index].name.as_str(), d.kind))
        .collect();
    assert_eq!(
        deps,
        [
            ("perl", DepKind::Runtime),
            ("zlib", DepKind::Runtime),
            ("cmake", DepKind::Build)
        ]
    );
    assert!(stack.packages[1].is_external());
    // `check` is test-only: present as a package, but not an edge; runtime closure follows link/run.
    let closure: Vec<&str> = stack
        .runtime_closure(4)
        .iter()
        .map(|&i| stack.packages[i].name.as_str())
        .collect();
    assert_eq!(closure, ["zlib", "hello"], "externals are left out of closures");
}

#[test]
fn pinned_hashes() {
    let platform = stack::hash::platform();
    assert_eq!(
        platform, "x86_64-linux",
        "the pinned hashes include the platform; this snapshot is recorded for x86_64 Linux only"
    );
    let stack = stack::load(Path::new("tests/fixtures/stacks/hashes/stack.yaml")).unwrap();
    let mut out = String::new();
    for p in &stack.packages {
        out.push_str(&format!("{} {} {}\n", p.name, p.version, p.hash));
        for d in &p.deps {
            out.push_str(&format!("  {:?} {}\n", d.kind, stack.packages[d.index].name));
        }
        if let Some(Source::Path { digest, .. }) = &p.source {
            out.push_str(&format!("  source tree {digest}\n"));
        }
    }
    insta::assert_snapshot!("hashes", out);
}

/// Loads `file` (relative to the crate root) and returns the error as printed.
fn error(file: &str) -> (ErrorKind, String) {
    let e = stack::load(Path::new(file)).expect_err(file);
    (e.kind, e.to_string())
}

#[test]
fn errors_as_the_user_sees_them() {
    let dir = "tests/fixtures/stacks/errors";
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| format!("{dir}/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    files.sort();
    let mut out = String::new();
    for file in &files {
        let (kind, text) = error(file);
        out.push_str(&format!("{kind:?}: {text}\n"));
    }
    insta::assert_snapshot!("errors", out);

    assert_eq!(
        error(&format!("{dir}/unknown-dependency.yaml")),
        (
            ErrorKind::UnknownPackage,
            format!(
                "{dir}/unknown-dependency.yaml:8:15: package `hello`: depends on unknown package `zlb` (did you mean `zlib`?)"
            )
        )
    );
    // The store is where prefixes and receipts go: it must be absolute and say where.
    assert_eq!(
        error(&format!("{dir}/dotdot-store.yaml")),
        (
            ErrorKind::Invalid,
            format!("{dir}/dotdot-store.yaml:2:8: `store: /opt/stackci/../../etc` must not contain `..` components")
        )
    );
    assert_eq!(
        error(&format!("{dir}/relative-store.yaml")).1,
        format!("{dir}/relative-store.yaml:2:8: `store: opt/stackci` must be an absolute path")
    );
    assert_eq!(
        error(&format!("{dir}/cycle.yaml")),
        (
            ErrorKind::Cycle,
            format!(
                "{dir}/cycle.yaml:5:15: package `compiler`: dependency cycle: compiler -> runtime -> libc -> compiler"
            )
        )
    );
}

#[test]
fn discover_honours_explicit_paths() {
    let path = Path::new("tests/fixtures/stacks/hashes/stack.yaml");
    assert_eq!(stack::discover(Some(path)).unwrap(), path);
    let e = stack::discover(Some(Path::new("tests/fixtures/none.yaml"))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        "tests/fixtures/none.yaml: cannot open the stack file (from --stack)"
    );
}
