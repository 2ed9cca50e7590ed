//! Our own extractors, so that every rejection answers in the API's error shape: a JSON body
//! (400 when malformed, 413 when too large, 415 when it is declared as something other than
//! JSON, 408 when it arrives too slowly, 422 when a field is wrong, with its location) and
//! path parameters (404 when unreadable). Unknown fields are ignored. Query strings are read by
//! `query`, in the same error shape.
//!
//! A body must say it is JSON (`application/json` or any `…+json` type) or say nothing: a web
//! page can send `text/plain` or a form to another origin without asking first, but never a
//! JSON content type, so refusing the others keeps cross-site pages from posting to the API. A
//! request without `Content-Type` is read as JSON; browsers always send one with a body.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult, FieldError};

/// Path parameters. A parameter that cannot be read (not valid UTF-8 once percent-decoded)
/// names nothing, so it answers 404 in the API's shape rather than axum's plain-text 400.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            // A server error here is a route whose parameters do not fit its handler: a bug.
            Err(rejection) if rejection.status().is_server_error() => {
                Err(ApiError::Internal(rejection.body_text()))
            }
            Err(rejection) => Err(ApiError::NotFound(rejection.body_text())),
        }
    }
}

/// A JSON request body.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_json_content_type(request.headers())?;
        let bytes = tokio::time::timeout(BODY_READ_TIMEOUT, Bytes::from_request(request, state))
            .await
            .map_err(|_| {
                ApiError::RequestTimeout(format!(
                    "the request body did not arrive within {} seconds",
                    BODY_READ_TIMEOUT.as_secs()
                ))
            })?
            .map_err(body_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

/// How long a whole request body may take to arrive; a body trickling in slower than that
/// (a slow-body attack holding a connection) is answered 408.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// 415 unless the body is declared as JSON or not declared at all.
fn check_json_content_type(headers: &axum::http::HeaderMap) -> ApiResult<()> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || essence
            .split_once('/')
            .is_some_and(|(kind, subtype)| !kind.is_empty() && subtype.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "the request body must be JSON (`content-type: application/json`), not `{}`",
            String::from_utf8_lossy(value.as_bytes()).escape_debug()
        )))
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the request body is larger than the server accepts".into())
    } else {
        ApiError::BadRequest {
            code: "invalid_body",
            detail: rejection.body_text(),
        }
    }
}

/// Parses a JSON body: syntax errors are 400, wrong fields 422 with their location.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let mut loc = vec!["body".to_owned()];
                loc.extend(
                    path.split('.')
                        .filter(|part| !part.is_empty() && *part != "?")
                        .map(str::to_owned),
                );
                ApiError::Validation(vec![FieldError {
                    loc,
                    msg: strip_position(&inner.to_string()),
                    kind: "value_error".into(),
                }])
            }
            _ => ApiError::BadRequest {
                code: "invalid_json",
                detail: format!("the request body is not valid JSON: {inner}"),
            },
        }
    })?;
    deserializer.end().map_err(|error| ApiError::BadRequest {
        code: "invalid_json",
        detail: format!("the request body is not valid JSON: {error}"),
    })?;
    Ok(value)
}

/// serde_json appends "at line 1 column 9", which means nothing in a field error.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        count: Option<u32>,
    }

    #[test]
    fn bodies_fail_with_the_right_status() {
        assert!(matches!(
            parse_json::<Sample>(b"{nope"),
            Err(ApiError::BadRequest { .. })
        ));
        assert!(matches!(
            parse_json::<Sample>(br#"{"name": "a"} x"#),
            Err(ApiError::BadRequest { .. })
        ));
        let Err(ApiError::Validation(errors)) =
            parse_json::<Sample>(br#"{"name": "a", "count": -1}"#)
        else {
            panic!("a negative count is a validation error");
        };
        assert_eq!(errors[0].loc, ["body", "count"]);
        assert!(!errors[0].msg.contains("line"));
        let Err(ApiError::Validation(errors)) = parse_json::<Sample>(b"{}") else {
            panic!("a missing field is a validation error");
        };
        assert!(errors[0].msg.contains("name"));
    }

    #[test]
    fn only_json_content_types_are_read() {
        let headers = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            headers
        };
        assert!(check_json_content_type(&axum::http::HeaderMap::new()).is_ok());
        for good in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+json",
        ] {
            assert!(check_json_content_type(&headers(good)).is_ok(), "{good}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "",
        ] {
            assert!(
                matches!(
                    check_json_content_type(&headers(bad)),
                    Err(ApiError::UnsupportedMediaType(_))
                ),
                "{bad}"
            );
        }
    }
}
