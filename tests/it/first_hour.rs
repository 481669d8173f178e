//! First-hour paper cuts (issue 14): what a new user runs first behaves as the README and
//! `--help` say.

use std::path::Path;

use crate::common::*;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The subcommands `stackci --help` lists (without `help`).
fn help_commands() -> Vec<String> {
    let help = ok(stackci().arg("--help"));
    let section = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_command_list_matches_the_help() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block = readme
        .split("## Commands")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("README has a ## Commands code block");
    let listed: Vec<&str> = block
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for command in help_commands() {
        assert!(listed.contains(&command.as_str()), "README omits `{command}`:\n{block}");
    }
    // Every subcommand of the commands that have them.
    for (parent, subs) in [("generate", ["gitlab", "github"].as_slice()), ("trigger", &["gitlab"])] {
        for sub in subs {
            assert!(
                block
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{parent} {sub}"))),
                "README omits `{parent} {sub}`:\n{block}"
            );
        }
    }
    // The image reference forms are the ones `image --help` gives, written the same way.
    let refs = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("REF:"))
        .expect("README lists the REF forms");
    let help = ok(stackci().args(["image", "--help"])).replace('\n', " ");
    for form in refs.split('|').map(str::trim) {
        assert!(
            help.contains(form),
            "`{form}` (README) is not in `image --help`:\n{help}"
        );
    }
    // README's first section is still exactly two commands.
    let first = readme.split("## Two commands").nth(1).unwrap();
    let code = first.split("```").nth(1).unwrap();
    assert_eq!(
        code.lines().filter(|l| !l.trim().is_empty() && *l != "sh").count(),
        2,
        "{code}"
    );
}

#[test]
fn plan_with_packages_shows_them_and_what_they_need() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_copy(tmp.path(), &tmp.path().join("store"));
    let out = ok(stackci().current_dir(&demo).args(["plan", "hello", "--json"]));
    let names: Vec<String> = serde_json::from_str::<serde_json::Value>(&out).unwrap()["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["crcgen", "libcrc", "libreport", "hello"]);
    let table = ok(stackci().current_dir(&demo).args(["plan", "crcsum"]));
    assert!(table.contains("crcsum") && !table.contains("hello"), "{table}");
    let out = output(stackci().current_dir(&demo).args(["plan", "nosuch"]));
    assert!(!out.status.success());
    assert!(text(&out).contains("no package `nosuch`"), "{}", text(&out));
}

#[test]
fn ssl_cert_file_does_not_make_ca_cert_look_required() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_copy(tmp.path(), &tmp.path().join("store"));
    // A usage error shows the usage line: --ca-cert must not be in it.
    let out = output(
        stackci()
            .current_dir(&demo)
            .env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
            .args(["install", "hello"]),
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("--root <DIR>") && !t.contains("--ca-cert"), "{t}");
    let help = ok(stackci().env("SSL_CERT_FILE", "/x.pem").args(["plan", "--help"]));
    let usage = help.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert!(!usage.contains("--ca-cert"), "{usage}");
    assert!(
        help.contains("SSL_CERT_FILE"),
        "the help still says the variable is trusted"
    );
}

fn generate_gitlab(demo: &Path, ci: bool, extra: &[&str]) -> std::process::Output {
    let mut cmd = stackci();
    cmd.current_dir(demo)
        .args(["generate", "gitlab", "-o", "child.yml"])
        .args(extra);
    if ci {
        cmd.env("CI", "true").env("GITLAB_CI", "true");
    }
    output(&mut cmd)
}

#[test]
fn generate_gitlab_with_the_default_mirror_warns_and_refuses_in_ci() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_copy(tmp.path(), &tmp.path().join("store"));
    let out = generate_gitlab(&demo, false, &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("warning: the mirror is the default file://")
            && t.contains("oci://$CI_REGISTRY_IMAGE/mirror")
            && t.contains("s3://"),
        "{t}"
    );
    assert!(demo.join("child.yml").exists());
    std::fs::remove_file(demo.join("child.yml")).unwrap();

    let out = generate_gitlab(&demo, true, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("error: the mirror is the default"), "{t}");
    assert!(!demo.join("child.yml").exists(), "nothing written");

    let out = generate_gitlab(&demo, true, &["--allow-local-mirror"]);
    assert!(out.status.success(), "{}", text(&out));
    // A mirror the user chose is theirs to choose, even a directory.
    let m = format!("file://{}", tmp.path().join("shared").display());
    let out = generate_gitlab(&demo, true, &["--mirror", &m]);
    let t = text(&out);
    assert!(out.status.success() && !t.contains("warning"), "{t}");
}
