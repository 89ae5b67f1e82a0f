-- Each officer's order keeps the signed command it came from (the `SignedCommand` JSON:
-- payload text and signature), so the controller can check the officer's signature itself
-- before it publishes a freeze or a key revocation or carries out a rollback: a row written
-- by anyone else (a database writer, the audit service's credentials) is not an order.
-- Rows from before this migration have none and are ignored until re-issued.
ALTER TABLE frozen_accounts ADD COLUMN signed_command TEXT NULL;
ALTER TABLE revoked_tenant_keys ADD COLUMN signed_command TEXT NULL;
ALTER TABLE admin_actions ADD COLUMN signed_command TEXT NULL;
