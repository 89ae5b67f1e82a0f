//! `blindledger dev`: the ledger in-process on SQLite, for local development.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use blindledger_ledger::dev::DevCredentials;
use blindledger_ledger::{Application, LedgerConfig};
use secrecy::SecretString;

use super::Context;

/// Arguments of `blindledger dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Ledger configuration file (TOML); `BLINDLEDGER_*` variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of the SQLite database (`ledger.db`) and object store (`objects/`).
    #[arg(long, value_name = "DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// gRPC listen address [default: the configuration's, 127.0.0.1:50051].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The policy to enforce, built and signed at start-up with development keys.
    #[arg(long, value_name = "DIR", default_value = "policies")]
    policies: PathBuf,
}

/// Runs the ledger until Ctrl-C, then shuts it down gracefully.
pub async fn run(ctx: &Context, args: DevArgs) -> anyhow::Result<()> {
    blindledger_telemetry::init_tracing(false);
    let mut config = dev_config(&args)?;
    provision(ctx, &args, &mut config)?;
    let app = Application::build(config)
        .await
        .context("starting the ledger")?;
    println!("ledger listening on http://{}", app.grpc_addr());
    match app.metrics_addr() {
        Some(addr) => println!("metrics at http://{addr}/metrics"),
        None => println!("metrics disabled"),
    }
    println!("press Ctrl-C to stop");
    app.run_until(ctrl_c())
        .await
        .context("running the ledger")?;
    println!("ledger stopped");
    Ok(())
}

/// Development credentials: token and bundle-signing keys under `<data-dir>/dev/`, the
/// policy built and signed from `--policies`, and an administrator's token (valid 30 days)
/// in the CLI's home directory, which the other verbs send.
fn provision(ctx: &Context, args: &DevArgs, config: &mut LedgerConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.policies.is_dir(),
        "no policy directory at {} (run from the repository root or pass --policies)",
        args.policies.display()
    );
    let dir = args.data_dir.join("dev");
    let credentials = DevCredentials::provision(&dir, &args.policies, "dev")
        .context("provisioning development credentials")?;
    credentials.configure(config);
    let token = credentials.token(
        "dev-admin",
        &["admin"],
        &[],
        std::time::Duration::from_secs(30 * 86_400),
    )?;
    let home = ctx.home()?;
    std::fs::create_dir_all(home.root())
        .with_context(|| format!("creating {}", home.root().display()))?;
    blindledger_ledger::dev::write_private(&home.token_path(), token.as_bytes())?;
    println!("admin token saved in {}", home.token_path().display());
    println!(
        "other tokens: blindledger token issue --sub NAME --role teller --tenant TENANT --key {}",
        dir.join("token.key").display()
    );
    Ok(())
}

/// Loads the configuration, then points storage at the data directory: `dev` always runs
/// on a local SQLite database, whatever the file says.
fn dev_config(args: &DevArgs) -> anyhow::Result<LedgerConfig> {
    let mut config =
        LedgerConfig::load(args.config.as_deref()).context("loading the configuration")?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    // Absolute paths make the printed locations unambiguous and survive a changed cwd.
    let data_dir = args
        .data_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", args.data_dir.display()))?;
    let objects = data_dir.join("objects");
    std::fs::create_dir_all(&objects).with_context(|| format!("creating {}", objects.display()))?;
    config.database_url = SecretString::from(sqlite_url(&data_dir.join("ledger.db")));
    config.object_store_dir = objects;
    if let Some(listen) = args.listen {
        config.listen_addr = listen;
    }
    tracing::info!(data_dir = %data_dir.display(), "dev ledger storage");
    Ok(config)
}

/// Builds a SQLite URL that creates the file when missing. sqlx percent-decodes the path,
/// so the characters it would misread are encoded.
fn sqlite_url(path: &Path) -> String {
    let mut encoded = String::new();
    for c in path.display().to_string().chars() {
        match c {
            '%' => encoded.push_str("%25"),
            '?' => encoded.push_str("%3F"),
            '#' => encoded.push_str("%23"),
            c => encoded.push(c),
        }
    }
    format!("sqlite://{encoded}?mode=rwc")
}

/// Resolves on Ctrl-C. If the handler cannot be installed it never resolves, so the
/// ledger keeps running rather than stopping at once.
async fn ctrl_c() {
    match tokio::signal::ctrl_c().await {
        Ok(()) => tracing::info!("Ctrl-C received, shutting down"),
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for Ctrl-C; stop the process another way");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_the_file_and_escape_special_characters() {
        assert_eq!(
            sqlite_url(Path::new("/tmp/data/ledger.db")),
            "sqlite:///tmp/data/ledger.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url(Path::new("/tmp/a?b#c%d/ledger.db")),
            "sqlite:///tmp/a%3Fb%23c%25d/ledger.db?mode=rwc"
        );
    }
}
