//! `--output json` and exit codes of the verbs that need no running service: each prints one
//! JSON document a script can parse, errors come as a JSON object on stderr with an exit
//! status that says what kind of failure it was. The verbs that talk to services are
//! checked against `blindledger dev` in `dev_stack.rs`.

// Tests panic on unexpected results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;

use common::{run_printed, BIN};

fn run(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .arg("--output")
        .arg("json")
        .args(args)
        .env("BLINDLEDGER_HOME", dir.join("home"))
        .env_remove("BLINDLEDGER_TOKEN");
    run_printed(command, &format!("--output json {}", args.join(" ")))
}

/// Runs a verb that must succeed and print exactly one JSON document on stdout.
fn json(dir: &Path, args: &[&str]) -> Value {
    let output = run(dir, args);
    assert!(output.status.success(), "{args:?} failed");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut lines = stdout.lines();
    let value: Value = serde_json::from_str(lines.next().expect("one line")).unwrap();
    assert_eq!(
        lines.next(),
        None,
        "{args:?} printed more than one document"
    );
    value
}

/// Runs a verb that must fail with `code`; returns the JSON error object from stderr.
fn error(dir: &Path, args: &[&str], code: i32) -> Value {
    let output = run(dir, args);
    assert_eq!(output.status.code(), Some(code), "{args:?}");
    assert!(output.stdout.is_empty(), "nothing on stdout when it fails");
    let stderr = String::from_utf8(output.stderr).unwrap();
    let value: Value = serde_json::from_str(stderr.trim()).unwrap();
    assert_eq!(value["error"]["exit_code"], code);
    value["error"].clone()
}

#[test]
fn offline_verbs_print_one_json_document() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let policies = policies.to_str().unwrap();

    let keys = json(dir, &["policy", "keygen", "ci.pem"]);
    assert_eq!(keys["public_key"], "ci.pem.pub");
    let tested = json(dir, &["policy", "test", policies]);
    assert_eq!(tested["failed"], 0);
    assert!(tested["tests"].as_array().unwrap().len() > 10);
    assert!(tested["coverage"]["percent"].as_f64().unwrap() > 90.0);
    let built = json(
        dir,
        &[
            "policy",
            "build",
            policies,
            "-o",
            "b.tar.gz",
            "--revision",
            "r1",
        ],
    );
    assert_eq!(built["revision"], "r1");
    let signed = json(
        dir,
        &[
            "policy", "sign", "b.tar.gz", "--key", "ci.pem", "--kid", "ci",
        ],
    );
    assert_eq!(signed["alg"], "EdDSA");
    let inspected = json(
        dir,
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
    assert_eq!(inspected["verification"]["valid"], true);
    assert_eq!(inspected["signed"], true);

    let token = json(
        dir,
        &[
            "token", "issue", "--sub", "tom", "--role", "teller", "--key", "ci.pem",
        ],
    );
    assert_eq!(token["token"].as_str().unwrap().split('.').count(), 3);

    let grants = json(dir, &["db", "grants", "--service", "ledger"]);
    assert!(grants["sql"].as_str().unwrap().contains("GRANT"));
    let db = format!("sqlite://{}/l.db?mode=rwc", dir.display());
    assert_eq!(
        json(dir, &["db", "migrate", "--database-url", &db])["migrated"],
        true
    );
    let officer = json(dir, &["admin", "new-key", "-o", "officer.pem"]);
    assert_eq!(officer["kid"], "officer");

    let fingerprint = "ab".repeat(32);
    let pinned = json(dir, &["keys", "pin", "acme", &fingerprint]);
    assert_eq!(pinned["pinned_fingerprint"], fingerprint.as_str());
    let shown = json(dir, &["keys", "show", "acme"]);
    assert_eq!(shown["fingerprint"], fingerprint.as_str());

    // A labelled data set: 60 ordinary rows and 6 far-off ones.
    let mut csv = String::from("f0,f1,label\n");
    for i in 0..60 {
        csv.push_str(&format!(
            "{},{},0\n",
            f64::from(i % 7) / 7.0,
            f64::from(i % 5) / 5.0
        ));
    }
    for i in 0..6 {
        csv.push_str(&format!("{},{},1\n", 40.0 + f64::from(i), -35.0));
    }
    std::fs::write(dir.join("risk.csv"), csv).unwrap();
    let eval = json(
        dir,
        &[
            "risk", "eval", "--csv", "risk.csv", "--trees", "20", "--seed", "1",
        ],
    );
    assert_eq!(eval["rows"], 66);
    assert!(eval["auc_mean"].as_f64().unwrap() > 0.9, "{eval}");

    let pages = json(dir, &["man", "--dir", "man"]);
    assert!(pages["pages"].as_u64().unwrap() > 20);
    assert!(dir.join("man/blindledger-policy-sign.1").is_file());
    let completions = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(completions.status.success());
    assert!(String::from_utf8_lossy(&completions.stdout).contains("_blindledger()"));
}

#[test]
fn failures_say_their_kind_in_the_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // Nothing listens on port 1: unavailable.
    let unreachable = error(
        dir,
        &["--endpoint", "http://127.0.0.1:1", "job", "get", "0190"],
        4,
    );
    assert_eq!(unreachable["kind"], "unavailable");
    // A key of the wrong type for the algorithm: an error of the command's own.
    json(dir, &["policy", "keygen", "ci.pem"]);
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    json(
        dir,
        &[
            "policy",
            "build",
            policies.to_str().unwrap(),
            "-o",
            "b.tar.gz",
            "--revision",
            "r1",
        ],
    );
    let wrong = error(
        dir,
        &[
            "policy", "sign", "b.tar.gz", "--key", "ci.pem", "--kid", "ci", "--alg", "RS256",
        ],
        1,
    );
    assert!(
        wrong["message"].as_str().unwrap().contains("RS256"),
        "{wrong}"
    );
    // A malformed argument: clap's usage error, status 2.
    let usage = Command::new(BIN)
        .args(["deposit", "acme/alice", "1.234"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    // --timeout only goes with --wait.
    let usage = Command::new(BIN)
        .args(["deposit", "acme/alice", "1.00", "--timeout", "5s"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}
