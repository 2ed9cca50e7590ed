//! The HTTP API: the Svix v1-compatible subset under `/api/v1`, the tutorial's `/webhooks`
//! routes, health and metrics, the OpenAPI document of them all (`openapi`), and the web
//! console and portal pages (`console`). One file per resource, each with its `router()`.
//!
//! Architecture invariant: the API reaches storage only through `webhookd_store::Store` and
//! the delivery engine only through `webhookd_delivery::Dispatcher`; it sends no outbound HTTP.
//! Every API response is JSON, errors included, in the shapes of `error`; the console's pages
//! and assets are the only other content, and they carry no data.

pub mod auth;
pub mod console;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod openapi;
pub mod query;
pub mod wire;

mod application;
mod attempt;
mod authentication;
mod background_task;
mod body_guard;
mod cors;
mod endpoint;
mod event_type;
mod event_type_import;
mod health;
mod local_guard;
mod message;
mod message_content;
mod message_out;
mod poller;
mod schema;
mod seed;
mod statistics;
mod stats;
mod token;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::middleware;
use axum::response::IntoResponse;
use tower::Layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use webhookd_core::model::{Application, Endpoint};
use webhookd_core::signing::SignatureType;
use webhookd_core::{AppKey, EndpointKey};
use webhookd_delivery::Dispatcher;
use webhookd_store::Store;

use crate::auth::AuthMode;
use crate::error::{ApiError, ApiResult};
use crate::idempotency::InFlight;

/// Renders the Prometheus exposition text.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// What the API needs to know of the configuration.
#[derive(Clone)]
pub struct ApiConfig {
    pub auth: AuthMode,
    /// The largest message payload accepted, in bytes.
    pub max_payload_bytes: usize,
    pub metrics: Option<MetricsRender>,
    /// Browser origins let in besides the node's own, in local mode (see `local_guard`).
    /// Empty by default.
    pub allowed_origins: Vec<String>,
    /// The signature scheme of new endpoints created without a secret.
    pub signature_type: SignatureType,
    /// Where users reach this service (`WEBHOOKD_PUBLIC_URL`), without a trailing slash: the
    /// base of portal links.
    pub public_url: String,
    /// Browser origins allowed to call the API (`WEBHOOKD_CORS_ORIGINS`); none by default.
    pub cors_origins: Vec<HeaderValue>,
    /// How long a browser session lasts at most (`WEBHOOKD_SESSION_TTL`).
    pub session_ttl: Duration,
    /// Whether session cookies are `Secure` (the API serves TLS).
    pub secure_cookies: bool,
    /// Who may frame the portal (`WEBHOOKD_PORTAL_FRAME_ANCESTORS`), as a CSP
    /// `frame-ancestors` source list.
    pub portal_frame_ancestors: String,
    /// The lease on a delivery in flight (`WEBHOOKD_LEASE`): an endpoint's request timeout
    /// may be at most half of it.
    pub lease: Duration,
}

impl Default for ApiConfig {
    /// Local mode with every other setting at its default.
    fn default() -> Self {
        Self {
            auth: AuthMode::Local,
            max_payload_bytes: 1024 * 1024,
            metrics: None,
            public_url: "http://127.0.0.1:8090".into(),
            cors_origins: Vec::new(),
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            portal_frame_ancestors: "'self'".into(),
            allowed_origins: Vec::new(),
            signature_type: SignatureType::Hmac,
            lease: Duration::from_secs(60),
        }
    }
}

/// Shared state of every handler. Cheap to clone.
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    dispatcher: Dispatcher,
    config: ApiConfig,
    in_flight: InFlight,
    /// Whether requests are let in without a token: local mode at start, false for good once
    /// a token exists.
    local: AtomicBool,
    /// Recently read applications by path key, for the message hot path.
    applications: std::sync::Mutex<HashMap<String, (Application, Instant)>>,
}

/// How long a cached application is trusted (a change made on another node reaches this one
/// within it; changes made here apply at once).
const APPLICATION_TTL: Duration = Duration::from_secs(2);
/// Applications cached at most.
const APPLICATION_CACHE: usize = 10_000;

impl ApiState {
    pub fn new(store: Arc<dyn Store>, dispatcher: Dispatcher, config: ApiConfig) -> Self {
        Self(Arc::new(Inner {
            local: AtomicBool::new(config.auth == AuthMode::Local),
            store,
            dispatcher,
            config,
            in_flight: InFlight::default(),
            applications: std::sync::Mutex::default(),
        }))
    }

    pub fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    pub fn dispatcher(&self) -> &Dispatcher {
        &self.0.dispatcher
    }

    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }

    /// Whether the node is in local mode now (no token exists, loopback only).
    pub fn is_local(&self) -> bool {
        self.0.local.load(Ordering::Acquire)
    }

    /// Leaves local mode for good: a token exists, so every request needs one from now on.
    pub fn require_tokens(&self) {
        if self.0.local.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                "an API token exists now: local mode ends, and every request needs a token"
            );
        }
    }

    /// The largest request body accepted: the payload limit plus 64 KiB for the envelope.
    pub fn body_limit(&self) -> usize {
        self.config().max_payload_bytes.saturating_add(64 * 1024)
    }

    pub(crate) fn in_flight(&self) -> &InFlight {
        &self.0.in_flight
    }

    /// The application with this id or uid, or 404.
    pub(crate) async fn application(&self, key: &str) -> ApiResult<Application> {
        self.store()
            .get_application(&AppKey::parse(key))
            .await?
            .ok_or_else(|| ApiError::not_found("application"))
    }

    /// The application with this id or uid, from a short-lived cache (the ingest path).
    pub(crate) async fn application_cached(&self, key: &str) -> ApiResult<Option<Application>> {
        let cached = {
            let cache = self
                .0
                .applications
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            cache
                .get(key)
                .filter(|(_, at)| at.elapsed() < APPLICATION_TTL)
                .map(|(app, _)| app.clone())
        };
        if let Some(app) = cached {
            return Ok(Some(app));
        }
        let found = self.store().get_application(&AppKey::parse(key)).await?;
        if let Some(app) = &found {
            let mut cache = self
                .0
                .applications
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if cache.len() >= APPLICATION_CACHE {
                cache.clear();
            }
            cache.insert(key.to_owned(), (app.clone(), Instant::now()));
        }
        Ok(found)
    }

    /// Forgets cached applications after one changed.
    pub(crate) fn applications_changed(&self) {
        self.0
            .applications
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    /// The endpoint with this id or uid in the application, or 404.
    pub(crate) async fn endpoint(&self, app: &Application, key: &str) -> ApiResult<Endpoint> {
        self.store()
            .get_endpoint(&app.id, &EndpointKey::parse(key))
            .await?
            .ok_or_else(|| ApiError::not_found("endpoint"))
    }
}

/// The whole HTTP service: routes, auth, idempotency, JSON fallbacks, and paths served with
/// or without a trailing slash; every route behind the local-mode guard and the body guard.
pub fn service(state: ApiState) -> NormalizePath<Router> {
    // The request body may be a little larger than the payload, for the envelope around it.
    let body_limit = state.body_limit();
    let authenticated = Router::new()
        .nest(
            "/api/v1",
            Router::new()
                .merge(application::router())
                .merge(endpoint::router())
                .merge(event_type::router())
                .merge(event_type_import::router())
                .merge(message::router())
                .merge(message_content::router())
                .merge(attempt::router())
                .merge(background_task::router())
                .merge(statistics::router())
                .merge(token::router())
                .merge(authentication::router())
                .merge(poller::router())
                .merge(stats::router()),
        )
        .merge(seed::router())
        // The state of the idempotency layer that every POST route declares (`idempotency`).
        .layer(axum::Extension(state.clone()))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::middleware,
        ));
    let cors_origins = state.config().cors_origins.clone();
    let router = Router::new()
        .merge(health::router())
        .merge(openapi::router())
        .merge(console::router())
        .merge(authenticated)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(panicked));
    let mut router = guarded(router, state);
    if !cors_origins.is_empty() {
        router = router.layer(cors::CorsGateLayer::new(&cors_origins));
    }
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

/// Every route behind the local-mode guard, and that behind the body guard.
fn guarded(router: Router<ApiState>, state: ApiState) -> Router {
    router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            local_guard::middleware,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            body_guard::middleware,
        ))
        .with_state(state)
}

/// A handler that panicked answers our 500 (the panic is logged); the server goes on.
fn panicked(panic: Box<dyn std::any::Any + Send>) -> axum::response::Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a handler panicked");
    ApiError::Internal(format!("a handler panicked: {detail}")).into_response()
}

/// Health and metrics alone, for a node that only delivers (`WEBHOOKD_ROLE=worker`).
pub fn ops_service(state: ApiState) -> NormalizePath<Router> {
    let router = Router::new()
        .merge(health::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    NormalizePathLayer::trim_trailing_slash().layer(guarded(router, state))
}

async fn not_found(request: Request) -> impl IntoResponse {
    ApiError::NotFound(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

async fn method_not_allowed(method: Method, request: Request) -> impl IntoResponse {
    ApiError::MethodNotAllowed(format!(
        "{method} is not allowed on {}",
        request.uri().path()
    ))
}
