//! `idempotency-key` on every POST: the same key (per token, method and path, for 24 hours)
//! answers the first non-5xx response again and does nothing again; a duplicate that arrives
//! while the first is still running gets 409.
//!
//! Every POST route is declared with this layer, by [`post`] or [`post_with_effect`]: the
//! declaration says whether the route's handler writes the key's record with its effect. Only a
//! hash of the key is stored, computed from the matched route with its parameters filled in.
//! Handlers whose effect is one store write pass the record into that write
//! ([`IdempotencyKey::record`]), so the key and the effect commit together; for the others the
//! layer looks for a stored answer first and saves the response after the handler.
//!
//! A message's answer repeats its payload, which is already stored once with the message: its
//! record holds a reference to the message instead ([`IdempotencyKey::record_message`]), and a
//! replay renders the answer again from the stored message. A payload is therefore stored once,
//! not twice, per message sent with a key.

use std::collections::HashSet;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Extension, FromRequestParts, MatchedPath, RawPathParams, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use sha2::{Digest, Sha256};
use webhookd_core::MessageKey;
use webhookd_core::time::now;
use webhookd_core::{AppId, MessageId};
use webhookd_store::{IDEMPOTENCY_WINDOW, IdempotentResponse};

use crate::ApiState;
use crate::auth::Caller;
use crate::error::{ApiError, KeyUsed};
use crate::message_out;
use crate::wire::{JsonBytes, NotStored, Recorded};

/// The longest key accepted.
const MAX_KEY_LENGTH: usize = 256;

/// How a stored answer that refers to a message begins. Stored answers are otherwise JSON, which
/// never begins with `@`.
const MESSAGE_REFERENCE: &str = "@message ";

/// The hashed key of the request being served, when it has one.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(Option<String>);

impl IdempotencyKey {
    /// The record to write with the effect, for a response serialized as `response`.
    pub fn record(&self, response: &JsonBytes) -> Option<IdempotentResponse> {
        let key_hash = self.0.clone()?;
        Some(IdempotentResponse {
            key_hash,
            status: response.status.as_u16(),
            body: response.body.clone(),
            created_at: now(),
        })
    }
}

impl IdempotencyKey {
    /// The record of a message's `202`: a reference to the message (rendered again from the
    /// store on replay, `with_content` as asked), not a second copy of its payload.
    pub fn record_message(
        &self,
        app: &AppId,
        msg: &MessageId,
        with_content: bool,
    ) -> Option<IdempotentResponse> {
        let key_hash = self.0.clone()?;
        let body = format!("{MESSAGE_REFERENCE}{app} {msg} {}", u8::from(with_content));
        Some(IdempotentResponse {
            key_hash,
            status: StatusCode::ACCEPTED.as_u16(),
            body: body.into_bytes(),
            created_at: now(),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<IdempotencyKey>()
            .cloned()
            .unwrap_or(IdempotencyKey(None)))
    }
}

/// Keys whose first request is still running on this node.
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashSet<String>>);

/// Removes the key when the request ends, however it ends.
struct InFlightGuard<'a> {
    keys: &'a InFlight,
    key: String,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.keys
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.key);
    }
}

/// The stored form of a key: a hash of who sent it, where, and the key.
pub fn key_hash(caller: &Caller, method: &Method, path: &str, key: &str) -> String {
    let mut hash = Sha256::new();
    for part in [caller.identity(), method.as_str(), path, key] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

/// How a POST route keeps the answer of a request with a key. Said where the route is declared,
/// by [`post`] or [`post_with_effect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keeping {
    /// The handler writes the record in the same store write as its effect: a repeat's write
    /// conflicts and the first answer is replayed, so nothing is read ahead.
    WithEffect,
    /// A stored answer is looked up first and replayed; otherwise the handler runs, and its
    /// answer is saved after it (unless it wrote the record with its effect after all).
    ReadAhead,
}

/// A POST route whose effect is not (always) one store write: a repeated key is answered from
/// the stored answer before the handler runs.
pub(crate) fn post<H, T>(handler: H) -> MethodRouter<ApiState>
where
    H: Handler<T, ApiState>,
    T: 'static,
{
    routing::post(handler).route_layer(middleware::from_fn(read_ahead))
}

/// A POST route whose handler writes the key's record with its effect, in one store write
/// (the creates of applications, endpoints, event types and messages): the hot path reads
/// nothing ahead.
pub(crate) fn post_with_effect<H, T>(handler: H) -> MethodRouter<ApiState>
where
    H: Handler<T, ApiState>,
    T: 'static,
{
    routing::post(handler).route_layer(middleware::from_fn(with_effect))
}

async fn read_ahead(
    Extension(state): Extension<ApiState>,
    matched: MatchedPath,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    keep(Keeping::ReadAhead, &state, matched, params, request, next).await
}

async fn with_effect(
    Extension(state): Extension<ApiState>,
    matched: MatchedPath,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    keep(Keeping::WithEffect, &state, matched, params, request, next).await
}

/// The path with the application it names written one way, so that a key is the same key
/// whether the path names the application by id or by uid: by its uid when it has one, else by
/// its id. The path is the matched route's, its parameters filled in; the parameter that names
/// the application is `app` (`app_id` on the authentication routes). An unknown key is left as
/// written: a uid the request itself creates the application under (a message's
/// `application`) is then already the canonical form.
async fn scoped_path(
    state: &ApiState,
    matched: &MatchedPath,
    params: &RawPathParams,
) -> Result<String, ApiError> {
    let mut scoped = String::with_capacity(matched.as_str().len());
    for (index, segment) in matched.as_str().split('/').enumerate() {
        if index > 0 {
            scoped.push('/');
        }
        let Some(name) = segment
            .strip_prefix('{')
            .and_then(|segment| segment.strip_suffix('}'))
        else {
            scoped.push_str(segment);
            continue;
        };
        let value = params
            .iter()
            .find(|(param, _)| *param == name)
            .map_or("", |(_, value)| value);
        let canonical = match name {
            "app" | "app_id" => state
                .application_cached(value)
                .await?
                .map(|app| app.uid.unwrap_or_else(|| app.id.to_string())),
            _ => None,
        };
        scoped.push_str(canonical.as_deref().unwrap_or(value));
    }
    Ok(scoped)
}

async fn replay(state: &ApiState, stored: IdempotentResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    if let Some(reference) = std::str::from_utf8(&stored.body)
        .ok()
        .and_then(|body| body.strip_prefix(MESSAGE_REFERENCE))
    {
        return replay_message(state, status, reference).await;
    }
    let mut response = (status, stored.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Renders a message's answer again from the stored message.
async fn replay_message(state: &ApiState, status: StatusCode, reference: &str) -> Response {
    let mut parts = reference.split(' ');
    let (Some(app), Some(msg), Some(with_content)) = (parts.next(), parts.next(), parts.next())
    else {
        return ApiError::Internal(format!("a malformed stored answer: {reference}"))
            .into_response();
    };
    let app = AppId::from_trusted(app.to_owned());
    match state
        .store()
        .get_message(&app, &MessageKey::parse(msg))
        .await
    {
        Ok(Some(message)) => message_out::answer(status, &message, with_content == "1")
            .map_or_else(IntoResponse::into_response, IntoResponse::into_response),
        Ok(None) => ApiError::not_found("message").into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// The layer of every POST route, as the route keeps its answers.
async fn keep(
    keeping: Keeping,
    state: &ApiState,
    matched: MatchedPath,
    params: RawPathParams,
    mut request: Request,
    next: Next,
) -> Response {
    let state = state.clone();
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request
        .headers()
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
    else {
        return next.run(request).await;
    };
    if key.is_empty() || key.len() > MAX_KEY_LENGTH {
        return ApiError::invalid(
            &["header", "idempotency-key"],
            format!("must be 1 to {MAX_KEY_LENGTH} characters long"),
        )
        .into_response();
    }
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Local);
    let path = match scoped_path(&state, &matched, &params).await {
        Ok(path) => path,
        Err(error) => return error.into_response(),
    };
    let hash = key_hash(&caller, request.method(), &path, key);
    let not_before = now() - IDEMPOTENCY_WINDOW;
    // A create writes the key with its effect, and a repeat's write conflicts and replays the
    // first answer (below): no read ahead is needed on that hot path.
    if keeping == Keeping::ReadAhead {
        match state
            .store()
            .get_idempotent_response(&hash, not_before)
            .await
        {
            Ok(Some(stored)) => return replay(&state, stored).await,
            Ok(None) => {}
            Err(error) => return ApiError::from(error).into_response(),
        }
    }
    let in_flight = state.in_flight();
    if !in_flight
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(hash.clone())
    {
        return ApiError::Conflict(
            "a request with this idempotency-key is still being processed".into(),
        )
        .into_response();
    }
    let _guard = InFlightGuard {
        keys: in_flight,
        key: hash.clone(),
    };
    request
        .extensions_mut()
        .insert(IdempotencyKey(Some(hash.clone())));
    let response = next.run(request).await;
    if response.extensions().get::<KeyUsed>().is_some() {
        // The store found the key's record when it wrote the effect's: another request with
        // the key (on any node) was served first, and its answer is the answer.
        if let Ok(Some(stored)) = state
            .store()
            .get_idempotent_response(&hash, not_before)
            .await
        {
            return replay(&state, stored).await;
        }
    }
    if response.status().is_server_error()
        || response.extensions().get::<Recorded>().is_some()
        || response.extensions().get::<NotStored>().is_some()
    {
        return response;
    }
    // The handler's effect was not a single store write: save its response now.
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::Internal("cannot read a response body".into()).into_response();
    };
    let record = IdempotentResponse {
        key_hash: hash,
        status: parts.status.as_u16(),
        body: bytes.to_vec(),
        created_at: now(),
    };
    if let Err(error) = state.store().save_idempotent_response(&record).await {
        tracing::warn!(%error, "could not save an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}
