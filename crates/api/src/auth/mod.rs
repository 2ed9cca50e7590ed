//! Authentication and authorization: who is calling, and whether they may make this request.
//!
//! One middleware does both, for every authenticated route:
//! 1. **Authenticate** ([`authenticate`]): a bearer token always wins over a cookie. An
//!    `appsk_…` token is looked up among app-scoped tokens (and must not have expired); any
//!    other token must be configured (`WEBHOOKD_API_TOKENS`, compared in constant time) or
//!    stored (`webhookd token create`, looked up by hash). Without a bearer token, the
//!    session cookie ([`sessions`]) stands for the token it was opened with. In local mode (a
//!    loopback listener and no token anywhere) a request with neither is let in, whatever
//!    `Authorization` says, because the official SDKs always send one; an `appsk_` token or a
//!    live session still limits the request to its scope.
//! 2. **Check CSRF**: a request authenticated by the cookie that changes something must carry
//!    `x-webhookd-csrf: 1`.
//! 3. **Authorize** ([`scopes`]): the one table of which routes app-scoped callers may use.
//!
//! The [`Caller`] (and [`ViaSession`] for cookie requests) goes into the request's extensions.
//!
//! Stored tokens are looked up by hash on every request, so a revoked token stops working at
//! once. Local mode lasts only while no token exists: [`watch_tokens`] looks for stored tokens
//! every few seconds (one created through the API, or by another node sharing a PostgreSQL
//! store) and then makes this node require one, for good, without a restart.

mod caller;
pub(crate) mod scopes;
pub mod sessions;

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use webhookd_core::time::now;
use webhookd_store::AppTokenRecord;

pub use caller::{Caller, ViaSession};

use crate::ApiState;
use crate::error::{ApiError, ApiResult};

/// The prefix of app-scoped tokens.
pub const APP_TOKEN_PREFIX: &str = "appsk_";

/// The prefix of poller tokens, which read one polling endpoint's stream and nothing else.
pub const POLLER_TOKEN_PREFIX: &str = "pollsk_";

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
    generate_secret_with_prefix("whk_")
}

/// `prefix` and the base64 of 32 random bytes.
pub(crate) fn generate_secret_with_prefix(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
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

/// The hex SHA-256 of a token or session id: how the store keys them.
pub(crate) fn hash_hex(secret: &str) -> String {
    hex::encode(hash_token(secret))
}

pub(crate) async fn middleware(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned());
    if template
        .as_deref()
        .is_some_and(|template| scopes::is_public(request.method(), template))
    {
        return next.run(request).await;
    }
    let (caller, via_session) = match authenticate(&state, request.headers()).await {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    if via_session.is_some()
        && let Err(error) = sessions::check_csrf(request.method(), request.headers())
    {
        return error.into_response();
    }
    if let Err(error) = scopes::authorize(
        &state,
        &caller,
        request.method(),
        template.as_deref(),
        request.uri().path(),
    )
    .await
    {
        return error.into_response();
    }
    request.extensions_mut().insert(caller);
    if let Some(via_session) = via_session {
        request.extensions_mut().insert(via_session);
    }
    next.run(request).await
}

/// The bearer token of the request, if it has a non-empty one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            // The scheme is case-insensitive (RFC 7235).
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// Who the request comes from, and the session when the cookie said so; 401 when no one.
pub(crate) async fn authenticate(
    state: &ApiState,
    headers: &HeaderMap,
) -> ApiResult<(Caller, Option<ViaSession>)> {
    let local = state.is_local();
    if let Some(token) = bearer(headers) {
        if token.starts_with(APP_TOKEN_PREFIX) {
            return Ok((app_token_caller(state, token).await?, None));
        }
        if token.starts_with(POLLER_TOKEN_PREFIX) {
            return Ok((poller_token_caller(state, token).await?, None));
        }
        if !local {
            return Ok((operator_caller(state, token).await?, None));
        }
    }
    if let Some(session_id) = sessions::cookie_value(headers) {
        match sessions::resolve(state, session_id).await? {
            Some((caller, via)) => return Ok((caller, Some(via))),
            // In local mode a stale cookie is no reason to refuse what needs no login.
            None if local => {}
            None => {
                return Err(ApiError::Unauthorized(
                    "the session has ended; log in again".into(),
                ));
            }
        }
    }
    if local {
        Ok((Caller::Local, None))
    } else {
        Err(ApiError::Unauthorized(
            "missing `Authorization: Bearer <token>` header".into(),
        ))
    }
}

async fn poller_token_caller(state: &ApiState, token: &str) -> ApiResult<Caller> {
    let found = state.store().find_poller_token(&hash_hex(token)).await?;
    found
        .filter(|token| token.expires_at > now())
        .map(|token| Caller::Poller {
            app_id: token.app_id,
            endpoint_id: token.endpoint_id,
            token_id: token.id,
        })
        .ok_or_else(|| ApiError::Unauthorized("invalid or expired poller token".into()))
}

/// The caller of a bearer token, for routes outside the middleware (login, metrics).
pub(crate) async fn token_caller(state: &ApiState, token: &str) -> ApiResult<Caller> {
    if token.starts_with(APP_TOKEN_PREFIX) {
        app_token_caller(state, token).await
    } else {
        operator_caller(state, token).await
    }
}

async fn operator_caller(state: &ApiState, token: &str) -> ApiResult<Caller> {
    operator_by_hash(state, &hash_hex(token))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("invalid token".into()))
}

async fn app_token_caller(state: &ApiState, token: &str) -> ApiResult<Caller> {
    let found = state.store().find_app_token(&hash_hex(token)).await?;
    found
        .and_then(|token| live_app_caller(token, now()))
        .ok_or_else(|| ApiError::Unauthorized("invalid or expired application token".into()))
}

/// The operator whose token hashes to `token_hash`, if that token is configured or stored.
pub(crate) async fn operator_by_hash(
    state: &ApiState,
    token_hash: &str,
) -> ApiResult<Option<Caller>> {
    // A node that started in local mode and then saw a token stored has none configured.
    let configured: &[[u8; 32]] = match &state.config().auth {
        AuthMode::Tokens { configured } => configured,
        AuthMode::Local => &[],
    };
    let mut digest = [0u8; 32];
    if hex::decode_to_slice(token_hash, &mut digest).is_err() {
        return Ok(None);
    }
    let configured_match = configured
        .iter()
        .fold(subtle::Choice::from(0), |found, known| {
            found | known.ct_eq(&digest)
        });
    if bool::from(configured_match) || state.store().find_token(token_hash).await?.is_some() {
        Ok(Some(Caller::Operator {
            token_hash: token_hash.to_owned(),
        }))
    } else {
        Ok(None)
    }
}

/// The caller of an app-scoped token, unless it has expired by `at`.
pub(crate) fn live_app_caller(token: AppTokenRecord, at: OffsetDateTime) -> Option<Caller> {
    (token.expires_at > at).then_some(Caller::App {
        app_id: token.app_id,
        capabilities: token.capabilities,
        token_id: token.id,
        expires_at: token.expires_at,
    })
}

/// Checks the request's bearer token for a route that only operators use outside the API
/// (metrics); the caller, 401 without a valid token, 403 for an application token.
pub(crate) async fn check(state: &ApiState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if state.is_local() {
        return Ok(Caller::Local);
    }
    let token = bearer(headers).ok_or_else(|| {
        ApiError::Unauthorized("missing `Authorization: Bearer <token>` header".into())
    })?;
    match token_caller(state, token).await? {
        Caller::App { .. } => Err(ApiError::Forbidden(
            "an application token cannot read metrics".into(),
        )),
        caller => Ok(caller),
    }
}
