//! `blindledger-controller`: the controller as its own process, for production.
//!
//! Configuration: `--config FILE` (TOML) and `BLINDLEDGER_*` environment variables.
//! Prints `listening <addr>` on stdout once the port is bound, for supervisors and tests.

use std::path::PathBuf;

use anyhow::Context;
use blindledger_controller::{Application, ControllerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    blindledger_telemetry::service_main("blindledger-controller", async {
        let config_file = config_path()?;
        let config =
            ControllerConfig::load(config_file.as_deref()).context("loading configuration")?;
        let app = Application::build(config).await?;
        println!("listening {}", app.addr());
        app.run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })
    .await
}

fn config_path() -> anyhow::Result<Option<PathBuf>> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => Ok(None),
        (Some("--config"), Some(path)) => Ok(Some(PathBuf::from(path))),
        _ => anyhow::bail!("usage: blindledger-controller [--config FILE]"),
    }
}
