//! Validation rules shared by the API, the store and the CLI: uids, event type names,
//! destination URLs, the sizes of free-text fields, the nesting depth of payloads, and which
//! custom header names are sensitive.

use url::Url;

use crate::id::{AppId, EndpointId};

/// The longest URL accepted for an endpoint.
pub const MAX_URL_LENGTH: usize = 2048;
/// The longest event type name.
pub const MAX_NAME_LENGTH: usize = 256;
/// The longest channel or tag (Svix's limit).
pub const MAX_CHANNEL_LENGTH: usize = 128;
/// The longest application name, in characters.
pub const MAX_APP_NAME_LENGTH: usize = 256;
/// The longest endpoint description, in characters.
pub const MAX_DESCRIPTION_LENGTH: usize = 1024;
/// The longest event type description, in characters.
pub const MAX_EVENT_TYPE_DESCRIPTION_LENGTH: usize = 4096;
/// The largest `metadata` object, in bytes of JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// The largest event type `schemas` object, in bytes of JSON.
pub const MAX_SCHEMAS_BYTES: usize = 64 * 1024;
/// The deepest nesting of objects and arrays in a message payload.
pub const MAX_PAYLOAD_DEPTH: usize = 64;

/// Names of custom headers that always carry credentials.
const SENSITIVE_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];
/// Parts of a header name that suggest it carries a credential.
const SENSITIVE_HEADER_PARTS: [&str; 6] = ["secret", "token", "key", "password", "auth", "session"];

/// Checks a `uid`: `^[a-zA-Z0-9\-_.]{1,256}$`, and not shaped like an id.
pub fn uid(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 256 {
        return Err("must be 1 to 256 characters long".into());
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("may only contain letters, digits, '-', '_' and '.'".into());
    }
    if value == "." || value == ".." {
        return Err("must not be `.` or `..`".into());
    }
    if AppId::looks_like(value) || EndpointId::looks_like(value) {
        return Err("must not start with an id prefix such as `app_` or `ep_`".into());
    }
    Ok(())
}

/// Checks an event type name or a channel: `^[a-zA-Z0-9\-_.:*]{1,256}$`.
pub fn name(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_NAME_LENGTH {
        return Err(format!("must be 1 to {MAX_NAME_LENGTH} characters long"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'*' | b'/'))
    {
        return Err("may only contain letters, digits and '-', '_', '.', ':', '*', '/'".into());
    }
    Ok(())
}

/// Checks a channel or a tag: an event-type-like name of at most 128 characters.
pub fn channel(value: &str) -> Result<(), String> {
    if value.len() > MAX_CHANNEL_LENGTH {
        return Err(format!("must be 1 to {MAX_CHANNEL_LENGTH} characters long"));
    }
    name(value)
}

/// Checks the length of a free-text field, in characters.
pub fn text(value: &str, max: usize) -> Result<(), String> {
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters long"));
    }
    Ok(())
}

/// Checks the size of a JSON value (metadata, schemas) once written out.
pub fn json_size(value: &serde_json::Value, max: usize) -> Result<(), String> {
    let size = serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len());
    if size > max {
        return Err(format!("must be at most {max} bytes of JSON, not {size}"));
    }
    Ok(())
}

/// How deeply objects and arrays nest in a JSON text (0 for a scalar). The text is scanned, not
/// parsed, so a payload kept as its raw bytes is measured without building a tree; brackets
/// inside strings do not count.
pub fn json_depth(json: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Checks that a payload nests at most [`MAX_PAYLOAD_DEPTH`] levels.
pub fn payload_depth(json: &str) -> Result<(), String> {
    let depth = json_depth(json);
    if depth > MAX_PAYLOAD_DEPTH {
        return Err(format!(
            "nests {depth} levels deep; the limit is {MAX_PAYLOAD_DEPTH} levels"
        ));
    }
    Ok(())
}

/// Whether a custom header's name marks it as holding a credential: `authorization`,
/// `proxy-authorization`, `cookie`, `x-api-key`, or a name containing `secret`, `token`,
/// `key`, `password`, `auth` or `session` (case-insensitive). Such values are never shown
/// again once set, and are sealed at rest like endpoint secrets. The rule errs towards hiding.
pub fn is_sensitive_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE_HEADERS.contains(&name.as_str())
        || SENSITIVE_HEADER_PARTS
            .iter()
            .any(|part| name.contains(part))
}

/// Checks a destination URL: `http` or `https`, with a host, no credentials, at most 2048 bytes.
/// Whether its addresses may be contacted is decided at delivery time, after resolution.
pub fn destination(value: &str) -> Result<Url, String> {
    if value.len() > MAX_URL_LENGTH {
        return Err(format!("must be at most {MAX_URL_LENGTH} characters long"));
    }
    let url = Url::parse(value).map_err(|error| format!("is not a valid URL ({error})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must use http or https, not `{}`", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must have a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    Ok(url)
}

/// Checks a destination URL (as [`destination`]) and answers the text to store: the URL as
/// typed when it is plain printable ASCII (so `https://a.example` keeps its form, as the SDKs
/// expect), else the parsed URL's serialisation. Parsing drops tabs, CR and LF and encodes
/// spaces and non-ASCII, so what is stored, shown and logged is then what is delivered to, and
/// no line break typed into a URL ever reaches a log.
pub fn stored_destination(value: &str) -> Result<String, String> {
    let url = destination(value)?;
    if value.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Ok(value.to_owned());
    }
    let normalised: String = url.into();
    if normalised.len() > MAX_URL_LENGTH {
        return Err(format!(
            "must be at most {MAX_URL_LENGTH} characters long once encoded"
        ));
    }
    Ok(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids() {
        assert!(uid("joe").is_ok());
        assert!(uid("a.b-c_D9").is_ok());
        assert!(uid("").is_err());
        assert!(uid("has space").is_err());
        assert!(uid("app_123").is_err());
        assert!(uid(&"x".repeat(257)).is_err());
        assert!(uid(".").is_err());
        assert!(uid("..").is_err());
        assert!(uid("...").is_ok());
    }

    #[test]
    fn depths() {
        assert_eq!(json_depth("1"), 0);
        assert_eq!(json_depth(r#"{"a": [1, {"b": "]]]{{{"}]}"#), 3);
        assert_eq!(json_depth(r#"{"a": "\\\"[[["}"#), 1);
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(payload_depth(&deep).unwrap_err().contains("64"));
        let fine = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(payload_depth(&fine).is_ok());
    }

    #[test]
    fn sensitive_headers() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "X-API-Key",
            "x-session-id",
        ] {
            assert!(is_sensitive_header(name), "{name}");
        }
        assert!(!is_sensitive_header("x-tenant"));
    }

    #[test]
    fn destinations() {
        assert!(destination("https://example.com/hook").is_ok());
        assert!(destination("http://127.0.0.1:8080").is_ok());
        assert!(
            destination("ftp://example.com")
                .unwrap_err()
                .contains("http or https")
        );
        assert!(destination("not a url").is_err());
        assert_eq!(
            stored_destination("https://a.example").unwrap(),
            "https://a.example"
        );
        assert_eq!(
            stored_destination("https://a.example/x\r\nINFO forged line").unwrap(),
            "https://a.example/xINFO%20forged%20line"
        );
        assert_eq!(
            stored_destination(" https://a.example/\tb ").unwrap(),
            "https://a.example/b"
        );
        assert!(destination("https://user:pw@example.com").is_err());
        assert!(destination(&format!("https://example.com/{}", "a".repeat(3000))).is_err());
    }
}
