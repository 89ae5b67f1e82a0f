-- Controller schema: the model registry, risk tiers and their history, served bundles and
-- their activations, policy-push reports, and the alert outbox. Times are Unix milliseconds.

-- One row per trained isolation forest and entity kind ('account', 'principal').
CREATE TABLE controller_models (
    version        BIGINT       NOT NULL,
    kind           VARCHAR(16)  NOT NULL,
    trained_at     BIGINT       NOT NULL,
    window_start   BIGINT       NOT NULL,
    window_end     BIGINT       NOT NULL,
    feature_schema TEXT         NOT NULL,
    params         TEXT         NOT NULL,
    n_samples      BIGINT       NOT NULL,
    training_ms    BIGINT       NOT NULL,
    model          MEDIUMBLOB,
    PRIMARY KEY (version, kind)
) ENGINE = InnoDB;

-- The current tier (with hysteresis) and latest score of every scored entity.
CREATE TABLE controller_entity_risk (
    kind           VARCHAR(16)  NOT NULL,
    entity         VARCHAR(255) NOT NULL,
    tier           VARCHAR(16)  NOT NULL,
    score          DOUBLE       NOT NULL,
    model_version  BIGINT       NOT NULL,
    features       TEXT         NOT NULL,
    top_features   TEXT         NOT NULL,
    tier_since     BIGINT       NOT NULL,
    updated_at     BIGINT       NOT NULL,
    PRIMARY KEY (kind, entity)
) ENGINE = InnoDB;

CREATE TABLE controller_tier_changes (
    seq            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind           VARCHAR(16)  NOT NULL,
    entity         VARCHAR(255) NOT NULL,
    from_tier      VARCHAR(16)  NOT NULL,
    to_tier        VARCHAR(16)  NOT NULL,
    score          DOUBLE       NOT NULL,
    model_version  BIGINT       NOT NULL,
    changed_at     BIGINT       NOT NULL,
    KEY controller_tier_changes_entity (kind, entity, seq)
) ENGINE = InnoDB;

-- Every bundle revision the controller has served, byte for byte (signatures included).
CREATE TABLE controller_bundles (
    seq            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name           VARCHAR(63)  NOT NULL,
    revision       VARCHAR(255) NOT NULL,
    sha256         CHAR(64)     NOT NULL,
    archive        MEDIUMBLOB   NOT NULL,
    origin         VARCHAR(16)  NOT NULL,
    created_by     VARCHAR(255) NOT NULL,
    created_at     BIGINT       NOT NULL,
    UNIQUE KEY controller_bundles_revision (name, revision)
) ENGINE = InnoDB;

-- Append-only: the active revision of a bundle is its latest activation.
CREATE TABLE controller_activations (
    seq            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name           VARCHAR(63)  NOT NULL,
    revision       VARCHAR(255) NOT NULL,
    action         VARCHAR(16)  NOT NULL,
    actor          VARCHAR(255) NOT NULL,
    activated_at   BIGINT       NOT NULL,
    KEY controller_activations_name (name, seq)
) ENGINE = InnoDB;

-- Every policy push, accepted or refused, with its test results and impact analysis.
CREATE TABLE controller_push_reports (
    seq            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    revision       VARCHAR(255) NOT NULL,
    pushed_by      VARCHAR(255) NOT NULL,
    pushed_at      BIGINT       NOT NULL,
    outcome        VARCHAR(16)  NOT NULL,
    reason         VARCHAR(64)  NOT NULL,
    report         MEDIUMTEXT   NOT NULL,
    KEY controller_push_reports_revision (revision)
) ENGINE = InnoDB;

-- Alert outbox: rows are delivered by a background task, retried with backoff.
CREATE TABLE controller_alerts (
    seq             BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    dedupe_key      VARCHAR(255)  NOT NULL,
    payload         TEXT          NOT NULL,
    created_at      BIGINT        NOT NULL,
    attempts        BIGINT        NOT NULL DEFAULT 0,
    next_attempt_at BIGINT        NOT NULL,
    delivered_at    BIGINT,
    last_error      VARCHAR(1024),
    KEY controller_alerts_dedupe (dedupe_key, created_at),
    KEY controller_alerts_due (delivered_at, next_attempt_at)
) ENGINE = InnoDB;

-- Feature extraction reads job metadata by creation time.
CREATE INDEX jobs_created_at ON jobs (created_at);
