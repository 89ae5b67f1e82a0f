-- What the ledger publishes to the other services, as read-only views: the controller and
-- the audit service are granted SELECT on these and on no ledger table. A view is the
-- contract: the ledger may change its tables as long as the views keep their columns.
-- Nothing here holds key material or a ciphertext: a job's payload and results appear
-- only as their sizes in bytes, and a tenant without its public key.

-- Job metadata, by `seq` (insertion order), `created_at` or `updated_at` (every state
-- change moves it); each has an index on `jobs`.
CREATE VIEW ledger_job_feed AS
SELECT seq, id, tenant, kind, state, account_a, account_b, attempts, failure_reason,
       created_at, updated_at, committed_at,
       COALESCE(LENGTH(payload), 0) AS payload_bytes,
       COALESCE(LENGTH(result_moved), 0) + COALESCE(LENGTH(result_ok), 0)
         + COALESCE(LENGTH(result_sum_out), 0) + COALESCE(LENGTH(result_sum_in), 0)
         + COALESCE(LENGTH(result_count), 0) AS result_bytes
FROM jobs;

-- Registered tenants and when their keys last changed.
CREATE VIEW ledger_tenant_feed AS
SELECT name, region, width_bits, key_id, created_at, updated_at
FROM tenants;
