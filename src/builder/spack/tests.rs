//! Finding Spack, its environment and configuration, and reading its refusals.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::stack::spack_env::{SpackEnv, SpackSettings};

fn env_at(root: Option<PathBuf>) -> SpackEnv {
    SpackEnv {
        dir: PathBuf::from("/env"),
        lock: PathBuf::from("/env/spack.lock"),
        version: None,
        commit: None,
        settings: SpackSettings {
            root,
            ..Default::default()
        },
    }
}

/// A fake Spack installation: `<dir>/bin/spack`, executable.
fn fake_spack(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let program = bin.join("spack");
    fs::write(&program, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
    program
}

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

#[test]
fn spack_is_found_by_setting_then_spack_root_then_path() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let c = tmp.path().join("c");
    for d in [&a, &b, &c] {
        fake_spack(d);
    }
    let path = format!("/nowhere:{}", c.join("bin").display());
    let all = vars(&[("SPACK_ROOT", b.to_str().unwrap()), ("PATH", &path)]);

    let found = find_with(&env_at(Some(a.clone())), &all).unwrap();
    assert_eq!((found.root.as_path(), found.origin), (a.as_path(), Origin::Setting));
    let found = find_with(&env_at(None), &all).unwrap();
    assert_eq!((found.root.as_path(), found.origin), (b.as_path(), Origin::EnvVar));
    let found = find_with(&env_at(None), &vars(&[("PATH", &path)])).unwrap();
    assert_eq!(found.origin, Origin::Path);
    assert_eq!(found.root, fs::canonicalize(&c).unwrap());
    assert!(found.to_string().ends_with("bin/spack (from PATH)"), "{found}");

    // A link on PATH leads to the installation it points into.
    let links = tmp.path().join("links");
    fs::create_dir_all(&links).unwrap();
    std::os::unix::fs::symlink(c.join("bin/spack"), links.join("spack")).unwrap();
    let found = find_with(&env_at(None), &vars(&[("PATH", links.to_str().unwrap())])).unwrap();
    assert_eq!(found.root, fs::canonicalize(&c).unwrap());
}

#[test]
fn a_missing_spack_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let nothing = tmp.path().join("nothing");
    let e = find_with(&env_at(Some(nothing.clone())), &vars(&[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Spack not found: the stack's `spack: root:` is {}, which has no bin/spack",
            nothing.display()
        )
    );
    let e = find_with(&env_at(None), &vars(&[("SPACK_ROOT", "/no/spack")])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Spack not found: $SPACK_ROOT is /no/spack, which has no bin/spack"
    );
    // Not executable: not a `spack` to run.
    let plain = tmp.path().join("plain");
    fs::create_dir_all(&plain).unwrap();
    fs::write(plain.join("spack"), "").unwrap();
    let e = find_with(&env_at(None), &vars(&[("PATH", plain.to_str().unwrap())])).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "Spack not found: the stack sets no `spack: root:`, $SPACK_ROOT is not set, and no `spack` is on PATH ({})",
            plain.display()
        )),
        "{e}"
    );
}

#[test]
fn spack_sees_only_the_allow_list_and_what_the_stack_names() {
    let mut stack = crate::generate::testutil::stack("t", &[("hello", "1.0", &[])]);
    stack.packages[0].recipe = crate::stack::Recipe::Spack;
    stack.env.insert("FROM_STACK".into(), "yes".into());
    let mut env = env_at(None);
    env.settings.pass_env = vec!["LICENSE_SERVER".into(), "UNSET_ONE".into()];
    stack.spack = Some(env);
    let spack = Spack {
        program: PathBuf::from("/opt/spack/bin/spack"),
        root: PathBuf::from("/opt/spack"),
        origin: Origin::EnvVar,
    };
    let host = vars(&[
        ("PATH", "/usr/local/bin:/usr/bin"),
        ("HOME", "/home/ci"),
        ("USER", "ci"),
        ("https_proxy", "http://proxy:3128"),
        ("SPACK_USER_CONFIG_PATH", "/cfg"),
        ("LICENSE_SERVER", "27000@lic"),
        ("GITLAB_TOKEN", "glpat-secret"),
        ("GITHUB_TOKEN", "ghs_secret"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
        ("STACKCI_REGISTRY_PASSWORD", "registry-secret"),
        ("CI_JOB_TOKEN", "job-secret"),
        ("TMPDIR", "/host/tmp"),
    ]);
    let got = environment(&stack, 0, &spack, Path::new("/b/home"), Path::new("/b/tmp"), 7, &host);
    let want: BTreeMap<String, String> = [
        ("PATH", "/opt/spack/bin:/usr/local/bin:/usr/bin"),
        ("HOME", "/home/ci"),
        ("TMPDIR", "/b/tmp"),
        ("SPACK_ROOT", "/opt/spack"),
        ("SOURCE_DATE_EPOCH", "7"),
        ("USER", "ci"),
        ("https_proxy", "http://proxy:3128"),
        ("SPACK_USER_CONFIG_PATH", "/cfg"),
        ("FROM_STACK", "yes"),
        ("LICENSE_SERVER", "27000@lic"),
        ("STACKCI_PACKAGE", "hello"),
        ("STACKCI_HASH", stack.packages[0].hash.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, want);
    let all = format!("{got:?}");
    assert!(!all.contains("secret"), "a secret reached Spack: {all}");

    // Without PATH and HOME: the base PATH and the build's own home.
    let got = environment(
        &stack,
        0,
        &spack,
        Path::new("/b/home"),
        Path::new("/b/tmp"),
        0,
        &vars(&[]),
    );
    assert_eq!(got["PATH"], format!("/opt/spack/bin:{BASE_PATH}"));
    assert_eq!(got["HOME"], "/b/home");
}

#[test]
fn configuration_goes_on_the_command_line() {
    let args = config_args(Path::new("/opt/store"), Path::new("/s/build/x"), Path::new("/s"));
    assert_eq!(
        args,
        [
            "-c",
            "config:install_tree:root:/opt/store",
            "-c",
            "config:install_tree:projections:all:'{name}-{version}-{hash}'",
            "-c",
            "config:build_stage:[/s/build/x/stage]",
            "-c",
            "config:source_cache:/s/cache/spack-sources",
        ]
    );
    assert_eq!(shown(&args[4..6], &[]), "-c 'config:build_stage:[/s/build/x/stage]'");
    assert_eq!(
        shown(&args[2..4], &["reindex".to_string()]),
        r#"-c "config:install_tree:projections:all:'{name}-{version}-{hash}'" reindex"#
    );
}

#[test]
fn spack_refusing_to_build_dependencies_is_recognised() {
    let line = "==> Error: Detected uninstalled dependencies for libreport-0.3.0-dolvbc5: \
                {'libcrc-1.2.0-ntue36enptuescncqhxgd5tzz4ypcmui', 'gcc-runtime-12.2.0-75b4t5r'}";
    assert_eq!(
        uninstalled(line).as_deref(),
        Some("`libcrc-1.2.0-ntue36enptuescncqhxgd5tzz4ypcmui`, `gcc-runtime-12.2.0-75b4t5r`")
    );
    let other =
        "==> Error: Cannot proceed with crcgen-1.0-bifxvcn: 1 uninstalled dependency: gcc-runtime-12.2.0-75b4t5r";
    assert_eq!(uninstalled(other).as_deref(), Some("`gcc-runtime-12.2.0-75b4t5r`"));
    assert_eq!(
        uninstalled("==> Error: ProcessError: Command exited with status 2"),
        None
    );
}

#[test]
fn a_failed_install_is_summed_up_from_its_output() {
    let out = "==> hello: Executing phase: 'install'
make: *** No rule to make target 'no-such-target'.  Stop.
==> Error: ProcessError: Command exited with status 2:
    'make' '-j2' 'no-such-target'

1 error found in build log:
     7    ==> [2026-12-01-18:31:49.570766] 'make' '-j2' 'no-such-target'
  >> 8    make: *** No rule to make target 'no-such-target'.  Stop.

See build log for details:
  /stage/spack-build-out.txt
";
    let mut f = Findings::default();
    out.lines().for_each(|l| f.feed(l));
    assert_eq!(
        f.errors,
        ["Error: ProcessError: Command exited with status 2: 'make' '-j2' 'no-such-target'"]
    );
    assert_eq!(
        f.first_marked.as_deref(),
        Some("make: *** No rule to make target 'no-such-target'.  Stop.")
    );
    assert_eq!(f.build_log.as_deref(), Some("/stage/spack-build-out.txt"));
}
