#!/usr/bin/env bash
# nvcc for building tfhe's CUDA backend (tfhe-cuda-backend) on a machine without a GPU;
# scripts/build-gpu.sh makes it CMake's CUDA compiler (CUDACXX) and sets REAL_NVCC and
# CUDA_SM.
#
#  1. The backend's CMakeLists compile and run check_cuda.cu to learn the local GPU's
#     compute capability. With no GPU they fall back to sm_70, which CUDA 13 rejects and
#     which turns off the Hopper (sm_90) bootstrap kernels. That compile is answered here
#     with a program printing "-arch=sm_$CUDA_SM".
#  2. CMake then compiles for the "native" architecture, which it passes on as
#     -arch=native; with no GPU nvcc would pick its default. It is replaced by an explicit
#     -gencode for sm_$CUDA_SM.
set -euo pipefail

: "${REAL_NVCC:?REAL_NVCC must name the real nvcc (scripts/build-gpu.sh sets it)}"
sm="${CUDA_SM:-90}"
gencode="-gencode=arch=compute_${sm},code=sm_${sm}"

is_probe=0
out=""
prev=""
args=()
for arg in "$@"; do
  case "$arg" in
    */check_cuda.cu) is_probe=1 ;;
  esac
  if [ "$prev" = "-o" ]; then
    out="$arg"
  fi
  prev="$arg"
  case "$arg" in
    -arch=native | --gpu-architecture=native) args+=("$gencode") ;;
    *) args+=("$arg") ;;
  esac
done

if [ "$is_probe" = 1 ] && [ -n "$out" ]; then
  printf '#!/bin/sh\nprintf -- "-arch=sm_%s"\n' "$sm" >"$out"
  chmod +x "$out"
  echo "nvcc-wrapper: no GPU here; check_cuda answers sm_$sm" >&2
  exit 0
fi
exec "$REAL_NVCC" "${args[@]}"
