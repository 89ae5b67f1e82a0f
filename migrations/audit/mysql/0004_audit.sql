-- Audit trail (MariaDB 10.11+, Galera-safe: every table has a primary key, InnoDB only).
-- Times are Unix milliseconds. Strings are VARCHAR, never TEXT (sqlx's Any driver reads
-- MySQL TEXT as BLOB). Hashed text columns are utf8mb4_bin so the bytes read back are the
-- bytes hashed.

-- The hash chain. `seq` is assigned by the writer (head size + 1), never AUTO_INCREMENT:
-- Galera's auto-increment offsets would leave gaps that look like deleted rows.
-- method/outcome/revision are derived from the hashed summary, only to index the filters
-- of the dashboard; they cannot be changed without changing the summary.
CREATE TABLE audit_events (
    seq         BIGINT        NOT NULL PRIMARY KEY,
    kind        VARCHAR(32)   CHARACTER SET ascii NOT NULL,
    occurred_at BIGINT        NOT NULL,
    principal   VARCHAR(255)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    subject     VARCHAR(255)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    summary     VARCHAR(4096) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    prev_hash   CHAR(64)      CHARACTER SET ascii NOT NULL,
    hash        CHAR(64)      CHARACTER SET ascii NOT NULL,
    method      VARCHAR(255)  AS (JSON_VALUE(summary, '$.method')) VIRTUAL,
    outcome     VARCHAR(16)   AS (JSON_VALUE(summary, '$.outcome')) VIRTUAL,
    revision    VARCHAR(255)  AS (JSON_VALUE(summary, '$.revision')) VIRTUAL,
    KEY audit_events_kind_time (kind, occurred_at),
    KEY audit_events_time (occurred_at),
    KEY audit_events_principal (principal, occurred_at),
    KEY audit_events_subject (subject, occurred_at),
    KEY audit_events_method (method, occurred_at),
    KEY audit_events_outcome (outcome, occurred_at),
    KEY audit_events_outcome_method (outcome, method, occurred_at),
    KEY audit_events_revision (revision, occurred_at)
) ENGINE = InnoDB;

-- The single head row: locked FOR UPDATE by every append, so appends are serialised.
CREATE TABLE audit_head (
    id         BIGINT   NOT NULL PRIMARY KEY,
    size       BIGINT   NOT NULL,
    hash       CHAR(64) CHARACTER SET ascii NOT NULL,
    updated_at BIGINT   NOT NULL
) ENGINE = InnoDB;
INSERT INTO audit_head (id, size, hash, updated_at)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

-- Ed25519-signed checkpoints of the chain: its size and head hash at a time.
CREATE TABLE audit_checkpoints (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    size       BIGINT       NOT NULL,
    head_hash  CHAR(64)     CHARACTER SET ascii NOT NULL,
    created_at BIGINT       NOT NULL,
    key_id     VARCHAR(128) NOT NULL,
    signature  VARCHAR(128) CHARACTER SET ascii NOT NULL,
    KEY audit_checkpoints_size (size)
) ENGINE = InnoDB;

-- Importer positions (last imported decision_log seq, controller activation seq, ...).
CREATE TABLE audit_cursors (
    name       VARCHAR(64) NOT NULL PRIMARY KEY,
    position   BIGINT      NOT NULL,
    updated_at BIGINT      NOT NULL
) ENGINE = InnoDB;

-- The last job state the importer recorded, per job: a transition is imported once.
CREATE TABLE audit_job_states (
    job_id     CHAR(36)    NOT NULL PRIMARY KEY,
    state      VARCHAR(16) NOT NULL,
    updated_at BIGINT      NOT NULL,
    KEY audit_job_states_time (updated_at)
) ENGINE = InnoDB;

-- Nonces of signed admin commands, accepted or not: a nonce is used once.
CREATE TABLE admin_nonces (
    nonce     VARCHAR(128) NOT NULL PRIMARY KEY,
    officer   VARCHAR(128) NOT NULL,
    issued_at BIGINT       NOT NULL,
    seen_at   BIGINT       NOT NULL
) ENGINE = InnoDB;

-- Accounts frozen by an officer; the policy denies them (see the frozen-accounts data).
CREATE TABLE frozen_accounts (
    tenant    VARCHAR(63)   NOT NULL,
    account   VARCHAR(63)   NOT NULL,
    reason    VARCHAR(1024) NOT NULL,
    since     BIGINT        NOT NULL,
    officer   VARCHAR(128)  NOT NULL,
    audit_seq BIGINT        NOT NULL,
    PRIMARY KEY (tenant, account)
) ENGINE = InnoDB;

-- Tenant keys revoked by an officer.
CREATE TABLE revoked_tenant_keys (
    tenant     VARCHAR(63)   NOT NULL,
    key_id     VARCHAR(128)  NOT NULL,
    reason     VARCHAR(1024) NOT NULL,
    revoked_at BIGINT        NOT NULL,
    officer    VARCHAR(128)  NOT NULL,
    audit_seq  BIGINT        NOT NULL,
    PRIMARY KEY (tenant, key_id)
) ENGINE = InnoDB;

-- Accepted commands other services carry out (a bundle rollback by the controller):
-- they set applied_at once done.
CREATE TABLE admin_actions (
    id          BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    command     VARCHAR(32)   NOT NULL,
    target      VARCHAR(255)  NOT NULL,
    reason      VARCHAR(1024) NOT NULL,
    officer     VARCHAR(128)  NOT NULL,
    accepted_at BIGINT        NOT NULL,
    audit_seq   BIGINT        NOT NULL,
    applied_at  BIGINT,
    KEY admin_actions_pending (applied_at, id)
) ENGINE = InnoDB;

-- The importer reads job state changes by update time.
CREATE INDEX jobs_updated_at ON jobs (updated_at);
