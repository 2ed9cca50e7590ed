//! What an application-scoped token may do: the capabilities of Svix's app portal.
//!
//! An operator's API token may do everything. A token made by `app-portal-access` (`appsk_…`)
//! works for one application only, and each route asks for one [`Capability`]. This module only
//! names them; the API decides which route needs which.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One thing an app-scoped token may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Read endpoints (without secrets or header values), messages, attempts and event types.
    ViewBase,
    /// Read an endpoint's signing secret.
    ViewEndpointSecret,
    /// Rotate an endpoint's signing secret.
    ManageEndpointSecret,
    /// Svix's transformations capability; webhookd has no transformations, so it allows
    /// nothing, but a token may carry it.
    ManageTransformations,
    /// Resend, recover, replay and send examples.
    CreateAttempts,
    /// Create, change and delete endpoints and their headers.
    ManageEndpoint,
}

impl Capability {
    /// What a token gets when it is made without a list: every capability that allows
    /// something here.
    pub const ALL: [Capability; 5] = [
        Capability::ViewBase,
        Capability::ViewEndpointSecret,
        Capability::ManageEndpointSecret,
        Capability::CreateAttempts,
        Capability::ManageEndpoint,
    ];

    /// Every capability, as Svix spells them.
    pub const KNOWN: [Capability; 6] = [
        Capability::ViewBase,
        Capability::ViewEndpointSecret,
        Capability::ManageEndpointSecret,
        Capability::ManageTransformations,
        Capability::CreateAttempts,
        Capability::ManageEndpoint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ViewBase => "ViewBase",
            Self::ViewEndpointSecret => "ViewEndpointSecret",
            Self::ManageEndpointSecret => "ManageEndpointSecret",
            Self::ManageTransformations => "ManageTransformations",
            Self::CreateAttempts => "CreateAttempts",
            Self::ManageEndpoint => "ManageEndpoint",
        }
    }
}

/// The error of reading a capability that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a capability (ViewBase, ViewEndpointSecret, ManageEndpointSecret, \
     ManageTransformations, CreateAttempts, ManageEndpoint)"
)]
pub struct ParseCapabilityError(pub String);

impl FromStr for Capability {
    type Err = ParseCapabilityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::KNOWN
            .into_iter()
            .find(|capability| capability.as_str() == text)
            .ok_or_else(|| ParseCapabilityError(text.to_owned()))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Writes a set of capabilities for storage: names joined by commas, in a fixed order.
pub fn join(capabilities: &[Capability]) -> String {
    let mut sorted = capabilities.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted
        .iter()
        .map(|capability| capability.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads what [`join`] wrote; unknown names (from a newer version) are skipped, never granted.
pub fn split(text: &str) -> Vec<Capability> {
    text.split(',')
        .filter_map(|name| name.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for capability in Capability::KNOWN {
            assert_eq!(capability.as_str().parse::<Capability>(), Ok(capability));
        }
        assert!("viewbase".parse::<Capability>().is_err());
    }

    #[test]
    fn stored_form_round_trips_and_skips_unknown_names() {
        let text = join(&[
            Capability::ManageEndpoint,
            Capability::ViewBase,
            Capability::ViewBase,
        ]);
        assert_eq!(text, "ViewBase,ManageEndpoint");
        assert_eq!(
            split(&text),
            [Capability::ViewBase, Capability::ManageEndpoint]
        );
        assert_eq!(split("ViewBase,Teleport"), [Capability::ViewBase]);
        assert!(split("").is_empty());
    }
}
