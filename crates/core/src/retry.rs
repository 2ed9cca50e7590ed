//! The retry schedule: after the first attempt, wait each delay in turn, with ±10 % jitter.
//!
//! The schedule is configuration (`WEBHOOKD_RETRY_SCHEDULE`, default `5s,5m,30m,2h,5h,10h,10h`).
//! A delivery makes at most `1 + delays.len()` scheduled attempts. A `Retry-After` from the
//! endpoint replaces the delay of the slot it falls in, capped at twice that slot's delay.

use std::time::Duration;

use crate::time::{ParseDurationError, parse_duration};

/// How much a scheduled delay is spread, as a fraction of it.
pub const JITTER: f64 = 0.10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::parse("5s,5m,30m,2h,5h,10h,10h").expect("the default schedule parses")
    }
}

impl RetrySchedule {
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// Parses a comma-separated list of durations; an empty string means "never retry".
    pub fn parse(text: &str) -> Result<Self, ParseDurationError> {
        let delays = text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(parse_duration)
            .collect::<Result<_, _>>()?;
        Ok(Self { delays })
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// The most attempts a delivery gets from the schedule.
    pub fn max_attempts(&self) -> u32 {
        1 + self.delays.len() as u32
    }

    /// The wait before the next attempt after `attempts_made` attempts, or `None` when the
    /// schedule is exhausted. `jitter` is drawn uniformly from `[-1, 1]` by the caller, which
    /// keeps this function pure. A `retry_after` from the endpoint replaces the slot's delay,
    /// capped at twice that delay, and is not jittered.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        let slot = *self.delays.get(attempts_made.checked_sub(1)? as usize)?;
        Some(match retry_after {
            Some(asked) => asked.min(slot.saturating_mul(2)),
            None => slot.mul_f64(1.0 + JITTER * jitter.clamp(-1.0, 1.0)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> RetrySchedule {
        RetrySchedule::parse("1s, 10s,100s").unwrap()
    }

    #[test]
    fn walks_the_schedule_then_stops() {
        let schedule = schedule();
        assert_eq!(schedule.max_attempts(), 4);
        assert_eq!(
            schedule.next_delay(1, None, 0.0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            schedule.next_delay(2, None, 0.0),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            schedule.next_delay(3, None, 0.0),
            Some(Duration::from_secs(100))
        );
        assert_eq!(schedule.next_delay(4, None, 0.0), None);
        assert_eq!(schedule.next_delay(0, None, 0.0), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let schedule = schedule();
        for step in -10..=10 {
            let jitter = f64::from(step) / 5.0; // also beyond [-1, 1], which is clamped
            let delay = schedule.next_delay(2, None, jitter).unwrap();
            assert!(delay >= Duration::from_secs(9) && delay <= Duration::from_secs(11));
        }
    }

    #[test]
    fn retry_after_replaces_the_slot_within_twice_it() {
        let schedule = schedule();
        let short = Some(Duration::from_secs(3));
        let long = Some(Duration::from_secs(3600));
        assert_eq!(
            schedule.next_delay(2, short, 1.0),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            schedule.next_delay(2, long, 1.0),
            Some(Duration::from_secs(20))
        );
        assert_eq!(schedule.next_delay(4, short, 0.0), None);
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(RetrySchedule::default().max_attempts(), 8);
        assert_eq!(RetrySchedule::parse("").unwrap().max_attempts(), 1);
        assert!(RetrySchedule::parse("5s,soon").is_err());
    }
}
