#!/usr/bin/env bash
# Physical backups of BlindLedger's MariaDB with mariabackup: full backups and incremental
# backups chained on them, each with a manifest, plus retention of old chains.
#
#   deploy/backup/backup.sh full|incremental [options]      (--help for the options)
#
# Layout under --target-dir (one directory per backup, names sort in time order):
#   20261121T020000Z-full/      mariabackup --backup --target-dir=<this>
#   20261121T021500Z-incr/      --incremental-basedir=<the newest backup of the chain>
#   ...
# Each finished backup holds backup-manifest.json (type, chain, base, LSNs from
# xtrabackup_checkpoints, binlog position, Galera state, duration, size) and backup.log
# (mariabackup's output). A backup in progress is <name>.partial; a failed one leaves
# <name>.log, and <name>.failed/ when mariabackup had started writing; neither is ever used
# as a base, and retention deletes them with their chain. deploy/backup/restore.sh restores.
set -euo pipefail

PROG=$(basename "$0")
VERSION=1

usage() {
  cat <<EOF
Usage: $PROG full|incremental [options]

Takes a physical backup of a running MariaDB server with mariabackup (run it on the
database host: mariabackup reads the server's data files).

  full          mariabackup --backup into <target-dir>/<UTC timestamp>-full
  incremental   mariabackup --backup --incremental-basedir=<newest backup of the current
                chain> into <target-dir>/<UTC timestamp>-incr (fails when there is no full
                backup yet)

Where:
  -d, --target-dir DIR      backup root [\$BLINDLEDGER_BACKUP_DIR, default
                            /var/backups/blindledger/mariadb]
  -o, --object-store DIR    also copy the ledger's object store (object_store_dir: the
                            tenants' server keys, which live outside MariaDB) into
                            <backup>/objects (rsync, hard links to the previous backup's copy)

Connection (default: what the option files say, as for the mariadb client):
  -H, --host HOST           server host (TCP)
  -P, --port PORT           server port
  -S, --socket PATH         server socket
  -u, --user USER           backup user (see README.md for its grants)
  -p, --password-file FILE  file holding the user's password (first line); never passed on
                            the command line
      --defaults-file FILE  read options from this file only (e.g. the server's my.cnf)
      --no-defaults         read no option file at all

Backup:
      --galera-info         record the node's Galera state (xtrabackup_galera_info) for a
                            restore that re-seeds a cluster; needs SLAVE MONITOR
      --parallel N          copy N files at once [1]
      --datadir DIR         the server's data directory, when mariabackup cannot ask the
                            server (it normally does)
      --mariabackup PATH    mariabackup binary [mariadb-backup or mariabackup on PATH]
      --extra-arg ARG       pass ARG to mariabackup --backup (repeatable)
      --lock-timeout S      wait up to S seconds for another backup into the same target
                            dir to finish [3600]

Retention (applied after a successful full backup):
  -k, --keep-chains N       keep the N newest full backups and the incrementals chained on
                            them; delete older chains and failed backups older than them
                            [7; 0 keeps everything]

Monitoring:
      --textfile-dir DIR    write blindledger_backup_*{type="full|incremental"} metrics
                            (last success time, duration, size) to
                            DIR/blindledger_backup_<type>.prom for node_exporter's textfile
                            collector

  -q, --quiet               print only the backup's path
  -h, --help                this help

Output: the new backup's path on stdout; progress on stderr. Exit status: 0 success,
1 the backup failed, 2 usage error, 3 an incremental without a full backup to chain on.

Installs the Debian package mariadb-backup with apt-get when no mariabackup is found (as
root, or through sudo -n).
EOF
}

log() { [[ -n ${QUIET:-} ]] || printf '%s: %s\n' "$PROG" "$*" >&2; }
warn() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  warn "error: $1"
  exit "${2:-1}"
}
usage_error() {
  warn "$*"
  warn "try '$PROG --help'"
  exit 2
}

# Runs a command as root: directly, or through passwordless sudo.
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    warn "need root to run: $*"
    return 1
  fi
}

# The mariabackup binary, installed with apt-get when missing.
find_mariabackup() {
  local name
  if [[ -n ${MARIABACKUP:-} ]]; then
    [[ -x $MARIABACKUP ]] || command -v "$MARIABACKUP" >/dev/null 2>&1 ||
      die "no mariabackup at $MARIABACKUP"
    return 0
  fi
  for name in mariadb-backup mariabackup; do
    if command -v "$name" >/dev/null 2>&1; then
      MARIABACKUP=$(command -v "$name")
      return 0
    fi
  done
  command -v apt-get >/dev/null 2>&1 || die "mariabackup not found: install the mariadb-backup package"
  log "installing mariadb-backup with apt-get"
  local apt_log
  apt_log=$(mktemp "${TMPDIR:-/tmp}/blindledger-backup-apt.XXXXXX")
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    mariadb-backup </dev/null >"$apt_log" 2>&1; then
    # The package lists may be missing (a fresh container): update once and retry.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$apt_log" 2>&1 || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      mariadb-backup </dev/null >>"$apt_log" 2>&1 || {
      tail -n 20 "$apt_log" >&2
      rm -f "$apt_log"
      die "cannot install mariadb-backup"
    }
  fi
  rm -f "$apt_log"
  for name in mariadb-backup mariabackup; do
    if command -v "$name" >/dev/null 2>&1; then
      MARIABACKUP=$(command -v "$name")
      return 0
    fi
  done
  die "mariabackup missing after installing mariadb-backup"
}

# JSON string literal of $1 (backslashes, quotes and the usual control characters escaped).
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

# A JSON number if $1 is one, else null.
json_num() {
  if [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; then printf '%s' "$1"; else printf 'null'; fi
}

# Value of "key = value" in a mariabackup key file (xtrabackup_checkpoints, xtrabackup_info).
kv() {
  local file=$1 key=$2 line
  [[ -f $file ]] || return 0
  while IFS= read -r line; do
    if [[ $line =~ ^${key}[[:space:]]*=[[:space:]]*(.*)$ ]]; then
      printf '%s' "${BASH_REMATCH[1]}"
      return 0
    fi
  done <"$file"
}

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
iso_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# Finished backups under the root, oldest first (names only).
list_backups() {
  local dir name
  for dir in "$TARGET_DIR"/*; do
    [[ -d $dir ]] || continue
    name=${dir##*/}
    [[ $name =~ ^[0-9]{8}T[0-9]{6}Z-(full|incr)$ ]] || continue
    [[ -f $dir/backup-manifest.json && -f $dir/xtrabackup_checkpoints ]] || continue
    printf '%s\n' "$name"
  done | LC_ALL=C sort
}

# ---- options -------------------------------------------------------------------------

MODE=""
TARGET_DIR=${BLINDLEDGER_BACKUP_DIR:-/var/backups/blindledger/mariadb}
OBJECT_STORE=""
DB_HOST=""
DB_PORT=""
DB_SOCKET=""
DB_USER=""
PASSWORD_FILE=""
DEFAULTS_FILE=""
NO_DEFAULTS=""
GALERA_INFO=""
PARALLEL=1
DATADIR=""
MARIABACKUP=${MARIABACKUP:-}
EXTRA_ARGS=()
LOCK_TIMEOUT=3600
KEEP_CHAINS=7
TEXTFILE_DIR=""
QUIET=""

need_arg() { [[ $# -ge 2 && -n $2 ]] || usage_error "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    full | incremental)
      [[ -z $MODE ]] || usage_error "one of full or incremental, not both"
      MODE=$1
      ;;
    -d | --target-dir) need_arg "$@"; TARGET_DIR=$2; shift ;;
    --target-dir=*) TARGET_DIR=${1#*=} ;;
    -o | --object-store) need_arg "$@"; OBJECT_STORE=$2; shift ;;
    --object-store=*) OBJECT_STORE=${1#*=} ;;
    -H | --host) need_arg "$@"; DB_HOST=$2; shift ;;
    --host=*) DB_HOST=${1#*=} ;;
    -P | --port) need_arg "$@"; DB_PORT=$2; shift ;;
    --port=*) DB_PORT=${1#*=} ;;
    -S | --socket) need_arg "$@"; DB_SOCKET=$2; shift ;;
    --socket=*) DB_SOCKET=${1#*=} ;;
    -u | --user) need_arg "$@"; DB_USER=$2; shift ;;
    --user=*) DB_USER=${1#*=} ;;
    -p | --password-file) need_arg "$@"; PASSWORD_FILE=$2; shift ;;
    --password-file=*) PASSWORD_FILE=${1#*=} ;;
    --defaults-file) need_arg "$@"; DEFAULTS_FILE=$2; shift ;;
    --defaults-file=*) DEFAULTS_FILE=${1#*=} ;;
    --no-defaults) NO_DEFAULTS=1 ;;
    --galera-info) GALERA_INFO=1 ;;
    --parallel) need_arg "$@"; PARALLEL=$2; shift ;;
    --parallel=*) PARALLEL=${1#*=} ;;
    --datadir) need_arg "$@"; DATADIR=$2; shift ;;
    --datadir=*) DATADIR=${1#*=} ;;
    --mariabackup) need_arg "$@"; MARIABACKUP=$2; shift ;;
    --mariabackup=*) MARIABACKUP=${1#*=} ;;
    --extra-arg) need_arg "$@"; EXTRA_ARGS+=("$2"); shift ;;
    --extra-arg=*) EXTRA_ARGS+=("${1#*=}") ;;
    --lock-timeout) need_arg "$@"; LOCK_TIMEOUT=$2; shift ;;
    --lock-timeout=*) LOCK_TIMEOUT=${1#*=} ;;
    -k | --keep-chains) need_arg "$@"; KEEP_CHAINS=$2; shift ;;
    --keep-chains=*) KEEP_CHAINS=${1#*=} ;;
    --textfile-dir) need_arg "$@"; TEXTFILE_DIR=$2; shift ;;
    --textfile-dir=*) TEXTFILE_DIR=${1#*=} ;;
    -q | --quiet) QUIET=1 ;;
    -h | --help) usage; exit 0 ;;
    --version) echo "$PROG $VERSION"; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done

[[ -n $MODE ]] || usage_error "say full or incremental"
[[ $PARALLEL =~ ^[1-9][0-9]*$ ]] || usage_error "--parallel takes a positive number"
[[ $KEEP_CHAINS =~ ^[0-9]+$ ]] || usage_error "--keep-chains takes a number"
[[ $LOCK_TIMEOUT =~ ^[0-9]+$ ]] || usage_error "--lock-timeout takes a number of seconds"
[[ -z $DB_PORT || $DB_PORT =~ ^[0-9]+$ ]] || usage_error "--port takes a number"
[[ -z $DEFAULTS_FILE || -z $NO_DEFAULTS ]] || usage_error "--defaults-file or --no-defaults, not both"
if [[ -n $DEFAULTS_FILE && ! -r $DEFAULTS_FILE ]]; then usage_error "cannot read $DEFAULTS_FILE"; fi
if [[ -n $PASSWORD_FILE && ! -r $PASSWORD_FILE ]]; then usage_error "cannot read $PASSWORD_FILE"; fi
if [[ -n $OBJECT_STORE && ! -d $OBJECT_STORE ]]; then usage_error "no object store directory at $OBJECT_STORE"; fi
if [[ -n $TEXTFILE_DIR && ! -d $TEXTFILE_DIR ]]; then usage_error "no directory at $TEXTFILE_DIR"; fi

# mariabackup changes into the data directory: relative paths would stop working there.
absolute() {
  case $1 in
    /*) printf '%s' "$1" ;;
    *) printf '%s/%s' "$(pwd)" "$1" ;;
  esac
}
if [[ -n $DB_SOCKET ]]; then DB_SOCKET=$(absolute "$DB_SOCKET"); fi
if [[ -n $DATADIR ]]; then DATADIR=$(absolute "$DATADIR"); fi
if [[ -n $DEFAULTS_FILE ]]; then DEFAULTS_FILE=$(absolute "$DEFAULTS_FILE"); fi
if [[ -n $OBJECT_STORE ]]; then OBJECT_STORE=$(cd "$OBJECT_STORE" && pwd); fi

find_mariabackup

mkdir -p "$TARGET_DIR"
TARGET_DIR=$(cd "$TARGET_DIR" && pwd)
chmod 700 "$TARGET_DIR" 2>/dev/null || true

# One backup at a time per target dir (a nightly full and a 15-minute incremental may meet).
exec 9>"$TARGET_DIR/.lock"
if ! flock -w "$LOCK_TIMEOUT" 9; then
  die "another backup holds $TARGET_DIR/.lock for more than ${LOCK_TIMEOUT}s"
fi

# ---- what to back up -----------------------------------------------------------------

CHAIN=""
BASE=""
if [[ $MODE == incremental ]]; then
  mapfile -t BACKUPS < <(list_backups)
  for name in "${BACKUPS[@]}"; do
    if [[ $name == *-full ]]; then CHAIN=$name; fi
  done
  if [[ -z $CHAIN ]]; then
    die "no full backup in $TARGET_DIR to chain an incremental on: take a full backup first" 3
  fi
  BASE=${BACKUPS[${#BACKUPS[@]} - 1]}
fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
SUFFIX=$([[ $MODE == full ]] && echo full || echo incr)
# Names must sort in time order: never reuse a second already taken.
while compgen -G "$TARGET_DIR/$STAMP-*" >/dev/null; do
  sleep 1
  STAMP=$(date -u +%Y%m%dT%H%M%SZ)
done
NAME="$STAMP-$SUFFIX"
[[ $MODE == full ]] && CHAIN=$NAME
PARTIAL="$TARGET_DIR/$NAME.partial"
FINAL="$TARGET_DIR/$NAME"
LOG="$TARGET_DIR/$NAME.log"

# Credentials go into a private option file, never onto the command line.
PRIVATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/blindledger-backup.XXXXXX")
chmod 700 "$PRIVATE_DIR"
cleanup() {
  rm -rf "$PRIVATE_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# An option-file value: quoted so that spaces, '#' and ';' survive.
option_value() {
  local value=$1
  [[ $value != *$'\n'* ]] || die "a newline in an option value"
  if [[ $value != *\"* ]]; then
    printf '"%s"' "${value//\\/\\\\}"
  elif [[ $value != *\'* ]]; then
    printf "'%s'" "${value//\\/\\\\}"
  else
    die "a password with both kinds of quote cannot go into an option file"
  fi
}

DEFAULTS_ARG=()
if [[ -n $PASSWORD_FILE || -n $DB_USER ]]; then
  OPTS="$PRIVATE_DIR/client.cnf"
  : >"$OPTS"
  chmod 600 "$OPTS"
  if [[ -n $DEFAULTS_FILE ]]; then
    printf '!include %s\n' "$DEFAULTS_FILE" >>"$OPTS"
  fi
  {
    printf '[mariabackup]\n'
    if [[ -n $DB_USER ]]; then printf 'user=%s\n' "$(option_value "$DB_USER")"; fi
    if [[ -n $PASSWORD_FILE ]]; then
      IFS= read -r password <"$PASSWORD_FILE" || [[ -n ${password:-} ]] || die "$PASSWORD_FILE is empty"
      printf 'password=%s\n' "$(option_value "$password")"
      unset password
    fi
  } >>"$OPTS"
  if [[ -n $DEFAULTS_FILE || -n $NO_DEFAULTS ]]; then
    DEFAULTS_ARG=("--defaults-file=$OPTS")
  else
    DEFAULTS_ARG=("--defaults-extra-file=$OPTS")
  fi
elif [[ -n $DEFAULTS_FILE ]]; then
  DEFAULTS_ARG=("--defaults-file=$DEFAULTS_FILE")
elif [[ -n $NO_DEFAULTS ]]; then
  DEFAULTS_ARG=(--no-defaults)
fi

ARGS=("${DEFAULTS_ARG[@]}" --backup "--target-dir=$PARTIAL" "--parallel=$PARALLEL")
if [[ -n $DB_HOST ]]; then ARGS+=("--host=$DB_HOST"); fi
if [[ -n $DB_PORT ]]; then ARGS+=("--port=$DB_PORT"); fi
if [[ -n $DB_SOCKET ]]; then ARGS+=("--socket=$DB_SOCKET"); fi
if [[ -n $DATADIR ]]; then ARGS+=("--datadir=$DATADIR"); fi
if [[ -n $GALERA_INFO ]]; then ARGS+=(--galera-info); fi
if [[ -n $BASE ]]; then ARGS+=("--incremental-basedir=$TARGET_DIR/$BASE"); fi
ARGS+=("${EXTRA_ARGS[@]}")

if [[ $MODE == full ]]; then
  log "full backup into $FINAL"
else
  log "incremental backup into $FINAL (base $BASE, chain $CHAIN)"
fi

rm -rf "$PARTIAL"
STARTED_AT=$(iso_now)
T0=$(now_s)
if ! "$MARIABACKUP" "${ARGS[@]}" </dev/null >"$LOG" 2>&1; then
  if [[ -d $PARTIAL ]]; then mv "$PARTIAL" "$TARGET_DIR/$NAME.failed"; fi
  tail -n 25 "$LOG" >&2
  die "mariabackup failed (log: $LOG)"
fi
T_DB=$(now_s)
if grep -q 'missing required privilege' "$LOG"; then
  grep 'missing required privilege' "$LOG" | sed 's/^/  /' >&2
  warn "warning: the backup user lacks privileges mariabackup asks for (see deploy/backup/README.md)"
fi
[[ -f $PARTIAL/xtrabackup_checkpoints ]] || die "no xtrabackup_checkpoints in $PARTIAL (log: $LOG)"

# Never chain on a backup whose LSNs do not follow its base's.
FROM_LSN=$(kv "$PARTIAL/xtrabackup_checkpoints" from_lsn)
TO_LSN=$(kv "$PARTIAL/xtrabackup_checkpoints" to_lsn)
LAST_LSN=$(kv "$PARTIAL/xtrabackup_checkpoints" last_lsn)
BACKUP_TYPE=$(kv "$PARTIAL/xtrabackup_checkpoints" backup_type)
if [[ -n $BASE ]]; then
  BASE_TO_LSN=$(kv "$TARGET_DIR/$BASE/xtrabackup_checkpoints" to_lsn)
  if [[ $FROM_LSN != "$BASE_TO_LSN" ]]; then
    mv "$PARTIAL" "$TARGET_DIR/$NAME.failed"
    die "from_lsn $FROM_LSN of the incremental is not to_lsn $BASE_TO_LSN of its base $BASE"
  fi
fi

DB_SIZE=$(du -sb "$PARTIAL" | cut -f1)

# The object store (server keys) after the database: every key a row names is then there.
OBJECTS_JSON=null
if [[ -n $OBJECT_STORE ]]; then
  mkdir -p "$PARTIAL/objects"
  if command -v rsync >/dev/null 2>&1; then
    LINK_DEST=()
    PREV=$(list_backups | tail -n 1)
    if [[ -n $PREV && -d $TARGET_DIR/$PREV/objects ]]; then
      LINK_DEST=("--link-dest=$TARGET_DIR/$PREV/objects")
    fi
    rsync -a "${LINK_DEST[@]}" "$OBJECT_STORE"/ "$PARTIAL/objects/" ||
      die "copying the object store $OBJECT_STORE failed"
  else
    cp -a "$OBJECT_STORE"/. "$PARTIAL/objects/" || die "copying the object store $OBJECT_STORE failed"
  fi
  OBJ_FILES=$(find "$PARTIAL/objects" -type f | wc -l)
  OBJ_BYTES=$(du -sb "$PARTIAL/objects" | cut -f1)
  OBJECTS_JSON="{\"source\": $(json_str "$OBJECT_STORE"), \"files\": $OBJ_FILES, \"bytes\": $OBJ_BYTES}"
fi
T1=$(now_s)

# Binlog position (xtrabackup_binlog_info: file, position, GTID) for point-in-time recovery.
BINLOG_JSON=null
if [[ -s $PARTIAL/xtrabackup_binlog_info ]]; then
  read -r BL_FILE BL_POS BL_GTID _ <"$PARTIAL/xtrabackup_binlog_info" || true
  BINLOG_JSON="{\"file\": $(json_str "${BL_FILE:-}"), \"position\": $(json_num "${BL_POS:-}"), \"gtid\": $(json_str "${BL_GTID:-}")}"
fi
GALERA_JSON=null
if [[ -s $PARTIAL/xtrabackup_galera_info ]]; then
  GALERA_JSON=$(json_str "$(head -n 1 "$PARTIAL/xtrabackup_galera_info")")
elif [[ -n $GALERA_INFO ]]; then
  warn "warning: --galera-info given but the server reported no Galera state"
fi

DURATION=$(elapsed "$T0" "$T1")
DB_DURATION=$(elapsed "$T0" "$T_DB")
# On disk: the object store copy shares unchanged files with the previous backup's (links).
TOTAL_SIZE=$(du -sb "$PARTIAL" | cut -f1)
SERVER_VERSION=$(kv "$PARTIAL/xtrabackup_info" server_version)
TOOL_VERSION=$(kv "$PARTIAL/xtrabackup_info" tool_version)

CONNECTION="{\"host\": $(json_str "$DB_HOST"), \"port\": $(json_num "$DB_PORT"), \"socket\": $(json_str "$DB_SOCKET"), \"user\": $(json_str "$DB_USER")}"
cat >"$PARTIAL/backup-manifest.json" <<EOF
{
  "format": $VERSION,
  "name": $(json_str "$NAME"),
  "type": $(json_str "$MODE"),
  "chain": $(json_str "$CHAIN"),
  "base": $(if [[ -n $BASE ]]; then json_str "$BASE"; else printf null; fi),
  "started_at": $(json_str "$STARTED_AT"),
  "finished_at": $(json_str "$(iso_now)"),
  "duration_s": $DURATION,
  "mariabackup_duration_s": $DB_DURATION,
  "size_bytes": $DB_SIZE,
  "total_bytes": $TOTAL_SIZE,
  "host": $(json_str "$(hostname)"),
  "connection": $CONNECTION,
  "server_version": $(json_str "$SERVER_VERSION"),
  "mariabackup_version": $(json_str "$TOOL_VERSION"),
  "checkpoints": {
    "backup_type": $(json_str "$BACKUP_TYPE"),
    "from_lsn": $(json_num "$FROM_LSN"),
    "to_lsn": $(json_num "$TO_LSN"),
    "last_lsn": $(json_num "$LAST_LSN")
  },
  "binlog": $BINLOG_JSON,
  "galera": $GALERA_JSON,
  "objects": $OBJECTS_JSON
}
EOF
mv "$LOG" "$PARTIAL/backup.log"
mv "$PARTIAL" "$FINAL"
sync -f "$FINAL" 2>/dev/null || true

log "$MODE backup $NAME done in ${DURATION}s (mariabackup ${DB_DURATION}s), $DB_SIZE bytes (with the object store $TOTAL_SIZE), LSN $FROM_LSN..$TO_LSN (last $LAST_LSN)"

# For alerting on a backup that is too old (deploy/backup/README.md has a rule).
if [[ -n $TEXTFILE_DIR ]]; then
  prom="$TEXTFILE_DIR/blindledger_backup_$MODE.prom"
  cat >"$prom.$$" <<EOF
# HELP blindledger_backup_last_success_timestamp_seconds When the last successful backup of this type finished.
# TYPE blindledger_backup_last_success_timestamp_seconds gauge
blindledger_backup_last_success_timestamp_seconds{type="$MODE"} $(date +%s)
# HELP blindledger_backup_last_duration_seconds How long the last successful backup of this type took.
# TYPE blindledger_backup_last_duration_seconds gauge
blindledger_backup_last_duration_seconds{type="$MODE"} $DURATION
# HELP blindledger_backup_last_size_bytes Size of the last successful backup of this type (database files, without the object store copy).
# TYPE blindledger_backup_last_size_bytes gauge
blindledger_backup_last_size_bytes{type="$MODE"} $DB_SIZE
EOF
  mv "$prom.$$" "$prom"
fi

# ---- retention -----------------------------------------------------------------------

if [[ $MODE == full && $KEEP_CHAINS -gt 0 ]]; then
  mapfile -t FULLS < <(list_backups | grep -- '-full$' || true)
  if ((${#FULLS[@]} > KEEP_CHAINS)); then
    OLDEST_KEPT=${FULLS[${#FULLS[@]} - KEEP_CHAINS]}
    for dir in "$TARGET_DIR"/*; do
      name=${dir##*/}
      [[ $name =~ ^[0-9]{8}T[0-9]{6}Z- ]] || continue
      # Names sort in time order: everything before the oldest kept full is an old chain.
      if [[ $name < $OLDEST_KEPT ]]; then
        log "retention: deleting $name"
        rm -rf -- "$dir"
      fi
    done
  fi
fi

printf '%s\n' "$FINAL"
