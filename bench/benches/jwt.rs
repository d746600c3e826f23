//! Signing and verifying one access token, as the login and profile functions do: HS256, and
//! RS256 on ring (a 2048-bit key, the size auth-local and the rotation function make).
//!
//!   cargo bench -p auth-bench --bench jwt

use auth_shared::config::TokenConfig;
use auth_shared::signing::Key;
use auth_shared::signing::SigningAlg;
use auth_shared::token::{self};
use criterion::{Criterion, criterion_group, criterion_main};

fn rsa_pem() -> String {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

fn bench_alg(c: &mut Criterion, group: &str, key: &Key) {
    let cfg = TokenConfig {
        issuer: "auth-service".into(),
        audience: "auth-service".into(),
        ttl_seconds: 3600,
    };
    let alg: SigningAlg = key.alg();
    let id = uuid::Uuid::from_u128(42);
    let now = token::now();
    let t = token::issue(&cfg, key, id, "alice", None, now).unwrap();
    let mut g = c.benchmark_group(group);
    g.bench_function("sign", |b| {
        b.iter(|| token::issue(&cfg, key, id, "alice", None, now).unwrap())
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            let kid = token::key_id_for(&t, alg).unwrap();
            assert_eq!(kid, "local");
            token::verify(&cfg, key, &t, now).unwrap()
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    bench_alg(c, "jwt hs256", &Key::new("local", &[7u8; 32]).unwrap());
    let pem = rsa_pem();
    let rsa = Key::rsa_pem("local", &pem).unwrap();
    bench_alg(c, "jwt rs256", &rsa);
    // What a cold start pays once per key version: parsing and checking the private key.
    c.bench_function("rs256 key load", |b| b.iter(|| Key::rsa_pem("local", &pem).unwrap()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
