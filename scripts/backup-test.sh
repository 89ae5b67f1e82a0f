#!/usr/bin/env bash
# End-to-end test of deploy/backup/backup.sh and restore.sh against a real BlindLedger.
#
#   scripts/backup-test.sh
#
# 1. Starts a private MariaDB (binary log on) on the first free port of 3321-3330, data
#    under target/backup-test/, with the service users of `blindledger db grants` and a
#    least-privilege backup user; runs blindledger-ledger and blindledger-audit on it
#    (signed policy, token and checkpoint keys made with the CLI).
# 2. Workload with the CLI (32-bit keys): deposits, transfers, a withdrawal. A full backup
#    is taken while jobs run, more jobs follow, the balances are decrypted and the state
#    recorded (jobs, audit head, a digest of every table's rows), then an incremental backup.
#    One more deposit after it, then the binary logs are archived as a binlog archiver would.
# 3. Restores into fresh servers on other ports, each with a ledger on top:
#    A. full + incremental: the tables are identical to the recorded state, every balance
#       decrypts to the recorded value, the job count matches, `blindledger audit verify`
#       passes against the checkpoints published up to the incremental, and reports the trail
#       truncated against those published later (the deposit after the incremental is lost).
#       RTO: from the start of restore.sh to the restored ledger answering a balance.
#    B. the full backup alone (negative check): the same comparison must find differences.
#    C. full + incremental + binlog replay (point-in-time recovery): the final state, the
#       deposit after the incremental included; audit verify passes against every checkpoint.
#
# Needs the release binaries (cargo build --release --workspace --bins): blindledger,
# blindledger-ledger, blindledger-audit in ${CARGO_TARGET_DIR:-target}/release (or
# $BLINDLEDGER_BIN_DIR). Installs mariadb-server, mariadb-client and mariadb-backup with
# apt-get when missing. Unattended (CI=true); everything it started is stopped on exit.
# BACKUP_TEST_KEEP=1 keeps the data under target/backup-test/ (logs are always kept).
set -euo pipefail

# The helpers of the test suite (apt_install, find_prog, mysql_at, tcp_open...); sourcing
# only defines them.
# shellcheck source=scripts/test.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/test.sh"

log() { printf 'backup-test: %s\n' "$*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}
step() { printf '\n==> %s\n' "$*"; }

TARGET=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
BIN=${BLINDLEDGER_BIN_DIR:-$TARGET/release}
W=$TARGET/backup-test
BACKUP_SH=$REPO_ROOT/deploy/backup/backup.sh
RESTORE_SH=$REPO_ROOT/deploy/backup/restore.sh
TENANT=acme
ACCOUNTS=(alice bob carol)

# What to stop at exit.
SERVICE_PIDS=()     # ledgers and audit services
MARIADB_PID_FILES=() # every mariadbd this script started (source and restored)
USED_PORTS=()

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
json_field() {
  # json_field JSON KEY: a number or string field of a flat JSON object (restore.sh's, the
  # manifests); enough for the values compared here.
  local re="\"$2\": *(\"([^\"]*)\"|([0-9.]+|null))"
  if [[ $1 =~ $re ]]; then printf '%s' "${BASH_REMATCH[2]}${BASH_REMATCH[3]}"; fi
}

# ---- processes -----------------------------------------------------------------------

stop_pid() {
  local pid=$1 what=$2 deadline
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$what (pid $pid) still running after 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# Stops a mariadbd by its pid file, only if that process is a mariadbd of this test.
stop_mariadb() {
  local pid_file=$1 pid
  [[ -s $pid_file ]] || return 0
  pid=$(<"$pid_file")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$W"; then
    stop_pid "$pid" "mariadbd"
  fi
  # mariadbd removes its pid file on a clean shutdown; a killed one leaves it.
  rm -f "$pid_file"
}

cleanup() {
  local status=$? pid f
  trap - EXIT
  for pid in "${SERVICE_PIDS[@]}"; do stop_pid "$pid" "service"; done
  for f in "${MARIADB_PID_FILES[@]}"; do stop_mariadb "$f"; done
  if ((status == 0)) && [[ -z ${BACKUP_TEST_KEEP:-} ]]; then
    # Keep the logs and the report; the data, backups, keys and configurations go.
    rm -rf "${W:?}/src" "${W:?}/backups" "${W:?}/restore-"* "${W:?}/objects" "${W:?}/binlog-archive" \
      "${W:?}/home" "${W:?}/keys" "${W:?}/published" "${W:?}/published-at-incremental" "${W:?}"/*.toml
  fi
  if ((status != 0)); then log "logs: $W/logs/ and the error.log of each server under $W"; fi
  exit "$status"
}

# ---- ports ---------------------------------------------------------------------------

# The first port of LOW-HIGH that nothing listens on and this script has not handed out.
pick_port() {
  local port used
  for port in $(seq "$1" "$2"); do
    for used in "${USED_PORTS[@]}"; do
      if [[ $used == "$port" ]]; then continue 2; fi
    done
    if ! tcp_open 127.0.0.1 "$port"; then
      USED_PORTS+=("$port")
      echo "$port"
      return 0
    fi
  done
  die "no free port in $1-$2"
}

# ---- MariaDB -------------------------------------------------------------------------

ensure_packages() {
  local missing=()
  find_prog mariadbd mysqld >/dev/null || missing+=(mariadb-server)
  find_prog mariadb-install-db mysql_install_db >/dev/null || missing+=(mariadb-server)
  find_prog mariadb mysql >/dev/null || missing+=(mariadb-client)
  find_prog mariadb-binlog mysqlbinlog >/dev/null || missing+=(mariadb-client)
  find_prog mariadb-backup mariabackup >/dev/null || missing+=(mariadb-backup)
  if ((${#missing[@]})); then
    # shellcheck disable=SC2046
    apt_install $(printf '%s\n' "${missing[@]}" | sort -u) || die "cannot install ${missing[*]}"
  fi
}

RUN_AS=""   # the system user mariadbd runs as (root: mysql)
USER_OPT=()

# Starts the source server: start_source PORT
start_source() {
  local port=$1 dir=$W/src mariadbd install_db client
  mariadbd=$(find_prog mariadbd mysqld)
  install_db=$(find_prog mariadb-install-db mysql_install_db)
  client=$(mysql_client)
  mkdir -p "$dir/data"
  if [[ -n $RUN_AS ]]; then chown -R "$RUN_AS:" "$dir"; fi
  "$install_db" --no-defaults "${USER_OPT[@]}" --datadir="$dir/data" \
    --auth-root-authentication-method=normal --skip-test-db >"$W/logs/install-db.log" 2>&1 </dev/null ||
    die "mariadb-install-db failed (log: $W/logs/install-db.log)"
  MARIADB_PID_FILES+=("$dir/mariadbd.pid")
  # The binary log makes point-in-time recovery possible (and records the backup's position).
  "$mariadbd" --no-defaults "${USER_OPT[@]}" --datadir="$dir/data" --socket="$SRC_SOCKET" \
    --pid-file="$dir/mariadbd.pid" --log-error="$dir/error.log" --port="$port" \
    --bind-address=127.0.0.1 --skip-name-resolve --max-allowed-packet=256M \
    --innodb-flush-log-at-trx-commit=1 --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_general_ci --innodb-buffer-pool-size=128M \
    --log-bin=mariadb-bin --server-id=1 --binlog-format=ROW --sync-binlog=1 \
    </dev/null >"$dir/stdout.log" 2>&1 &
  local pid=$! deadline=$((SECONDS + 60))
  until "$client" --no-defaults -S "$SRC_SOCKET" -uroot -e 'SELECT 1' >/dev/null 2>&1 </dev/null; do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/error.log" >&2; die "the source MariaDB exited"; }
    ((SECONDS < deadline)) || die "the source MariaDB did not answer within 60 s"
    sleep 0.2
  done
}

# SQL as root over TCP: sql PORT STATEMENTS
sql() { mysql_at "mysql://root@127.0.0.1:$1" -N -B -e "$2"; }

# Every table of the schema with its row count and a digest of its rows, one per line: the
# sum over rows of the MD5 of every stored column (hex, NULL marked), so row order and page
# layout do not matter. CHECKSUM TABLE is not used: it gave different values for unchanged
# rows of audit_events, which has virtual columns. Left out: the audit importer's bookkeeping, which
# changes with the clock even when nothing happens (audit_cursors: a job-time watermark
# moved every second, compared by row position in state(); audit_job_states: pruned by age).
fingerprint() {
  local port=$1 queries
  # One query per table, built from information_schema (one line each: the client would read
  # an escaped newline as a command).
  queries=$(sql "$port" "SET SESSION group_concat_max_len = 1048576;
    SELECT CONCAT('SELECT CONCAT(''blindledger.', table_name, ' '', COUNT(*), '' '', COALESCE(SUM(CAST(CONV(SUBSTRING(MD5(CONCAT_WS(''|'', ', GROUP_CONCAT(CONCAT('IFNULL(HEX(\`', column_name, '\`), ''-'')') ORDER BY ordinal_position SEPARATOR ', '), ')), 1, 16), 16, 10) AS DECIMAL(20, 0))), 0)) FROM blindledger.\`', table_name, '\`;')
    FROM information_schema.columns
    WHERE table_schema = 'blindledger' AND is_generated = 'NEVER'
      AND table_name NOT IN ('audit_cursors', 'audit_job_states')
    GROUP BY table_name ORDER BY table_name")
  [[ -n $queries ]] || return 1
  sql "$port" "$queries"
}

# What the checks compare: jobs, the audit head and checkpoints, a digest of every table's rows.
state() {
  local port=$1
  sql "$port" "SELECT CONCAT('jobs ', COUNT(*), ' committed ', SUM(state = 'COMMITTED')) FROM blindledger.jobs;
    SELECT CONCAT('audit_head ', size, ' ', hash) FROM blindledger.audit_head;
    SELECT CONCAT('audit_checkpoints ', COUNT(*), ' max_size ', COALESCE(MAX(size), 0)) FROM blindledger.audit_checkpoints;
    SELECT CONCAT('audit_cursor ', name, ' ', position) FROM blindledger.audit_cursors WHERE name <> 'jobs' ORDER BY name;"
  fingerprint "$port"
}

# Waits until the database stops changing (the audit service imported every decision and
# job transition, about 2 s behind the clock, and signed its checkpoint): the state is then
# a well-defined reference point.
wait_quiet() {
  local port=$1 stable_for=${2:-4} previous="" current since=$SECONDS deadline=$((SECONDS + 90))
  while ((SECONDS < deadline)); do
    current=$(state "$port")
    if [[ $current != "$previous" ]]; then
      previous=$current
      since=$SECONDS
    elif ((SECONDS - since >= stable_for)); then
      return 0
    fi
    sleep 1
  done
  diff <(echo "$previous") <(state "$port") | sed 's/^/    /' >&2 || true
  die "the source database kept changing for 90 s (the last change above)"
}

# ---- BlindLedger ---------------------------------------------------------------------

cli() { "$BIN/blindledger" "$@"; }

# write_ledger_config FILE SQL_PORT GRPC_PORT METRICS_PORT OBJECT_DIR INSTANCE
write_ledger_config() {
  cat >"$1" <<EOF
listen_addr = "127.0.0.1:$3"
metrics_addr = "127.0.0.1:$4"
database_url = "mysql://blindledger_ledger:$LEDGER_PW@127.0.0.1:$2/blindledger"
max_connections = 8
object_store_dir = "$5"
region = "local"
workers = 2
instance_id = "$6"
migrate = false
policy_bundle = "$W/keys/policy.tar.gz"
policy_poll_ms = 1000
require_signed_bundles = true

[bundle_keys]
ci = "$W/keys/bundle.pem.pub"

[token_keys]
ci = "$W/keys/token.pem.pub"
EOF
}

# start_ledger NAME CONFIG: runs blindledger-ledger in the background; its pid in LEDGER_PID.
start_ledger() {
  "$BIN/blindledger-ledger" --config "$2" </dev/null >"$W/logs/$1.log" 2>&1 &
  LEDGER_PID=$!
  SERVICE_PIDS+=("$LEDGER_PID")
}
declare -A RESTORE_LEDGER_PID=()

# Waits until the ledger at ENDPOINT answers a balance (decrypted locally): wait_ledger ENDPOINT PID
wait_ledger() {
  local endpoint=$1 pid=$2 deadline=$((SECONDS + 120))
  until cli --endpoint "$endpoint" balance "$TENANT/${ACCOUNTS[0]}" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "the ledger at $endpoint exited (see $W/logs/)"
    ((SECONDS < deadline)) || die "the ledger at $endpoint did not answer within 120 s"
    sleep 0.2
  done
}

balances() {
  local endpoint=$1 account
  for account in "${ACCOUNTS[@]}"; do
    printf '%s %s\n' "$account" "$(cli --endpoint "$endpoint" balance "$TENANT/$account")"
  done
}

audit_verify() {
  local port=$1 published=$2
  cli audit verify --database-url "mysql://root@127.0.0.1:$port/blindledger" \
    --checkpoint-key "audit-1=$W/keys/audit.pem.pub" --published "$published"
}

# ---- checks --------------------------------------------------------------------------

# Compares a restored server with a recorded state; prints each difference and returns 1
# when there is one.
#   compare_restore LABEL SQL_PORT ENDPOINT WANT_STATE WANT_BALANCES PUBLISHED_DIR GOT_STATE
# (GOT_STATE: the restored database's, read before its ledger started.)
compare_restore() {
  local label=$1 port=$2 endpoint=$3 want_state=$4 want_balances=$5 published=$6
  local got_state=$7 got_balances diffs=0 out
  if [[ $got_state != "$want_state" ]]; then
    echo "  [$label] database state differs from the recorded one:"
    diff <(echo "$want_state") <(echo "$got_state") | sed 's/^/    /' || true
    diffs=$((diffs + 1))
  else
    echo "  [$label] jobs, audit head, checkpoints and the rows of all $(grep -c '^blindledger\.' <<<"$got_state") tables identical"
  fi
  got_balances=$(balances "$endpoint") || { echo "  [$label] balances could not be read"; return 1; }
  if [[ $got_balances != "$want_balances" ]]; then
    echo "  [$label] balances differ (recorded | restored):"
    paste -d'|' <(echo "$want_balances") <(echo "$got_balances") | sed 's/^/    /'
    diffs=$((diffs + 1))
  else
    echo "  [$label] balances identical: $(tr '\n' ' ' <<<"$got_balances")"
  fi
  if out=$(audit_verify "$port" "$published" 2>&1); then
    echo "  [$label] audit verify: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
  else
    echo "  [$label] audit verify FAILED: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
    diffs=$((diffs + 1))
  fi
  ((diffs == 0))
}

# restore_into LABEL SQL_PORT [restore.sh args...]: restores, starts mariadbd and a ledger on
# the result; sets RESTORE_JSON, RESTORED_STATE, <LABEL>_ENDPOINT, RTO_<LABEL>.
restore_into() {
  local label=$1 port=$2 dir
  shift 2
  dir=$W/restore-$label
  mkdir -p "$dir"
  if [[ -n $RUN_AS ]]; then chown "$RUN_AS:" "$dir"; fi
  local socket=$dir/mariadbd.sock
  MARIADB_PID_FILES+=("$dir/mariadbd.pid")
  local t0 t_db t_state t_up grpc metrics
  grpc=$(pick_port 50161 50199)
  metrics=$(pick_port 9561 9599)
  write_ledger_config "$dir/ledger.toml" "$port" "$grpc" "$metrics" "$dir/objects" "restore-$label"
  echo "  $RESTORE_SH --target-dir $W/backups --datadir $dir/data --objects-to $dir/objects --start --port $port --socket $socket --pid-file $dir/mariadbd.pid $*"
  t0=$(now_s)
  RESTORE_JSON=$("$RESTORE_SH" --target-dir "$W/backups" --datadir "$dir/data" \
    --objects-to "$dir/objects" --start --port "$port" --socket "$socket" \
    --pid-file "$dir/mariadbd.pid" --log-error "$dir/error.log" "$@" 2>"$W/logs/restore-$label.log") || {
    tail -n 20 "$W/logs/restore-$label.log" >&2
    die "restore.sh failed for $label (log: $W/logs/restore-$label.log)"
  }
  t_db=$(now_s)
  # Recorded before the ledger starts: from then on its own decisions are logged.
  RESTORED_STATE=$(state "$port")
  t_state=$(now_s)
  start_ledger "ledger-restore-$label" "$dir/ledger.toml"
  RESTORE_LEDGER_PID[$label]=$LEDGER_PID
  local deadline=$((SECONDS + 120))
  until tcp_open 127.0.0.1 "$grpc"; do
    kill -0 "$LEDGER_PID" 2>/dev/null || die "the ledger on restore $label exited (see $W/logs/)"
    ((SECONDS < deadline)) || die "the ledger on restore $label did not listen within 120 s"
    sleep 0.1
  done
  eval "LISTEN_${label^^}=$(elapsed "$t_state" "$(now_s)")"
  wait_ledger "http://127.0.0.1:$grpc" "$LEDGER_PID"
  t_up=$(now_s)
  eval "${label^^}_ENDPOINT=http://127.0.0.1:$grpc"
  # RTO: restore.sh (prepare, copy-back, mariadbd answering, binlog replay) plus the ledger's
  # start until it answers; the state query between the two is the test's, not counted.
  eval "RTO_${label^^}=$(awk -v a="$t0" -v b="$t_db" -v c="$t_state" -v d="$t_up" \
    'BEGIN { printf "%.2f", (b - a) + (d - c) }')"
  eval "RESTORE_WALL_${label^^}=$(elapsed "$t0" "$t_up")"
}

stop_restore() {
  local label=$1
  stop_pid "${RESTORE_LEDGER_PID[$label]}" "ledger restore-$label"
  stop_mariadb "$W/restore-$label/mariadbd.pid"
}

# ---- main ----------------------------------------------------------------------------

main() {
  cd "$REPO_ROOT"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local t_begin=$SECONDS
  LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
  # The services read BLINDLEDGER_LEDGER_* and BLINDLEDGER_AUDIT_* variables over their
  # files (and the ledger refuses to start with a former BLINDLEDGER_<KEY> one), and the
  # CLI its own: none from the caller's environment may change the run.
  local v
  for v in $(compgen -e | grep '^BLINDLEDGER_' || true); do
    if [[ $v != BLINDLEDGER_BIN_DIR ]]; then unset "$v"; fi
  done

  step "[1/6] binaries, MariaDB packages, a private source server"
  local b
  for b in blindledger blindledger-ledger blindledger-audit; do
    [[ -x $BIN/$b ]] || die "$BIN/$b missing: cargo build --release --workspace --bins"
  done
  ensure_packages
  if [[ $EUID -eq 0 ]]; then
    if id mysql >/dev/null 2>&1; then RUN_AS=mysql; USER_OPT=(--user=mysql); else USER_OPT=(--user=root); fi
  fi
  # Stop what an interrupted run left (its mariadbds hold the pid files below).
  local f
  for f in "$W"/src/mariadbd.pid "$W"/restore-*/mariadbd.pid; do
    if [[ -f $f ]]; then stop_mariadb "$f"; fi
  done
  rm -rf "$W"
  mkdir -p "$W/logs" "$W/keys" "$W/home" "$W/objects" "$W/published" "$W/backups"
  if [[ -n $RUN_AS ]] && ! runuser -u "$RUN_AS" -- test -x "$W" 2>/dev/null; then
    # A checkout under /root, which mysql cannot enter: the data goes to /tmp instead.
    rm -rf "$W"
    W=$(mktemp -d "${TMPDIR:-/tmp}/blindledger-backup-test.XXXXXX")
    chmod 755 "$W"
    mkdir -p "$W/logs" "$W/keys" "$W/home" "$W/objects" "$W/published" "$W/backups"
    log "data under $W ($RUN_AS cannot reach $TARGET)"
  fi
  SRC_SOCKET=$W/src/mariadbd.sock
  if ((${#SRC_SOCKET} > 100)); then SRC_SOCKET=$(mktemp -u "${TMPDIR:-/tmp}/bl-bt.XXXXXX").sock; fi
  local src_port
  src_port=$(pick_port 3321 3330)
  start_source "$src_port"
  echo "  source MariaDB on 127.0.0.1:$src_port (log_bin on), data in $W/src/data"

  LEDGER_PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  AUDIT_PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  local controller_pw backup_pw
  controller_pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  backup_pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$backup_pw" >"$W/keys/backup.password"
  chmod 600 "$W/keys/backup.password"
  # Name resolution is off: TCP clients from 127.0.0.1 need accounts for that address.
  "$(mysql_client)" --no-defaults -S "$SRC_SOCKET" -uroot -e "
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" </dev/null
  sql "$src_port" "SELECT 1" >/dev/null || die "root@127.0.0.1 cannot log in"
  sql "$src_port" "CREATE DATABASE blindledger CHARACTER SET utf8mb4;
    CREATE USER 'blindledger_ledger'@'%' IDENTIFIED BY '$LEDGER_PW';
    CREATE USER 'blindledger_controller'@'%' IDENTIFIED BY '$controller_pw';
    CREATE USER 'blindledger_audit'@'%' IDENTIFIED BY '$AUDIT_PW';
    CREATE USER 'blindledger_backup'@'localhost' IDENTIFIED BY '$backup_pw';
    GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO 'blindledger_backup'@'localhost';"
  cli db migrate --database-url "mysql://root@127.0.0.1:$src_port/blindledger" >/dev/null
  cli db grants --database blindledger | "$(mysql_client)" --no-defaults -S "$SRC_SOCKET" -uroot ||
    die "applying the service grants failed"
  echo "  schema migrated; service users with their grants; backup user with RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR"

  step "[2/6] keys, signed policy, ledger and audit service on the source"
  cli policy keygen "$W/keys/bundle.pem" >/dev/null
  cli policy keygen "$W/keys/token.pem" >/dev/null
  cli policy keygen "$W/keys/audit.pem" >/dev/null
  cli policy build "$REPO_ROOT/policies" -o "$W/keys/policy.tar.gz" --revision backup-test >/dev/null
  cli policy sign "$W/keys/policy.tar.gz" --key "$W/keys/bundle.pem" --kid ci >/dev/null
  export BLINDLEDGER_HOME=$W/home
  BLINDLEDGER_TOKEN=$(cli token issue --sub backup-test --role admin --audience all \
    --key "$W/keys/token.pem" --kid ci --ttl 2h)
  export BLINDLEDGER_TOKEN
  export BLINDLEDGER_OUTPUT=text
  local grpc metrics audit_port
  grpc=$(pick_port 50151 50160)
  metrics=$(pick_port 9551 9560)
  audit_port=$(pick_port 8151 8199)
  write_ledger_config "$W/ledger.toml" "$src_port" "$grpc" "$metrics" "$W/objects" source
  cat >"$W/audit.toml" <<EOF
listen_addr = "127.0.0.1:$audit_port"
database_url = "mysql://blindledger_audit:$AUDIT_PW@127.0.0.1:$src_port/blindledger"
migrate = false
policy_bundle = "$W/keys/policy.tar.gz"
policy_poll_ms = 1000
checkpoint_key = "$W/keys/audit.pem"
checkpoint_key_id = "audit-1"
checkpoint_interval_ms = 1000
checkpoint_publish_dir = "$W/published"

[bundle_keys]
ci = "$W/keys/bundle.pem.pub"

[token_keys]
ci = "$W/keys/token.pem.pub"
EOF
  start_ledger ledger-source "$W/ledger.toml"
  local ledger_pid=$LEDGER_PID
  "$BIN/blindledger-audit" --config "$W/audit.toml" </dev/null >"$W/logs/audit-source.log" 2>&1 &
  local audit_pid=$!
  SERVICE_PIDS+=("$audit_pid")
  export BLINDLEDGER_ENDPOINT=http://127.0.0.1:$grpc
  local deadline=$((SECONDS + 60))
  until tcp_open 127.0.0.1 "$grpc" && tcp_open 127.0.0.1 "$audit_port"; do
    kill -0 "$ledger_pid" 2>/dev/null || die "the ledger exited (log: $W/logs/ledger-source.log)"
    kill -0 "$audit_pid" 2>/dev/null || die "the audit service exited (log: $W/logs/audit-source.log)"
    ((SECONDS < deadline)) || die "the services did not listen within 60 s"
    sleep 0.2
  done
  echo "  ledger $BLINDLEDGER_ENDPOINT, audit service http://127.0.0.1:$audit_port (checkpoints every second, published to $W/published)"

  step "[3/6] workload, a full backup under load, more jobs, an incremental backup"
  local t=$SECONDS
  cli keys new --tenant "$TENANT" --width 32 >/dev/null
  local a
  for a in "${ACCOUNTS[@]}"; do cli account open "$TENANT/$a" >/dev/null; done
  cli deposit "$TENANT/alice" 100.00 --wait >/dev/null
  cli deposit "$TENANT/bob" 50.00 --wait >/dev/null
  cli transfer "$TENANT/alice" "$TENANT/bob" 25.50 --wait >/dev/null
  echo "  keys (32-bit), 3 accounts, 2 deposits, 1 transfer: $((SECONDS - t)) s"

  # The full backup runs while two jobs are queued and computing.
  cli deposit "$TENANT/carol" 30.00 --wait >"$W/logs/job-carol.out" 2>&1 &
  local job1=$!
  cli transfer "$TENANT/bob" "$TENANT/carol" 10.00 --wait >"$W/logs/job-bob-carol.out" 2>&1 &
  local job2=$!
  sleep 0.5
  local backup_args=(--target-dir "$W/backups" --socket "$SRC_SOCKET" --user blindledger_backup
    --password-file "$W/keys/backup.password" --no-defaults --object-store "$W/objects")
  echo "  $BACKUP_SH full ${backup_args[*]}"
  local full_dir
  full_dir=$("$BACKUP_SH" full "${backup_args[@]}" 2>"$W/logs/backup-full.log") || {
    cat "$W/logs/backup-full.log" >&2
    die "the full backup failed"
  }
  local open_jobs
  open_jobs=$(sql "$src_port" "SELECT COUNT(*) FROM blindledger.jobs WHERE state <> 'COMMITTED'")
  wait "$job1" || die "deposit during the backup failed: $(cat "$W/logs/job-carol.out")"
  wait "$job2" || die "transfer during the backup failed: $(cat "$W/logs/job-bob-carol.out")"
  echo "  full backup $(basename "$full_dir") taken with jobs in flight ($open_jobs not committed when it ended)"

  cli deposit "$TENANT/alice" 12.34 --wait >/dev/null
  cli transfer "$TENANT/carol" "$TENANT/alice" 5.00 --wait >/dev/null
  cli withdraw "$TENANT/bob" 3.21 --wait >/dev/null
  local t_bal
  t_bal=$(now_s)
  REF_BALANCES=$(balances "$BLINDLEDGER_ENDPOINT")
  BALANCE_CALL_S=$(awk -v a="$t_bal" -v b="$(now_s)" -v n="${#ACCOUNTS[@]}" 'BEGIN { printf "%.2f", (b - a) / n }')
  local expected="alice 91.84
bob 62.29
carol 35.00"
  [[ $REF_BALANCES == "$expected" ]] ||
    die "the workload itself went wrong: balances $(tr '\n' ' ' <<<"$REF_BALANCES"), expected $(tr '\n' ' ' <<<"$expected")"
  wait_quiet "$src_port"
  REF_STATE=$(state "$src_port")
  echo "  recorded before the incremental: $(head -n 3 <<<"$REF_STATE" | tr '\n' ';') balances $(tr '\n' ' ' <<<"$REF_BALANCES")"
  echo "  $BACKUP_SH incremental ${backup_args[*]}"
  local incr_dir
  incr_dir=$("$BACKUP_SH" incremental "${backup_args[@]}" 2>"$W/logs/backup-incr.log") || {
    cat "$W/logs/backup-incr.log" >&2
    die "the incremental backup failed"
  }
  local after
  after=$(state "$src_port")
  if [[ $after != "$REF_STATE" ]]; then
    diff <(echo "$REF_STATE") <(echo "$after") | sed 's/^/    /' >&2 || true
    die "the source changed while the incremental backup ran: no well-defined reference point"
  fi
  # The published checkpoints as an off-host copy had them when the incremental was taken.
  cp -a "$W/published" "$W/published-at-incremental"
  if grep -h 'missing required privilege' "$full_dir/backup.log" "$incr_dir/backup.log"; then
    die "the backup user lacks a privilege mariabackup asks for"
  fi

  # After the last incremental: lost by a restore of the chain, recovered from the binlogs.
  cli deposit "$TENANT/alice" 0.66 --wait >/dev/null
  FINAL_BALANCES=$(balances "$BLINDLEDGER_ENDPOINT")
  wait_quiet "$src_port"
  FINAL_STATE=$(state "$src_port")
  local ckpt_incr ckpt_final
  ckpt_incr=$(find "$W/published-at-incremental" -type f | wc -l)
  ckpt_final=$(find "$W/published" -type f | wc -l)
  ((ckpt_final > ckpt_incr)) || die "no checkpoint was published after the incremental backup"
  # Binlog archiving: close the current binlog and copy the closed ones.
  sql "$src_port" "FLUSH BINARY LOGS"
  mkdir -p "$W/binlog-archive"
  cp "$W"/src/data/mariadb-bin.[0-9]* "$W/binlog-archive/"
  echo "  after the incremental: deposit 0.66 into alice (alice $(grep '^alice' <<<"$FINAL_BALANCES" | cut -d' ' -f2)); binlogs archived; published checkpoints $ckpt_incr -> $ckpt_final"

  stop_pid "$ledger_pid" "source ledger"
  stop_pid "$audit_pid" "source audit service"
  stop_mariadb "$W/src/mariadbd.pid"
  echo "  source services and server stopped"

  local full_manifest incr_manifest
  full_manifest=$(cat "$full_dir/backup-manifest.json")
  incr_manifest=$(cat "$incr_dir/backup-manifest.json")

  step "[4/6] restore A: full + incremental"
  local port_a
  port_a=$(pick_port 3321 3330)
  restore_into a "$port_a"
  local json_a=$RESTORE_JSON
  compare_restore a "$port_a" "$A_ENDPOINT" "$REF_STATE" "$REF_BALANCES" \
    "$W/published-at-incremental" "$RESTORED_STATE" ||
    die "restore A does not match the state recorded at the incremental backup"
  local out
  if out=$(audit_verify "$port_a" "$W/published" 2>&1); then
    die "audit verify passed against checkpoints published after the incremental: $out"
  fi
  echo "  [a] against every published checkpoint, as expected: $(grep -m1 -iE 'truncat|row [0-9]+' <<<"$out" || tail -n 1 <<<"$out")"
  local lost_a
  lost_a=$(cli --endpoint "$A_ENDPOINT" balance "$TENANT/alice")
  [[ $lost_a == "91.84" ]] || die "restore A: alice is $lost_a, expected 91.84"
  echo "  [a] the deposit after the incremental is lost: alice $lost_a (source: 92.50)"
  stop_restore a

  step "[5/6] restore B: the full backup alone (negative check: must differ)"
  local port_b
  port_b=$(pick_port 3321 3330)
  restore_into b "$port_b" --until "$(basename "$full_dir")"
  local json_b=$RESTORE_JSON
  if compare_restore b "$port_b" "$B_ENDPOINT" "$REF_STATE" "$REF_BALANCES" \
    "$W/published-at-incremental" "$RESTORED_STATE"; then
    die "the checks found no difference between the full backup alone and the recorded state"
  fi
  echo "  [b] differences detected: the checks can fail"
  stop_restore b

  step "[6/6] restore C: full + incremental + binlog replay (point-in-time recovery)"
  local port_c
  port_c=$(pick_port 3321 3330)
  restore_into c "$port_c" --binlog-dir "$W/binlog-archive"
  local json_c=$RESTORE_JSON
  compare_restore c "$port_c" "$C_ENDPOINT" "$FINAL_STATE" "$FINAL_BALANCES" \
    "$W/published" "$RESTORED_STATE" ||
    die "restore C does not match the final state of the source"
  stop_restore c

  # ---- figures -------------------------------------------------------------------------
  local report=$W/report.txt
  {
    echo "BlindLedger backup/restore test, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), $("$(find_prog mariadbd mysqld)" --version | sed 's/.*Ver //; s/ for .*//')"
    echo "load average when the test started: $LOAD_AT_START (1, 5, 15 min)"
    echo "data: 1 tenant (32-bit keys), 3 accounts, $(head -n 1 <<<"$FINAL_STATE" | cut -d' ' -f2) jobs; server key in the object store $(mb "$(du -sb "$W/objects" | cut -f1)")"
    echo
    printf '%-38s %6s s  %s\n' "full backup (jobs running)" "$(json_field "$full_manifest" duration_s)" \
      "database $(mb "$(json_field "$full_manifest" size_bytes)") in $(json_field "$full_manifest" mariabackup_duration_s) s (mariabackup), then the object store copy"
    printf '%-38s %6s s  %s\n' "incremental backup" "$(json_field "$incr_manifest" duration_s)" \
      "database $(mb "$(json_field "$incr_manifest" size_bytes)") in $(json_field "$incr_manifest" mariabackup_duration_s) s (mariabackup), object store hard-linked"
    local l j
    for l in a b c; do
      case $l in a) j=$json_a ;; b) j=$json_b ;; c) j=$json_c ;; esac
      local rto_var="RTO_${l^^}" listen_var="LISTEN_${l^^}"
      printf '%-38s %6s s  restore.sh %s (prepare %s, copy-back %s, mariadbd start %s, binlog replay %s);\n%46s ledger listening after %s, first balance decrypted after %s\n' \
        "restore $l: RTO (to ledger answering)" "${!rto_var}" "$(json_field "$j" total_s)" \
        "$(json_field "$j" prepare_s)" "$(json_field "$j" copy_back_s)" "$(json_field "$j" start_s)" \
        "$(json_field "$j" binlog_replay_s)" "" "${!listen_var}" \
        "$(awk -v r="${!rto_var}" -v t="$(json_field "$j" total_s)" 'BEGIN { printf "%.2f", r - t }')"
    done
    echo "  (one \`blindledger balance\`: process start, fetch, local decryption: ${BALANCE_CALL_S} s on the source)"
    echo "  (a: full + incremental; b: full only, the negative check, whose ledger first finishes"
    echo "  the jobs that were running during the full backup; c: a + binlog replay)"
    echo
    echo "RPO: by construction the incremental interval (15 minutes on the schedule of"
    echo "  deploy/backup/README.md): whatever commits after the last incremental is lost by a"
    echo "  restore of the chain (here the 0.66 deposit, restore a), unless the binary logs are"
    echo "  archived and replayed (restore c: recovered). audit verify against the published"
    echo "  checkpoints reports such a loss as a truncated trail."
    echo "total test time: $((SECONDS - t_begin)) s"
  } | tee "$report"
  echo
  echo "backup-test: OK (report: $report)"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
