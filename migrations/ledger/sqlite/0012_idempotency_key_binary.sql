-- Idempotency keys are compared byte for byte: SQLite's TEXT already compares them so
-- (BINARY collation). The MariaDB migration of the same number makes MariaDB agree.
SELECT 1;
