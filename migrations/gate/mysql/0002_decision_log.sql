-- Policy decision log (OPA's decision-log event, masked), written before a decision takes
-- effect: no decision without a record. The audit trail builds its hash chain over it.
CREATE TABLE decision_log (
    seq         BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    decision_id CHAR(36)      NOT NULL,
    logged_at   BIGINT        NOT NULL,
    principal   VARCHAR(255)  NOT NULL,
    method      VARCHAR(255)  NOT NULL,
    allowed     BIGINT        NOT NULL,
    revisions   VARCHAR(1024) NOT NULL,
    event       MEDIUMBLOB    NOT NULL,
    UNIQUE KEY decision_log_id (decision_id),
    KEY decision_log_time (logged_at)
) ENGINE = InnoDB;
