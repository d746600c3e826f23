//! `shared/src/kdf.rs`, the PBKDF2 of every password hash, compiled on its own so that its unit
//! tests (published vectors, every iteration path against the `pbkdf2` crate on random inputs)
//! build for aarch64 in seconds rather than with the whole service, and run under qemu-user
//! (`tests/aarch64.rs`). On x86-64 auth-shared's own test binary runs them, so here they are
//! compiled for other architectures only.

#![warn(missing_docs)]

#[cfg(any(not(test), not(target_arch = "x86_64")))]
#[path = "../../shared/src/kdf.rs"]
pub mod kdf;
