#!/usr/bin/env bash
# The blindledger CLI pointed at the local deployment (deploy/local/up.sh): ledger-1 over
# mTLS (LEDGER=2 for ledger-2), the deployment's CA, the operator's client certificate, the
# operator's token (admin and auditor of tenant acme, every audience), a CLI home under the
# state directory, and the audit service for `audit verify`.
#
#   deploy/local/cli.sh keys new --tenant acme --region eu-west --width 32
#   LEDGER=2 deploy/local/cli.sh balance acme/alice
#   deploy/local/cli.sh audit verify
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${BLINDLEDGER_LOCAL_DIR:-$REPO/target/local-deploy}"
[[ -f $STATE/deploy.env ]] || {
  echo "cli.sh: no local deployment in $STATE (run deploy/local/up.sh)" >&2
  exit 1
}
# shellcheck disable=SC1091
source "$STATE/deploy.env"
case ${LEDGER:-1} in
1) endpoint=$LOCAL_LEDGER1 ;;
2) endpoint=$LOCAL_LEDGER2 ;;
*)
  echo "cli.sh: LEDGER is 1 or 2" >&2
  exit 2
  ;;
esac
BLINDLEDGER_AUDIT="${BLINDLEDGER_AUDIT:-$LOCAL_AUDIT}" exec "$LOCAL_CLI" \
  --endpoint "$endpoint" --tls-ca "$LOCAL_TLS_CA" --tls-cert "$LOCAL_TLS_CERT" \
  --tls-key "$LOCAL_TLS_KEY" --token "$(<"$LOCAL_OPERATOR_TOKEN_FILE")" \
  --home "${BLINDLEDGER_HOME:-$LOCAL_CLI_HOME}" "$@"
