//! What one attempt's result means: the single table that classifies HTTP statuses and
//! transport errors, and the decision that follows from it and the retry schedule.

use std::time::Duration;

use crate::retry::RetrySchedule;

/// What happened when an attempt was made, before any interpretation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The endpoint answered.
    Response {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No answer: timeout, DNS, connection or TLS failure. Always worth another try.
    Transport { reason: String },
    /// The destination was refused before any connection (SSRF guard, bad URL). Final.
    Refused { reason: String },
}

/// The class of a result, from the one table below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Success,
    /// Transient: 5xx, 408, 425, 429, and every transport error.
    Retryable,
    /// The request itself is wrong (3xx, other 4xx) or was refused: never retried.
    Final,
    /// 410 Gone: final, and the endpoint is disabled at once.
    Gone,
}

/// The classification table: 2xx is delivered; 410 fails and disables the endpoint; 5xx,
/// 408, 425, 429 and transport failures are retried; a refused destination and every other
/// status fail at once. With `retry_client_errors` (Svix's behaviour), every non-2xx but 410
/// is retried.
pub fn classify(result: &AttemptResult, retry_client_errors: bool) -> Class {
    match result {
        AttemptResult::Transport { .. } => Class::Retryable,
        AttemptResult::Refused { .. } => Class::Final,
        AttemptResult::Response { status, .. } => match status {
            200..=299 => Class::Success,
            410 => Class::Gone,
            500..=599 | 408 | 425 | 429 => Class::Retryable,
            _ if retry_client_errors => Class::Retryable,
            _ => Class::Final,
        },
    }
}

/// What the engine does next with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Retry { after: Duration },
    Failed { disable_endpoint: bool },
}

/// Decides the next step after `attempts_made` attempts, the last of which gave `result`.
/// Manual attempts (resends) are never retried. `jitter` is uniform in `[-1, 1]`.
pub fn decide(
    result: &AttemptResult,
    attempts_made: u32,
    manual: bool,
    schedule: &RetrySchedule,
    retry_client_errors: bool,
    jitter: f64,
) -> Outcome {
    match classify(result, retry_client_errors) {
        Class::Success => Outcome::Delivered,
        Class::Gone => Outcome::Failed {
            disable_endpoint: true,
        },
        Class::Final => Outcome::Failed {
            disable_endpoint: false,
        },
        Class::Retryable if manual => Outcome::Failed {
            disable_endpoint: false,
        },
        Class::Retryable => {
            let retry_after = match result {
                AttemptResult::Response { retry_after, .. } => *retry_after,
                _ => None,
            };
            match schedule.next_delay(attempts_made, retry_after, jitter) {
                Some(after) => Outcome::Retry { after },
                None => Outcome::Failed {
                    disable_endpoint: false,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> AttemptResult {
        AttemptResult::Response {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn the_classification_table() {
        let table = [
            (200, Class::Success),
            (204, Class::Success),
            (299, Class::Success),
            (301, Class::Final),
            (400, Class::Final),
            (401, Class::Final),
            (404, Class::Final),
            (408, Class::Retryable),
            (410, Class::Gone),
            (413, Class::Final),
            (425, Class::Retryable),
            (429, Class::Retryable),
            (500, Class::Retryable),
            (503, Class::Retryable),
            (599, Class::Retryable),
        ];
        for (code, class) in table {
            assert_eq!(classify(&status(code), false), class, "status {code}");
        }
        assert_eq!(classify(&status(400), true), Class::Retryable);
        assert_eq!(classify(&status(410), true), Class::Gone);
        let timeout = AttemptResult::Transport {
            reason: "timed out".into(),
        };
        assert_eq!(classify(&timeout, false), Class::Retryable);
        let refused = AttemptResult::Refused {
            reason: "private address".into(),
        };
        assert_eq!(classify(&refused, true), Class::Final);
    }

    #[test]
    fn decisions_follow_the_schedule() {
        let schedule = RetrySchedule::parse("1s,2s").unwrap();
        let decide = |result: &AttemptResult, made, manual| {
            decide(result, made, manual, &schedule, false, 0.0)
        };
        assert_eq!(decide(&status(200), 1, false), Outcome::Delivered);
        assert_eq!(
            decide(&status(500), 1, false),
            Outcome::Retry {
                after: Duration::from_secs(1)
            }
        );
        assert_eq!(
            decide(&status(500), 2, false),
            Outcome::Retry {
                after: Duration::from_secs(2)
            }
        );
        assert_eq!(
            decide(&status(500), 3, false),
            Outcome::Failed {
                disable_endpoint: false
            }
        );
        assert_eq!(
            decide(&status(500), 1, true),
            Outcome::Failed {
                disable_endpoint: false
            }
        );
        assert_eq!(
            decide(&status(410), 1, false),
            Outcome::Failed {
                disable_endpoint: true
            }
        );
        let throttled = AttemptResult::Response {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            decide(&throttled, 1, false),
            Outcome::Retry {
                after: Duration::from_secs(2)
            }
        );
    }
}
