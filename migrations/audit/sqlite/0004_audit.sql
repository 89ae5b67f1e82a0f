-- Audit trail (SQLite). Times are Unix milliseconds. See migrations/mysql/0004_audit.sql
-- for what each table is for.

-- `seq` is assigned by the writer (head size + 1). method/outcome/revision are derived
-- from the hashed summary, only to index the dashboard's filters.
CREATE TABLE audit_events (
    seq         INTEGER NOT NULL PRIMARY KEY,
    kind        TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL,
    principal   TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL,
    method      TEXT    GENERATED ALWAYS AS (json_extract(summary, '$.method')) VIRTUAL,
    outcome     TEXT    GENERATED ALWAYS AS (json_extract(summary, '$.outcome')) VIRTUAL,
    revision    TEXT    GENERATED ALWAYS AS (json_extract(summary, '$.revision')) VIRTUAL
);
CREATE INDEX audit_events_kind_time ON audit_events (kind, occurred_at);
CREATE INDEX audit_events_time ON audit_events (occurred_at);
CREATE INDEX audit_events_principal ON audit_events (principal, occurred_at);
CREATE INDEX audit_events_subject ON audit_events (subject, occurred_at);
CREATE INDEX audit_events_method ON audit_events (method, occurred_at);
CREATE INDEX audit_events_outcome ON audit_events (outcome, occurred_at);
CREATE INDEX audit_events_outcome_method ON audit_events (outcome, method, occurred_at);
CREATE INDEX audit_events_revision ON audit_events (revision, occurred_at);

CREATE TABLE audit_head (
    id         INTEGER NOT NULL PRIMARY KEY,
    size       INTEGER NOT NULL,
    hash       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO audit_head (id, size, hash, updated_at)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

CREATE TABLE audit_checkpoints (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    size       INTEGER NOT NULL,
    head_hash  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    key_id     TEXT    NOT NULL,
    signature  TEXT    NOT NULL
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (size);

CREATE TABLE audit_cursors (
    name       TEXT    NOT NULL PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE audit_job_states (
    job_id     TEXT    NOT NULL PRIMARY KEY,
    state      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX audit_job_states_time ON audit_job_states (updated_at);

CREATE TABLE admin_nonces (
    nonce     TEXT    NOT NULL PRIMARY KEY,
    officer   TEXT    NOT NULL,
    issued_at INTEGER NOT NULL,
    seen_at   INTEGER NOT NULL
);

CREATE TABLE frozen_accounts (
    tenant    TEXT    NOT NULL,
    account   TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    since     INTEGER NOT NULL,
    officer   TEXT    NOT NULL,
    audit_seq INTEGER NOT NULL,
    PRIMARY KEY (tenant, account)
);

CREATE TABLE revoked_tenant_keys (
    tenant     TEXT    NOT NULL,
    key_id     TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    revoked_at INTEGER NOT NULL,
    officer    TEXT    NOT NULL,
    audit_seq  INTEGER NOT NULL,
    PRIMARY KEY (tenant, key_id)
);

CREATE TABLE admin_actions (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    command     TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    officer     TEXT    NOT NULL,
    accepted_at INTEGER NOT NULL,
    audit_seq   INTEGER NOT NULL,
    applied_at  INTEGER
);
CREATE INDEX admin_actions_pending ON admin_actions (applied_at, id);

CREATE INDEX jobs_updated_at ON jobs (updated_at);
