//! `/api/v1/event-type`: the catalogue of event types, addressed by name.
//!
//! Messages may use types that are not registered; the catalogue documents them (description,
//! JSON schemas) and lets a type be deprecated or archived. Deleting archives, `?expunge=true`
//! deletes; creating an archived name un-archives it. Lists page by name and hide archived
//! types unless `include_archived=true`; `with_content=false` leaves the schemas out.
//!
//! Svix's `featureFlags` (and the older single `featureFlag`) and `groupName` are stored and
//! echoed. `POST /event-type/import/openapi` lives in `event_type_import`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use webhookd_core::model::EventType;
use webhookd_core::time::{now, serde_rfc3339};
use webhookd_core::validate;
use webhookd_store::Order;

use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency::{self, IdempotencyKey};
use crate::query::{self, ListQuery, Query};
use crate::wire::{JsonBytes, ListResponse, non_empty, nullable};

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route(
            "/event-type",
            get(list).merge(idempotency::post_with_effect(create)),
        )
        .route(
            "/event-type/{name}",
            get(read).put(put).patch(patch).delete(delete),
        )
}

/// The body of a create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventTypeIn {
    /// Letters, digits and `-_.:*/`.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.:*/]{1,256}$"
    )]
    name: String,
    /// At most 4,096 characters.
    #[serde(default)]
    #[schema(max_length = 4096)]
    description: String,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    deprecated: bool,
    /// JSON schemas of the payload by version (`{"1": {…}}`); `null` is none.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    schemas: Option<Value>,
    /// Svix's feature flags of the type.
    #[serde(default)]
    #[schema(max_items = 10)]
    feature_flags: Option<Vec<String>>,
    /// The older, single form of `featureFlags`.
    #[serde(default)]
    feature_flag: Option<String>,
    /// The group the type is listed under.
    #[serde(default)]
    group_name: Option<String>,
}

impl EventTypeIn {
    fn split(self) -> (String, EventTypeFields) {
        let fields = EventTypeFields {
            description: self.description,
            archived: self.archived,
            deprecated: self.deprecated,
            schemas: self.schemas,
            feature_flags: self.feature_flags,
            feature_flag: self.feature_flag,
            group_name: self.group_name,
        };
        (self.name, fields)
    }
}

/// The body of a PUT, which names the type in its path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventTypeFields {
    /// At most 4,096 characters.
    #[serde(default)]
    #[schema(max_length = 4096)]
    description: String,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    deprecated: bool,
    /// JSON schemas of the payload by version (`{"1": {…}}`); `null` is none.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    schemas: Option<Value>,
    /// Svix's feature flags of the type.
    #[serde(default)]
    #[schema(max_items = 10)]
    feature_flags: Option<Vec<String>>,
    /// The older, single form of `featureFlags`.
    #[serde(default)]
    feature_flag: Option<String>,
    /// The group the type is listed under.
    #[serde(default)]
    group_name: Option<String>,
}

/// The body of a PATCH: absent fields are left alone, `schemas: null` removes the schemas.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventTypePatch {
    /// At most 4,096 characters.
    #[serde(default)]
    #[schema(max_length = 4096)]
    description: Option<String>,
    #[serde(default)]
    archived: Option<bool>,
    #[serde(default)]
    deprecated: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    schemas: Option<Option<Value>>,
    /// `null` removes them.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    feature_flags: Option<Option<Vec<String>>>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    group_name: Option<Option<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventTypeOut<'a> {
    name: &'a str,
    description: &'a str,
    archived: bool,
    deprecated: bool,
    /// `null` when there are none, or with `with_content=false`.
    #[schema(required, value_type = Option<Object>)]
    schemas: Option<&'a Value>,
    /// `null` when there are none.
    #[schema(required, value_type = Option<Vec<String>>)]
    feature_flags: Option<&'a [String]>,
    /// The first of `featureFlags`, under Svix's older name.
    #[schema(required)]
    feature_flag: Option<&'a str>,
    #[schema(required)]
    group_name: Option<&'a str>,
    #[serde(with = "serde_rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "serde_rfc3339")]
    updated_at: OffsetDateTime,
}

impl<'a> EventTypeOut<'a> {
    fn of(event_type: &'a EventType, with_content: bool) -> Self {
        Self {
            name: &event_type.name,
            description: &event_type.description,
            archived: event_type.archived,
            deprecated: event_type.deprecated,
            schemas: event_type.schemas.as_ref().filter(|_| with_content),
            feature_flags: non_empty(&event_type.feature_flags),
            feature_flag: event_type.feature_flags.first().map(String::as_str),
            group_name: event_type.group_name.as_deref(),
            created_at: event_type.created_at,
            updated_at: event_type.updated_at,
        }
    }
}

/// Feature flags and a group name: names of the event-type kind; `featureFlags` wins over the
/// older `featureFlag`. Repeats are dropped.
pub(crate) fn check_flags(
    feature_flags: Option<Vec<String>>,
    feature_flag: Option<String>,
) -> ApiResult<Vec<String>> {
    let flags = feature_flags.unwrap_or_else(|| feature_flag.into_iter().collect());
    let mut unique: Vec<String> = Vec::with_capacity(flags.len());
    for (index, flag) in flags.into_iter().enumerate() {
        check_name(&["body", "featureFlags", &index.to_string()], &flag)?;
        if !unique.contains(&flag) {
            unique.push(flag);
        }
    }
    Ok(unique)
}

pub(crate) fn check_group(group_name: Option<String>) -> ApiResult<Option<String>> {
    if let Some(group) = &group_name {
        check_name(&["body", "groupName"], group)?;
    }
    Ok(group_name)
}

fn check_name(loc: &[&str], name: &str) -> ApiResult<()> {
    validate::name(name).map_err(|msg| ApiError::invalid(loc, msg))
}

fn check_description(description: &str) -> ApiResult<()> {
    crate::wire::check_text(
        "description",
        description,
        validate::MAX_EVENT_TYPE_DESCRIPTION_LENGTH,
    )
}

/// Schemas are an object (Svix keys them by version: `{"1": {…json schema…}}`) of at most
/// 64 KiB of JSON; `null` is none.
fn check_schemas(schemas: Option<Value>) -> ApiResult<Option<Value>> {
    match schemas {
        None | Some(Value::Null) => Ok(None),
        Some(schemas @ Value::Object(_)) => {
            validate::json_size(&schemas, validate::MAX_SCHEMAS_BYTES)
                .map_err(|msg| ApiError::invalid(&["body", "schemas"], msg))?;
            Ok(Some(schemas))
        }
        Some(_) => Err(ApiError::invalid(
            &["body", "schemas"],
            "must be a JSON object",
        )),
    }
}

impl EventTypeFields {
    /// A type named `name` from these fields; `created_at` is kept from the type it replaces.
    fn into_event_type(
        self,
        name: String,
        created_at: Option<OffsetDateTime>,
    ) -> ApiResult<EventType> {
        check_description(&self.description)?;
        let at = now();
        Ok(EventType {
            name,
            description: self.description,
            archived: self.archived,
            deprecated: self.deprecated,
            schemas: check_schemas(self.schemas)?,
            feature_flags: check_flags(self.feature_flags, self.feature_flag)?,
            group_name: check_group(self.group_name)?,
            created_at: created_at.unwrap_or(at),
            updated_at: at,
        })
    }
}

/// The parameters of `list`, besides its page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Include archived types (false by default).
    #[serde(default)]
    include_archived: bool,
    /// Include the schemas (true by default).
    #[serde(default = "query::yes")]
    with_content: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/event-type",
    operation_id = "v1.event-type.list",
    tag = "Event Type",
    params(ListQuery<ListParams>),
    responses(
        (status = 200, description = "A page of event types, by name", body = ListResponse<EventTypeOut>),
        (status = 422, description = "A query parameter is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    ListQuery { page, params }: ListQuery<ListParams>,
) -> ApiResult<JsonBytes> {
    let with_content = params.with_content;
    let types = state
        .store()
        .list_event_types(&page.page(Order::Ascending), params.include_archived)
        .await?;
    let list = ListResponse::from_page(
        crate::message::borrowed(&types),
        |event_type| event_type.name.clone(),
        |event_type| EventTypeOut::of(event_type, with_content),
    );
    JsonBytes::new(StatusCode::OK, &list)
}

#[utoipa::path(
    post,
    path = "/api/v1/event-type",
    operation_id = "v1.event-type.create",
    tag = "Event Type",
    request_body = EventTypeIn,
    responses(
        (status = 201, description = "Created (or un-archived)", body = EventTypeOut),
        (status = 409, description = "A live event type has this name", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    idempotency: IdempotencyKey,
    Json(input): Json<EventTypeIn>,
) -> ApiResult<JsonBytes> {
    check_name(&["body", "name"], &input.name)?;
    // An archived type of that name is replaced and keeps its creation time; a live one is a
    // conflict (which the store checks again, atomically).
    let created_at = match state.store().get_event_type(&input.name).await? {
        Some(existing) if !existing.archived => {
            return Err(ApiError::Conflict(format!(
                "an event type named `{}` already exists",
                existing.name
            )));
        }
        Some(archived) => Some(archived.created_at),
        None => None,
    };
    let (name, fields) = input.split();
    let event_type = fields.into_event_type(name, created_at)?;
    let response = JsonBytes::new(StatusCode::CREATED, &EventTypeOut::of(&event_type, true))?;
    state
        .store()
        .create_event_type(&event_type, idempotency.record(&response).as_ref())
        .await?;
    Ok(response.recorded())
}

async fn get_existing(state: &ApiState, name: &str) -> ApiResult<EventType> {
    state
        .store()
        .get_event_type(name)
        .await?
        .ok_or_else(|| ApiError::not_found("event type"))
}

#[utoipa::path(
    get,
    path = "/api/v1/event-type/{name}",
    operation_id = "v1.event-type.get",
    tag = "Event Type",
    params(("name" = String, Path, description = "The event type's name")),
    responses(
        (status = 200, description = "The event type", body = EventTypeOut),
        (status = 404, description = "No such event type", body = ErrorBody),
    )
)]
pub(crate) async fn read(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<JsonBytes> {
    let event_type = get_existing(&state, &name).await?;
    JsonBytes::new(StatusCode::OK, &EventTypeOut::of(&event_type, true))
}

/// Create-or-update: 201 when the name was new, 200 when it replaced a type.
#[utoipa::path(
    put,
    path = "/api/v1/event-type/{name}",
    operation_id = "v1.event-type.update",
    tag = "Event Type",
    params(("name" = String, Path, description = "The event type's name")),
    request_body = EventTypeFields,
    responses(
        (status = 200, description = "Replaced", body = EventTypeOut),
        (status = 201, description = "Created", body = EventTypeOut),
    )
)]
pub(crate) async fn put(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Json(input): Json<EventTypeFields>,
) -> ApiResult<JsonBytes> {
    check_name(&["path", "name"], &name)?;
    let existing = state.store().get_event_type(&name).await?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let event_type = input.into_event_type(name, existing.map(|existing| existing.created_at))?;
    state.store().put_event_type(&event_type).await?;
    JsonBytes::new(status, &EventTypeOut::of(&event_type, true))
}

#[utoipa::path(
    patch,
    path = "/api/v1/event-type/{name}",
    operation_id = "v1.event-type.patch",
    tag = "Event Type",
    params(("name" = String, Path, description = "The event type's name")),
    request_body = EventTypePatch,
    responses(
        (status = 200, description = "Updated", body = EventTypeOut),
        (status = 404, description = "No such event type", body = ErrorBody),
    )
)]
pub(crate) async fn patch(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Json(input): Json<EventTypePatch>,
) -> ApiResult<JsonBytes> {
    let mut event_type = get_existing(&state, &name).await?;
    if let Some(description) = input.description {
        check_description(&description)?;
        event_type.description = description;
    }
    if let Some(archived) = input.archived {
        event_type.archived = archived;
    }
    if let Some(deprecated) = input.deprecated {
        event_type.deprecated = deprecated;
    }
    if let Some(schemas) = input.schemas {
        event_type.schemas = check_schemas(schemas)?;
    }
    if let Some(flags) = input.feature_flags {
        event_type.feature_flags = check_flags(flags, None)?;
    }
    if let Some(group) = input.group_name {
        event_type.group_name = check_group(group)?;
    }
    event_type.updated_at = now();
    state.store().put_event_type(&event_type).await?;
    JsonBytes::new(StatusCode::OK, &EventTypeOut::of(&event_type, true))
}

/// The query of `delete`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// Delete instead of archiving (false by default).
    #[serde(default)]
    expunge: bool,
}

/// Archives the event type, or deletes it with `expunge=true`.
#[utoipa::path(
    delete,
    path = "/api/v1/event-type/{name}",
    operation_id = "v1.event-type.delete",
    tag = "Event Type",
    params(
        ("name" = String, Path, description = "The event type's name"),
        DeleteQuery,
    ),
    responses(
        (status = 204, description = "Archived or deleted"),
        (status = 404, description = "No such event type", body = ErrorBody),
        (status = 422, description = "`expunge` is not a boolean", body = ValidationErrorBody),
    )
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(query): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    if state
        .store()
        .delete_event_type(&name, query.expunge, now())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("event type"))
    }
}
