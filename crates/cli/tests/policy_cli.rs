//! The offline policy verbs as a CI pipeline runs them: the shipped policy's tests pass
//! with their coverage, a failing or missing test fails the run, and a bundle built and
//! signed here verifies with its public key and with no other.

// Tests panic on unexpected results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{run_printed, BIN};

fn policies() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies"))
}

fn cli(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("BLINDLEDGER_OUTPUT");
    run_printed(command, &args.join(" "))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Copies the shipped policy directory into `to`.
fn copy_policies(to: &Path) {
    for entry in walk(policies()) {
        let relative = entry.strip_prefix(policies()).unwrap();
        let target = to.join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, target).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_shipped_policy_passes_its_tests_and_a_failing_or_missing_test_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = policies().to_str().unwrap();
    let passed = cli(
        dir.path(),
        &["policy", "test", shipped, "--min-coverage", "90"],
    );
    assert!(passed.status.success(), "{}", text(&passed));
    assert!(text(&passed).contains(" 0 failed"), "{}", text(&passed));

    // A test that fails makes the run fail and is named.
    let copy = dir.path().join("policies");
    copy_policies(&copy);
    std::fs::write(
        copy.join("blindledger/authz/broken_test.rego"),
        "package blindledger.authz_test\n\ntest_always_fails if {\n\t1 == 2\n}\n",
    )
    .unwrap();
    let failed = cli(dir.path(), &["policy", "test", "policies"]);
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(
        text(&failed).contains("test_always_fails"),
        "{}",
        text(&failed)
    );

    // A directory without tests is not a pass.
    let empty = dir.path().join("untested");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("p.rego"), "package p\n\nallow := true\n").unwrap();
    let none = cli(dir.path(), &["policy", "test", "untested"]);
    assert!(!none.status.success(), "{}", text(&none));

    // Coverage below the floor fails the run.
    let short = cli(
        dir.path(),
        &["policy", "test", shipped, "--min-coverage", "100.1"],
    );
    assert!(!short.status.success(), "{}", text(&short));
}

#[test]
fn a_bundle_built_and_signed_here_verifies_with_its_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = policies().to_str().unwrap();
    let ok = |output: Output| assert!(output.status.success(), "{}", text(&output));
    ok(cli(dir.path(), &["policy", "keygen", "ci.pem"]));
    ok(cli(dir.path(), &["policy", "keygen", "other.pem"]));
    ok(cli(
        dir.path(),
        &[
            "policy",
            "build",
            shipped,
            "--out",
            "b.tar.gz",
            "--revision",
            "r1",
        ],
    ));
    ok(cli(
        dir.path(),
        &[
            "policy", "sign", "b.tar.gz", "--key", "ci.pem", "--kid", "ci",
        ],
    ));

    let verified = cli(
        dir.path(),
        &[
            "policy",
            "inspect",
            "b.tar.gz",
            "--key",
            "ci.pem.pub",
            "--kid",
            "ci",
        ],
    );
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("revision: r1"),
        "{}",
        text(&verified)
    );
    assert!(
        text(&verified).contains("verification: valid"),
        "{}",
        text(&verified)
    );

    let other = cli(
        dir.path(),
        &[
            "policy",
            "inspect",
            "b.tar.gz",
            "--key",
            "other.pem.pub",
            "--kid",
            "ci",
        ],
    );
    assert!(!other.status.success(), "{}", text(&other));
    assert!(text(&other).contains("does not verify"), "{}", text(&other));

    // A changed byte in the archive: refused, whichever part it hit.
    let mut bytes = std::fs::read(dir.path().join("b.tar.gz")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(dir.path().join("t.tar.gz"), bytes).unwrap();
    let tampered = cli(
        dir.path(),
        &[
            "policy",
            "inspect",
            "t.tar.gz",
            "--key",
            "ci.pem.pub",
            "--kid",
            "ci",
        ],
    );
    assert!(!tampered.status.success(), "{}", text(&tampered));
}
