#!/usr/bin/env bash
# The JavaScript and Python clients, end to end, against a private `blindledger dev`.
#
#   clients/test.sh
#
# Uses the already built CLI ($BLINDLEDGER_BIN, default target/release/blindledger); builds
# nothing with cargo. Installs the clients' pinned dependencies into git-ignored folders of
# the repository (clients/js/node_modules with `npm ci`, clients/python/.venv with pip),
# reinstalling only when package-lock.json or requirements.txt changed. Starts `dev` on
# free loopback ports with its data directory and the CLI's home in a temporary directory
# (the user's keys and token are never touched), then:
#   1. keys for tenant acme (`blindledger keys new`), accounts alice, bob, carol, golden;
#   2. JS: deposit 100.00 to alice, transfer 25.50 alice -> bob (waits on WatchJob);
#      a wrong pin is refused before anything is sent;
#   3. Python (reflection-built stubs): deposit 40.00 to bob (administrator token),
#      transfer 10.25 bob -> carol with a teller's token, GetJob and ListTransfers;
#   4. `blindledger balance`: alice 74.50, bob 55.25, carol 10.25;
#   5. golden vectors (clients/vectors): offline checks, and the ledger accepts the pinned
#      node-tfhe amount (deposited to the scratch account acme/golden).
# Exits non-zero when any step fails. KEEP_TMP=1 keeps the temporary directory.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BL=${BLINDLEDGER_BIN:-$REPO_ROOT/target/release/blindledger}
JS_DIR=$REPO_ROOT/clients/js
PY_DIR=$REPO_ROOT/clients/python
STARTED=$SECONDS

log() { printf 'clients/test.sh: %s\n' "$*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}
step() { printf '\n==> clients: %s (%ds)\n' "$*" $((SECONDS - STARTED)); }

TMP=""
DEV_PID=""
cleanup() {
  local rc=$?
  if [[ -n $DEV_PID ]] && kill -0 "$DEV_PID" 2>/dev/null; then
    kill -INT "$DEV_PID" 2>/dev/null || true # dev stops on Ctrl-C
    local deadline=$((SECONDS + 30))
    while kill -0 "$DEV_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$DEV_PID" 2>/dev/null; then
      log "dev still running after 30 s; killing it"
      kill -KILL "$DEV_PID" 2>/dev/null || true
    fi
    wait "$DEV_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -n $TMP && -f $TMP/dev.log ]]; then
    log "last lines of the dev log ($TMP/dev.log):"
    tail -n 40 "$TMP/dev.log" >&2 || true
  fi
  if [[ -n $TMP ]]; then
    if [[ -n ${KEEP_TMP:-} ]]; then
      log "kept $TMP"
    else
      rm -rf "$TMP"
    fi
  fi
  if [[ $rc -eq 0 ]]; then
    log "passed in $((SECONDS - STARTED)) s"
  else
    log "failed (exit $rc) after $((SECONDS - STARTED)) s"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Checks a command's one-line output: expect_eq WHAT EXPECTED ACTUAL.
expect_eq() {
  if [[ $2 != "$3" ]]; then die "$1: expected '$2', got '$3'"; fi
  log "ok: $1 = $3"
}

balance() {
  local out
  out=$("$BL" balance "$1") || die "blindledger balance $1 failed"
  # The decrypted balance is the last decimal number the CLI prints.
  grep -oE '[0-9]+\.[0-9]{2}' <<<"$out" | tail -n 1
}

step "prerequisites"
[[ -x $BL ]] || die "$BL not found: build it first (cargo build --release --workspace --bins --examples)"
command -v node >/dev/null || die "node (20 or later) is required"
command -v npm >/dev/null || die "npm is required"
command -v python3 >/dev/null || die "python3 (3.10 or later) is required"
log "$("$BL" --version), node $(node --version), npm $(npm --version), $(python3 --version)"

step "JS dependencies (npm ci into clients/js/node_modules)"
stamp="$(sha256sum "$JS_DIR/package-lock.json" | cut -d' ' -f1) $(node --version)"
if [[ ! -f $JS_DIR/node_modules/.blindledger-stamp || $(<"$JS_DIR/node_modules/.blindledger-stamp") != "$stamp" ]]; then
  (cd "$JS_DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) || die "npm ci failed"
  printf '%s' "$stamp" >"$JS_DIR/node_modules/.blindledger-stamp"
else
  log "node_modules up to date with package-lock.json"
fi

step "Python dependencies (venv in clients/python/.venv)"
PY=$PY_DIR/.venv/bin/python
stamp="$(sha256sum "$PY_DIR/requirements.txt" | cut -d' ' -f1) $(python3 --version)"
if [[ ! -x $PY || ! -f $PY_DIR/.venv/.blindledger-stamp || $(<"$PY_DIR/.venv/.blindledger-stamp") != "$stamp" ]]; then
  rm -rf "$PY_DIR/.venv"
  python3 -m venv "$PY_DIR/.venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$PY" -m pip install --disable-pip-version-check -q -r "$PY_DIR/requirements.txt" || die "pip install failed"
  printf '%s' "$stamp" >"$PY_DIR/.venv/.blindledger-stamp"
else
  log ".venv up to date with requirements.txt"
fi

step "golden vectors, offline (node-tfhe reads the pinned tfhe key; same ciphertext framing)"
node "$JS_DIR/vectors.mjs" check || die "golden vectors"

step "starting blindledger dev"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/blindledger-clients.XXXXXX")
mapfile -t PORTS < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
for s in socks:
    print(s.getsockname()[1])
for s in socks:
    s.close()
PY
)
export BLINDLEDGER_HOME=$TMP/home
export BLINDLEDGER_ENDPOINT=http://127.0.0.1:${PORTS[0]}
export BLINDLEDGER_LEDGER_METRICS_ADDR=127.0.0.1:${PORTS[3]}
unset BLINDLEDGER_TOKEN BLINDLEDGER_PIN
mkdir -p "$BLINDLEDGER_HOME"
NO_COLOR=1 "$BL" dev --data-dir "$TMP/data" \
  --listen "127.0.0.1:${PORTS[0]}" \
  --controller-listen "127.0.0.1:${PORTS[1]}" \
  --audit-listen "127.0.0.1:${PORTS[2]}" \
  </dev/null >"$TMP/dev.log" 2>&1 &
DEV_PID=$!
log "dev (pid $DEV_PID): ledger $BLINDLEDGER_ENDPOINT, controller :${PORTS[1]}, audit :${PORTS[2]}, metrics :${PORTS[3]}; log $TMP/dev.log"

# Ready once the ledger answers and enforces both bundles (until the risk bundle is active,
# OpenAccount and the money verbs are UNAVAILABLE).
deadline=$((SECONDS + 180))
until [[ -f $BLINDLEDGER_HOME/token ]] && status=$("$BL" policy status 2>/dev/null) &&
  grep -qE '^blindledger: revision [^ ,]+' <<<"$status" && grep -qE '^risk: revision [^ ,]+' <<<"$status"; do
  kill -0 "$DEV_PID" 2>/dev/null || die "dev exited during start-up"
  ((SECONDS < deadline)) || die "the ledger did not answer with both bundles active within 180 s"
  sleep 0.5
done
log "ledger answers:"
sed 's/^/    /' <<<"$status" >&2

step "tenant keys and accounts (blindledger keys new --tenant acme; account open)"
"$BL" keys new --tenant acme || die "keys new"
PIN=$("$BL" keys show acme | grep -i fingerprint | grep -oE '[0-9a-f]{64}' | head -n 1)
expect_eq "keys show fingerprint = sha256(public.key)" \
  "$(sha256sum "$BLINDLEDGER_HOME/keys/acme/public.key" | cut -d' ' -f1)" "$PIN"
for account in alice bob carol golden; do
  "$BL" account open "acme/$account" >/dev/null || die "account open acme/$account"
done
log "opened acme/alice, acme/bob, acme/carol, acme/golden"

step "JavaScript client (node-tfhe, @grpc/grpc-js): deposit and transfer"
JS=(node "$JS_DIR/client.mjs")
"${JS[@]}" tenant acme || die "JS tenant"
if out=$("${JS[@]}" --pin "$(printf '0%.0s' {1..64})" deposit acme/alice 1.00 2>&1); then
  die "JS: a deposit with a wrong pin was sent: $out"
fi
grep -q 'refusing to use it' <<<"$out" || die "JS wrong pin: unexpected error: $out"
log "ok: JS refuses a key that does not match the pin"
"${JS[@]}" --pin "$PIN" deposit acme/alice 100.00 --wait || die "JS deposit"
out=$("${JS[@]}" --pin "$PIN" transfer acme/alice acme/bob 25.50 --wait) || die "JS transfer: $out"
printf '%s\n' "$out"
JS_TRANSFER=$(head -n 1 <<<"$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).submitted.id))')
"${JS[@]}" job "$JS_TRANSFER" --results || die "JS GetJob"
expect_eq "acme/alice after JS" "74.50" "$(balance acme/alice)"
expect_eq "acme/bob after JS" "25.50" "$(balance acme/bob)"

step "Python client (grpcio, stubs from reflection; amounts encrypted by clients/js/encrypt.mjs)"
TELLER=$("$BL" token issue --key "$TMP/data/dev/token.key" --sub tom --role teller --tenant acme) || die "token issue"
PYC=("$PY" "$PY_DIR/blindledger_client.py")
"${PYC[@]}" services >/dev/null || die "Python: stubs from reflection v1"
BLINDLEDGER_REFLECTION=v1alpha "${PYC[@]}" services >/dev/null || die "Python: stubs from reflection v1alpha"
"${PYC[@]}" --pin "$PIN" deposit acme/bob 40.00 --wait || die "Python deposit"
out=$("${PYC[@]}" --token "$TELLER" --pin "$PIN" transfer acme/bob acme/carol 10.25 --wait) ||
  die "Python transfer (teller token): $out"
printf '%s\n' "$out"
PY_TRANSFER=$("$PY" -c 'import json,sys; print(json.loads(sys.stdin.readline())["submitted"]["id"])' <<<"$out")
out=$("${PYC[@]}" job "$PY_TRANSFER") || die "Python GetJob"
printf '%s\n' "$out"
grep -q '"state": "JOB_STATE_COMMITTED"' <<<"$out" || die "Python GetJob: not committed"
out=$("${PYC[@]}" transfers acme/bob) || die "Python ListTransfers"
printf '%s\n' "$out"
grep -q "$JS_TRANSFER" <<<"$out" || die "ListTransfers acme/bob lacks the JS transfer $JS_TRANSFER"
grep -q "$PY_TRANSFER" <<<"$out" || die "ListTransfers acme/bob lacks the Python transfer $PY_TRANSFER"
log "ok: ListTransfers acme/bob lists both transfers"

step "balances, decrypted by the Rust CLI (blindledger balance)"
expect_eq "acme/alice" "74.50" "$(balance acme/alice)"
expect_eq "acme/bob" "55.25" "$(balance acme/bob)"
expect_eq "acme/carol" "10.25" "$(balance acme/carol)"

step "golden vectors against the ledger"
node "$JS_DIR/vectors.mjs" check --public-key "$BLINDLEDGER_HOME/keys/acme/public.key" ||
  die "golden vectors vs a key made now"
node "$JS_DIR/vectors.mjs" submit acme/golden || die "the ledger refused the golden node-tfhe amount"

step "done"
