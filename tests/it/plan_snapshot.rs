//! Pins the example stack's plan (names, versions, hashes, dependencies): an accidental change
//! to the hash encoding, the stack loader or the example sources fails here.

use crate::common::*;

#[test]
fn example_stack_plan_is_pinned() {
    assert_eq!(
        std::env::consts::ARCH,
        "x86_64",
        "hashes include the platform; this snapshot is for x86_64-linux"
    );
    let tmp = tempfile::tempdir().unwrap();
    let mirror = format!("file://{}", tmp.path().display());
    let json = ok(stackci()
        .args(["--stack"])
        .arg(repo().join("examples/demo/stack.yaml"))
        .args(["--mirror", &mirror, "plan", "--json"]));
    let json = json.replace(&mirror, "file://[MIRROR]");
    insta::assert_snapshot!(json);
}
