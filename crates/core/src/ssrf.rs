//! Which destination addresses deliveries may reach: the address classifier of the SSRF guard
//! and the `WEBHOOKD_ALLOW_PRIVATE` policy. Pure functions; the outbound client applies them to
//! every resolved address before it connects.

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;

/// `WEBHOOKD_ALLOW_PRIVATE`: which non-public addresses deliveries may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowPrivate {
    /// Every address (local mode's default).
    All,
    /// Public addresses only.
    None,
    /// Public addresses and these networks.
    Networks(Vec<IpNet>),
}

/// The error of parsing an `AllowPrivate` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not `all`, `none` or a comma-separated list of CIDRs (e.g. 10.0.0.0/8,::1/128)")]
pub struct ParseAllowPrivateError(pub String);

impl FromStr for AllowPrivate {
    type Err = ParseAllowPrivateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "all" => Ok(Self::All),
            "none" | "" => Ok(Self::None),
            list => list
                .split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(|part| {
                    part.parse::<IpNet>()
                        .or_else(|_| part.parse::<std::net::IpAddr>().map(IpNet::from))
                        .map_err(|_| ParseAllowPrivateError(text.to_owned()))
                })
                .collect::<Result<_, _>>()
                .map(Self::Networks),
        }
    }
}

impl fmt::Display for AllowPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::None => f.write_str("none"),
            Self::Networks(networks) => {
                let parts: Vec<String> = networks.iter().map(ToString::to_string).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}
