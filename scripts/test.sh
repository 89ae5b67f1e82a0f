#!/usr/bin/env bash
# BlindLedger's single test command: formatting, alert rules and dashboards (promtool), lints,
# every test of the workspace (in the release profile, which `cargo run --release` shares),
# then the shipped policy's Rego tests.
#
#   scripts/test.sh [extra `cargo test` arguments...]
#
# Integration tests need MariaDB, found in this order:
#   1. $BLINDLEDGER_TEST_MYSQL_URL, if set (e.g. mysql://root:pw@db.example:3306);
#   2. a server on 127.0.0.1:3306 that lets root in without a password;
#   3. otherwise a private server, started on the first free port of 3307-3320 with its data,
#      socket, pid file and logs under target/mariadb/<port>/, and stopped when this script
#      exits. mariadb-server is installed with apt-get if missing (as root, or with sudo -n).
#
# The cluster fault tests (services/ledger/tests/galera) need the local three-node MariaDB
# Galera cluster of deploy/galera/cluster.sh: started here when it is not running (packages
# installed with apt-get when missing) and stopped again at exit; data under target/galera.
# Their short soak starts a second cluster whose nodes run in network namespaces (root only;
# target/galera-netns), destroyed again at exit; scripts/soak.sh runs the long soak.
#
# Works unattended (CI=true, no stdin) on Debian bookworm with a Rust toolchain (rustup; the
# version comes from rust-toolchain.toml). Sourcing this file only defines its functions, e.g.
#   source scripts/test.sh; ensure_mariadb mysql://root@127.0.0.1:1; ...; stop_private_mariadb
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# What a private server started by this script left to stop.
MARIADB_PRIVATE_PID=""
MARIADB_PRIVATE_DIR=""
MARIADB_PRIVATE_SOCKET_DIR=""
APT_UPDATED=""

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
header() { printf '\n==> %s\n' "$*"; }

# Runs a command as root: directly, or through passwordless sudo.
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    log "need root to run: $*"
    return 1
  fi
}

# Installs Debian packages quietly; prints the apt log if that fails.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || {
    log "apt-get not found: install $* by hand"
    return 1
  }
  mkdir -p "$REPO_ROOT/target"
  local apt_log="$REPO_ROOT/target/apt-get.log"
  log "installing $* with apt-get (log: $apt_log)"
  if [[ -z $APT_UPDATED ]]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$apt_log" 2>&1 || {
      tail -n 30 "$apt_log" >&2
      return 1
    }
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "$@" </dev/null >>"$apt_log" 2>&1 || {
    tail -n 30 "$apt_log" >&2
    return 1
  }
}

# Prints the path of the first of the named programs found (also in the sbin directories,
# which a non-root PATH may lack).
find_prog() {
  local name dir
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
    for dir in /usr/sbin /sbin /usr/local/sbin; do
      if [[ -x $dir/$name ]]; then
        echo "$dir/$name"
        return 0
      fi
    done
  done
  return 1
}

mysql_client() { find_prog mariadb mysql; }

# Splits mysql://[user[:password]@]host[:port][/db][?params] into URL_USER (default root),
# URL_PASS, URL_HOST and URL_PORT (default 3306). No percent-decoding.
parse_mysql_url() {
  local rest=${1#*://} auth="" hostport
  rest=${rest%%[/?#]*}
  if [[ $rest == *@* ]]; then
    auth=${rest%@*}
    hostport=${rest##*@}
  else
    hostport=$rest
  fi
  URL_USER=${auth%%:*}
  URL_PASS=""
  if [[ $auth == *:* ]]; then URL_PASS=${auth#*:}; fi
  URL_PORT=""
  if [[ $hostport == \[* ]]; then
    URL_HOST=${hostport%%]*}
    URL_HOST=${URL_HOST#[}
    hostport=${hostport#*]}
    URL_PORT=${hostport#:}
  else
    URL_HOST=${hostport%%:*}
    if [[ $hostport == *:* ]]; then URL_PORT=${hostport##*:}; fi
  fi
  URL_USER=${URL_USER:-root}
  URL_PORT=${URL_PORT:-3306}
}

# Runs the MariaDB client against a mysql:// URL over TCP: mysql_at URL [client args...].
mysql_at() {
  local url=$1 client
  shift
  client=$(mysql_client) || return 1
  parse_mysql_url "$url"
  local -a pass=()
  if [[ -n $URL_PASS ]]; then pass=("MYSQL_PWD=$URL_PASS"); fi
  env "${pass[@]}" "$client" --no-defaults --protocol=TCP --connect-timeout=5 \
    -h "$URL_HOST" -P "$URL_PORT" -u "$URL_USER" "$@" </dev/null
}

# Whether something accepts TCP connections on host:port.
tcp_open() {
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# Whether the server at URL accepts the URL's credentials.
mysql_answers() { mysql_at "$1" -e 'SELECT 1' >/dev/null 2>&1; }

# Best effort: lets tests send big ciphertexts and keys.
raise_max_allowed_packet() {
  if mysql_at "$1" -e 'SET GLOBAL max_allowed_packet = 268435456' >/dev/null 2>&1; then
    log "MariaDB: max_allowed_packet raised to 256M"
  else
    log "MariaDB: could not raise max_allowed_packet (continuing)"
  fi
}

# Makes MariaDB reachable for the tests and exports BLINDLEDGER_TEST_MYSQL_URL.
#   ensure_mariadb [probe_url]   (default mysql://root@127.0.0.1:3306)
ensure_mariadb() {
  local probe_url=${1:-mysql://root@127.0.0.1:3306}
  if [[ -n ${BLINDLEDGER_TEST_MYSQL_URL:-} ]]; then
    log "MariaDB: using BLINDLEDGER_TEST_MYSQL_URL"
    if mysql_client >/dev/null; then
      mysql_answers "$BLINDLEDGER_TEST_MYSQL_URL" ||
        log "warning: MariaDB at BLINDLEDGER_TEST_MYSQL_URL does not answer; tests will fail"
      raise_max_allowed_packet "$BLINDLEDGER_TEST_MYSQL_URL"
    fi
    export BLINDLEDGER_TEST_MYSQL_URL
    return 0
  fi

  parse_mysql_url "$probe_url"
  if tcp_open "$URL_HOST" "$URL_PORT"; then
    if ! mysql_client >/dev/null; then
      apt_install mariadb-client || log "warning: no MariaDB client to check $URL_HOST:$URL_PORT"
    fi
    if mysql_answers "$probe_url"; then
      log "MariaDB: using the server on $URL_HOST:$URL_PORT"
      export BLINDLEDGER_TEST_MYSQL_URL=$probe_url
      raise_max_allowed_packet "$probe_url"
      return 0
    fi
    log "MariaDB: $URL_HOST:$URL_PORT does not let $URL_USER in; starting a private server"
  else
    log "MariaDB: nothing on $URL_HOST:$URL_PORT; starting a private server"
  fi
  start_private_mariadb
}

# Prints the first port of 3307-3320 nothing listens on.
free_port() {
  local port
  for port in $(seq 3307 3320); do
    if ! tcp_open 127.0.0.1 "$port"; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# Starts a private MariaDB on 127.0.0.1:<free port> and exports BLINDLEDGER_TEST_MYSQL_URL.
# stop_private_mariadb stops it (main does so on exit).
start_private_mariadb() {
  local mariadbd install_db client
  if ! mariadbd=$(find_prog mariadbd mysqld) || ! install_db=$(find_prog mariadb-install-db mysql_install_db); then
    apt_install mariadb-server mariadb-client || die "cannot install mariadb-server; install it or set BLINDLEDGER_TEST_MYSQL_URL"
    mariadbd=$(find_prog mariadbd mysqld) || die "mariadbd not found after installing mariadb-server"
    install_db=$(find_prog mariadb-install-db mysql_install_db) || die "mariadb-install-db not found"
  fi
  if ! client=$(mysql_client); then
    apt_install mariadb-client || die "cannot install mariadb-client"
    client=$(mysql_client) || die "the MariaDB client is missing after installing it"
  fi

  local port
  port=$(free_port) || die "no free port in 3307-3320 for a private MariaDB"

  # As root, mariadbd runs as `mysql`, which must be able to reach its directories.
  local -a user_opt=()
  local owner=""
  if [[ $EUID -eq 0 ]]; then
    if id mysql >/dev/null 2>&1; then
      user_opt=(--user=mysql)
      owner=mysql
    else
      user_opt=(--user=root)
    fi
  fi

  local dir="$REPO_ROOT/target/mariadb/$port"
  rm -rf "$dir"
  mkdir -p "$dir/data"
  if [[ -n $owner ]]; then
    chown -R "$owner:" "$dir"
    if ! runuser -u "$owner" -- test -w "$dir" 2>/dev/null; then
      # e.g. a checkout under /root, which `mysql` cannot enter.
      rm -rf "$dir"
      dir=$(mktemp -d "${TMPDIR:-/tmp}/blindledger-mariadb.XXXXXX")
      mkdir -p "$dir/data"
      chown -R "$owner:" "$dir"
      chmod 755 "$dir"
    fi
  fi
  MARIADB_PRIVATE_DIR=$dir

  # Unix socket paths are limited to ~107 bytes.
  local socket="$dir/mariadbd.sock"
  if ((${#socket} > 100)); then
    MARIADB_PRIVATE_SOCKET_DIR=$(mktemp -d "${TMPDIR:-/tmp}/bl-mdb.XXXXXX")
    chmod 755 "$MARIADB_PRIVATE_SOCKET_DIR"
    if [[ -n $owner ]]; then chown "$owner:" "$MARIADB_PRIVATE_SOCKET_DIR"; fi
    socket="$MARIADB_PRIVATE_SOCKET_DIR/mariadbd.sock"
  fi

  log "MariaDB: initialising a private server in $dir"
  # Grants stay on; root@localhost gets no password and no unix_socket-only login.
  "$install_db" --no-defaults "${user_opt[@]}" --datadir="$dir/data" \
    --auth-root-authentication-method=normal --skip-test-db \
    >"$dir/install.log" 2>&1 </dev/null || {
    tail -n 30 "$dir/install.log" >&2
    die "mariadb-install-db failed (log: $dir/install.log)"
  }

  "$mariadbd" --no-defaults "${user_opt[@]}" \
    --datadir="$dir/data" --socket="$socket" --pid-file="$dir/mariadbd.pid" \
    --log-error="$dir/error.log" --port="$port" --bind-address=127.0.0.1 \
    --skip-name-resolve --max-allowed-packet=256M --innodb-flush-log-at-trx-commit=1 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --max-connections=500 --innodb-buffer-pool-size=256M \
    </dev/null >"$dir/stdout.log" 2>&1 &
  MARIADB_PRIVATE_PID=$!

  # Ready when the client gets in through the socket (bounded: 60 s).
  local deadline=$((SECONDS + 60))
  until "$client" --no-defaults -S "$socket" -uroot -e 'SELECT 1' >/dev/null 2>&1 </dev/null; do
    if ! kill -0 "$MARIADB_PRIVATE_PID" 2>/dev/null; then
      tail -n 30 "$dir/error.log" >&2 || true
      MARIADB_PRIVATE_PID=""
      die "the private MariaDB exited during start-up (log: $dir/error.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$dir/error.log" >&2 || true
      die "the private MariaDB did not answer within 60 s (log: $dir/error.log)"
    fi
    sleep 0.2
  done

  # Tests connect over TCP as root@127.0.0.1 (name resolution is off), without password.
  "$client" --no-defaults -S "$socket" -uroot </dev/null -e "
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" ||
    die "could not create root@127.0.0.1 on the private MariaDB"

  local url="mysql://root@127.0.0.1:$port"
  mysql_answers "$url" || die "the private MariaDB does not answer on $url"
  export BLINDLEDGER_TEST_MYSQL_URL=$url
  log "MariaDB: private server ready on $url (pid $MARIADB_PRIVATE_PID)"
}

# Stops the private server, if this shell started one, and deletes its data (logs stay).
stop_private_mariadb() {
  local pid=$MARIADB_PRIVATE_PID
  [[ -n $pid ]] || return 0
  MARIADB_PRIVATE_PID=""
  if kill -0 "$pid" 2>/dev/null; then
    log "MariaDB: stopping the private server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "MariaDB: still running after 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  if [[ -n $MARIADB_PRIVATE_DIR ]]; then rm -rf "$MARIADB_PRIVATE_DIR/data"; fi
  if [[ -n $MARIADB_PRIVATE_SOCKET_DIR ]]; then rm -rf "$MARIADB_PRIVATE_SOCKET_DIR"; fi
  MARIADB_PRIVATE_SOCKET_DIR=""
}

# The Rust toolchain of rust-toolchain.toml, and a C compiler (bundled SQLite, linking).
ensure_toolchain() {
  if ! command -v cargo >/dev/null 2>&1 && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 ||
    die "cargo not found: install Rust with rustup (https://rustup.rs); rust-toolchain.toml picks the version"
  if command -v rustup >/dev/null 2>&1 && [[ -f $REPO_ROOT/rust-toolchain.toml ]]; then
    local line channel="" installed
    while IFS= read -r line; do
      if [[ $line =~ ^[[:space:]]*channel[[:space:]]*=[[:space:]]*\"([^\"]+)\" ]]; then
        channel=${BASH_REMATCH[1]}
        break
      fi
    done <"$REPO_ROOT/rust-toolchain.toml"
    installed=$(rustup toolchain list 2>/dev/null || true)
    if [[ -n $channel && $'\n'$installed != *$'\n'"$channel"* ]]; then
      log "installing Rust $channel with rustup"
      rustup toolchain install "$channel" --profile minimal -c rustfmt -c clippy </dev/null >/dev/null
    fi
  fi
  if ! command -v cc >/dev/null 2>&1; then
    apt_install build-essential || die "no C compiler (cc): install build-essential"
  fi
  log "$(cargo --version)"
}

GALERA_STARTED=""
# Starts the local Galera cluster unless it runs already.
ensure_galera() {
  local cluster="$REPO_ROOT/deploy/galera/cluster.sh"
  if bash "$cluster" status >/dev/null 2>&1; then
    log "Galera: the local cluster is running"
    return 0
  fi
  log "Galera: starting the local three-node cluster"
  GALERA_STARTED=1
  bash "$cluster" up || die "the Galera cluster did not start (see target/galera/*/error.log)"
}

# Stops the cluster if this script started it (its data stays for the next run).
stop_galera() {
  [[ -n $GALERA_STARTED ]] || return 0
  GALERA_STARTED=""
  log "Galera: stopping the local cluster"
  bash "$REPO_ROOT/deploy/galera/cluster.sh" down || true
}

# The dashboard's browser test drives Debian's headless Chromium through chromedriver.
ensure_chromium() {
  if [[ -x /usr/bin/chromedriver && -x /usr/bin/chromium ]]; then
    log "Chromium: $(/usr/bin/chromium --version 2>/dev/null || echo installed)"
    return 0
  fi
  apt_install chromium chromium-driver || die "the dashboard tests need chromium and chromium-driver"
}

# openssl makes the keys and signatures of the independent OPA-bundle and identity-provider
# token producers in the policy and gate tests.
ensure_openssl() {
  if command -v openssl >/dev/null 2>&1; then
    log "openssl: $(openssl version)"
    return 0
  fi
  apt_install openssl || die "the signature tests need the openssl command: apt-get install openssl"
}

# The JavaScript and Python clients' test needs node and npm, and python3 with venv.
ensure_client_tools() {
  local missing=()
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
  if ((${#missing[@]})); then
    apt_install "${missing[@]}" || die "the client tests need: ${missing[*]}"
  fi
  log "clients: node $(node --version), npm $(npm --version), $(python3 --version)"
}

# promtool (Debian's prometheus package) checks the alert rules and their unit tests.
ensure_promtool() {
  if command -v promtool >/dev/null 2>&1; then
    log "promtool: $(promtool --version 2>&1 | head -n 1)"
    return 0
  fi
  apt_install prometheus || die "the alert rule checks need promtool: apt-get install prometheus"
}

# The alert rules and their unit tests, and every Grafana panel's query: each dashboard's
# expressions are written into a rules file (Grafana's variables replaced) for promtool to
# parse, so a typo in a panel fails here as one in an alert does.
check_observability() {
  local out="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/tmp/observability"
  mkdir -p "$out"
  promtool check rules deploy/prometheus/alerts.yml
  promtool test rules deploy/prometheus/alerts_test.yml
  python3 - "$out/dashboard-rules.yml" deploy/grafana/*.json <<'PY'
import json, sys
out, dashboards = sys.argv[1], sys.argv[2:]
rules = []
for path in dashboards:
    with open(path) as f:
        dashboard = json.load(f)
    assert dashboard.get("uid") and dashboard.get("title"), f"{path}: no uid or title"
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = (target["expr"].replace("$__rate_interval", "5m")
                    .replace("${datasource}", "prometheus").replace("$service", ".*"))
            rules.append({"record": "grafana_panel_%d" % len(rules), "expr": expr})
    print(f"{path}: {len(rules)} panel queries")
with open(out, "w") as f:
    json.dump({"groups": [{"name": "dashboards", "rules": rules}]}, f)
PY
  promtool check rules "$out/dashboard-rules.yml"
}

S3_PID=""
S3S_FS_VERSION=0.14.1
# The object store tests need an S3-compatible server: s3s-fs (an S3 server over a local
# directory, from crates.io: no binary download, no container), installed once under
# target/tools and started on a free port with a random key pair; every bucket is a
# directory of its root. Exports BLINDLEDGER_TEST_S3_{ENDPOINT,ACCESS_KEY,SECRET_KEY,BUCKET};
# stopped at exit.
ensure_s3_server() {
  local target="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
  local tools="$target/tools"
  local bin="$tools/bin/s3s-fs"
  if [[ ! -x $bin ]] || ! "$bin" --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
    log "S3: installing s3s-fs $S3S_FS_VERSION from crates.io into $tools (log: $target/s3s-fs-install.log)"
    mkdir -p "$tools"
    cargo install --quiet --locked --root "$tools" --version "$S3S_FS_VERSION" \
      --features binary s3s-fs >"$target/s3s-fs-install.log" 2>&1 || {
      tail -n 30 "$target/s3s-fs-install.log" >&2
      die "could not install s3s-fs, the S3-compatible server of the object store tests"
    }
  fi
  local port root
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  root="$target/s3/$port"
  rm -rf "$root"
  mkdir -p "$root/blindledger-test"
  export BLINDLEDGER_TEST_S3_ACCESS_KEY="test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  export BLINDLEDGER_TEST_S3_SECRET_KEY="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
  export BLINDLEDGER_TEST_S3_BUCKET=blindledger-test
  export BLINDLEDGER_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
  "$bin" --host 127.0.0.1 --port "$port" --access-key "$BLINDLEDGER_TEST_S3_ACCESS_KEY" \
    --secret-key "$BLINDLEDGER_TEST_S3_SECRET_KEY" "$root" >"$target/s3/$port.log" 2>&1 &
  S3_PID=$!
  local tries
  for tries in $(seq 1 100); do
    if tcp_open 127.0.0.1 "$port"; then
      log "S3: s3s-fs $S3S_FS_VERSION on $BLINDLEDGER_TEST_S3_ENDPOINT (data: $root)"
      return 0
    fi
    kill -0 "$S3_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$target/s3/$port.log" >&2 || true
  die "s3s-fs did not start on port $port"
}

stop_s3_server() {
  [[ -n $S3_PID ]] || return 0
  kill "$S3_PID" 2>/dev/null || true
  wait "$S3_PID" 2>/dev/null || true
  S3_PID=""
}

SOAK_CLUSTER_KEEP=""
# A soak cluster that exists before this script's tests run belongs to someone else (a
# scripts/soak.sh running beside it): stop_soak_cluster leaves it alone.
note_soak_cluster() {
  if [[ -d "${CARGO_TARGET_DIR:-$REPO_ROOT/target}/galera-netns" ]]; then SOAK_CLUSTER_KEEP=1; fi
}

# Destroys the network-namespace cluster the soak test started (nodes, namespaces, bridge).
stop_soak_cluster() {
  local dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/galera-netns"
  [[ -d $dir && -z $SOAK_CLUSTER_KEEP ]] || return 0
  log "Galera: destroying the soak's network-namespace cluster"
  BLINDLEDGER_GALERA_DIR="$dir" bash "$REPO_ROOT/deploy/galera/cluster.sh" destroy || true
}

# Everything the workspace's tests talk to, started or installed when missing.
ensure_test_services() {
  # shellcheck disable=SC2119 # no URL: the default search order
  ensure_mariadb
  ensure_galera
  ensure_chromium
  ensure_promtool
  ensure_openssl
  ensure_client_tools
  ensure_s3_server
}

cleanup() {
  stop_s3_server
  stop_soak_cluster
  stop_galera
  stop_private_mariadb
}

main() {
  cd "$REPO_ROOT"
  note_soak_cluster
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [[ -n ${CI:-} ]]; then
    # Incremental artefacts only cost time and disk on a one-off build.
    export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
  fi

  header "[1/5] toolchain, MariaDB, the Galera cluster, Chromium, promtool and an S3 server"
  ensure_toolchain
  ensure_test_services

  header "[2/5] cargo fmt --all -- --check; alert rules and dashboards"
  cargo fmt --all -- --check
  check_observability

  header "[3/5] cargo clippy --workspace --all-targets -- -D warnings"
  cargo clippy --workspace --all-targets -- -D warnings

  local -a test_cmd=(cargo test --release --workspace --no-fail-fast "$@")
  header "[4/5] ${test_cmd[*]}"
  "${test_cmd[@]}"
  local report
  for report in galera-fault-report.txt soak-report.txt; do
    report="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/tmp/$report"
    if [[ -f $report ]]; then cat "$report"; fi
  done

  # The shipped policy's own Rego tests, with the CLI built from what the tests compiled
  # (--workspace keeps the features, and so tfhe's build, the same).
  header "[5/5] blindledger policy test policies/ --min-coverage 90"
  # With --examples the dev-dependencies take part in feature resolution as they did for
  # the tests, so the release build of tfhe is reused instead of compiled a second time.
  cargo build --release --workspace --bins --examples
  "${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/blindledger" policy test policies/ --min-coverage 90

  # ---- deploy (begin) --------------------------------------------------------------------
  # The image and orchestration files, statically (no container runs on these machines);
  # backups and restores with mariabackup; the production-shaped local deployment (three
  # service processes with mTLS on the Galera cluster, Prometheus scraping them, a ledger
  # killed mid-job), all with the binaries built above.
  header "[deploy] scripts/validate-deploy.sh: Dockerfile, compose and Kubernetes manifests"
  bash "$REPO_ROOT/scripts/validate-deploy.sh"
  header "[deploy] scripts/backup-test.sh: mariabackup full + incremental, restore, verify"
  bash "$REPO_ROOT/scripts/backup-test.sh"
  header "[deploy] scripts/local-deploy-test.sh: three services with mTLS on Galera, a ledger killed mid-job"
  bash "$REPO_ROOT/scripts/local-deploy-test.sh"
  # ---- deploy (end) ----------------------------------------------------------------------

  # ---- clients (begin) -------------------------------------------------------------------
  # The JavaScript and Python clients against a private `blindledger dev`, with the binary
  # built above (clients/test.sh builds nothing with cargo; it needs node 20+, npm, python3,
  # and npm/PyPI to install the pinned dependencies). See docs/clients.md.
  header "[clients] clients/test.sh: JavaScript and Python clients against blindledger dev"
  BLINDLEDGER_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/blindledger" bash "$REPO_ROOT/clients/test.sh"
  # ---- clients (end) ---------------------------------------------------------------------
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
