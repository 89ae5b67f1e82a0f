//! `blindledger db migrate|grants|prune`: the database administrator's verbs. The schema is
//! migrated once, by an account allowed to change it; each service then connects as its own
//! MariaDB user holding only the privileges `db grants` prints (the list, and why each
//! privilege is needed, is `crates/store/src/grants.rs`).

use anyhow::Context as _;
use blindledger_audit::retention::Retention;
use blindledger_store::grants::{self, DbUser, Service, DEFAULT_DATABASE};
use blindledger_store::Db;

/// `db` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Applies the schema migrations as an account allowed to change the schema (the
    /// services then run with `migrate = false` under their own users)
    Migrate {
        /// The database, as an administrator: mysql://root:PASSWORD@HOST:3306/blindledger
        #[arg(
            long,
            env = "BLINDLEDGER_ADMIN_DATABASE_URL",
            value_name = "URL",
            hide_env_values = true
        )]
        database_url: String,
    },
    /// Deletes what the audit trail was built from once it is older than its retention
    /// and the trail holds its event: decision-log rows, the ciphertexts of finished jobs,
    /// finished jobs. An administrator's operation (no service's user may delete); run it
    /// daily (cron, a Kubernetes CronJob). Retentions are at least 24h.
    Prune {
        /// The database, as an administrator
        #[arg(
            long,
            env = "BLINDLEDGER_ADMIN_DATABASE_URL",
            value_name = "URL",
            hide_env_values = true
        )]
        database_url: String,
        /// Keep decision-log rows this long (e.g. 90d) [default: forever]
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        decision_log: Option<std::time::Duration>,
        /// Keep the encrypted payload and results of finished jobs this long; aggregates
        /// cannot reach back further [default: forever]
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        job_ciphertexts: Option<std::time::Duration>,
        /// Keep finished jobs (and so their idempotency keys) this long [default: forever]
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        jobs: Option<std::time::Duration>,
    },
    /// Prints the GRANT statements that give each service's MariaDB user the privileges it
    /// needs and no more, table by table, for the `mariadb` client
    Grants {
        /// Only this service [default: all three]
        #[arg(long, value_enum)]
        service: Option<ServiceName>,
        /// The database holding the tables
        #[arg(long, default_value = DEFAULT_DATABASE, value_parser = database_name)]
        database: String,
        /// The service's account: 'name'@'host', name@host or name (any host)
        /// [default: 'blindledger_<service>'@'%']
        #[arg(long, value_name = "ACCOUNT", requires = "service")]
        user: Option<DbUser>,
    },
}

/// A service with its own database user.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ServiceName {
    /// The ledger
    Ledger,
    /// The controller
    Controller,
    /// The audit service
    Audit,
}

impl From<ServiceName> for Service {
    fn from(name: ServiceName) -> Self {
        match name {
            ServiceName::Ledger => Service::Ledger,
            ServiceName::Controller => Service::Controller,
            ServiceName::Audit => Service::Audit,
        }
    }
}

/// A MariaDB database name: 1 to 64 characters.
fn database_name(name: &str) -> Result<String, String> {
    match name.chars().count() {
        1..=64 if !name.contains('\0') => Ok(name.to_owned()),
        _ => Err(format!("expected 1 to 64 characters, got {name:?}")),
    }
}

/// Runs a `db` verb.
pub async fn run(command: DbCommand) -> anyhow::Result<()> {
    match command {
        DbCommand::Migrate { database_url } => migrate(&database_url).await,
        DbCommand::Prune {
            database_url,
            decision_log,
            job_ciphertexts,
            jobs,
        } => {
            let retention = Retention {
                decision_log,
                job_ciphertexts,
                jobs,
            };
            prune(&database_url, &retention).await
        }
        DbCommand::Grants {
            service,
            database,
            user,
        } => {
            let script = grants_script(service.map(Service::from), &database, user);
            crate::output::emit(serde_json::json!({ "sql": script }), || print!("{script}"));
            Ok(())
        }
    }
}

/// Connects as the administrator and applies every migration not yet applied.
async fn migrate(url: &str) -> anyhow::Result<()> {
    let shown = blindledger_telemetry::redact_url(url);
    let db = Db::connect(url, 1)
        .await
        .with_context(|| format!("connecting to {shown}"))?;
    let migrated = db.migrate().await;
    db.close().await;
    migrated.with_context(|| format!("migrating {shown}"))?;
    crate::output::emit(
        serde_json::json!({ "migrated": true, "database": shown }),
        || println!("schema up to date: {shown}"),
    );
    Ok(())
}

/// Connects as the administrator and prunes what `retention` lets go.
async fn prune(url: &str, retention: &Retention) -> anyhow::Result<()> {
    retention.validate().context("retention")?;
    let shown = blindledger_telemetry::redact_url(url);
    let log = blindledger_audit::AuditLog::connect(url, 2, false)
        .await
        .with_context(|| format!("connecting to {shown}"))?;
    let report = log
        .prune_sources(retention, blindledger_audit::now_ms())
        .await;
    log.close().await;
    let report = report.with_context(|| format!("pruning {shown}"))?;
    crate::output::emit(serde_json::to_value(report)?, || {
        println!(
            "{} decision-log rows deleted, {} jobs' ciphertexts cleared, {} jobs deleted",
            report.decisions_deleted, report.job_ciphertexts_cleared, report.jobs_deleted
        )
    });
    Ok(())
}

/// The script for one service (as `user`, or its default user) or for all three.
fn grants_script(service: Option<Service>, database: &str, user: Option<DbUser>) -> String {
    match service {
        Some(service) => {
            let user = user.unwrap_or_else(|| service.default_user());
            grants::grants_script(database, &[(service, user)])
        }
        None => grants::default_grants_script(database),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_service_under_a_named_user() {
        let user: DbUser = "'ledger'@'%'".parse().expect("a user");
        let script = grants_script(Some(Service::Ledger), "blindledger", Some(user));
        assert!(
            script.contains("GRANT INSERT ON `blindledger`.`decision_log` TO 'ledger'@'%';"),
            "{script}"
        );
        assert!(!script.contains("audit_"), "{script}");
        assert!(!script.contains("blindledger_controller"), "{script}");
    }

    #[test]
    fn without_a_service_every_default_user() {
        let script = grants_script(None, "ledger_prod", None);
        for service in Service::ALL {
            assert!(
                script.contains(&format!("-- {service}: {}", service.default_user())),
                "{script}"
            );
        }
        assert!(
            script.contains("ON `ledger_prod`.`audit_events`"),
            "{script}"
        );
    }
}
