//! The delivery rollup: per-minute counts of attempts and their outcomes, and a latency
//! histogram, kept in the store so that the console's overview charts are right however many
//! nodes deliver. It is the part of the rollup that is not dialect: what a batch of attempt
//! records adds to which minute, and the columns it is stored in. Each backend upserts the
//! rows in the transaction that records the batch (`INSERT … ON CONFLICT DO UPDATE SET x = x +
//! excluded.x`), one row per minute the batch touches, so nodes add into the same rows and
//! the hot path pays one statement per batch, not one per attempt.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use time::OffsetDateTime;
use webhookd_core::latency::{self, Histogram};
use webhookd_core::model::DeliveryStatus;
use webhookd_core::time::{from_unix_ms, to_unix_ms};

use crate::db::{Db, params};
use crate::{AttemptRecord, DeliveryUpdate, Result};

/// How long minutes are kept: the longest period the overview shows, and a day more.
pub const ROLLUP_RETENTION: time::Duration = time::Duration::days(2);

/// One minute of deliveries, on every node together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupMinute {
    /// The start of the minute.
    pub start: OffsetDateTime,
    /// Attempts made, scheduled and manual.
    pub attempts: u64,
    /// Attempts that succeeded.
    pub delivered: u64,
    /// Attempts that ended their delivery in failure (the last scheduled attempt, or a
    /// manual resend that failed).
    pub failed: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Ingest → success of the scheduled attempts that succeeded, by `latency` bucket.
    pub latency: Histogram,
}

impl RollupMinute {
    pub fn empty(start: OffsetDateTime) -> Self {
        Self {
            start,
            attempts: 0,
            delivered: 0,
            failed: 0,
            retried: 0,
            latency: [0; latency::BUCKETS],
        }
    }

    /// Adds another minute's counts into this one.
    pub fn add(&mut self, other: &Self) {
        self.attempts += other.attempts;
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.retried += other.retried;
        latency::add(&mut self.latency, &other.latency);
    }

    /// The counts in column order (see [`COLUMNS`]), after the minute itself.
    pub(crate) fn counts(&self) -> impl Iterator<Item = i64> + '_ {
        [self.attempts, self.delivered, self.failed, self.retried]
            .into_iter()
            .chain(self.latency)
            .map(|count| i64::try_from(count).unwrap_or(i64::MAX))
    }

    /// Reads a row of [`COLUMNS`] (minute first) back.
    pub(crate) fn from_row(minute_ms: i64, counts: &[i64]) -> Self {
        let mut minute = Self::empty(from_unix_ms(minute_ms));
        let count = |index: usize| counts.get(index).map_or(0, |count| (*count).max(0) as u64);
        minute.attempts = count(0);
        minute.delivered = count(1);
        minute.failed = count(2);
        minute.retried = count(3);
        for (bucket, value) in minute.latency.iter_mut().enumerate() {
            *value = count(4 + bucket);
        }
        minute
    }
}

/// The count columns of the `rollup_minutes` table, after `minute` (unix ms of its start).
pub(crate) static COLUMNS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ["attempts", "delivered", "failed", "retried"]
        .into_iter()
        .map(str::to_owned)
        .chain((0..latency::BUCKETS).map(|bucket| format!("latency_{bucket}")))
        .collect()
});

/// `INSERT … ON CONFLICT (minute) DO UPDATE SET c = rollup_minutes.c + excluded.c` for every
/// count column: the minute's start is `$1`, its counts follow. Built once, for both backends.
pub(crate) static UPSERT: LazyLock<String> = LazyLock::new(|| {
    let columns = COLUMNS.join(", ");
    let marks: Vec<String> = (1..=COLUMNS.len() + 1).map(|n| format!("${n}")).collect();
    let sums: Vec<String> = COLUMNS
        .iter()
        .map(|column| format!("{column} = rollup_minutes.{column} + excluded.{column}"))
        .collect();
    format!(
        "INSERT INTO rollup_minutes (minute, {columns}) VALUES ({}) \
         ON CONFLICT (minute) DO UPDATE SET {}",
        marks.join(", "),
        sums.join(", ")
    )
});

/// The minutes that start at or after `since`, oldest first.
pub(crate) async fn read(db: &mut Db<'_>, since: OffsetDateTime) -> Result<Vec<RollupMinute>> {
    let sql = format!(
        "SELECT minute, {} FROM rollup_minutes WHERE minute >= $1 ORDER BY minute",
        COLUMNS.join(", ")
    );
    db.query(&sql, &params![since], |row| {
        let counts = (1..=COLUMNS.len())
            .map(|index| row.get::<i64>(index))
            .collect::<Result<Vec<i64>>>()?;
        Ok(RollupMinute::from_row(row.get(0)?, &counts))
    })
    .await
}

/// Deletes the minutes that start before `before`; returns how many.
pub(crate) async fn prune(db: &mut Db<'_>, before: OffsetDateTime) -> Result<u64> {
    db.execute(
        "DELETE FROM rollup_minutes WHERE minute < $1",
        &params![before],
    )
    .await
}

const MINUTE_MS: i64 = 60_000;

/// What a batch of records adds to each minute it touches (the minute an attempt started in),
/// oldest first.
pub(crate) fn aggregate(records: &[AttemptRecord]) -> Vec<RollupMinute> {
    let mut minutes: BTreeMap<i64, RollupMinute> = BTreeMap::new();
    for record in records {
        let attempt = &record.attempt;
        let start = to_unix_ms(attempt.created_at).div_euclid(MINUTE_MS) * MINUTE_MS;
        let minute = minutes
            .entry(start)
            .or_insert_with(|| RollupMinute::empty(from_unix_ms(start)));
        minute.attempts += 1;
        let succeeded = attempt.status == DeliveryStatus::Success;
        if succeeded {
            minute.delivered += 1;
        }
        match record.delivery {
            DeliveryUpdate::Delivered => {
                // The message id carries the time it was ingested.
                if let Some(ingested) = attempt.msg_id.created_at() {
                    let finished = attempt.created_at
                        + time::Duration::milliseconds(
                            i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX / 2),
                        );
                    let ms = (finished - ingested).whole_milliseconds().max(0) as u64;
                    minute.latency[latency::bucket_of(ms)] += 1;
                }
            }
            DeliveryUpdate::RetryAt(_) => minute.retried += 1,
            DeliveryUpdate::Failed => minute.failed += 1,
            DeliveryUpdate::Manual { success } => {
                if !success {
                    minute.failed += 1;
                }
            }
        }
    }
    minutes.into_values().collect()
}

/// Groups minutes into `count` buckets of `width` ending with the one holding `now`, aligned
/// to multiples of `width` since the epoch; buckets without data are present with zeros.
pub fn buckets(
    minutes: &[RollupMinute],
    now: OffsetDateTime,
    width: time::Duration,
    count: usize,
) -> Vec<RollupMinute> {
    let width_ms = (width.whole_milliseconds() as i64).max(MINUTE_MS);
    let last = to_unix_ms(now).div_euclid(width_ms) * width_ms;
    let first = last - width_ms * (count as i64 - 1);
    let mut buckets: Vec<RollupMinute> = (0..count as i64)
        .map(|index| RollupMinute::empty(from_unix_ms(first + index * width_ms)))
        .collect();
    for minute in minutes {
        let at = to_unix_ms(minute.start);
        if at < first || at >= last + width_ms {
            continue;
        }
        let index = ((at - first) / width_ms) as usize;
        buckets[index].add(minute);
    }
    buckets
}

/// The start of the oldest minute that [`buckets`] reads for these arguments.
pub fn window_start(now: OffsetDateTime, width: time::Duration, count: usize) -> OffsetDateTime {
    let width_ms = (width.whole_milliseconds() as i64).max(MINUTE_MS);
    let last = to_unix_ms(now).div_euclid(width_ms) * width_ms;
    from_unix_ms(last - width_ms * (count as i64 - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn buckets_are_continuous_and_aligned() {
        let now = datetime!(2026-11-29 12:34:56 UTC);
        let mut minute = RollupMinute::empty(datetime!(2026-11-29 12:31:00 UTC));
        minute.attempts = 3;
        let old = RollupMinute {
            attempts: 7,
            ..RollupMinute::empty(datetime!(2026-11-29 10:00:00 UTC))
        };
        let quarter = time::Duration::minutes(15);
        let buckets = buckets(&[old, minute], now, quarter, 4);
        assert_eq!(buckets.len(), 4);
        assert_eq!(buckets[0].start, datetime!(2026-11-29 11:45:00 UTC));
        assert_eq!(buckets[3].start, datetime!(2026-11-29 12:30:00 UTC));
        assert_eq!(
            buckets.iter().map(|b| b.attempts).collect::<Vec<_>>(),
            [0, 0, 0, 3]
        );
        assert_eq!(
            window_start(now, quarter, 4),
            datetime!(2026-11-29 11:45:00 UTC)
        );
    }

    #[test]
    fn rows_round_trip() {
        let mut minute = RollupMinute::empty(datetime!(2026-11-29 12:31:00 UTC));
        minute.attempts = 5;
        minute.retried = 2;
        minute.latency[3] = 4;
        let counts: Vec<i64> = minute.counts().collect();
        assert_eq!(counts.len(), COLUMNS.len());
        let back = RollupMinute::from_row(to_unix_ms(minute.start), &counts);
        assert_eq!(back, minute);
    }

    #[test]
    fn the_upsert_adds_every_column() {
        let sql = UPSERT.as_str();
        assert!(sql.contains("latency_16 = rollup_minutes.latency_16 + excluded.latency_16"));
        assert!(sql.contains(&format!("${}", COLUMNS.len() + 1)));
    }
}
