//! How an endpoint's delivery overrides are kept in a row, the same on both backends: the
//! retry schedule as its delays written like `WEBHOOKD_RETRY_SCHEDULE` (`5s,5m`; an empty text
//! is "never retry", NULL the node's schedule), the request timeout in milliseconds.

use std::time::Duration;

use webhookd_core::retry::RetrySchedule;
use webhookd_core::time::format_duration;

/// The text kept for a retry schedule.
pub(crate) fn schedule_text(schedule: Option<&RetrySchedule>) -> Option<String> {
    schedule.map(|schedule| {
        schedule
            .delays()
            .iter()
            .map(|delay| format_duration(*delay))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The retry schedule a row keeps, or why it cannot be read.
pub(crate) fn schedule_from(text: Option<&str>) -> Result<Option<RetrySchedule>, String> {
    text.map(|text| RetrySchedule::parse(text).map_err(|error| error.to_string()))
        .transpose()
}

/// The milliseconds kept for a request timeout.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> Option<i64> {
    timeout.map(|timeout| i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX))
}

/// The request timeout a row keeps.
pub(crate) fn timeout_from(ms: Option<i64>) -> Option<Duration> {
    ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}
