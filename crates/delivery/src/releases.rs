//! Leases this node gives back to the store: the one place that writes them.
//!
//! The engine gives leases back when work leaves memory without an attempt: the overflow of a
//! full endpoint or window, a submission beyond the bounded intake, a record the store refuses,
//! and shutdown. Each of these only hands its keys here ([`Releases::give_back`]); the
//! scheduler writes them ([`Releases::write`]), between its claims, in chunks of [`CHUNK`].
//!
//! **A failed release is kept and tried again.** A released delivery is no longer renewed
//! (see `held.rs`), so a release that is simply dropped would leave it waiting for its lease to
//! expire. A failed write keeps its keys and is tried again after a backoff (from
//! [`FIRST_BACKOFF`], doubling, at most the renewal interval), so a passing store failure
//! delays those deliveries by about as long as it lasts.
//!
//! **Only the scheduler writes, between claims.** A release cut off by a deadline may still
//! commit; the scheduler may then claim those deliveries again under this node's lease. A claim
//! forgets the keys it returns ([`Releases::claimed`]), and since claims and releases are made
//! by one task, one after the other, a kept key is never released while this node works on it.
//!
//! **Memory is bounded**: at most [`KEPT`] keys wait. Beyond that, what does not fit is logged
//! and counted (`webhookd_lease_releases_dropped_total`); its deliveries wait until their
//! lease expires. Reaching the bound takes that many
//! releases failing while the same store goes on committing the ingest that caused them.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use webhookd_core::{EndpointId, MessageId};
use webhookd_store::{Due, Store};

/// Keys waiting to be released, at most.
pub(crate) const KEPT: usize = 100_000;
/// Keys released in one store call at most.
pub(crate) const CHUNK: usize = 1000;
/// The wait before the first retry of a failed release.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(250);

type Key = (MessageId, EndpointId);

/// The leases waiting to be given back.
#[derive(Debug)]
pub(crate) struct Releases {
    owner: String,
    /// The longest wait between two tries.
    max_backoff: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Ordered by message id, so the oldest messages are released first.
    waiting: BTreeSet<Key>,
    /// Set after a failed write: no write before then.
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Releases {
    pub(crate) fn new(owner: String, max_backoff: Duration) -> Self {
        Self {
            owner,
            max_backoff: max_backoff.max(FIRST_BACKOFF),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain data changed under the lock without panicking code in between.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues leases to give back; the scheduler writes them (wake it).
    pub(crate) fn give_back(&self, keys: impl IntoIterator<Item = Key>) {
        let mut dropped = 0u64;
        {
            let mut state = self.state();
            for key in keys {
                if state.waiting.len() < KEPT {
                    state.waiting.insert(key);
                } else if !state.waiting.contains(&key) {
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            metrics::counter!("webhookd_lease_releases_dropped_total").increment(dropped);
            tracing::error!(
                dropped,
                kept = KEPT,
                "too many lease releases are waiting for the store; these deliveries wait for their leases to expire"
            );
        }
    }

    /// Forgets keys that a claim returned: their lease was free after all (a release that
    /// was cut off did commit), and this node works on them again.
    pub(crate) fn claimed(&self, due: &[Due]) {
        let mut state = self.state();
        if state.waiting.is_empty() {
            return;
        }
        for due in due {
            let key = (
                due.delivery.msg_id.clone(),
                due.delivery.endpoint_id.clone(),
            );
            state.waiting.remove(&key);
        }
    }

    /// When [`Self::write`] has work to do: `None` when nothing waits.
    pub(crate) fn due_at(&self) -> Option<Instant> {
        let state = self.state();
        if state.waiting.is_empty() {
            return None;
        }
        Some(state.retry_at.unwrap_or_else(Instant::now))
    }

    /// Writes what waits, chunk by chunk, unless a failure's backoff has not passed. A failure
    /// keeps the keys and sets the next try.
    pub(crate) async fn write(&self, store: &dyn Store) {
        if self.state().retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        while let Some(chunk) = self.next_chunk() {
            match store.release_leases(&self.owner, &chunk).await {
                Ok(()) => {
                    let mut state = self.state();
                    for key in &chunk {
                        state.waiting.remove(key);
                    }
                    state.retry_at = None;
                    state.backoff = Duration::ZERO;
                }
                Err(error) => {
                    let mut state = self.state();
                    state.backoff = if state.backoff.is_zero() {
                        FIRST_BACKOFF
                    } else {
                        (state.backoff * 2).min(self.max_backoff)
                    };
                    state.retry_at = Some(Instant::now() + state.backoff);
                    tracing::warn!(
                        %error,
                        waiting = state.waiting.len(),
                        retry_in = ?state.backoff,
                        "releasing leases failed; retrying"
                    );
                    return;
                }
            }
        }
    }

    /// At shutdown, once claims have stopped: writes everything that waits, each chunk once.
    /// What fails keeps its lease until it expires (or, with SQLite, until the next start).
    pub(crate) async fn flush(&self, store: &dyn Store) {
        let waiting = std::mem::take(&mut self.state().waiting);
        let waiting: Vec<Key> = waiting.into_iter().collect();
        for chunk in waiting.chunks(CHUNK) {
            if let Err(error) = store.release_leases(&self.owner, chunk).await {
                tracing::warn!(%error, count = chunk.len(), "releasing leases at shutdown failed; they expire");
            }
        }
    }

    fn next_chunk(&self) -> Option<Vec<Key>> {
        let state = self.state();
        let chunk: Vec<Key> = state.waiting.iter().take(CHUNK).cloned().collect();
        (!chunk.is_empty()).then_some(chunk)
    }

    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.state().waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        (MessageId::new(), EndpointId::new())
    }

    /// The queue holds at most `KEPT` keys, a key once, and is due at once while nothing failed.
    #[test]
    fn the_queue_is_bounded_and_keeps_a_key_once() {
        let releases = Releases::new("node".into(), Duration::from_secs(15));
        assert_eq!(releases.due_at(), None);
        let first = key();
        releases.give_back([first.clone(), first.clone()]);
        assert_eq!(releases.waiting(), 1);
        assert!(releases.due_at().is_some_and(|at| at <= Instant::now()));
        releases.give_back((0..KEPT).map(|_| key()));
        assert_eq!(releases.waiting(), KEPT);
        releases.give_back([first]);
        assert_eq!(releases.waiting(), KEPT);
    }
}
