//! `blindledger risk`: the controller's anomaly detector, judged on labelled data.

use std::path::PathBuf;

use anyhow::Context as _;
use blindledger_risk::{evaluate, Dataset};

use super::controller::{print_scores, ControllerApi};

/// `risk` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum RiskCommand {
    /// Trains the isolation forest on a CSV file (columns f0..fN, optional `label`), scores
    /// every row and, when labels exist, prints the ROC-AUC of each seed
    Eval {
        /// The feature table
        #[arg(long, value_name = "FILE")]
        csv: PathBuf,
        /// Trees per forest
        #[arg(long, default_value_t = 100)]
        trees: usize,
        /// Rows sampled per tree
        #[arg(long, default_value_t = 256)]
        samples: usize,
        /// Seeds to average over (repeatable) [default: 0 1 2 3 4]
        #[arg(long = "seed", value_name = "SEED")]
        seeds: Vec<u64>,
    },
    /// Prints the controller's current tiers and scores, with the features that drove them
    Scores {
        /// Only accounts or only principals
        #[arg(long, value_name = "account|principal")]
        kind: Option<String>,
        /// Only entities at this tier or above
        #[arg(long, value_name = "TIER")]
        min_tier: Option<String>,
        #[command(flatten)]
        controller: ControllerApi,
    },
}

/// `risk scores`: asks the controller.
pub async fn scores(ctx: &super::Context, command: RiskCommand) -> anyhow::Result<()> {
    let RiskCommand::Scores {
        kind,
        min_tier,
        controller,
    } = command
    else {
        return run(command);
    };
    let token = match &ctx.token {
        Some(token) => Some(token.clone()),
        None => ctx.home()?.token()?,
    };
    let mut query = Vec::new();
    query.extend(kind.map(|k| ("kind", k)));
    query.extend(min_tier.map(|t| ("min_tier", t)));
    let scores = controller
        .call(token.as_deref(), |http, base| {
            http.get(format!("{base}/v1/risk/scores")).query(&query)
        })
        .await?;
    crate::output::emit(scores.clone(), || print_scores(&scores));
    Ok(())
}

/// Runs a `risk` verb that needs no service.
pub fn run(command: RiskCommand) -> anyhow::Result<()> {
    let RiskCommand::Eval {
        csv,
        trees,
        samples,
        seeds,
    } = command
    else {
        anyhow::bail!("`risk scores` talks to the controller: use `scores`");
    };
    let dataset =
        Dataset::from_csv_path(&csv).with_context(|| format!("reading {}", csv.display()))?;
    let seeds = if seeds.is_empty() {
        vec![0, 1, 2, 3, 4]
    } else {
        seeds
    };
    let report = evaluate(&dataset, trees, samples, &seeds)
        .with_context(|| format!("evaluating on {}", csv.display()))?;
    let value = serde_json::json!({
        "rows": report.rows,
        "features": report.features,
        "anomalies": report.anomalies,
        "n_trees": report.n_trees,
        "max_samples": report.max_samples,
        "seeds": report.seeds,
        "auc_per_seed": report.auc_per_seed,
        "auc_mean": report.auc_mean,
        "fit_seconds": report.fit_seconds,
        "score_seconds": report.score_seconds,
    });
    crate::output::emit(value, || println!("{}", report.to_string().trim_end()));
    Ok(())
}
