//! CORS for browser front ends that call the API with an application token
//! (`WEBHOOKD_CORS_ORIGINS`).
//!
//! Only the listed origins get CORS headers and preflight answers: a request from any other
//! origin (or with none) goes to the routes as if this layer were not there, so an `OPTIONS`
//! from an unlisted origin gets the usual 405 and no `Access-Control-*` header. Cookies are
//! not allowed cross-origin (no `Access-Control-Allow-Credentials`): such front ends send
//! their token in `Authorization`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowHeaders, AllowOrigin, Cors, CorsLayer};

/// Sends requests from a listed origin through tower-http's CORS layer, and others past it.
#[derive(Clone)]
pub(crate) struct CorsGateLayer {
    origins: Arc<[HeaderValue]>,
    cors: CorsLayer,
}

impl CorsGateLayer {
    pub(crate) fn new(origins: &[HeaderValue]) -> Self {
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([header::RETRY_AFTER])
            .max_age(Duration::from_secs(600));
        Self {
            origins: origins.into(),
            cors,
        }
    }
}

impl<S: Clone> Layer<S> for CorsGateLayer {
    type Service = CorsGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsGate {
            cors: self.cors.layer(inner.clone()),
            plain: inner,
            origins: Arc::clone(&self.origins),
        }
    }
}

#[derive(Clone)]
pub(crate) struct CorsGate<S> {
    plain: S,
    cors: Cors<S>,
    origins: Arc<[HeaderValue]>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for CorsGate<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call drives a clone of its service to readiness (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let listed = request
            .headers()
            .get(header::ORIGIN)
            .is_some_and(|origin| self.origins.contains(origin));
        if listed {
            Box::pin(self.cors.clone().oneshot(request))
        } else {
            Box::pin(self.plain.clone().oneshot(request))
        }
    }
}
