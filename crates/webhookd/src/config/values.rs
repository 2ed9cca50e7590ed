//! The typed values of the resolved configuration, and the parsers that turn a setting's text
//! into them.
//!
//! Every parser takes the text of one setting, whichever source it came from, and answers the
//! value or a problem written for the operator (the caller adds which setting it was). Values
//! that may hold a secret (tokens, the encryption key, passwords inside the database or proxy
//! URL) never show it in `Debug`, `Display` or an error message.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::PathBuf;
use std::time::Duration;

use subtle::ConstantTimeEq;
use url::Url;
use webhookd_core::time::parse_duration;

/// What `Debug` prints in place of a secret.
const REDACTED: &str = "<redacted>";

/// Where the data lives: the embedded SQLite file, or a PostgreSQL server shared by every node.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite {
        path: PathBuf,
    },
    /// The connection URL as written; it may hold a password, so only [`Database`]'s `Debug`
    /// and `Display`, which mask it, should ever print it.
    Postgres {
        url: String,
    },
}

impl Database {
    /// Reads `sqlite://PATH`, `sqlite:PATH`, a bare path, or `postgres://…`/`postgresql://…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(
                "is empty (write sqlite://PATH or postgres://USER:PASSWORD@HOST/DB)".into(),
            );
        }
        let sqlite_path = |path: &str| {
            if path.is_empty() {
                Err(format!(
                    "`{text}` names no file (write it like sqlite://./webhookd-data/webhookd.db)"
                ))
            } else {
                Ok(Self::Sqlite {
                    path: PathBuf::from(path),
                })
            }
        };
        match text.split_once("://") {
            Some((scheme, path)) if scheme.eq_ignore_ascii_case("sqlite") => sqlite_path(path),
            Some((scheme, _))
                if scheme.eq_ignore_ascii_case("postgres")
                    || scheme.eq_ignore_ascii_case("postgresql") =>
            {
                match Url::parse(text) {
                    Ok(url) if url.host().is_some() => Ok(Self::Postgres {
                        url: text.to_owned(),
                    }),
                    Ok(url) => Err(format!("`{}` names no host", redact_url(&url))),
                    Err(error) => Err(format!("is not a valid PostgreSQL URL: {error}")),
                }
            }
            Some((scheme, _)) => Err(format!(
                "`{scheme}://…` is not a supported database (write sqlite://PATH, a file path, or \
                 postgres://USER:PASSWORD@HOST/DB)"
            )),
            None => match text.get(..7) {
                Some(prefix) if prefix.eq_ignore_ascii_case("sqlite:") => sqlite_path(&text[7..]),
                _ => sqlite_path(text),
            },
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite { path } => write!(f, "sqlite://{}", path.display()),
            Self::Postgres { url } => match Url::parse(url) {
                Ok(url) => f.write_str(redact_url(&url).as_str()),
                Err(_) => f.write_str("postgres://<unreadable URL>"),
            },
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            Self::Postgres { .. } => f
                .debug_struct("Postgres")
                .field("url", &format_args!("{self}"))
                .finish(),
        }
    }
}

/// An API bearer token from the configuration. `Debug` hides it and `==` compares in constant
/// time; [`ApiToken::expose`] hands it to the code that checks requests.
#[derive(Clone)]
pub struct ApiToken(String);

/// The shortest token accepted off loopback.
pub(super) const MIN_TOKEN_LENGTH: usize = 24;
/// The fewest different characters a token accepted off loopback holds.
pub(super) const MIN_TOKEN_VARIETY: usize = 8;

impl ApiToken {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the token is long and varied enough to face a network: at least 24 characters,
    /// of at least 8 different ones.
    pub fn is_strong(&self) -> bool {
        let distinct: std::collections::HashSet<char> = self.0.chars().collect();
        self.0.chars().count() >= MIN_TOKEN_LENGTH && distinct.len() >= MIN_TOKEN_VARIETY
    }

    /// Reads a comma-separated list; empty items are skipped, so `""` means no token.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .enumerate()
            .map(|(index, token)| {
                // Tokens travel as they are in an `Authorization: Bearer` header. The token is
                // not echoed: the message may end up in a log.
                if token.chars().all(|c| c.is_ascii_graphic()) {
                    Ok(Self(token.to_owned()))
                } else {
                    Err(format!(
                        "token #{} holds a space, a control or a non-ASCII character, which an \
                         Authorization header cannot carry",
                        index + 1
                    ))
                }
            })
            .collect()
    }
}

impl PartialEq for ApiToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for ApiToken {}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ApiToken")
            .field(&format_args!("{REDACTED}"))
            .finish()
    }
}

/// The key that encrypts endpoint secrets at rest, as configured. It is kept as text here; the
/// code that encrypts decides what it must look like.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKeySetting(String);

impl EncryptionKeySetting {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        // An empty value is refused rather than read as "no key": a secret that failed to
        // reach the environment must not silently turn encryption off.
        if text.trim().is_empty() {
            Err("is empty; leave the setting out to store endpoint secrets unencrypted".into())
        } else {
            Ok(Self(text.trim().to_owned()))
        }
    }
}

impl fmt::Debug for EncryptionKeySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EncryptionKeySetting")
            .field(&format_args!("{REDACTED}"))
            .finish()
    }
}

/// The outbound proxy that deliveries go through: an `http://`, `https://`, `socks5://` or
/// `socks5h://` URL. It derefs to the [`Url`]; `Debug` and `Display` mask its password.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(Url);

impl ProxyUrl {
    pub const SCHEMES: [&str; 4] = ["http", "https", "socks5", "socks5h"];

    pub fn as_url(&self) -> &Url {
        &self.0
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let url = Url::parse(text.trim())
            .map_err(|error| format!("is not a URL like http://proxy.internal:3128: {error}"))?;
        if !Self::SCHEMES.contains(&url.scheme()) {
            return Err(format!(
                "`{}` is not an http://, https://, socks5:// or socks5h:// URL",
                redact_url(&url)
            ));
        }
        if url.host().is_none() {
            return Err(format!("`{}` names no host", redact_url(&url)));
        }
        Ok(Self(url))
    }
}

impl Deref for ProxyUrl {
    type Target = Url;

    fn deref(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(redact_url(&self.0).as_str())
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProxyUrl")
            .field(&format_args!("{self}"))
            .finish()
    }
}

/// When a loopback node with no token may run without authentication (local mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalMode {
    /// When no token exists and none ever did: a store that had tokens refuses to start
    /// unauthenticated once the last one is revoked.
    Auto,
    /// Whenever no token exists, even if tokens existed before.
    On,
}

impl LocalMode {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "on" => Ok(Self::On),
            _ => Err(format!("`{text}` is not `auto` or `on`")),
        }
    }
}

/// What this node does: serve the API, deliver, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Api,
    Worker,
    All,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Self::Api | Self::All)
    }

    pub fn delivers(self) -> bool {
        matches!(self, Self::Worker | Self::All)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "api" => Ok(Self::Api),
            "worker" => Ok(Self::Worker),
            "all" => Ok(Self::All),
            _ => Err(format!("`{text}` is not `api`, `worker` or `all`")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Api => "api",
            Self::Worker => "worker",
            Self::All => "all",
        })
    }
}

/// How log lines are written; which lines is `RUST_LOG`'s business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("`{text}` is not `text` or `json`")),
        }
    }
}

/// The certificate chain and private key (PEM files) that the API listener serves TLS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub(super) fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!("`{text}` is not an address and port (write it like 127.0.0.1:8090 or [::]:8090)")
    })
}

/// A duration as the configuration writes them; zero is refused, as no setting means "never".
pub(super) fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text).map_err(|error| not_a_duration(&error.text))?;
    if duration.is_zero() {
        return Err(format!("`{text}` is zero; it must be longer"));
    }
    Ok(duration)
}

/// `off` (or an empty value) or a duration.
pub(super) fn parse_optional_duration(text: &str) -> Result<Option<Duration>, String> {
    match text.trim() {
        "" | "off" => Ok(None),
        _ => parse_positive_duration(text).map(Some),
    }
}

pub(super) fn not_a_duration(text: &str) -> String {
    format!("`{text}` is not a duration (write it like 500ms, 5s, 5m, 2h or 5d)")
}

pub(super) fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!(
            "`{text}` is not a boolean (write true or false, 1 or 0, yes or no)"
        )),
    }
}

/// A whole number of at least `minimum`.
pub(super) fn parse_count(text: &str, minimum: usize) -> Result<usize, String> {
    let count: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number"))?;
    if count < minimum {
        return Err(format!("`{text}` is too small: the least is {minimum}"));
    }
    Ok(count)
}

/// A file path; empty is refused.
pub(super) fn parse_path(text: &str) -> Result<PathBuf, String> {
    match text.trim() {
        "" => Err("is empty (write the path of a PEM file)".into()),
        path => Ok(PathBuf::from(path)),
    }
}

/// A comma-separated list of file paths; empty items are skipped, so `""` means none.
pub(super) fn parse_path_list(text: &str) -> Vec<PathBuf> {
    text.split(',')
        .map(str::trim)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// Where users reach the service (`public_url`): an `http`/`https` URL with a host, perhaps
/// a path prefix, no query or fragment. Kept without a trailing slash.
pub(super) fn parse_public_url(text: &str) -> Result<Url, String> {
    let text = text.trim();
    let url = Url::parse(text).map_err(|error| format!("`{text}` is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "`{text}` must be an http:// or https:// URL with a host (e.g. https://hooks.example.com)"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "`{text}` must not carry a query, a fragment or credentials"
        ));
    }
    let trimmed = url.as_str().trim_end_matches('/').to_owned();
    Url::parse(&trimmed).map_err(|error| format!("`{text}` is not a URL: {error}"))
}

/// A comma-separated list of browser origins (`cors_origins`), each `scheme://host[:port]`
/// as a browser sends it in `Origin`; empty items are skipped, so `""` means none.
pub(super) fn parse_origins(text: &str) -> Result<Vec<String>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let refuse = || {
                format!(
                    "`{origin}` is not an origin: write scheme://host[:port], e.g. \
                     https://app.example.com, with no path and no `*`"
                )
            };
            let url = Url::parse(origin).map_err(|_| refuse())?;
            let bare = url.path() == "/" && !origin.ends_with('/');
            if !matches!(url.scheme(), "http" | "https")
                || url.host().is_none()
                || !bare
                || url.query().is_some()
                || url.fragment().is_some()
                || !url.username().is_empty()
            {
                return Err(refuse());
            }
            Ok(url.origin().ascii_serialization())
        })
        .collect()
}

/// The URL with its password, if any, replaced by `***`.
fn redact_url(url: &Url) -> Url {
    let mut url = url.clone();
    if url.password().is_some() {
        // Only URLs that cannot have a password refuse this, and those have none to hide.
        let _ = url.set_password(Some("***"));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        let sqlite = |path: &str| {
            Ok(Database::Sqlite {
                path: PathBuf::from(path),
            })
        };
        assert_eq!(
            Database::parse("sqlite://./data/w.db"),
            sqlite("./data/w.db")
        );
        assert_eq!(
            Database::parse("sqlite:///var/lib/w.db"),
            sqlite("/var/lib/w.db")
        );
        assert_eq!(Database::parse("sqlite:w.db"), sqlite("w.db"));
        assert_eq!(Database::parse("SQLite:w.db"), sqlite("w.db"));
        assert_eq!(Database::parse("./w.db"), sqlite("./w.db"));
        for url in [
            "postgres://u:p@db/webhookd",
            "postgresql://db:5432/webhookd",
        ] {
            assert_eq!(
                Database::parse(url),
                Ok(Database::Postgres {
                    url: url.to_owned()
                })
            );
        }
        for bad in ["", "sqlite://", "sqlite:", "mysql://db/x", "postgres://"] {
            assert!(Database::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_never_show() {
        let postgres = Database::parse("postgres://user:hunter2@db/webhookd").unwrap();
        assert_eq!(postgres.to_string(), "postgres://user:***@db/webhookd");
        assert!(!format!("{postgres:?}").contains("hunter2"));
        let error = Database::parse("postgres://user:hunter2@db:port/x").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");

        let proxy = ProxyUrl::parse("http://user:hunter2@proxy:3128").unwrap();
        assert_eq!(proxy.password(), Some("hunter2"));
        assert!(!format!("{proxy:?} {proxy}").contains("hunter2"));
        let error = ProxyUrl::parse("ftp://user:hunter2@proxy").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");

        let tokens = ApiToken::parse_list("hunter2").unwrap();
        assert!(!format!("{tokens:?}").contains("hunter2"));
        assert_eq!(tokens[0].expose(), "hunter2");
        let key = EncryptionKeySetting::parse("hunter2").unwrap();
        assert!(!format!("{key:?}").contains("hunter2"));
        assert_eq!(key.expose(), "hunter2");
    }

    #[test]
    fn token_lists() {
        let tokens = ApiToken::parse_list(" a, b ,,c,").unwrap();
        let exposed: Vec<&str> = tokens.iter().map(ApiToken::expose).collect();
        assert_eq!(exposed, ["a", "b", "c"]);
        assert!(ApiToken::parse_list("").unwrap().is_empty());
        assert!(
            ApiToken::parse_list("good,bad token")
                .unwrap_err()
                .contains("#2")
        );
        assert_ne!(tokens[0], tokens[1]);
        assert_eq!(tokens[0], ApiToken::parse_list("a").unwrap()[0]);
    }

    #[test]
    fn small_values() {
        assert_eq!(parse_bool("YES"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_count("8", 1), Ok(8));
        assert!(parse_count("0", 1).is_err());
        assert!(parse_count("-1", 0).is_err());
        assert_eq!(parse_optional_duration("off"), Ok(None));
        assert_eq!(
            parse_optional_duration("5s"),
            Ok(Some(Duration::from_secs(5)))
        );
        assert!(parse_positive_duration("0s").is_err());
        assert!(Role::All.serves_api() && Role::All.delivers());
        assert!(Role::Api.serves_api() && !Role::Api.delivers());
        assert!(!Role::Worker.serves_api() && Role::Worker.delivers());
        assert_eq!(Role::parse("Worker"), Ok(Role::Worker));
        assert_eq!(LogFormat::parse("json"), Ok(LogFormat::Json));
        assert!(ProxyUrl::parse("socks5://127.0.0.1:1080").is_ok());
        assert!(ProxyUrl::parse("proxy:3128").is_err());
        assert_eq!(
            parse_path_list("a.pem, b.pem,"),
            [PathBuf::from("a.pem"), PathBuf::from("b.pem")]
        );
    }
}
