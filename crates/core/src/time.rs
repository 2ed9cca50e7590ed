//! Timestamps as the API reads and writes them, and durations as the configuration writes them.
//!
//! The API emits RFC 3339 in UTC and accepts RFC 3339 with or without an offset: the official
//! SDKs send naive date-times, which mean UTC. Storage keeps Unix milliseconds.

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

pub use time::OffsetDateTime as Timestamp;

/// The error of parsing a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z)")]
pub struct ParseTimestampError(pub String);

/// Now, in UTC, truncated to milliseconds so that it survives a round trip through storage.
pub fn now() -> OffsetDateTime {
    from_unix_ms(to_unix_ms(OffsetDateTime::now_utc()))
}

pub fn to_unix_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Parses RFC 3339 with an offset, or a naive date-time (with `T` or a space) taken as UTC.
pub fn parse_timestamp(text: &str) -> Result<OffsetDateTime, ParseTimestampError> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        // Near the ends of the calendar, UTC can fall outside it: that is a bad timestamp.
        return at
            .checked_to_offset(UtcOffset::UTC)
            .ok_or_else(|| ParseTimestampError(text.to_owned()));
    }
    let naive_formats = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    ];
    naive_formats
        .iter()
        .find_map(|format| PrimitiveDateTime::parse(text, format).ok())
        .map(PrimitiveDateTime::assume_utc)
        .ok_or_else(|| ParseTimestampError(text.to_owned()))
}

/// RFC 3339 in UTC with millisecond precision: `2024-05-01T12:00:00.123Z`.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.to_offset(UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Serde support for `OffsetDateTime` fields in the API's shape.
pub mod serde_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_timestamp(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_timestamp(&text).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<OffsetDateTime>`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(
            at: &Option<OffsetDateTime>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => serializer.serialize_str(&super::super::format_timestamp(*at)),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            let text = Option::<String>::deserialize(deserializer)?;
            text.map(|text| super::super::parse_timestamp(&text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// The error of parsing a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a duration (write it like 500ms, 5s, 5m, 2h or 5d): {reason}")]
pub struct ParseDurationError {
    pub text: String,
    pub reason: String,
}

/// Parses a duration as the configuration writes them (`500ms`, `5s`, `2h`, `5d`).
pub fn parse_duration(text: &str) -> Result<Duration, ParseDurationError> {
    humantime::parse_duration(text.trim()).map_err(|error| ParseDurationError {
        text: text.to_owned(),
        reason: error.to_string(),
    })
}

/// Writes a duration the way `parse_duration` reads it.
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_timestamps_are_utc() {
        let with_offset = parse_timestamp("2024-05-01T12:00:00+02:00").unwrap();
        let naive = parse_timestamp("2024-05-01T10:00:00").unwrap();
        let naive_fraction = parse_timestamp("2024-05-01T10:00:00.000000").unwrap();
        assert_eq!(with_offset, naive);
        assert_eq!(naive, naive_fraction);
        assert_eq!(format_timestamp(naive), "2024-05-01T10:00:00.000Z");
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("9999-12-31T23:59:59-23:59").is_err());
    }

    #[test]
    fn unix_ms_round_trips() {
        let at = now();
        assert_eq!(from_unix_ms(to_unix_ms(at)), at);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("5d").unwrap(),
            Duration::from_secs(5 * 86400)
        );
        assert!(parse_duration("5 parsecs").is_err());
    }
}
