//! `blindledger controller`, `blindledger risk scores` and `blindledger policy
//! push|history|rollback`: the controller's process and its HTTP API.

use std::path::PathBuf;

use anyhow::Context as _;
use blindledger_controller::{Application, ControllerConfig};
use blindledger_service::ServiceConfig as _;
use serde_json::Value;

/// Arguments of `blindledger controller`.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// TOML configuration (see services/controller/src/config.rs);
    /// `BLINDLEDGER_CONTROLLER_*` variables override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Runs the controller until Ctrl-C or SIGTERM.
pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    blindledger_telemetry::init_tracing(
        std::env::var_os("BLINDLEDGER_LOG_JSON").is_some(),
        "blindledger-controller",
    );
    let config = ControllerConfig::load(args.config.as_deref()).context("loading configuration")?;
    let app = Application::build(config).await?;
    let url = app.base_url();
    crate::output::emit(
        serde_json::json!({ "event": "ready", "controller": url }),
        || println!("controller listening on {url}"),
    );
    app.run_until(async {
        blindledger_telemetry::shutdown_signal().await;
    })
    .await
}

/// Where the controller is and who calls it.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerApi {
    /// The controller's base URL
    #[arg(
        long = "controller",
        env = "BLINDLEDGER_CONTROLLER",
        default_value = "http://127.0.0.1:8181"
    )]
    pub url: String,
}

impl ControllerApi {
    /// Sends a request and returns the JSON body; a non-2xx answer is an error carrying the
    /// controller's `error`, `message` and report.
    pub async fn call(
        &self,
        token: Option<&str>,
        request: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<Value> {
        let response = super::send_http("controller", &self.url, token, request).await?;
        let status = response.status();
        let decision_id = super::decision_id_header(response.headers());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        if let Some(report) = body.get("report") {
            // What was measured goes with the refusal, as the result.
            crate::output::emit(report.clone(), || {
                println!(
                    "{}",
                    serde_json::to_string_pretty(report).unwrap_or_default()
                )
            });
        }
        let code = body["error"].as_str().unwrap_or("error");
        let message = body["message"].as_str().unwrap_or("");
        Err(crate::exit::HttpRefusal {
            service: "controller",
            status: status.as_u16(),
            message: format!("{code}: {message}"),
            decision_id,
        }
        .into())
    }
}

/// Prints the risk tiers and scores, with the features that drove each.
pub fn print_scores(scores: &Value) {
    let revision = scores["risk_revision"].as_str().unwrap_or("-");
    println!("risk bundle revision {revision}");
    println!(
        "{:<10} {:<32} {:<8} {:>6}  drivers",
        "kind", "entity", "tier", "score"
    );
    for entity in scores["entities"].as_array().into_iter().flatten() {
        let drivers: Vec<String> = entity["top_features"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let z = f["z"].as_f64().unwrap_or_default();
                format!("{} (z {z:.1})", f["name"].as_str().unwrap_or("?"))
            })
            .collect();
        println!(
            "{:<10} {:<32} {:<8} {:>6.3}  {}",
            entity["kind"].as_str().unwrap_or("?"),
            entity["entity"].as_str().unwrap_or("?"),
            entity["tier"].as_str().unwrap_or("?"),
            entity["score"].as_f64().unwrap_or_default(),
            drivers.join(", ")
        );
    }
}
