-- Controller schema (SQLite): the model registry, risk tiers and their history, served
-- bundles and their activations, policy-push reports, and the alert outbox. Times are Unix
-- milliseconds.

-- One row per trained isolation forest and entity kind ('account', 'principal').
CREATE TABLE controller_models (
    version        INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    trained_at     INTEGER NOT NULL,
    window_start   INTEGER NOT NULL,
    window_end     INTEGER NOT NULL,
    feature_schema TEXT    NOT NULL,
    params         TEXT    NOT NULL,
    n_samples      INTEGER NOT NULL,
    training_ms    INTEGER NOT NULL,
    model          BLOB,
    PRIMARY KEY (version, kind)
);

-- The current tier (with hysteresis) and latest score of every scored entity.
CREATE TABLE controller_entity_risk (
    kind           TEXT    NOT NULL,
    entity         TEXT    NOT NULL,
    tier           TEXT    NOT NULL,
    score          REAL    NOT NULL,
    model_version  INTEGER NOT NULL,
    features       TEXT    NOT NULL,
    top_features   TEXT    NOT NULL,
    tier_since     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (kind, entity)
);

CREATE TABLE controller_tier_changes (
    seq            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind           TEXT    NOT NULL,
    entity         TEXT    NOT NULL,
    from_tier      TEXT    NOT NULL,
    to_tier        TEXT    NOT NULL,
    score          REAL    NOT NULL,
    model_version  INTEGER NOT NULL,
    changed_at     INTEGER NOT NULL
);
CREATE INDEX controller_tier_changes_entity ON controller_tier_changes (kind, entity, seq);

-- Every bundle revision the controller has served, byte for byte (signatures included).
CREATE TABLE controller_bundles (
    seq            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name           TEXT    NOT NULL,
    revision       TEXT    NOT NULL,
    sha256         TEXT    NOT NULL,
    archive        BLOB    NOT NULL,
    origin         TEXT    NOT NULL,
    created_by     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (name, revision)
);

-- Append-only: the active revision of a bundle is its latest activation.
CREATE TABLE controller_activations (
    seq            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name           TEXT    NOT NULL,
    revision       TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    activated_at   INTEGER NOT NULL
);
CREATE INDEX controller_activations_name ON controller_activations (name, seq);

-- Every policy push, accepted or refused, with its test results and impact analysis.
CREATE TABLE controller_push_reports (
    seq            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    revision       TEXT    NOT NULL,
    pushed_by      TEXT    NOT NULL,
    pushed_at      INTEGER NOT NULL,
    outcome        TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    report         TEXT    NOT NULL
);
CREATE INDEX controller_push_reports_revision ON controller_push_reports (revision);

-- Alert outbox: rows are delivered by a background task, retried with backoff.
CREATE TABLE controller_alerts (
    seq             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    dedupe_key      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
);
CREATE INDEX controller_alerts_dedupe ON controller_alerts (dedupe_key, created_at);
CREATE INDEX controller_alerts_due ON controller_alerts (delivered_at, next_attempt_at);

-- Feature extraction reads job metadata by creation time.
CREATE INDEX jobs_created_at ON jobs (created_at);
