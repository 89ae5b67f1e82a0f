#!/bin/sh
# Runs a BlindLedger command with its database URL in the environment, built from a
# password file: the services and `blindledger db migrate` read the URL only from their
# configuration or an environment variable, and the password must stay a secret file.
#
#   DB_USER           the MariaDB account
#   DB_PASSWORD_FILE  its password (URL-safe characters only: gen-secrets.sh writes hex)
#   DB_HOSTS          host:port[,host:port...]: the Galera nodes, in order of use
#   DB_NAME           the database (default blindledger)
#   DB_URL_VARIABLE   the variable the command reads: BLINDLEDGER_LEDGER_DATABASE_URL
#                     (ledger), BLINDLEDGER_CONTROLLER_DATABASE_URL (controller),
#                     BLINDLEDGER_AUDIT_DATABASE_URL (audit), BLINDLEDGER_ADMIN_DATABASE_URL
#                     (db migrate)
#
# Usage: with-database-url.sh COMMAND [ARGS...]; the command replaces this shell (exec),
# so it receives SIGTERM directly.
set -eu

: "${DB_USER:?DB_USER is not set}"
: "${DB_PASSWORD_FILE:?DB_PASSWORD_FILE is not set}"
: "${DB_HOSTS:?DB_HOSTS is not set}"
: "${DB_URL_VARIABLE:?DB_URL_VARIABLE is not set}"

case "$DB_URL_VARIABLE" in
  BLINDLEDGER_LEDGER_DATABASE_URL | BLINDLEDGER_CONTROLLER_DATABASE_URL | \
    BLINDLEDGER_AUDIT_DATABASE_URL | BLINDLEDGER_ADMIN_DATABASE_URL) ;;
  *)
    echo "with-database-url: unexpected DB_URL_VARIABLE $DB_URL_VARIABLE" >&2
    exit 2
    ;;
esac

password=$(cat "$DB_PASSWORD_FILE")
case "$password" in
  "" | *[!A-Za-z0-9._~-]*)
    echo "with-database-url: $DB_PASSWORD_FILE is empty or holds characters that need URL encoding" >&2
    exit 2
    ;;
esac

export "$DB_URL_VARIABLE=mysql://$DB_USER:$password@$DB_HOSTS/${DB_NAME:-blindledger}"
unset password DB_PASSWORD_FILE
exec "$@"
