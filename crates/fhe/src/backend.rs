//! Where FHE work runs: on the CPU, or on NVIDIA GPUs through tfhe's CUDA backend.
//!
//! The backend is chosen when an executor starts; a binary built without the `gpu` feature
//! runs on the CPU only and refuses the GPU with [`BackendError::GpuNotBuilt`]. Keys,
//! parameters and stored values are the same on both: an instance on a GPU and one on the
//! CPU read each other's stored values.

use std::cell::Cell;

use serde::{Deserialize, Serialize};

/// The hardware the ledger's homomorphic operations run on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FheBackend {
    /// tfhe's CPU backend, on rayon threads.
    #[default]
    Cpu,
    /// tfhe's CUDA backend: needs a binary built with the `gpu` feature, NVIDIA GPUs and
    /// their driver.
    Gpu,
}

impl FheBackend {
    /// The name of the backend in configuration files and on command lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
        }
    }

    /// Whether this binary was built with this backend.
    pub fn is_built(self) -> bool {
        match self {
            Self::Cpu => true,
            Self::Gpu => cfg!(feature = "gpu"),
        }
    }
}

impl std::fmt::Display for FheBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FheBackend {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            other => Err(BackendError::Unknown(other.to_owned())),
        }
    }
}

/// Why FHE work cannot run on the backend asked for.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A backend name other than `cpu` or `gpu`.
    #[error("unknown FHE backend {0:?}: expected \"cpu\" or \"gpu\"")]
    Unknown(String),
    /// The GPU was asked of a binary built without the `gpu` feature.
    #[error(
        "the GPU backend is not in this binary: build it with the `gpu` feature \
         (scripts/build-gpu.sh), or run on the CPU"
    )]
    GpuNotBuilt,
    /// The binary has the GPU backend, but the CUDA driver sees no GPU.
    #[error(
        "the GPU backend found no usable CUDA GPU: check `nvidia-smi`, the NVIDIA driver \
         (580 or later, for CUDA 13) and CUDA_VISIBLE_DEVICES"
    )]
    NoGpu,
    /// The FHE threads could not be started.
    #[error("starting the FHE threads: {0}")]
    Threads(#[from] std::io::Error),
}

thread_local! {
    /// Whether the server key installed on this thread is a GPU key. tfhe keeps the key in
    /// a thread-local of its own and does not say which kind it holds.
    static GPU_KEY: Cell<bool> = const { Cell::new(false) };
}

/// Records which kind of key was just installed on the calling thread.
pub(crate) fn note_installed(backend: FheBackend) {
    GPU_KEY.set(backend == FheBackend::Gpu);
}

/// Whether operations on the calling thread run on a GPU: those tfhe's CUDA backend lacks
/// take another path there (see [`crate::ops`]).
pub(crate) fn gpu_key_installed() -> bool {
    cfg!(feature = "gpu") && GPU_KEY.get()
}

/// Number of CUDA GPUs the driver shows this process: 0 where it shows none or there is
/// no driver, and without the `gpu` feature.
pub fn gpu_count() -> usize {
    #[cfg(feature = "gpu")]
    {
        use tfhe::core_crypto::gpu::{get_number_of_gpus, is_cuda_available};
        // Counting aborts the process when the driver reports an error (no device, a
        // driver too old for CUDA 13); selecting the first device only fails.
        if !is_cuda_available() {
            return 0;
        }
        get_number_of_gpus() as usize
    }
    #[cfg(not(feature = "gpu"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FheExecutor;

    #[test]
    fn backends_are_named_as_in_configuration_files() {
        for backend in [FheBackend::Cpu, FheBackend::Gpu] {
            assert_eq!(backend.as_str().parse::<FheBackend>().unwrap(), backend);
        }
        let err = "tpu".parse::<FheBackend>().unwrap_err();
        assert!(err.to_string().contains("\"tpu\""), "{err}");
    }

    #[test]
    fn the_gpu_is_refused_where_it_cannot_run() {
        match FheExecutor::on_backend(FheBackend::Gpu, 1, 1, 1) {
            Err(BackendError::GpuNotBuilt) => assert!(!FheBackend::Gpu.is_built()),
            Err(BackendError::NoGpu) => assert_eq!(gpu_count(), 0),
            Ok(executor) => assert_eq!(executor.gpus(), 1),
            Err(other) => panic!("unexpected: {other}"),
        }
        assert!(FheExecutor::on_backend(FheBackend::Cpu, 1, 1, 1).is_ok());
    }
}
