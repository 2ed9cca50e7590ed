//! Health and metrics, open without a token (metrics only from loopback when tokens exist).
//!
//! Two health answers, for two questions. *Liveness* (`GET /api/v1/health`, as Svix's SDKs
//! call it) says the process serves HTTP and never looks at the database, so an orchestrator
//! does not restart a node because its database is down. *Readiness*
//! (`GET /api/v1/health/ready`) says the node can serve requests now: its store answered a
//! trivial query within the store deadline; otherwise 503 with `Retry-After`, so a load
//! balancer sends traffic elsewhere until the database is back.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ApiState;
use crate::error::{ApiError, ErrorBody};

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/health/ready", get(ready))
        .route("/metrics", get(metrics))
}

#[utoipa::path(
    get,
    path = "/api/v1/health",
    operation_id = "health.get",
    tag = "Health",
    security(()),
    responses((status = 204, description = "The API is up"))
)]
pub(crate) async fn health() -> StatusCode {
    StatusCode::NO_CONTENT
}

#[utoipa::path(
    get,
    path = "/api/v1/health/ready",
    operation_id = "health.ready",
    tag = "Health",
    security(()),
    responses(
        (status = 204, description = "The node can serve requests: its database answers"),
        (status = 503, description = "The database does not answer (in time); retry after `Retry-After` seconds", body = ErrorBody,
         headers(("Retry-After" = u32, description = "Seconds to wait before asking again"))),
    )
)]
pub(crate) async fn ready(State(state): State<ApiState>) -> Result<StatusCode, ApiError> {
    match state.store().ping().await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(error) => {
            tracing::warn!(%error, "not ready: the store does not answer");
            Err(ApiError::Unavailable {
                detail: "the database does not answer; retry shortly".into(),
                retry_after_seconds: 1,
            })
        }
    }
}

/// Open from loopback; from elsewhere it needs a token when tokens exist.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics.get",
    tag = "Health",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus exposition text", content_type = "text/plain", body = String),
        (status = 401, description = "Off loopback, with tokens configured: no token, or an unknown one", body = ErrorBody),
        (status = 404, description = "Metrics are not enabled", body = ErrorBody),
    )
)]
pub(crate) async fn metrics(
    State(state): State<ApiState>,
    request: axum::extract::Request,
) -> Response {
    let from_loopback = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
    if !from_loopback && !state.is_local() {
        // Off loopback, metrics need a token like the API.
        let authorized = crate::auth::check(&state, request.headers()).await;
        if let Err(error) = authorized {
            return error.into_response();
        }
    }
    let Some(render) = &state.config().metrics else {
        return ApiError::NotFound("metrics are not enabled".into()).into_response();
    };
    let mut response = render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
