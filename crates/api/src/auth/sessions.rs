//! Browser sessions for the console and the portal.
//!
//! A page exchanges a token (an operator's API token or an `appsk_` token) for a session once
//! (`POST /api/v1/auth/session`); the cookie then holds a random session id, never the token,
//! and the store holds only the id's hash. A session has the scope of the token it came from
//! and ends at the sooner of its lifetime (`WEBHOOKD_SESSION_TTL`) and that token's expiry;
//! revoking or expiring the token ends it too, because every request checks the token again.
//!
//! The cookie is `HttpOnly; SameSite=Strict; Path=/` (and `Secure` under TLS). Requests that
//! it authenticates and that change something (any method but GET and HEAD) must also carry
//! `x-webhookd-csrf: 1`: the pages send it, a cross-site form cannot.

use axum::http::{HeaderMap, HeaderValue, Method, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use time::OffsetDateTime;
use webhookd_core::time::now;
use webhookd_store::{SessionRecord, SessionSubject};

use super::{Caller, ViaSession, hash_hex};
use crate::ApiState;
use crate::error::{ApiError, ApiResult};

/// The session cookie's name.
pub const COOKIE: &str = "webhookd_session";
/// The header that cookie-authenticated requests which change something must carry.
pub const CSRF_HEADER: &str = "x-webhookd-csrf";

/// 32 random bytes, URL-safe base64, behind `prefix`.
pub(crate) fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The session id the request's cookie holds, if any.
pub(crate) fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Whether a cookie-authenticated request may go on: reads always, changes only with the
/// CSRF header.
pub(crate) fn check_csrf(method: &Method, headers: &HeaderMap) -> ApiResult<()> {
    if method == Method::GET || method == Method::HEAD {
        return Ok(());
    }
    if headers.get(CSRF_HEADER).is_some_and(|value| value == "1") {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "a request authenticated by the session cookie must carry `{CSRF_HEADER}: 1`"
        )))
    }
}

/// A session just opened: the cookie's value (the session id) and when it ends.
pub(crate) struct Opened {
    pub(crate) id: String,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) expires_at: OffsetDateTime,
}

/// Opens a session for a caller that presented a token.
pub(crate) async fn open(state: &ApiState, caller: &Caller) -> ApiResult<Opened> {
    let at = now();
    let mut expires_at = at + state.config().session_ttl;
    let subject = match caller {
        Caller::Operator { token_hash } => SessionSubject::Operator {
            token_hash: token_hash.clone(),
        },
        Caller::App {
            token_id,
            expires_at: token_expires_at,
            ..
        } => {
            expires_at = expires_at.min(*token_expires_at);
            SessionSubject::App {
                token_id: token_id.clone(),
            }
        }
        Caller::Local => {
            return Err(ApiError::invalid(
                &["body", "token"],
                "local mode needs no session; give an operator or application token",
            ));
        }
        Caller::Poller { .. } => {
            return Err(ApiError::invalid(
                &["body", "token"],
                "a poller token reads its endpoint's stream and opens no session",
            ));
        }
    };
    let id = random_secret("");
    let record = SessionRecord {
        hash: hash_hex(&id),
        subject,
        created_at: at,
        expires_at,
    };
    state.store().create_session(&record).await?;
    Ok(Opened {
        id,
        created_at: at,
        expires_at,
    })
}

/// The caller a session cookie stands for, or `None` when the session does not exist, has
/// expired, or its token no longer works.
pub(crate) async fn resolve(
    state: &ApiState,
    session_id: &str,
) -> ApiResult<Option<(Caller, ViaSession)>> {
    let hash = hash_hex(session_id);
    let Some(session) = state.store().find_session(&hash).await? else {
        return Ok(None);
    };
    let at = now();
    if session.expires_at <= at {
        return Ok(None);
    }
    let caller = match session.subject {
        SessionSubject::Operator { token_hash } => {
            super::operator_by_hash(state, &token_hash).await?
        }
        SessionSubject::App { token_id } => match state.store().get_app_token(&token_id).await? {
            Some(token) => super::live_app_caller(token, at),
            None => None,
        },
    };
    let Some(mut caller) = caller else {
        return Ok(None);
    };
    if let Caller::App { expires_at, .. } = &mut caller {
        *expires_at = (*expires_at).min(session.expires_at);
    }
    let via = ViaSession {
        hash,
        expires_at: session.expires_at,
    };
    Ok(Some((caller, via)))
}

/// `Set-Cookie` for a new session.
pub(crate) fn set_cookie(state: &ApiState, session: &Opened) -> HeaderValue {
    let max_age = (session.expires_at - session.created_at)
        .whole_seconds()
        .max(0);
    cookie_header(state, &session.id, max_age)
}

/// `Set-Cookie` that makes the browser forget the session.
pub(crate) fn clear_cookie(state: &ApiState) -> HeaderValue {
    cookie_header(state, "", 0)
}

fn cookie_header(state: &ApiState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.config().secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let text =
        format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}");
    // The value is URL-safe base64 and the rest is ours: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; webhookd_session=abc123 ; other=1"),
        );
        assert_eq!(cookie_value(&headers), Some("abc123"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("webhookd_session="),
        );
        assert_eq!(cookie_value(&headers), None);
    }

    #[test]
    fn changes_need_the_csrf_header() {
        let mut headers = HeaderMap::new();
        assert!(check_csrf(&Method::GET, &headers).is_ok());
        assert!(check_csrf(&Method::POST, &headers).is_err());
        headers.insert(CSRF_HEADER, HeaderValue::from_static("1"));
        assert!(check_csrf(&Method::DELETE, &headers).is_ok());
    }

    #[test]
    fn secrets_are_long_and_distinct() {
        let (a, b) = (random_secret("appsk_"), random_secret("appsk_"));
        assert!(a.starts_with("appsk_") && a.len() >= 6 + 43);
        assert_ne!(a, b);
    }
}
