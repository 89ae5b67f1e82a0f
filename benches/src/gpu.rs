//! Measurements on NVIDIA GPUs (the `gpu` feature).
//!
//! tfhe's bootstrap counter (`pbs-stats`) counts the bootstraps of its CPU backend only:
//! it stays still while the CUDA backend computes. Bootstraps on a GPU are therefore counted
//! here by construction, from operations whose count is known.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use tfhe::prelude::*;
use tfhe::{ClientKey, CompressedServerKey, Device, FheUint64, GpuIndex};

/// Bootstraps of one `&` of two fresh 64-bit values: one per block pair (32 blocks of 2
/// bits), on either backend; tfhe's counter shows the same on the CPU.
pub const AND_BOOTSTRAPS: u64 = 32;

/// Threads sending work to each GPU at once, each with its own copy of the key and so its
/// own CUDA streams.
pub const THREADS_PER_GPU: usize = 4;

/// How long each sample keeps the GPUs busy.
const SAMPLE: Duration = Duration::from_secs(2);

/// The bootstrap rate of every GPU together: 64-bit ANDs of values already on the GPU,
/// [`THREADS_PER_GPU`] at once on each, counted as [`AND_BOOTSTRAPS`] each. The best of
/// three samples. `None` when the driver shows no GPU.
pub fn bootstrap_rate(client_key: &ClientKey, server_key: &CompressedServerKey) -> Option<f64> {
    let gpus = blindledger_fhe::backend::gpu_count() as u32;
    if gpus == 0 {
        return None;
    }
    let keys: Vec<tfhe::CudaServerKey> = (0..gpus)
        .map(|gpu| server_key.decompress_to_specific_gpu(GpuIndex::new(gpu)))
        .collect();
    let (a, b) = (
        FheUint64::encrypt(0x5555_5555_5555_5555u64, client_key),
        FheUint64::encrypt(0x3333_3333_3333_3333u64, client_key),
    );
    let threads = keys.len() * THREADS_PER_GPU;
    let best = (0..3)
        .map(|_| {
            let start = Barrier::new(threads);
            let runs: Vec<(u64, Duration)> = std::thread::scope(|scope| {
                let workers: Vec<_> = keys
                    .iter()
                    .flat_map(|key| std::iter::repeat_n(key, THREADS_PER_GPU))
                    .map(|key| scope.spawn(|| ands_for(key, &a, &b, &start)))
                    .collect();
                workers.into_iter().filter_map(|w| w.join().ok()).collect()
            });
            let ands: u64 = runs.iter().map(|(ands, _)| ands).sum();
            let slowest = runs.iter().map(|(_, t)| *t).max().unwrap_or(SAMPLE);
            (ands * AND_BOOTSTRAPS) as f64 / slowest.as_secs_f64()
        })
        .fold(0.0, f64::max);
    Some(best)
}

/// Runs ANDs on the GPU of `key` for [`SAMPLE`], once every thread is ready; returns how
/// many and how long they took.
fn ands_for(
    key: &tfhe::CudaServerKey,
    a: &FheUint64,
    b: &FheUint64,
    start: &Barrier,
) -> (u64, Duration) {
    tfhe::set_server_key(key.clone());
    let (mut a, mut b) = (a.clone(), b.clone());
    a.move_to_device(Device::CudaGpu);
    b.move_to_device(Device::CudaGpu);
    // The first one builds the lookup table and warms the allocator: not counted.
    let _ = std::hint::black_box(&a & &b);
    start.wait();
    let t0 = Instant::now();
    let mut ands = 0;
    while t0.elapsed() < SAMPLE {
        let _ = std::hint::black_box(&a & &b);
        ands += 1;
    }
    (ands, t0.elapsed())
}
