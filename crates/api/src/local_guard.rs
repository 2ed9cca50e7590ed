//! Keeps web pages out of a node in local mode.
//!
//! Local mode has no authentication: anything that can reach the loopback listener is let in.
//! A browser can, on behalf of any page its user visits, so without this guard a page on the
//! internet could register destinations and read answers (cross-site requests), or point a
//! name of its own at 127.0.0.1 and read the whole API (DNS rebinding). In local mode, every
//! request, on every route, must therefore:
//!
//! 1. name a loopback host in `Host` (or, over HTTP/2, in the request's authority):
//!    `localhost`, `*.localhost`, an address in 127.0.0.0/8 or `[::1]`, with any port. A
//!    rebound name is refused with 403. A request without any host (not from a browser) passes.
//! 2. come from no other origin: an `Origin` header must be the server's own origin (the
//!    same host and port as `Host`, as the console served by this node sends), or one listed in
//!    [`ApiConfig::allowed_origins`](crate::ApiConfig); any other, `null` included, is refused
//!    with 403.
//! 3. not be marked `Sec-Fetch-Site: cross-site` by the browser (403).
//!
//! With tokens, none of this applies: a browser cannot attach the bearer token to another
//! site's request, and the node may be reached under any name.

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiState;
use crate::auth::AuthMode;
use crate::error::ApiError;

pub(crate) async fn middleware(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    if state.config().auth == AuthMode::Local
        && let Err(error) = check(&request, &state.config().allowed_origins)
    {
        return error.into_response();
    }
    next.run(request).await
}

/// The request's verdict in local mode: `Ok` or the 403 that explains the refusal.
fn check(request: &Request, allowed_origins: &[String]) -> Result<(), ApiError> {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|value| value.to_str().unwrap_or("\u{fffd}").to_owned())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.to_string())
        });
    if let Some(host) = &host
        && !is_loopback_authority(host)
    {
        return Err(ApiError::Forbidden(format!(
            "this node runs in local mode and answers only requests addressed to a loopback \
             name (localhost, 127.0.0.1, [::1]), not `{}`",
            host.escape_debug()
        )));
    }
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("\u{fffd}");
        let allowed = allowed_origins
            .iter()
            .any(|allowed| same_origin(allowed, origin))
            || host
                .as_deref()
                .is_some_and(|host| same_authority(origin, host));
        if !allowed {
            return Err(ApiError::Forbidden(format!(
                "this node runs in local mode and refuses requests from other origins than its \
                 own (`{}`)",
                origin.escape_debug()
            )));
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err(ApiError::Forbidden(
            "this node runs in local mode and refuses cross-site browser requests".into(),
        ));
    }
    Ok(())
}

/// Splits `host[:port]` (or `[v6]:port`) into its lower-case host and its port.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim();
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':')?),
        };
        (format!("[{inside}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.to_owned(), None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(port) => Some(port.parse().ok()?),
    };
    if host.is_empty() {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// Whether `host[:port]` names this machine's loopback interface.
fn is_loopback_authority(authority: &str) -> bool {
    let Some((host, _)) = split_authority(authority) else {
        return false;
    };
    let host = host.strip_suffix('.').unwrap_or(&host);
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Some(v6) = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return v6
            .parse::<Ipv6Addr>()
            .is_ok_and(|address| address.is_loopback());
    }
    host.parse::<Ipv4Addr>()
        .is_ok_and(|address| address.is_loopback())
}

/// Whether the origin `scheme://host[:port]` names the same host and port as `authority`
/// (the `Host` of the request), as a page served by this node does.
fn same_authority(origin: &str, authority: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    if rest.contains('/') {
        return false;
    }
    let (Some((origin_host, origin_port)), Some((host, port))) =
        (split_authority(rest), split_authority(authority))
    else {
        return false;
    };
    // The `Host` of a request carries no scheme; its missing port is the origin's default.
    origin_host == host
        && origin_port.unwrap_or(default_port) == port.unwrap_or(default_port)
        && is_loopback_authority(rest)
}

/// Whether two origins are the same, ignoring case and a trailing `/` in the configured one.
fn same_origin(allowed: &str, origin: &str) -> bool {
    allowed
        .trim()
        .trim_end_matches('/')
        .eq_ignore_ascii_case(origin.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().uri("/api/v1/app");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn loopback_hosts_pass_and_others_do_not() {
        for host in [
            "localhost",
            "localhost:8090",
            "LOCALHOST.:8090",
            "console.localhost:8090",
            "127.0.0.1",
            "127.0.0.1:8090",
            "127.1.2.3:9",
            "[::1]",
            "[::1]:8090",
        ] {
            assert!(check(&request(&[("host", host)]), &[]).is_ok(), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8090",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1:8090",
            "[::2]:8090",
            "[::1",
            "localhost:notaport",
            "",
        ] {
            assert!(check(&request(&[("host", host)]), &[]).is_err(), "{host}");
        }
        assert!(check(&request(&[]), &[]).is_ok(), "no host at all");
    }

    #[test]
    fn only_the_own_origin_passes() {
        let host = ("host", "localhost:8090");
        for origin in ["http://localhost:8090", "https://localhost:8090"] {
            assert!(
                check(&request(&[host, ("origin", origin)]), &[]).is_ok(),
                "{origin}"
            );
        }
        for origin in [
            "http://evil.example",
            "http://localhost:3000",
            "http://127.0.0.1:8090",
            "null",
            "http://localhost:8090/x",
        ] {
            assert!(
                check(&request(&[host, ("origin", origin)]), &[]).is_err(),
                "{origin}"
            );
        }
        assert!(
            check(
                &request(&[("host", "localhost"), ("origin", "http://localhost")]),
                &[]
            )
            .is_ok()
        );
        let allowed = ["http://localhost:3000/".to_owned()];
        assert!(
            check(
                &request(&[host, ("origin", "http://localhost:3000")]),
                &allowed
            )
            .is_ok()
        );
    }

    #[test]
    fn cross_site_fetches_are_refused() {
        let host = ("host", "localhost:8090");
        assert!(check(&request(&[host, ("sec-fetch-site", "cross-site")]), &[]).is_err());
        assert!(check(&request(&[host, ("sec-fetch-site", "same-origin")]), &[]).is_ok());
        assert!(check(&request(&[host, ("sec-fetch-site", "none")]), &[]).is_ok());
    }
}
