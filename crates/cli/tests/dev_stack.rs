//! `blindledger dev` as a user runs it, driven through the `blindledger` binary: the ledger,
//! the controller and the audit service in one process. An officer freezes an account with
//! a signed command; the ledger refuses its deposits through the policy; the audit trail
//! verifies and exports; the freeze is lifted and deposits pass again.

// Tests panic on unexpected results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::Dev;

#[test]
fn officers_freeze_accounts_and_the_ledger_enforces_it() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path(), false);
    let registered = dev.ok(&["keys", "new", "--tenant", "acme", "--width", "32"]);
    dev.ok(&["account", "open", "acme/alice"]);
    dev.ok(&["account", "open", "acme/bob"]);
    // Nothing was ever paid into bob's account: its balance still reads.
    assert_eq!(dev.ok(&["balance", "acme/bob"]).trim(), "0.00");
    dev.ok(&["deposit", "acme/alice", "10.00", "--wait"]);

    // A payer without acme's keys encrypts only to a key whose fingerprint it pinned.
    let payer = dir.path().join("payer");
    let refused = dev.cli_from(&payer, &["deposit", "acme/bob", "1.00"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no public key or pinned fingerprint")
    );
    let shown = dev.ok(&["keys", "show", "acme"]);
    let fingerprint = shown
        .lines()
        .find_map(|l| l.strip_prefix("public key fingerprint: "))
        .unwrap_or_else(|| panic!("no fingerprint in {shown}"))
        .trim()
        .to_owned();
    assert!(
        registered.contains(&fingerprint),
        "keys new printed it: {registered}"
    );
    let wrong = "0".repeat(64);
    assert!(dev
        .cli_from(&payer, &["keys", "pin", "acme", &wrong])
        .status
        .success());
    let mismatch = dev.cli_from(&payer, &["deposit", "acme/bob", "1.00"]);
    assert!(!mismatch.status.success());
    assert!(String::from_utf8_lossy(&mismatch.stderr).contains("refusing to use it"));
    assert!(dev
        .cli_from(&payer, &["keys", "pin", "acme", &fingerprint])
        .status
        .success());
    let paid = dev.cli_from(&payer, &["deposit", "acme/bob", "1.00", "--wait"]);
    assert!(paid.status.success());
    assert_eq!(dev.ok(&["balance", "acme/bob"]).trim(), "1.00");

    let officer_key = dev.data.join("dev/officer.key");
    let officer_key = officer_key.to_str().unwrap();
    let accepted = dev.ok(&[
        "admin",
        "freeze",
        "acme/alice",
        "--officer-key",
        officer_key,
        "--reason",
        "review",
    ]);
    assert!(
        accepted.contains("freeze acme/alice accepted"),
        "{accepted}"
    );
    dev.deposit_until(Err("account frozen by a compliance officer"));
    // Nothing is paid into it either.
    let into_frozen = dev.cli(&["transfer", "acme/bob", "acme/alice", "1.00"]);
    assert!(!into_frozen.status.success());
    let stderr = String::from_utf8_lossy(&into_frozen.stderr);
    assert!(
        stderr.contains("receiving account frozen by a compliance officer"),
        "{stderr}"
    );

    // The same command signed by an unknown key is refused and changes nothing.
    let stranger = dir.path().join("stranger.pem");
    dev.ok(&["admin", "new-key", "-o", stranger.to_str().unwrap()]);
    let refused = dev.cli(&[
        "admin",
        "unfreeze",
        "acme/alice",
        "--officer-key",
        stranger.to_str().unwrap(),
        "--kid",
        "officer",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("refused"), "{stderr}");

    // The trail verifies, and the export lists the officers' commands.
    let verified = dev.ok(&["audit", "verify"]);
    assert!(verified.contains("audit trail intact"), "{verified}");
    let report = dir.path().join("report.csv");
    dev.ok(&["audit", "export", "-o", report.to_str().unwrap()]);
    let csv = std::fs::read_to_string(&report).unwrap();
    let commands = csv.lines().filter(|l| l.contains("admin_command")).count();
    assert!(commands >= 2, "both commands are in the export:\n{csv}");

    dev.ok(&[
        "admin",
        "unfreeze",
        "acme/alice",
        "--officer-key",
        officer_key,
    ]);
    dev.deposit_until(Ok(()));

    // A revoked tenant key: nothing more is computed under it; metadata stays readable.
    let key_id = registered
        .split("key id ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no key id in {registered}"));
    let target = format!("acme/{key_id}");
    dev.ok(&["admin", "revoke-key", &target, "--officer-key", officer_key]);
    dev.deposit_until(Err("tenant key revoked by a compliance officer"));
    let open = dev.cli(&["account", "open", "acme/carol"]);
    assert!(!open.status.success());
    dev.ok(&["transfers", "acme/alice"]);

    metrics_serve_what_alerts_and_dashboards_use(&dev.scrape());
}

/// The live `/metrics` of the whole stack against `deploy/prometheus/alerts.yml` and
/// `deploy/grafana/`: what this run exercised is exported, under the labels the rules and
/// panels select on, and every family has HELP text.
fn metrics_serve_what_alerts_and_dashboards_use(scraped: &str) {
    use std::collections::{BTreeMap, BTreeSet};
    // Each exported family and the label names its series carry.
    let mut families: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in scraped
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, _) = line.rsplit_once(' ').unwrap();
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let name = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|base| {
                blindledger_telemetry::METRICS
                    .iter()
                    .any(|(m, _)| m == base)
            })
            .unwrap_or(name);
        let names = labels
            .trim_end_matches('}')
            .split(',')
            .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.to_owned()));
        families.entry(name.to_owned()).or_default().extend(names);
    }
    // What this run certainly touched: calls, jobs, both bundles, the database, officers'
    // commands, the importer.
    for name in [
        "grpc_server_started_total",
        "grpc_server_handled_total",
        "grpc_server_handling_seconds",
        "grpc_server_msg_received_total",
        "grpc_server_msg_sent_total",
        "blindledger_jobs_total",
        "blindledger_jobs_submitted_total",
        "blindledger_policy_decisions_total",
        "blindledger_policy_bundle_info",
        "blindledger_policy_bundle_failing",
        "blindledger_policy_bundle_last_check_timestamp_seconds",
        "blindledger_db_serving",
        "blindledger_admin_commands_total",
        "blindledger_audit_import_lag_seconds",
    ] {
        assert!(
            families.contains_key(name),
            "{name} is not exported:\n{scraped}"
        );
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("deploy/prometheus/alerts.yml")];
    for entry in std::fs::read_dir(root.join("deploy/grafana")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("\\\"", "\"");
        for name in blindledger_telemetry::referenced_metrics(&text) {
            let Some(exported) = families.get(&name) else {
                continue; // Not touched by this run; the catalog test checks the name.
            };
            // Every `name{label=...}` selector in the file names labels the series carry.
            for (at, _) in text.match_indices(&format!("{name}{{")) {
                let selector = &text[at + name.len() + 1..];
                let selector = &selector[..selector.find('}').unwrap()];
                for matcher in selector.split(',') {
                    let label = matcher.split(['=', '!', '~']).next().unwrap().trim();
                    assert!(
                        exported.contains(label),
                        "{}: {name} has no label {label} (it has {exported:?})",
                        file.display()
                    );
                }
            }
        }
    }
    let described: BTreeSet<&str> = scraped
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for family in scraped
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
    {
        assert!(described.contains(family), "{family} has no HELP text");
    }
}

/// Every verb that talks to the stack, as a script drives it: `--output json` gives one JSON
/// document per result (JSON lines for `job watch` and `dev` itself), amounts as exact
/// decimal strings; a failure is a JSON object on stderr whose exit status says what kind
/// it is, with the policy decision's id on a denial.
#[test]
fn every_verb_answers_json_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path(), true);
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = dev.ok(&all);
        let mut lines = out.lines();
        let value = serde_json::from_str(lines.next().expect("a document")).unwrap();
        assert_eq!(lines.next(), None, "{args:?}: one document");
        value
    };
    let failure = |args: &[&str], code: i32| -> serde_json::Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = dev.cli(&all);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let error: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stderr).trim()).unwrap();
        error["error"].clone()
    };

    let keys = json(&["keys", "new", "--tenant", "acme", "--width", "32"]);
    assert_eq!(
        json(&["keys", "show", "acme"])["fingerprint"],
        keys["fingerprint"]
    );
    let alice = json(&["account", "open", "acme/alice", "--max-amount", "50.00"]);
    assert_eq!(alice["limits"]["max_amount"], "50.00");
    json(&["account", "open", "acme/bob"]);
    assert_eq!(json(&["balance", "acme/bob"])["balance"], "0.00");

    let deposit = json(&["deposit", "acme/alice", "100.00", "--wait"]);
    assert_eq!(deposit["job"]["state"], "committed");
    assert!(deposit["idempotency_key"].is_string());
    let transfer = json(&["transfer", "acme/alice", "acme/bob", "25.50", "--wait"]);
    assert_eq!(transfer["results"]["moved"], "25.50");
    assert_eq!(transfer["results"]["applied"], true);
    // Over the account's limit: committed, nothing moved (the outcome is only known here,
    // decrypted with the tenant's key).
    let over = json(&["transfer", "acme/alice", "acme/bob", "60.00", "--wait"]);
    assert_eq!(over["job"]["state"], "committed");
    assert_eq!(over["results"]["applied"], false);
    assert_eq!(json(&["balance", "acme/alice"])["balance"], "74.50");

    let id = transfer["job"]["id"].as_str().unwrap();
    assert_eq!(json(&["job", "get", id])["results"]["moved"], "25.50");
    let watched = dev.ok(&["--output", "json", "job", "watch", id]);
    let events: Vec<serde_json::Value> = watched
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.len() >= 2, "a transition and the outcome: {watched}");
    assert_eq!(events.last().unwrap()["job"]["state"], "committed");
    let queued = json(&["deposit", "acme/bob", "1.00"]);
    assert_eq!(queued["job"]["kind"], "deposit");

    let aggregate = json(&["aggregate", "acme/alice", "--wait"]);
    assert_eq!(aggregate["results"]["sum_out"], "25.50");
    let transfers = json(&["transfers", "acme/alice"]);
    assert_eq!(transfers["transfers"].as_array().unwrap().len(), 2);

    let status = json(&["policy", "status"]);
    assert!(status["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["active_revision"].is_string()));
    let history = json(&["policy", "history"]);
    assert!(!history["revisions"].as_array().unwrap().is_empty());
    let scores = json(&["risk", "scores"]);
    assert!(scores["entities"].is_array(), "{scores}");
    assert_eq!(json(&["audit", "verify"])["ok"], true);
    let csv = dir.path().join("audit.csv");
    assert!(
        json(&["audit", "export", "-o", csv.to_str().unwrap()])["rows"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Exit statuses: not found is invalid input, a waited-for job past --timeout goes on,
    // a policy denial carries its decision id (an unreachable ledger: output_json.rs).
    assert_eq!(
        failure(&["balance", "acme/nobody"], 2)["kind"],
        "invalid_input"
    );
    let late = failure(
        &["deposit", "acme/bob", "1.00", "--wait", "--timeout", "1ms"],
        6,
    );
    assert!(
        late["message"].as_str().unwrap().contains("goes on"),
        "{late}"
    );
    let key = dev.data.join("dev/token.key");
    let teller = json(&[
        "token",
        "issue",
        "--sub",
        "tom",
        "--role",
        "teller",
        "--tenant",
        "acme",
        "--key",
        key.to_str().unwrap(),
    ]);
    let denied = failure(
        &[
            "--token",
            teller["token"].as_str().unwrap(),
            "deposit",
            "acme/bob",
            "1.00",
        ],
        3,
    );
    assert_eq!(denied["kind"], "denied");
    assert_eq!(
        denied["decision_id"].as_str().unwrap().len(),
        36,
        "{denied}"
    );
    // The same denial in text names the decision id too.
    let text = dev.cli(&[
        "--token",
        teller["token"].as_str().unwrap(),
        "deposit",
        "acme/bob",
        "1.00",
    ]);
    assert_eq!(text.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&text.stderr).contains("decision id: "));

    let officer_key = dev.data.join("dev/officer.key");
    let frozen = json(&[
        "admin",
        "freeze",
        "acme/bob",
        "--officer-key",
        officer_key.to_str().unwrap(),
    ]);
    assert_eq!(frozen["command"], "freeze");
    let officer = officer_key.to_str().unwrap();
    let unfrozen = json(&["admin", "unfreeze", "acme/bob", "--officer-key", officer]);
    assert_eq!(unfrozen["command"], "unfreeze");
    let withdrawn = json(&["withdraw", "acme/alice", "4.50", "--wait"]);
    assert_eq!(withdrawn["results"]["moved"], "4.50");

    // A policy pushed as CI pushes it, then rolled back.
    let active = status["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "blindledger")
        .unwrap()["active_revision"]
        .as_str()
        .unwrap()
        .to_owned();
    let policies = dev.data.join("dev/policies");
    let bundle = dir.path().join("ci.tar.gz");
    let bundle = bundle.to_str().unwrap();
    json(&[
        "policy",
        "build",
        policies.to_str().unwrap(),
        "-o",
        bundle,
        "--revision",
        "ci-2",
    ]);
    let ci_key = dev.data.join("dev/bundle.key");
    json(&[
        "policy",
        "sign",
        bundle,
        "--key",
        ci_key.to_str().unwrap(),
        "--kid",
        "dev",
    ]);
    let pushed = json(&["policy", "push", bundle]);
    assert_eq!(pushed["outcome"], "activated", "{pushed}");
    assert_eq!(pushed["tests"]["failed"].as_array().unwrap().len(), 0);
    let rolled_back = json(&["policy", "rollback", &active]);
    assert_eq!(rolled_back["revision"], active.as_str());
    assert_eq!(rolled_back["previous"], "ci-2");

    // The trail verified from the database itself, with the checkpoint key.
    let database = format!("sqlite://{}", dev.data.join("ledger.db").display());
    let checkpoint_key = format!("audit-1={}", dev.data.join("dev/audit.pub").display());
    let verified = json(&[
        "audit",
        "verify",
        "--database-url",
        &database,
        "--checkpoint-key",
        &checkpoint_key,
    ]);
    assert_eq!(verified["ok"], true, "{verified}");
    // The key revoked last: nothing more is computed under it.
    let key_id = keys["key_id"].as_str().unwrap();
    let revoked = json(&[
        "admin",
        "revoke-key",
        &format!("acme/{key_id}"),
        "--officer-key",
        officer,
    ]);
    assert_eq!(revoked["command"], "revoke_tenant_key");
}
