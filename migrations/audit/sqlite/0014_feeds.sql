-- What the audit service publishes to the controller, as read-only views: officers'
-- orders the controller carries out. The controller is granted SELECT on these and on no
-- audit table; what it has carried out it records in its own table
-- (`controller_applied_actions`), never here.

-- Frozen accounts, with the officer's signed command (checked by the controller).
CREATE VIEW audit_frozen_account_feed AS
SELECT tenant, account, since, signed_command
FROM frozen_accounts;

-- Revoked tenant keys, with the officer's signed command.
CREATE VIEW audit_revoked_key_feed AS
SELECT tenant, key_id, revoked_at, signed_command
FROM revoked_tenant_keys;

-- Accepted commands another service carries out (a bundle rollback by the controller).
CREATE VIEW audit_admin_action_feed AS
SELECT id, command, target, accepted_at, signed_command
FROM admin_actions;
