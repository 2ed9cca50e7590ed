//! Health and metrics, open without a token (metrics only from loopback when tokens exist).

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
