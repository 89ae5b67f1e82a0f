-- Risk score history, for the dashboard's charts, and the index its risk page reads tiers
-- by. Times are Unix milliseconds.
--
-- One row per cycle for each scored entity whose tier after the cycle is above 'low', or
-- whose tier changed in the cycle: ordinary entities are not recorded every cycle. The
-- controller deletes rows older than 30 days in the same transaction. `seq` is the primary
-- key Galera needs; it also orders rows written in the same millisecond.
CREATE TABLE controller_score_history (
    seq            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind           VARCHAR(16)  NOT NULL,
    entity         VARCHAR(255) NOT NULL,
    score          DOUBLE       NOT NULL,
    tier           VARCHAR(16)  NOT NULL,
    model_version  BIGINT       NOT NULL,
    scored_at      BIGINT       NOT NULL,
    KEY controller_score_history_entity (kind, entity, scored_at),
    KEY controller_score_history_time (scored_at)
) ENGINE = InnoDB;

-- The dashboard lists the entities above 'low', newest escalations first.
CREATE INDEX controller_entity_risk_tier ON controller_entity_risk (tier, tier_since);
