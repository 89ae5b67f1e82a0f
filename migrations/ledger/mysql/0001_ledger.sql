-- Ledger schema (MariaDB 10.11+, Galera-safe: every table has a primary key, InnoDB only).
-- Integers are BIGINT; times are Unix milliseconds. Strings are VARCHAR, never TEXT: sqlx's
-- Any driver reports MySQL TEXT columns as BLOB and will not decode them as strings.
CREATE TABLE tenants (
    name            VARCHAR(63)  NOT NULL PRIMARY KEY,
    region          VARCHAR(63)  NOT NULL,
    width_bits      BIGINT       NOT NULL,
    public_key      MEDIUMBLOB   NOT NULL,
    key_id          CHAR(64)     NOT NULL,
    server_key_path VARCHAR(255) NOT NULL,
    server_key_size BIGINT       NOT NULL,
    created_at      BIGINT       NOT NULL,
    updated_at      BIGINT       NOT NULL
) ENGINE = InnoDB;

CREATE TABLE accounts (
    tenant         VARCHAR(63) NOT NULL,
    name           VARCHAR(63) NOT NULL,
    balance        MEDIUMBLOB,
    version        BIGINT      NOT NULL DEFAULT 0,
    max_amount     BIGINT,
    window_limit   BIGINT,
    window_seconds BIGINT      NOT NULL DEFAULT 86400,
    window_start   BIGINT,
    window_spent   MEDIUMBLOB,
    created_at     BIGINT      NOT NULL,
    updated_at     BIGINT      NOT NULL,
    PRIMARY KEY (tenant, name),
    CONSTRAINT accounts_tenant FOREIGN KEY (tenant) REFERENCES tenants (name)
) ENGINE = InnoDB;

CREATE TABLE jobs (
    seq              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    id               CHAR(36)     NOT NULL,
    tenant           VARCHAR(63)  NOT NULL,
    kind             VARCHAR(16)  NOT NULL,
    state            VARCHAR(16)  NOT NULL,
    account_a        VARCHAR(63)  NOT NULL,
    account_b        VARCHAR(63),
    idempotency_key  VARCHAR(128) NOT NULL,
    request_hash     CHAR(64)     NOT NULL,
    payload          MEDIUMBLOB,
    params           VARCHAR(2048) NOT NULL,
    attempts         BIGINT       NOT NULL DEFAULT 0,
    failure_reason   VARCHAR(1024),
    lease_owner      VARCHAR(64),
    lease_until      BIGINT,
    result_moved     MEDIUMBLOB,
    result_ok        MEDIUMBLOB,
    result_sum_out   MEDIUMBLOB,
    result_sum_in    MEDIUMBLOB,
    result_count     MEDIUMBLOB,
    result_transfers BIGINT,
    created_at       BIGINT       NOT NULL,
    updated_at       BIGINT       NOT NULL,
    committed_at     BIGINT,
    UNIQUE KEY jobs_id (id),
    UNIQUE KEY jobs_idempotency (tenant, idempotency_key),
    KEY jobs_state_seq (state, seq),
    KEY jobs_account_a (tenant, account_a, committed_at),
    KEY jobs_account_b (tenant, account_b, committed_at)
) ENGINE = InnoDB;
