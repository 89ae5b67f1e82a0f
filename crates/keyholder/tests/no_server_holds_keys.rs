//! No server crate can reach a client key: none of them depends on this crate, directly or
//! through another crate, in its normal or build dependencies (tests may: they play the key
//! holder). Read from `cargo metadata`, so adding such a dependency fails this test.

// Tests panic on unexpected results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const KEY_HOLDER: &str = "blindledger-keyholder";

/// Everything that runs on the ledger's, the controller's or the audit service's hosts.
const SERVER_CRATES: &[&str] = &[
    "blindledger-ledger",
    "blindledger-controller",
    "blindledger-audit-service",
    "blindledger-audit",
    "blindledger-gate",
    "blindledger-policy",
    "blindledger-store",
    "blindledger-telemetry",
    "blindledger-proto",
    "blindledger-fhe",
    "blindledger-risk",
];

/// Each workspace package's name and the workspace packages it needs at run or build
/// time, transitively. Only workspace packages can depend on the key holder, so the
/// workspace's own manifests (`cargo metadata --no-deps`, no download) are the whole graph.
fn runtime_dependencies() -> HashMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    // Direct run-time and build-time dependencies on workspace packages, by name.
    let packages = metadata["packages"].as_array().unwrap();
    let members: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let edges: HashMap<&str, Vec<&str>> = packages
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|dep| dep["kind"].is_null() || dep["kind"] == "build");
            let names = deps
                .map(|dep| dep["name"].as_str().unwrap())
                .filter(|name| members.contains(name))
                .collect();
            (package["name"].as_str().unwrap(), names)
        })
        .collect();
    members
        .iter()
        .map(|&member| {
            let mut seen = BTreeSet::new();
            let mut stack = vec![member];
            while let Some(name) = stack.pop() {
                for &dep in edges.get(name).map(Vec::as_slice).unwrap_or_default() {
                    if seen.insert(dep.to_owned()) {
                        stack.push(dep);
                    }
                }
            }
            (member.to_owned(), seen)
        })
        .collect()
}

#[test]
fn no_server_crate_depends_on_the_key_holder() {
    let closures = runtime_dependencies();
    // The check can see such a dependency: the CLI is a key holder and has one.
    assert!(closures["blindledger-cli"].contains(KEY_HOLDER));
    for server in SERVER_CRATES {
        let deps = closures
            .get(*server)
            .unwrap_or_else(|| panic!("{server} is not a workspace member"));
        assert!(
            !deps.contains(KEY_HOLDER),
            "{server} depends on {KEY_HOLDER}: a server could decrypt"
        );
    }
}
