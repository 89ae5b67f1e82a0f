# CMake toolchain file for building tfhe's CUDA backend without a GPU, passed by
# scripts/build-gpu.sh through the CMAKE_TOOLCHAIN_FILE variable (the cmake crate forwards
# it). CMake's probe of the local GPU's architecture fails where there is none, so its
# answer is given here: the architecture scripts/build-gpu.sh builds for (CUDA_SM).
set(CMAKE_CUDA_COMPILER $ENV{CUDACXX})
if(DEFINED ENV{CUDA_SM})
  set(CMAKE_CUDA_ARCHITECTURES_NATIVE "$ENV{CUDA_SM}-real")
else()
  set(CMAKE_CUDA_ARCHITECTURES_NATIVE "90-real")
endif()
