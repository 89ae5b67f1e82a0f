#!/usr/bin/env bash
# A production-shaped BlindLedger deployment on this host, as separate processes on
# 127.0.0.1: a CA and mTLS certificates, Ed25519 keys, a signed policy bundle, the
# three-node Galera cluster, the schema and per-service database users, the controller,
# two ledger instances, the audit service and Prometheus. See deploy/local/README.md.
#
#   deploy/local/up.sh [up]     create what is missing, start what is not running, wait
#                               until every service listens and the ledgers enforce the
#                               policy; prints where everything is (idempotent)
#   deploy/local/up.sh status   one line per process; exit 0 only when all run
#   deploy/local/up.sh env      the deployment's addresses and files, as shell variables
#   deploy/local/up.sh down     SIGTERM every process this started (the Galera cluster
#                               only if this started it), wait; keeps the state
#   deploy/local/up.sh destroy  down, then delete the state directory
#
# State: ${BLINDLEDGER_LOCAL_DIR:-<repo>/target/local-deploy}. Binaries:
# ${BLINDLEDGER_BIN_DIR:-<repo>/target/release}. Works unattended (CI=true).
set -euo pipefail
export LC_ALL=C

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# apt_install, find_prog, tcp_open, as_root, mysql_at (sourcing defines functions only).
# shellcheck source=scripts/test.sh
source "$REPO/scripts/test.sh"
set -euo pipefail

log() { printf 'local-deploy: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
since() { awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f", e - s }'; }

STATE="${BLINDLEDGER_LOCAL_DIR:-$REPO/target/local-deploy}"
BIN_DIR="${BLINDLEDGER_BIN_DIR:-${CARGO_TARGET_DIR:-$REPO/target}/release}"
GALERA_DIR="${BLINDLEDGER_LOCAL_GALERA_DIR:-$STATE/galera}"
READY_TIMEOUT="${BLINDLEDGER_LOCAL_TIMEOUT:-180}"
DATABASE=blindledger
SERVICES=(controller ledger-1 ledger-2 audit)

# Default ports (kept while free; otherwise a free port is chosen and recorded). Below
# Linux's ephemeral range (32768-60999), where outgoing connections would take them.
declare -A DEFAULT_PORT=(
  [controller]=28181 [controller_metrics]=29465
  [ledger-1]=25151 [ledger-1_metrics]=29464
  [ledger-2]=25152 [ledger-2_metrics]=29474
  [audit]=28088 [audit_metrics]=29466
  [prometheus]=29090
)
declare -A PORT=()

ETC="$STATE/etc/blindledger"
SECRETS="$STATE/run/secrets"
VAR="$STATE/var/lib/blindledger"
HOME_DIR="$STATE/home"
PKI="$STATE/pki"
CONF="$STATE/config"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
PROM="$STATE/prometheus"
CLI="$BIN_DIR/blindledger"

# ----- helpers ---------------------------------------------------------------------------

# The BLINDLEDGER_* variables of the caller's environment would reach every process: a
# service's own (BLINDLEDGER_LEDGER_*, ...) override its configuration keys, a former
# shared one (BLINDLEDGER_DATABASE_URL, say) stops the ledger and the controller, and the
# CLI's own (BLINDLEDGER_ENDPOINT, ...) change what it calls. Every process starts without
# them.
CLEAN_ENV=(env)
for v in $(compgen -e); do
  case $v in
  BLINDLEDGER_LOG_JSON) ;;
  BLINDLEDGER_*) CLEAN_ENV+=(-u "$v") ;;
  esac
done

cli() { "${CLEAN_ENV[@]}" "$CLI" "$@"; }

kind_of() { # controller | ledger | audit
  case $1 in
  ledger-*) echo ledger ;;
  *) echo "$1" ;;
  esac
}

port_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
# As the services bind (SO_REUSEADDR): a port left in TIME_WAIT by a killed process is free.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

any_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

http_get() { # URL: prints the body; fails on an error status or no answer
  python3 - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        sys.stdout.write(r.read().decode())
except Exception as e:
    print(e, file=sys.stderr)
    sys.exit(1)
PY
}

load_ports() {
  local k v
  PORT=()
  [[ -f $STATE/ports.env ]] || return 0
  while IFS='=' read -r k v; do
    [[ $v =~ ^[0-9]+$ && $k =~ ^PORT_(.+)$ ]] && PORT[${BASH_REMATCH[1]}]=$v
  done <"$STATE/ports.env"
}

save_ports() {
  local k
  {
    echo "# Ports of the local deployment, chosen by deploy/local/up.sh."
    for k in "${!PORT[@]}"; do echo "PORT_$k=${PORT[$k]}"; done | sort
  } >"$STATE/ports.env.tmp"
  mv "$STATE/ports.env.tmp" "$STATE/ports.env"
}

# Keeps the recorded (or default) port of each listener of a process about to start,
# unless something else holds it: then another free port.
choose_ports() { # KEY...
  local k p
  for k in "$@"; do
    p=${PORT[$k]:-${DEFAULT_PORT[$k]}}
    if ! port_free "$p"; then
      local new
      new=$(any_free_port)
      log "port $p ($k) is taken; using $new"
      p=$new
    fi
    PORT[$k]=$p
  done
  save_ports
}

pid_of() { # NAME: the live pid of process NAME, started from this state directory
  local f="$PIDS/$1.pid" pid
  [[ -r $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  { tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$STATE/" || return 1
  [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
  echo "$pid"
}

# ----- tools -----------------------------------------------------------------------------

ensure_tools() {
  local b
  for b in blindledger blindledger-ledger blindledger-controller blindledger-audit; do
    [[ -x $BIN_DIR/$b ]] ||
      die "$BIN_DIR/$b not found: cargo build --release --workspace --bins --examples (or set BLINDLEDGER_BIN_DIR)"
  done
  python3 -c 'import sys, tomllib; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
    die "python3 3.11 or later is needed (tomllib)"
  command -v openssl >/dev/null 2>&1 || apt_install openssl || die "openssl is needed"
  if ! PROMETHEUS_BIN=$(find_prog prometheus); then
    apt_install prometheus || die "cannot install prometheus (apt-get install prometheus)"
    PROMETHEUS_BIN=$(find_prog prometheus) || die "prometheus not found after installing it"
  fi
}

# ----- PKI, keys, bundle, tokens ---------------------------------------------------------

make_dirs() {
  mkdir -p "$STATE" "$ETC/tls" "$ETC/keys" "$VAR/objects" "$VAR/checkpoints" "$CONF" "$LOGS" \
    "$PIDS" "$PROM/data"
  install -d -m 0700 "$STATE/run" "$SECRETS" "$SECRETS/tls" "$HOME_DIR" "$HOME_DIR/cli" "$PKI"
}

# Issues NAME's certificate and key: $1 name, $2 certificate file, $3 key file, $4 extensions.
issue_cert() {
  local name=$1 cert=$2 key=$3 ext=$4 csr
  csr=$(mktemp)
  printf '%s\n' "$ext" >"$PKI/$name.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$key" \
    -out "$csr" -subj "/CN=$name" 2>/dev/null
  openssl x509 -req -in "$csr" -CA "$ETC/tls/ca.pem" -CAkey "$PKI/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 30 -extfile "$PKI/$name.ext" -out "$cert" 2>/dev/null
  chmod 0600 "$key"
  rm -f "$csr"
}

make_pki() {
  local fresh="" svc
  if [[ ! -s $PKI/ca.key || ! -s $ETC/tls/ca.pem ]]; then
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$PKI/ca.key" -out "$ETC/tls/ca.pem" -days 30 -subj "/CN=BlindLedger local workloads CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 0600 "$PKI/ca.key"
    fresh=1
    log "CA: $ETC/tls/ca.pem"
  fi
  # One certificate per workload: serving its port, and calling the bundle server.
  for svc in controller ledger audit; do
    if [[ -n $fresh || ! -s $ETC/tls/$svc.pem || ! -s $SECRETS/tls/$svc.key ]]; then
      issue_cert "$svc" "$ETC/tls/$svc.pem" "$SECRETS/tls/$svc.key" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,URI:spiffe://blindledger.local/$svc"
      log "certificate: $svc (serverAuth, clientAuth; 127.0.0.1, localhost)"
    fi
  done
  if [[ -n $fresh || ! -s $HOME_DIR/operator.pem || ! -s $HOME_DIR/operator.key ]]; then
    issue_cert operator "$HOME_DIR/operator.pem" "$HOME_DIR/operator.key" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=URI:spiffe://blindledger.local/operator"
    log "certificate: operator (clientAuth)"
  fi
}

# Ed25519 pairs: private key here, public key where the configuration names it.
make_keys() {
  local private public
  while read -r private public; do
    [[ -s $private && -s $public ]] && continue
    rm -f "$private" "$private.pub"
    cli policy keygen "$private" </dev/null >/dev/null
    mv -f "$private.pub" "$public"
    chmod 0600 "$private"
    log "key pair: $(basename "$private") (public: ${public#"$STATE"/})"
  done <<EOF
$HOME_DIR/ci-bundle.key $ETC/keys/ci-bundle.pub
$SECRETS/controller-risk.key $ETC/keys/controller-risk.pub
$HOME_DIR/token-issuer.key $ETC/keys/token-issuer.pub
$SECRETS/audit-checkpoint.key $HOME_DIR/audit-checkpoint.pub
$HOME_DIR/officer-1.key $ETC/keys/officer-1.pub
EOF
}

# CI's step: build and sign the shipped policy; the controller serves it until a push.
make_bundle() {
  local revision
  revision="local-$(cd "$REPO" && find policies -type f -print0 | sort -z | xargs -0 sha256sum |
    sha256sum | cut -c1-12)"
  if [[ -s $ETC/policy.tar.gz && -f $HOME_DIR/policy.revision && $(<"$HOME_DIR/policy.revision") == "$revision" ]]; then
    return 0
  fi
  cli policy build "$REPO/policies" -o "$HOME_DIR/policy.tar.gz" --revision "$revision" >/dev/null
  cli policy sign "$HOME_DIR/policy.tar.gz" --key "$HOME_DIR/ci-bundle.key" --kid ci >/dev/null
  cp -f "$HOME_DIR/policy.tar.gz" "$ETC/policy.tar.gz"
  echo "$revision" >"$HOME_DIR/policy.revision"
  log "policy bundle: revision $revision, signed by ci"
}

# Tokens, issued again on every up (they expire): the services' bundle_reader token, and
# an operator's (admin and auditor of tenant acme, every audience) for deploy/local/cli.sh.
make_tokens() {
  local issuer=(token issue --key "$HOME_DIR/token-issuer.key" --kid issuer)
  cli "${issuer[@]}" --sub workloads --role bundle_reader --audience controller --ttl 720h \
    >"$SECRETS/bundle-token.tmp"
  mv -f "$SECRETS/bundle-token.tmp" "$SECRETS/bundle-token"
  cli "${issuer[@]}" --sub operator --role admin --role auditor --tenant acme --audience all \
    --ttl 24h >"$HOME_DIR/operator.token.tmp"
  mv -f "$HOME_DIR/operator.token.tmp" "$HOME_DIR/operator.token"
}

# ----- database --------------------------------------------------------------------------

# fd 8 (this script's lock) is not inherited by the nodes, nor by any process started here.
galera() { BLINDLEDGER_GALERA_DIR="$GALERA_DIR" bash "$REPO/deploy/galera/cluster.sh" "$@" 8<&-; }

declare -a NODE_PORT=()
start_galera() {
  if galera status >/dev/null 2>&1; then
    log "Galera: the cluster in $GALERA_DIR already runs"
  else
    # Once more on failure: a port it chose may have been taken before its node bound it
    # (the next try chooses again).
    galera up || {
      log "Galera: 'cluster.sh up' failed; trying once more"
      galera up
    } || die "the Galera cluster did not start (see $GALERA_DIR/node*/error.log)"
    touch "$PIDS/galera.started"
  fi
  local urls
  urls=$(galera urls)
  # mysql://root@127.0.0.1:P1,mysql://root@127.0.0.1:P2,mysql://root@127.0.0.1:P3
  read -r -a NODE_PORT <<<"$(grep -oE '127\.0\.0\.1:[0-9]+' <<<"$urls" | cut -d: -f2 | tr '\n' ' ')"
  ((${#NODE_PORT[@]} == 3)) || die "unexpected 'cluster.sh urls' output: $urls"
  ROOT_URL="mysql://root@127.0.0.1:${NODE_PORT[0]}"
}

db_password() { # SERVICE: its password file, made once (hex: URL- and SQL-safe)
  local f="$SECRETS/db-$1.password"
  [[ -s $f ]] || { openssl rand -hex 24 | tr -d '\n' >"$f"; }
  chmod 0600 "$f"
  echo "$f"
}

# The MariaDB client as root on the first node, reading SQL from stdin or -e.
db_root() {
  local client
  client=$(find_prog mariadb mysql) || die "no MariaDB client (apt-get install mariadb-client)"
  "$client" --no-defaults --protocol=TCP --connect-timeout=5 -h 127.0.0.1 -P "${NODE_PORT[0]}" \
    -u root "$@"
}

setup_database() {
  local svc pw sql=""
  db_root -e "CREATE DATABASE IF NOT EXISTS \`$DATABASE\` CHARACTER SET utf8mb4" </dev/null ||
    die "cannot create database $DATABASE on $ROOT_URL"
  # As an administrator, against the first node.
  cli db migrate --database-url "$ROOT_URL/$DATABASE" >/dev/null || die "blindledger db migrate failed"
  for svc in ledger controller audit; do
    pw=$(<"$(db_password "$svc")")
    sql+="CREATE USER IF NOT EXISTS 'blindledger_$svc'@'%' IDENTIFIED BY '$pw';
ALTER USER 'blindledger_$svc'@'%' IDENTIFIED BY '$pw';
"
  done
  db_root <<<"$sql" || die "cannot create the services' database users"
  cli db grants --database "$DATABASE" | db_root || die "cannot apply 'blindledger db grants'"
}

# ----- services --------------------------------------------------------------------------

service_keys() { # BINARY: its configuration keys, from --help ("Keys: a, b, c.")
  "$BIN_DIR/$1" --help | tr '\n' ' ' | sed -n 's/.*Keys: \([a-z_, ]*\)\..*/\1/p' | tr -d ' '
}

render() { # NAME: writes $CONF/NAME.toml
  local name=$1 kind bin keys
  kind=$(kind_of "$name")
  bin="blindledger-$kind"
  keys=$(service_keys "$bin")
  [[ -n $keys ]] || die "$bin --help lists no configuration keys"
  local args=("$REPO/deploy/config/$kind.toml" "$CONF/$name.toml" --root "$STATE" --keys "$keys"
    --listen "127.0.0.1:${PORT[$name]}" --metrics "127.0.0.1:${PORT[${name}_metrics]}"
    --db-node "1=127.0.0.1:${NODE_PORT[0]}" --db-node "2=127.0.0.1:${NODE_PORT[1]}"
    --db-node "3=127.0.0.1:${NODE_PORT[2]}")
  [[ $kind == controller ]] || args+=(--controller "127.0.0.1:${PORT[controller]}")
  [[ $kind == ledger ]] && args+=(--set "instance_id=\"$name\"")
  python3 "$HERE/render_config.py" "${args[@]}"
}

# Starts NAME in its own session; its stdout (the "metrics ADDR" and "listening ADDR"
# lines) goes to logs/NAME.stdout, its log (stderr) to logs/NAME.log.
launch() {
  local name=$1 kind url pw_file var
  kind=$(kind_of "$name")
  url=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["database_url"])' \
    "$CONF/$name.toml")
  pw_file=$(db_password "$kind")
  url=${url/@/:$(<"$pw_file")@}
  # Each service reads its own prefix: BLINDLEDGER_LEDGER_, _CONTROLLER_, _AUDIT_.
  var="BLINDLEDGER_${kind^^}_DATABASE_URL"
  printf '\n=== %s: starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$LOGS/$name.log"
  # NO_COLOR: plain log files.
  (cd "$STATE" && exec setsid "${CLEAN_ENV[@]}" NO_COLOR=1 "$var=$url" "$BIN_DIR/blindledger-$kind" \
    --config "$CONF/$name.toml" </dev/null >"$LOGS/$name.stdout" 2>>"$LOGS/$name.log" 8<&-) &
  echo $! >"$PIDS/$name.pid"
  disown 2>/dev/null || true
}

wait_listening() { # NAME: until its stdout says "listening ADDR"; prints ADDR
  local name=$1 deadline=$((SECONDS + READY_TIMEOUT)) addr
  while :; do
    addr=$(sed -n 's/^listening //p' "$LOGS/$name.stdout" 2>/dev/null | head -n1)
    if [[ -n $addr ]]; then
      echo "$addr"
      return 0
    fi
    if ! pid_of "$name" >/dev/null; then
      log "$name exited while starting; end of $LOGS/$name.log:"
      tail -n 30 "$LOGS/$name.log" >&2 || true
      return 1
    fi
    ((SECONDS < deadline)) || {
      log "$name does not listen after ${READY_TIMEOUT}s; see $LOGS/$name.log"
      return 1
    }
    sleep 0.1
  done
}

start_services() { # NAME...: those not running, in order; the controller first
  local name started=() t0 addr
  for name in "$@"; do
    pid_of "$name" >/dev/null && continue
    choose_ports "$name" "${name}_metrics"
    render "$name"
    t0=$EPOCHREALTIME
    launch "$name"
    started+=("$name")
    if [[ $name == controller ]]; then
      # The others fetch their bundles from it.
      addr=$(wait_listening controller) || die "the controller did not start"
      log "controller listening on $addr (metrics $(sed -n 's/^metrics //p' "$LOGS/controller.stdout")) after $(since "$t0")s"
    fi
  done
  for name in "${started[@]}"; do
    [[ $name == controller ]] && continue
    addr=$(wait_listening "$name") || die "$name did not start"
    log "$name listening on $addr (metrics $(sed -n 's/^metrics //p' "$LOGS/$name.stdout"))"
  done
}

# Whether ledger NAME enforces both bundles (`blindledger policy status`, as the operator).
ledger_enforces() {
  cli --endpoint "https://127.0.0.1:${PORT[$1]}" --tls-ca "$ETC/tls/ca.pem" \
    --tls-cert "$HOME_DIR/operator.pem" --tls-key "$HOME_DIR/operator.key" \
    --token "$(<"$HOME_DIR/operator.token")" --output json policy status 2>/dev/null |
    python3 -c '
import json, sys
active = {b["name"] for b in json.load(sys.stdin)["bundles"] if b.get("active_revision")}
sys.exit(0 if {"blindledger", "risk"} <= active else 1)'
}

# Whether the audit service activated both bundles since its last start (its log says so).
audit_enforces() {
  local since
  since=$(awk '/^=== .*: starting audit$/ { n = NR } END { print n + 0 }' "$LOGS/audit.log")
  tail -n "+$since" "$LOGS/audit.log" | grep 'policy bundle activated' >"$LOGS/.audit-bundles" || true
  grep -q '"blindledger"' "$LOGS/.audit-bundles" && grep -q '"risk"' "$LOGS/.audit-bundles"
}

# The ledgers and the audit service serve once the rules and the risk data, polled from
# the controller over mTLS, are active.
wait_bundles() {
  local deadline=$((SECONDS + READY_TIMEOUT)) t0=$EPOCHREALTIME missing
  while :; do
    missing=""
    ledger_enforces ledger-1 || missing+="ledger-1 "
    ledger_enforces ledger-2 || missing+="ledger-2 "
    audit_enforces || missing+="audit "
    if [[ -z $missing ]]; then
      log "policy and risk bundles active on ledger-1, ledger-2 and audit after $(since "$t0")s"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      log "bundles still not active after ${READY_TIMEOUT}s on: ${missing% }"
      return 1
    fi
    sleep 0.5
  done
}

start_prometheus() {
  local running=""
  if pid_of prometheus >/dev/null; then running=1; else choose_ports prometheus; fi
  cat >"$PROM/prometheus.yml.new" <<EOF
# Generated by deploy/local/up.sh; edits are lost on the next up.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
  external_labels:
    environment: local

rule_files:
  - $REPO/deploy/prometheus/alerts.yml

scrape_configs:
  # metrics_addr of each instance: plain HTTP, /metrics.
  - job_name: blindledger-ledger
    static_configs:
      - targets: ["127.0.0.1:${PORT[ledger-1_metrics]}", "127.0.0.1:${PORT[ledger-2_metrics]}"]
  - job_name: blindledger-controller
    static_configs:
      - targets: ["127.0.0.1:${PORT[controller_metrics]}"]
  - job_name: blindledger-audit
    static_configs:
      - targets: ["127.0.0.1:${PORT[audit_metrics]}"]
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:${PORT[prometheus]}"]
EOF
  if command -v promtool >/dev/null 2>&1; then
    promtool check config "$PROM/prometheus.yml.new" >"$LOGS/promtool.log" 2>&1 || {
      cat "$LOGS/promtool.log" >&2
      die "promtool rejects $PROM/prometheus.yml.new"
    }
  fi
  if cmp -s "$PROM/prometheus.yml.new" "$PROM/prometheus.yml"; then
    rm -f "$PROM/prometheus.yml.new"
  else
    mv -f "$PROM/prometheus.yml.new" "$PROM/prometheus.yml"
    # A running Prometheus reads its configuration again on SIGHUP (new ports).
    [[ -z $running ]] || kill -HUP "$(pid_of prometheus)"
  fi
  [[ -z $running ]] || return 0
  local t0=$EPOCHREALTIME deadline=$((SECONDS + READY_TIMEOUT))
  printf '\n=== %s: starting prometheus\n' "$(date -u +%FT%TZ)" >>"$LOGS/prometheus.log"
  (cd "$PROM" && exec setsid "$PROMETHEUS_BIN" --config.file="$PROM/prometheus.yml" \
    --storage.tsdb.path="$PROM/data" --web.listen-address="127.0.0.1:${PORT[prometheus]}" \
    </dev/null >>"$LOGS/prometheus.log" 2>&1 8<&-) &
  echo $! >"$PIDS/prometheus.pid"
  disown 2>/dev/null || true
  until http_get "http://127.0.0.1:${PORT[prometheus]}/-/ready" >/dev/null 2>&1; do
    pid_of prometheus >/dev/null || {
      tail -n 30 "$LOGS/prometheus.log" >&2
      die "prometheus exited while starting"
    }
    ((SECONDS < deadline)) || die "prometheus is not ready after ${READY_TIMEOUT}s"
    sleep 0.2
  done
  log "prometheus ready on http://127.0.0.1:${PORT[prometheus]} after $(since "$t0")s"
}

write_env() {
  local region
  region=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["region"])' \
    "$CONF/ledger-1.toml")
  cat >"$STATE/deploy.env" <<EOF
# The local deployment, for scripts: source it (deploy/local/up.sh env prints it).
LOCAL_STATE=$STATE
LOCAL_CLI=$CLI
LOCAL_REGION=$region
LOCAL_LEDGER1=https://127.0.0.1:${PORT[ledger-1]}
LOCAL_LEDGER2=https://127.0.0.1:${PORT[ledger-2]}
LOCAL_CONTROLLER=https://127.0.0.1:${PORT[controller]}
LOCAL_AUDIT=https://127.0.0.1:${PORT[audit]}
LOCAL_PROMETHEUS=http://127.0.0.1:${PORT[prometheus]}
LOCAL_METRICS_LEDGER1=http://127.0.0.1:${PORT[ledger-1_metrics]}
LOCAL_METRICS_LEDGER2=http://127.0.0.1:${PORT[ledger-2_metrics]}
LOCAL_METRICS_CONTROLLER=http://127.0.0.1:${PORT[controller_metrics]}
LOCAL_METRICS_AUDIT=http://127.0.0.1:${PORT[audit_metrics]}
LOCAL_DB_ROOT_URL=$ROOT_URL
LOCAL_DB_NODES=127.0.0.1:${NODE_PORT[0]},127.0.0.1:${NODE_PORT[1]},127.0.0.1:${NODE_PORT[2]}
LOCAL_DATABASE=$DATABASE
LOCAL_TLS_CA=$ETC/tls/ca.pem
LOCAL_TLS_CERT=$HOME_DIR/operator.pem
LOCAL_TLS_KEY=$HOME_DIR/operator.key
LOCAL_TOKEN_ISSUER_KEY=$HOME_DIR/token-issuer.key
LOCAL_OPERATOR_TOKEN_FILE=$HOME_DIR/operator.token
LOCAL_OFFICER_KEY=$HOME_DIR/officer-1.key
LOCAL_CLI_HOME=$HOME_DIR/cli
EOF
}

lock() {
  mkdir -p "$STATE"
  exec 8<"$STATE"
  flock -w 600 8 || die "another deploy/local/up.sh holds $STATE"
}

# ----- commands --------------------------------------------------------------------------

cmd_up() {
  local t0=$EPOCHREALTIME t
  ensure_tools
  make_dirs
  lock
  load_ports
  t=$EPOCHREALTIME
  make_pki
  make_keys
  make_bundle
  make_tokens
  log "certificates, keys, bundle and tokens ready in $(since "$t")s"
  t=$EPOCHREALTIME
  start_galera
  log "Galera ready in $(since "$t")s: nodes on ports ${NODE_PORT[*]}"
  t=$EPOCHREALTIME
  setup_database
  log "schema migrated, users and grants applied in $(since "$t")s"
  t=$EPOCHREALTIME
  start_services "${SERVICES[@]}"
  log "services listening in $(since "$t")s"
  start_prometheus
  write_env
  t=$EPOCHREALTIME
  wait_bundles || die "the ledgers do not enforce the policy yet; see $LOGS/ledger-1.log"
  log "deployment up in $(since "$t0")s"
  print_summary
}

print_summary() {
  cat <<EOF
ledger-1     https://127.0.0.1:${PORT[ledger-1]}   (metrics http://127.0.0.1:${PORT[ledger-1_metrics]}/metrics)
ledger-2     https://127.0.0.1:${PORT[ledger-2]}   (metrics http://127.0.0.1:${PORT[ledger-2_metrics]}/metrics)
controller   https://127.0.0.1:${PORT[controller]}   (metrics http://127.0.0.1:${PORT[controller_metrics]}/metrics)
audit        https://127.0.0.1:${PORT[audit]}   (metrics http://127.0.0.1:${PORT[audit_metrics]}/metrics)
prometheus   http://127.0.0.1:${PORT[prometheus]}
galera       $ROOT_URL (nodes ${NODE_PORT[*]})
state        $STATE   (addresses: $STATE/deploy.env; CLI: deploy/local/cli.sh)
EOF
}

cmd_status() {
  local name pid ok=1 fmt='%-11s %-8s %-8s %s\n'
  [[ -d $STATE ]] || {
    echo "no local deployment in $STATE"
    return 3
  }
  load_ports
  # shellcheck disable=SC2059
  printf "$fmt" process pid state address
  for name in "${SERVICES[@]}" prometheus; do
    if pid=$(pid_of "$name"); then
      # shellcheck disable=SC2059
      printf "$fmt" "$name" "$pid" running "127.0.0.1:${PORT[$name]:-?}"
    else
      # shellcheck disable=SC2059
      printf "$fmt" "$name" - stopped "127.0.0.1:${PORT[$name]:-?}"
      ok=0
    fi
  done
  echo
  if [[ -f $GALERA_DIR/.blindledger-galera ]]; then
    galera status || ok=0
  else
    echo "galera: no cluster in $GALERA_DIR"
    ok=0
  fi
  ((ok))
}

stop_process() { # NAME...: SIGTERM all, then wait for each (SIGKILL after 60 s)
  local name pid deadline t0=$EPOCHREALTIME
  local -A pids=()
  for name in "$@"; do
    if pid=$(pid_of "$name"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids[$name]=$pid
    fi
  done
  for name in "${!pids[@]}"; do
    pid=${pids[$name]}
    deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; do
      if ((SECONDS >= deadline)); then
        log "$name (pid $pid) did not stop within 60s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
    rm -f "$PIDS/$name.pid"
    log "$name stopped (pid $pid, $(since "$t0")s after SIGTERM)"
  done
}

cmd_down() {
  [[ -d $STATE ]] || {
    log "no local deployment in $STATE"
    return 0
  }
  lock
  stop_process prometheus
  stop_process audit
  stop_process ledger-1 ledger-2
  stop_process controller
  if [[ -f $PIDS/galera.started ]]; then
    galera down || log "warning: 'cluster.sh down' failed"
    rm -f "$PIDS/galera.started"
  fi
}

cmd_destroy() {
  [[ -d $STATE ]] || return 0
  cmd_down
  if [[ $GALERA_DIR == "$STATE"/* && -f $GALERA_DIR/.blindledger-galera ]]; then
    galera destroy
  fi
  rm -rf -- "$STATE"
  log "deleted $STATE"
}

cmd_env() {
  [[ -f $STATE/deploy.env ]] || die "no local deployment in $STATE (run deploy/local/up.sh)"
  cat "$STATE/deploy.env"
}

case ${1:-up} in
up) cmd_up ;;
status) cmd_status ;;
env) cmd_env ;;
down) cmd_down ;;
destroy) cmd_destroy ;;
-h | --help | help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
*)
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
