#!/usr/bin/env bash
# End-to-end test of the local production-shaped deployment (deploy/local/): starts it
# fresh with deploy/local/up.sh, then, through the blindledger CLI over mTLS:
#
#   1. keys for tenant acme (32-bit), accounts alice and bob, a deposit of 100.00 to alice;
#   2. a transfer of 30.00 alice -> bob submitted without waiting; once a ledger instance
#      runs it (job RUNNING, the lease owner read from the jobs table), that instance is
#      killed with SIGKILL; the other instance must take the job over when the lease
#      expires and commit it: COMMITTED after two claims (a transfer that committed
#      before the kill is reported and the scenario runs again, up to 3 times);
#   3. the balances decrypt to exactly one application of each transfer (alice 70.00,
#      bob 30.00 after one); the killed instance is restarted;
#   4. `blindledger audit verify` against the audit service passes;
#   5. Prometheus scrapes every target (all up) and has blindledger_jobs_total.
#
# Prints the timings (start-up, failover, recovery). Unattended (CI=true); exits non-zero
# on any failure, printing the end of the services' logs. Stops the deployment at exit;
# deletes it after a pass (LOCAL_DEPLOY_KEEP=1 leaves it running; a failed run keeps its
# state and logs for inspection).
#
# Environment: BLINDLEDGER_LOCAL_DIR (default <repo>/target/local-deploy-test),
# BLINDLEDGER_BIN_DIR (default <repo>/target/release), LOCAL_DEPLOY_KEEP.
set -euo pipefail
export LC_ALL=C

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BLINDLEDGER_LOCAL_DIR="${BLINDLEDGER_LOCAL_DIR:-$REPO/target/local-deploy-test}"
STATE=$BLINDLEDGER_LOCAL_DIR
UP="$REPO/deploy/local/up.sh"
# The CLI's own settings from the caller's environment would change what it prints.
unset BLINDLEDGER_OUTPUT BLINDLEDGER_ENDPOINT BLINDLEDGER_TOKEN BLINDLEDGER_HOME \
  BLINDLEDGER_TLS_CA BLINDLEDGER_TLS_CERT BLINDLEDGER_TLS_KEY BLINDLEDGER_AUDIT \
  BLINDLEDGER_ALLOW_PLAINTEXT

log() { printf '\n[local-deploy-test %s] %s\n' "$(date -u +%T)" "$*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}
now() { echo "$EPOCHREALTIME"; }
secs() { awk -v s="$1" -v e="${2:-$EPOCHREALTIME}" 'BEGIN { printf "%.1f", e - s }'; }

declare -a TIMINGS=()
timing() { TIMINGS+=("$(printf '%-60s %7s s' "$1" "$2")"); }

WATCH_PID=""
PASSED=""
cleanup() {
  local rc=$?
  trap - EXIT
  if [[ -n $WATCH_PID ]]; then kill "$WATCH_PID" 2>/dev/null || true; fi
  if ((rc != 0)) && [[ -d $STATE/logs ]]; then
    local f
    for f in "$STATE"/logs/*.log; do
      [[ -f $f ]] || continue
      echo "----- last lines of $f" >&2
      tail -n 25 "$f" >&2 || true
    done
  fi
  if [[ -n ${LOCAL_DEPLOY_KEEP:-} ]]; then
    log "LOCAL_DEPLOY_KEEP is set: the deployment keeps running (deploy/local/up.sh down stops it)"
  elif [[ -n $PASSED ]]; then
    "$UP" destroy || true
  else
    "$UP" down || true
    log "state and logs kept in $STATE"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints a Python expression over the last JSON document of stdin (`d`).
json() {
  python3 -c '
import json, sys
lines = [l for l in sys.stdin.read().splitlines() if l.strip()]
d = json.loads(lines[-1])
print(eval(sys.argv[1], {"d": d}))' "$1"
}

T_ALL=$(now)

# ----- 1. the deployment -----------------------------------------------------------------
log "deploy/local/up.sh destroy (a fresh deployment), then up"
"$UP" destroy
T0=$(now)
"$UP" up
T_UP=$(secs "$T0")
timing "start-up: up.sh (PKI, keys, Galera, services)" "$T_UP"
# shellcheck disable=SC1091
source "$STATE/deploy.env"
for v in LOCAL_CLI LOCAL_REGION LOCAL_LEDGER1 LOCAL_LEDGER2 LOCAL_AUDIT LOCAL_PROMETHEUS \
  LOCAL_DB_ROOT_URL LOCAL_DATABASE LOCAL_TLS_CA LOCAL_TLS_CERT LOCAL_TLS_KEY LOCAL_TOKEN_ISSUER_KEY; do
  [[ -n ${!v:-} ]] || fail "$STATE/deploy.env has no $v"
done
"$UP" status || fail "up.sh status reports a process down right after up"

# An operator's token from the deployment's issuer: admin of tenant acme and auditor,
# for every service.
TOKEN=$("$LOCAL_CLI" token issue --key "$LOCAL_TOKEN_ISSUER_KEY" --kid issuer --sub ci-operator \
  --role admin --role auditor --tenant acme --audience all --ttl 1h)
CLI_HOME="$STATE/test-cli-home"
mkdir -p "$CLI_HOME"
ENDPOINT=$LOCAL_LEDGER1
LEDGER=1
bl() {
  "$LOCAL_CLI" --endpoint "$ENDPOINT" --tls-ca "$LOCAL_TLS_CA" --tls-cert "$LOCAL_TLS_CERT" \
    --tls-key "$LOCAL_TLS_KEY" --token "$TOKEN" --home "$CLI_HOME" "$@"
}

DB_PORT=${LOCAL_DB_ROOT_URL##*:}
sql() {
  mariadb --no-defaults --protocol=TCP --connect-timeout=5 -h 127.0.0.1 -P "$DB_PORT" -u root \
    -N -B -e "$1" </dev/null
}

# ----- 2. keys, accounts, deposit ----------------------------------------------------------
log "keys new --tenant acme --region $LOCAL_REGION --width 32 (retried until ledger-1 serves)"
T0=$(now)
deadline=$((SECONDS + 180))
until out=$(bl keys new --tenant acme --region "$LOCAL_REGION" --width 32 --force 2>&1); do
  ((SECONDS < deadline)) || fail "keys new still fails after 180s: $out"
  echo "keys new: ${out##*$'\n'} (retrying)" >&2
  sleep 2
done
echo "$out"
timing "keys new (TFHE keys, 32-bit, upload)" "$(secs "$T0")"

bl account open acme/alice
bl account open acme/bob
T0=$(now)
bl deposit acme/alice 100.00 --wait
timing "deposit 100.00 --wait" "$(secs "$T0")"

# ----- 3. the failover ---------------------------------------------------------------------
TRANSFERS=0
KILLED=""
# Runs one transfer and kills the instance running it. Sets RESULT: "failover" when the
# job was taken over and committed by the other instance, "early" when it committed
# before the kill.
RESULT=""
failover() {
  local out id t_submit t_running state owner victim survivor pid t_kill row t_reclaim="" attempts
  out=$(bl --output json transfer acme/alice acme/bob 30.00)
  TRANSFERS=$((TRANSFERS + 1))
  t_submit=$(now)
  id=$(json 'd["job"]["id"]' <<<"$out")
  echo "transfer queued: job $id (state $(json 'd["job"]["state"]' <<<"$out"))"

  # Until an instance runs it.
  local deadline=$((SECONDS + 180))
  while :; do
    state=$(bl --output json job get "$id" | json 'd["job"]["state"]')
    case $state in
    running) break ;;
    committed)
      echo "job $id committed before it was seen RUNNING"
      RESULT=early
      return 0
      ;;
    failed) fail "job $id failed: $(bl job get "$id" 2>&1)" ;;
    esac
    ((SECONDS < deadline)) || fail "job $id is still $state after 180s"
    sleep 0.2
  done
  t_running=$(now)
  owner=$(sql "SELECT lease_owner FROM \`$LOCAL_DATABASE\`.jobs WHERE id = '$id'")
  case $owner in
  ledger-1) victim=1 survivor=2 ;;
  ledger-2) victim=2 survivor=1 ;;
  *) fail "job $id: unexpected lease owner '$owner'" ;;
  esac
  pid=$(<"$STATE/pids/ledger-$victim.pid")
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qF "$STATE/" || fail "pid $pid is not ledger-$victim"
  kill -KILL "$pid"
  t_kill=$(now)
  KILLED=$victim
  echo "job $id RUNNING on ledger-$victim $(secs "$t_submit" "$t_running")s after submission; ledger-$victim (pid $pid) killed with SIGKILL"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done

  # The CLI goes on against the survivor; the watch streams the rest of the job.
  local var=LOCAL_LEDGER$survivor
  ENDPOINT=${!var}
  LEDGER=$survivor
  bl --output json job watch "$id" >"$STATE/watch-$id.jsonl" 2>"$STATE/watch-$id.err" &
  WATCH_PID=$!

  # Until it is over, from the jobs table: when the survivor claims it, when it commits.
  deadline=$((SECONDS + 300))
  while :; do
    row=$(sql "SELECT state, IFNULL(lease_owner, '-'), attempts FROM \`$LOCAL_DATABASE\`.jobs WHERE id = '$id'")
    read -r state owner attempts <<<"$row"
    if [[ -z $t_reclaim && $state == RUNNING && $owner == "ledger-$survivor" ]]; then
      t_reclaim=$(now)
      echo "job $id claimed again by ledger-$survivor $(secs "$t_kill" "$t_reclaim")s after the kill (attempt $attempts)"
    fi
    [[ $state == COMMITTED || $state == FAILED ]] && break
    ((SECONDS < deadline)) || fail "job $id is still $state/$owner 300s after the kill"
    sleep 0.2
  done
  local t_done
  t_done=$(now)
  wait "$WATCH_PID" || fail "job watch $id failed: $(cat "$STATE/watch-$id.err")"
  WATCH_PID=""
  cat "$STATE/watch-$id.jsonl"

  out=$(bl --output json job get "$id")
  echo "$out"
  [[ $(json 'd["job"]["state"]' <<<"$out") == committed ]] || fail "job $id ended $(json 'd["job"]["state"]' <<<"$out")"
  [[ $(json 'd["results"]["moved"]' <<<"$(tail -n1 "$STATE/watch-$id.jsonl")") == 30.00 ]] ||
    fail "job $id: the decrypted result does not say 30.00 moved"
  attempts=$(json 'd["job"]["attempts"]' <<<"$out")
  if ((attempts == 1)); then
    echo "job $id committed on ledger-$victim before the kill took effect (attempts 1)"
    RESULT=early
    return 0
  fi
  ((attempts == 2)) || fail "job $id was claimed $attempts times; expected 2"
  timing "transfer: submitted -> RUNNING" "$(secs "$t_submit" "$t_running")"
  timing "failover: kill -> claimed by ledger-$survivor (lease expiry)" "$(secs "$t_kill" "$t_reclaim")"
  timing "recovery: kill -> COMMITTED on ledger-$survivor" "$(secs "$t_kill" "$t_done")"
  echo "job $id COMMITTED by ledger-$survivor after 2 claims; recovery took $(secs "$t_kill" "$t_done")s"
  RESULT=failover
}

restart_killed() {
  [[ -n $KILLED ]] || return 0
  local t0
  t0=$(now)
  "$UP" up >/dev/null
  timing "restart of ledger-$KILLED (up.sh, until it enforces the policy)" "$(secs "$t0")"
  KILLED=""
  # shellcheck disable=SC1091 # the addresses again: a port taken meanwhile is replaced
  source "$STATE/deploy.env"
}

ok=""
for try in 1 2 3; do
  log "failover scenario, try $try: transfer 30.00 acme/alice -> acme/bob, kill the instance running it"
  RESULT=""
  failover
  if [[ $RESULT == failover ]]; then
    ok=1
    break
  fi
  log "try $try: the transfer committed before the kill; restarting and trying again"
  restart_killed
  ENDPOINT=$LOCAL_LEDGER1
  LEDGER=1
done
[[ -n $ok ]] || fail "three transfers committed before the instance running them was killed"

# ----- 4. exactly once ---------------------------------------------------------------------
log "balances (decrypted locally) through ledger-$LEDGER"
alice=$(bl --output json balance acme/alice | json 'd["balance"]')
bob=$(bl --output json balance acme/bob | json 'd["balance"]')
want_alice=$(awk -v n="$TRANSFERS" 'BEGIN { printf "%.2f", 100 - 30 * n }')
want_bob=$(awk -v n="$TRANSFERS" 'BEGIN { printf "%.2f", 30 * n }')
echo "alice $alice, bob $bob after $TRANSFERS transfer(s) of 30.00 (want $want_alice / $want_bob)"
[[ $alice == "$want_alice" && $bob == "$want_bob" ]] ||
  fail "balances alice $alice / bob $bob, expected $want_alice / $want_bob: a transfer applied more or less than once"

log "restarting the killed instance"
restart_killed
ENDPOINT=$LOCAL_LEDGER1
bl balance acme/alice >/dev/null || fail "ledger-1 does not answer after its restart"

# ----- 5. the audit trail ------------------------------------------------------------------
log "blindledger audit verify --audit $LOCAL_AUDIT"
T0=$(now)
deadline=$((SECONDS + 120))
until out=$(bl audit verify --audit "$LOCAL_AUDIT" 2>&1); do
  ((SECONDS < deadline)) || fail "audit verify still fails after 120s: $out"
  echo "audit verify: ${out##*$'\n'} (retrying)" >&2
  sleep 2
done
echo "$out"
timing "audit verify (until it passes)" "$(secs "$T0")"

# ----- 6. Prometheus -----------------------------------------------------------------------
log "Prometheus at $LOCAL_PROMETHEUS: every target up, blindledger_jobs_total and every instance's bundles present"
T0=$(now)
deadline=$((SECONDS + 90))
until report=$(python3 - "$LOCAL_PROMETHEUS" <<'PY'
import json, sys, urllib.parse, urllib.request
base = sys.argv[1]
def get(path):
    with urllib.request.urlopen(base + path, timeout=5) as r:
        return json.load(r)
targets = get("/api/v1/targets?state=active")["data"]["activeTargets"]
lines = [f'{t["labels"]["job"]:24} {t["scrapeUrl"]:40} {t["health"]} {t.get("lastError", "")}' for t in targets]
print("\n".join(lines))
jobs = {t["labels"]["job"] for t in targets}
want = {"blindledger-ledger", "blindledger-controller", "blindledger-audit", "prometheus"}
ok = len(targets) == 5 and want <= jobs and all(t["health"] == "up" for t in targets)
q = get("/api/v1/query?" + urllib.parse.urlencode({"query": "blindledger_jobs_total"}))
series = q["data"]["result"]
for s in series:
    print("blindledger_jobs_total", s["metric"].get("instance"), s["metric"].get("kind"),
          s["metric"].get("outcome"), s["value"][1])
ok = ok and q["status"] == "success" and len(series) > 0
# Every ledger and the audit service report their active bundles (what the "risk bundle
# missing" alert reads): the rules and the risk data, on each of the three.
info = get("/api/v1/query?" + urllib.parse.urlencode(
    {"query": 'blindledger_policy_bundle_info{job=~"blindledger-ledger|blindledger-audit"}'}))
reported = {(s["metric"].get("instance"), s["metric"].get("bundle")) for s in info["data"]["result"]}
print("bundles reported:", sorted(reported))
ok = ok and len(reported) == 6
for a in get("/api/v1/alerts")["data"]["alerts"]:
    print("alert", a["state"], a["labels"].get("alertname"), a["labels"].get("instance", ""),
          a["labels"].get("bundle", ""))
sys.exit(0 if ok else 1)
PY
); do
  ((SECONDS < deadline)) || fail "Prometheus: not every target up, or no blindledger_jobs_total, after 90s:
$report"
  sleep 1
done
echo "$report"
timing "Prometheus: all targets up, jobs_total present" "$(secs "$T0")"

timing "whole test" "$(secs "$T_ALL")"
log "PASSED"
printf '%s\n' "timings (this host: $(nproc) cores):" "${TIMINGS[@]}"
PASSED=1
