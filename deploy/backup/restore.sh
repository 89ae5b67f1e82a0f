#!/usr/bin/env bash
# Restores a chain of mariabackup backups taken by deploy/backup/backup.sh into a fresh data
# directory: prepares a copy of the full backup, applies each incremental in order, copies
# (or moves) the result into the data directory, fixes its ownership and, optionally, starts
# a mariadbd on it and replays archived binlogs up to a point in time.
#
#   deploy/backup/restore.sh --datadir DIR [options] [BACKUP...]      (--help for the options)
#
# The backups themselves are never modified: the chain is prepared in a work copy (mariabackup
# --prepare changes the full backup it prepares and moves files out of the incrementals it
# applies).
set -euo pipefail

PROG=$(basename "$0")

usage() {
  cat <<EOF
Usage: $PROG --datadir DIR [options] [FULL_BACKUP [INCREMENTAL...]]

Restores the chain ending at --until (default: the newest backup) from --target-dir, or the
backups named on the command line (a full backup, then its incrementals in order), into DIR,
which must not exist or be empty.

  --datadir DIR             the data directory to create (required; refused when not empty)
  -d, --target-dir DIR      backup root of backup.sh [\$BLINDLEDGER_BACKUP_DIR, default
                            /var/backups/blindledger/mariadb]
  --until NAME              restore the chain up to and including this backup (a full
                            backup's name restores it alone)
  --work-dir DIR            where the chain is prepared [DIR.prepare beside the datadir; must
                            not exist or be empty; deleted afterwards unless --keep-work].
                            Needs room for the full backup and the largest incremental
  --move-back               move the prepared files into the datadir (--move-back) instead of
                            copying them (--copy-back): faster, needs no second copy's space
  --owner USER[:GROUP]      owner of the restored files [mysql when run as root and that user
                            exists; 'none' leaves them]
  --defaults-file FILE      the target server's option file for --copy-back (InnoDB
                            directories); default: none read, everything under --datadir
  --objects-to DIR          copy the ledger's object store saved with the backup
                            (<backup>/objects) into DIR (the ledger's object_store_dir)
  --galera-grastate         write grastate.dat from the Galera state recorded by
                            backup.sh --galera-info, so this node can bootstrap a cluster
                            (galera_new_cluster) that continues the backed-up history
  --mariabackup PATH        mariabackup binary [mariadb-backup or mariabackup on PATH]
  --keep-work               keep the work directory
  --dry-run                 print the chain and what would be done, change nothing

Verification server (after the restore):
  --start                   start mariadbd --no-defaults on the datadir, wait until it
                            answers, leave it running (pid file: --pid-file)
  --port PORT               its TCP port [3306]
  --bind-address ADDR       [127.0.0.1]
  --socket PATH             its socket [DIR/mariadbd.sock]
  --pid-file PATH           [DIR/mariadbd.pid]
  --log-error PATH          [DIR/mariadbd.err]
  --mariadbd-arg ARG        extra mariadbd option (repeatable), e.g. --mariadbd-arg=--log-bin
  --start-timeout S         seconds to wait for it [120]

Point-in-time recovery (needs --start; see README.md):
  --binlog-dir DIR          archived binlogs of the backed-up server: the events from the
                            binlog position recorded by the chain's last backup onwards are
                            replayed with mariadb-binlog into the started server
  --stop-datetime TIME      replay events before TIME only ('YYYY-MM-DD hh:mm:ss', server time)
  --stop-position POS       replay up to this position of the last binlog file only
  --admin-user USER         account replaying the events through the socket [root]
  --admin-password-file F   its password

  -q, --quiet               only the summary on stdout
  -h, --help                this help

Output: one JSON object on stdout (chain, datadir, timings in seconds, server pid); progress
on stderr. Exit status: 0 restored (and started/replayed as asked), 1 failure, 2 usage error
or a refused target (non-empty datadir, broken chain).
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

# Prints the path of the first of the named programs found (also in the sbin directories).
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

find_mariabackup() {
  if [[ -n ${MARIABACKUP:-} ]]; then return 0; fi
  if MARIABACKUP=$(find_prog mariadb-backup mariabackup); then return 0; fi
  command -v apt-get >/dev/null 2>&1 || die "mariabackup not found: install the mariadb-backup package"
  log "installing mariadb-backup with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    mariadb-backup </dev/null >/dev/null 2>&1 || {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      mariadb-backup </dev/null >/dev/null 2>&1
  } || die "cannot install mariadb-backup"
  MARIABACKUP=$(find_prog mariadb-backup mariabackup) || die "mariabackup missing after installing it"
}

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

json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

is_empty_dir() { [[ -d $1 && -z $(ls -A "$1" 2>/dev/null) ]]; }

# ---- options -------------------------------------------------------------------------

DATADIR=""
TARGET_DIR=${BLINDLEDGER_BACKUP_DIR:-/var/backups/blindledger/mariadb}
UNTIL=""
WORK_DIR=""
MOVE_BACK=""
OWNER=""
DEFAULTS_FILE=""
OBJECTS_TO=""
GRASTATE=""
MARIABACKUP=${MARIABACKUP:-}
KEEP_WORK=""
DRY_RUN=""
START=""
PORT=3306
BIND_ADDRESS=127.0.0.1
SOCKET=""
PID_FILE=""
LOG_ERROR=""
MARIADBD_ARGS=()
START_TIMEOUT=120
BINLOG_DIR=""
STOP_DATETIME=""
STOP_POSITION=""
ADMIN_USER=root
ADMIN_PASSWORD_FILE=""
QUIET=""
EXPLICIT=()

need_arg() { [[ $# -ge 2 && -n $2 ]] || usage_error "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --datadir) need_arg "$@"; DATADIR=$2; shift ;;
    --datadir=*) DATADIR=${1#*=} ;;
    -d | --target-dir) need_arg "$@"; TARGET_DIR=$2; shift ;;
    --target-dir=*) TARGET_DIR=${1#*=} ;;
    --until) need_arg "$@"; UNTIL=$2; shift ;;
    --until=*) UNTIL=${1#*=} ;;
    --work-dir) need_arg "$@"; WORK_DIR=$2; shift ;;
    --work-dir=*) WORK_DIR=${1#*=} ;;
    --move-back) MOVE_BACK=1 ;;
    --owner) need_arg "$@"; OWNER=$2; shift ;;
    --owner=*) OWNER=${1#*=} ;;
    --defaults-file) need_arg "$@"; DEFAULTS_FILE=$2; shift ;;
    --defaults-file=*) DEFAULTS_FILE=${1#*=} ;;
    --objects-to) need_arg "$@"; OBJECTS_TO=$2; shift ;;
    --objects-to=*) OBJECTS_TO=${1#*=} ;;
    --mariabackup) need_arg "$@"; MARIABACKUP=$2; shift ;;
    --mariabackup=*) MARIABACKUP=${1#*=} ;;
    --galera-grastate) GRASTATE=1 ;;
    --keep-work) KEEP_WORK=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --start) START=1 ;;
    --port) need_arg "$@"; PORT=$2; shift ;;
    --port=*) PORT=${1#*=} ;;
    --bind-address) need_arg "$@"; BIND_ADDRESS=$2; shift ;;
    --bind-address=*) BIND_ADDRESS=${1#*=} ;;
    --socket) need_arg "$@"; SOCKET=$2; shift ;;
    --socket=*) SOCKET=${1#*=} ;;
    --pid-file) need_arg "$@"; PID_FILE=$2; shift ;;
    --pid-file=*) PID_FILE=${1#*=} ;;
    --log-error) need_arg "$@"; LOG_ERROR=$2; shift ;;
    --log-error=*) LOG_ERROR=${1#*=} ;;
    --mariadbd-arg) need_arg "$@"; MARIADBD_ARGS+=("$2"); shift ;;
    --mariadbd-arg=*) MARIADBD_ARGS+=("${1#*=}") ;;
    --start-timeout) need_arg "$@"; START_TIMEOUT=$2; shift ;;
    --start-timeout=*) START_TIMEOUT=${1#*=} ;;
    --binlog-dir) need_arg "$@"; BINLOG_DIR=$2; shift ;;
    --binlog-dir=*) BINLOG_DIR=${1#*=} ;;
    --stop-datetime) need_arg "$@"; STOP_DATETIME=$2; shift ;;
    --stop-datetime=*) STOP_DATETIME=${1#*=} ;;
    --stop-position) need_arg "$@"; STOP_POSITION=$2; shift ;;
    --stop-position=*) STOP_POSITION=${1#*=} ;;
    --admin-user) need_arg "$@"; ADMIN_USER=$2; shift ;;
    --admin-user=*) ADMIN_USER=${1#*=} ;;
    --admin-password-file) need_arg "$@"; ADMIN_PASSWORD_FILE=$2; shift ;;
    --admin-password-file=*) ADMIN_PASSWORD_FILE=${1#*=} ;;
    -q | --quiet) QUIET=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; EXPLICIT+=("$@"); break ;;
    -*) usage_error "unknown option: $1" ;;
    *) EXPLICIT+=("$1") ;;
  esac
  shift
done

[[ -n $DATADIR ]] || usage_error "--datadir is required"
[[ $PORT =~ ^[0-9]+$ ]] || usage_error "--port takes a number"
[[ $START_TIMEOUT =~ ^[0-9]+$ ]] || usage_error "--start-timeout takes seconds"
[[ -z $STOP_POSITION || $STOP_POSITION =~ ^[0-9]+$ ]] || usage_error "--stop-position takes a number"
if [[ -n $BINLOG_DIR && -z $START ]]; then usage_error "--binlog-dir needs --start (the events are replayed into the started server)"; fi
if [[ -n $BINLOG_DIR && ! -d $BINLOG_DIR ]]; then usage_error "no binlog directory at $BINLOG_DIR"; fi
if [[ (-n $STOP_DATETIME || -n $STOP_POSITION) && -z $BINLOG_DIR ]]; then usage_error "--stop-datetime and --stop-position need --binlog-dir"; fi
if [[ -n $DEFAULTS_FILE && ! -r $DEFAULTS_FILE ]]; then usage_error "cannot read $DEFAULTS_FILE"; fi
if [[ -n $ADMIN_PASSWORD_FILE && ! -r $ADMIN_PASSWORD_FILE ]]; then usage_error "cannot read $ADMIN_PASSWORD_FILE"; fi
if [[ -n $UNTIL && ${#EXPLICIT[@]} -gt 0 ]]; then usage_error "--until or a list of backups, not both"; fi

abspath() {
  local dir
  dir=$(dirname "$1")
  mkdir -p "$dir"
  printf '%s/%s' "$(cd "$dir" && pwd)" "$(basename "$1")"
}
DATADIR=$(abspath "$DATADIR")
if [[ -e $DATADIR && ! -d $DATADIR ]]; then die "$DATADIR exists and is not a directory" 2; fi
if [[ -d $DATADIR ]] && ! is_empty_dir "$DATADIR"; then
  die "refusing to restore into $DATADIR: it is not empty (restore into a fresh directory, then swap it in)" 2
fi
WORK_DIR=$(abspath "${WORK_DIR:-$DATADIR.prepare}")
INCR_COPY=$WORK_DIR.incremental
for dir in "$WORK_DIR" "$INCR_COPY"; do
  if [[ -d $dir ]] && ! is_empty_dir "$dir"; then
    die "the work directory $dir is not empty (--work-dir elsewhere, or delete it)" 2
  fi
done
SOCKET=${SOCKET:-$DATADIR/mariadbd.sock}
PID_FILE=${PID_FILE:-$DATADIR/mariadbd.pid}
LOG_ERROR=${LOG_ERROR:-$DATADIR/mariadbd.err}
if ((${#SOCKET} > 107)); then usage_error "socket path too long for a Unix socket: $SOCKET (use --socket)"; fi

# ---- the chain -----------------------------------------------------------------------

CHAIN=()
if ((${#EXPLICIT[@]})); then
  for dir in "${EXPLICIT[@]}"; do
    [[ -f $dir/xtrabackup_checkpoints ]] || die "$dir is not a mariabackup backup (no xtrabackup_checkpoints)" 2
    CHAIN+=("$(cd "$dir" && pwd)")
  done
else
  [[ -d $TARGET_DIR ]] || die "no backup directory at $TARGET_DIR" 2
  TARGET_DIR=$(cd "$TARGET_DIR" && pwd)
  mapfile -t ALL < <(
    for dir in "$TARGET_DIR"/*; do
      name=${dir##*/}
      [[ -d $dir && $name =~ ^[0-9]{8}T[0-9]{6}Z-(full|incr)$ ]] || continue
      [[ -f $dir/backup-manifest.json && -f $dir/xtrabackup_checkpoints ]] || continue
      printf '%s\n' "$name"
    done | LC_ALL=C sort
  )
  ((${#ALL[@]})) || die "no finished backup in $TARGET_DIR" 2
  UNTIL=${UNTIL:-${ALL[${#ALL[@]} - 1]}}
  UNTIL=${UNTIL%/}
  UNTIL=${UNTIL##*/}
  found=""
  for name in "${ALL[@]}"; do
    if [[ $name == *-full ]]; then CHAIN=(); fi
    CHAIN+=("$TARGET_DIR/$name")
    if [[ $name == "$UNTIL" ]]; then
      found=1
      break
    fi
  done
  [[ -n $found ]] || die "no finished backup named $UNTIL in $TARGET_DIR" 2
fi

# A full backup, then incrementals whose LSNs follow on.
first_type=$(kv "${CHAIN[0]}/xtrabackup_checkpoints" backup_type)
[[ $first_type == full-backuped ]] ||
  die "${CHAIN[0]} is not an unprepared full backup (backup_type = $first_type)" 2
prev_to=$(kv "${CHAIN[0]}/xtrabackup_checkpoints" to_lsn)
for ((i = 1; i < ${#CHAIN[@]}; i++)); do
  dir=${CHAIN[i]}
  type=$(kv "$dir/xtrabackup_checkpoints" backup_type)
  from=$(kv "$dir/xtrabackup_checkpoints" from_lsn)
  [[ $type == incremental ]] || die "$dir is not an incremental backup (backup_type = $type)" 2
  [[ $from == "$prev_to" ]] ||
    die "broken chain: $dir starts at LSN $from but the backup before it ends at $prev_to" 2
  prev_to=$(kv "$dir/xtrabackup_checkpoints" to_lsn)
done
LAST=${CHAIN[${#CHAIN[@]} - 1]}

log "chain: ${CHAIN[*]##*/}"
if [[ -n $DRY_RUN ]]; then
  for dir in "${CHAIN[@]}"; do printf '%s\n' "$dir"; done
  log "dry run: would prepare in $WORK_DIR and restore into $DATADIR"
  exit 0
fi

find_mariabackup

if [[ -z $OWNER && $EUID -eq 0 ]] && id mysql >/dev/null 2>&1; then OWNER=mysql; fi
if [[ $OWNER == none ]]; then OWNER=""; fi
if [[ -n $OWNER && $OWNER != *:* ]]; then OWNER="$OWNER:$(id -gn "${OWNER}" 2>/dev/null || echo "$OWNER")"; fi

T_START=$(now_s)
cleanup_work() {
  rm -rf -- "$INCR_COPY"
  if [[ -z $KEEP_WORK && -d $WORK_DIR ]]; then rm -rf -- "$WORK_DIR"; fi
}
trap cleanup_work EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- prepare -------------------------------------------------------------------------

mkdir -p "$WORK_DIR"
log "copying ${CHAIN[0]##*/} into the work directory $WORK_DIR"
cp -a --reflink=auto "${CHAIN[0]}"/. "$WORK_DIR"/
# backup.sh's own files stay out of the data directory (the manifest of the chain's last
# backup is copied there as restored-from-manifest.json).
rm -rf "$WORK_DIR/objects" "$WORK_DIR/backup-manifest.json" "$WORK_DIR/backup.log"
PREPARE_LOG="$WORK_DIR.log"
: >"$PREPARE_LOG"
log "preparing ${CHAIN[0]##*/}"
"$MARIABACKUP" --prepare "--target-dir=$WORK_DIR" </dev/null >>"$PREPARE_LOG" 2>&1 || {
  tail -n 25 "$PREPARE_LOG" >&2
  die "mariabackup --prepare of ${CHAIN[0]} failed (log: $PREPARE_LOG)"
}
# --prepare --incremental-dir moves files out of the incremental backup (tables created
# since its base: *.new, *.new.delta, *.new.meta) into the target: applied in place, an
# incremental could never be restored again. Each is applied from a scratch copy.
for ((i = 1; i < ${#CHAIN[@]}; i++)); do
  log "applying ${CHAIN[i]##*/}"
  rm -rf "$INCR_COPY"
  mkdir -p "$INCR_COPY"
  cp -a --reflink=auto "${CHAIN[i]}"/. "$INCR_COPY"/
  rm -rf "$INCR_COPY/objects" "$INCR_COPY/backup-manifest.json" "$INCR_COPY/backup.log"
  "$MARIABACKUP" --prepare "--target-dir=$WORK_DIR" "--incremental-dir=$INCR_COPY" \
    </dev/null >>"$PREPARE_LOG" 2>&1 || {
    tail -n 25 "$PREPARE_LOG" >&2
    die "mariabackup --prepare --incremental-dir=${CHAIN[i]} (a copy in $INCR_COPY) failed (log: $PREPARE_LOG)"
  }
  rm -rf "$INCR_COPY"
done
T_PREPARED=$(now_s)

# ---- copy back -----------------------------------------------------------------------

DEFAULTS_ARG=(--no-defaults)
if [[ -n $DEFAULTS_FILE ]]; then DEFAULTS_ARG=("--defaults-file=$DEFAULTS_FILE"); fi
BACK=--copy-back
if [[ -n $MOVE_BACK ]]; then BACK=--move-back; fi
mkdir -p "$DATADIR"
log "${BACK#--} into $DATADIR"
"$MARIABACKUP" "${DEFAULTS_ARG[@]}" "$BACK" "--target-dir=$WORK_DIR" "--datadir=$DATADIR" \
  </dev/null >>"$PREPARE_LOG" 2>&1 || {
  tail -n 25 "$PREPARE_LOG" >&2
  die "mariabackup $BACK into $DATADIR failed (log: $PREPARE_LOG)"
}
cp "$LAST/backup-manifest.json" "$DATADIR/restored-from-manifest.json" 2>/dev/null || true
if [[ -n $GRASTATE ]]; then
  # The Galera state the backup was taken at (backup.sh --galera-info): a cluster bootstrapped
  # from this node continues that history, so the other nodes can join by IST.
  [[ -s $DATADIR/xtrabackup_galera_info ]] ||
    die "--galera-grastate: the chain has no xtrabackup_galera_info (take backups with --galera-info)"
  IFS=': ' read -r GALERA_UUID GALERA_SEQNO _ <"$DATADIR/xtrabackup_galera_info"
  [[ $GALERA_UUID =~ ^[0-9a-f-]{36}$ && $GALERA_SEQNO =~ ^-?[0-9]+$ ]] ||
    die "cannot read uuid:seqno from $DATADIR/xtrabackup_galera_info"
  printf '# GALERA saved state\nversion: 2.1\nuuid:    %s\nseqno:   %s\nsafe_to_bootstrap: 1\n' \
    "$GALERA_UUID" "$GALERA_SEQNO" >"$DATADIR/grastate.dat"
  log "grastate.dat written: $GALERA_UUID:$GALERA_SEQNO, safe to bootstrap"
fi
if [[ -n $OWNER ]]; then
  chown -R "$OWNER" "$DATADIR" || die "chown -R $OWNER $DATADIR failed"
fi
chmod 750 "$DATADIR" 2>/dev/null || true
mv "$PREPARE_LOG" "$DATADIR.restore.log" 2>/dev/null || true
PREPARE_LOG="$DATADIR.restore.log"
T_COPIED=$(now_s)

OBJECTS_COPIED=""
if [[ -n $OBJECTS_TO ]]; then
  [[ -d $LAST/objects ]] || die "$LAST has no objects/ (take backups with --object-store)"
  mkdir -p "$OBJECTS_TO"
  if command -v rsync >/dev/null 2>&1; then
    rsync -a "$LAST/objects/" "$OBJECTS_TO/"
  else
    cp -a "$LAST/objects/." "$OBJECTS_TO/"
  fi
  OBJECTS_COPIED=$OBJECTS_TO
  log "object store copied into $OBJECTS_TO"
fi

# ---- start, replay -------------------------------------------------------------------

SERVER_PID=""
T_STARTED=$T_COPIED
T_REPLAYED=$T_COPIED
if [[ -n $START ]]; then
  MARIADBD=$(find_prog mariadbd mysqld) || die "mariadbd not found (install mariadb-server)"
  ADMIN=$(find_prog mariadb-admin mysqladmin) || die "mariadb-admin not found (install mariadb-client)"
  USER_OPT=()
  if [[ $EUID -eq 0 ]]; then USER_OPT=("--user=${OWNER%%:*}"); fi
  if [[ $EUID -eq 0 && -z $OWNER ]]; then USER_OPT=(--user=root); fi
  for f in "$SOCKET" "$PID_FILE" "$LOG_ERROR"; do
    mkdir -p "$(dirname "$f")"
    if [[ -n $OWNER ]]; then chown "$OWNER" "$(dirname "$f")" 2>/dev/null || true; fi
  done
  log "starting mariadbd on $BIND_ADDRESS:$PORT (socket $SOCKET)"
  # Its own session: it outlives this script, the caller stops it (pid file).
  setsid "$MARIADBD" --no-defaults "${USER_OPT[@]}" "--datadir=$DATADIR" "--port=$PORT" \
    "--bind-address=$BIND_ADDRESS" "--socket=$SOCKET" "--pid-file=$PID_FILE" \
    "--log-error=$LOG_ERROR" --skip-name-resolve --skip-slave-start --max-allowed-packet=256M \
    "${MARIADBD_ARGS[@]}" </dev/null >/dev/null 2>&1 &
  SERVER_PID=$!
  deadline=$((SECONDS + START_TIMEOUT))
  # mariadb-admin ping succeeds once the server answers, whatever the credentials.
  until "$ADMIN" --no-defaults "--socket=$SOCKET" --connect-timeout=2 ping >/dev/null 2>&1; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      tail -n 25 "$LOG_ERROR" >&2 || true
      die "mariadbd exited during start-up (log: $LOG_ERROR)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 25 "$LOG_ERROR" >&2 || true
      die "mariadbd did not answer within ${START_TIMEOUT}s (log: $LOG_ERROR)"
    fi
    sleep 0.2
  done
  T_STARTED=$(now_s)
  T_REPLAYED=$T_STARTED
  log "mariadbd answers (pid $SERVER_PID)"

  if [[ -n $BINLOG_DIR ]]; then
    [[ -s $LAST/xtrabackup_binlog_info ]] ||
      die "$LAST records no binlog position (was log_bin on?): nothing to replay from"
    read -r BL_FILE BL_POS _ <"$LAST/xtrabackup_binlog_info"
    BL_FILE=${BL_FILE##*/}
    prefix=${BL_FILE%.*}
    mapfile -t BINLOGS < <(
      for f in "$BINLOG_DIR/$prefix".[0-9]*; do
        [[ -f $f ]] || continue
        name=${f##*/}
        if [[ ! $name < $BL_FILE ]]; then printf '%s\n' "$f"; fi
      done | LC_ALL=C sort
    )
    if ((${#BINLOGS[@]} == 0)) || [[ ${BINLOGS[0]##*/} != "$BL_FILE" ]]; then
      die "$BINLOG_DIR lacks $BL_FILE, where replay starts (position $BL_POS)"
    fi
    BINLOG_TOOL=$(find_prog mariadb-binlog mysqlbinlog) || die "mariadb-binlog not found"
    CLIENT=$(find_prog mariadb mysql) || die "mariadb client not found"
    BL_ARGS=(--no-defaults "--start-position=$BL_POS")
    if [[ -n $STOP_DATETIME ]]; then BL_ARGS+=("--stop-datetime=$STOP_DATETIME"); fi
    if [[ -n $STOP_POSITION ]]; then BL_ARGS+=("--stop-position=$STOP_POSITION"); fi
    CLIENT_DEFAULTS=(--no-defaults)
    PW_DIR=""
    if [[ -n $ADMIN_PASSWORD_FILE ]]; then
      PW_DIR=$(mktemp -d "${TMPDIR:-/tmp}/blindledger-restore.XXXXXX")
      IFS= read -r pw <"$ADMIN_PASSWORD_FILE" || true
      printf '[client]\npassword="%s"\n' "${pw//\"/\\\"}" >"$PW_DIR/client.cnf"
      chmod 600 "$PW_DIR/client.cnf"
      unset pw
      CLIENT_DEFAULTS=("--defaults-file=$PW_DIR/client.cnf")
    fi
    log "replaying ${#BINLOGS[@]} binlog file(s) from $BL_FILE:$BL_POS${STOP_DATETIME:+ until $STOP_DATETIME}${STOP_POSITION:+ until position $STOP_POSITION}"
    set +e
    "$BINLOG_TOOL" "${BL_ARGS[@]}" "${BINLOGS[@]}" 2>>"$PREPARE_LOG" |
      "$CLIENT" "${CLIENT_DEFAULTS[@]}" "--socket=$SOCKET" -u "$ADMIN_USER" \
        --max-allowed-packet=1G --binary-mode 2>>"$PREPARE_LOG"
    status=("${PIPESTATUS[@]}")
    set -e
    if [[ -n $PW_DIR ]]; then rm -rf "$PW_DIR"; fi
    if [[ ${status[0]} -ne 0 || ${status[1]} -ne 0 ]]; then
      tail -n 25 "$PREPARE_LOG" >&2
      die "binlog replay failed (mariadb-binlog ${status[0]}, mariadb ${status[1]}; log: $PREPARE_LOG)"
    fi
    T_REPLAYED=$(now_s)
    log "binlogs replayed"
  fi
fi

T_END=$(now_s)
CHAIN_JSON=""
for dir in "${CHAIN[@]}"; do CHAIN_JSON+="${CHAIN_JSON:+, }$(json_str "${dir##*/}")"; done
cat <<EOF
{"chain": [$CHAIN_JSON], "datadir": $(json_str "$DATADIR"), "log": $(json_str "$PREPARE_LOG"), "prepare_s": $(elapsed "$T_START" "$T_PREPARED"), "copy_back_s": $(elapsed "$T_PREPARED" "$T_COPIED"), "start_s": $(elapsed "$T_COPIED" "$T_STARTED"), "binlog_replay_s": $(elapsed "$T_STARTED" "$T_REPLAYED"), "total_s": $(elapsed "$T_START" "$T_END"), "objects_to": $(if [[ -n $OBJECTS_COPIED ]]; then json_str "$OBJECTS_COPIED"; else printf null; fi), "server": $(if [[ -n $SERVER_PID ]]; then printf '{"pid": %s, "port": %s, "socket": %s, "pid_file": %s, "log_error": %s}' "$SERVER_PID" "$PORT" "$(json_str "$SOCKET")" "$(json_str "$PID_FILE")" "$(json_str "$LOG_ERROR")"; else printf null; fi)}
EOF
log "restored ${#CHAIN[@]} backup(s) into $DATADIR in $(elapsed "$T_START" "$T_END")s"
