//! The MariaDB privileges of each service, table by table: the one place that knows which
//! tables the ledger, the controller and the audit service read and write.
//!
//! Each service connects as its own MariaDB user holding only the privileges below, granted
//! table by table (never `db.*`), so a new table is reachable by nobody until it is added
//! here. Above all, the ledger's user has no privilege on any audit table: whoever holds the
//! ledger's credentials cannot rewrite, delete or even read the audit trail. And the audit
//! service's own user can append to the chain and sign checkpoints, but never update or
//! delete an audit event or a checkpoint.
//!
//! Migrations (and `_sqlx_migrations`, their history) are run by one privileged account
//! (`blindledger db migrate`); the services run with `migrate = false` and hold no privilege
//! on `_sqlx_migrations` and no DDL privilege. A table-level grant needs its table, so grants
//! are applied after the migrations, and again after a migration adds a table.
//!
//! The lists follow every statement in `crates/store` (the ledger, and the decision sink of
//! `crates/gate`), `services/controller/src/repo`, `crates/audit` and `services/audit`; the
//! least-privilege tests of the ledger, the controller and the audit service run each of
//! them on MariaDB under its own user. In MariaDB, `REPLACE INTO` needs INSERT and DELETE,
//! and an UPDATE or DELETE whose WHERE reads columns needs SELECT on them.

use std::fmt;
use std::str::FromStr;

/// The database the checked-in `deploy/mariadb/grants.sql` is written for.
pub const DEFAULT_DATABASE: &str = "blindledger";

/// A service with its own database user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// The ledger (`services/ledger`, storage in `crates/store`).
    Ledger,
    /// The controller (`services/controller`).
    Controller,
    /// The audit service (`services/audit`, the trail in `crates/audit`).
    Audit,
}

impl Service {
    /// Every service, in the order the grants script lists them.
    pub const ALL: [Service; 3] = [Service::Ledger, Service::Controller, Service::Audit];

    /// Its name: `ledger`, `controller`, `audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Ledger => "ledger",
            Service::Controller => "controller",
            Service::Audit => "audit",
        }
    }

    /// The user the checked-in grants name: `'blindledger_<service>'@'%'`.
    pub fn default_user(self) -> DbUser {
        DbUser {
            name: format!("blindledger_{}", self.as_str()),
            host: "%".to_owned(),
        }
    }

    /// What it may do, table by table.
    pub fn table_grants(self) -> &'static [TableGrant] {
        match self {
            Service::Ledger => LEDGER,
            Service::Controller => CONTROLLER,
            Service::Audit => AUDIT,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A privilege on one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Read rows.
    Select,
    /// Add rows.
    Insert,
    /// Change any column of rows.
    Update,
    /// Change only these columns.
    UpdateOf(&'static [&'static str]),
    /// Remove rows.
    Delete,
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Privilege::Select => f.write_str("SELECT"),
            Privilege::Insert => f.write_str("INSERT"),
            Privilege::Update => f.write_str("UPDATE"),
            Privilege::UpdateOf(columns) => write!(f, "UPDATE ({})", columns.join(", ")),
            Privilege::Delete => f.write_str("DELETE"),
        }
    }
}

/// A service's privileges on one table, and why it needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableGrant {
    /// The table, as created by the migrations.
    pub table: &'static str,
    /// What the service does with it.
    pub privileges: &'static [Privilege],
    /// Which code needs them (written into the grants script as a comment).
    pub why: &'static str,
}

use Privilege::{Delete, Insert, Select, Update};

/// The ledger: its own tables, and the decision log it appends to. Nothing else: not the
/// audit trail, not the controller's tables.
const LEDGER: &[TableGrant] = &[
    TableGrant {
        table: "tenants",
        privileges: &[Select, Insert, Update],
        why: "RegisterKeys registers a tenant or rotates its keys (upsert); every call reads it",
    },
    TableGrant {
        table: "accounts",
        privileges: &[Select, Insert, Update],
        why: "OpenAccount inserts; committed jobs compare-and-set balances on their version",
    },
    TableGrant {
        table: "jobs",
        privileges: &[Select, Insert, Update],
        why: "the job queue: submit, claim and renew leases, release, fail, commit; jobs are \
              never deleted",
    },
    TableGrant {
        table: "account_totals",
        privileges: &[Select, Insert],
        why: "aggregates read running totals through day boundaries and store those they \
              fold; totals never change",
    },
    TableGrant {
        table: "decision_log",
        privileges: &[Insert],
        why: "the policy gate records each decision before it takes effect; append only: \
              the ledger cannot read, change or delete what it logged",
    },
    TableGrant {
        table: "gate_revision_floors",
        privileges: &[Select, Insert, Update],
        why: "the highest risk-bundle revision the gate activated, read at start-up and \
              raised on each activation",
    },
];

/// The controller: its own `controller_*` tables, the decision log, and what the ledger and
/// the audit service publish to it (their `*_feed` views: job metadata, officers' orders).
const CONTROLLER: &[TableGrant] = &[
    TableGrant {
        table: "decision_log",
        privileges: &[Select, Insert],
        why: "feature extraction streams decisions; a policy push replays recent inputs; the \
              API's policy gate records its decisions",
    },
    TableGrant {
        table: "ledger_job_feed",
        privileges: &[Select],
        why: "feature extraction streams job metadata by creation time (the ledger's view: \
              no ciphertext, no parameters)",
    },
    TableGrant {
        table: "controller_models",
        privileges: &[Select, Insert, Update],
        why: "the model registry: next version, insert, latest; old models' blobs are \
              cleared by UPDATE",
    },
    TableGrant {
        table: "controller_entity_risk",
        privileges: &[Select, Insert, Delete],
        why: "current tiers and scores, read each cycle and written by REPLACE INTO \
              (INSERT and DELETE)",
    },
    TableGrant {
        table: "controller_tier_changes",
        privileges: &[Select, Insert],
        why: "tier changes are appended each cycle and listed by the scores API",
    },
    TableGrant {
        table: "controller_score_history",
        privileges: &[Select, Insert, Delete],
        why: "score history is appended each cycle; rows past retention are deleted \
              (the DELETE's WHERE reads scored_at)",
    },
    TableGrant {
        table: "controller_bundles",
        privileges: &[Select, Insert],
        why: "every served bundle revision, stored once and served byte for byte",
    },
    TableGrant {
        table: "controller_activations",
        privileges: &[Select, Insert],
        why: "append-only activation history; the active revision is the latest row",
    },
    TableGrant {
        table: "controller_push_reports",
        privileges: &[Select, Insert],
        why: "the report of every policy push, accepted or refused",
    },
    TableGrant {
        table: "controller_alerts",
        privileges: &[Select, Insert, Update],
        why: "the alert outbox: enqueue with dedupe, deliver, record attempts",
    },
    TableGrant {
        table: "controller_applied_actions",
        privileges: &[Select, Insert],
        why: "the officers' orders carried out, one row each, so none is carried out twice",
    },
    TableGrant {
        table: "audit_frozen_account_feed",
        privileges: &[Select],
        why: "officers' freezes (the audit service's view), published in the risk bundle",
    },
    TableGrant {
        table: "audit_revoked_key_feed",
        privileges: &[Select],
        why: "officers' key revocations (the audit service's view), published in the risk \
              bundle",
    },
    TableGrant {
        table: "audit_admin_action_feed",
        privileges: &[Select],
        why: "bundle rollbacks ordered by officers (the audit service's view)",
    },
];

/// The audit service: the trail (append only), officers' commands, and reads of the tables
/// it imports from and shows on the dashboard. It never writes a ledger or controller table
/// except `decision_log`, where its own policy gate records the dashboard's decisions.
const AUDIT: &[TableGrant] = &[
    TableGrant {
        table: "audit_events",
        privileges: &[Select, Insert],
        why: "the hash chain: appended, verified, exported and shown; never updated or \
              deleted (ANALYZE TABLE needs SELECT and INSERT)",
    },
    TableGrant {
        table: "audit_head",
        privileges: &[Select, Update],
        why: "the single head row, locked FOR UPDATE and moved by every append",
    },
    TableGrant {
        table: "audit_checkpoints",
        privileges: &[Select, Insert],
        why: "signed checkpoints are added and exported; never updated or deleted",
    },
    TableGrant {
        table: "audit_cursors",
        privileges: &[Select, Insert, Delete],
        why: "importer positions, moved by REPLACE INTO (INSERT and DELETE)",
    },
    TableGrant {
        table: "audit_job_states",
        privileges: &[Select, Insert, Delete],
        why: "the last imported state per job (REPLACE INTO); finished jobs are forgotten",
    },
    TableGrant {
        table: "admin_nonces",
        privileges: &[Select, Insert, Delete],
        why: "a command's nonce is checked and recorded; expired nonces are deleted",
    },
    TableGrant {
        table: "frozen_accounts",
        privileges: &[Select, Insert, Delete],
        why: "freeze (REPLACE INTO) and unfreeze (DELETE); served as policy data",
    },
    TableGrant {
        table: "revoked_tenant_keys",
        privileges: &[Select, Insert, Delete],
        why: "key revocations (REPLACE INTO); served as policy data",
    },
    TableGrant {
        table: "admin_actions",
        privileges: &[Insert],
        why: "accepted commands another service carries out (bundle rollbacks, key \
              revocations) are queued",
    },
    TableGrant {
        table: "decision_log",
        privileges: &[Select, Insert],
        why: "imported into the trail (and its lag shown); the dashboard's own policy gate \
              records its decisions",
    },
    TableGrant {
        table: "gate_revision_floors",
        privileges: &[Select, Insert, Update],
        why: "the highest risk-bundle revision the dashboard's gate activated, read at \
              start-up and raised on each activation",
    },
    TableGrant {
        table: "ledger_job_feed",
        privileges: &[Select],
        why: "job state changes are imported; the transactions pages show metadata and \
              ciphertext sizes (the ledger's view)",
    },
    TableGrant {
        table: "ledger_tenant_feed",
        privileges: &[Select],
        why: "the attention list names tenants whose keys were not rotated for long (the \
              ledger's view: no key)",
    },
    TableGrant {
        table: "controller_activation_feed",
        privileges: &[Select],
        why: "bundle activations are imported; the bundles page lists them",
    },
    TableGrant {
        table: "controller_push_report_feed",
        privileges: &[Select],
        why: "the bundles page shows each push's tests and impact",
    },
    TableGrant {
        table: "controller_risk_feed",
        privileges: &[Select],
        why: "the overview, risk and attention pages show tiers",
    },
    TableGrant {
        table: "controller_tier_change_feed",
        privileges: &[Select],
        why: "the risk page lists tier changes",
    },
    TableGrant {
        table: "controller_score_feed",
        privileges: &[Select],
        why: "the risk page charts score history",
    },
];

/// A MariaDB account, `'name'@'host'`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DbUser {
    name: String,
    host: String,
}

/// Why a string is not a [`DbUser`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid database user {given:?}: {why} (expected 'name'@'host', name@host or name)")]
pub struct DbUserError {
    given: String,
    why: &'static str,
}

/// Longest user name MariaDB accepts.
const MAX_USER_CHARS: usize = 80;
/// Longest host MariaDB accepts.
const MAX_HOST_CHARS: usize = 255;

impl DbUser {
    /// The account `name`@`host`, checked as [`FromStr`] checks it.
    pub fn new(name: &str, host: &str) -> Result<Self, DbUserError> {
        let invalid = |why| DbUserError {
            given: format!("{name}@{host}"),
            why,
        };
        check_part(name, MAX_USER_CHARS).map_err(invalid)?;
        check_part(host, MAX_HOST_CHARS).map_err(invalid)?;
        Ok(DbUser {
            name: name.to_owned(),
            host: host.to_owned(),
        })
    }

    /// The user name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host it may connect from (`%`: any).
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// Checks one part of an account: quoted as is, so no quote, backslash or control character.
fn check_part(part: &str, max_chars: usize) -> Result<(), &'static str> {
    if part.is_empty() {
        return Err("empty name or host");
    }
    if part.chars().count() > max_chars {
        return Err("name or host too long");
    }
    if part
        .chars()
        .any(|c| c == '\'' || c == '\\' || c.is_control())
    {
        return Err("quotes, backslashes and control characters are not allowed");
    }
    Ok(())
}

impl FromStr for DbUser {
    type Err = DbUserError;

    /// Parses `'name'@'host'`, `name@host` or `name` (any host, `%`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |why| DbUserError {
            given: text.to_owned(),
            why,
        };
        let text = text.trim();
        if let Some(quoted) = text.strip_prefix('\'') {
            let (name, host) = quoted
                .split_once("'@'")
                .and_then(|(name, rest)| Some((name, rest.strip_suffix('\'')?)))
                .ok_or_else(|| invalid("unbalanced quotes"))?;
            return DbUser::new(name, host).map_err(|e| invalid(e.why));
        }
        let (name, host) = text.rsplit_once('@').unwrap_or((text, "%"));
        DbUser::new(name, host).map_err(|e| invalid(e.why))
    }
}

impl fmt::Display for DbUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'@'{}'", self.name, self.host)
    }
}

/// `name` as a MariaDB identifier: in backticks, backticks doubled.
fn identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The `GRANT` statements (without `;`) giving `user` the privileges of `service` on the
/// tables of `database`, one per table.
pub fn grants(service: Service, database: &str, user: &DbUser) -> Vec<String> {
    service
        .table_grants()
        .iter()
        .map(|grant| grant_statement(grant, database, user))
        .collect()
}

fn grant_statement(grant: &TableGrant, database: &str, user: &DbUser) -> String {
    let privileges: Vec<String> = grant.privileges.iter().map(|p| p.to_string()).collect();
    format!(
        "GRANT {} ON {}.{} TO {user}",
        privileges.join(", "),
        identifier(database),
        identifier(grant.table)
    )
}

/// A script for the `mariadb` client granting each `(service, user)` its privileges on
/// `database`, each statement after a comment saying why: what `blindledger db grants`
/// prints, and `deploy/mariadb/grants.sql` for the default names.
pub fn grants_script(database: &str, users: &[(Service, DbUser)]) -> String {
    let mut script = String::from(
        "-- Least-privilege MariaDB users of the BlindLedger services, table by table\n\
         -- (printed by `blindledger db grants`; the reasons are in crates/store/src/grants.rs).\n\
         -- Run as an administrator after `blindledger db migrate`, and again after a\n\
         -- migration adds a table. The users must exist (CREATE USER). Grants only add\n\
         -- privileges: REVOKE ALL PRIVILEGES, GRANT OPTION FROM a user to start over.\n",
    );
    for (service, user) in users {
        script.push_str(&format!("\n-- {service}: {user}\n"));
        for grant in service.table_grants() {
            script.push_str(&format!(
                "-- {}: {}\n{};\n",
                grant.table,
                grant.why,
                grant_statement(grant, database, user)
            ));
        }
    }
    script
}

/// [`grants_script`] for every service under its [`Service::default_user`].
pub fn default_grants_script(database: &str) -> String {
    let users: Vec<(Service, DbUser)> = Service::ALL
        .iter()
        .map(|&service| (service, service.default_user()))
        .collect();
    grants_script(database, &users)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// The tables and views each migration set creates: (set, table).
    fn migrated_tables() -> Vec<(String, String)> {
        let mut tables = Vec::new();
        for set in crate::MigrationSet::ALL {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../migrations")
                .join(set.as_str())
                .join("mysql");
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .expect("migrations directory")
                .map(|entry| entry.expect("migration file").path())
                .collect();
            files.sort();
            for file in files {
                let sql = std::fs::read_to_string(&file).expect("readable migration");
                for created in ["CREATE TABLE ", "CREATE VIEW "] {
                    for rest in sql.split(created).skip(1) {
                        let table = rest.split_whitespace().next().unwrap_or_default();
                        tables.push((set.as_str().to_owned(), table.to_owned()));
                    }
                }
            }
        }
        tables
    }

    #[test]
    fn a_service_reads_another_services_data_through_its_feeds_only() {
        let owners: std::collections::BTreeMap<String, String> = migrated_tables()
            .into_iter()
            .map(|(set, table)| (table, set))
            .collect();
        for service in Service::ALL {
            for grant in service.table_grants() {
                let owner = owners.get(grant.table).map(String::as_str);
                if owner == Some(service.as_str()) || owner == Some("gate") {
                    continue;
                }
                assert!(
                    grant.table.ends_with("_feed") && grant.privileges == [Select],
                    "{service} is granted {grant:?} on the {owner:?} set's {}: read another \
                     service's data through a view it publishes",
                    grant.table
                );
            }
        }
    }

    #[test]
    fn the_checked_in_script_is_what_the_code_grants() {
        let checked_in = include_str!("../../../deploy/mariadb/grants.sql");
        assert!(
            checked_in == default_grants_script(DEFAULT_DATABASE),
            "deploy/mariadb/grants.sql is out of date: regenerate it with \
             `cargo run --release -p blindledger-cli -- db grants > deploy/mariadb/grants.sql`"
        );
    }

    #[test]
    fn every_table_is_granted_and_every_grant_names_a_table() {
        let migrated: BTreeSet<String> = migrated_tables().into_iter().map(|(_, t)| t).collect();
        let granted: BTreeSet<String> = Service::ALL
            .iter()
            .flat_map(|s| s.table_grants())
            .map(|g| g.table.to_owned())
            .collect();
        let unknown: Vec<_> = granted.difference(&migrated).collect();
        assert!(
            unknown.is_empty(),
            "grants on tables no migration creates: {unknown:?}"
        );
        let ungranted: Vec<_> = migrated.difference(&granted).collect();
        assert!(
            ungranted.is_empty(),
            "tables no service may use: {ungranted:?}; say in crates/store/src/grants.rs which \
             service reads and writes them"
        );
        for service in Service::ALL {
            let tables: Vec<_> = service.table_grants().iter().map(|g| g.table).collect();
            let distinct: BTreeSet<_> = tables.iter().collect();
            assert_eq!(
                tables.len(),
                distinct.len(),
                "{service} lists a table twice"
            );
        }
    }

    #[test]
    fn the_ledger_has_no_privilege_on_the_audit_trail() {
        let audit_tables: BTreeSet<String> = migrated_tables()
            .into_iter()
            .filter(|(set, _)| set == "audit")
            .map(|(_, table)| table)
            .collect();
        assert!(audit_tables.contains("audit_events"), "{audit_tables:?}");
        for grant in Service::Ledger.table_grants() {
            assert!(!audit_tables.contains(grant.table), "ledger: {grant:?}");
        }
        // Nobody, the audit service included, may change or remove a chained row or a
        // signed checkpoint.
        for service in Service::ALL {
            for grant in service.table_grants() {
                if matches!(grant.table, "audit_events" | "audit_checkpoints") {
                    assert!(
                        grant
                            .privileges
                            .iter()
                            .all(|p| matches!(p, Select | Insert)),
                        "{service}: {grant:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn statements_quote_the_database_table_and_user() {
        let user: DbUser = "'ledger'@'10.0.%'".parse().expect("a user");
        let statements = grants(Service::Ledger, "bl`x", &user);
        assert_eq!(
            statements[0],
            "GRANT SELECT, INSERT, UPDATE ON `bl``x`.`tenants` TO 'ledger'@'10.0.%'"
        );
        let controller = grants(
            Service::Controller,
            "bl",
            &Service::Controller.default_user(),
        );
        assert!(controller.contains(
            &"GRANT SELECT ON `bl`.`ledger_job_feed` TO 'blindledger_controller'@'%'".to_owned()
        ));
        assert_eq!(
            Privilege::UpdateOf(&["a", "b"]).to_string(),
            "UPDATE (a, b)",
            "a column grant names its columns"
        );
    }

    #[test]
    fn users_parse_in_the_three_forms_and_refuse_injection() {
        let parse = |text: &str| text.parse::<DbUser>();
        assert_eq!(parse("'a'@'%'"), DbUser::new("a", "%"));
        assert_eq!(parse("a@localhost"), DbUser::new("a", "localhost"));
        assert_eq!(parse("a"), DbUser::new("a", "%"));
        assert_eq!(parse("a").map(|u| u.to_string()), Ok("'a'@'%'".to_owned()));
        for bad in [
            "",
            "'a'@",
            "'a'@'%",
            "a'@'%'; DROP DATABASE x; --",
            "'a'@'%' IDENTIFIED BY 'x'",
            "a\\@%",
            "@%",
            &"x".repeat(81),
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.to_string().contains("expected 'name'@'host'"), "{err}");
        }
    }
}
