//! `blindledger-controller`: the controller as its own process, for production.
//!
//! Configuration: `--config FILE` (TOML) and `BLINDLEDGER_*` environment variables.
//! Prints `metrics <addr>` (when configured), then `listening <addr>` on stdout once the
//! ports are bound, for supervisors and tests.

use anyhow::Context;
use blindledger_controller::{Application, ControllerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    blindledger_telemetry::service_main("blindledger-controller", async {
        let args = blindledger_telemetry::ServiceArgs::parse(
            "blindledger-controller",
            "The BlindLedger controller: risk scores, the risk bundle, the bundle server and policy pushes.",
            ControllerConfig::KEYS,
        );
        let config_file = args.config;
        let config =
            ControllerConfig::load(config_file.as_deref()).context("loading configuration")?;
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
