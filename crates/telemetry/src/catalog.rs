//! Every metric a BlindLedger service exports, with the HELP text `/metrics` shows for it.
//! [`crate::prometheus`] describes them all when it installs the recorder; the services'
//! metrics tests check that every family they export has a HELP line, so a metric added
//! without an entry here is caught.

/// `(name, help)` of every metric, grouped by where it is recorded.
pub const METRICS: &[(&str, &str)] = &[
    // gRPC server (crates/telemetry/src/grpc_metrics.rs), as go-grpc-prometheus.
    (
        "grpc_server_started_total",
        "Total number of RPCs started on the server.",
    ),
    (
        "grpc_server_handled_total",
        "Total number of RPCs completed on the server, regardless of success or failure.",
    ),
    (
        "grpc_server_handling_seconds",
        "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    ),
    (
        "grpc_server_msg_received_total",
        "Total number of RPC stream messages received on the server.",
    ),
    (
        "grpc_server_msg_sent_total",
        "Total number of gRPC stream messages sent by the server.",
    ),
    // Policy gate (crates/gate).
    (
        "blindledger_auth_failures_total",
        "Requests refused before any handler ran, by reason (missing, expired, bad_signature, ...).",
    ),
    (
        "blindledger_auth_jwks_keys",
        "Token verification keys held from the identity provider's JWKS URL.",
    ),
    (
        "blindledger_auth_jwks_fetches_total",
        "Fetches of the identity provider's JWKS, by result (ok, error).",
    ),
    (
        "blindledger_decision_logs_shipped_total",
        "Decision-log events shipped to the decision-log service or file, by target (http, file).",
    ),
    (
        "blindledger_decision_logs_dropped_total",
        "Decision-log events dropped unshipped because the shipping queue was full, by target.",
    ),
    (
        "blindledger_decision_logs_ship_failures_total",
        "Failed decision-log uploads (each retried with backoff), by target.",
    ),
    (
        "blindledger_policy_decisions_total",
        "Policy decisions, by method and whether they allowed the call.",
    ),
    (
        "blindledger_policy_eval_seconds",
        "Time to evaluate one policy decision, in seconds.",
    ),
    (
        "blindledger_policy_bundle_info",
        "1 for the active revision of each bundle (0 for the revision it replaced).",
    ),
    (
        "blindledger_policy_reload_failures_total",
        "Bundle downloads, verifications and engine builds that failed, by bundle; the last good engine stays.",
    ),
    (
        "blindledger_policy_bundle_failing",
        "1 while the latest poll of a bundle failed (its error is in the policy status), else 0.",
    ),
    (
        "blindledger_policy_bundle_last_check_timestamp_seconds",
        "Unix time of the latest successful poll of each bundle (new revision, same revision or nothing published).",
    ),
    // Database (crates/store).
    (
        "blindledger_db_failovers_total",
        "Moves to another Galera node after the current one stopped answering or left the primary component.",
    ),
    (
        "blindledger_db_transaction_retries_total",
        "Transactions run again after a certification conflict, deadlock or lock timeout, by transaction.",
    ),
    (
        "blindledger_db_unknown_commits_total",
        "Commits whose connection was lost, resolved by reading the job back, by how they resolved.",
    ),
    (
        "blindledger_db_serving",
        "1 while a healthy database node (a Galera primary component) is in use, else 0.",
    ),
    (
        "blindledger_db_pool_connections",
        "Connections of the database pool in use, by state (idle, in_use).",
    ),
    (
        "blindledger_db_pool_max_connections",
        "Most connections the database pool opens.",
    ),
    (
        "blindledger_db_pool_acquire_seconds",
        "Time to take a connection from the database pool, probed every 5 s, in seconds.",
    ),
    // Ledger (services/ledger).
    (
        "blindledger_jobs_submitted_total",
        "Jobs queued, by kind.",
    ),
    (
        "blindledger_jobs_total",
        "Jobs finished, by kind and outcome (committed, failed).",
    ),
    (
        "blindledger_jobs_chained_total",
        "Jobs computed after another in one chain (same accounts, balances passed in memory, one commit); chain_jobs bounds a chain.",
    ),
    (
        "blindledger_jobs_released_total",
        "Running jobs a stopping instance released for another, by reason (shutdown: its grace period ran out).",
    ),
    (
        "blindledger_jobs_queue_depth",
        "Jobs queued or running, all tenants.",
    ),
    (
        "blindledger_jobs_open",
        "Jobs pending and running, all tenants, by state.",
    ),
    (
        "blindledger_job_queue_wait_seconds",
        "Time from a job's submission to its first claim by a worker, in seconds, by kind.",
    ),
    (
        "blindledger_job_latency_seconds",
        "Time from a job's submission to its commit, in seconds, by kind.",
    ),
    (
        "blindledger_fhe_op_seconds",
        "Time spent on the FHE computation of one job, in seconds, by operation.",
    ),
    (
        "blindledger_fhe_bootstraps_total",
        "Programmable bootstraps (tfhe's PBS counter) spent on jobs, by operation; exact with one job at a time (fhe_parallel_jobs = 1), overlapping jobs' otherwise; CPU bootstraps only (stays at 0 with fhe_backend = \"gpu\").",
    ),
    (
        "blindledger_totals_folded_total",
        "Running totals of accounts' transfers through a midnight folded in the background.",
    ),
    (
        "blindledger_value_cache_total",
        "Lookups of decompressed balances, allowances and results, by result (hit: held in memory; miss: decompressed, 32 bootstraps for 64 bits).",
    ),
    (
        "blindledger_value_cache_bytes",
        "Memory held by decompressed values (bounded by balance_cache_mib).",
    ),
    (
        "blindledger_value_cache_skipped_total",
        "Fresh job results not kept in memory because a key holder would not accept them as they are (read from storage instead).",
    ),
    (
        "blindledger_quota_refusals_total",
        "Requests refused because a tenant reached a quota, by quota (jobs, watches).",
    ),
    (
        "blindledger_job_feed_reads_total",
        "Reads of the jobs other instances changed, made for this instance's open job watches.",
    ),
    // Audit trail (crates/audit, services/audit).
    (
        "blindledger_admin_commands_total",
        "Officers' signed commands, by outcome (accepted, rejected).",
    ),
    (
        "blindledger_audit_append_seconds",
        "Time to append one batch of events to the audit trail, in seconds.",
    ),
    (
        "blindledger_audit_events_appended_total",
        "Events appended to the audit trail.",
    ),
    (
        "blindledger_audit_rows_verified_total",
        "Audit trail rows whose hash and link were verified.",
    ),
    (
        "blindledger_audit_import_set_aside_total",
        "Source rows the importer could not turn into an event and set aside, by source table.",
    ),
    (
        "blindledger_audit_checkpoint_publish_failures_total",
        "Checkpoints that could not be published outside the database (retried).",
    ),
    (
        "blindledger_audit_checkpoints_unpublished",
        "Signed checkpoints waiting to be published outside the database.",
    ),
    (
        "blindledger_audit_checkpoint_covered_timestamp_seconds",
        "Unix time at which every row of the audit trail was last covered by a signed checkpoint.",
    ),
    (
        "blindledger_audit_import_lag_seconds",
        "Age of the oldest source row not imported into the trail yet, by source table (0: none waits; +Inf: the source cannot be read).",
    ),
    // Controller (services/controller/src/metrics.rs).
    (
        "blindledger_controller_model_version",
        "Registry version of the model scoring each kind of entity.",
    ),
    (
        "blindledger_controller_training_seconds",
        "Time spent training a model, in seconds, by kind.",
    ),
    (
        "blindledger_controller_cycle_seconds",
        "Time per risk cycle, in seconds.",
    ),
    (
        "blindledger_controller_cycle_failures_total",
        "Risk cycles that failed.",
    ),
    (
        "blindledger_controller_tier_entities",
        "Scored entities in each risk tier, by kind and tier.",
    ),
    (
        "blindledger_controller_bundle_revisions_total",
        "Bundle revisions activated, by bundle.",
    ),
    (
        "blindledger_controller_bundle_info",
        "1 for the active revision of each bundle served (0 for the revision it replaced).",
    ),
    (
        "blindledger_controller_policy_pushes_total",
        "Policy pushes, by outcome (activated, unchanged, or the refusal reason).",
    ),
    (
        "blindledger_controller_alert_deliveries_total",
        "Alert webhook deliveries, by outcome (delivered, failed).",
    ),
    (
        "blindledger_controller_alerts_queued_total",
        "Alerts queued for delivery, by kind.",
    ),
    (
        "blindledger_controller_alert_outbox",
        "Alerts waiting for delivery.",
    ),
    (
        "blindledger_controller_bundle_long_polls_held",
        "Bundle long polls held open, waiting for a new revision.",
    ),
    (
        "blindledger_controller_orders_refused_total",
        "Officers' orders not acted on because no valid officer's signature backs them, by table.",
    ),
];

/// Gives every metric of [`METRICS`] its HELP text on the installed recorder.
pub fn describe_all() {
    for (name, help) in METRICS {
        metrics::describe_counter!(*name, *help);
    }
}

/// The metric names an alert rule or dashboard text refers to (`blindledger_*`,
/// `grpc_server_*`), with a histogram's `_bucket`, `_count` and `_sum` series named by
/// their histogram.
pub fn referenced_metrics(text: &str) -> std::collections::BTreeSet<String> {
    let is_name_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let mut names = std::collections::BTreeSet::new();
    for (start, _) in text.match_indices(['b', 'g']) {
        let rest = &text[start..];
        if !(rest.starts_with("blindledger_") || rest.starts_with("grpc_server_")) {
            continue;
        }
        if text[..start].chars().next_back().is_some_and(is_name_char) {
            continue;
        }
        let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let name = &rest[..end];
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| METRICS.iter().any(|(known, _)| known == base))
            .unwrap_or(name);
        names.insert(base.to_owned());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::{referenced_metrics, METRICS};

    #[test]
    fn alerts_and_dashboards_use_only_exported_metrics() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = vec![root.join("deploy/prometheus/alerts.yml")];
        for entry in std::fs::read_dir(root.join("deploy/grafana")).expect("deploy/grafana") {
            files.push(entry.expect("a dashboard").path());
        }
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable");
            let used = referenced_metrics(&text);
            assert!(used.len() > 5, "{}: {used:?}", file.display());
            for name in used {
                assert!(
                    METRICS.iter().any(|(known, _)| *known == name),
                    "{} uses {name}, which no service exports (crates/telemetry/src/catalog.rs)",
                    file.display()
                );
            }
        }
    }

    #[test]
    fn references_are_found_in_expressions() {
        let used = referenced_metrics(
            "histogram_quantile(0.99, rate(grpc_server_handling_seconds_bucket[5m])) \
             / blindledger_jobs_total{kind=\"x\"} + my_blindledger_other",
        );
        let used: Vec<_> = used.iter().map(String::as_str).collect();
        assert_eq!(
            used,
            ["blindledger_jobs_total", "grpc_server_handling_seconds"]
        );
    }

    #[test]
    fn names_are_unique_and_conventional() {
        let mut names: Vec<&str> = METRICS.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a metric is listed twice");
        for (name, help) in METRICS {
            assert!(
                name.starts_with("blindledger_") || name.starts_with("grpc_server_"),
                "{name}"
            );
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            assert!(help.ends_with('.') && !help.is_empty(), "{name}: {help}");
        }
    }
}
