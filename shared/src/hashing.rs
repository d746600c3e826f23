//! Running a password check (or hash) the way every function that takes a password does:
//! on a blocking thread, so it cannot stall other requests on the runtime; holding one of the
//! container's hashing slots (one per core: more hashes at once than cores only adds switching
//! and latency); and within one deadline, the wait for a slot included.
//!
//! A check that misses its deadline is not waited for: the caller treats it as a wrong
//! password (fail closed, and counted by the throttle like any other failure), so a guess that
//! is slow to check (a costly stored hash, two tries for a password not in NFKC, busy cores)
//! answers like any failure. Its thread runs on to the end and keeps its slot until then, so
//! no more hashes run at once than there are slots.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Runs `work` on a blocking thread holding one of `slots`, waiting at most `deadline` for the
/// slot and the work together. `None` when it did not complete within the deadline (or
/// panicked).
pub async fn within_deadline<T, F>(slots: &Arc<Semaphore>, deadline: Duration, work: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let slots = slots.clone();
    let run = async move {
        // The semaphore is never closed, so acquiring cannot fail; if it somehow did, the
        // work would just run without a slot.
        let slot = slots.acquire_owned().await.ok();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .ok()
    };
    tokio::time::timeout(deadline, run).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn late_work_is_not_waited_for_and_keeps_its_slot() {
        let slots = Arc::new(Semaphore::new(1));
        let slow = || std::thread::sleep(Duration::from_millis(300));
        assert_eq!(within_deadline(&slots, Duration::from_millis(50), slow).await, None);
        // The cut-off work still holds the only slot: the next check waits for it.
        assert_eq!(slots.available_permits(), 0);
        let quick = within_deadline(&slots, Duration::from_secs(5), || 7).await;
        assert_eq!(quick, Some(7));
        assert_eq!(slots.available_permits(), 1);
    }
}
