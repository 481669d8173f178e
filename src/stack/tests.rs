//! Loading and validation tests: every error as the user sees it, ordering and hashing.

use std::fs;

use super::*;

/// A temporary directory holding one stack file.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes `rel` (creating parents) and returns its path.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    fn load(&self, yaml: &str) -> Result<Stack, StackError> {
        load(&self.write("stack.yaml", yaml))
    }

    /// The error for `yaml`, displayed with the temporary directory removed.
    fn error(&self, yaml: &str) -> String {
        let e = self.load(yaml).expect_err("the stack should be rejected");
        e.to_string().replace(&format!("{}/", self.dir.path().display()), "")
    }
}

/// The error text for a `stack.yaml` with `packages` under a fixed header (2 lines).
fn error(packages: &str) -> String {
    Fixture::new().error(&format!("name: t\npackages:\n{packages}"))
}

const GOOD: &str = r#"name: demo
env: { CFLAGS: "-O2" }
packages:
  hello:
    version: "1.0"
    depends: [libz]
    build-depends: [tool]
    source: { path: src/hello }
    build: make install
  libz:
    version: 1.10
    source: { url: "https://example.org/z.tgz", sha256: 9a93b2b7dfdac77ceba5a558a580e74667dd6fede4585b91eefb60f03b72df23 }
    env: { ZOPT: "1" }
    build: |
      ./configure --prefix="$PREFIX"
      make install
  tool:
    version: "2"
    build: ""
images:
  tools:
    packages: [hello]
    entrypoint: [hello]
  plain:
    base: oci://registry.example/base:1
"#;

#[test]
fn loads_a_valid_stack() {
    let fx = Fixture::new();
    fx.write("src/hello/hello.c", "int main() { return 0; }\n");
    let stack = fx.load(GOOD).unwrap();
    assert_eq!(stack.name, "demo");
    assert_eq!(stack.kind, StackKind::Yaml);
    assert_eq!(stack.store, Path::new(DEFAULT_STORE));
    assert_eq!(stack.dir, fx.dir.path());
    assert_eq!(stack.env["CFLAGS"], "-O2");
    assert_eq!(stack.mirror, None);

    let names: Vec<&str> = stack.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["libz", "tool", "hello"], "dependencies first, ties by name");
    let hello = &stack.packages[2];
    assert_eq!(
        hello.deps,
        [
            Dep {
                index: 0,
                kind: DepKind::Runtime
            },
            Dep {
                index: 1,
                kind: DepKind::Build
            }
        ]
    );
    assert_eq!(hello.recipe, Recipe::Script("make install".into()));
    match &hello.source {
        Some(Source::Path { path, .. }) => assert_eq!(path, &fx.dir.path().join("src/hello")),
        other => panic!("{other:?}"),
    }
    let libz = &stack.packages[0];
    assert_eq!(libz.version, "1.10", "a YAML number keeps its text");
    assert!(matches!(&libz.source, Some(Source::Url { url, .. }) if url == "https://example.org/z.tgz"));
    assert_eq!(libz.env["ZOPT"], "1");
    assert_eq!(stack.recipe_env(0).len(), 2);
    assert_eq!(stack.packages[1].recipe, Recipe::Script(String::new()));

    assert_eq!(stack.images["tools"].packages, [2]);
    assert_eq!(stack.images["tools"].base, "scratch");
    assert_eq!(stack.images["tools"].entrypoint, ["hello"]);
    assert_eq!(stack.images["plain"].base, "oci://registry.example/base:1");

    for p in &stack.packages {
        assert_eq!(p.hash.len(), 32);
        assert!(p.deps.iter().all(|d| d.index < stack.find(&p.name).unwrap()));
    }
}

#[test]
fn platform_flag_hashes_a_stack_yaml_under_any_file_name() {
    let fx = Fixture::new();
    fx.write("src/hello/hello.c", "x");
    let host = crate::platform::Platform::host();
    let other = if host.architecture == "arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let arm = crate::platform::Platform::parse(other).unwrap();
    let hashes = |s: &Stack| s.packages.iter().map(|p| p.hash.clone()).collect::<Vec<_>>();
    let yaml = load_for(&fx.write("stack.yaml", GOOD), Some(&arm)).unwrap();
    let other_name = load_for(&fx.write("stack.conf", GOOD), Some(&arm)).unwrap();
    assert_eq!(hashes(&other_name), hashes(&yaml));
    assert_eq!(other_name.platform, arm);
    let on_host = load(&fx.write("host.conf", GOOD)).unwrap();
    assert_ne!(hashes(&on_host), hashes(&yaml), "the platform is part of the hash");
}

#[test]
fn order_and_hashes_do_not_depend_on_file_order() {
    let fx = Fixture::new();
    fx.write("src/hello/hello.c", "x");
    let a = fx.load(GOOD).unwrap();
    // Same packages, reversed order of entries.
    let reordered = GOOD.replace(
        "packages:\n  hello:",
        "packages:\n  zzz:\n    version: '0'\n    build: ''\n  hello:",
    );
    let b = fx.load(&reordered).unwrap();
    let key = |s: &Stack| {
        s.packages
            .iter()
            .filter(|p| p.name != "zzz")
            .map(|p| (p.name.clone(), p.hash.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&a), key(&b));
}

#[test]
fn syntax_error_has_position_and_package() {
    assert_eq!(
        error("  a:\n    version: '1\n    build: x\n"),
        "stack.yaml:5:5: package `a`: invalid indentation in multiline quoted scalar"
    );
    let e = Fixture::new().error("name: [unclosed\n");
    assert!(e.starts_with("stack.yaml:"), "{e}");
}

#[test]
fn unknown_key_names_package() {
    assert_eq!(
        error("  a:\n    version: '1'\n    biuld: x\n"),
        "stack.yaml:5:5: package `a`: unknown field `biuld`, expected one of version, source, build, depends, build-depends, env, timeout"
    );
    let e = Fixture::new().error("name: t\npackages: {}\nmirorr: x\n");
    assert!(e.starts_with("stack.yaml:3:1: unknown field `mirorr`"), "{e}");
}

#[test]
fn unknown_dependency() {
    assert_eq!(
        error(
            "  zlib:\n    version: '1'\n    build: x\n  hello:\n    version: '1'\n    depends: [zlb]\n    build: x\n"
        ),
        "stack.yaml:8:15: package `hello`: depends on unknown package `zlb` (did you mean `zlib`?)"
    );
    assert_eq!(
        error("  hello:\n    version: '1'\n    build-depends:\n      - nothing\n    build: x\n"),
        "stack.yaml:6:9: package `hello`: depends on unknown package `nothing`"
    );
}

#[test]
fn dependency_cycle_is_printed() {
    let yaml = "  b:\n    version: '1'\n    depends: [c]\n    build: x\n  \
                c:\n    version: '1'\n    build-depends: [a]\n    build: x\n  \
                a:\n    version: '1'\n    depends: [b]\n    build: x\n  \
                top:\n    version: '1'\n    depends: [a]\n    build: x\n";
    assert_eq!(
        error(yaml),
        "stack.yaml:13:15: package `a`: dependency cycle: a -> b -> c -> a"
    );
    assert_eq!(
        error("  me:\n    version: '1'\n    depends: [me]\n    build: x\n"),
        "stack.yaml:5:15: package `me`: dependency cycle: me -> me"
    );
}

#[test]
fn duplicate_package() {
    assert_eq!(
        error(
            "  a:\n    version: '1'\n    build: x\n  b:\n    version: '1'\n    build: x\n  a:\n    version: '2'\n    build: y\n"
        ),
        "stack.yaml:9:3: package `a`: duplicate package `a` (first defined at line 3)"
    );
    let e = error("  a:\n    version: '1'\n    version: '2'\n    build: x\n");
    assert!(
        e.starts_with("stack.yaml:5:5: package `a`: duplicate mapping key `version`"),
        "{e}"
    );
}

#[test]
fn missing_version_and_build() {
    assert_eq!(
        error("  a:\n    build: x\n"),
        "stack.yaml:3:3: package `a`: missing `version:`"
    );
    assert_eq!(
        error("  a:\n    version: '1'\n"),
        "stack.yaml:3:3: package `a`: missing `build:` script"
    );
    assert_eq!(
        error("  a:\n    version: 'a b'\n    build: x\n"),
        "stack.yaml:4:14: package `a`: invalid version `a b`: must be non-empty, without spaces or `/`"
    );
}

#[test]
fn bad_sha256() {
    let sha = "9A93B2B7DFDAC77CEBA5A558A580E74667DD6FEDE4585B91EEFB60F03B72DF23";
    assert_eq!(
        error(&format!(
            "  a:\n    version: '1'\n    source: {{ url: 'https://x/a.tgz', sha256: {sha} }}\n    build: x\n"
        )),
        format!("stack.yaml:5:47: package `a`: bad sha256 `{sha}`: expected 64 lowercase hex characters")
    );
    let e = error("  a:\n    version: '1'\n    source: { url: 'https://x/a.tgz', sha256: abc }\n    build: x\n");
    assert!(e.contains("bad sha256 `abc`"), "{e}");
    assert_eq!(
        error("  a:\n    version: '1'\n    source: { url: 'https://x/a.tgz' }\n    build: x\n"),
        "stack.yaml:5:20: package `a`: `source: { url: }` needs `sha256:`"
    );
    assert_eq!(
        error("  a:\n    version: '1'\n    source: { url: 'ftp://x/a.tgz', sha256: abc }\n    build: x\n"),
        "stack.yaml:5:20: package `a`: source url `ftp://x/a.tgz`: only file://, http:// and https:// URLs are supported"
    );
}

#[test]
fn source_needs_exactly_one_kind() {
    let both = error("  a:\n    version: '1'\n    source: { url: 'https://x', path: src }\n    build: x\n");
    assert_eq!(
        both,
        "stack.yaml:5:13: package `a`: `source:` needs exactly one of `url:` (with `sha256:`) or `path:`"
    );
    let neither = error("  a:\n    version: '1'\n    source: {}\n    build: x\n");
    assert!(
        neither.ends_with("needs exactly one of `url:` (with `sha256:`) or `path:`"),
        "{neither}"
    );
    let fx = Fixture::new();
    fx.write("src/a/f", "x");
    let e = fx
        .error("name: t\npackages:\n  a:\n    version: '1'\n    source: { path: src/a, sha256: abc }\n    build: x\n");
    assert!(
        e.starts_with("stack.yaml:5:36: package `a`: `sha256:` belongs to `url:` sources"),
        "{e}"
    );
}

#[test]
fn path_source_must_exist() {
    let fx = Fixture::new();
    let yaml = "name: t\npackages:\n  a:\n    version: '1'\n    source:\n      path: src/missing\n    build: x\n";
    let err = fx.load(yaml).unwrap_err();
    let resolved = fx.dir.path().join("src/missing");
    assert_eq!(
        err.message,
        format!(
            "source path `src/missing` does not exist (looked for `{}`)",
            resolved.display()
        )
    );
    assert!(
        fx.error(yaml)
            .starts_with("stack.yaml:6:13: package `a`: source path `src/missing` does not exist")
    );
    fx.write("file", "");
    let e = fx.error("name: t\npackages:\n  a:\n    version: '1'\n    source: { path: ./file }\n    build: x\n");
    assert!(e.contains("source path `./file` is not a directory"), "{e}");
}

#[test]
fn unreadable_source_is_an_io_error_with_cause() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    fx.write("src/a/secret", "x");
    fs::set_permissions(fx.dir.path().join("src/a/secret"), fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(fx.dir.path().join("src/a/secret")).is_ok() {
        // Running as root: permissions do not stop reads; use a FIFO instead.
        fs::remove_file(fx.dir.path().join("src/a/secret")).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(fx.dir.path().join("src/a/secret"))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let err = fx
        .load("name: t\npackages:\n  a:\n    version: '1'\n    source: { path: src/a }\n    build: x\n")
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Io);
    assert_eq!(err.package.as_deref(), Some("a"));
    assert!(err.message.contains("src/a/secret"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn image_with_unknown_package() {
    let fx = Fixture::new();
    let e = fx.error(
        "name: t\npackages:\n  hello:\n    version: '1'\n    build: x\nimages:\n  tools:\n    packages: [helo]\n",
    );
    assert_eq!(
        e,
        "stack.yaml:8:16: image `tools`: unknown package `helo` (did you mean `hello`?)"
    );
    let e = fx.error("name: t\npackages: {}\nimages:\n  tools:\n    base: ubuntu\n");
    assert!(
        e.starts_with("stack.yaml:5:11: image `tools`: base `ubuntu`: expected `scratch`"),
        "{e}"
    );
    let e = fx.error("name: t\npackages: {}\nimages:\n  tools:\n    bsae: scratch\n");
    assert!(
        e.starts_with("stack.yaml:5:5: image `tools`: unknown field `bsae`"),
        "{e}"
    );
}

#[test]
fn duplicate_image() {
    let e = Fixture::new().error("name: t\npackages: {}\nimages:\n  a: {}\n  a: {}\n");
    assert_eq!(
        e,
        "stack.yaml:5:3: image `a`: duplicate image `a` (first defined at line 4)"
    );
}

#[test]
fn store_must_be_absolute() {
    let e = Fixture::new().error("name: t\nstore: opt/stackci\npackages: {}\n");
    assert_eq!(e, "stack.yaml:2:8: `store: opt/stackci` must be an absolute path");
    let stack = Fixture::new()
        .load("name: t\nstore: /opt/./x//\npackages: {}\n")
        .unwrap();
    assert_eq!(stack.store, Path::new("/opt/x"));
}

#[test]
fn names_follow_the_rule() {
    assert_eq!(
        error("  Hello:\n    version: '1'\n    build: x\n"),
        "stack.yaml:3:3: package `Hello`: invalid package name: names are lowercase letters, digits and `._+-`, starting with a letter or digit"
    );
    assert!(error("  -x:\n    version: '1'\n    build: x\n").contains("invalid package name"));
    let ok = Fixture::new()
        .load("name: t\npackages:\n  g++-12.1_x:\n    version: '1'\n    build: x\n")
        .unwrap();
    assert_eq!(ok.packages[0].name, "g++-12.1_x");
    let e = Fixture::new().error("name: My Stack\npackages: {}\n");
    assert!(e.starts_with("stack.yaml:1:7: invalid stack name `My Stack`"), "{e}");
}

#[test]
fn dependency_listed_twice() {
    assert_eq!(
        error(
            "  a:\n    version: '1'\n    build: x\n  b:\n    version: '1'\n    depends: [a]\n    build-depends: [a]\n    build: x\n"
        ),
        "stack.yaml:9:21: package `b`: lists `a` twice (a dependency goes once, in either `depends` or `build-depends`)"
    );
}

#[test]
fn timeouts_default_to_the_stack_and_leave_hashes_alone() {
    let f = Fixture::new();
    let plain = f
        .load("name: t\npackages:\n  a:\n    version: '1'\n    build: x\n  b:\n    version: '1'\n    build: x\n")
        .unwrap();
    let timed = f
        .load("name: t\ntimeout: 2h\npackages:\n  a:\n    version: '1'\n    build: x\n  b:\n    version: '1'\n    timeout: 90\n    build: x\n")
        .unwrap();
    let t = |s: &Stack, n: &str| s.packages[s.find(n).unwrap()].timeout;
    assert_eq!(t(&plain, "a"), None);
    assert_eq!(t(&timed, "a"), Some(std::time::Duration::from_secs(7200)));
    assert_eq!(t(&timed, "b"), Some(std::time::Duration::from_secs(90)));
    let hashes = |s: &Stack| s.packages.iter().map(|p| p.hash.clone()).collect::<Vec<_>>();
    assert_eq!(
        hashes(&plain),
        hashes(&timed),
        "a timeout must not change what is cached"
    );
    assert_eq!(
        Fixture::new().error("name: t\ntimeout: 0\npackages: {}\n"),
        "stack.yaml:2:10: invalid timeout `0`: expected a positive duration like `90s`, `45m`, `2h` or a number of seconds"
    );
}

#[test]
fn prefix_variables_must_not_collide() {
    // `b_c` reaches `top` only through `mid`'s runtime closure: the package is named.
    let e = error(
        "  b-c:\n    version: '1'\n    build: x\n  b_c:\n    version: '1'\n    build: x\n  mid:\n    version: '1'\n    depends: [b_c]\n    build: x\n  top:\n    version: '1'\n    depends: [mid, b-c]\n    build: x\n",
    );
    assert_eq!(
        e,
        "stack.yaml:15:20: package `top`: dependencies `b-c` and `b_c` would both set `B_C_PREFIX` in its build environment; rename one of them"
    );
    // Same variable, different build environments: fine.
    error_free(
        "  b-c:\n    version: '1'\n    build: x\n  b_c:\n    version: '1'\n    build: x\n  x:\n    version: '1'\n    depends: [b-c]\n    build: x\n",
    );
}

fn error_free(packages: &str) {
    Fixture::new().load(&format!("name: t\npackages:\n{packages}")).unwrap();
}

#[test]
fn env_names_are_checked() {
    let e = Fixture::new().error("name: t\nenv: { 'A-B': x }\npackages: {}\n");
    assert!(
        e.starts_with("stack.yaml:2:8: invalid environment variable name `A-B`"),
        "{e}"
    );
    let e = error("  a:\n    version: '1'\n    build: x\n    env:\n      1X: y\n");
    assert!(
        e.starts_with("stack.yaml:7:7: package `a`: invalid environment variable name `1X`"),
        "{e}"
    );
}

#[test]
fn missing_top_level_fields() {
    assert_eq!(Fixture::new().error("packages: {}\n"), "stack.yaml: missing `name:`");
    let missing = "stack.yaml: missing `packages:` (an empty stack is `packages: {}`; a Spack environment is `spack: { env: DIR }`)";
    assert_eq!(Fixture::new().error("name: t\n"), missing);
    assert_eq!(Fixture::new().error("name: t\npackages:\n"), missing);
    let e = Fixture::new().error("");
    assert!(e.starts_with("stack.yaml"), "{e}");
    let stack = Fixture::new()
        .load("name: t\nmirror: s3://bucket/x\npackages: {}\n")
        .unwrap();
    assert_eq!(stack.mirror.as_deref(), Some("s3://bucket/x"));
    assert!(stack.packages.is_empty());
}

#[test]
fn upstreams_are_listed_once_each_and_never_the_mirror() {
    let stack = Fixture::new()
        .load("name: t\nmirror: oci://r/pr\nupstreams: [oci://r/main, s3://b/x]\npackages: {}\n")
        .unwrap();
    assert_eq!(stack.upstreams, ["oci://r/main", "s3://b/x"]);
    assert_eq!(
        Fixture::new().error("name: t\nupstreams:\n  - oci://r/a\n  - oci://r/a\npackages: {}\n"),
        "stack.yaml:4:5: `upstreams:` lists oci://r/a twice (or it is the `mirror:` itself)"
    );
    assert_eq!(
        Fixture::new().error("name: t\nupstreams: [\"\"]\npackages: {}\n"),
        "stack.yaml:2:13: an entry of `upstreams:` is empty"
    );
}

#[test]
fn missing_file_is_io_error() {
    let err = load(Path::new("/nonexistent/stack.yaml")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Io);
    assert_eq!(err.to_string(), "/nonexistent/stack.yaml: cannot read the stack file");
    assert!(std::error::Error::source(&err).is_some());
}

/// A four-package stack: a <- b <- c (each depends on the previous), d alone.
fn chain(a_script: &str, d_version: &str) -> BTreeMap<String, String> {
    let fx = Fixture::new();
    let yaml = format!(
        "name: t\npackages:\n  \
         a:\n    version: '1'\n    build: {a_script}\n  \
         b:\n    version: '1'\n    depends: [a]\n    build: x\n  \
         c:\n    version: '1'\n    build-depends: [b]\n    build: x\n  \
         d:\n    version: '{d_version}'\n    build: x\n"
    );
    fx.load(&yaml)
        .unwrap()
        .packages
        .into_iter()
        .map(|p| (p.name, p.hash))
        .collect()
}

#[test]
fn hashes_change_with_everything_below() {
    let base = chain("make", "1");
    let recipe = chain("make install", "1");
    for name in ["a", "b", "c"] {
        assert_ne!(base[name], recipe[name], "{name} must change with a's recipe");
    }
    assert_eq!(base["d"], recipe["d"], "d is independent of a");
    let version = chain("make", "2");
    for name in ["a", "b", "c"] {
        assert_eq!(base[name], version[name], "{name} must not change with d's version");
    }
    assert_ne!(base["d"], version["d"]);
    assert_eq!(base, chain("make", "1"), "deterministic");
}

#[test]
fn hashes_follow_env_store_and_sources() {
    let fx = Fixture::new();
    fx.write("src/f.c", "one");
    let yaml = |env: &str, store: &str| {
        format!(
            "name: t\nstore: {store}\nenv: {{ {env} }}\npackages:\n  a:\n    version: '1'\n    source: {{ path: src }}\n    build: x\n"
        )
    };
    let base = fx.load(&yaml("A: '1'", "/opt/s")).unwrap().packages[0].hash.clone();
    assert_ne!(fx.load(&yaml("A: '2'", "/opt/s")).unwrap().packages[0].hash, base);
    assert_ne!(fx.load(&yaml("A: '1'", "/opt/t")).unwrap().packages[0].hash, base);
    // A package `env:` entry overriding the stack's with the same value hashes the same.
    let over = "name: t\nstore: /opt/s\nenv: { A: '1' }\npackages:\n  a:\n    version: '1'\n    source: { path: src }\n    env: { A: '1' }\n    build: x\n";
    assert_eq!(fx.load(over).unwrap().packages[0].hash, base);
    fx.write("src/f.c", "two");
    assert_ne!(fx.load(&yaml("A: '1'", "/opt/s")).unwrap().packages[0].hash, base);
    // The stack's state directory is not part of a source at the stack root.
    fx.write("src/f.c", "one");
    fx.write(".stackci/mirror/x", "blob");
    let root = "name: t\nstore: /opt/s\npackages:\n  a:\n    version: '1'\n    source: { path: . }\n    build: x\n";
    let with_state = fx.load(root).unwrap().packages[0].hash.clone();
    fx.write(".stackci/mirror/y", "another blob");
    assert_eq!(fx.load(root).unwrap().packages[0].hash, with_state);
}

#[test]
fn discovery_order() {
    let fx = Fixture::new();
    let dir = fx.dir.path();
    let e = discover_in(None, None, dir).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!(
            "{}: no stack file found; tried --stack (not given), $STACKCI_STACK (not set), ./stack.yaml, ./spack.lock",
            dir.display()
        )
    );
    let lock = fx.write("spack.lock", "{}");
    assert_eq!(discover_in(None, None, dir).unwrap(), lock);
    let yaml = fx.write("stack.yaml", "");
    assert_eq!(discover_in(None, None, dir).unwrap(), yaml);
    let other = fx.write("other.yaml", "");
    assert_eq!(discover_in(None, Some(&other), dir).unwrap(), other);
    assert_eq!(discover_in(Some(&lock), Some(&other), dir).unwrap(), lock);
    let missing = dir.join("missing.yaml");
    let e = discover_in(Some(&missing), None, dir).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: cannot open the stack file (from --stack)", missing.display())
    );
    let e = discover_in(None, Some(&missing), dir).unwrap_err();
    assert!(e.to_string().ends_with("(from STACKCI_STACK)"), "{e}");
    assert_eq!(
        discover_in(None, None, Path::new("")).is_ok(),
        Path::new("stack.yaml").is_file() || Path::new("spack.lock").is_file()
    );
}

/// A lockfile with `specs` as `concrete_specs` entries.
fn lockfile(version: u64, specs: &str) -> String {
    format!(
        "{{\n  \"_meta\": {{ \"file-type\": \"spack-lockfile\", \"lockfile-version\": {version} }},\n  \"roots\": [],\n  \"concrete_specs\": {{\n{specs}\n  }}\n}}\n"
    )
}

const H1: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const H2: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const H3: &str = "cccccccccccccccccccccccccccccccc";

fn spec(hash: &str, name: &str, deps: &str) -> String {
    format!("    \"{hash}\": {{ \"name\": \"{name}\", \"version\": \"1.0\", \"dependencies\": [{deps}] }}")
}

fn dep(name: &str, hash: &str, types: &str) -> String {
    format!(
        "{{ \"name\": \"{name}\", \"hash\": \"{hash}\", \"parameters\": {{ \"deptypes\": [{types}], \"virtuals\": [] }} }}"
    )
}

fn spack_error(text: &str) -> String {
    let fx = Fixture::new();
    let path = fx.write("env/spack.lock", text);
    let e = load(&path).expect_err("the lockfile should be rejected");
    e.to_string().replace(&format!("{}/", fx.dir.path().display()), "")
}

#[test]
fn spack_edges_and_name() {
    let fx = Fixture::new();
    let specs = [
        spec(
            H1,
            "top",
            &[dep("lib", H2, "\"build\", \"link\""), dep("cmake", H3, "\"build\"")].join(", "),
        ),
        spec(H2, "lib", &dep("cmake", H3, "\"test\"")),
        spec(H3, "cmake", ""),
    ]
    .join(",\n");
    let path = fx.write("myenv/spack.lock", &lockfile(6, &specs));
    let stack = load(&path).unwrap();
    assert_eq!(stack.name, "myenv");
    assert_eq!(stack.kind, StackKind::SpackLock);
    let names: Vec<&str> = stack.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["cmake", "lib", "top"]);
    assert!(stack.packages[1].deps.is_empty(), "test-only edges are ignored");
    assert_eq!(
        stack.packages[2].deps,
        [
            Dep {
                index: 0,
                kind: DepKind::Build
            },
            Dep {
                index: 1,
                kind: DepKind::Runtime
            }
        ]
    );
    assert_eq!(stack.packages[2].hash, H1);
    assert_eq!(stack.packages[2].recipe, Recipe::Spack);
}

#[test]
fn spack_errors() {
    assert_eq!(
        spack_error(&lockfile(3, &spec(H1, "a", ""))),
        "env/spack.lock:2:45: unsupported Spack lockfile version 3 (supported: 4, 5, 6)"
    );
    assert_eq!(
        spack_error(&lockfile(5, &spec(H1, "top", &dep("zlib", H2, "\"link\"")))),
        format!("env/spack.lock:5:5: package `top/{H1}`: depends on `zlib/{H2}`, which is not in `concrete_specs`")
    );
    let cyc = [
        spec(H1, "x", &dep("y", H2, "\"link\"")),
        spec(H2, "y", &dep("x", H1, "\"build\"")),
    ]
    .join(",\n");
    assert_eq!(
        spack_error(&lockfile(5, &cyc)),
        format!("env/spack.lock:5:5: package `x/{H1}`: dependency cycle: x/{H1} -> y/{H2} -> x/{H1}")
    );
    let e = spack_error("{\n  \"_meta\": {\"lockfile-version\": 5},\n  \"concrete_specs\": {,}\n}");
    assert_eq!(e, "env/spack.lock:3:22: malformed lockfile: key must be a string");
    let e = spack_error(&lockfile(5, &format!("    \"{H1}\": {{ \"name\": \"a\" }}")));
    assert!(
        e.starts_with("env/spack.lock:5:") && e.contains("missing field `version`"),
        "{e}"
    );
    let e = spack_error(&lockfile(5, &spec("short", "a", "")));
    assert_eq!(
        e,
        "env/spack.lock:5:5: package `a/short`: not a Spack DAG hash (32 lowercase base32 characters)"
    );
    let dup = [spec(H1, "a", ""), spec(H1, "a", "")].join(",\n");
    assert_eq!(
        spack_error(&lockfile(5, &dup)),
        format!("env/spack.lock:5:5: package `a/{H1}`: duplicate entry in `concrete_specs`")
    );
    let ext = format!(
        "    \"{H1}\": {{ \"name\": \"a\", \"version\": \"1\", \"external\": {{ \"path\": null, \"module\": [\"a\"] }} }}"
    );
    assert!(spack_error(&lockfile(5, &ext)).contains("external without a `path`"));
}

#[test]
fn broken_yaml_inside_a_package_names_it() {
    let header = "name: t\npackages:\n  a:\n    version: '1'\n    build: x\n";
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!(
            "{header}  hello:\n    version: '1'\n    depends: [a, b\n    build: x\n"
        )),
        "stack.yaml:9:10: package `hello`: illegal placement of ':' indicator"
    );
    assert_eq!(
        fx.error(&format!(
            "{header}  b:\n    version: '1'\n    depends: a\n    build: x\n"
        )),
        "stack.yaml:8:14: package `b`: expected sequence start"
    );
    assert_eq!(
        fx.error(&format!("{header}    env: {{ A: }}\n")),
        "stack.yaml:6:13: package `a`: null is not allowed here"
    );
    assert_eq!(
        fx.error(&format!("{header}---\nname: u\n")),
        "stack.yaml:7:1: only single YAML document expected but multiple found"
    );
}
