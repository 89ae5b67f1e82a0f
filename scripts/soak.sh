#!/usr/bin/env bash
# The long fault soak (not part of CI): the bank test of services/ledger/tests/galera/soak.rs
# run until at least --jobs jobs were acknowledged. Three Galera nodes in their own network
# namespaces, two ledger instances, a client sending deposits, withdrawals, transfers and
# aggregates (32-bit ledger) while nodes are killed (SIGKILL) and restarted, hung (SIGSTOP),
# cut off (link down), flooded with one-way loss, and a ledger instance restarts. At the end:
# every acknowledged job committed exactly once, balances equal the plaintext model, the
# audit trail verifies; the per-fault report goes to standard output and to
# target/tmp/soak-report.txt.
#
#   scripts/soak.sh [--jobs N]      (default 1000; needs root for the namespaces)
#
# The cluster (target/galera-netns) is destroyed at exit. Expect about 2.5 s per job on two
# cores.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS=1000

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
  --jobs)
    [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || {
      echo "soak.sh: --jobs needs a positive number" >&2
      exit 2
    }
    JOBS=$2
    shift 2
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    echo "soak.sh: unknown argument '$1' (see --help)" >&2
    exit 2
    ;;
  esac
done
((EUID == 0)) || {
  echo "soak.sh: network namespaces need root" >&2
  exit 2
}

# The toolchain and MariaDB as the test command sets them up.
# shellcheck source=scripts/test.sh
source "$REPO_ROOT/scripts/test.sh"
cd "$REPO_ROOT"
TARGET="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
trap stop_soak_cluster EXIT
ensure_toolchain
rm -f "$TARGET/tmp/soak-report.txt"
header "soak: at least $JOBS acknowledged jobs through network, process and ledger faults"
# --workspace: the same features, so the suite's build of tfhe is reused.
BLINDLEDGER_SOAK_JOBS=$JOBS cargo test --release --workspace --test galera \
  a_soak_through_network_faults -- --nocapture --test-threads 1
header "soak report"
cat "$TARGET/tmp/soak-report.txt"
