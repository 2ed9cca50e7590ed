//! The tutorial's registration routes, without the `/api/v1` prefix:
//! `POST /webhooks {"name", "destination"}` registers a destination for a customer, and
//! `GET /webhooks` lists the registrations, a page at a time, in the list shape.
//!
//! A `name` is the uid of an application (created on first use, with `name` as its display
//! name too); a `destination` is one of its endpoints. Registering the same URL again reuses
//! the endpoint, so the route is idempotent for a given name and URL and answers 201 with the
//! same ids and secret each time. URLs are compared once parsed, so `https://a.example` and
//! `https://a.example/` are the same destination.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::Map;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use webhookd_core::Key;
use webhookd_core::model::{Application, Endpoint};
use webhookd_core::time::now;
use webhookd_core::{AppId, EndpointId, validate};
use webhookd_store::{Cursor, Order, Page, PageRequest, Taken};

use crate::ApiState;
use crate::endpoint::{EndpointIn, ensure_room, new_endpoint};
use crate::error::ValidationErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::idempotency::{self, IdempotencyKey};
use crate::query::{ListQuery, MAX_LIMIT};
use crate::wire::{JsonBytes, ListResponse};

pub(crate) fn router() -> Router<ApiState> {
    Router::new().route("/webhooks", get(list).merge(idempotency::post(register)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RegistrationIn {
    /// The customer: the uid of its application.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.]{1,256}$"
    )]
    name: String,
    /// The URL to deliver to: `http` or `https`, with a host and no credentials.
    #[schema(format = "uri", max_length = 2048)]
    destination: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegistrationOut {
    name: String,
    destination: String,
    #[schema(value_type = String)]
    application_id: AppId,
    #[schema(value_type = String)]
    endpoint_id: EndpointId,
    /// The endpoint's signing secret, `whsec_…`.
    secret: String,
}

/// One registration in the list: no secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegistrationItem {
    name: String,
    destination: String,
    #[schema(value_type = String)]
    application_id: AppId,
    #[schema(value_type = String)]
    endpoint_id: EndpointId,
}

impl RegistrationOut {
    fn new(name: String, app: &Application, endpoint: &Endpoint) -> Self {
        Self {
            name,
            destination: endpoint.url.clone(),
            application_id: app.id.clone(),
            endpoint_id: endpoint.id.clone(),
            secret: endpoint.secret.receiver_key(),
        }
    }
}

#[utoipa::path(
    post,
    path = "/webhooks",
    operation_id = "webhooks.register",
    tag = "Webhooks",
    request_body = RegistrationIn,
    responses(
        (status = 201, description = "Registered (or registered before: the same ids and secret)", body = RegistrationOut),
    )
)]
pub(crate) async fn register(
    State(state): State<ApiState>,
    idempotency: IdempotencyKey,
    Json(input): Json<RegistrationIn>,
) -> ApiResult<JsonBytes> {
    validate::uid(&input.name).map_err(|msg| ApiError::invalid(&["body", "name"], msg))?;
    let url = validate::destination(&input.destination)
        .map_err(|msg| ApiError::invalid(&["body", "destination"], msg))?
        .to_string();
    let app = application(&state, &input.name).await?;
    if let Some(existing) = endpoint_with_url(&state, &app.id, &url).await? {
        return JsonBytes::new(
            StatusCode::CREATED,
            &RegistrationOut::new(input.name, &app, &existing),
        );
    }
    let mut endpoint = new_endpoint(
        &app.id,
        EndpointIn::for_url(input.destination),
        state.config().signature_type,
        state.config().lease,
    )?;
    // A uid derived from the URL makes two first registrations that race end with one
    // endpoint: the loser's create conflicts and reads the winner's back.
    let uid = destination_uid(&url);
    endpoint.uid = Some(uid.clone());
    ensure_room(&state, &app.id).await?;
    let response = JsonBytes::new(
        StatusCode::CREATED,
        &RegistrationOut::new(input.name.clone(), &app, &endpoint),
    )?;
    let created = state
        .store()
        .create_endpoint(&endpoint, idempotency.record(&response).as_ref())
        .await;
    match created {
        Ok(()) => {
            state.dispatcher().endpoint_changed(&endpoint.id);
            Ok(response.recorded())
        }
        Err(error) if error.is_taken(Taken::EndpointUid) => {
            match state
                .store()
                .get_endpoint(&app.id, &Key::Name(uid.clone()))
                .await?
            {
                Some(existing) => JsonBytes::new(
                    StatusCode::CREATED,
                    &RegistrationOut::new(input.name, &app, &existing),
                ),
                None => Err(ApiError::Conflict(
                    "the registration raced another; retry".into(),
                )),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// The uid of the endpoint `/webhooks` registers for a URL.
fn destination_uid(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    format!("dest-{}", hex::encode(&digest[..8]))
}

/// The application whose uid is `name`, created when missing. Two first registrations that
/// race both end with the one application: the loser's create conflicts and reads it back.
async fn application(state: &ApiState, name: &str) -> ApiResult<Application> {
    if let Some(app) = state
        .store()
        .get_application(&Key::Name(name.to_owned()))
        .await?
    {
        return Ok(app);
    }
    let at = now();
    let app = Application {
        id: AppId::new(),
        uid: Some(name.to_owned()),
        name: name.to_owned(),
        metadata: Map::new(),
        throttle_rate: None,
        created_at: at,
        updated_at: at,
    };
    match state.store().create_application(&app, None).await {
        Ok(()) => Ok(app),
        Err(error) if error.is_taken(Taken::ApplicationUid) => state.application(name).await,
        Err(error) => Err(error.into()),
    }
}

/// A full page request after `after`, for walking a whole list.
fn page_after(after: Option<String>) -> PageRequest {
    PageRequest {
        limit: MAX_LIMIT,
        cursor: after.map(|key| Cursor {
            key,
            backward: false,
        }),
        order: Order::Ascending,
    }
}

/// Whether a page was the last one; the cursor of the next one otherwise.
fn next_cursor<T>(page: &Page<T>, key: impl Fn(&T) -> String) -> Option<String> {
    if page.done {
        None
    } else {
        page.items.last().map(key)
    }
}

/// The application's endpoint whose URL, once parsed and written back, is `url`.
async fn endpoint_with_url(
    state: &ApiState,
    app: &AppId,
    url: &str,
) -> ApiResult<Option<Endpoint>> {
    let mut after = None;
    loop {
        let page = state
            .store()
            .list_endpoints(app, &page_after(after))
            .await?;
        after = next_cursor(&page, |endpoint| endpoint.id.to_string());
        let found = page.items.into_iter().find(|endpoint| {
            validate::destination(&endpoint.url).is_ok_and(|parsed| parsed.as_str() == url)
        });
        if found.is_some() || after.is_none() {
            return Ok(found);
        }
    }
}

/// Every application's endpoints, a page at a time (newest first by default), each named by its
/// application's uid (or its name when it has no uid). Takes `limit` (default 50, at most 250),
/// `iterator` and `order` like every list, and answers the list shape.
#[utoipa::path(
    get,
    path = "/webhooks",
    operation_id = "webhooks.list",
    tag = "Webhooks",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of registrations, newest first", body = ListResponse<RegistrationItem>),
        (status = 422, description = "A query parameter is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<ApiState>, query: ListQuery) -> ApiResult<JsonBytes> {
    let page = query.page.page(Order::Descending);
    let endpoints = state.store().list_all_endpoints(&page).await?;
    let mut names: HashMap<AppId, String> = HashMap::new();
    for endpoint in &endpoints.items {
        if !names.contains_key(&endpoint.app_id)
            && let Some(app) = state
                .store()
                .get_application(&Key::Id(endpoint.app_id.clone()))
                .await?
        {
            names.insert(app.id.clone(), app.uid.unwrap_or(app.name));
        }
    }
    let list = ListResponse::from_page(
        endpoints,
        |endpoint| endpoint.id.to_string(),
        |endpoint| RegistrationItem {
            name: names.get(&endpoint.app_id).cloned().unwrap_or_default(),
            destination: endpoint.url,
            application_id: endpoint.app_id,
            endpoint_id: endpoint.id,
        },
    );
    JsonBytes::new(StatusCode::OK, &list)
}
