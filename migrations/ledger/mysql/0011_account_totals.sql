-- Running totals of each account's transfers through day boundaries (UTC midnights), so
-- that an aggregate reads two totals per figure instead of every transfer in its period.
-- A row holds the encrypted sum of the amounts moved out (series 'out') or in ('in'), or
-- the count of amounts moved out above a threshold ('above:<threshold>'), of every
-- transfer committed before `through_ms`. Rows are derived from the jobs table: they
-- are written once and never changed, and can be deleted and rebuilt.
CREATE TABLE account_totals (
    tenant     VARCHAR(63) NOT NULL,
    account    VARCHAR(63) NOT NULL,
    series     VARCHAR(40) NOT NULL,
    through_ms BIGINT NOT NULL,
    total      MEDIUMBLOB NOT NULL,
    transfers  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, account, series, through_ms)
) ENGINE = InnoDB;

-- The background fold looks for transfers committed in the last settled days.
CREATE INDEX jobs_committed_at ON jobs (committed_at);
