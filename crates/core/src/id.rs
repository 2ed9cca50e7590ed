//! Prefixed, time-sortable, opaque identifiers (`app_…`, `ep_…`, `msg_…`, `atmpt_…`).
//!
//! An id is a prefix and a ULID: 48 bits of milliseconds and 80 random bits, written in
//! Crockford base32. Ids made by one process are strictly increasing (the generator is
//! monotonic), so sorting ids as strings sorts them by creation time, which is what cursor
//! pagination relies on. Ids made on different nodes can interleave within a clock skew.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);

/// A new ULID, strictly greater than every ULID this process made before.
fn next_ulid() -> ulid::Ulid {
    let mut guard = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let generator = guard.get_or_insert_with(ulid::Generator::new);
    // The generator overflows only when 2^80 ids are made within one millisecond; a fresh
    // random id is then still unique with overwhelming probability.
    match generator.generate() {
        Ok(id) => id,
        Err(overflow) => overflow.commit_overflow_random(),
    }
}

/// The error of parsing an id of the wrong kind or shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id (expected `{prefix}` followed by 26 characters)")]
pub struct ParseIdError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

/// What every prefixed id can do, for code that handles ids of any kind.
pub trait Prefixed: Sized {
    /// Whether `value` has this kind's prefix.
    fn looks_like(value: &str) -> bool;
    /// Wraps a string known to be an id of this kind.
    fn from_trusted(value: String) -> Self;
    fn as_str(&self) -> &str;
}

/// How a request names an object of an application: by its id, or by the name the application
/// gave it (an application's or endpoint's `uid`, a message's `eventId`). Names never carry an
/// id's prefix (validation refuses them), so the text alone tells which one it is: it is read
/// once, where the request is read, and the store is told which column to look in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key<I> {
    Id(I),
    Name(String),
}

/// An application by id or uid.
pub type AppKey = Key<AppId>;
/// An endpoint by id or uid (within its application).
pub type EndpointKey = Key<EndpointId>;
/// A message by id or `eventId` (within its application).
pub type MessageKey = Key<MessageId>;

impl<I: Prefixed> Key<I> {
    /// Reads a path segment or parameter: an id when it has the kind's prefix, else a name.
    pub fn parse(text: &str) -> Self {
        if I::looks_like(text) {
            Self::Id(I::from_trusted(text.to_owned()))
        } else {
            Self::Name(text.to_owned())
        }
    }

    /// The text as the request wrote it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Id(id) => id.as_str(),
            Self::Name(name) => name,
        }
    }

    pub fn is_id(&self) -> bool {
        matches!(self, Self::Id(_))
    }
}

impl<I> From<I> for Key<I> {
    fn from(id: I) -> Self {
        Self::Id(id)
    }
}

impl<I: Prefixed> fmt::Display for Key<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id, later than every id of this kind this process made before.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(format!("{}{}", $prefix, next_ulid()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Whether `value` has this id's prefix: used to tell an id from a `uid`.
            pub fn looks_like(value: &str) -> bool {
                value.starts_with($prefix)
            }

            /// The lowest id of this kind made at `at` (to the millisecond): a bound for
            /// ranges of ids by creation time.
            pub fn lowest_at(at: time::OffsetDateTime) -> Self {
                let ms = (at.unix_timestamp_nanos() / 1_000_000).clamp(0, (1 << 48) - 1) as u64;
                Self(format!("{}{}", $prefix, ulid::Ulid::from_parts(ms, 0)))
            }

            /// A new id that reads as made at `at` (for data made elsewhere, and tests).
            pub fn made_at(at: time::OffsetDateTime) -> Self {
                let at = std::time::SystemTime::from(at);
                Self(format!("{}{}", $prefix, ulid::Ulid::from_datetime(at)))
            }

            /// The time this id was made, to the millisecond (`None` for a value that is not
            /// a well-formed id).
            pub fn created_at(&self) -> Option<time::OffsetDateTime> {
                let ulid = ulid::Ulid::from_string(self.0.strip_prefix($prefix)?).ok()?;
                let nanos = i128::from(ulid.timestamp_ms()) * 1_000_000;
                time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
            }

            /// Wraps a string read back from storage, where it was validated when written.
            pub fn from_trusted(value: String) -> Self {
                Self(value)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                let valid = value
                    .strip_prefix($prefix)
                    .is_some_and(|rest| ulid::Ulid::from_string(rest).is_ok());
                if valid {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(ParseIdError { kind: $kind, prefix: $prefix, value: value.to_owned() })
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Prefixed for $name {
            fn looks_like(value: &str) -> bool {
                Self::looks_like(value)
            }

            fn from_trusted(value: String) -> Self {
                Self::from_trusted(value)
            }

            fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                value.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// An application: one of the customers of the service's user.
    AppId, "app_", "application"
);
prefixed_id!(
    /// A destination URL registered under an application.
    EndpointId, "ep_", "endpoint"
);
prefixed_id!(
    /// An event posted to an application.
    MessageId, "msg_", "message"
);
prefixed_id!(
    /// One HTTP request made to deliver a message to an endpoint.
    AttemptId, "atmpt_", "attempt"
);
prefixed_id!(
    /// A background task such as `endpoint.recover`.
    TaskId, "qtask_", "background task"
);
prefixed_id!(
    /// An API token created with `webhookd token create`.
    TokenId, "tok_", "token"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_parse_back() {
        let id = MessageId::new();
        assert!(id.as_str().starts_with("msg_"));
        assert_eq!(id.as_str().len(), 4 + 26);
        assert_eq!(id.as_str().parse::<MessageId>().unwrap(), id);
    }

    #[test]
    fn keys_tell_ids_from_names_by_prefix() {
        let id = AppId::new();
        assert_eq!(AppKey::parse(id.as_str()), Key::Id(id.clone()));
        assert_eq!(AppKey::parse("acme"), Key::Name("acme".into()));
        // An endpoint's id is a name where an application is meant.
        let endpoint = EndpointId::new();
        assert!(!AppKey::parse(endpoint.as_str()).is_id());
        assert_eq!(AppKey::from(id.clone()).as_str(), id.as_str());
    }

    #[test]
    fn ids_of_another_kind_are_refused() {
        let id = AppId::new();
        let error = id.as_str().parse::<EndpointId>().unwrap_err();
        assert_eq!(error.kind, "endpoint");
        assert!("msg_".parse::<MessageId>().is_err());
        assert!(
            "msg_not-a-ulid-at-all-xxxxxxxx"
                .parse::<MessageId>()
                .is_err()
        );
    }

    #[test]
    fn ids_carry_their_creation_time() {
        let before = crate::time::now() - time::Duration::milliseconds(1);
        let id = MessageId::new();
        let made = id.created_at().unwrap();
        assert!(made >= before && made <= crate::time::now());
        let bound = MessageId::lowest_at(made);
        assert!(bound <= id);
        assert!(MessageId::lowest_at(made + time::Duration::milliseconds(1)) > id);
        assert_eq!(bound.created_at(), Some(made));
        assert_eq!(
            MessageId::from_trusted("msg_nope".into()).created_at(),
            None
        );
        let past = made - time::Duration::days(3);
        assert_eq!(MessageId::made_at(past).created_at(), Some(past));
    }

    #[test]
    fn ids_sort_by_creation() {
        let ids: Vec<MessageId> = (0..1000).map(|_| MessageId::new()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
