//! `…/endpoint/{ep}/headers`: custom headers sent with every delivery to the endpoint.
//!
//! GET answers `{"headers", "sensitive"}`; PUT `{headers}` replaces them all; PATCH
//! `{headers, deleteHeaders?}` merges, a `null` value deleting that header. Both answer 204.
//!
//! Rules:
//! - A name must be an HTTP token and a value a valid header value (visible ASCII, spaces
//!   and tabs). Names are case-insensitive, so they are stored lower-case: `X-Tenant` and
//!   `x-tenant` are one header.
//! - Reserved names are refused: the ones the engine sets itself (`webhook-id`,
//!   `webhook-timestamp`, `webhook-signature`, any `svix-*`, `content-type`, `user-agent`) and
//!   the ones that would break the request (`content-length`, `host`, `connection`,
//!   `transfer-encoding` and the other hop-by-hop headers), and `proxy-authorization`, which
//!   belongs to the operator's `WEBHOOKD_PROXY` credentials, not to a tenant.
//! - At most 20 headers, of at most 4096 bytes each.
//! - **Sensitive** headers are never shown again once set: GET leaves their values out of
//!   `headers` and lists their names in `sensitive`. A name is sensitive when it is
//!   `authorization`, `proxy-authorization`, `cookie` or `x-api-key`, or when it contains
//!   `secret`, `token`, `key`, `password`, `auth` or `session`. The rule errs towards hiding.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use webhookd_core::time::now;

use super::{locate, save};
use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::wire::JsonBytes;

/// The most custom headers an endpoint may have.
const MAX_HEADERS: usize = 20;
/// The longest value accepted.
const MAX_VALUE_LENGTH: usize = 4096;

/// Names the engine sets itself, or that would break the request.
const RESERVED: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "connection",
    "transfer-encoding",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];
const SENSITIVE: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];
const SENSITIVE_PARTS: &[&str] = &["secret", "token", "key", "password", "auth", "session"];

pub(super) fn router() -> Router<ApiState> {
    Router::new().route(
        "/app/{app}/endpoint/{ep}/headers",
        get(read).put(replace).patch(merge),
    )
}

/// The custom headers; sensitive ones are named but not shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HeadersOut {
    /// The headers that are not sensitive, by lower-case name.
    headers: BTreeMap<String, String>,
    /// The names of the sensitive headers, whose values are never shown again.
    sensitive: Vec<String>,
}

/// The complete set of custom headers (PUT).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct HeadersIn {
    /// At most 20.
    headers: BTreeMap<String, String>,
}

/// Changes to the custom headers (PATCH): `null` deletes a header, as does `deleteHeaders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HeadersPatchIn {
    #[serde(default)]
    headers: BTreeMap<String, Option<String>>,
    #[serde(default)]
    delete_headers: Vec<String>,
}

fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name) || name.starts_with("svix-")
}

/// Whether a (lower-case) header name is sensitive; see the module documentation.
fn is_sensitive(name: &str) -> bool {
    SENSITIVE.contains(&name) || SENSITIVE_PARTS.iter().any(|part| name.contains(part))
}

/// Checks one header; its lower-case name and its value.
fn check_one(name: &str, value: String) -> ApiResult<(String, String)> {
    let invalid = |msg: &str| ApiError::invalid(&["body", "headers", name], msg);
    let normalized = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| invalid("is not a valid HTTP header name"))?;
    let normalized = normalized.as_str().to_owned();
    if is_reserved(&normalized) {
        return Err(invalid(
            "is a reserved header that webhookd sets itself or that cannot be overridden",
        ));
    }
    if value.len() > MAX_VALUE_LENGTH {
        return Err(invalid("the value must be at most 4096 bytes long"));
    }
    HeaderValue::from_str(&value)
        .map_err(|_| invalid("the value must be visible ASCII characters, spaces and tabs"))?;
    Ok((normalized, value))
}

fn check_count(headers: &BTreeMap<String, String>) -> ApiResult<()> {
    if headers.len() > MAX_HEADERS {
        return Err(ApiError::invalid(
            &["body", "headers"],
            format!("an endpoint may have at most {MAX_HEADERS} custom headers"),
        ));
    }
    Ok(())
}

/// Checks a complete set of custom headers (PUT, or `headers` in an endpoint's body) and
/// normalizes their names.
pub(super) fn check_all(headers: BTreeMap<String, String>) -> ApiResult<BTreeMap<String, String>> {
    let mut checked = BTreeMap::new();
    for (name, value) in headers {
        let (name, value) = check_one(&name, value)?;
        checked.insert(name, value);
    }
    check_count(&checked)?;
    Ok(checked)
}

/// The stored headers with the sensitive ones redacted.
pub(super) fn redact(headers: BTreeMap<String, String>) -> HeadersOut {
    let (sensitive, shown): (BTreeMap<_, _>, BTreeMap<_, _>) = headers
        .into_iter()
        .partition(|(name, _)| is_sensitive(&name.to_ascii_lowercase()));
    HeadersOut {
        headers: shown,
        sensitive: sensitive.into_keys().collect(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/endpoint/{ep}/headers",
    operation_id = "v1.endpoint.get-headers",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    responses(
        (status = 200, description = "The custom headers", body = HeadersOut),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn read(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
) -> ApiResult<JsonBytes> {
    let (_, endpoint) = locate(&state, &app, &ep).await?;
    JsonBytes::new(StatusCode::OK, &redact(endpoint.headers))
}

#[utoipa::path(
    put,
    path = "/api/v1/app/{app}/endpoint/{ep}/headers",
    operation_id = "v1.endpoint.update-headers",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    request_body = HeadersIn,
    responses(
        (status = 204, description = "Replaced"),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn replace(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    Json(input): Json<HeadersIn>,
) -> ApiResult<StatusCode> {
    let headers = check_all(input.headers)?;
    let (_, mut endpoint) = locate(&state, &app, &ep).await?;
    endpoint.headers = headers;
    endpoint.updated_at = now();
    save(&state, &endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    patch,
    path = "/api/v1/app/{app}/endpoint/{ep}/headers",
    operation_id = "v1.endpoint.patch-headers",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    request_body = HeadersPatchIn,
    responses(
        (status = 204, description = "Merged"),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn merge(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    Json(input): Json<HeadersPatchIn>,
) -> ApiResult<StatusCode> {
    let (_, mut endpoint) = locate(&state, &app, &ep).await?;
    let mut headers = endpoint.headers.clone();
    for name in &input.delete_headers {
        headers.remove(&name.to_ascii_lowercase());
    }
    for (name, value) in input.headers {
        match value {
            Some(value) => {
                let (name, value) = check_one(&name, value)?;
                headers.insert(name, value);
            }
            None => {
                headers.remove(&name.to_ascii_lowercase());
            }
        }
    }
    check_count(&headers)?;
    endpoint.headers = headers;
    endpoint.updated_at = now();
    save(&state, &endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_normalized_and_reserved() {
        assert_eq!(
            check_one("X-Tenant", "a b".into()).unwrap(),
            ("x-tenant".into(), "a b".into())
        );
        for reserved in [
            "Webhook-Signature",
            "svix-id",
            "Content-Type",
            "host",
            "Transfer-Encoding",
            "Proxy-Authorization",
        ] {
            assert!(
                check_one(reserved, "x".into()).is_err(),
                "{reserved} is reserved"
            );
        }
        assert!(check_one("bad name", "x".into()).is_err());
        assert!(check_one("x-ok", "line\nbreak".into()).is_err());
    }

    #[test]
    fn sensitive_headers_are_redacted() {
        let headers = BTreeMap::from([
            ("authorization".to_owned(), "Bearer x".to_owned()),
            ("x-api-key".to_owned(), "k".to_owned()),
            ("x-client-secret".to_owned(), "s".to_owned()),
            ("x-tenant".to_owned(), "acme".to_owned()),
        ]);
        let out = redact(headers);
        assert_eq!(
            out.headers,
            BTreeMap::from([("x-tenant".to_owned(), "acme".to_owned())])
        );
        assert_eq!(
            out.sensitive,
            ["authorization", "x-api-key", "x-client-secret"]
        );
    }

    #[test]
    fn at_most_twenty() {
        let many: BTreeMap<String, String> = (0..21)
            .map(|n| (format!("x-h{n}"), "v".to_owned()))
            .collect();
        assert!(check_all(many).is_err());
    }
}
