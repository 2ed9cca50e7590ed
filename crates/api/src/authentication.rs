//! `/api/v1/auth/…`: app-scoped access (Svix's `authentication` resource) and browser
//! sessions.
//!
//! - `POST /auth/app-portal-access/{app_id}` makes an `appsk_…` token for one application
//!   (creating the application from `application` when it does not exist) and the portal link
//!   that carries it: `WEBHOOKD_PUBLIC_URL` + `/portal#key=<token>`. The fragment never
//!   reaches a server, so the token stays out of access logs.
//! - `POST /auth/app/{app_id}/expire-all` expires the application's tokens (after `expiry`
//!   seconds, only those with one of `sessionIds` when given), and with them their sessions.
//! - `POST /auth/logout` ends the caller's session (and clears its cookie), or revokes the
//!   app token it was called with.
//! - `POST /auth/session` exchanges a token for a session cookie; `GET /auth/session` says who
//!   the caller is. Both answer [`SessionOut`].
//!
//! Who may call what is decided in `auth::scopes`, not here.

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;
use webhookd_core::AppKey;
use webhookd_core::access::Capability;
use webhookd_core::time::{now, serde_rfc3339};
use webhookd_core::{AppId, TokenId};
use webhookd_store::AppTokenRecord;

use crate::ApiState;
use crate::application::ApplicationIn;
use crate::auth::sessions::{self, random_secret};
use crate::auth::{APP_TOKEN_PREFIX, Caller, ViaSession, hash_hex, token_caller};
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency;
use crate::wire::{JsonBytes, NotStored};

/// The shortest and longest life of an app token, and the default.
const MIN_EXPIRY_SECONDS: u64 = 60;
const MAX_EXPIRY_SECONDS: u64 = 7 * 24 * 3600;
/// The longest delay `expire-all` takes.
const MAX_EXPIRE_DELAY_SECONDS: i64 = 3 * 24 * 3600;
/// The most `sessionIds` one `expire-all` takes.
const MAX_SESSION_IDS: usize = 1000;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route(
            "/auth/app-portal-access/{app_id}",
            idempotency::post(app_portal_access),
        )
        .route(
            "/auth/app/{app_id}/expire-all",
            idempotency::post(expire_all),
        )
        .route("/auth/logout", idempotency::post(logout))
        .route(
            "/auth/session",
            get(session).merge(idempotency::post(login)),
        )
}

/// The capabilities of an app portal token, as Svix names them.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(crate) enum AppPortalCapability {
    ViewBase,
    ViewEndpointSecret,
    ManageEndpointSecret,
    ManageTransformations,
    CreateAttempts,
    ManageEndpoint,
}

/// Svix's `AppPortalAccessIn`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppPortalAccessIn {
    /// Creates the application (the path's key becoming its uid) when it does not exist.
    #[serde(default)]
    application: Option<ApplicationIn>,
    /// What the token may do; all of it when absent. `ViewBase` is always included.
    #[serde(default)]
    #[schema(value_type = Option<Vec<AppPortalCapability>>)]
    capabilities: Option<Vec<Capability>>,
    /// Deprecated: `true` means `capabilities: ["ViewBase"]`.
    #[serde(default)]
    read_only: Option<bool>,
    /// Seconds the token works for: 60 to 604800, 7 days when absent.
    #[serde(default)]
    #[schema(minimum = 60, maximum = 604800)]
    expiry: Option<u64>,
    /// A label of your own (your user's session), for `expire-all`'s `sessionIds`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, pattern = r"^[a-zA-Z0-9@_-]+$")]
    session_id: Option<String>,
    /// Not supported: must be absent or empty.
    #[serde(default)]
    feature_flags: Option<Vec<String>>,
}

/// Svix's `AppPortalAccessOut`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AppPortalAccessOut {
    /// The portal link: `WEBHOOKD_PUBLIC_URL` + `/portal#key=<token>`.
    url: String,
    /// The `appsk_…` token itself; shown only this once.
    token: String,
}

/// Svix's `ApplicationTokenExpireIn`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApplicationTokenExpireIn {
    /// Seconds until the tokens expire (0 to 259200); at once when absent.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 259200)]
    expiry: Option<i64>,
    /// Only the tokens made with one of these `sessionId`s; all of them when empty.
    #[serde(default)]
    session_ids: Vec<String>,
}

/// The token a page logs in with.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SessionIn {
    /// An operator's API token or an `appsk_…` token.
    token: String,
}

/// Who the caller is, for the pages.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionOut {
    /// `local` (no login needed), `operator` or `app`.
    #[schema(example = "app")]
    kind: &'static str,
    /// The one application an `app` caller may see; `null` otherwise.
    #[schema(value_type = Option<String>, required)]
    app_id: Option<AppId>,
    #[schema(value_type = Vec<AppPortalCapability>)]
    capabilities: Vec<Capability>,
    /// When the session (or the token) stops working; `null` when it does not expire.
    #[serde(with = "serde_rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required)]
    expires_at: Option<OffsetDateTime>,
}

impl SessionOut {
    fn new(caller: &Caller, expires_at: Option<OffsetDateTime>) -> Self {
        let (kind, expires_at) = match caller {
            Caller::Local => ("local", None),
            Caller::Poller { .. } => ("poller", None),
            Caller::Operator { .. } => ("operator", expires_at),
            Caller::App {
                expires_at: token_expires_at,
                ..
            } => (
                "app",
                Some(expires_at.map_or(*token_expires_at, |at| at.min(*token_expires_at))),
            ),
        };
        Self {
            kind,
            app_id: caller.app_id().cloned(),
            capabilities: caller.capabilities(),
            expires_at,
        }
    }
}

/// The capabilities a new token gets.
fn granted(input: &AppPortalAccessIn) -> Vec<Capability> {
    let mut capabilities = match (&input.capabilities, input.read_only) {
        (Some(given), _) => given.clone(),
        (None, Some(true)) => vec![Capability::ViewBase],
        (None, _) => Capability::ALL.to_vec(),
    };
    capabilities.push(Capability::ViewBase);
    capabilities.sort();
    capabilities.dedup();
    capabilities
}

/// A `sessionId` as Svix spells them: 1 to 64 of `a-zA-Z0-9@_-`.
fn check_session_label(label: &str, loc: &[&str]) -> ApiResult<()> {
    let valid = (1..=64).contains(&label.len())
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            loc,
            "must be 1 to 64 letters, digits, `@`, `_` or `-`",
        ))
    }
}

impl AppPortalAccessIn {
    fn validate(&self) -> ApiResult<()> {
        if let Some(application) = &self.application {
            application
                .validate()
                .map_err(|error| crate::message::within("application", error))?;
        }
        if let Some(expiry) = self.expiry
            && !(MIN_EXPIRY_SECONDS..=MAX_EXPIRY_SECONDS).contains(&expiry)
        {
            return Err(ApiError::invalid(
                &["body", "expiry"],
                format!("must be {MIN_EXPIRY_SECONDS} to {MAX_EXPIRY_SECONDS} seconds"),
            ));
        }
        if let Some(label) = &self.session_id {
            check_session_label(label, &["body", "sessionId"])?;
        }
        if self
            .feature_flags
            .as_ref()
            .is_some_and(|flags| !flags.is_empty())
        {
            return Err(ApiError::invalid(
                &["body", "featureFlags"],
                "feature flags are not supported",
            ));
        }
        Ok(())
    }
}

/// Makes an app-scoped token and the portal link that carries it.
#[utoipa::path(
    post,
    path = "/api/v1/auth/app-portal-access/{app_id}",
    operation_id = "v1.authentication.app-portal-access",
    tag = "Authentication",
    params(("app_id" = String, Path, description = "The application's id or uid")),
    request_body = AppPortalAccessIn,
    responses(
        (status = 200, description = "The token and its portal link", body = AppPortalAccessOut),
        (status = 403, description = "Called with an application token", body = ErrorBody),
        (status = 404, description = "No such application (and no `application` in the body)", body = ErrorBody),
    )
)]
pub(crate) async fn app_portal_access(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    Json(input): Json<AppPortalAccessIn>,
) -> ApiResult<Response> {
    input.validate()?;
    let capabilities = granted(&input);
    let app_id = match state.store().get_application(&AppKey::parse(&key)).await? {
        Some(app) => app.id,
        None => match input.application {
            Some(application) => {
                let id = crate::message::create_application(&state, key, application).await?;
                state.applications_changed();
                id
            }
            None => return Err(ApiError::not_found("application")),
        },
    };
    let token = random_secret(APP_TOKEN_PREFIX);
    let at = now();
    let seconds = input.expiry.unwrap_or(MAX_EXPIRY_SECONDS);
    let record = AppTokenRecord {
        id: TokenId::new(),
        hash: hash_hex(&token),
        app_id,
        capabilities,
        session_label: input.session_id,
        created_at: at,
        expires_at: at + Duration::seconds(seconds as i64),
    };
    state.store().create_app_token(&record).await?;
    let url = format!("{}/portal#key={token}", state.config().public_url);
    // Only the token's hash is kept, so its answer is not stored for idempotent replay.
    let mut response =
        JsonBytes::new(StatusCode::OK, &AppPortalAccessOut { url, token })?.into_response();
    response.extensions_mut().insert(NotStored);
    Ok(response)
}

/// Expires the application's tokens, and so the sessions opened with them.
#[utoipa::path(
    post,
    path = "/api/v1/auth/app/{app_id}/expire-all",
    operation_id = "v1.authentication.expire-all",
    tag = "Authentication",
    params(("app_id" = String, Path, description = "The application's id or uid")),
    request_body = ApplicationTokenExpireIn,
    responses(
        (status = 204, description = "Expired (or expiring after `expiry` seconds)"),
        (status = 403, description = "Called with an application token", body = ErrorBody),
        (status = 404, description = "No such application", body = ErrorBody),
    )
)]
pub(crate) async fn expire_all(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    Json(input): Json<ApplicationTokenExpireIn>,
) -> ApiResult<StatusCode> {
    let delay = input.expiry.unwrap_or(0);
    if !(0..=MAX_EXPIRE_DELAY_SECONDS).contains(&delay) {
        return Err(ApiError::invalid(
            &["body", "expiry"],
            format!("must be 0 to {MAX_EXPIRE_DELAY_SECONDS} seconds"),
        ));
    }
    if input.session_ids.len() > MAX_SESSION_IDS {
        return Err(ApiError::invalid(
            &["body", "sessionIds"],
            format!("at most {MAX_SESSION_IDS} session ids"),
        ));
    }
    for (index, label) in input.session_ids.iter().enumerate() {
        check_session_label(label, &["body", "sessionIds", &index.to_string()])?;
    }
    let app = state.application(&key).await?;
    let at = now() + Duration::seconds(delay);
    state
        .store()
        .expire_app_tokens(&app.id, &input.session_ids, at)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends the caller's session, or revokes the application token it called with.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "v1.authentication.logout",
    tag = "Authentication",
    responses(
        (status = 204, description = "The session ended (its cookie cleared) or the application token revoked"),
        (status = 403, description = "Called with an operator's API token, which `webhookd token revoke` revokes", body = ErrorBody),
    )
)]
pub(crate) async fn logout(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    via_session: Option<Extension<ViaSession>>,
) -> ApiResult<Response> {
    if let Some(Extension(session)) = via_session {
        state.store().delete_session(&session.hash).await?;
        let clear = sessions::clear_cookie(&state);
        return Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response());
    }
    match caller {
        Caller::App { token_id, .. } => {
            state.store().expire_app_token(&token_id, now()).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Caller::Local => Ok(StatusCode::NO_CONTENT.into_response()),
        Caller::Poller { .. } => Err(ApiError::Forbidden(
            "a poller token is ended by rotating it with `oldTokenExpiry: 0`".into(),
        )),
        Caller::Operator { .. } => Err(ApiError::Forbidden(
            "logout ends a session or an application token; revoke API tokens with \
             `webhookd token revoke`"
                .into(),
        )),
    }
}

/// Exchanges a token for a session cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/session",
    operation_id = "v1.authentication.session-create",
    tag = "Authentication",
    request_body = SessionIn,
    security(()),
    responses(
        (status = 200, description = "Logged in; the `webhookd_session` cookie is set (in local mode, only for a stored operator token)", body = SessionOut),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "An unknown, revoked or expired token", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 422, description = "No token given", body = ValidationErrorBody),
        (status = 503, description = "The store is unavailable; retry shortly", body = ErrorBody),
    )
)]
pub(crate) async fn login(
    State(state): State<ApiState>,
    Json(input): Json<SessionIn>,
) -> ApiResult<Response> {
    let token = input.token.trim();
    if token.is_empty() {
        return Err(ApiError::invalid(&["body", "token"], "must not be empty"));
    }
    let caller = if state.is_local() && !token.starts_with(APP_TOKEN_PREFIX) {
        // Local mode needs no login, but a stored operator token (the first one, just created)
        // opens a session: local mode ends once the node sees it, and the session goes on.
        match token_caller(&state, token).await {
            Ok(caller) => caller,
            Err(ApiError::Unauthorized(_)) => {
                let out = SessionOut::new(&Caller::Local, None);
                return Ok(JsonBytes::new(StatusCode::OK, &out)?.into_response());
            }
            Err(error) => return Err(error),
        }
    } else {
        token_caller(&state, token).await?
    };
    let opened = sessions::open(&state, &caller).await?;
    let out = SessionOut::new(&caller, Some(opened.expires_at));
    let cookie = sessions::set_cookie(&state, &opened);
    Ok((
        [(header::SET_COOKIE, cookie)],
        JsonBytes::new(StatusCode::OK, &out)?,
    )
        .into_response())
}

/// Who the caller is: `local`, `operator` or `app`, with what it may do.
#[utoipa::path(
    get,
    path = "/api/v1/auth/session",
    operation_id = "v1.authentication.session-get",
    tag = "Authentication",
    responses(
        (status = 200, description = "The caller", body = SessionOut),
    )
)]
pub(crate) async fn session(
    Extension(caller): Extension<Caller>,
    via_session: Option<Extension<ViaSession>>,
) -> ApiResult<JsonBytes> {
    let expires_at = via_session.map(|Extension(session)| session.expires_at);
    JsonBytes::new(StatusCode::OK, &SessionOut::new(&caller, expires_at))
}
