//! Decompressed server keys, on the CPU or on GPUs, and their installation on the threads
//! that compute with them.

use std::sync::Arc;

use tfhe::{set_server_key, CompressedServerKey, ServerKey};

use crate::backend::{note_installed, BackendError, FheBackend};

/// A decompressed server key, shared by the cache and running jobs.
#[derive(Clone)]
pub struct ServerKeyHandle {
    pub(crate) key_id: Arc<str>,
    key: DeviceKey,
}

/// A decompressed key, where its backend computes with it.
#[derive(Clone)]
enum DeviceKey {
    Cpu(ServerKey),
    /// One copy per GPU the executor's lanes run on, in GPU order; never empty.
    #[cfg(feature = "gpu")]
    Gpu(Arc<[tfhe::CudaServerKey]>),
}

impl std::fmt::Debug for ServerKeyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeyHandle")
            .field("key_id", &self.key_id)
            .field("backend", &self.backend())
            .finish()
    }
}

impl ServerKeyHandle {
    /// Decompresses a server key for the CPU (about a second on two cores).
    pub fn decompress(key_id: &str, compressed: &CompressedServerKey) -> Self {
        Self {
            key_id: Arc::from(key_id),
            key: DeviceKey::Cpu(compressed.decompress()),
        }
    }

    /// Decompresses a server key for `backend` (onto the first GPU on a GPU), for FHE work
    /// run outside an executor (see [`Self::install`]).
    pub fn decompress_on(
        backend: FheBackend,
        key_id: &str,
        compressed: &CompressedServerKey,
    ) -> Result<Self, BackendError> {
        match backend {
            FheBackend::Cpu => Ok(Self::decompress(key_id, compressed)),
            #[cfg(feature = "gpu")]
            FheBackend::Gpu if crate::backend::gpu_count() == 0 => Err(BackendError::NoGpu),
            #[cfg(feature = "gpu")]
            FheBackend::Gpu => Ok(Self::decompress_to_gpus(key_id, compressed, 1)),
            #[cfg(not(feature = "gpu"))]
            FheBackend::Gpu => Err(BackendError::GpuNotBuilt),
        }
    }

    /// Decompresses a server key onto each of the first `gpus` GPUs (at least one), all
    /// at once: each copy is expanded on the CPU, then uploaded.
    #[cfg(feature = "gpu")]
    pub(crate) fn decompress_to_gpus(
        key_id: &str,
        compressed: &CompressedServerKey,
        gpus: usize,
    ) -> Self {
        use rayon::prelude::*;
        let keys: Vec<tfhe::CudaServerKey> = (0..gpus.max(1) as u32)
            .into_par_iter()
            .map(|gpu| compressed.decompress_to_specific_gpu(tfhe::GpuIndex::new(gpu)))
            .collect();
        Self {
            key_id: Arc::from(key_id),
            key: DeviceKey::Gpu(keys.into()),
        }
    }

    /// Identifier of the key (the hex SHA-256 of its serialized compressed form).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The backend this key computes on.
    pub fn backend(&self) -> FheBackend {
        match self.key {
            DeviceKey::Cpu(_) => FheBackend::Cpu,
            #[cfg(feature = "gpu")]
            DeviceKey::Gpu(_) => FheBackend::Gpu,
        }
    }

    /// Installs the key on the calling thread, for FHE work run outside an executor (the
    /// first GPU's copy on a GPU). Every thread the work runs on needs it: install it on a
    /// rayon pool with `broadcast`.
    pub fn install(&self) {
        self.install_for_lane(0);
    }

    /// Installs the key on the calling thread: on a GPU, the copy on the GPU of `lane`.
    #[cfg_attr(
        not(feature = "gpu"),
        allow(unused_variables, reason = "lanes share the CPU key")
    )]
    pub(crate) fn install_for_lane(&self, lane: usize) {
        match &self.key {
            DeviceKey::Cpu(key) => set_server_key(key.clone()),
            // A clone shares the key on the GPU and opens streams of its own.
            #[cfg(feature = "gpu")]
            DeviceKey::Gpu(keys) => set_server_key(keys[lane % keys.len()].clone()),
        }
        note_installed(self.backend());
    }
}
