//! Bearer-token authentication.
//!
//! Tokens come from configuration (`WEBHOOKD_API_TOKENS`) or from `webhookd token create`
//! (stored as SHA-256 hashes). Configured tokens are compared in constant time; stored ones
//! are looked up by hash, which reveals nothing about the token. In local mode (a loopback
//! listener and no token anywhere) every request is let in, whatever `Authorization` says,
//! because the official SDKs always send one.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

/// How requests are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// No token exists and the listener is loopback-only: everyone is let in.
    Local,
    /// A token is required: one of these (SHA-256 digests), or one in the store.
    Tokens { configured: Vec<[u8; 32]> },
}

/// The SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
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
    let AuthMode::Tokens { configured } = &state.config().auth else {
        return Ok(Caller::Local);
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
