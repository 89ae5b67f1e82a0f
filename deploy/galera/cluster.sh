#!/usr/bin/env bash
# A local three-node MariaDB Galera cluster for developing and testing BlindLedger.
# All nodes run on 127.0.0.1 from one state directory; see deploy/galera/README.md.
# With BLINDLEDGER_GALERA_NETNS=1 each node runs in its own network namespace instead,
# so that fault tests can cut real links (cut, lossy).
set -euo pipefail
export LC_ALL=C

readonly PROG=cluster.sh
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
readonly SCRIPT_DIR REPO_ROOT
STATE_DIR="${BLINDLEDGER_GALERA_DIR:-$REPO_ROOT/target/galera}"
# One spelling of the directory for every command: node processes are recognised by the
# config path on their command line.
if [[ -d $STATE_DIR ]]; then STATE_DIR="$(cd "$STATE_DIR" && pwd -P)"; fi
readonly TEMPLATE="$SCRIPT_DIR/node.cnf.in"
readonly TIMEOUT="${BLINDLEDGER_GALERA_TIMEOUT:-300}"
readonly CLUSTER_NAME="${BLINDLEDGER_GALERA_CLUSTER_NAME:-blindledger-local}"
readonly BUFFER_POOL="${BLINDLEDGER_GALERA_BUFFER_POOL:-128M}"
readonly GCACHE_SIZE="${BLINDLEDGER_GALERA_GCACHE_SIZE:-128M}"
readonly PROVIDER=/usr/lib/galera/libgalera_smm.so
readonly PACKAGES=(mariadb-server galera-4 mariadb-backup rsync socat iproute2)
readonly NODES=(1 2 3)
readonly MARKER=.blindledger-galera
readonly NIL_UUID=00000000-0000-0000-0000-000000000000

# Network-namespace mode: node N runs in namespace blgal-nN at 10.198.0.N; its veth peer
# blgal-vN sits on the bridge blgal0 (10.198.0.254) in the root namespace.
readonly NET_BRIDGE=blgal0
readonly NET_PREFIX=10.198.0
readonly NET_HOST_ADDR=10.198.0.254
readonly NET_NS_IF=eth0
readonly NET_NFT_TABLE=blgal
# In the state directory: present when the cluster was created in network-namespace mode.
readonly NETNS_FILE=netns
# In the state directory: network faults set by cut/lossy, lines "N cut" and "N loss P".
readonly NETFAULTS_FILE=netfaults
NETNS=0

# Exit codes.
readonly E_FAIL=1 E_USAGE=2 E_NOSTATE=3

usage() {
  cat <<EOF
Usage: deploy/galera/cluster.sh COMMAND [ARG]

A three-node MariaDB Galera cluster on 127.0.0.1 (or in network namespaces, see below)
for local development and tests. State (configs, datadirs, sockets, logs, chosen ports)
lives in
  \${BLINDLEDGER_GALERA_DIR:-<repo>/target/galera}   (now: $STATE_DIR)

Commands:
  up                 install missing packages, create or restart the cluster, wait until
                     all three nodes are Synced (no-op if it already runs)
  status             per node: SQL port, process, cluster size, Primary/non-Primary,
                     local state, wsrep_ready, isolation (and cut or packet loss)
  urls               print mysql://root@127.0.0.1:PORT for nodes 1,2,3 (comma-separated)
  wait-synced [S]    wait up to S seconds (default $TIMEOUT) for 3 Synced nodes in one
                     Primary component
  kill N             SIGKILL node N (a crash)
  start N            start a stopped or killed node N and wait until it is Synced
  stop N             shut node N down cleanly
  pause N            SIGSTOP node N (a hung process: it holds its sockets, answers nothing)
  resume N           SIGCONT node N
  partition N        cut node N off from the other two (Galera gmcast.isolate=1)
  heal               undo every partition, resume paused nodes, wait until Synced
                     (network-namespace mode: also undo every cut and packet loss)
  down               stop all nodes, keep the data (a later 'up' restarts from it)
  destroy            down, then delete the state directory (network-namespace mode:
                     also the namespaces, veths and bridge)

Network-namespace mode (BLINDLEDGER_GALERA_NETNS=1, needs root): 'up' runs node N in
network namespace blgal-nN at 10.198.0.N, linked by veth blgal-vN to the bridge blgal0
(10.198.0.254) in the root namespace, so that real links can fail; 'urls' prints
mysql://root@10.198.0.N:PORT. The state directory remembers the mode, so later commands
keep it without the variable; 'up' does not switch the mode of an existing directory
('destroy' first). 'down' leaves the namespaces, 'destroy' deletes them. Only there:
  cut N              set blgal-vN down: node N loses every peer and every client
  lossy N [PERCENT]  drop PERCENT % (default 100) of the packets towards node N (netem
                     on blgal-vN; nftables where the kernel has no netem); node N's own
                     packets still leave

N is 1, 2 or 3. Environment: BLINDLEDGER_GALERA_DIR, BLINDLEDGER_GALERA_TIMEOUT
(seconds for each wait, default 300), BLINDLEDGER_GALERA_BUFFER_POOL (default 128M),
BLINDLEDGER_GALERA_GCACHE_SIZE (default 128M), BLINDLEDGER_GALERA_NETNS (1: network-
namespace mode when 'up' creates the state directory; default off).

Exit status: 0 success (status/wait-synced: cluster healthy); 1 failure or unhealthy
cluster; 2 usage error; 3 no cluster state yet (run 'up').
Root may log in over TCP without a password: a local test cluster only.
EOF
}

log() { printf '%s %s: %s\n' "$(date -u +%H:%M:%S)" "$PROG" "$*" >&2; }
die() {
  local code=$E_FAIL
  if [[ $1 =~ ^[0-9]+$ ]]; then
    code=$1
    shift
  fi
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit "$code"
}
since() { awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f", e - s }'; }

# ----- who runs the nodes ----------------------------------------------------------------
# As root the nodes run as 'mysql' (rsync SST fails when mariadbd runs as root); otherwise
# as the invoking user.
RUN_USER=""
resolve_run_user() {
  if ((EUID == 0)); then
    id mysql >/dev/null 2>&1 || die "user 'mysql' does not exist (is mariadb-server installed?)"
    RUN_USER=mysql
  else
    RUN_USER="$(id -un)"
  fi
}
# Runs a command as the node owner.
as_owner() {
  if ((EUID == 0)); then
    setpriv --reuid="$RUN_USER" --regid="$(id -g "$RUN_USER")" --init-groups -- "$@"
  else
    "$@"
  fi
}
give_to_owner() {
  if ((EUID == 0)); then chown "$RUN_USER:$(id -g "$RUN_USER")" "$@"; fi
}

# ----- packages --------------------------------------------------------------------------
ensure_packages() {
  local -a missing=()
  local p
  if ! command -v dpkg-query >/dev/null 2>&1; then
    if command -v mariadbd >/dev/null 2>&1 && [[ -f $PROVIDER ]]; then return 0; fi
    die "no dpkg and no MariaDB/Galera found: install ${PACKAGES[*]} by hand"
  fi
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} > 0)) || return 0
  apt_install "${missing[@]}"
}

apt_install() { # PACKAGE...
  local -a sudo=()
  ((EUID == 0)) || sudo=(sudo)
  log "installing $*"
  if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"; }; then
    die "apt-get could not install $*"
  fi
}

# ip(8) and tc(8) for the network-namespace mode.
ensure_net_tools() {
  command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || die "ip and tc not found: install iproute2"
  apt_install iproute2
  if ! command -v ip >/dev/null 2>&1 || ! command -v tc >/dev/null 2>&1; then
    die "ip or tc still missing after installing iproute2"
  fi
}

MARIADBD=""
find_binaries() {
  MARIADBD="$(command -v mariadbd || true)"
  [[ -n $MARIADBD ]] || MARIADBD=/usr/sbin/mariadbd
  [[ -x $MARIADBD ]] || die "mariadbd not found (install mariadb-server)"
  [[ -f $PROVIDER ]] || die "Galera provider $PROVIDER not found (install galera-4)"
  command -v mariadb >/dev/null 2>&1 || die "mariadb client not found (install mariadb-client)"
}

# ----- ports -----------------------------------------------------------------------------
declare -a SQL_PORT=() GROUP_PORT=() IST_PORT=() SST_PORT=()

port_busy() { # PORT [N]: with N, in node N's namespace (network-namespace mode)
  if [[ -n ${2:-} ]] && ((NETNS)); then
    [[ -n "$(ip netns exec "$(ns_name "$2")" ss -Htln "( sport = :$1 )")" ]]
  elif command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Htln "( sport = :$1 )")" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# SQL: 3306-3308 when all three are free, otherwise the first three free ports of
# 3321-3399 (scripts/test.sh puts its private server on 3307-3320). Group and IST ports
# come in pairs (P, P+1) from 4567 up, SST ports from 4444 up.
choose_ports() {
  local n p
  SQL_PORT=() GROUP_PORT=() IST_PORT=() SST_PORT=()
  if ! port_busy 3306 && ! port_busy 3307 && ! port_busy 3308; then
    SQL_PORT=([1]=3306 [2]=3307 [3]=3308)
  else
    n=1
    for ((p = 3321; p <= 3399 && n <= 3; p++)); do
      port_busy "$p" || SQL_PORT[n++]=$p
    done
    ((n == 4)) || die "no three free SQL ports in 3321-3399"
  fi
  n=1
  for ((p = 4567; p < 4700 && n <= 3; p++)); do
    if ! port_busy "$p" && ! port_busy "$((p + 1))"; then
      GROUP_PORT[n]=$p
      IST_PORT[n++]=$((p + 1))
      ((p += 1))
    fi
  done
  ((n == 4)) || die "no three free group/IST port pairs in 4567-4699"
  n=1
  for ((p = 4444; p < 4567 && n <= 3; p++)); do
    port_busy "$p" || SST_PORT[n++]=$p
  done
  ((n == 4)) || die "no three free SST ports in 4444-4566"
}

save_ports() {
  local n f="$STATE_DIR/ports.env"
  {
    echo "# Ports of the local Galera cluster, chosen by cluster.sh up."
    for n in "${NODES[@]}"; do
      echo "SQL_PORT_$n=${SQL_PORT[n]}"
      echo "GROUP_PORT_$n=${GROUP_PORT[n]}"
      echo "IST_PORT_$n=${IST_PORT[n]}"
      echo "SST_PORT_$n=${SST_PORT[n]}"
    done
  } >"$f.tmp"
  mv "$f.tmp" "$f"
  give_to_owner "$f"
}

load_ports() {
  local f="$STATE_DIR/ports.env" key val kind n
  [[ -f $f ]] || return 1
  SQL_PORT=() GROUP_PORT=() IST_PORT=() SST_PORT=()
  while IFS='=' read -r key val; do
    [[ $val =~ ^[0-9]+$ && $key =~ ^(SQL|GROUP|IST|SST)_PORT_([123])$ ]] || continue
    kind=${BASH_REMATCH[1]} n=${BASH_REMATCH[2]}
    case $kind in
    SQL) SQL_PORT[n]=$val ;;
    GROUP) GROUP_PORT[n]=$val ;;
    IST) IST_PORT[n]=$val ;;
    SST) SST_PORT[n]=$val ;;
    esac
  done <"$f"
  for n in "${NODES[@]}"; do
    [[ -n ${SQL_PORT[n]:-} && -n ${GROUP_PORT[n]:-} && -n ${IST_PORT[n]:-} && -n ${SST_PORT[n]:-} ]] ||
      die "$f is incomplete (node $n); 'destroy' and 'up' again"
  done
}

# Ports of node N that something else listens on (in its namespace in that mode).
busy_ports_of() {
  local n=$1 p
  for p in "${SQL_PORT[n]}" "${GROUP_PORT[n]}" "${IST_PORT[n]}" "${SST_PORT[n]}"; do
    if port_busy "$p" "$n"; then printf '%s ' "$p"; fi
  done
}

# ----- state directory -------------------------------------------------------------------
need_state() {
  [[ -f $STATE_DIR/$MARKER ]] || die "$E_NOSTATE" "no cluster in $STATE_DIR (run: $0 up)"
  load_ports || die "$E_NOSTATE" "no ports recorded in $STATE_DIR (run: $0 up)"
}

prepare_state_dir() {
  local n
  if [[ -d $STATE_DIR && ! -f $STATE_DIR/$MARKER ]] && [[ -n "$(ls -A "$STATE_DIR")" ]]; then
    die "$STATE_DIR exists, is not empty and was not made by $PROG; choose another BLINDLEDGER_GALERA_DIR"
  fi
  mkdir -p "$STATE_DIR"
  STATE_DIR="$(cd "$STATE_DIR" && pwd -P)"
  touch "$STATE_DIR/$MARKER"
  give_to_owner "$STATE_DIR" "$STATE_DIR/$MARKER"
  if ((NETNS)) && [[ ! -f $STATE_DIR/$NETNS_FILE ]]; then
    echo "# Made by $PROG: nodes run in network namespaces (BLINDLEDGER_GALERA_NETNS=1)." >"$STATE_DIR/$NETNS_FILE"
    give_to_owner "$STATE_DIR/$NETNS_FILE"
  fi
  as_owner test -w "$STATE_DIR" -a -x "$STATE_DIR" ||
    die "user $RUN_USER cannot write $STATE_DIR (is a parent directory closed to it?); set BLINDLEDGER_GALERA_DIR"
  ((${#STATE_DIR} < 80)) || die "$STATE_DIR is too long for a Unix socket path; set BLINDLEDGER_GALERA_DIR"
  for n in "${NODES[@]}"; do
    mkdir -p "$STATE_DIR/node$n"
    give_to_owner "$STATE_DIR/node$n"
  done
}

# ----- network-namespace mode ------------------------------------------------------------
ns_name() { printf 'blgal-n%s' "$1"; }
veth_name() { printf 'blgal-v%s' "$1"; }
# The address node N listens on.
node_addr() {
  if ((NETNS)); then printf '%s.%s' "$NET_PREFIX" "$1"; else printf 127.0.0.1; fi
}

# True when BLINDLEDGER_GALERA_NETNS asks for the network-namespace mode.
netns_wanted() {
  case ${BLINDLEDGER_GALERA_NETNS:-} in
  1) return 0 ;;
  "" | 0) return 1 ;;
  *) die "$E_USAGE" "BLINDLEDGER_GALERA_NETNS must be 1 or 0, got '$BLINDLEDGER_GALERA_NETNS'" ;;
  esac
}

# Sets NETNS for COMMAND: an existing state directory keeps the mode it was created in;
# a new one takes BLINDLEDGER_GALERA_NETNS. 'up' refuses to switch modes.
resolve_mode() { # COMMAND
  local cmd=$1 wanted=0
  netns_wanted && wanted=1
  if [[ -f $STATE_DIR/$MARKER ]]; then
    NETNS=0
    [[ -f $STATE_DIR/$NETNS_FILE ]] && NETNS=1
    if [[ $cmd == up && -n ${BLINDLEDGER_GALERA_NETNS:-} ]] && ((wanted != NETNS)); then
      if ((NETNS)); then
        die "the cluster in $STATE_DIR runs in network namespaces, BLINDLEDGER_GALERA_NETNS=0 asks for 127.0.0.1; '$0 destroy' it first (or unset the variable)"
      fi
      die "the cluster in $STATE_DIR runs on 127.0.0.1, BLINDLEDGER_GALERA_NETNS=1 asks for network namespaces; '$0 destroy' it first (or choose another BLINDLEDGER_GALERA_DIR)"
    fi
  else
    NETNS=$wanted
  fi
  ((NETNS)) || return 0
  case $cmd in
  status | urls | wait-synced) ;;
  *)
    ((EUID == 0)) || die "the network-namespace mode (BLINDLEDGER_GALERA_NETNS=1, or a cluster created with it in $STATE_DIR) needs root: '$cmd' changes namespaces, links or processes in them"
    ensure_net_tools
    ;;
  esac
}

# cut and lossy exist only in the network-namespace mode.
need_netns() { # COMMAND
  ((NETNS)) && return 0
  if [[ -f $STATE_DIR/$MARKER ]] && netns_wanted; then
    die "$E_USAGE" "$1: the cluster in $STATE_DIR was created without BLINDLEDGER_GALERA_NETNS=1; '$0 destroy' it and run 'BLINDLEDGER_GALERA_NETNS=1 $0 up'"
  fi
  die "$E_USAGE" "$1 needs the network-namespace mode: BLINDLEDGER_GALERA_NETNS=1 (root; see --help)"
}

# The bridge's alias names the state directory that owns the network.
state_path() { realpath -m -- "$STATE_DIR"; }
net_owner() { cat "/sys/class/net/$NET_BRIDGE/ifalias" 2>/dev/null || true; }
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }

# Fails when the bridge belongs to the cluster of another state directory.
net_check_owner() {
  local owner
  link_exists "$NET_BRIDGE" || return 0
  owner="$(net_owner)"
  [[ -z $owner || $owner == "$(state_path)" ]] ||
    die "bridge $NET_BRIDGE belongs to the cluster in $owner; run 'BLINDLEDGER_GALERA_DIR=$owner $0 destroy' first"
}

# Creates what is missing of the bridge, the namespaces and the veth pairs. Leaves the
# state of existing links alone (a cut stays cut).
net_setup() {
  local n ns veth me other
  me="$(state_path)"
  net_check_owner
  if ! link_exists "$NET_BRIDGE"; then
    other="$(ip -4 -o addr show to "$NET_PREFIX.0/24" | awk '{ print $2 }' | head -n1)"
    [[ -z $other ]] || die "$NET_PREFIX.0/24 is already used by interface $other"
    ip link add name "$NET_BRIDGE" type bridge
    log "created bridge $NET_BRIDGE ($NET_HOST_ADDR/24)"
  fi
  ip link set dev "$NET_BRIDGE" alias "$me"
  ip addr replace "$NET_HOST_ADDR/24" dev "$NET_BRIDGE"
  ip link set dev "$NET_BRIDGE" up
  net_allow_forwarding
  for n in "${NODES[@]}"; do
    ns="$(ns_name "$n")" veth="$(veth_name "$n")"
    if [[ ! -e /run/netns/$ns ]]; then
      ip netns add "$ns"
      log "created network namespace $ns"
    fi
    if ! link_exists "$veth"; then
      ip link add name "$veth" type veth peer name "$NET_NS_IF" netns "$ns"
      ip link set dev "$veth" up
      log "created veth $veth ($NET_BRIDGE) <-> $ns:$NET_NS_IF ($(node_addr "$n")/24)"
    fi
    ip link set dev "$veth" master "$NET_BRIDGE"
    ip -n "$ns" link set dev lo up
    ip -n "$ns" addr replace "$(node_addr "$n")/24" dev "$NET_NS_IF"
    ip -n "$ns" link set dev "$NET_NS_IF" up
  done
}

# With br_netfilter, bridged frames pass the iptables FORWARD chain, whose policy is DROP
# where Docker runs; let the traffic between the nodes through.
net_allow_forwarding() {
  [[ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)" == 1 ]] || return 0
  command -v iptables >/dev/null 2>&1 || return 0
  iptables -C FORWARD -i "$NET_BRIDGE" -o "$NET_BRIDGE" -j ACCEPT 2>/dev/null ||
    iptables -I FORWARD 1 -i "$NET_BRIDGE" -o "$NET_BRIDGE" -j ACCEPT ||
    log "warning: could not let $NET_BRIDGE traffic through the iptables FORWARD chain"
}

# Deletes the namespaces, veths and bridge (unless another state directory owns them).
net_teardown() {
  local n ns veth owner me
  me="$(state_path)"
  if link_exists "$NET_BRIDGE"; then
    owner="$(net_owner)"
    if [[ -n $owner && $owner != "$me" ]]; then
      log "leaving bridge $NET_BRIDGE and the namespaces: they belong to the cluster in $owner"
      return 0
    fi
  fi
  net_clear_nft
  for n in "${NODES[@]}"; do
    ns="$(ns_name "$n")" veth="$(veth_name "$n")"
    # The veth first: a deleted namespace takes its end of the pair away asynchronously.
    if link_exists "$veth"; then ip link delete dev "$veth"; fi
    if [[ -e /run/netns/$ns ]]; then
      ip netns delete "$ns"
      log "deleted network namespace $ns and veth $veth"
    fi
  done
  if command -v iptables >/dev/null 2>&1; then
    while iptables -D FORWARD -i "$NET_BRIDGE" -o "$NET_BRIDGE" -j ACCEPT 2>/dev/null; do :; done
  fi
  if link_exists "$NET_BRIDGE"; then
    ip link delete dev "$NET_BRIDGE"
    log "deleted bridge $NET_BRIDGE"
  fi
}

# Network faults of cut/lossy, recorded for status. KIND is cut or loss (with PERCENT).
fault_of() { # N KIND: prints the recorded value ("" for cut); fails when there is none
  local line
  line="$(grep -E "^$1 $2( |\$)" "$STATE_DIR/$NETFAULTS_FILE" 2>/dev/null | tail -n1)" || return 1
  line=${line#"$1 $2"}
  printf '%s' "${line# }"
}
mark_fault() { # N KIND [VALUE]
  local f="$STATE_DIR/$NETFAULTS_FILE" rest
  rest="$(grep -vE "^$1 $2( |\$)" "$f" 2>/dev/null || true)"
  {
    [[ -z $rest ]] || printf '%s\n' "$rest"
    echo "$1 $2${3:+ $3}"
  } >"$f.tmp"
  mv "$f.tmp" "$f"
}
# What status shows of node N's network faults: "cut", "loss 30%", "cut,loss 100%" or "".
faults_text() {
  local n=$1 out="" v
  if fault_of "$n" cut >/dev/null; then out="cut"; fi
  if v="$(fault_of "$n" loss)"; then out+="${out:+,}loss $v%"; fi
  printf '%s' "$out"
}

# Drops PERCENT % of the frames the bridge sends to node N with nftables (a fallback for
# kernels without sch_netem).
nft_loss() { # N PERCENT
  local n=$1 pct=$2 veth chain limit
  veth="$(veth_name "$n")" chain="loss$n"
  if ! command -v nft >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "the kernel has no netem and nft is missing: install nftables"
    apt_install nftables
  fi
  limit="$(awk -v p="$pct" 'BEGIN { printf "%d", p * 100 + 0.5 }')"
  nft add table bridge "$NET_NFT_TABLE"
  nft add chain bridge "$NET_NFT_TABLE" "$chain" '{ type filter hook postrouting priority 0; policy accept; }'
  nft flush chain bridge "$NET_NFT_TABLE" "$chain"
  if ((limit >= 10000)); then
    nft add rule bridge "$NET_NFT_TABLE" "$chain" oifname "\"$veth\"" drop
  elif ((limit > 0)); then
    nft add rule bridge "$NET_NFT_TABLE" "$chain" oifname "\"$veth\"" numgen random mod 10000 '<' "$limit" drop
  fi
}
net_clear_nft() {
  command -v nft >/dev/null 2>&1 || return 0
  if nft list table bridge "$NET_NFT_TABLE" >/dev/null 2>&1; then
    nft delete table bridge "$NET_NFT_TABLE"
  fi
}

# Sets every root-side veth up and removes all packet loss; forgets the recorded faults.
net_heal() {
  local n veth
  for n in "${NODES[@]}"; do
    veth="$(veth_name "$n")"
    link_exists "$veth" || continue
    if ! ip link show dev "$veth" up | grep -q .; then
      ip link set dev "$veth" up
      log "node $n: link $veth up again"
    fi
    if tc qdisc show dev "$veth" root | grep -q netem; then
      tc qdisc delete dev "$veth" root
      log "node $n: packet loss on $veth removed"
    fi
  done
  if command -v nft >/dev/null 2>&1 && nft list table bridge "$NET_NFT_TABLE" >/dev/null 2>&1; then
    nft delete table bridge "$NET_NFT_TABLE"
    log "packet loss rules (nftables table bridge $NET_NFT_TABLE) removed"
  fi
  rm -f "$STATE_DIR/$NETFAULTS_FILE"
}

# Serialises the commands that change the cluster. The lock is on the directory itself.
lock_state() {
  exec 9<"$STATE_DIR"
  flock -n 9 && return 0
  log "waiting for another $PROG command to release $STATE_DIR"
  flock -w "$TIMEOUT" 9 || die "another $PROG command still holds $STATE_DIR"
}

# ----- node files and processes ----------------------------------------------------------
ndir() { printf '%s/node%s' "$STATE_DIR" "$1"; }

render_cnf() {
  local n=$1 d members text
  d="$(ndir "$n")"
  members="$(node_addr 1):${GROUP_PORT[1]},$(node_addr 2):${GROUP_PORT[2]},$(node_addr 3):${GROUP_PORT[3]}"
  [[ -r $TEMPLATE ]] || die "template $TEMPLATE is missing"
  text="$(<"$TEMPLATE")"
  shopt -u patsub_replacement 2>/dev/null || true
  text=${text//@NODE@/$n}
  text=${text//@NODE_NAME@/node$n}
  text=${text//@ADDR@/$(node_addr "$n")}
  text=${text//@DATADIR@/$d/data}
  text=${text//@SOCKET@/$d/mariadbd.sock}
  text=${text//@PIDFILE@/$d/mariadbd.pid}
  text=${text//@ERRLOG@/$d/error.log}
  text=${text//@SQL_PORT@/${SQL_PORT[n]}}
  text=${text//@GROUP_PORT@/${GROUP_PORT[n]}}
  text=${text//@IST_PORT@/${IST_PORT[n]}}
  text=${text//@SST_PORT@/${SST_PORT[n]}}
  text=${text//@CLUSTER_NAME@/$CLUSTER_NAME}
  text=${text//@CLUSTER_MEMBERS@/$members}
  text=${text//@BUFFER_POOL@/$BUFFER_POOL}
  text=${text//@GCACHE_SIZE@/$GCACHE_SIZE}
  if grep -qE '@[A-Z_]+@' <<<"$text"; then
    die "unknown placeholder in $TEMPLATE: $(grep -oE '@[A-Z_]+@' <<<"$text" | head -n1)"
  fi
  printf '%s\n' "$text" >"$d/my.cnf"
  give_to_owner "$d/my.cnf"
}

# Creates node N's system tables once (root@localhost, @127.0.0.1 and @::1, no password).
ensure_datadir() {
  local n=$1 d out
  d="$(ndir "$n")"
  [[ -f $d/.installed ]] && return 0
  [[ -f $d/data/grastate.dat ]] && die "node $n has Galera state but no install marker; 'destroy' and 'up' again"
  rm -rf "$d/data"
  if ! out="$(as_owner mariadb-install-db --no-defaults --datadir="$d/data" \
    --auth-root-authentication-method=normal --skip-test-db 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "mariadb-install-db failed for node $n"
  fi
  touch "$d/.installed"
  give_to_owner "$d/.installed"
}

# Prints the pid of node N's mariadbd; fails when it is not running.
node_pid() {
  local d pid f cmdline
  d="$(ndir "$1")"
  for f in "$d/mariadbd.pid" "$d/launch.pid"; do
    [[ -r $f ]] || continue
    pid="$(<"$f")"
    [[ $pid =~ ^[0-9]+$ ]] || continue
    # The pid must be a live mariadbd of this node (not a reused pid, not a zombie).
    cmdline="$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline")" || continue
    if grep -qxF -- "--defaults-file=$d/my.cnf" <<<"$cmdline"; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

# running | paused | dead
node_process() {
  local pid stat
  pid="$(node_pid "$1")" || {
    echo dead
    return 0
  }
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || {
    echo dead
    return 0
  }
  stat=${stat##*) }
  case ${stat%% *} in
  T | t) echo paused ;;
  *) echo running ;;
  esac
}

node_sql() {
  local n=$1
  shift
  timeout -k 2 10 mariadb --no-defaults --protocol=socket --socket="$(ndir "$n")/mariadbd.sock" \
    --user=root --connect-timeout=3 --batch --skip-column-names -e "$*"
}

# Fills W with node N's wsrep status; fails if the node does not answer.
declare -A W=()
read_status() {
  local out k v
  W=()
  out="$(node_sql "$1" "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size',
    'wsrep_cluster_status','wsrep_local_state_comment','wsrep_ready','wsrep_last_committed')" \
    2>/dev/null)" || return 1
  while IFS=$'\t' read -r k v; do
    [[ -n $k ]] && W[$k]=$v
  done <<<"$out"
  [[ -n ${W[wsrep_ready]:-} ]]
}

# True when node N answers and is Synced, ready and in a Primary component of SIZE
# (any size when SIZE is empty).
node_healthy() {
  local size=${2:-}
  read_status "$1" || return 1
  [[ ${W[wsrep_local_state_comment]} == Synced && ${W[wsrep_cluster_status]} == Primary &&
    ${W[wsrep_ready]} == ON ]] || return 1
  [[ -z $size || ${W[wsrep_cluster_size]} == "$size" ]]
}

grastate() { # N FIELD: prints FIELD of node N's grastate.dat (nothing if there is none)
  local f
  f="$(ndir "$1")/data/grastate.dat"
  [[ -r $f ]] || return 0
  sed -n "/^$2:/{s/^$2:[[:space:]]*//p;q}" "$f"
}

# gmcast.isolate is not shown in @@wsrep_provider_options, so 'partition' records the
# nodes it isolated; the mark goes when the node stops or 'heal' runs.
is_partitioned() { grep -qx "$1" "$STATE_DIR/partitioned" 2>/dev/null; }
unmark_partitioned() {
  local f="$STATE_DIR/partitioned" rest
  [[ -f $f ]] || return 0
  rest="$(grep -vx "$1" "$f" || true)"
  if [[ -n $rest ]]; then printf '%s\n' "$rest" >"$f"; else rm -f "$f"; fi
}

# Recovered InnoDB positions (uuid:seqno) of nodes whose grastate says seqno -1.
declare -a RECOVERED=()
recover_position() { # N: sets RECOVERED[N]
  local n=$1 d out pos t0=$EPOCHREALTIME
  d="$(ndir "$n")"
  [[ -n ${RECOVERED[n]:-} ]] && return 0
  log "node $n stopped uncleanly; recovering its position from InnoDB"
  # The position is printed once the redo log is applied; the shutdown after it would wait
  # for InnoDB's purge of the crashed node's backlog (seen to take over ten minutes on a
  # busy machine, ignoring SIGTERM), so purge stays off (force-recovery 2: no purge, no
  # background master thread) and SIGKILL follows a SIGTERM that is not obeyed. The real
  # start that follows purges as usual.
  out="$(cd "$d" && as_owner timeout -k 10 180 "$MARIADBD" --defaults-file="$d/my.cnf" \
    --wsrep-recover --innodb-force-recovery=2 --disable-log-error \
    --pid-file="$d/recover.pid" 2>&1 9<&-)" || true
  pos="$(sed -n 's/.*WSREP: Recovered position:[[:space:]]*//p' <<<"$out" | tail -n1)"
  if [[ ! $pos =~ ^[0-9a-f-]{36}:-?[0-9]+ ]]; then
    printf '%s\n' "$out" | tail -n 20 >&2
    die "could not recover the position of node $n"
  fi
  log "node $n recovered position $pos (in $(since "$t0")s)"
  RECOVERED[n]=$pos
}

# True when stopped node N has joined a cluster before but its grastate lacks a seqno.
needs_recovery() {
  local uuid
  uuid="$(grastate "$1" uuid)"
  [[ -n $uuid && $uuid != "$NIL_UUID" && "$(grastate "$1" seqno)" == -1 ]]
}

# Sets SEQNO to the last committed seqno of stopped node N (-1: none).
SEQNO=-1
node_seqno() {
  local n=$1 uuid
  SEQNO=-1
  uuid="$(grastate "$n" uuid)"
  [[ -n $uuid && $uuid != "$NIL_UUID" ]] || return 0
  if needs_recovery "$n"; then
    recover_position "$n"
    SEQNO=${RECOVERED[n]#*:}
    SEQNO=${SEQNO%%,*}
  else
    SEQNO="$(grastate "$n" seqno)"
  fi
}

# Starts node N in the background; MODE is bootstrap or join.
launch_node() {
  local n=$1 mode=$2 d pid i
  local -a cmd
  d="$(ndir "$n")"
  render_cnf "$n"
  ensure_datadir "$n"
  cmd=("$MARIADBD" "--defaults-file=$d/my.cnf")
  if needs_recovery "$n"; then
    recover_position "$n"
    cmd+=("--wsrep_start_position=${RECOVERED[n]}")
  fi
  [[ $mode == bootstrap ]] && cmd+=(--wsrep-new-cluster)
  if ((EUID == 0)); then
    cmd=(setpriv --reuid="$RUN_USER" --regid="$(id -g "$RUN_USER")" --init-groups -- "${cmd[@]}")
  fi
  # ip netns exec, setsid (not a group leader here) and setpriv exec without forking, so
  # launch.pid is mariadbd's pid in both modes.
  if ((NETNS)); then cmd=(ip netns exec "$(ns_name "$n")" "${cmd[@]}"); fi
  rm -f "$d/launch.pid"
  touch "$d/console.log" "$d/error.log"
  give_to_owner "$d/console.log" "$d/error.log"
  # Own session, so the node outlives this shell; fd 9 (the state lock) is not inherited.
  (cd "$d" && exec setsid "${cmd[@]}" </dev/null >>"$d/console.log" 2>&1 9<&-) &
  pid=$!
  echo "$pid" >"$d/launch.pid"
  give_to_owner "$d/launch.pid"
  disown 2>/dev/null || true
  # Until the subshell has exec'd, its command line is this script's and node_pid does not
  # recognise it; wait for that (briefly), so that callers do not take it for an early exit.
  for ((i = 0; i < 100; i++)); do
    node_pid "$n" >/dev/null && break
    [[ -r /proc/$pid/cmdline && -n "$(tr -d '\0' <"/proc/$pid/cmdline" 2>/dev/null)" ]] || break
    sleep 0.05
  done
}

# Waits until node N is Synced in a Primary component; reports the time taken.
wait_node_synced() {
  local n=$1 t0=$2 deadline=$((SECONDS + TIMEOUT))
  while :; do
    if ! node_pid "$n" >/dev/null; then
      log "node $n exited while starting; end of $(ndir "$n")/error.log:"
      tail -n 30 "$(ndir "$n")/error.log" >&2 || true
      return 1
    fi
    node_healthy "$n" && break
    if ((SECONDS >= deadline)); then
      log "node $n is not Synced after ${TIMEOUT}s; see $(ndir "$n")/error.log"
      return 1
    fi
    sleep 0.5
  done
  log "node $n Synced after $(since "$t0")s (cluster size ${W[wsrep_cluster_size]})"
}

# Prints how node N got its state during its last start (from the error log).
transfer_kind() {
  local log_file offset=$2 lines
  log_file="$(ndir "$1")/error.log"
  lines="$(tail -c +"$((offset + 1))" "$log_file" 2>/dev/null || true)"
  # The SST script runs on every join; it says whether it copied the datadir (SST) or
  # bypassed the copy and let Galera send the missing write-sets (IST).
  if grep -qE 'WSREP_SST: .*IST completed on joiner' <<<"$lines"; then
    echo "IST (incremental, $(sed -n 's/.*Receiving IST: \([0-9]*\) writesets.*/\1/p' <<<"$lines" | head -n1) write-sets)"
  elif grep -qE 'WSREP_SST: .*SST completed on joiner' <<<"$lines"; then
    echo "SST (full copy)"
  elif grep -q 'WSREP: IST received' <<<"$lines"; then
    echo "IST (incremental)"
  else
    echo none
  fi
}

start_and_wait() { # N MODE
  local n=$1 mode=$2 t0 offset busy
  busy="$(busy_ports_of "$n")"
  [[ -z $busy ]] || die "node $n cannot start: port(s) ${busy% } already in use"
  offset="$(stat -c %s "$(ndir "$n")/error.log" 2>/dev/null || echo 0)"
  t0=$EPOCHREALTIME
  log "starting node $n ($mode)"
  launch_node "$n" "$mode"
  wait_node_synced "$n" "$t0" || die "node $n did not reach Synced"
  [[ $mode == bootstrap ]] || log "node $n state transfer: $(transfer_kind "$n" "$offset")"
}

# Waits for 3 Synced nodes in one Primary component.
wait_cluster() {
  local limit=$1 t0=$EPOCHREALTIME deadline=$((SECONDS + $1)) n ok
  while :; do
    ok=1
    for n in "${NODES[@]}"; do
      if [[ $(node_process "$n") != running ]] || ! node_healthy "$n" 3; then
        ok=0
        break
      fi
    done
    if ((ok)); then
      log "cluster Synced: 3 nodes in one Primary component (waited $(since "$t0")s)"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      log "cluster not Synced after ${limit}s"
      return 1
    fi
    sleep 0.5
  done
}

stop_node() { # N: clean shutdown, SIGKILL after TIMEOUT
  local n=$1 pid deadline
  pid="$(node_pid "$n")" || {
    log "node $n is not running"
    return 0
  }
  unmark_partitioned "$n"
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid"
  deadline=$((SECONDS + TIMEOUT))
  while node_pid "$n" >/dev/null; do
    if ((SECONDS >= deadline)); then
      log "node $n did not stop within ${TIMEOUT}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      return 1
    fi
    sleep 0.3
  done
  log "node $n stopped"
}

node_arg() {
  [[ ${1:-} =~ ^[123]$ ]] || die "$E_USAGE" "expected a node number 1, 2 or 3, got '${1:-}' (see --help)"
}

running_nodes() {
  local n
  for n in "${NODES[@]}"; do
    [[ $(node_process "$n") == dead ]] || printf '%s ' "$n"
  done
}

# ----- commands --------------------------------------------------------------------------
cmd_up() {
  local t0=$EPOCHREALTIME n running fresh=1 best=0 best_seqno=-2 seqno uuid busy=""
  if ((NETNS)); then net_check_owner; fi
  ensure_packages
  resolve_run_user
  find_binaries
  prepare_state_dir
  lock_state
  if ! load_ports; then
    choose_ports
    save_ports
  fi
  if ((NETNS)); then net_setup; fi
  running="$(running_nodes)"
  if [[ -n $running ]]; then
    if [[ "$running" == "1 2 3 " ]]; then
      if wait_cluster 5 2>/dev/null; then
        log "cluster already running: $(urls_line)"
        return 0
      fi
      die "all three nodes run but the cluster is not Synced; see '$0 status', try '$0 heal'"
    fi
    # Some nodes run: start the others as joiners.
    for n in $running; do
      node_healthy "$n" && best=$n && break
    done
    ((best > 0)) || die "nodes $running run but none is Synced in a Primary component; try '$0 heal' or '$0 down'"
    for n in "${NODES[@]}"; do
      [[ $(node_process "$n") == dead ]] && start_and_wait "$n" join
    done
    wait_cluster "$TIMEOUT" || die "cluster did not become Synced"
    log "cluster up: $(urls_line)"
    return 0
  fi

  # Nothing runs: (re)start from the datadirs, on a healed network. Ports may have been
  # taken meanwhile.
  if ((NETNS)); then net_heal; fi
  for n in "${NODES[@]}"; do busy+="$(busy_ports_of "$n")"; done
  if [[ -n $busy ]]; then
    log "recorded port(s) ${busy% } now in use; choosing new ports"
    choose_ports
    save_ports
  fi
  for n in "${NODES[@]}"; do
    render_cnf "$n"
    ensure_datadir "$n"
    uuid="$(grastate "$n" uuid)"
    [[ -n $uuid && $uuid != "$NIL_UUID" ]] && fresh=0
  done
  if ((fresh)); then
    best=1
  else
    # Bootstrap from the most advanced node; prefer one marked safe_to_bootstrap on ties.
    for n in "${NODES[@]}"; do
      node_seqno "$n"
      seqno=$SEQNO
      log "node $n: last committed seqno $seqno, safe_to_bootstrap $(grastate "$n" safe_to_bootstrap)"
      if ((seqno > best_seqno)) ||
        { ((seqno == best_seqno)) && [[ "$(grastate "$n" safe_to_bootstrap)" == 1 ]]; }; then
        best=$n best_seqno=$seqno
      fi
    done
    if [[ "$(grastate "$best" safe_to_bootstrap)" != 1 ]]; then
      log "setting safe_to_bootstrap: 1 on node $best (highest seqno $best_seqno)"
      as_owner sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$(ndir "$best")/data/grastate.dat"
    fi
  fi
  start_and_wait "$best" bootstrap
  if ((fresh)); then
    node_sql "$best" "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" ||
      die "could not grant root@127.0.0.1 on node $best"
    # The host reaches the nodes from the bridge address.
    if ((NETNS)); then
      node_sql "$best" "CREATE USER IF NOT EXISTS 'root'@'$NET_PREFIX.%' IDENTIFIED BY '';
        GRANT ALL PRIVILEGES ON *.* TO 'root'@'$NET_PREFIX.%' WITH GRANT OPTION;" ||
        die "could not grant root@'$NET_PREFIX.%' on node $best"
    fi
  fi
  for n in "${NODES[@]}"; do
    ((n == best)) || start_and_wait "$n" join
  done
  wait_cluster "$TIMEOUT" || die "cluster did not become Synced"
  for n in "${NODES[@]}"; do
    timeout 10 mariadb --no-defaults --protocol=tcp -h "$(node_addr "$n")" -P "${SQL_PORT[n]}" -u root \
      --connect-timeout=3 -e 'SELECT 1' >/dev/null ||
      die "root cannot log in over TCP on $(node_addr "$n"):${SQL_PORT[n]}"
  done
  log "cluster up in $(since "$t0")s: $(urls_line)"
}

urls_line() {
  printf 'mysql://root@%s:%s,mysql://root@%s:%s,mysql://root@%s:%s' \
    "$(node_addr 1)" "${SQL_PORT[1]}" "$(node_addr 2)" "${SQL_PORT[2]}" "$(node_addr 3)" "${SQL_PORT[3]}"
}

cmd_urls() {
  need_state
  urls_line
  echo
}

# The isolation column of status for node N: yes/no on 127.0.0.1; in the network-namespace
# mode "no" or a list of partition, cut and "loss P%".
isolation_text() {
  local n=$1 out="" faults
  if ((NETNS == 0)); then
    if is_partitioned "$n"; then echo yes; else echo no; fi
    return 0
  fi
  if is_partitioned "$n"; then out=partition; fi
  faults="$(faults_text "$n")"
  [[ -z $faults ]] || out+="${out:+,}$faults"
  echo "${out:-no}"
}

cmd_status() {
  local n pid proc port iso healthy=0 fmt='%-4s %-5s %-7s %-7s %-4s %-11s %-11s %-5s %s\n' head=port
  need_state
  if ((NETNS)); then
    fmt='%-4s %-16s %-7s %-7s %-4s %-11s %-11s %-5s %s\n' head=address
  fi
  # shellcheck disable=SC2059 # the format is a constant
  printf "$fmt" node "$head" pid process size status state ready isolated
  for n in "${NODES[@]}"; do
    pid="$(node_pid "$n" || echo -)"
    proc="$(node_process "$n")"
    port=${SQL_PORT[n]}
    if ((NETNS)); then port="$(node_addr "$n"):$port"; fi
    if [[ $proc == running ]] && read_status "$n"; then
      # shellcheck disable=SC2059
      printf "$fmt" "$n" "$port" "$pid" "$proc" "${W[wsrep_cluster_size]}" \
        "${W[wsrep_cluster_status]}" "${W[wsrep_local_state_comment]}" "${W[wsrep_ready]}" \
        "$(isolation_text "$n")"
      [[ ${W[wsrep_local_state_comment]} == Synced && ${W[wsrep_cluster_status]} == Primary &&
        ${W[wsrep_ready]} == ON && ${W[wsrep_cluster_size]} == 3 ]] && healthy=$((healthy + 1))
    else
      [[ $proc == running ]] && proc=silent
      iso=-
      if ((NETNS)); then
        iso="$(faults_text "$n")"
        iso=${iso:--}
      fi
      # shellcheck disable=SC2059
      printf "$fmt" "$n" "$port" "$pid" "$proc" - - - - "$iso"
    fi
  done
  if ((healthy == 3)); then
    echo "cluster: healthy (3 Synced nodes, Primary)"
  else
    echo "cluster: degraded ($healthy of 3 nodes Synced in a 3-node Primary component)"
    return "$E_FAIL"
  fi
}

cmd_wait_synced() {
  local limit=${1:-$TIMEOUT}
  [[ $limit =~ ^[0-9]+$ ]] || die "$E_USAGE" "wait-synced: timeout must be whole seconds, got '$limit'"
  need_state
  wait_cluster "$limit"
}

cmd_kill() {
  local n=$1 pid deadline
  need_state
  pid="$(node_pid "$n")" || die "node $n is not running"
  kill -KILL "$pid"
  unmark_partitioned "$n"
  deadline=$((SECONDS + 30))
  while node_pid "$n" >/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  node_pid "$n" >/dev/null && die "node $n (pid $pid) survived SIGKILL"
  log "node $n (pid $pid) killed"
}

cmd_start() {
  local n=$1 m other=0
  resolve_run_user
  find_binaries
  need_state
  lock_state
  if ((NETNS)); then net_setup; fi
  case $(node_process "$n") in
  running)
    log "node $n is already running"
    return 0
    ;;
  paused) die "node $n is paused; use '$0 resume $n'" ;;
  esac
  for m in "${NODES[@]}"; do
    ((m != n)) && [[ $(node_process "$m") != dead ]] && other=$m && break
  done
  ((other > 0)) || die "no other node runs, so node $n has no cluster to join; use '$0 up'"
  # A joiner waits inside mariadbd until a Primary component exists to give it state.
  start_and_wait "$n" join
}

cmd_stop() {
  need_state
  resolve_run_user
  lock_state
  stop_node "$1"
}

cmd_pause() {
  local n=$1 pid
  need_state
  pid="$(node_pid "$n")" || die "node $n is not running"
  [[ $(node_process "$n") == paused ]] && {
    log "node $n is already paused"
    return 0
  }
  kill -STOP "$pid"
  log "node $n (pid $pid) paused"
}

cmd_resume() {
  local n=$1 pid
  need_state
  pid="$(node_pid "$n")" || die "node $n is not running"
  [[ $(node_process "$n") == paused ]] || {
    log "node $n is not paused"
    return 0
  }
  kill -CONT "$pid"
  log "node $n (pid $pid) resumed"
}

cmd_partition() {
  local n=$1 t0
  need_state
  [[ $(node_process "$n") == running ]] || die "node $n is not running (or is paused)"
  t0=$EPOCHREALTIME
  node_sql "$n" "SET GLOBAL wsrep_provider_options='gmcast.isolate=1'" ||
    die "could not isolate node $n"
  is_partitioned "$n" || echo "$n" >>"$STATE_DIR/partitioned"
  wait_non_primary "$n" "after it was isolated"
  log "node $n partitioned from the others: it is ${W[wsrep_cluster_status]} after $(since "$t0")s"
}

# Waits up to 60 s until node N reports a non-Primary component; WHY goes in the error.
wait_non_primary() {
  local n=$1 why=$2 deadline=$((SECONDS + 60))
  until read_status "$n" && [[ ${W[wsrep_cluster_status]} != Primary ]]; do
    ((SECONDS < deadline)) || die "node $n still reports a Primary component 60s $why"
    sleep 0.3
  done
}

# Network-namespace mode: link blgal-vN down; node N loses every peer and every client.
# Returns once node N reports a non-Primary component (at once when it does not run).
cmd_cut() {
  local n=$1 veth t0
  need_state
  veth="$(veth_name "$n")"
  link_exists "$veth" || die "link $veth does not exist; run '$0 up'"
  t0=$EPOCHREALTIME
  ip link set dev "$veth" down
  mark_fault "$n" cut
  if [[ $(node_process "$n") != running ]]; then
    log "node $n cut off (link $veth down); it does not run (or is paused)"
    return 0
  fi
  wait_non_primary "$n" "after its link went down"
  log "node $n cut off (link $veth down): it is ${W[wsrep_cluster_status]} after $(since "$t0")s"
}

# Network-namespace mode: drops PERCENT % of the packets towards node N (netem on the
# bridge side of its veth); node N's own packets still leave. Returns at once.
cmd_lossy() {
  local n=$1 pct=${2:-100} veth out how
  if ! [[ $pct =~ ^[0-9]+(\.[0-9]+)?$ ]] || ! awk -v p="$pct" 'BEGIN { exit !(p <= 100) }'; then
    die "$E_USAGE" "lossy: PERCENT must be a number from 0 to 100, got '$pct'"
  fi
  need_state
  veth="$(veth_name "$n")"
  link_exists "$veth" || die "link $veth does not exist; run '$0 up'"
  if out="$(tc qdisc replace dev "$veth" root netem loss "$pct%" 2>&1)"; then
    how="netem on $veth"
  elif grep -qi unknown <<<"$out"; then
    # Kernels built without sch_netem (some VMs): the same one-way loss with nftables.
    log "tc: ${out//$'\n'/ } (no netem in this kernel); dropping with nftables instead"
    nft_loss "$n" "$pct"
    how="nftables table bridge $NET_NFT_TABLE, frames out of $veth"
  else
    die "tc could not set packet loss on $veth: $out"
  fi
  mark_fault "$n" loss "$pct"
  log "node $n: $pct% of the packets towards it are dropped ($how); its own packets still leave"
}

cmd_heal() {
  local n pid dead=""
  need_state
  resolve_run_user
  lock_state
  if ((NETNS)); then net_heal; fi
  for n in "${NODES[@]}"; do
    if [[ $(node_process "$n") == paused ]]; then
      pid="$(node_pid "$n")"
      kill -CONT "$pid"
      log "node $n resumed"
    fi
  done
  for n in "${NODES[@]}"; do
    case $(node_process "$n") in
    dead)
      dead+="$n "
      unmark_partitioned "$n"
      ;;
    running)
      # Harmless on a node that is not isolated.
      node_sql "$n" "SET GLOBAL wsrep_provider_options='gmcast.isolate=0'" ||
        die "node $n does not answer; cannot undo its isolation"
      if is_partitioned "$n"; then
        unmark_partitioned "$n"
        log "node $n reconnected"
      fi
      ;;
    esac
  done
  [[ -z $dead ]] || die "node(s) ${dead% } not running; start them with '$0 start N'"
  wait_cluster "$TIMEOUT"
}

cmd_down() {
  local n
  if [[ ! -f $STATE_DIR/$MARKER ]]; then
    log "no cluster in $STATE_DIR"
    return 0
  fi
  resolve_run_user
  lock_state
  # Highest node first, so node 1 normally stops last and may bootstrap the next 'up'.
  for n in 3 2 1; do stop_node "$n"; done
}

cmd_destroy() {
  [[ -d $STATE_DIR ]] || {
    log "nothing to destroy: $STATE_DIR does not exist"
    if ((NETNS)); then net_teardown; fi
    return 0
  }
  [[ -f $STATE_DIR/$MARKER ]] || die "$STATE_DIR was not made by $PROG; not deleting it"
  cmd_down
  if ((NETNS)); then net_teardown; fi
  rm -rf -- "$STATE_DIR"
  log "deleted $STATE_DIR"
}

main() {
  local command=${1:-}
  (($# > 0)) && shift
  case $command in
  up | status | urls | down | destroy | heal)
    (($# == 0)) || die "$E_USAGE" "$command takes no arguments (see --help)"
    resolve_mode "$command"
    "cmd_$command"
    ;;
  wait-synced)
    (($# <= 1)) || die "$E_USAGE" "wait-synced takes at most one argument (see --help)"
    resolve_mode "$command"
    cmd_wait_synced "$@"
    ;;
  kill | start | stop | pause | resume | partition | cut)
    (($# == 1)) || die "$E_USAGE" "$command takes one node number (see --help)"
    node_arg "$1"
    resolve_mode "$command"
    [[ $command != cut ]] || need_netns "$command"
    "cmd_$command" "$1"
    ;;
  lossy)
    (($# == 1 || $# == 2)) || die "$E_USAGE" "lossy takes a node number and an optional percentage (see --help)"
    node_arg "$1"
    resolve_mode "$command"
    need_netns "$command"
    cmd_lossy "$@"
    ;;
  -h | --help | help)
    usage
    ;;
  "")
    usage >&2
    exit "$E_USAGE"
    ;;
  *)
    usage >&2
    die "$E_USAGE" "unknown command '$command'"
    ;;
  esac
}

main "$@"
