//! The OpenAPI 3 document of the API, generated from the code: the wire types derive
//! `ToSchema`, every handler carries `#[utoipa::path]`, and [`ApiDoc`] lists them all.
//!
//! What the middleware does to every request is added here once, by [`CommonResponses`],
//! rather than on each handler: the bearer token (401), the `idempotency-key` header of every
//! POST (422 when malformed, 409 while its first request runs), the JSON body (400 when
//! malformed, 413 when too large, 422 when a field is wrong), and the store (503 with
//! `Retry-After` when it is unavailable, 500 for a bug). Each handler lists its success and the
//! errors of its own.
//!
//! The document is served at `GET /api/v1/openapi.json` and committed as `openapi.json` at the
//! repository root; a test keeps the file equal to [`document`].
//!
//! Every path also works with a trailing slash; the document lists each once, without it.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ArrayItems, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, Ref, RefOr, Required, Response, ResponseBuilder,
};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::ApiState;
use crate::error::{ErrorBody, ValidationErrorBody};

/// The name of the security scheme: `Authorization: Bearer <token>`.
const BEARER: &str = "bearer";
/// The names of the shared answers in `components.responses`.
const ERROR: &str = "Error";
const VALIDATION_ERROR: &str = "ValidationError";
const UNAVAILABLE: &str = "Unavailable";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "webhookd",
        description = "A self-hosted webhook service with a Svix v1-compatible API. \
            Every path works with and without a trailing slash.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        crate::application::list,
        crate::application::create,
        crate::application::read,
        crate::application::put,
        crate::application::patch,
        crate::application::delete,
        crate::endpoint::list,
        crate::endpoint::create,
        crate::endpoint::read,
        crate::endpoint::put,
        crate::endpoint::patch,
        crate::endpoint::delete,
        crate::endpoint::secret::read,
        crate::endpoint::secret::rotate,
        crate::endpoint::headers::read,
        crate::endpoint::headers::replace,
        crate::endpoint::headers::merge,
        crate::endpoint::recover::recover,
        crate::endpoint::recover::stats,
        crate::endpoint::health::health,
        crate::endpoint::options::test_filter,
        crate::endpoint::replay::replay_missing,
        crate::endpoint::replay::bulk_replay,
        crate::endpoint::replay::send_example,
        crate::endpoint::replay::attempt_stats,
        crate::endpoint::operational_webhook::list,
        crate::endpoint::operational_webhook::create,
        crate::endpoint::operational_webhook::read,
        crate::endpoint::operational_webhook::upsert,
        crate::endpoint::operational_webhook::delete,
        crate::endpoint::operational_webhook::read_headers,
        crate::endpoint::operational_webhook::replace_headers,
        crate::endpoint::operational_webhook::read_secret,
        crate::endpoint::operational_webhook::rotate,
        crate::event_type::list,
        crate::event_type::create,
        crate::event_type::read,
        crate::event_type::put,
        crate::event_type::patch,
        crate::event_type::delete,
        crate::event_type_import::import,
        crate::message::list,
        crate::message::create,
        crate::message::read,
        crate::message_content::expunge,
        crate::message_content::bulk_expunge,
        crate::message_content::expunge_all,
        crate::message_content::expunge_attempt,
        crate::message_content::precheck,
        crate::attempt::list_by_message,
        crate::attempt::list_by_endpoint,
        crate::attempt::read,
        crate::attempt::list_message_deliveries,
        crate::attempt::list_endpoint_deliveries,
        crate::attempt::resend,
        crate::background_task::read,
        crate::stats::overview,
        crate::statistics::app_usage,
        crate::statistics::event_types,
        crate::poller::poll,
        crate::poller::consumer_poll,
        crate::poller::consumer_seek,
        crate::poller::get_token,
        crate::poller::rotate_token,
        crate::token::list,
        crate::token::create,
        crate::token::revoke,
        crate::authentication::app_portal_access,
        crate::authentication::expire_all,
        crate::authentication::logout,
        crate::authentication::login,
        crate::authentication::session,
        crate::seed::list,
        crate::seed::register,
        crate::health::health,
        crate::health::ready,
        crate::health::metrics,
        openapi_json,
    ),
    components(schemas(ErrorBody, ValidationErrorBody)),
    tags(
        (name = "Application", description = "One per customer of the service's user"),
        (name = "Endpoint", description = "The URLs an application's messages are delivered to"),
        (name = "Event Type", description = "The catalogue of event types"),
        (name = "Message", description = "Events posted to an application"),
        (name = "Message Attempt", description = "Deliveries, their attempts, and resending"),
        (name = "Background Task", description = "Tasks such as `endpoint.recover`"),
        (name = "Statistics", description = "Usage figures (computed as background tasks) and, for the operator's console, deliveries over time"),
        (name = "Operational Webhook", description = "Endpoints that receive webhookd's own events"),
        (name = "Authentication", description = "The operator's API tokens, application-scoped tokens (the consumer portal) and browser sessions"),
        (name = "Webhooks", description = "The tutorial's registration routes"),
        (name = "Health", description = "Health, metrics and this document; open without a token"),
    ),
    security(("bearer" = [])),
    modifiers(&Security, &CommonResponses, &ListItemsByReference),
)]
pub struct ApiDoc;

/// The OpenAPI document of the API; its version is this crate's.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The route of the document, open like health.
pub(crate) fn router() -> Router<ApiState> {
    Router::new().route("/api/v1/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi.get",
    tag = "Health",
    security(()),
    responses((status = 200, description = "The OpenAPI 3 document of this API", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json() -> axum::response::Response {
    // Made once per process: the document never changes while it runs.
    static BODY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let body = BODY
        .get_or_init(|| document().to_json().unwrap_or_default().into_bytes())
        .clone();
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Adds the `bearer` security scheme.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`WEBHOOKD_API_TOKENS` or `webhookd token create`). \
                         In local mode (loopback, no token anywhere) any token is accepted.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds to every operation behind the token the answers of the layers around the handlers;
/// see the module documentation. The open operations (health, metrics, this document) say
/// their own `security` and are left as they are.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Patch, &mut item.patch),
                (HttpMethod::Delete, &mut item.delete),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation
                    && operation.security.is_none()
                {
                    add_common(method, operation);
                }
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, response) in shared_responses() {
            components
                .responses
                .insert(name.to_owned(), RefOr::T(response));
        }
    }
}

/// Makes the items of every `ListResponse_X` a reference to `X`: utoipa inlines the argument
/// of a generic schema, which would give client generators one anonymous type per list.
struct ListItemsByReference;

impl Modify for ListItemsByReference {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let named: Vec<String> = components.schemas.keys().cloned().collect();
        for (name, schema) in components.schemas.iter_mut() {
            let Some(item) = name.strip_prefix("ListResponse_") else {
                continue;
            };
            if !named.iter().any(|named| named == item) {
                continue;
            }
            if let RefOr::T(Schema::Object(list)) = schema
                && let Some(RefOr::T(Schema::Array(data))) = list.properties.get_mut("data")
            {
                data.items =
                    ArrayItems::RefOrSchema(Box::new(RefOr::Ref(Ref::from_schema_name(item))));
            }
        }
    }
}

fn add_common(method: HttpMethod, operation: &mut Operation) {
    if method == HttpMethod::Post {
        let parameter = ParameterBuilder::new()
            .name("idempotency-key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "The same key (per token, method and path, for 24 hours) answers the first \
                 response again and does nothing again; while the first request runs, a \
                 duplicate gets 409.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(256)),
            ))
            .build();
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(parameter);
        add_response(operation, 409, ERROR);
        add_response(operation, 422, VALIDATION_ERROR);
    }
    if operation.request_body.is_some() {
        add_response(operation, 400, ERROR);
        add_response(operation, 413, ERROR);
        add_response(operation, 422, VALIDATION_ERROR);
    }
    add_response(operation, 401, ERROR);
    add_response(operation, 500, ERROR);
    add_response(operation, 503, UNAVAILABLE);
}

/// Adds a reference to a shared response unless the operation has its own for that status.
fn add_response(operation: &mut Operation, status: u16, response: &str) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/responses/{response}"))));
}

/// The shared error answers, in `components.responses`.
fn shared_responses() -> [(&'static str, Response); 3] {
    let json = |schema: &str| {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(schema)))
            .build()
    };
    [
        (
            ERROR,
            ResponseBuilder::new()
                .description("An error: `{\"code\", \"detail\"}`")
                .content("application/json", json(ErrorBody::name().as_ref()))
                .build(),
        ),
        (
            VALIDATION_ERROR,
            ResponseBuilder::new()
                .description("A field, query parameter or header is wrong")
                .content(
                    "application/json",
                    json(ValidationErrorBody::name().as_ref()),
                )
                .build(),
        ),
        (
            UNAVAILABLE,
            ResponseBuilder::new()
                .description(
                    "The store is unavailable or overloaded: retry after `Retry-After` seconds",
                )
                .header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(
                            ObjectBuilder::new()
                                .schema_type(Type::Integer)
                                .minimum(Some(0)),
                        )
                        .description(Some("Seconds to wait before retrying"))
                        .build(),
                )
                .content("application/json", json(ErrorBody::name().as_ref()))
                .build(),
        ),
    ]
}
