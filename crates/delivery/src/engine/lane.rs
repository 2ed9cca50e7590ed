//! A lane: one endpoint's queue, its requests in flight, its cached configuration and its
//! throttle (a token bucket refilling at `throttleRate` per second, holding one token, so
//! sends are paced evenly).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use std::time::Instant;
use webhookd_core::model::Endpoint;

use super::admission::Allowance;
use crate::attempt::Job;

/// How long a cached endpoint configuration is trusted before it is read again (changes made
/// on another node reach this one within this time; changes made here apply at once).
pub(super) const CONFIG_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub(super) struct Lane {
    /// `None` until loaded (or after a change).
    pub(super) endpoint: Option<Arc<Endpoint>>,
    pub(super) loaded_at: Option<Instant>,
    pub(super) loading: bool,
    pub(super) queue: VecDeque<Job>,
    pub(super) in_flight: usize,
    /// How many requests it may have in flight, as it answers or not.
    pub(super) allowance: Allowance,
    /// When the throttle allows the next request.
    pub(super) next_send: Option<Instant>,
    /// Whether the lane is in the ready list, waiting on a throttle timer, or parked.
    pub(super) scheduled: bool,
    /// Whether it waits for the budget's unproven share (see `admission`).
    pub(super) parked: bool,
}

impl Lane {
    /// Whether the lane could start a request now, throttle and the node's budget aside. An
    /// ordered endpoint's lane has one request in flight at most (the store hands out only the
    /// head of its line; this keeps it so whatever reached the queue).
    pub(super) fn can_start(&self, concurrency: usize) -> bool {
        let Some(endpoint) = &self.endpoint else {
            return false;
        };
        let limit = if endpoint.ordered {
            1
        } else {
            self.allowance.limit(concurrency)
        };
        !self.queue.is_empty() && self.in_flight < limit
    }

    pub(super) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight == 0 && !self.loading
    }

    pub(super) fn is_stale(&self, now: Instant) -> bool {
        self.loaded_at
            .is_some_and(|at| now.duration_since(at) > CONFIG_TTL)
    }

    /// Takes a token: `Ok` when the request may start now, or `Err(when)` to wait.
    pub(super) fn take_token(&mut self, now: Instant) -> Result<(), Instant> {
        let Some(rate) = self
            .endpoint
            .as_ref()
            .and_then(|endpoint| endpoint.throttle_rate)
        else {
            return Ok(());
        };
        let spacing = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        match self.next_send {
            Some(at) if at > now => Err(at),
            previous => {
                // Idle time does not accumulate into a burst.
                self.next_send = Some(previous.map_or(now, |at| at.max(now)) + spacing);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webhookd_core::model::Endpoint;

    use webhookd_core::AppId;

    fn endpoint(throttle_rate: Option<u32>) -> Arc<Endpoint> {
        let at = webhookd_core::time::now();
        Arc::new(Endpoint {
            throttle_rate,
            ..Endpoint::new(AppId::new(), "http://127.0.0.1:9/", at)
        })
    }

    #[test]
    fn throttle_paces_requests() {
        let start = Instant::now();
        let mut lane = Lane {
            endpoint: Some(endpoint(Some(5))),
            ..Lane::default()
        };
        assert_eq!(lane.take_token(start), Ok(()));
        let next = lane.take_token(start).unwrap_err();
        assert_eq!(next - start, Duration::from_millis(200));
        assert_eq!(lane.take_token(next), Ok(()));
        // After a long pause, only one request goes at once.
        let later = next + Duration::from_secs(10);
        assert_eq!(lane.take_token(later), Ok(()));
        assert!(lane.take_token(later).is_err());
    }

    #[test]
    fn unthrottled_lanes_never_wait() {
        let now = Instant::now();
        let mut lane = Lane {
            endpoint: Some(endpoint(None)),
            ..Lane::default()
        };
        for _ in 0..100 {
            assert_eq!(lane.take_token(now), Ok(()));
        }
    }
}
