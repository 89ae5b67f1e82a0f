-- Idempotency keys are compared byte for byte, as on SQLite: under the database's default
-- case-insensitive collation, `Order-7f3A` and `order-7f3a` were one key, so a client's
-- second request under a key differing only in case was refused as a reused key (or, with
-- the same request hash, answered with the other job). Cannot fail on existing rows: the
-- case-insensitive unique index already kept keys differing only in case out.
ALTER TABLE jobs
    MODIFY idempotency_key VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
