//! Request bodies at the edge of the service, before and after the handler.
//!
//! 1. A `Content-Length` beyond the body limit is answered 413 at once, without reading a byte
//!    of the body: a client announcing 100 GB does not hold a connection while it sends them.
//! 2. A request whose body was left unread (a 404, 405 or 413, a handler that takes no body, a
//!    body that failed to parse half-way) is answered with `Connection: close` over HTTP/1.
//!    The server cannot tell the rest of such a body from the next request, so it closes the
//!    connection after the answer; saying so in the answer keeps the client from sending its
//!    next request on a connection that is about to close, where it would get no answer at all.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as _, Frame, SizeHint};

use crate::ApiState;
use crate::error::ApiError;

pub(crate) async fn middleware(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let http1 = request.version() <= Version::HTTP_11;
    let limit = state.body_limit();
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        let mut response = ApiError::PayloadTooLarge(format!(
            "the request body is larger than the server accepts ({limit} bytes)"
        ))
        .into_response();
        if http1 {
            close(&mut response);
        }
        return response;
    }
    let ended = Arc::new(AtomicBool::new(request.body().is_end_stream()));
    let request = request.map(|inner| {
        Body::new(Tracked {
            inner,
            ended: Arc::clone(&ended),
        })
    });
    let mut response = next.run(request).await;
    if http1 && !ended.load(Ordering::Acquire) {
        close(&mut response);
    }
    response
}

fn close(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// A request body that notes when it has been read to its end.
struct Tracked {
    inner: Body,
    ended: Arc<AtomicBool>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let at_end = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            _ => false,
        };
        if at_end {
            this.ended.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
