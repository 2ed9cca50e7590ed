//! Validation rules shared by the API and the CLI: uids, event type names, destination URLs.

use url::Url;

use crate::id::{AppId, EndpointId};

/// The longest URL accepted for an endpoint.
pub const MAX_URL_LENGTH: usize = 2048;
/// The longest event type name or channel.
pub const MAX_NAME_LENGTH: usize = 256;

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
