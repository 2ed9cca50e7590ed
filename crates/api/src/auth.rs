//! Bearer-token authentication.
//!
//! Tokens come from configuration (`WEBHOOKD_API_TOKENS`) or from `webhookd token create`
//! (stored as SHA-256 hashes). Configured tokens are compared in constant time; stored ones
//! are looked up by hash, which reveals nothing about the token, on every request, so a revoked
//! token stops working at once. In local mode (a loopback listener and no token anywhere) every
//! request is let in, whatever `Authorization` says, because the official SDKs always send one.
//!
//! Local mode lasts only while no token exists: [`watch_tokens`] looks for stored tokens every
//! few seconds (one created through the API, or by another node sharing a PostgreSQL store) and
//! then makes this node require one, for good, without a restart.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ApiState;
use crate::error::ApiError;

/// Who is calling, for scoping idempotency keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Local,
    /// The hex SHA-256 of the token.
    Token(String),
}

impl Caller {
    pub fn identity(&self) -> &str {
        match self {
            Self::Local => "local",
            Self::Token(hash) => hash,
        }
    }
}

/// How requests are authenticated when the node starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// No token exists and the listener is loopback-only: everyone is let in, until a token is
    /// stored (see [`watch_tokens`]).
    Local,
    /// A token is required: one of these (SHA-256 digests), or one in the store.
    Tokens { configured: Vec<[u8; 32]> },
}

/// The SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new token: a recognisable prefix and 32 random bytes.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whk_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Checks a token's name: 1 to 256 characters, not shaped like a token id (revocation takes
/// an id or a name).
pub fn check_token_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 256 {
        return Err("must be 1 to 256 characters long".into());
    }
    if webhookd_core::TokenId::looks_like(name) {
        return Err("must not start with `tok_`".into());
    }
    Ok(())
}

/// How often a node in local mode looks for a stored token.
pub const TOKEN_WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// While the node is in local mode, looks for a stored token every `every`, and requires
/// tokens from the first one found. Returns once tokens are required.
pub async fn watch_tokens(state: ApiState, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while state.is_local() {
        ticks.tick().await;
        match state.store().count_tokens().await {
            Ok(0) => {}
            Ok(_) => state.require_tokens(),
            Err(error) => tracing::warn!(%error, "cannot look for API tokens"),
        }
    }
}

pub(crate) async fn middleware(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    match check(&state, request.headers()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

/// Checks the request's token; the caller it identifies, or 401.
pub(crate) async fn check(state: &ApiState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if state.is_local() {
        return Ok(Caller::Local);
    }
    let configured: &[[u8; 32]] = match &state.config().auth {
        AuthMode::Tokens { configured } => configured,
        AuthMode::Local => &[],
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            // The scheme is case-insensitive (RFC 7235).
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("missing `Authorization: Bearer <token>` header".into())
        })?;
    let digest = hash_token(token);
    let configured_match = configured
        .iter()
        .fold(subtle::Choice::from(0), |found, known| {
            found | known.ct_eq(&digest)
        });
    let hash = hex::encode(digest);
    if bool::from(configured_match) || state.store().find_token(&hash).await?.is_some() {
        Ok(Caller::Token(hash))
    } else {
        Err(ApiError::Unauthorized("invalid token".into()))
    }
}
