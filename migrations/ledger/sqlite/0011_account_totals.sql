-- Running totals of each account's transfers through day boundaries (UTC midnights), so
-- that an aggregate reads two totals per figure instead of every transfer in its period.
-- A row holds the encrypted sum of the amounts moved out (series 'out') or in ('in'), or
-- the count of amounts moved out above a threshold ('above:<threshold>'), of every
-- transfer committed before `through_ms`. Rows are derived from the jobs table: they
-- are written once and never changed, and can be deleted and rebuilt.
CREATE TABLE account_totals (
    tenant     TEXT NOT NULL,
    account    TEXT NOT NULL,
    series     TEXT NOT NULL,
    through_ms INTEGER NOT NULL,
    total      BLOB NOT NULL,
    transfers  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, account, series, through_ms)
);

-- The background fold looks for transfers committed in the last settled days.
CREATE INDEX jobs_committed_at ON jobs (committed_at);
