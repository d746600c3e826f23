//! PBKDF2-HMAC-SHA256 (RFC 8018 §5.2), the one key-derivation function every hash format here
//! uses, written close to the hardware.
//!
//! A generic HMAC re-pads and re-buffers every message; here the HMAC key's inner and outer
//! states are computed once, and each of the 2 × iterations compressions is one call of
//! `sha2::compress256` on a block whose padding never changes. This is what makes a 600,000
//! iteration hash cost little more than 1,200,000 SHA-256 block compressions. The tests check
//! it against the `pbkdf2` crate on vectors and on many random inputs.

use sha2::{Digest, Sha256};

const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    sha2::block_api::compress256(state, std::slice::from_ref(block));
}

fn state_bytes(state: &[u32; 8], out: &mut [u8]) {
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

/// Hashes `data` continuing from `state`, which has already absorbed `absorbed` bytes (a
/// multiple of 64), and applies SHA-256's final padding.
fn finish(mut state: [u32; 8], absorbed: u64, data: &[u8]) -> [u32; 8] {
    let mut blocks = data.chunks_exact(64);
    for block in &mut blocks {
        compress(&mut state, block.try_into().unwrap_or(&[0; 64]));
    }
    let rest = blocks.remainder();
    let bits = (absorbed + data.len() as u64) * 8;
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let len = if rest.len() < 56 { 64 } else { 128 };
    tail[len - 8..len].copy_from_slice(&bits.to_be_bytes());
    for block in tail[..len].chunks_exact(64) {
        compress(&mut state, block.try_into().unwrap_or(&[0; 64]));
    }
    state
}

/// Derives `out.len()` bytes from `password` and `salt` with `rounds` iterations
/// (`rounds` = 0 is treated as 1, as the output of zero iterations is undefined).
pub fn pbkdf2_hmac_sha256(password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
    // HMAC key schedule (RFC 2104): keys longer than a block are hashed first.
    let mut key = [0u8; 64];
    if password.len() > 64 {
        key[..32].copy_from_slice(&Sha256::digest(password));
    } else {
        key[..password.len()].copy_from_slice(password);
    }
    let (mut inner, mut outer) = ([0x36u8; 64], [0x5cu8; 64]);
    for i in 0..64 {
        inner[i] ^= key[i];
        outer[i] ^= key[i];
    }
    let (mut istate, mut ostate) = (IV, IV);
    compress(&mut istate, &inner);
    compress(&mut ostate, &outer);

    // A block holding a 32-byte message after a 64-byte key block: the message, then the
    // padding and the length (96 bytes = 768 bits), which never change.
    let mut block = [0u8; 64];
    block[32] = 0x80;
    block[62] = 0x03;

    let mut salted = Vec::with_capacity(salt.len() + 4);
    for (index, chunk) in out.chunks_mut(32).enumerate() {
        salted.clear();
        salted.extend_from_slice(salt);
        salted.extend_from_slice(&(index as u32 + 1).to_be_bytes());
        // U1 = HMAC(P, S || INT(i))
        let u = finish(istate, 64, &salted);
        state_bytes(&u, &mut block[..32]);
        let mut u = ostate;
        compress(&mut u, &block);
        let mut acc = u;
        // U_j = HMAC(P, U_{j-1}), each half one compression of a fixed-layout block.
        for _ in 1..rounds {
            state_bytes(&u, &mut block[..32]);
            let mut s = istate;
            compress(&mut s, &block);
            state_bytes(&s, &mut block[..32]);
            u = ostate;
            compress(&mut u, &block);
            for (a, w) in acc.iter_mut().zip(&u) {
                *a ^= w;
            }
        }
        let mut bytes = [0u8; 32];
        state_bytes(&acc, &mut bytes);
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// RFC 6070-style vectors for PBKDF2-HMAC-SHA256 (RFC 7914 §11 and the widely published
    /// SHA-256 variants of the RFC 6070 cases).
    #[test]
    fn published_vectors() {
        let cases: &[(&[u8], &[u8], u32, &str)] = &[
            (b"password", b"salt", 1, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"),
            (b"password", b"salt", 2, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"),
            (b"password", b"salt", 4096, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"),
            (
                b"passwordPASSWORDpassword",
                b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
                4096,
                "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9",
            ),
            (b"pass\0word", b"sa\0lt", 4096, "89b69d0516f829893c696226650a8687"),
            (b"passwd", b"salt", 1, "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"),
            (b"Password", b"NaCl", 80000, "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"),
        ];
        for (pw, salt, n, want) in cases {
            let mut out = vec![0u8; want.len() / 2];
            pbkdf2_hmac_sha256(pw, salt, *n, &mut out);
            assert_eq!(&hex(&out), want, "pw={pw:?} salt={salt:?} n={n}");
        }
    }

    /// Differential test against the `pbkdf2` crate: passwords on both sides of the 64-byte
    /// HMAC block (hashed keys), salts that fill zero, one and two SHA-256 blocks, output
    /// lengths that are not multiples of 32.
    #[test]
    fn agrees_with_the_pbkdf2_crate_on_random_inputs() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..2000 {
            let pw: Vec<u8> = (0..next() % 150).map(|_| next() as u8).collect();
            let salt: Vec<u8> = (0..next() % 140).map(|_| next() as u8).collect();
            let rounds = 1 + (next() % 40) as u32;
            let len = 1 + (next() % 100) as usize;
            let mut ours = vec![0u8; len];
            let mut theirs = vec![0u8; len];
            pbkdf2_hmac_sha256(&pw, &salt, rounds, &mut ours);
            pbkdf2::pbkdf2_hmac::<Sha256>(&pw, &salt, rounds, &mut theirs);
            assert_eq!(ours, theirs, "case {case}: pw {} B, salt {} B, rounds {rounds}, len {len}", pw.len(), salt.len());
        }
        for rounds in [1000, 600_000] {
            let mut ours = [0u8; 32];
            let mut theirs = [0u8; 32];
            pbkdf2_hmac_sha256(b"correct horse", b"0123456789abcdef", rounds, &mut ours);
            pbkdf2::pbkdf2_hmac::<Sha256>(b"correct horse", b"0123456789abcdef", rounds, &mut theirs);
            assert_eq!(ours, theirs, "rounds {rounds}");
        }
    }
}
