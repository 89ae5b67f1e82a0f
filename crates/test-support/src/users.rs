//! Throwaway MariaDB users: one per service and test, with a random password.

use anyhow::Context as _;
use sqlx::{Connection as _, MySqlConnection};

use crate::db::{execute, execute_detached, UrlParts};
use crate::TestDatabase;

/// Longest role [`TestDatabase::create_user`] accepts, so names stay within MySQL's 32.
const MAX_ROLE_CHARS: usize = 16;

/// A MariaDB user `'bl_<role>_<random>'@'%'` with a random password, on the server of a
/// [`TestDatabase`]. It has no privilege until [`TestUser::grant`] gives it some; its
/// [`TestUser::url`] connects to that database.
///
/// Dropping the value drops the user (best effort, never panics), and
/// [`TestUser::drop_user`] does it explicitly, reporting errors. Dropping a database leaves
/// the grants on its tables in place: only dropping the user removes them.
#[derive(Debug)]
pub struct TestUser {
    name: String,
    url: String,
    /// The administrator's server URL; `None` once dropped.
    server_url: Option<String>,
}

impl TestDatabase {
    /// Creates a user for `role` (1 to 16 lowercase letters or `_`) with a random password.
    /// MariaDB only.
    pub async fn create_user(&self, role: &str) -> anyhow::Result<TestUser> {
        anyhow::ensure!(
            (1..=MAX_ROLE_CHARS).contains(&role.len())
                && role.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "a test user's role is 1 to {MAX_ROLE_CHARS} lowercase letters or '_', got {role:?}"
        );
        let server_url = self
            .server_url()
            .context("database users exist on MariaDB only")?
            .to_owned();
        let name = format!(
            "bl_{role}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let password = uuid::Uuid::new_v4().simple().to_string();
        let create = format!("CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'");
        execute(&server_url, &create)
            .await
            .with_context(|| format!("creating user {name}"))?;
        Ok(TestUser {
            url: UrlParts::parse(self.url())?.with_credentials(&name, &password),
            name,
            server_url: Some(server_url),
        })
    }
}

impl TestUser {
    /// The user name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host it may connect from: any (`%`).
    pub fn host(&self) -> &str {
        "%"
    }

    /// The database's URL with this user's credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `statements` (`GRANT`s naming this user) as the server's administrator.
    pub async fn grant(&self, statements: &[String]) -> anyhow::Result<()> {
        let server_url = self.server_url.as_deref().context("user already dropped")?;
        let mut conn = MySqlConnection::connect(server_url)
            .await
            .context("connecting to MariaDB to grant privileges")?;
        for statement in statements {
            sqlx::raw_sql(statement)
                .execute(&mut conn)
                .await
                .with_context(|| format!("granting {} privileges: {statement}", self.name))?;
        }
        let _ = conn.close().await;
        Ok(())
    }

    /// Drops the user now, with its privileges, reporting failure.
    pub async fn drop_user(mut self) -> anyhow::Result<()> {
        match self.server_url.take() {
            Some(server_url) => execute(&server_url, &drop_statement(&self.name))
                .await
                .with_context(|| format!("dropping user {}", self.name)),
            None => Ok(()),
        }
    }
}

fn drop_statement(name: &str) -> String {
    format!("DROP USER IF EXISTS '{name}'@'%'")
}

impl Drop for TestUser {
    fn drop(&mut self) {
        if let Some(server_url) = self.server_url.take() {
            let what = format!("dropping user {}", self.name);
            execute_detached(server_url, drop_statement(&self.name), what);
        }
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;
    use sqlx::Row as _;

    use super::*;

    async fn user_exists(server_url: &str, name: &str) -> anyhow::Result<bool> {
        let mut conn = MySqlConnection::connect(server_url).await?;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM mysql.user WHERE user = ?")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        Ok(row.try_get::<i64, _>("n")? == 1)
    }

    /// Needs MariaDB (`scripts/test.sh` provides one); fails loudly without.
    #[tokio::test]
    async fn a_user_connects_with_only_its_grants_and_is_dropped() -> anyhow::Result<()> {
        let db = TestDatabase::mysql().await?;
        let name = db.database_name().context("a name")?.to_owned();
        let server = db.server_url().context("a server")?.to_owned();
        for table in ["t", "u"] {
            execute(&server, &format!("CREATE TABLE `{name}`.{table} (x INT)")).await?;
        }
        let user = db.create_user("reader").await?;
        assert!(TestDatabase::sqlite()?.create_user("reader").await.is_err());
        assert!(db.create_user("Bad-Role").await.is_err());

        // Without a grant, the database is out of reach; with one, that table only.
        assert!(MySqlConnection::connect(user.url()).await.is_err());
        user.grant(&[format!(
            "GRANT SELECT ON `{name}`.t TO '{}'@'%'",
            user.name()
        )])
        .await?;
        let mut conn = MySqlConnection::connect(user.url()).await?;
        sqlx::query("SELECT x FROM t").fetch_all(&mut conn).await?;
        let denied = sqlx::query("SELECT x FROM u").fetch_all(&mut conn).await;
        assert!(denied.is_err(), "no grant on u: {denied:?}");
        conn.close().await?;

        let user_name = user.name().to_owned();
        assert!(user_exists(&server, &user_name).await?);
        user.drop_user().await?;
        assert!(!user_exists(&server, &user_name).await?);

        let dropped_by_drop = db.create_user("reader").await?;
        let dropped_name = dropped_by_drop.name().to_owned();
        drop(dropped_by_drop);
        assert!(!user_exists(&server, &dropped_name).await?);
        db.drop_db().await
    }
}
