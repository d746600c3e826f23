//! The PBKDF2-HMAC-SHA256 of every password hash (`kdf`), as a crate of its own. auth-shared
//! re-exports it as `auth_shared::kdf`.
//!
//! Two reasons for the separate crate:
//! - Release builds optimise this crate for speed (opt-level 3, Cargo.toml) while the rest of
//!   each bootstrap is built for size (opt-level "z"): the register loop reaches about 1.09×
//!   the SHA-256 floor at 3 and 1.16× when built for size, and building the service crate for
//!   size keeps every zip under 3 MB.
//! - Its unit tests (published vectors, every iteration path against the `pbkdf2` crate on
//!   random inputs) build for aarch64 in seconds rather than with the whole service, and run
//!   under qemu-user (`tests/aarch64.rs`).

// The one place unsafe code is allowed: the SHA-256 instructions (SHA-NI, Armv8 SHA2) of the
// PBKDF2 loop, each behind a run-time CPU feature check.
#[allow(unsafe_code)]
pub mod kdf;
