//! Revision floors: the highest counter of a monotonic bundle each service has activated
//! (`gate_revision_floors`), so an instance that restarts does not go back to an older,
//! validly signed revision.

use sqlx::Row;

use crate::{now_ms, Backend, Db, StoreError};

impl Db {
    /// The highest counter of `bundle` that `service` has activated, if any.
    pub async fn revision_floor(
        &self,
        service: &str,
        bundle: &str,
    ) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query(
            "SELECT counter FROM gate_revision_floors WHERE service = ? AND bundle = ?",
        )
        .bind(service)
        .bind(bundle)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let counter: i64 = row.try_get(0)?;
        Ok(Some(u64::try_from(counter).unwrap_or(0)))
    }

    /// Raises the floor of `bundle` for `service` to `counter`; never lowers it (two
    /// instances activating different revisions leave the higher one).
    pub async fn raise_revision_floor(
        &self,
        service: &str,
        bundle: &str,
        counter: u64,
    ) -> Result<(), StoreError> {
        let counter = i64::try_from(counter).unwrap_or(i64::MAX);
        let now = now_ms();
        // Create the row if there is none, then raise it if it is lower: both steps are
        // idempotent, so racing instances end at the highest counter either offered.
        let insert = match self.backend() {
            Backend::MySql => {
                "INSERT IGNORE INTO gate_revision_floors \
                               (service, bundle, counter, updated_at) VALUES (?, ?, ?, ?)"
            }
            Backend::Sqlite => {
                "INSERT OR IGNORE INTO gate_revision_floors \
                                (service, bundle, counter, updated_at) VALUES (?, ?, ?, ?)"
            }
        };
        sqlx::query(insert)
            .bind(service)
            .bind(bundle)
            .bind(counter)
            .bind(now)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "UPDATE gate_revision_floors SET counter = ?, updated_at = ? \
             WHERE service = ? AND bundle = ? AND counter < ?",
        )
        .bind(counter)
        .bind(now)
        .bind(service)
        .bind(bundle)
        .bind(counter)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
