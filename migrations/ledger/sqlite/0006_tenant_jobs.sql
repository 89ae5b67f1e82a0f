-- Counting a tenant's open jobs (the per-tenant job quota) reads this index instead of
-- every job the tenant ever ran.
CREATE INDEX jobs_tenant_state ON jobs (tenant, state);
