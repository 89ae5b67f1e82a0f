//! `blindledger-audit`: the audit service as its own process.
//!
//! Configuration: `--config FILE` (TOML) and `BLINDLEDGER_AUDIT_*` environment variables.
//! Prints `metrics <addr>` (when configured), then `listening <addr>` on stdout once the
//! ports are bound, for supervisors and tests.

use anyhow::Context;
use blindledger_audit_service::{Application, AuditConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    blindledger_telemetry::service_main("blindledger-audit", async {
        let args = blindledger_telemetry::ServiceArgs::parse_with_prefix(
            "blindledger-audit",
            "The BlindLedger audit service: the compliance dashboard, audit API and audit trail.",
            "BLINDLEDGER_AUDIT_",
            AuditConfig::KEYS,
        );
        let config_file = args.config;
        let config = AuditConfig::load(config_file.as_deref()).context("loading configuration")?;
        let app = Application::build(config).await?;
        if let Some(metrics) = app.metrics_addr() {
            println!("metrics {metrics}");
        }
        println!("listening {}", app.addr());
        app.run_until(async {
            blindledger_telemetry::shutdown_signal().await;
        })
        .await
    })
    .await
}
