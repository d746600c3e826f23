//! One PBKDF2-HMAC-SHA256 verification at 600,000 iterations: ours (kdf.rs) and the `pbkdf2`
//! crate, beside the hardware floor measured in the same run: 1,200,000 SHA-256 block
//! compressions, 256 blocks (16 KiB) per call as `openssl speed` does, and the same number of
//! single-block `compress256` calls chained through the state (what a straightforward PBKDF2
//! loop costs).
//!
//!   cargo bench -p auth-bench --bench kdf

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

const ITERATIONS: u32 = 600_000;
/// SHA-256's initial state.
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pbkdf2-sha256 600000");
    g.sample_size(20);
    let buffer = vec![[0x5au8; 64]; 256];
    g.bench_function("floor: 1,200,000 compressions, 16 KiB per call", |b| {
        b.iter(|| {
            let mut state = IV;
            for _ in 0..(2 * ITERATIONS as usize).div_ceil(256) {
                sha2::block_api::compress256(&mut state, black_box(&buffer));
            }
            black_box(state)
        })
    });
    g.bench_function("chain: 1,200,000 single-block compress256 calls", |b| {
        b.iter(|| {
            let mut state = IV;
            let mut block = [0u8; 64];
            for _ in 0..2 * ITERATIONS {
                sha2::block_api::compress256(&mut state, std::slice::from_ref(&block));
                block[..4].copy_from_slice(&state[0].to_be_bytes());
            }
            black_box(state)
        })
    });
    g.bench_function("auth-shared kdf (ours)", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            auth_shared::kdf::pbkdf2_hmac_sha256(
                black_box(b"correct horse battery staple"),
                b"0123456789abcdef",
                ITERATIONS,
                &mut out,
            );
            out
        })
    });
    g.bench_function("pbkdf2 crate", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                black_box(b"correct horse battery staple"),
                b"0123456789abcdef",
                ITERATIONS,
                &mut out,
            );
            out
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
