//! The schema, one migration set per owner: `migrations/<owner>/{mysql,sqlite}`.
//!
//! Each set creates and changes only its owner's tables (the policy gate's, the ledger's,
//! the audit service's, the controller's) and publishes what other services may read as
//! views (`*_feed`). All sets share sqlx's history table (`_sqlx_migrations`), so a version
//! number belongs to one set only (the tests check it) and each set ignores the versions of
//! the others.
//!
//! Versions 1 to 12 were one history before the sets were split; their files were moved
//! byte for byte, so a database migrated before the split has nothing to do after it (sqlx
//! checks each applied migration's checksum). Two of them still create an index on the
//! ledger's `jobs` for a reader (`0003_controller`, `0004_audit`), which is why the
//! ledger's set runs before theirs.

use std::fmt;
use std::sync::LazyLock;

use sqlx::migrate::{MigrateError, Migrator};

use crate::db::{Backend, Db};
use crate::error::{is_access_denied, StoreError};

/// The owner of a migration set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MigrationSet {
    /// The policy gate every service embeds: `decision_log`, `gate_revision_floors`.
    Gate,
    /// The ledger: tenants, accounts, jobs, running totals.
    Ledger,
    /// The audit service: the hash chain, its cursors and the officers' orders.
    Audit,
    /// The controller: models, risk, bundles, pushes, alerts.
    Controller,
}

impl MigrationSet {
    /// Every set, in the order they are applied: a set whose historical migrations touch
    /// another set's table comes after it, and the controller's backfill of the orders it
    /// carried out reads the audit service's `admin_actions`.
    pub const ALL: [MigrationSet; 4] = [
        MigrationSet::Gate,
        MigrationSet::Ledger,
        MigrationSet::Audit,
        MigrationSet::Controller,
    ];

    /// Its directory under `migrations/`.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationSet::Gate => "gate",
            MigrationSet::Ledger => "ledger",
            MigrationSet::Audit => "audit",
            MigrationSet::Controller => "controller",
        }
    }

    /// Its migrations for `backend`, embedded at compile time.
    pub fn migrator(self, backend: Backend) -> &'static Migrator {
        match (self, backend) {
            (MigrationSet::Gate, Backend::MySql) => &GATE_MYSQL,
            (MigrationSet::Gate, Backend::Sqlite) => &GATE_SQLITE,
            (MigrationSet::Ledger, Backend::MySql) => &LEDGER_MYSQL,
            (MigrationSet::Ledger, Backend::Sqlite) => &LEDGER_SQLITE,
            (MigrationSet::Audit, Backend::MySql) => &AUDIT_MYSQL,
            (MigrationSet::Audit, Backend::Sqlite) => &AUDIT_SQLITE,
            (MigrationSet::Controller, Backend::MySql) => &CONTROLLER_MYSQL,
            (MigrationSet::Controller, Backend::Sqlite) => &CONTROLLER_SQLITE,
        }
    }
}

impl fmt::Display for MigrationSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set's migrator: it leaves the versions of the other sets in the shared history alone.
fn one_set(mut migrator: Migrator) -> Migrator {
    migrator.set_ignore_missing(true);
    migrator
}

static GATE_MYSQL: LazyLock<Migrator> =
    LazyLock::new(|| one_set(sqlx::migrate!("../../migrations/gate/mysql")));
static GATE_SQLITE: LazyLock<Migrator> =
    LazyLock::new(|| one_set(sqlx::migrate!("../../migrations/gate/sqlite")));
static LEDGER_MYSQL: LazyLock<Migrator> =
    LazyLock::new(|| one_set(sqlx::migrate!("../../migrations/ledger/mysql")));
static LEDGER_SQLITE: LazyLock<Migrator> =
    LazyLock::new(|| one_set(sqlx::migrate!("../../migrations/ledger/sqlite")));
static AUDIT_MYSQL: LazyLock<Migrator> =
    LazyLock::new(|| one_set(sqlx::migrate!("../../migrations/audit/mysql")));
static AUDIT_SQLITE: LazyLock<Migrator> =
    LazyLock::new(|| one_set(sqlx::migrate!("../../migrations/audit/sqlite")));
static CONTROLLER_MYSQL: LazyLock<Migrator> =
    LazyLock::new(|| one_set(sqlx::migrate!("../../migrations/controller/mysql")));
static CONTROLLER_SQLITE: LazyLock<Migrator> =
    LazyLock::new(|| one_set(sqlx::migrate!("../../migrations/controller/sqlite")));

impl Db {
    /// Applies every migration set ([`MigrationSet::ALL`], in that order) on the current
    /// node only: sqlx's migration lock (`GET_LOCK`) is local to one Galera node, so run
    /// them from one process, as an account that may change the schema:
    /// [`StoreError::MigrationDenied`] otherwise.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        for set in MigrationSet::ALL {
            self.migrate_set(set).await?;
        }
        Ok(())
    }

    /// Applies one migration set, as [`Db::migrate`] does.
    pub async fn migrate_set(&self, set: MigrationSet) -> Result<(), StoreError> {
        set.migrator(self.backend())
            .run(self.pool())
            .await
            .map_err(|err| match err {
                MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _)
                    if is_access_denied(&e) =>
                {
                    StoreError::MigrationDenied(e)
                }
                MigrateError::Execute(e) => StoreError::from(e),
                other => StoreError::Other(sqlx::Error::Migrate(Box::new(other))),
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const BACKENDS: [Backend; 2] = [Backend::MySql, Backend::Sqlite];

    /// SHA-384 of each migration of the single history that came before the sets, as
    /// applied to existing databases: (version, MySQL, SQLite), leading 16 hex digits.
    const BEFORE_THE_SPLIT: [(i64, &str, &str); 12] = [
        (1, "5a19f0dc2f1554f3", "95b8f3df31cf55f1"),
        (2, "cced6fe054528b02", "436bfbc8f2cd2965"),
        (3, "e802c1de825ebe25", "8c288204b068c04f"),
        (4, "22b1ffa63b09a47f", "eeaa95d6013e0f6c"),
        (5, "8ce6d543b9232045", "43b87a4efc506adf"),
        (6, "dc7b5803b78eca54", "dc7b5803b78eca54"),
        (7, "c3825cbe17dba57f", "c3825cbe17dba57f"),
        (8, "fa0bd339e9b2ab56", "dc3a6517b097afdf"),
        (9, "29a3710f49cd9877", "29a3710f49cd9877"),
        (10, "fa0f4cee90f74dab", "3b5d67fa83cd721b"),
        (11, "44a723244781738d", "0eaae812c8334263"),
        (12, "35d156987fbb01d9", "cc3a24b5ca8330cd"),
    ];

    fn hex16(bytes: &[u8]) -> String {
        bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// Every migration of `backend`: version → (set, description).
    fn by_version(backend: Backend) -> BTreeMap<i64, Vec<(MigrationSet, String)>> {
        let mut versions: BTreeMap<i64, Vec<(MigrationSet, String)>> = BTreeMap::new();
        for set in MigrationSet::ALL {
            for migration in set.migrator(backend).iter() {
                versions
                    .entry(migration.version)
                    .or_default()
                    .push((set, migration.description.to_string()));
            }
        }
        versions
    }

    #[test]
    fn a_version_belongs_to_one_set_on_both_engines() {
        for backend in BACKENDS {
            for (version, owners) in by_version(backend) {
                assert_eq!(
                    owners.len(),
                    1,
                    "{backend:?}: version {version} is in several sets: {owners:?}"
                );
            }
        }
        let mysql: Vec<_> = by_version(Backend::MySql).into_iter().collect();
        let sqlite: Vec<_> = by_version(Backend::Sqlite).into_iter().collect();
        assert_eq!(
            mysql, sqlite,
            "each MySQL migration has its SQLite twin in the same set"
        );
    }

    #[test]
    fn the_migrations_from_before_the_split_were_moved_byte_for_byte() {
        for (version, mysql, sqlite) in BEFORE_THE_SPLIT {
            for (backend, expected) in [(Backend::MySql, mysql), (Backend::Sqlite, sqlite)] {
                let found: Vec<String> = MigrationSet::ALL
                    .iter()
                    .flat_map(|set| set.migrator(backend).iter())
                    .filter(|m| m.version == version)
                    .map(|m| hex16(&m.checksum))
                    .collect();
                assert_eq!(
                    found,
                    vec![expected.to_owned()],
                    "{backend:?} migration {version} changed: databases that applied it \
                     would refuse to start; add a new migration instead"
                );
            }
        }
    }

    /// The table a statement creates, changes, indexes or fills, if any.
    fn target(statement: &str) -> Option<(&'static str, String)> {
        let words: Vec<String> = statement
            .split_whitespace()
            .map(|w| {
                w.trim_matches(|c| c == '(' || c == ';')
                    .to_ascii_lowercase()
            })
            .collect();
        let after = |i: usize| words.get(i).cloned();
        match words.as_slice() {
            [create, table, ..] if create == "create" && (table == "table" || table == "view") => {
                after(2).map(|t| ("creates", t))
            }
            [alter, table, ..] if alter == "alter" && table == "table" => {
                after(2).map(|t| ("alters", t))
            }
            [create, ..] if create == "create" => {
                let on = words.iter().position(|w| w == "on")?;
                after(on + 1).map(|t| ("indexes", t))
            }
            [insert, into, ..] if insert == "insert" && into == "into" => {
                after(2).map(|t| ("fills", t))
            }
            [update, ..] if update == "update" => after(1).map(|t| ("updates", t)),
            [drop, _, ..] if drop == "drop" => words.last().cloned().map(|t| ("drops", t)),
            [delete, from, ..] if delete == "delete" && from == "from" => {
                after(2).map(|t| ("empties", t))
            }
            _ => None,
        }
    }

    /// The statements of a migration, comments removed.
    fn statements(sql: &str) -> Vec<String> {
        let without_comments: Vec<&str> = sql
            .lines()
            .map(|line| line.split("--").next().unwrap_or_default())
            .collect();
        without_comments
            .join("\n")
            .split(';')
            .map(str::to_owned)
            .collect()
    }

    /// The tables a view reads.
    fn view_sources(statement: &str) -> Vec<String> {
        let words: Vec<String> = statement
            .split_whitespace()
            .map(|w| w.trim_end_matches(';').to_ascii_lowercase())
            .collect();
        words
            .windows(2)
            .filter(|pair| pair[0] == "from" || pair[0] == "join")
            .map(|pair| pair[1].clone())
            .collect()
    }

    #[test]
    fn each_set_changes_only_its_own_tables() {
        // The two historical exceptions (see the module's documentation).
        let historical = [(3, "jobs"), (4, "jobs")];
        for backend in BACKENDS {
            let mut owner: BTreeMap<String, MigrationSet> = BTreeMap::new();
            let mut changes = Vec::new();
            for set in MigrationSet::ALL {
                for migration in set.migrator(backend).iter() {
                    for statement in statements(&migration.sql) {
                        if let Some((verb, table)) = target(&statement) {
                            if verb == "creates" {
                                let previous = owner.insert(table.clone(), set);
                                assert!(
                                    previous.is_none(),
                                    "{backend:?}: {table} is created twice"
                                );
                            }
                            if statement.to_ascii_lowercase().contains(" view ") {
                                for source in view_sources(&statement) {
                                    changes.push((set, migration.version, "publishes", source));
                                }
                            }
                            changes.push((set, migration.version, verb, table));
                        }
                    }
                }
            }
            assert!(owner.len() > 30, "{backend:?}: the parser found the tables");
            for (set, version, verb, table) in changes {
                if historical.contains(&(version, table.as_str())) {
                    continue;
                }
                assert_eq!(
                    owner.get(&table),
                    Some(&set),
                    "{backend:?}: migration {version} of the {set} set {verb} {table}, which \
                     it does not own"
                );
            }
        }
    }

    #[test]
    fn feeds_are_named_after_their_owner() {
        for backend in BACKENDS {
            for set in MigrationSet::ALL {
                for migration in set.migrator(backend).iter() {
                    for statement in statements(&migration.sql) {
                        if let Some(("creates", name)) = target(&statement) {
                            if name.ends_with("_feed") {
                                assert!(
                                    name.starts_with(&format!("{set}_")),
                                    "{backend:?}: the {set} set publishes {name}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
