//! Signing and verifying one access token (HS256), as the login and profile functions do.
//!
//!   cargo bench -p auth-bench --bench jwt

use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let cfg = auth_shared::config::TokenConfig {
        issuer: "auth-service".into(),
        audience: "auth-service".into(),
        ttl_seconds: 3600,
    };
    let key = auth_shared::token::Key::new("local", &[7u8; 32]).unwrap();
    let id = uuid::Uuid::from_u128(42);
    let now = auth_shared::token::now();
    let token = auth_shared::token::issue(&cfg, &key, id, "alice", None, now).unwrap();
    let mut g = c.benchmark_group("jwt hs256");
    g.bench_function("sign", |b| {
        b.iter(|| auth_shared::token::issue(&cfg, &key, id, "alice", None, now).unwrap())
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            let kid = auth_shared::token::key_id(&token).unwrap();
            assert_eq!(kid, "local");
            auth_shared::token::verify(&cfg, &key, &token, now).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
