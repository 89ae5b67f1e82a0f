#!/usr/bin/env bash
# Builds the ledger (blindledger-ledger), the CLI (blindledger) and the load generator
# (loadgen) with the GPU backend, the cargo feature `gpu` (tfhe's CUDA backend), on a
# machine with no GPU and no CUDA installed. CI never builds it.
#
#   scripts/build-gpu.sh
#
# What it sets up, each step skipped when already done (run it again at will):
#   - cmake (3.24 or later) and g++, with apt-get when missing;
#   - the CUDA 13 compiler and runtime from NVIDIA's PyPI wheels, in a virtual environment
#     under target/gpu-toolchain (about 270 MB);
#   - scripts/gpu/nvcc-wrapper.sh and scripts/gpu/toolchain.cmake, which answer the CUDA
#     backend's probe of the local GPU with the architecture built for: CUDA_SM, default 90
#     (H100, H200);
#   - the CUDA runtime linked statically, so the binaries need only the NVIDIA driver.
# Then builds in release into target/gpu, its own target directory (from scratch on 2 cores:
# 35 minutes, the CUDA backend's kernels about 19 of them), and writes the stripped
# binaries to target/gpu/dist (55-65 MB each).
#
# On the GPU host: the NVIDIA driver 580 or later (CUDA 13); no CUDA toolkit, no Rust.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLCHAIN="$REPO_ROOT/target/gpu-toolchain"
export CARGO_TARGET_DIR="$REPO_ROOT/target/gpu"
DIST="$CARGO_TARGET_DIR/dist"
CUDA_SM="${CUDA_SM:-90}"

# CUDA 13.0 (driver 580 or later). The compiler driver is only in the CUDA 13 nvcc wheel.
CUDA_WHEELS=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-crt==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-cccl==13.0.85
)
BINS=(blindledger-ledger blindledger loadgen)

say() { printf '\n==> %s\n' "$*"; }
die() {
  printf 'build-gpu.sh: error: %s\n' "$*" >&2
  exit 1
}

# Runs a command as root: directly, or through sudo.
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# cmake >= 3.24 and g++, from apt-get when missing.
ensure_build_tools() {
  local missing=()
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  command -v g++ >/dev/null 2>&1 || missing+=(g++)
  python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  if ((${#missing[@]})); then
    command -v apt-get >/dev/null 2>&1 || die "install ${missing[*]} (apt-get not found)"
    mkdir -p "$TOOLCHAIN"
    local log="$TOOLCHAIN/apt-get.log"
    say "installing ${missing[*]} with apt-get (log: $log)"
    if ! {
      as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
          --no-install-recommends "${missing[@]}" </dev/null
    } >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      die "apt-get could not install ${missing[*]}"
    fi
  fi
  local version
  version="$(cmake --version | sed -n 's/^cmake version \([0-9][0-9.]*\).*/\1/p')"
  printf '%s\n%s\n' 3.24 "$version" | sort -V -C || die "cmake $version is older than 3.24"
  command -v cargo >/dev/null 2>&1 || die "cargo not found (rustup: https://rustup.rs)"
}

# The CUDA wheels in a virtual environment; prints the toolkit's directory.
ensure_cuda() {
  local venv="$TOOLCHAIN/venv" stamp="$TOOLCHAIN/venv/.wheels"
  if [[ ! -f $stamp || "$(cat "$stamp")" != "${CUDA_WHEELS[*]}" ]]; then
    say "installing ${CUDA_WHEELS[*]} into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${CUDA_WHEELS[@]}" >&2
    printf '%s' "${CUDA_WHEELS[*]}" >"$stamp"
  fi
  local site cuda
  site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  cuda="$site/nvidia/cu13"
  [[ -x $cuda/bin/nvcc ]] || die "no nvcc in $cuda/bin: the wheels' layout changed"
  # CMake's CUDA support looks for the libraries under lib64.
  [[ -e $cuda/lib64 ]] || ln -s lib "$cuda/lib64"
  printf '%s\n' "$cuda"
}

# The environment the CUDA backend's build script and CMake read.
configure_cuda() {
  local cuda="$1" static="$TOOLCHAIN/cudart-static" bin="$TOOLCHAIN/bin"
  mkdir -p "$static" "$bin"
  # -lcudart finds this libcudart.a first: the runtime is linked in, and the binaries
  # need only the driver's libcuda.so.1 at run time.
  ln -sfn "$cuda/lib/libcudart_static.a" "$static/libcudart.a"
  ln -sfn "$REPO_ROOT/scripts/gpu/nvcc-wrapper.sh" "$bin/nvcc"
  export CUDA_HOME="$cuda" CUDA_PATH="$cuda" REAL_NVCC="$cuda/bin/nvcc" CUDA_SM
  export CUDACXX="$bin/nvcc"
  export CMAKE_TOOLCHAIN_FILE="$REPO_ROOT/scripts/gpu/toolchain.cmake"
  export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-L native=$static"
  "$REAL_NVCC" --version | tail -n 2
}

build() {
  say "cargo build --release --features gpu (sm_$CUDA_SM) into $CARGO_TARGET_DIR"
  local started=$SECONDS
  cargo build --release \
    -p blindledger-ledger -p blindledger-cli -p blindledger-benches \
    --features blindledger-ledger/gpu,blindledger-cli/gpu,blindledger-benches/gpu \
    --bin blindledger-ledger --bin blindledger --bin loadgen
  local elapsed=$((SECONDS - started))
  printf 'built in %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60))
}

package() {
  say "stripped binaries in $DIST"
  mkdir -p "$DIST"
  local bin
  for bin in "${BINS[@]}"; do
    strip -o "$DIST/$bin" "$CARGO_TARGET_DIR/release/$bin"
  done
  ls -lh "${BINS[@]/#/$DIST/}"
  # The CUDA runtime is linked in; the driver's library is loaded at run time.
  if readelf -d "$DIST/blindledger-ledger" | grep -q 'NEEDED.*libcudart'; then
    die "blindledger-ledger links the CUDA runtime dynamically: libcudart.a was not used"
  fi
  printf 'shared libraries needed: %s\n' \
    "$(readelf -d "$DIST/blindledger-ledger" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
}

explain() {
  cat <<EOF

To run them on a GPU host (NVIDIA driver 580 or later; no CUDA toolkit, no Rust):
  scp $DIST/{blindledger-ledger,blindledger} gpu-host:
  gpu-host\$ nvidia-smi            # the driver sees the GPUs
  gpu-host\$ BLINDLEDGER_LEDGER_FHE_BACKEND=gpu ./blindledger-ledger --config ledger.toml
  gpu-host\$ BLINDLEDGER_LEDGER_FHE_BACKEND=gpu ./blindledger dev
loadgen reads policies/ and keeps its test keys through the source tree it was built in:
copy this checkout to the same path there and run it from it:
  rsync -a --exclude target/ $REPO_ROOT/ gpu-host:$REPO_ROOT/
  scp $DIST/loadgen gpu-host:$REPO_ROOT/
  gpu-host\$ cd $REPO_ROOT && ./loadgen --backend gpu --transfers 200 --accounts 16
Built for sm_$CUDA_SM (90: H100, H200; CUDA_SM=80 scripts/build-gpu.sh builds for an A100).
EOF
}

main() {
  cd "$REPO_ROOT"
  ensure_build_tools
  local cuda
  cuda="$(ensure_cuda)"
  configure_cuda "$cuda"
  build
  package
  explain
}

main "$@"
