//! The leases this node works under: the one list the scheduler renews.
//!
//! A delivery is taken when the store leases it to this node and the engine gets it: a fresh
//! one handed over after its message committed, or one the scheduler claimed. It is let go
//! when its lease ends or stops mattering: its attempt's record committed (that write ends the
//! lease), its lease is handed to [`crate::releases`] to be given back, its endpoint's queue is
//! dropped (the store canceled those deliveries), or its attempt panicked.
//!
//! **Only what is held is renewed.** A lease the store granted that the engine never got (a
//! claim or an ingest cut off by the store's deadline that committed anyway), or one given
//! back by a release that failed for good, is not renewed: it expires, and a claim (this node's
//! or another's) takes the delivery again. So no lease of this node outlives the work on it
//! by more than one lease.
//!
//! A key is counted, not just present: the same delivery can be let go by one path just after
//! it was taken again by another (a retry recorded, due at once, and claimed before the
//! recorder let go of it), and neither must cancel the other.

use std::collections::HashMap;
use std::sync::Mutex;

use webhookd_core::{EndpointId, MessageId};

type Key = (MessageId, EndpointId);

#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Per message, its endpoints held and how many times each.
    by_message: Mutex<HashMap<MessageId, Vec<(EndpointId, u32)>>>,
}

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, Vec<(EndpointId, u32)>>> {
        // Plain data changed under the lock without panicking code in between.
        self.by_message
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes these deliveries as taken.
    pub(crate) fn take<'a>(&self, keys: impl IntoIterator<Item = (&'a MessageId, &'a EndpointId)>) {
        let mut held = self.lock();
        for (msg, endpoint) in keys {
            if !held.contains_key(msg) {
                held.insert(msg.clone(), Vec::new());
            }
            let Some(entry) = held.get_mut(msg) else {
                continue;
            };
            match entry.iter_mut().find(|(id, _)| id == endpoint) {
                Some((_, count)) => *count += 1,
                None => entry.push((endpoint.clone(), 1)),
            }
        }
    }

    /// Notes these deliveries as let go; a key not held is ignored.
    pub(crate) fn let_go<'a>(
        &self,
        keys: impl IntoIterator<Item = (&'a MessageId, &'a EndpointId)>,
    ) {
        let mut held = self.lock();
        for (msg, endpoint) in keys {
            let Some(entry) = held.get_mut(msg) else {
                continue;
            };
            if let Some(at) = entry.iter().position(|(id, _)| id == endpoint) {
                entry[at].1 -= 1;
                if entry[at].1 == 0 {
                    entry.swap_remove(at);
                }
            }
            if entry.is_empty() {
                held.remove(msg);
            }
        }
    }

    /// Every delivery held, once each.
    pub(crate) fn keys(&self) -> Vec<Key> {
        self.lock()
            .iter()
            .flat_map(|(msg, endpoints)| {
                endpoints
                    .iter()
                    .map(move |(endpoint, _)| (msg.clone(), endpoint.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut keys: Vec<Key>) -> Vec<Key> {
        keys.sort();
        keys
    }

    #[test]
    fn a_key_is_held_until_let_go_as_often_as_taken() {
        let held = Held::default();
        let (msg, other) = (MessageId::new(), MessageId::new());
        let (a, b) = (EndpointId::new(), EndpointId::new());
        held.take([(&msg, &a), (&msg, &b), (&other, &a)]);
        assert_eq!(
            sorted(held.keys()),
            sorted(vec![
                (msg.clone(), a.clone()),
                (msg.clone(), b.clone()),
                (other.clone(), a.clone()),
            ])
        );
        // Taken again before the first let-go landed: one let-go leaves it held.
        held.take([(&msg, &a)]);
        held.let_go([(&msg, &a)]);
        assert!(held.keys().contains(&(msg.clone(), a.clone())));
        held.let_go([(&msg, &a), (&msg, &b), (&other, &a)]);
        assert!(held.keys().is_empty());
        assert!(held.lock().is_empty(), "no empty entry is left behind");
        // Letting go of what is not held changes nothing.
        held.let_go([(&msg, &a)]);
        held.take([(&msg, &b)]);
        held.let_go([(&other, &b), (&msg, &a)]);
        assert_eq!(held.keys(), vec![(msg, b)]);
    }
}
