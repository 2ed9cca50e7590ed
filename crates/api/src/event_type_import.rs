//! `POST /api/v1/event-type/import/openapi`: event types from the webhooks of an OpenAPI
//! document (its `webhooks`, or the older `x-webhooks`).
//!
//! Each webhook becomes the event type of its name: its description from the operation's
//! `description` (or `summary`), `deprecated` from the operation, the request body's JSON
//! schema (a `#/components/schemas/…` reference is followed) as schema version `"1"`, and
//! feature flags and group from `x-svix-feature-flags` and `x-svix-group-name`. Existing types
//! are replaced (keeping their creation time) and un-archived. `replaceAll` archives every
//! live type the document does not name; `dryRun` changes nothing and answers what would be
//! written (`to_modify`). The document is given as `spec` (JSON) or `specRaw` (a string of
//! JSON; YAML is not read): exactly one of them.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use webhookd_core::model::EventType;
use webhookd_core::time::now;
use webhookd_core::validate;
use webhookd_store::{Cursor, Order, PageRequest};

use crate::ApiState;
use crate::error::{ApiError, ApiResult, ValidationErrorBody};
use crate::event_type::{check_flags, check_group};
use crate::extract::Json;
use crate::idempotency;
use crate::wire::JsonBytes;

pub(crate) fn router() -> Router<ApiState> {
    Router::new().route("/event-type/import/openapi", idempotency::post(import))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImportOpenApiIn {
    /// The document, as JSON.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    spec: Option<Map<String, Value>>,
    /// The document as a string of JSON.
    #[serde(default)]
    spec_raw: Option<String>,
    /// Archive every live event type the document does not name.
    #[serde(default)]
    replace_all: bool,
    /// Change nothing; answer what would be written.
    #[serde(default)]
    dry_run: bool,
}

/// An event type as read from the document.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventTypeFromOpenApi {
    name: String,
    description: String,
    #[schema(value_type = Option<Object>)]
    schemas: Option<Value>,
    deprecated: bool,
    feature_flags: Option<Vec<String>>,
    group_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportOpenApiData {
    /// The names written (or, on a dry run, that would be).
    modified: Vec<String>,
    /// On a dry run, the types that would be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    to_modify: Option<Vec<EventTypeFromOpenApi>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportOpenApiOut {
    data: ImportOpenApiData,
}

fn invalid(loc: &[&str], msg: impl Into<String>) -> ApiError {
    ApiError::invalid(loc, msg)
}

/// Follows a local `#/components/schemas/…` reference, once.
fn resolve<'a>(spec: &'a Map<String, Value>, schema: &'a Value) -> &'a Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("#/components/schemas/"))
        .and_then(|name| spec.get("components")?.get("schemas")?.get(name))
        .unwrap_or(schema)
}

/// The event types the document's webhooks describe, checked.
fn read_webhooks(spec: &Map<String, Value>) -> ApiResult<Vec<EventTypeFromOpenApi>> {
    let webhooks = spec
        .get("webhooks")
        .or_else(|| spec.get("x-webhooks"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            invalid(
                &["body", "spec"],
                "has no `webhooks` (or `x-webhooks`) object",
            )
        })?;
    let mut types = Vec::with_capacity(webhooks.len());
    for (name, item) in webhooks {
        validate::name(name).map_err(|msg| invalid(&["body", "spec", "webhooks", name], msg))?;
        let operation = item
            .as_object()
            .and_then(|item| item.values().find(|value| value.is_object()))
            .unwrap_or(item);
        let text = |key: &str| operation.get(key).and_then(Value::as_str);
        let description = text("description")
            .or_else(|| text("summary"))
            .or_else(|| operation.get("requestBody")?.get("description")?.as_str())
            .unwrap_or_default()
            .to_owned();
        let schema = operation
            .get("requestBody")
            .and_then(|body| body.get("content")?.get("application/json")?.get("schema"))
            .map(|schema| resolve(spec, schema).clone());
        let flags = operation
            .get("x-svix-feature-flags")
            .cloned()
            .map(serde_json::from_value::<Vec<String>>)
            .transpose()
            .map_err(|_| {
                invalid(
                    &["body", "spec", "webhooks", name],
                    "`x-svix-feature-flags` must be a list of names",
                )
            })?;
        let group = text("x-svix-group-name").map(str::to_owned);
        let flags = check_flags(flags, None)?;
        types.push(EventTypeFromOpenApi {
            name: name.clone(),
            description,
            schemas: schema.map(|schema| json!({ "1": schema })),
            deprecated: operation
                .get("deprecated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            feature_flags: (!flags.is_empty()).then_some(flags),
            group_name: check_group(group)?,
        });
    }
    Ok(types)
}

#[utoipa::path(
    post,
    path = "/api/v1/event-type/import/openapi",
    operation_id = "v1.event-type.import-openapi",
    tag = "Event Type",
    request_body = ImportOpenApiIn,
    responses(
        (status = 200, description = "The names written (or that a dry run would write)", body = ImportOpenApiOut),
        (status = 422, description = "Neither or both of `spec` and `specRaw`, or a webhook that is not a valid event type", body = ValidationErrorBody),
    )
)]
pub(crate) async fn import(
    State(state): State<ApiState>,
    Json(input): Json<ImportOpenApiIn>,
) -> ApiResult<JsonBytes> {
    let spec = match (input.spec, input.spec_raw) {
        (Some(spec), None) => spec,
        (None, Some(raw)) => serde_json::from_str::<Map<String, Value>>(&raw).map_err(|error| {
            invalid(
                &["body", "specRaw"],
                format!("is not a JSON object ({error}); YAML is not read"),
            )
        })?,
        _ => {
            return Err(invalid(
                &["body"],
                "give exactly one of `spec` and `specRaw`",
            ));
        }
    };
    let types = read_webhooks(&spec)?;
    let modified: Vec<String> = types.iter().map(|found| found.name.clone()).collect();
    if input.dry_run {
        let data = ImportOpenApiData {
            modified,
            to_modify: Some(types),
        };
        return JsonBytes::new(StatusCode::OK, &ImportOpenApiOut { data });
    }
    let at = now();
    for found in types {
        let created_at = state
            .store()
            .get_event_type(&found.name)
            .await?
            .map_or(at, |existing| existing.created_at);
        let event_type = EventType {
            name: found.name,
            description: found.description,
            archived: false,
            deprecated: found.deprecated,
            schemas: found.schemas,
            feature_flags: found.feature_flags.unwrap_or_default(),
            group_name: found.group_name,
            created_at,
            updated_at: at,
        };
        state.store().put_event_type(&event_type).await?;
    }
    if input.replace_all {
        let mut page = PageRequest {
            limit: 250,
            cursor: None,
            order: Order::Ascending,
        };
        loop {
            let live = state.store().list_event_types(&page, false).await?;
            for event_type in &live.items {
                if !modified.contains(&event_type.name) {
                    state
                        .store()
                        .delete_event_type(&event_type.name, false, now())
                        .await?;
                }
            }
            match live.items.last() {
                Some(last) if !live.done => {
                    page.cursor = Some(Cursor {
                        key: last.name.clone(),
                        backward: false,
                    });
                }
                _ => break,
            }
        }
    }
    let data = ImportOpenApiData {
        modified,
        to_modify: None,
    };
    JsonBytes::new(StatusCode::OK, &ImportOpenApiOut { data })
}
