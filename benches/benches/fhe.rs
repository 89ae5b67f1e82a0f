//! Criterion benches of the FHE core on FheUint64: the ledger's transfer (with and without
//! limits) against raw tfhe-rs sequences for the same semantics, key generation, and
//! compression. Each bench prints its programmable-bootstrap (PBS) count once.

use std::time::Duration;

use blindledger_benches::{
    count_pbs, erc7984_whitepaper, if_then_zero_parallel, outflow_window_transfer,
};
use blindledger_fhe::ops::{self, TransferLimits, Value};
use blindledger_fhe::LedgerWidth;
use blindledger_keyholder::TenantKeys;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use tfhe::prelude::*;
use tfhe::{FheUint32, FheUint64};

fn setup() -> TenantKeys {
    let keys = blindledger_test_support::TestKeys::load_or_generate().expect("bench keys");
    rayon::broadcast(|_| tfhe::set_server_key(keys.server_key.decompress()));
    tfhe::set_server_key(keys.server_key.decompress());
    keys
}

fn transfers(c: &mut Criterion) {
    let keys = setup();
    let enc = |v: u64| FheUint64::encrypt(v, &keys.client_key);
    let (from, to, amount) = (enc(1_000), enc(50), enc(300));
    let (vf, vt, va) = (
        Value::U64(from.clone()),
        Value::U64(to.clone()),
        Value::U64(amount.clone()),
    );
    let limits = TransferLimits {
        max_amount: Some(500),
        window_limit: Some(10_000),
    };
    // The window's allowance (a real encryption: trivial ones can skip bootstraps). 10,000
    // fits 32 bits, so it is counted on 32 bits.
    let remaining = Value::U32(FheUint32::encrypt(9_900u32, &keys.client_key));
    let spent = enc(100);
    let (_, pbs) = count_pbs(|| erc7984_whitepaper(&from, &to, &amount));
    println!("pbs erc7984_whitepaper: {pbs}");
    let (_, pbs) = count_pbs(|| if_then_zero_parallel(&from, &to, &amount));
    println!("pbs if_then_zero_parallel: {pbs}");
    let (_, pbs) =
        count_pbs(|| ops::movement(&vf, Some(&vt), &va, TransferLimits::default(), None));
    println!("pbs ledger_transfer: {pbs}");
    let max_only = TransferLimits {
        window_limit: None,
        ..limits
    };
    let (_, pbs) = count_pbs(|| ops::movement(&vf, Some(&vt), &va, max_only, None));
    println!("pbs ledger_transfer_with_max_amount: {pbs}");
    let window_only = TransferLimits {
        max_amount: None,
        ..limits
    };
    let (_, pbs) = count_pbs(|| ops::movement(&vf, Some(&vt), &va, window_only, Some(&remaining)));
    println!("pbs ledger_transfer_with_window_limit: {pbs}");
    let (_, pbs) = count_pbs(|| ops::movement(&vf, Some(&vt), &va, limits, Some(&remaining)));
    println!("pbs ledger_transfer_with_limits: {pbs}");
    // A window limit above 2^32 keeps a 64-bit allowance.
    let wide = TransferLimits {
        max_amount: Some(500),
        window_limit: Some(1 << 40),
    };
    let wide_remaining = Value::U64(enc((1 << 40) - 100));
    let (_, pbs) = count_pbs(|| ops::movement(&vf, Some(&vt), &va, wide, Some(&wide_remaining)));
    println!("pbs ledger_transfer_with_limits_64_bit_window: {pbs}");
    let (_, pbs) = count_pbs(|| outflow_window_transfer(&from, &to, &amount, 500, 10_000, &spent));
    println!("pbs former_outflow_window_transfer_with_limits: {pbs}");
    let (_, pbs) = count_pbs(|| ops::rebase_allowance(&remaining, LedgerWidth::U64, 10_000, 5_000));
    println!("pbs rebase_allowance_lowered: {pbs}");
    let stored = va.compress().expect("compresses");
    let (_, pbs) = count_pbs(|| Value::decompress(&stored, LedgerWidth::U64));
    println!("pbs decompress_u64: {pbs}");

    let mut group = c.benchmark_group("transfer_u64");
    // Flat sampling: seconds per iteration, so each of the 10 samples runs one or two.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(30));
    group.bench_function("erc7984_whitepaper", |b| {
        b.iter(|| erc7984_whitepaper(&from, &to, &amount))
    });
    group.bench_function("if_then_zero_parallel", |b| {
        b.iter(|| if_then_zero_parallel(&from, &to, &amount))
    });
    group.bench_function("ledger_transfer", |b| {
        b.iter(|| ops::movement(&vf, Some(&vt), &va, TransferLimits::default(), None))
    });
    group.bench_function("ledger_transfer_with_limits", |b| {
        b.iter(|| ops::movement(&vf, Some(&vt), &va, limits, Some(&remaining)))
    });
    group.bench_function("former_outflow_window_transfer_with_limits", |b| {
        b.iter(|| outflow_window_transfer(&from, &to, &amount, 500, 10_000, &spent))
    });
    group.finish();

    let mut group = c.benchmark_group("storage_u64");
    group.sample_size(10);
    println!("bytes compressed u64: {}", stored.len());
    println!(
        "bytes amount input u64: {}",
        blindledger_fhe::wire::encrypt_amount(&keys.public_key, LedgerWidth::U64, 300)
            .expect("encrypts")
            .len()
    );
    group.bench_function("compress", |b| b.iter(|| va.compress()));
    group.bench_function("decompress", |b| {
        b.iter(|| Value::decompress(&stored, LedgerWidth::U64))
    });
    group.finish();
}

fn keygen(c: &mut Criterion) {
    let mut group = c.benchmark_group("keys");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(60));
    group.bench_function("generate_tenant_keys", |b| b.iter(TenantKeys::generate));
    group.finish();
}

criterion_group!(benches, transfers, keygen);
criterion_main!(benches);
