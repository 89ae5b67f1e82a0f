//! `blindledger-ledger`: the ledger service as its own process, for production.
//!
//! Configuration: `--config FILE` (TOML) and `BLINDLEDGER_*` environment variables.
//! Prints `metrics <addr>` (when configured), then `listening <addr>` on stdout once the
//! ports are bound, for supervisors and tests.

use anyhow::Context;
use blindledger_ledger::{Application, LedgerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    blindledger_telemetry::service_main("blindledger-ledger", async {
        let args = blindledger_telemetry::ServiceArgs::parse(
            "blindledger-ledger",
            "The BlindLedger ledger: gRPC verbs on encrypted amounts, and the workers that compute them.",
            LedgerConfig::KEYS,
        );
        let config_file = args.config;
        let config = LedgerConfig::load(config_file.as_deref()).context("loading configuration")?;
        let app = Application::build(config).await?;
        if let Some(metrics) = app.metrics_addr() {
            println!("metrics {metrics}");
        }
        println!("listening {}", app.grpc_addr());
        app.run_until(async {
            blindledger_telemetry::shutdown_signal().await;
        })
        .await
    })
    .await
}
