//! The memory window: how many leased deliveries this node holds in memory, against `window`,
//! and which endpoints' queues are full. The engine's machine and the scheduler share it; this
//! file is the only place where the count changes, and its rules are these:
//!
//! 1. **Counted while in memory.** A delivery is counted from the moment it is taken into
//!    memory until it leaves: queued on a lane, in flight, or claimed and on its way to the
//!    loop. Manual attempts are not counted: they are not leased and come one per request.
//! 2. **Never beyond the window.** A fresh delivery takes a place only while one is free
//!    ([`Window::take_fresh`]); the scheduler reserves room before it claims
//!    ([`Window::reserve`]) and gives back what the claim did not fill. So `held` never
//!    exceeds the window, whatever the order in which the two tasks run.
//! 3. **Every way out gives the place back** ([`Window::give_back`]): the attempt finished,
//!    the delivery was released to the store (its lane was full), its endpoint was disabled or
//!    deleted, or the node shuts down.
//!
//! An endpoint whose queue reached `endpoint_queue` is *full*: the scheduler claims nothing for
//! it until its queue has drained to half.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use webhookd_core::EndpointId;

#[derive(Debug)]
pub(crate) struct Window {
    max: usize,
    held: AtomicUsize,
    full: Mutex<HashSet<EndpointId>>,
}

impl Window {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            held: AtomicUsize::new(0),
            full: Mutex::new(HashSet::new()),
        }
    }

    /// Deliveries held in memory now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Places free now.
    pub(crate) fn room(&self) -> usize {
        self.max.saturating_sub(self.held())
    }

    /// Takes up to `wanted` places for a claim and returns how many it took. What the claim
    /// does not fill goes back through [`Self::give_back`].
    pub(crate) fn reserve(&self, wanted: usize) -> usize {
        let mut taken = 0;
        let _ = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                taken = wanted.min(self.max.saturating_sub(held));
                Some(held + taken)
            });
        taken
    }

    /// Takes one place for a fresh delivery; false when the window is full.
    pub(crate) fn take_fresh(&self) -> bool {
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held < self.max).then_some(held + 1)
            })
            .is_ok()
    }

    /// Gives back `count` places of deliveries that left memory.
    pub(crate) fn give_back(&self, count: usize) {
        if count == 0 {
            return;
        }
        let previous = self.held.fetch_sub(count, Ordering::Relaxed);
        debug_assert!(previous >= count, "the window gave back more than it held");
    }

    fn full(&self) -> std::sync::MutexGuard<'_, HashSet<EndpointId>> {
        self.full
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn mark_full(&self, endpoint: &EndpointId) {
        let mut full = self.full();
        if !full.contains(endpoint) {
            full.insert(endpoint.clone());
        }
    }

    /// Un-marks an endpoint; true when it was full (the scheduler may claim for it again).
    pub(crate) fn unmark_full(&self, endpoint: &EndpointId) -> bool {
        self.full().remove(endpoint)
    }

    pub(crate) fn is_full(&self, endpoint: &EndpointId) -> bool {
        self.full().contains(endpoint)
    }

    /// The endpoints the scheduler skips.
    pub(crate) fn full_endpoints(&self) -> Vec<EndpointId> {
        self.full().iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_deliveries_take_places_only_while_some_are_free() {
        let window = Window::new(2);
        assert!(window.take_fresh());
        assert!(window.take_fresh());
        assert!(!window.take_fresh());
        assert_eq!(window.held(), 2);
        window.give_back(1);
        assert!(window.take_fresh());
        assert_eq!(window.room(), 0);
    }

    #[test]
    fn a_claim_reserves_at_most_the_room_left() {
        let window = Window::new(10);
        assert!(window.take_fresh());
        assert_eq!(window.reserve(100), 9);
        assert_eq!(window.held(), 10);
        assert!(!window.take_fresh());
        // The claim found four: the other five places come back.
        window.give_back(5);
        assert_eq!(window.held(), 5);
        assert_eq!(window.reserve(3), 3);
        assert_eq!(window.room(), 2);
    }

    #[test]
    fn full_endpoints_are_listed_until_unmarked() {
        let window = Window::new(1);
        let endpoint = EndpointId::new();
        window.mark_full(&endpoint);
        window.mark_full(&endpoint);
        assert!(window.is_full(&endpoint));
        assert_eq!(window.full_endpoints(), std::slice::from_ref(&endpoint));
        assert!(window.unmark_full(&endpoint));
        assert!(!window.unmark_full(&endpoint));
        assert!(window.full_endpoints().is_empty());
    }
}
