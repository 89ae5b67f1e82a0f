#!/usr/bin/env bash
# Line coverage of the workspace's own code, measured with cargo-llvm-cov (LLVM source-based
# coverage) over the same tests as scripts/test.sh. Not part of CI: the instrumented build
# lives in its own target directory (target/llvm-cov-target, tfhe compiled once more) and
# the run takes about as long as the suite.
#
#   scripts/coverage.sh                   the whole workspace
#   scripts/coverage.sh -p CRATE [...]    some crates only (their own tests)
#
# Only the workspace's crates are instrumented (cargo-llvm-cov's rustc wrapper), so tfhe runs
# at full speed. Test code (tests/ directories), the test-support crate and benches are left
# out of the figures. Prints line coverage per crate and in all; writes the report to
# target/llvm-cov/coverage-by-crate.txt and cargo-llvm-cov's JSON summary beside it.
#
# Installs what is missing: cargo-llvm-cov from crates.io; llvm-cov and llvm-profdata from
# rustup's llvm-tools component, or else Debian's llvm-N matching rustc's LLVM version.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/test.sh
source "$REPO_ROOT/scripts/test.sh"
cd "$REPO_ROOT"

OUT="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/llvm-cov"
IGNORE='(^|/)(tests|benches)/|crates/test-support/|/\.cargo/registry/|/rustc/'

ensure_llvm_tools() {
  if [[ -n ${LLVM_COV:-} && -n ${LLVM_PROFDATA:-} ]]; then return 0; fi
  if rustup component add llvm-tools-preview >/dev/null 2>&1; then
    log "llvm-tools: rustup's component"
    return 0
  fi
  local major
  major="$(rustc --version --verbose | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
  [[ -n $major ]] || die "cannot tell rustc's LLVM version"
  if [[ ! -x /usr/bin/llvm-cov-$major ]]; then
    apt_install "llvm-$major" || die "no llvm-tools component and no Debian package llvm-$major"
  fi
  export LLVM_COV="/usr/bin/llvm-cov-$major" LLVM_PROFDATA="/usr/bin/llvm-profdata-$major"
  log "llvm-tools: Debian's llvm-$major"
}

ensure_cargo_llvm_cov() {
  if cargo llvm-cov --version >/dev/null 2>&1; then return 0; fi
  log "installing cargo-llvm-cov from crates.io"
  cargo install cargo-llvm-cov --locked
}

# Sums cargo-llvm-cov's per-file line counts by crate directory; prints a table.
by_crate() {
  python3 - "$1" "$REPO_ROOT" <<'EOF'
import json, sys, collections
summary, root = sys.argv[1], sys.argv[2].rstrip("/") + "/"
totals = collections.defaultdict(lambda: [0, 0])
for data in json.load(open(summary))["data"]:
    for f in data["files"]:
        path = f["filename"].removeprefix(root)
        parts = path.split("/")
        name = "/".join(parts[:2]) if parts[0] in ("crates", "services") else parts[0]
        lines = f["summary"]["lines"]
        totals[name][0] += lines["covered"]
        totals[name][1] += lines["count"]
width = max(len(n) for n in totals) if totals else 10
print(f"{'crate':<{width}}  {'lines':>7}  {'covered':>7}  {'%':>6}")
covered = count = 0
for name, (c, n) in sorted(totals.items()):
    covered, count = covered + c, count + n
    print(f"{name:<{width}}  {n:>7}  {c:>7}  {100 * c / max(n, 1):>5.1f}%")
print(f"{'all':<{width}}  {count:>7}  {covered:>7}  {100 * covered / max(count, 1):>5.1f}%")
EOF
}

main() {
  local -a scope=(--workspace)
  if (($#)); then scope=("$@"); fi
  ensure_toolchain
  ensure_llvm_tools
  ensure_cargo_llvm_cov
  note_soak_cluster
  trap cleanup EXIT
  # The services the tests use, as scripts/test.sh starts them.
  if [[ ${scope[*]} == --workspace ]]; then
    ensure_test_services
  else
    # shellcheck disable=SC2119 # no URL: the default search order
    ensure_mariadb
  fi
  mkdir -p "$OUT"
  header "cargo llvm-cov --release ${scope[*]} (instrumented build and tests)"
  cargo llvm-cov --release "${scope[@]}" --no-fail-fast --no-report
  cargo llvm-cov report --release --ignore-filename-regex "$IGNORE" \
    --json --summary-only --output-path "$OUT/summary.json"
  header "line coverage by crate (test code excluded)"
  by_crate "$OUT/summary.json" | tee "$OUT/coverage-by-crate.txt"
}

main "$@"
