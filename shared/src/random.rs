//! Randomness from the operating system: salts, token ids, request ids, keys.

/// `N` random bytes from the OS generator.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS generator does not fail on any platform Lambda runs; if it ever did, carrying on
    // with predictable salts or token ids would be worse than stopping.
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}

/// A random (version 4) UUID, used as a request id where Lambda gives none.
pub fn uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(bytes()).into_uuid()
}
