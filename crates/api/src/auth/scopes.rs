//! Who may call which route: the one table of authorization.
//!
//! Operators (and local mode) may call every route. An app-scoped token may call only the
//! routes this table lists, each with the capability it needs, and only for its own
//! application (the `{app}` of the path, by id or uid, must be its application). A route the
//! table does not list is for operators only, so a route added later is closed to app tokens
//! until someone decides otherwise here.
//!
//! The table is keyed by method and route template, as axum matched it; parameter names do
//! not matter (`{app}` and `{app_id}` are the same segment). `HEAD` is `GET`.

use axum::http::Method;
use webhookd_core::EndpointKey;
use webhookd_core::access::Capability;
use webhookd_core::access::Capability::{
    CreateAttempts, ManageEndpoint, ManageEndpointSecret, ViewBase, ViewEndpointSecret,
};
use webhookd_core::{AppId, EndpointId};

use super::Caller;
use crate::ApiState;
use crate::error::{ApiError, ApiResult};

/// What an app-scoped caller needs to call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Any authenticated caller: routes about the caller itself (its session, logging out).
    AnyCaller,
    /// Global reads an app's owner needs too (the event-type catalog), with this capability.
    Shared(Capability),
    /// A route under `/api/v1/app/{app}/…` of the caller's own application, with this
    /// capability.
    OwnApp(Capability),
    /// A route under `/api/v1/auth/app/{app}/…` of the caller's own application, with this
    /// capability.
    OwnAppAuth(Capability),
}

use Rule::{AnyCaller, OwnApp, OwnAppAuth, Shared};

const GET: &str = "GET";
const POST: &str = "POST";
const PUT: &str = "PUT";
const PATCH: &str = "PATCH";
const DELETE: &str = "DELETE";

/// Every route an app-scoped token may call. Absent: operators only.
const RULES: &[(&str, &str, Rule)] = &[
    (GET, "/api/v1/auth/session", AnyCaller),
    (POST, "/api/v1/auth/logout", AnyCaller),
    (GET, "/api/v1/event-type", Shared(ViewBase)),
    (GET, "/api/v1/event-type/{}", Shared(ViewBase)),
    (GET, "/api/v1/app/{}", OwnApp(ViewBase)),
    // Endpoints.
    (GET, "/api/v1/app/{}/endpoint", OwnApp(ViewBase)),
    (POST, "/api/v1/app/{}/endpoint", OwnApp(ManageEndpoint)),
    (GET, "/api/v1/app/{}/endpoint/{}", OwnApp(ViewBase)),
    (PUT, "/api/v1/app/{}/endpoint/{}", OwnApp(ManageEndpoint)),
    (PATCH, "/api/v1/app/{}/endpoint/{}", OwnApp(ManageEndpoint)),
    (DELETE, "/api/v1/app/{}/endpoint/{}", OwnApp(ManageEndpoint)),
    (
        POST,
        "/api/v1/app/{}/endpoint/payload-filter/test",
        OwnApp(ViewBase),
    ),
    (GET, "/api/v1/app/{}/endpoint/{}/headers", OwnApp(ViewBase)),
    (
        PUT,
        "/api/v1/app/{}/endpoint/{}/headers",
        OwnApp(ManageEndpoint),
    ),
    (
        PATCH,
        "/api/v1/app/{}/endpoint/{}/headers",
        OwnApp(ManageEndpoint),
    ),
    (
        GET,
        "/api/v1/app/{}/endpoint/{}/secret",
        OwnApp(ViewEndpointSecret),
    ),
    (
        POST,
        "/api/v1/app/{}/endpoint/{}/secret/rotate",
        OwnApp(ManageEndpointSecret),
    ),
    (GET, "/api/v1/app/{}/endpoint/{}/stats", OwnApp(ViewBase)),
    (GET, "/api/v1/app/{}/endpoint/{}/health", OwnApp(ViewBase)),
    (
        POST,
        "/api/v1/app/{}/endpoint/{}/recover",
        OwnApp(CreateAttempts),
    ),
    (
        POST,
        "/api/v1/app/{}/endpoint/{}/replay-missing",
        OwnApp(CreateAttempts),
    ),
    (
        POST,
        "/api/v1/app/{}/endpoint/{}/bulk-replay",
        OwnApp(CreateAttempts),
    ),
    (
        POST,
        "/api/v1/app/{}/endpoint/{}/send-example",
        OwnApp(CreateAttempts),
    ),
    // Messages and attempts.
    (GET, "/api/v1/app/{}/msg", OwnApp(ViewBase)),
    (GET, "/api/v1/app/{}/msg/{}", OwnApp(ViewBase)),
    (GET, "/api/v1/app/{}/msg/{}/endpoint", OwnApp(ViewBase)),
    (GET, "/api/v1/app/{}/msg/{}/attempt/{}", OwnApp(ViewBase)),
    (GET, "/api/v1/app/{}/attempt/msg/{}", OwnApp(ViewBase)),
    (GET, "/api/v1/app/{}/attempt/endpoint/{}", OwnApp(ViewBase)),
    (GET, "/api/v1/app/{}/endpoint/{}/msg", OwnApp(ViewBase)),
    (
        POST,
        "/api/v1/app/{}/msg/{}/endpoint/{}/resend",
        OwnApp(CreateAttempts),
    ),
    // Polling endpoints: reading the stream is reading messages; the poller token reads it too,
    // so showing it takes the secret-viewing capability, and rotating it the managing one.
    (GET, "/api/v1/app/{}/poller/{}", OwnApp(ViewBase)),
    (
        GET,
        "/api/v1/app/{}/poller/{}/consumer/{}",
        OwnApp(ViewBase),
    ),
    (
        POST,
        "/api/v1/app/{}/poller/{}/consumer/{}/seek",
        OwnApp(ViewBase),
    ),
    (
        GET,
        "/api/v1/auth/app/{}/poller/{}/token",
        OwnAppAuth(ViewEndpointSecret),
    ),
    (
        POST,
        "/api/v1/auth/app/{}/poller/{}/token/rotate",
        OwnAppAuth(ManageEndpointSecret),
    ),
];

/// The routes a poller token may call, for its own application and endpoint only.
const POLLER_ROUTES: &[(&str, &str)] = &[
    (GET, "/api/v1/app/{}/poller/{}"),
    (GET, "/api/v1/app/{}/poller/{}/consumer/{}"),
    (POST, "/api/v1/app/{}/poller/{}/consumer/{}/seek"),
];

/// Routes that need no authentication at all: logging in.
const PUBLIC: &[(&str, &str)] = &[(POST, "/api/v1/auth/session")];

/// Whether the route needs no authentication (it authenticates its own input).
pub(crate) fn is_public(method: &Method, template: &str) -> bool {
    PUBLIC
        .iter()
        .any(|(m, path)| *m == method.as_str() && *path == template)
}

/// The route template with every `{name}` segment written `{}`.
fn normalize(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The rule for a route, or `None` when it is for operators only.
pub(crate) fn rule(method: &Method, template: &str) -> Option<Rule> {
    let method = if method == Method::HEAD {
        GET
    } else {
        method.as_str()
    };
    let template = normalize(template);
    RULES
        .iter()
        .find(|(m, path, _)| *m == method && *path == template)
        .map(|(_, _, rule)| *rule)
}

/// Decides whether `caller` may make this request. `template` is the matched route, `path`
/// the request's path (its `{app}` segment is read from there).
pub(crate) async fn authorize(
    state: &ApiState,
    caller: &Caller,
    method: &Method,
    template: Option<&str>,
    path: &str,
) -> ApiResult<()> {
    if let Caller::Poller {
        app_id,
        endpoint_id,
        ..
    } = caller
    {
        return authorize_poller(state, app_id, endpoint_id, method, template, path).await;
    }
    let Caller::App { app_id, .. } = caller else {
        return Ok(());
    };
    let operators_only = || {
        ApiError::Forbidden(format!(
            "{method} {path} needs an API token; an application token cannot use it"
        ))
    };
    let Some(rule) = template.and_then(|template| rule(method, template)) else {
        return Err(operators_only());
    };
    let capability = match rule {
        AnyCaller => return Ok(()),
        Shared(capability) | OwnApp(capability) | OwnAppAuth(capability) => capability,
    };
    if !caller.can(capability) {
        return Err(ApiError::Forbidden(format!(
            "this application token lacks the `{capability}` capability"
        )));
    }
    let app_segment = match rule {
        OwnApp(_) => Some(4),
        OwnAppAuth(_) => Some(5),
        AnyCaller | Shared(_) => None,
    };
    if let Some(segment) = app_segment {
        let key = path.split('/').nth(segment).unwrap_or_default();
        if !is_own_application(state, app_id, key).await? {
            return Err(ApiError::Forbidden(
                "this application token is for another application".into(),
            ));
        }
    }
    Ok(())
}

/// A poller token may read its own endpoint's stream (`POLLER_ROUTES`), and nothing else.
async fn authorize_poller(
    state: &ApiState,
    app_id: &AppId,
    endpoint_id: &EndpointId,
    method: &Method,
    template: Option<&str>,
    path: &str,
) -> ApiResult<()> {
    let method = if method == Method::HEAD {
        GET
    } else {
        method.as_str()
    };
    let listed = template.map(normalize).is_some_and(|template| {
        POLLER_ROUTES
            .iter()
            .any(|(m, route)| *m == method && *route == template)
    });
    if !listed {
        return Err(ApiError::Forbidden(format!(
            "{method} {path} is not a poller route; a poller token reads its endpoint's \
             stream and nothing else"
        )));
    }
    let mut segments = path.split('/');
    let app_key = segments.nth(4).unwrap_or_default();
    let endpoint_key = segments.nth(1).unwrap_or_default();
    let own_endpoint = is_own_application(state, app_id, app_key).await?
        && (endpoint_key == endpoint_id.as_str()
            || (!EndpointId::looks_like(endpoint_key)
                && state
                    .store()
                    .get_endpoint(app_id, &EndpointKey::parse(endpoint_key))
                    .await?
                    .is_some_and(|endpoint| &endpoint.id == endpoint_id)));
    if !own_endpoint {
        return Err(ApiError::Forbidden(
            "this poller token is for another endpoint".into(),
        ));
    }
    Ok(())
}

/// Whether the path's application key (an id or a uid) names `app_id`. An unknown key is not
/// the caller's: it gets 403, so a token cannot probe which applications exist.
async fn is_own_application(state: &ApiState, app_id: &AppId, key: &str) -> ApiResult<bool> {
    if key == app_id.as_str() {
        return Ok(true);
    }
    if AppId::looks_like(key) {
        return Ok(false);
    }
    Ok(state
        .application_cached(key)
        .await?
        .is_some_and(|app| &app.id == app_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_do_not_matter() {
        assert_eq!(
            rule(
                &Method::GET,
                "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret"
            ),
            Some(OwnApp(ViewEndpointSecret))
        );
        assert_eq!(
            rule(&Method::HEAD, "/api/v1/app/{app}/msg"),
            Some(OwnApp(ViewBase))
        );
    }

    #[test]
    fn unlisted_routes_are_for_operators() {
        for (method, template) in [
            (Method::GET, "/api/v1/app"),
            (Method::POST, "/api/v1/app"),
            (Method::DELETE, "/api/v1/app/{app}"),
            (Method::POST, "/api/v1/app/{app}/msg"),
            (Method::POST, "/api/v1/event-type"),
            (Method::GET, "/api/v1/auth/token"),
            (Method::POST, "/api/v1/auth/token"),
            (Method::DELETE, "/api/v1/auth/token/{id}"),
            (Method::POST, "/api/v1/auth/app-portal-access/{app_id}"),
            (Method::POST, "/api/v1/auth/app/{app_id}/expire-all"),
            (Method::GET, "/api/v1/background-task/{id}"),
            (Method::GET, "/api/v1/operational-webhook/endpoint"),
            (Method::GET, "/webhooks"),
            (Method::DELETE, "/api/v1/app/{app}/msg/{msg}/content"),
        ] {
            assert_eq!(rule(&method, template), None, "{method} {template}");
        }
    }

    #[test]
    fn every_own_app_rule_is_under_an_application() {
        for (_, path, rule) in RULES {
            match rule {
                OwnApp(_) => assert!(path.starts_with("/api/v1/app/{}"), "{path}"),
                OwnAppAuth(_) => assert!(path.starts_with("/api/v1/auth/app/{}"), "{path}"),
                AnyCaller | Shared(_) => {}
            }
        }
        for (_, path) in POLLER_ROUTES {
            assert!(path.starts_with("/api/v1/app/{}/poller/{}"), "{path}");
        }
    }
}
