//! Who is calling: the one value every authorization decision is made from.

use time::OffsetDateTime;
use webhookd_core::access::Capability;
use webhookd_core::{AppId, EndpointId, TokenId};

/// The caller of a request, as the auth middleware found it. Handlers and middleware read it
/// from the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Local mode: no token exists and the listener is loopback-only.
    Local,
    /// An operator's API token (configured or stored): may do everything.
    Operator {
        /// The hex SHA-256 of the token.
        token_hash: String,
    },
    /// An app-scoped token (`appsk_…`): its own application only, with its capabilities.
    App {
        app_id: AppId,
        capabilities: Vec<Capability>,
        token_id: TokenId,
        /// When the token (or the session opened with it, if sooner) stops working.
        expires_at: OffsetDateTime,
    },
    /// A poller token (`pollsk_…`): reads one polling endpoint's stream, nothing else.
    Poller {
        app_id: AppId,
        endpoint_id: EndpointId,
        token_id: TokenId,
    },
}

impl Caller {
    /// A stable key for the caller, for scoping idempotency keys.
    pub fn identity(&self) -> &str {
        match self {
            Self::Local => "local",
            Self::Operator { token_hash } => token_hash,
            Self::App { token_id, .. } | Self::Poller { token_id, .. } => token_id.as_str(),
        }
    }

    /// Whether the caller holds `capability`: operators and local mode hold every one.
    pub fn can(&self, capability: Capability) -> bool {
        match self {
            Self::Local | Self::Operator { .. } => true,
            Self::App { capabilities, .. } => capabilities.contains(&capability),
            Self::Poller { .. } => false,
        }
    }

    /// The capabilities the caller holds, as the session answer lists them.
    pub fn capabilities(&self) -> Vec<Capability> {
        match self {
            Self::Local | Self::Operator { .. } => Capability::ALL.to_vec(),
            Self::App { capabilities, .. } => capabilities.clone(),
            Self::Poller { .. } => Vec::new(),
        }
    }

    /// The application an app-scoped caller is limited to.
    pub fn app_id(&self) -> Option<&AppId> {
        match self {
            Self::App { app_id, .. } | Self::Poller { app_id, .. } => Some(app_id),
            Self::Local | Self::Operator { .. } => None,
        }
    }
}

/// Present in a request's extensions when it was authenticated by the session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaSession {
    /// The hex SHA-256 of the session id.
    pub hash: String,
    /// When the session ends (at the latest: its token may end it sooner).
    pub expires_at: OffsetDateTime,
}
