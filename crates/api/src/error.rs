//! The one error type of the API and the one table that maps it to a status and a body.
//!
//! Every failure answers JSON, in Svix's shapes: `{"code", "detail"}`, or for validation
//! errors (422) `{"detail": [{"loc", "msg", "type"}]}`, which is how the official SDKs parse
//! them. Internal errors answer a generic message; their detail is logged once, here.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use webhookd_store::{StoreError, Taken};

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where: `body`, `query`, `path` or `header`, then the field's path (e.g. `["body", "uid"]`).
    pub loc: Vec<String>,
    /// What is wrong, for a person.
    pub msg: String,
    /// The kind of error; `value_error` for now.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The body of every error but validation errors: `{"code", "detail"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable and machine-readable: `invalid_json`, `invalid_body`, `payload_expunged`,
    /// `authentication_failed`, `forbidden`, `not_found`, `method_not_allowed`, `conflict`,
    /// `request_timeout`, `payload_too_large`, `unsupported_media_type`, `unavailable`,
    /// `internal_error`.
    pub code: String,
    /// What happened, for a person. Internal errors say no more than that.
    pub detail: String,
}

/// The body of a 422: every field that failed validation, in the shape the SDKs parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ValidationErrorBody {
    pub detail: Vec<FieldError>,
}

/// Marks a 409 whose cause is the request's own idempotency key, used by an earlier request.
#[derive(Debug, Clone, Copy)]
pub struct KeyUsed;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    /// A live record of the request's idempotency key exists: another request with the key was
    /// served first. The response carries [`KeyUsed`], so the idempotency layer answers with
    /// that request's answer instead.
    #[error("{0}")]
    KeyUsed(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after_seconds: u32,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A 422 for one field: `loc` is where (e.g. `["body", "uid"]`), `msg` what is wrong.
    pub fn invalid(loc: &[&str], msg: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError {
            loc: loc.iter().map(|part| (*part).to_owned()).collect(),
            msg: msg.into(),
            kind: "value_error".into(),
        }])
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) | Self::KeyUsed(_) => StatusCode::CONFLICT,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } => code,
            Self::Unauthorized(_) => "authentication_failed",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Conflict(_) | Self::KeyUsed(_) => "conflict",
            Self::RequestTimeout(_) => "request_timeout",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Validation(_) => "validation",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(conflict) => {
                if let Some(cause) = conflict.cause() {
                    tracing::debug!(cause, "conflict");
                }
                if conflict.taken == Taken::IdempotencyKey {
                    Self::KeyUsed(conflict.detail().to_owned())
                } else {
                    Self::Conflict(conflict.detail().to_owned())
                }
            }
            StoreError::NotFound => Self::NotFound("not found".into()),
            StoreError::Invalid(detail) => Self::invalid(&["body"], detail),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                Self::Unavailable {
                    detail: "the store is unavailable or overloaded; retry shortly".into(),
                    retry_after_seconds: 1,
                }
            }
            StoreError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = match &self {
            Self::Validation(errors) => (
                status,
                Json(ValidationErrorBody {
                    detail: errors.clone(),
                }),
            )
                .into_response(),
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                let body = ErrorBody {
                    code: self.code().into(),
                    detail: "internal error; see the server log".into(),
                };
                (status, Json(body)).into_response()
            }
            other => {
                let body = ErrorBody {
                    code: other.code().into(),
                    detail: other.to_string(),
                };
                (status, Json(body)).into_response()
            }
        };
        match self {
            Self::Unavailable {
                retry_after_seconds,
                ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
            }
            Self::KeyUsed(_) => {
                response.extensions_mut().insert(KeyUsed);
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use webhookd_store::Conflict;

    use super::*;

    #[test]
    fn store_errors_map_to_statuses() {
        let cases = [
            (
                StoreError::Conflict(Conflict::application_uid(Some("x"))),
                StatusCode::CONFLICT,
            ),
            (
                StoreError::Conflict(Conflict::idempotency_key()),
                StatusCode::CONFLICT,
            ),
            (StoreError::NotFound, StatusCode::NOT_FOUND),
            (
                StoreError::Unavailable("locked".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                StoreError::Internal("boom".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(ApiError::from(error).status(), status);
        }
    }

    #[test]
    fn only_a_used_key_is_marked_for_replay() {
        let used =
            ApiError::from(StoreError::Conflict(Conflict::idempotency_key())).into_response();
        assert!(used.extensions().get::<KeyUsed>().is_some());
        let taken =
            ApiError::from(StoreError::Conflict(Conflict::event_id(Some("e1")))).into_response();
        assert!(taken.extensions().get::<KeyUsed>().is_none());
    }

    #[test]
    fn unavailable_carries_retry_after() {
        let response = ApiError::from(StoreError::Unavailable("locked".into())).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
