-- What the controller publishes to the audit service, as read-only views over its own
-- tables (the audit service is granted SELECT on these and on no controller table), and
-- the controller's own record of the officers' orders it carried out, which it used to
-- write into the audit service's `admin_actions.applied_at`.

CREATE VIEW controller_activation_feed AS
SELECT seq, name, revision, action, actor, activated_at
FROM controller_activations;

CREATE VIEW controller_push_report_feed AS
SELECT seq, revision, pushed_by, pushed_at, outcome, reason, report
FROM controller_push_reports;

CREATE VIEW controller_risk_feed AS
SELECT kind, entity, tier, score, model_version, top_features, tier_since, updated_at
FROM controller_entity_risk;

CREATE VIEW controller_tier_change_feed AS
SELECT seq, kind, entity, from_tier, to_tier, score, model_version, changed_at
FROM controller_tier_changes;

CREATE VIEW controller_score_feed AS
SELECT seq, kind, entity, score, tier, model_version, scored_at
FROM controller_score_history;

CREATE TABLE controller_applied_actions (
    action_id  BIGINT NOT NULL PRIMARY KEY,
    applied_at BIGINT NOT NULL
) ENGINE = InnoDB;

-- Orders carried out before this migration (it runs as the administrator, after the audit
-- service's migrations).
INSERT INTO controller_applied_actions (action_id, applied_at)
SELECT id, applied_at FROM admin_actions WHERE applied_at IS NOT NULL;
