-- Ledger schema (SQLite). Integers are BIGINT-compatible i64; times are Unix milliseconds.
CREATE TABLE tenants (
    name            TEXT    NOT NULL PRIMARY KEY,
    region          TEXT    NOT NULL,
    width_bits      INTEGER NOT NULL,
    public_key      BLOB    NOT NULL,
    key_id          TEXT    NOT NULL,
    server_key_path TEXT    NOT NULL,
    server_key_size INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE accounts (
    tenant         TEXT    NOT NULL REFERENCES tenants(name),
    name           TEXT    NOT NULL,
    balance        BLOB,
    version        INTEGER NOT NULL DEFAULT 0,
    max_amount     INTEGER,
    window_limit   INTEGER,
    window_seconds INTEGER NOT NULL DEFAULT 86400,
    window_start   INTEGER,
    window_spent   BLOB,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    tenant           TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    account_a        TEXT    NOT NULL,
    account_b        TEXT,
    idempotency_key  TEXT    NOT NULL,
    request_hash     TEXT    NOT NULL,
    payload          BLOB,
    params           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    failure_reason   TEXT,
    lease_owner      TEXT,
    lease_until      INTEGER,
    result_moved     BLOB,
    result_ok        BLOB,
    result_sum_out   BLOB,
    result_sum_in    BLOB,
    result_count     BLOB,
    result_transfers INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    committed_at     INTEGER,
    UNIQUE (tenant, idempotency_key)
);
CREATE INDEX jobs_state_seq ON jobs (state, seq);
CREATE INDEX jobs_account_a ON jobs (tenant, account_a, committed_at);
CREATE INDEX jobs_account_b ON jobs (tenant, account_b, committed_at);
