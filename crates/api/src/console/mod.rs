//! The web console (`/`) and the consumer portal (`/portal`): static pages, styles and
//! scripts built into the binary and served with strict security headers.
//!
//! The pages hold no data and no rules of their own. Their scripts read and change everything
//! through the public REST API under `/api/v1`, with the browser's session cookie, so what a
//! visitor may see or do is decided by the API alone, exactly as for any other client.
//!
//! Every response here carries a Content-Security-Policy that allows scripts, styles and
//! connections to this origin only (no inline script, no inline style attribute) and makes
//! the browser refuse any string-to-markup or string-to-code sink (Trusted Types with no
//! policy: the pages build everything with DOM APIs), plus
//! `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`. The console may not
//! be framed at all; the portal may be framed by `WEBHOOKD_PORTAL_FRAME_ANCESTORS`, so an
//! operator can embed it in their own product.

mod assets;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ApiState;
use crate::error::ApiError;

pub(crate) use assets::ASSETS;

/// Who may frame the portal when nothing is configured: pages of this origin only.
pub const DEFAULT_PORTAL_FRAME_ANCESTORS: &str = "'self'";

/// The policy shared by every page and asset; `frame-ancestors` is added per page.
const BASE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     object-src 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/", get(console_page))
        .route("/portal", get(portal_page))
        .route("/console/{*name}", get(asset))
}

async fn console_page() -> Response {
    page(assets::CONSOLE_HTML, "'none'")
}

async fn portal_page(State(state): State<ApiState>) -> Response {
    page(assets::PORTAL_HTML, &state.config().portal_frame_ancestors)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|asset| asset.name == name) {
        Some(asset) => with_headers(
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.content_type),
                )],
                asset.body,
            )
                .into_response(),
            "'none'",
        ),
        None => ApiError::NotFound(format!("no console asset {name}")).into_response(),
    }
}

fn page(html: &'static str, frame_ancestors: &str) -> Response {
    with_headers(
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response(),
        frame_ancestors,
    )
}

/// Adds the security headers every console response carries.
fn with_headers(mut response: Response, frame_ancestors: &str) -> Response {
    let policy = format!("{BASE_POLICY}; frame-ancestors {frame_ancestors}");
    let headers = response.headers_mut();
    // The frame ancestors were validated when the configuration was read; should a value
    // still not fit a header, nobody may frame the page rather than anybody.
    let policy = HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"));
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if frame_ancestors.trim() == "'none'" {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

/// Checks a `frame-ancestors` source list: `'none'`, `'self'`, or origins like
/// `https://app.example.com` or `https://*.example.com`, separated by spaces or commas.
/// Returns the list as the header writes it.
pub fn parse_frame_ancestors(text: &str) -> Result<String, String> {
    let sources: Vec<&str> = text
        .split([',', ' '])
        .map(str::trim)
        .filter(|source| !source.is_empty())
        .collect();
    if sources.is_empty() {
        return Err("is empty; use 'self', 'none' or origins like https://app.example.com".into());
    }
    for source in &sources {
        let keyword = matches!(*source, "'self'" | "'none'");
        let origin = source.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https")
                && !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*'))
        });
        if !keyword && !origin {
            return Err(format!(
                "`{source}` is not 'self', 'none' or an origin like https://app.example.com"
            ));
        }
    }
    if sources.len() > 1 && sources.contains(&"'none'") {
        return Err("'none' cannot be combined with other sources".into());
    }
    Ok(sources.join(" "))
}

#[cfg(test)]
mod tests {
    use super::parse_frame_ancestors;

    #[test]
    fn frame_ancestors_are_keywords_or_origins() {
        assert_eq!(parse_frame_ancestors("'self'").unwrap(), "'self'");
        assert_eq!(
            parse_frame_ancestors("'self', https://app.example.com").unwrap(),
            "'self' https://app.example.com"
        );
        assert_eq!(
            parse_frame_ancestors("https://*.example.com:8443").unwrap(),
            "https://*.example.com:8443"
        );
        for bad in [
            "",
            "self",
            "javascript:alert(1)",
            "https://a.example; script-src *",
            "'none' 'self'",
            "https://",
        ] {
            assert!(parse_frame_ancestors(bad).is_err(), "{bad}");
        }
    }
}
