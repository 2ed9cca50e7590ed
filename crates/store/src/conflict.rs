//! Broken uniqueness rules, typed: what was taken, the sentence a client reads, and the
//! database's own words for the log.
//!
//! Backends turn a uniqueness violation into [`Taken::Unique`] once, in their error mapping; the
//! statement that knows what it inserted relabels it ([`StoreError::taken_as`]). The sentences
//! are written here, once, for both backends.

use std::fmt;

use crate::StoreError;

/// What a conflicting write found already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// An application's uid.
    ApplicationUid,
    /// An endpoint's uid within its application.
    EndpointUid,
    /// A live event type's name.
    EventTypeName,
    /// A message's `eventId` within its application.
    EventId,
    /// A live record of the same idempotency key: another request with the key got there first.
    IdempotencyKey,
    /// An API token's name.
    TokenName,
    /// Another uniqueness rule (a primary key, a hash).
    Unique,
}

/// A write refused because what it would create exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub taken: Taken,
    detail: String,
    cause: Option<String>,
}

impl Conflict {
    pub fn new(taken: Taken, detail: impl Into<String>) -> Self {
        Self {
            taken,
            detail: detail.into(),
            cause: None,
        }
    }

    /// A uniqueness violation as the database reported it, before it is known what it was.
    pub(crate) fn unique(cause: String) -> Self {
        Self {
            taken: Taken::Unique,
            detail: "it already exists".into(),
            cause: Some(cause),
        }
    }

    pub fn application_uid(uid: Option<&str>) -> Self {
        Self::new(Taken::ApplicationUid, uid_taken("an application", uid))
    }

    pub fn endpoint_uid(uid: Option<&str>) -> Self {
        Self::new(Taken::EndpointUid, uid_taken("an endpoint", uid))
    }

    pub fn event_type_name(name: &str) -> Self {
        Self::new(
            Taken::EventTypeName,
            format!("an event type named `{name}` already exists"),
        )
    }

    pub fn event_id(event_id: Option<&str>) -> Self {
        Self::new(
            Taken::EventId,
            format!(
                "a message with eventId `{}` already exists in this application",
                event_id.unwrap_or_default()
            ),
        )
    }

    pub fn idempotency_key() -> Self {
        Self::new(
            Taken::IdempotencyKey,
            "a request with this idempotency-key was already processed",
        )
    }

    pub fn token_name(name: &str) -> Self {
        Self::new(
            Taken::TokenName,
            format!("a token named `{name}` already exists"),
        )
    }

    /// What a client is told.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The database's report of the violation, when it came from one (for the log only).
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

fn uid_taken(what: &str, uid: Option<&str>) -> String {
    match uid {
        Some(uid) => format!("{what} with uid `{uid}` already exists"),
        None => format!("{what} with this id already exists"),
    }
}

impl StoreError {
    /// Names what a uniqueness violation was about, keeping the database's report of it; any
    /// other error (and a conflict already named) is left as it is.
    pub(crate) fn taken_as(self, conflict: impl FnOnce() -> Conflict) -> Self {
        match self {
            Self::Conflict(found) if found.taken == Taken::Unique => {
                let mut named = conflict();
                named.cause = found.cause;
                Self::Conflict(named)
            }
            other => other,
        }
    }

    /// Whether this is a conflict about `taken`.
    pub fn is_taken(&self, taken: Taken) -> bool {
        matches!(self, Self::Conflict(conflict) if conflict.taken == taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_keeps_the_cause_and_leaves_other_errors() {
        let raw = StoreError::Conflict(Conflict::unique("UNIQUE constraint failed: x.y".into()));
        let named = raw.taken_as(|| Conflict::application_uid(Some("joe")));
        let StoreError::Conflict(conflict) = &named else {
            panic!("still a conflict: {named:?}");
        };
        assert_eq!(conflict.taken, Taken::ApplicationUid);
        assert_eq!(
            conflict.detail(),
            "an application with uid `joe` already exists"
        );
        assert_eq!(conflict.cause(), Some("UNIQUE constraint failed: x.y"));
        // A conflict that is already named is not renamed by an outer statement's guess.
        let kept = StoreError::Conflict(Conflict::idempotency_key())
            .taken_as(|| Conflict::application_uid(None));
        assert!(kept.is_taken(Taken::IdempotencyKey));
        let other = StoreError::NotFound.taken_as(|| Conflict::application_uid(None));
        assert!(matches!(other, StoreError::NotFound));
    }
}
