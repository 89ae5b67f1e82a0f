-- Policy decision log (OPA's decision-log event, masked), written before a decision takes
-- effect: no decision without a record. The audit trail builds its hash chain over it.
CREATE TABLE decision_log (
    seq         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    decision_id TEXT    NOT NULL UNIQUE,
    logged_at   INTEGER NOT NULL,
    principal   TEXT    NOT NULL,
    method      TEXT    NOT NULL,
    allowed     INTEGER NOT NULL,
    revisions   TEXT    NOT NULL,
    event       BLOB    NOT NULL
);
CREATE INDEX decision_log_time ON decision_log (logged_at);
