#!/bin/bash
# Creates the three service accounts (or resets their passwords to the secret files'),
# then applies their least-privilege grants (`blindledger db grants`, table by table: the
# reasons are in crates/store/src/grants.rs). Idempotent: run it after every migration
# (a grant names existing tables).
#
#   DB_HOST                    host[:port] of the node to run on (account changes and
#                              grants replicate to the other Galera nodes)
#   DB_NAME                    the database (default blindledger)
#   DB_ADMIN_USER              the administrator account (default root)
#   ADMIN_PASSWORD_FILE        its password
#   LEDGER_PASSWORD_FILE       blindledger_ledger's password
#   CONTROLLER_PASSWORD_FILE   blindledger_controller's password
#   AUDIT_PASSWORD_FILE        blindledger_audit's password
#   GRANTS_SQL                 the grants (deploy/mariadb/grants.sql, or the output of
#                              `blindledger db grants` for the image's own version)
#
# deploy/compose/db/apply-grants.sh and deploy/k8s/db/apply-grants.sh are the same file
# (scripts/validate-deploy.sh checks it): edit both.
set -euo pipefail

: "${DB_HOST:?DB_HOST is not set}"
: "${ADMIN_PASSWORD_FILE:?ADMIN_PASSWORD_FILE is not set}"
: "${GRANTS_SQL:?GRANTS_SQL is not set}"
db=${DB_NAME:-blindledger}
host=${DB_HOST%:*}
port=3306
[[ $DB_HOST == *:* ]] && port=${DB_HOST##*:}

# The administrator's password reaches the client through its environment, never its
# command line.
MYSQL_PWD=$(<"$ADMIN_PASSWORD_FILE")
export MYSQL_PWD
sql() {
  mariadb --host="$host" --port="$port" --user="${DB_ADMIN_USER:-root}" \
    --batch --skip-column-names "$@"
}

for service in ledger controller audit; do
  variable="${service^^}_PASSWORD_FILE"
  file=${!variable:?$variable is not set}
  password=$(<"$file")
  # Only URL-safe characters: the services carry the password in a URL, and here it
  # sits in a quoted SQL literal.
  if [[ -z $password || $password =~ [^A-Za-z0-9._~-] ]]; then
    echo "apply-grants: $file is empty or holds characters that need escaping" >&2
    exit 2
  fi
  account="'blindledger_$service'@'%'"
  sql <<SQL
CREATE USER IF NOT EXISTS $account IDENTIFIED BY '$password';
ALTER USER $account IDENTIFIED BY '$password';
SQL
  echo "apply-grants: account blindledger_$service ready"
done

sql "$db" <"$GRANTS_SQL"
echo "apply-grants: grants applied to $db on $host:$port"
