//! `…/endpoint/{ep}/secret`: the endpoint's signing secret, read and rotated.
//!
//! Rotation: the new secret becomes current and the old one is retired, still
//! signing beside it for a grace period so that receivers can roll over without rejecting a
//! delivery. `gracePeriodSeconds` defaults to 24 hours and may be 0 (the old secret stops at
//! once) up to 7 days. At most 10 retired secrets are kept: expired ones are dropped at each
//! rotation, then the oldest ones beyond 10.
//!
//! Both kinds of Standard Webhooks keys rotate alike. An ed25519 endpoint (`whsk_` secret key)
//! shows its `whpk_` public key, the one thing a receiver needs, wherever an HMAC endpoint
//! shows its `whsec_` secret. A rotation without a key generates one of the current kind; a
//! `whsk_` key switches an HMAC endpoint to ed25519, and a `whsec_` one back, as in Svix.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;
use webhookd_core::model::{Endpoint, RetiredSecret};
use webhookd_core::signing::Secret;
use webhookd_core::time::now;

use super::{locate, parse_secret, save};
use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency;
use crate::wire::JsonBytes;

/// How long a rotated-out secret keeps signing when the request does not say.
pub(super) const DEFAULT_GRACE: Duration = Duration::hours(24);
/// The longest grace period accepted.
const MAX_GRACE: Duration = Duration::days(7);
/// The most retired secrets kept; each one adds a signature to every delivery.
const MAX_RETIRED: usize = 10;

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route("/app/{app}/endpoint/{ep}/secret", get(read))
        .route(
            "/app/{app}/endpoint/{ep}/secret/rotate",
            idempotency::post(rotate),
        )
}

/// `{"key": "whsec_…"}`, or `{"key": "whpk_…"}` (the public key) for an ed25519 endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SecretOut {
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    key: String,
}

impl SecretOut {
    /// What a receiver of the endpoint verifies with: its `whsec_` secret, or the `whpk_`
    /// public key of its ed25519 secret key.
    pub(super) fn of(endpoint: &Endpoint) -> Self {
        Self {
            key: endpoint.secret.receiver_key(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RotateIn {
    /// The new secret (`whsec_…`, or an ed25519 `whsk_…`); one of the current kind is
    /// generated when absent.
    #[serde(default)]
    key: Option<String>,
    /// How long the old secret keeps signing beside the new one: 0 to 604800 (7 days),
    /// 86400 (24 hours) by default.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
    grace_period_seconds: Option<i64>,
}

/// Makes `new` the current secret; the old one signs beside it until `now + grace` (not at
/// all when `grace` is zero). Drops retired secrets that expired or that are the new one,
/// then the oldest beyond [`MAX_RETIRED`].
pub(super) fn retire_current(
    endpoint: &mut Endpoint,
    new: Secret,
    grace: Duration,
    now: OffsetDateTime,
) {
    let old = std::mem::replace(&mut endpoint.secret, new);
    let current = &endpoint.secret;
    endpoint
        .retired_secrets
        .retain(|retired| retired.expires_at > now && retired.secret != *current);
    if grace > Duration::ZERO && old != endpoint.secret {
        endpoint.retired_secrets.push(RetiredSecret {
            secret: old,
            expires_at: now + grace,
        });
    }
    let excess = endpoint.retired_secrets.len().saturating_sub(MAX_RETIRED);
    endpoint.retired_secrets.drain(..excess);
}

/// A secret given on PUT or PATCH: the same as the current one changes nothing; another one
/// is a rotation with the default grace period.
pub(super) fn adopt(endpoint: &mut Endpoint, secret: Secret, now: OffsetDateTime) {
    if secret != endpoint.secret {
        retire_current(endpoint, secret, DEFAULT_GRACE, now);
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/endpoint/{ep}/secret",
    operation_id = "v1.endpoint.get-secret",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    responses(
        (status = 200, description = "The current signing secret, or the public key of an ed25519 endpoint", body = SecretOut),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn read(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
) -> ApiResult<JsonBytes> {
    let (_, endpoint) = locate(&state, &app, &ep).await?;
    JsonBytes::new(
        StatusCode::OK,
        &SecretOut {
            key: endpoint.secret.receiver_key(),
        },
    )
}

/// Answers 200 with the new secret. The idempotency middleware saves the answer after the
/// update (the store's endpoint update takes no idempotency record).
#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/endpoint/{ep}/secret/rotate",
    operation_id = "v1.endpoint.rotate-secret",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    request_body = RotateIn,
    responses(
        (status = 200, description = "The new secret, or the new public key of an ed25519 endpoint", body = SecretOut),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn rotate(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    Json(input): Json<RotateIn>,
) -> ApiResult<JsonBytes> {
    let (_, mut endpoint) = locate(&state, &app, &ep).await?;
    rotate_to(&mut endpoint, input)?;
    save(&state, &endpoint).await?;
    JsonBytes::new(
        StatusCode::OK,
        &SecretOut {
            key: endpoint.secret.receiver_key(),
        },
    )
}

/// Validates a rotation request and applies it to the endpoint (not saved). Shared by the
/// endpoint routes and the operational endpoints' routes.
pub(super) fn rotate_to(endpoint: &mut Endpoint, input: RotateIn) -> ApiResult<()> {
    let grace = match input.grace_period_seconds {
        None => DEFAULT_GRACE,
        Some(seconds) if (0..=MAX_GRACE.whole_seconds()).contains(&seconds) => {
            Duration::seconds(seconds)
        }
        Some(_) => {
            return Err(ApiError::invalid(
                &["body", "gracePeriodSeconds"],
                format!(
                    "must be between 0 and {} (7 days)",
                    MAX_GRACE.whole_seconds()
                ),
            ));
        }
    };
    let new = input
        .key
        .as_deref()
        .map(|text| parse_secret("key", text))
        .transpose()?;
    if new.as_ref().is_some_and(|new| *new == endpoint.secret) {
        return Err(ApiError::invalid(
            &["body", "key"],
            "must differ from the current secret",
        ));
    }
    let at = now();
    let kind = endpoint.secret.signature_type();
    retire_current(
        endpoint,
        new.unwrap_or_else(|| Secret::generate_of(kind)),
        grace,
        at,
    );
    endpoint.updated_at = at;
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::*;

    fn endpoint() -> Endpoint {
        let at = now();
        Endpoint::new(webhookd_core::AppId::new(), "https://example.com", at)
    }

    #[test]
    fn the_old_secret_signs_during_the_grace_period() {
        let mut endpoint = endpoint();
        let old = endpoint.secret.clone();
        let new = Secret::generate();
        let at = now();
        retire_current(&mut endpoint, new.clone(), DEFAULT_GRACE, at);
        assert_eq!(endpoint.secret, new);
        let signing: Vec<_> = endpoint
            .signing_secrets(at + Duration::hours(23))
            .cloned()
            .collect();
        assert_eq!(signing, [new.clone(), old]);
        assert_eq!(
            endpoint.signing_secrets(at + Duration::hours(25)).count(),
            1
        );
    }

    #[test]
    fn a_zero_grace_retires_nothing() {
        let mut endpoint = endpoint();
        retire_current(&mut endpoint, Secret::generate(), Duration::ZERO, now());
        assert!(endpoint.retired_secrets.is_empty());
    }

    #[test]
    fn at_most_ten_live_secrets_are_kept_and_expired_ones_go() {
        let mut endpoint = endpoint();
        let at = now();
        retire_current(&mut endpoint, Secret::generate(), Duration::seconds(1), at);
        let first_long_lived = endpoint.secret.clone();
        for _ in 0..11 {
            retire_current(
                &mut endpoint,
                Secret::generate(),
                DEFAULT_GRACE,
                at + Duration::seconds(2),
            );
        }
        assert_eq!(endpoint.retired_secrets.len(), MAX_RETIRED);
        // The short-lived one expired, and the oldest long-lived one was dropped.
        assert!(
            endpoint
                .retired_secrets
                .iter()
                .all(|retired| retired.secret != first_long_lived)
        );
        assert!(
            endpoint
                .retired_secrets
                .iter()
                .all(|retired| retired.expires_at > at + Duration::hours(1))
        );
    }

    #[test]
    fn adopting_the_current_secret_changes_nothing() {
        let mut endpoint = endpoint();
        let current = endpoint.secret.clone();
        adopt(&mut endpoint, current.clone(), now());
        assert_eq!(endpoint.secret, current);
        assert!(endpoint.retired_secrets.is_empty());
        adopt(&mut endpoint, Secret::generate(), now());
        assert_eq!(endpoint.retired_secrets.len(), 1);
    }
}
