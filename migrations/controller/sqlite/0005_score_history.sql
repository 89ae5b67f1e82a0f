-- Risk score history (SQLite), for the dashboard's charts, and the index its risk page
-- reads tiers by. Times are Unix milliseconds.
--
-- One row per cycle for each scored entity whose tier after the cycle is above 'low', or
-- whose tier changed in the cycle: ordinary entities are not recorded every cycle. The
-- controller deletes rows older than 30 days in the same transaction. `seq` orders rows
-- written in the same millisecond.
CREATE TABLE controller_score_history (
    seq            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind           TEXT    NOT NULL,
    entity         TEXT    NOT NULL,
    score          REAL    NOT NULL,
    tier           TEXT    NOT NULL,
    model_version  INTEGER NOT NULL,
    scored_at      INTEGER NOT NULL
);
CREATE INDEX controller_score_history_entity ON controller_score_history (kind, entity, scored_at);
CREATE INDEX controller_score_history_time ON controller_score_history (scored_at);

-- The dashboard lists the entities above 'low', newest escalations first.
CREATE INDEX controller_entity_risk_tier ON controller_entity_risk (tier, tier_since);
