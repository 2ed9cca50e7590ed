//! Waiting without sleeping blindly: a condition is polled every 20 ms until it holds or a
//! generous deadline passes, and a timeout fails with what was last observed.
//!
//! The deadline is far above what any condition needs on a loaded two-core machine; tests never
//! assert on how long something took, only that it happened (and, where an issue asks for it,
//! on orderings and lower bounds).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How long a condition may take to hold before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `check` until it answers `Ok`, and returns that value. `check` answers `Err` with a
/// description of what it saw, which the failure message shows after `what`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    eventually_within(DEADLINE, what, check).await
}

/// [`eventually`] with another deadline, for a condition that waits out leases and a whole
/// retry schedule.
pub(crate) async fn eventually_within<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(observed) if Instant::now() >= deadline => {
                panic!("timed out after {limit:?} waiting for {what}; last observed: {observed}")
            }
            Err(_) => tokio::time::sleep(POLL_EVERY).await,
        }
    }
}
