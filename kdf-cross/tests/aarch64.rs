//! The kdf unit tests on an aarch64 build, run under qemu-user: the published vectors and the
//! differential tests against the `pbkdf2` crate on random inputs, on the ARMv8 SHA-2 register
//! path (qemu's `max` CPU has the instructions, and the test asserts that path was picked) and
//! on the portable fallback, forced. qemu offers no arm64 CPU model without SHA-2, so the
//! fallback is exercised by calling it directly (the tests' `paths()`).
//!
//! The aarch64 build is this small crate's tests only (sha2 and pbkdf2, a debug build with
//! the hashing crates optimised), linked by cargo-lambda's zig as `sam build` links the
//! bootstraps: seconds, not a second build of the service.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "aarch64-unknown-linux-gnu";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds this crate's unit tests for aarch64; returns the test executable.
fn build_aarch64_tests() -> PathBuf {
    let venv = root().join(".venv/bin");
    let cargo_lambda = venv.join("cargo-lambda");
    assert!(cargo_lambda.is_file(), "{} is missing: run `make tools`", cargo_lambda.display());
    let path = format!("{}:{}", venv.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(&cargo_lambda)
        .args(["lambda", "build", "--target", TARGET, "--tests", "--lib", "-p", "kdf-cross"])
        .args(["--message-format", "json"])
        .current_dir(root())
        .env("PATH", path)
        .output()
        .expect("running cargo lambda build");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo lambda build --tests for {TARGET}:\n{}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Cargo's JSON messages, read without a JSON parser so that building this test for
    // aarch64 too (`--tests` builds every test target) costs nothing.
    stdout
        .lines()
        .filter(|l| l.contains(r#""reason":"compiler-artifact""#))
        .filter(|l| l.contains(r#""name":"kdf_cross""#) && l.contains(r#""test":true"#))
        .find_map(|l| Some(l.split(r#""executable":""#).nth(1)?.split('"').next()?.to_owned()))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no aarch64 test executable in cargo's messages:\n{stdout}"))
}

#[test]
fn kdf_tests_pass_on_aarch64_under_qemu() {
    let exe = build_aarch64_tests();
    let bytes = std::fs::read(&exe).expect("the test executable");
    assert_eq!(
        u16::from_le_bytes([bytes[18], bytes[19]]),
        0xB7,
        "{} is not AArch64",
        exe.display()
    );
    let out = Command::new("qemu-aarch64-static")
        .args(["-cpu", "max", "-L", "/usr/aarch64-linux-gnu"])
        .arg(&exe)
        .arg("--nocapture")
        .env("KDF_EXPECT_REGISTER_PATH", "ARMv8 SHA-2")
        .output()
        .expect("qemu-aarch64-static (apt-get install qemu-user-static libc6-arm64-cross, or `make tools`)");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "the kdf tests failed on aarch64:\n{text}");
    let passed = text
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. ")?.split(' ').next()?.parse::<u32>().ok())
        .unwrap_or_default();
    assert!(passed >= 4, "expected the kdf tests to run, got:\n{text}");
    assert!(text.contains("register path: Some(\"ARMv8 SHA-2\")"), "{text}");
}
