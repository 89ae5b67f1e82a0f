-- Least-privilege MariaDB users of the BlindLedger services, table by table
-- (printed by `blindledger db grants`; the reasons are in crates/store/src/grants.rs).
-- Run as an administrator after `blindledger db migrate`, and again after a
-- migration adds a table. The users must exist (CREATE USER). Grants only add
-- privileges: REVOKE ALL PRIVILEGES, GRANT OPTION FROM a user to start over.

-- ledger: 'blindledger_ledger'@'%'
-- tenants: RegisterKeys registers a tenant or rotates its keys (upsert); every call reads it
GRANT SELECT, INSERT, UPDATE ON `blindledger`.`tenants` TO 'blindledger_ledger'@'%';
-- accounts: OpenAccount inserts; committed jobs compare-and-set balances on their version
GRANT SELECT, INSERT, UPDATE ON `blindledger`.`accounts` TO 'blindledger_ledger'@'%';
-- jobs: the job queue: submit, claim and renew leases, release, fail, commit; jobs are never deleted
GRANT SELECT, INSERT, UPDATE ON `blindledger`.`jobs` TO 'blindledger_ledger'@'%';
-- account_totals: aggregates read running totals through day boundaries and store those they fold; totals never change
GRANT SELECT, INSERT ON `blindledger`.`account_totals` TO 'blindledger_ledger'@'%';
-- decision_log: the policy gate records each decision before it takes effect; append only: the ledger cannot read, change or delete what it logged
GRANT INSERT ON `blindledger`.`decision_log` TO 'blindledger_ledger'@'%';
-- gate_revision_floors: the highest risk-bundle revision the gate activated, read at start-up and raised on each activation
GRANT SELECT, INSERT, UPDATE ON `blindledger`.`gate_revision_floors` TO 'blindledger_ledger'@'%';

-- controller: 'blindledger_controller'@'%'
-- decision_log: feature extraction streams decisions; a policy push replays recent inputs; the API's policy gate records its decisions
GRANT SELECT, INSERT ON `blindledger`.`decision_log` TO 'blindledger_controller'@'%';
-- ledger_job_feed: feature extraction streams job metadata by creation time (the ledger's view: no ciphertext, no parameters)
GRANT SELECT ON `blindledger`.`ledger_job_feed` TO 'blindledger_controller'@'%';
-- controller_models: the model registry: next version, insert, latest; old models' blobs are cleared by UPDATE
GRANT SELECT, INSERT, UPDATE ON `blindledger`.`controller_models` TO 'blindledger_controller'@'%';
-- controller_entity_risk: current tiers and scores, read each cycle and written by REPLACE INTO (INSERT and DELETE)
GRANT SELECT, INSERT, DELETE ON `blindledger`.`controller_entity_risk` TO 'blindledger_controller'@'%';
-- controller_tier_changes: tier changes are appended each cycle and listed by the scores API
GRANT SELECT, INSERT ON `blindledger`.`controller_tier_changes` TO 'blindledger_controller'@'%';
-- controller_score_history: score history is appended each cycle; rows past retention are deleted (the DELETE's WHERE reads scored_at)
GRANT SELECT, INSERT, DELETE ON `blindledger`.`controller_score_history` TO 'blindledger_controller'@'%';
-- controller_bundles: every served bundle revision, stored once and served byte for byte
GRANT SELECT, INSERT ON `blindledger`.`controller_bundles` TO 'blindledger_controller'@'%';
-- controller_activations: append-only activation history; the active revision is the latest row
GRANT SELECT, INSERT ON `blindledger`.`controller_activations` TO 'blindledger_controller'@'%';
-- controller_push_reports: the report of every policy push, accepted or refused
GRANT SELECT, INSERT ON `blindledger`.`controller_push_reports` TO 'blindledger_controller'@'%';
-- controller_alerts: the alert outbox: enqueue with dedupe, deliver, record attempts
GRANT SELECT, INSERT, UPDATE ON `blindledger`.`controller_alerts` TO 'blindledger_controller'@'%';
-- controller_applied_actions: the officers' orders carried out, one row each, so none is carried out twice
GRANT SELECT, INSERT ON `blindledger`.`controller_applied_actions` TO 'blindledger_controller'@'%';
-- audit_frozen_account_feed: officers' freezes (the audit service's view), published in the risk bundle
GRANT SELECT ON `blindledger`.`audit_frozen_account_feed` TO 'blindledger_controller'@'%';
-- audit_revoked_key_feed: officers' key revocations (the audit service's view), published in the risk bundle
GRANT SELECT ON `blindledger`.`audit_revoked_key_feed` TO 'blindledger_controller'@'%';
-- audit_admin_action_feed: bundle rollbacks ordered by officers (the audit service's view)
GRANT SELECT ON `blindledger`.`audit_admin_action_feed` TO 'blindledger_controller'@'%';

-- audit: 'blindledger_audit'@'%'
-- audit_events: the hash chain: appended, verified, exported and shown; never updated or deleted (ANALYZE TABLE needs SELECT and INSERT)
GRANT SELECT, INSERT ON `blindledger`.`audit_events` TO 'blindledger_audit'@'%';
-- audit_head: the single head row, locked FOR UPDATE and moved by every append
GRANT SELECT, UPDATE ON `blindledger`.`audit_head` TO 'blindledger_audit'@'%';
-- audit_checkpoints: signed checkpoints are added and exported; never updated or deleted
GRANT SELECT, INSERT ON `blindledger`.`audit_checkpoints` TO 'blindledger_audit'@'%';
-- audit_cursors: importer positions, moved by REPLACE INTO (INSERT and DELETE)
GRANT SELECT, INSERT, DELETE ON `blindledger`.`audit_cursors` TO 'blindledger_audit'@'%';
-- audit_job_states: the last imported state per job (REPLACE INTO); finished jobs are forgotten
GRANT SELECT, INSERT, DELETE ON `blindledger`.`audit_job_states` TO 'blindledger_audit'@'%';
-- admin_nonces: a command's nonce is checked and recorded; expired nonces are deleted
GRANT SELECT, INSERT, DELETE ON `blindledger`.`admin_nonces` TO 'blindledger_audit'@'%';
-- frozen_accounts: freeze (REPLACE INTO) and unfreeze (DELETE); served as policy data
GRANT SELECT, INSERT, DELETE ON `blindledger`.`frozen_accounts` TO 'blindledger_audit'@'%';
-- revoked_tenant_keys: key revocations (REPLACE INTO); served as policy data
GRANT SELECT, INSERT, DELETE ON `blindledger`.`revoked_tenant_keys` TO 'blindledger_audit'@'%';
-- admin_actions: accepted commands another service carries out (bundle rollbacks, key revocations) are queued
GRANT INSERT ON `blindledger`.`admin_actions` TO 'blindledger_audit'@'%';
-- decision_log: imported into the trail (and its lag shown); the dashboard's own policy gate records its decisions
GRANT SELECT, INSERT ON `blindledger`.`decision_log` TO 'blindledger_audit'@'%';
-- gate_revision_floors: the highest risk-bundle revision the dashboard's gate activated, read at start-up and raised on each activation
GRANT SELECT, INSERT, UPDATE ON `blindledger`.`gate_revision_floors` TO 'blindledger_audit'@'%';
-- ledger_job_feed: job state changes are imported; the transactions pages show metadata and ciphertext sizes (the ledger's view)
GRANT SELECT ON `blindledger`.`ledger_job_feed` TO 'blindledger_audit'@'%';
-- ledger_tenant_feed: the attention list names tenants whose keys were not rotated for long (the ledger's view: no key)
GRANT SELECT ON `blindledger`.`ledger_tenant_feed` TO 'blindledger_audit'@'%';
-- controller_activation_feed: bundle activations are imported; the bundles page lists them
GRANT SELECT ON `blindledger`.`controller_activation_feed` TO 'blindledger_audit'@'%';
-- controller_push_report_feed: the bundles page shows each push's tests and impact
GRANT SELECT ON `blindledger`.`controller_push_report_feed` TO 'blindledger_audit'@'%';
-- controller_risk_feed: the overview, risk and attention pages show tiers
GRANT SELECT ON `blindledger`.`controller_risk_feed` TO 'blindledger_audit'@'%';
-- controller_tier_change_feed: the risk page lists tier changes
GRANT SELECT ON `blindledger`.`controller_tier_change_feed` TO 'blindledger_audit'@'%';
-- controller_score_feed: the risk page charts score history
GRANT SELECT ON `blindledger`.`controller_score_feed` TO 'blindledger_audit'@'%';
