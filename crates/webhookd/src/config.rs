//! The configuration: every setting (flag, `WEBHOOKD_*` variable, TOML key), from wherever it is given to one typed,
//! validated [`Config`].
//!
//! A setting can be given four ways, the first that has a value wins:
//! 1. a flag, the name in kebab-case (`--database-url`), parsed by clap into [`ConfigArgs`];
//! 2. an environment variable, `WEBHOOKD_` and the name in upper case (`WEBHOOKD_DATABASE_URL`);
//! 3. a key of the TOML file named by `--config` or `WEBHOOKD_CONFIG`, the name itself
//!    (`database_url`); a key that is no setting is an error, so a typo cannot go unnoticed;
//! 4. the built-in default.
//!
//! Every source yields text, and one parser per setting reads that text whichever source it came
//! from, so `--lease 90s`, `WEBHOOKD_LEASE=90s` and `lease = "90s"` mean the same thing and are
//! refused with the same message. [`load`] validates everything once, settings that depend on
//! each other included (the lease must outlive two request timeouts; TLS needs a certificate and
//! a key), and answers the first problem as a one-line [`ConfigError`] that names the setting.
//! Past this module nothing reads the environment or parses a setting again.
//!
//! `RUST_LOG` keeps its ecosystem name and is read by the tracing setup, not here.
//!
//! To add a setting: a row in the table of `settings.rs` (which makes its flag, variable and
//! help), a field of [`Config`] read in `resolve`, and its key in `config.default.toml`, the
//! commented reference. The tests fail until the three agree.

mod error;
mod settings;
mod values;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use webhookd_core::retry::RetrySchedule;
use webhookd_core::signing::SignatureType;
use webhookd_core::ssrf::AllowPrivate;
use webhookd_core::time::format_duration;

pub use error::{ConfigError, Origin};
pub use settings::{ConfigArgs, Kind, SETTINGS, Setting};
pub use values::{
    ApiToken, Database, EncryptionKeySetting, LocalMode, LogFormat, ProxyUrl, Role, TlsFiles,
};

use settings::{CONFIG_FILE_ENV, setting};
use values::{
    not_a_duration, parse_bool, parse_count, parse_optional_duration, parse_origins, parse_path,
    parse_path_list, parse_positive_duration, parse_public_url, parse_socket_addr,
};

/// The resolved configuration of a node. Secrets in it (API tokens, the encryption key, a
/// password in the database or proxy URL) are masked by `Debug`, so logging it is safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: Database,
    /// Connections in a node's PostgreSQL pool.
    pub database_pool_size: usize,
    /// Tokens from the configuration; `webhookd token create` makes more, in the database.
    pub api_tokens: Vec<ApiToken>,
    pub retry_schedule: RetrySchedule,
    pub request_timeout: Duration,
    /// `None` when not given: the server then allows `all` in local mode and `none` otherwise.
    pub allow_private: Option<AllowPrivate>,
    pub retry_client_errors: bool,
    pub endpoint_concurrency: usize,
    pub max_in_flight: usize,
    /// At least twice `request_timeout`.
    pub lease: Duration,
    /// Whether a loopback node may run without authentication after tokens existed.
    pub local_mode: LocalMode,
    /// Time limit of one store call.
    pub store_timeout: Duration,
    pub role: Role,
    pub proxy: Option<ProxyUrl>,
    pub max_payload_bytes: usize,
    pub disable_after: Duration,
    pub retention: Duration,
    pub heartbeat: Option<Duration>,
    pub svix_headers: bool,
    /// The signature scheme of new endpoints created without a secret.
    pub signature_type: SignatureType,
    pub encryption_key: Option<EncryptionKeySetting>,
    pub log_format: LogFormat,
    pub tls: Option<TlsFiles>,
    /// PEM files of extra roots for outbound TLS. The paths are not opened here: the client
    /// that loads them at start says which file it could not read.
    pub ca_certs: Vec<PathBuf>,
    /// Where users reach the service, without a trailing slash; `None`: `http://` (or
    /// `https://` under TLS) and the listen address.
    pub public_url: Option<url::Url>,
    /// Browser origins allowed to call the API, as `scheme://host[:port]`.
    pub cors_origins: Vec<String>,
    pub session_ttl: Duration,
    /// A CSP `frame-ancestors` source list.
    pub portal_frame_ancestors: String,
}

impl Default for Config {
    /// The configuration when nothing is set: every built-in default.
    fn default() -> Self {
        load_from(&ConfigArgs::default(), &|_| None).expect("the built-in defaults are valid")
    }
}

/// Loads the configuration from the flags, the process environment and the configuration file.
pub fn load(args: &ConfigArgs) -> Result<Config, ConfigError> {
    // A value that is not UTF-8 is kept (lossily) rather than ignored, so that it is refused
    // with a message instead of silently falling back to the next source.
    load_from(args, &|name| {
        std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
    })
}

/// [`load`] with the environment given as a function, so that tests need not touch the
/// process environment.
pub fn load_from(
    args: &ConfigArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let file_path = args.config.clone().or_else(|| {
        env(CONFIG_FILE_ENV)
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
    });
    let file = file_path.map(ConfigFile::read).transpose()?;
    resolve(&Sources::new(args, env, file))
}

/// Reads every setting from the sources into a [`Config`] and checks the settings that depend
/// on each other.
fn resolve(sources: &Sources<'_>) -> Result<Config, ConfigError> {
    let at_least_one = |text: &str| parse_count(text, 1);
    let config = Config {
        listen: sources.required("listen", parse_socket_addr)?,
        database: sources.required("database_url", Database::parse)?,
        database_pool_size: sources.required("database_pool_size", at_least_one)?,
        api_tokens: sources
            .optional("api_tokens", ApiToken::parse_list)?
            .unwrap_or_default(),
        retry_schedule: sources.required("retry_schedule", |text| {
            RetrySchedule::parse(text).map_err(|error| not_a_duration(&error.text))
        })?,
        request_timeout: sources.required("request_timeout", parse_positive_duration)?,
        allow_private: sources.optional("allow_private", |text| {
            text.parse::<AllowPrivate>()
                .map_err(|error| error.to_string())
        })?,
        retry_client_errors: sources.required("retry_client_errors", parse_bool)?,
        endpoint_concurrency: sources.required("endpoint_concurrency", at_least_one)?,
        max_in_flight: sources.required("max_in_flight", at_least_one)?,
        lease: sources.required("lease", parse_positive_duration)?,
        local_mode: sources.required("local_mode", LocalMode::parse)?,
        store_timeout: sources.required("store_timeout", parse_positive_duration)?,
        role: sources.required("role", Role::parse)?,
        proxy: sources
            .optional("proxy", |text| match text.trim() {
                "" | "none" => Ok(None),
                _ => ProxyUrl::parse(text).map(Some),
            })?
            .flatten(),
        max_payload_bytes: sources.required("max_payload_bytes", at_least_one)?,
        disable_after: sources.required("disable_after", parse_positive_duration)?,
        retention: sources.required("retention", parse_positive_duration)?,
        heartbeat: sources
            .optional("heartbeat", parse_optional_duration)?
            .flatten(),
        svix_headers: sources.required("svix_headers", parse_bool)?,
        signature_type: sources.required("signature_type", |text| {
            SignatureType::parse(text.trim())
                .ok_or_else(|| format!("`{text}` is not `hmac` or `ed25519`"))
        })?,
        encryption_key: sources.optional("encryption_key", EncryptionKeySetting::parse)?,
        log_format: sources.required("log_format", LogFormat::parse)?,
        tls: resolve_tls(sources)?,
        ca_certs: sources
            .optional("ca_certs", |text| Ok(parse_path_list(text)))?
            .unwrap_or_default(),
        public_url: sources.optional("public_url", parse_public_url)?,
        cors_origins: sources
            .optional("cors_origins", parse_origins)?
            .unwrap_or_default(),
        session_ttl: sources.required("session_ttl", parse_positive_duration)?,
        portal_frame_ancestors: sources.required(
            "portal_frame_ancestors",
            webhookd_api::console::parse_frame_ancestors,
        )?,
    };
    debug_assert!(
        SETTINGS
            .iter()
            .all(|setting| sources.was_read(setting.name)),
        "every setting of the table is read into the Config"
    );

    // The lease is renewed while an attempt runs; it must outlast an attempt that hangs until
    // its timeout, with time to spare for one renewal, or another node takes the delivery over
    // and sends it twice.
    if config.lease < config.request_timeout.saturating_mul(2) {
        return Err(ConfigError::invalid(
            "lease",
            sources.origin("lease"),
            &format!(
                "{} is shorter than twice `request_timeout` ({}); raise the lease or lower the \
                 timeout",
                format_duration(config.lease),
                format_duration(config.request_timeout)
            ),
        ));
    }
    // Off loopback a token faces the network: a short or repetitive one can be guessed.
    if !config.listen.ip().is_loopback()
        && let Some(index) = config
            .api_tokens
            .iter()
            .position(|token| !token.is_strong())
    {
        return Err(ConfigError::invalid(
            "api_tokens",
            sources.origin("api_tokens"),
            &format!(
                "token #{} is too weak to listen on {}: use at least {} characters, of at least                  {} different ones (e.g. `openssl rand -base64 32`)",
                index + 1,
                config.listen,
                values::MIN_TOKEN_LENGTH,
                values::MIN_TOKEN_VARIETY
            ),
        ));
    }
    Ok(config)
}

fn resolve_tls(sources: &Sources<'_>) -> Result<Option<TlsFiles>, ConfigError> {
    let cert = sources.optional("tls_cert", parse_path)?;
    let key = sources.optional("tls_key", parse_path)?;
    let missing = |absent: &'static str, present: &str| {
        Err(ConfigError::invalid(
            absent,
            sources.origin(absent),
            &format!("is not set, but `{present}` is: TLS needs both or neither"),
        ))
    };
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => missing("tls_key", "tls_cert"),
        (None, Some(_)) => missing("tls_cert", "tls_key"),
    }
}

/// The parsed configuration file.
#[derive(Debug)]
struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
}

impl ConfigFile {
    fn read(path: PathBuf) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(path, &text),
            Err(error) => Err(ConfigError::file(path, &error.to_string())),
        }
    }

    /// Parses the text of the file named `path`, refusing a key that is not a setting.
    fn parse(path: PathBuf, text: &str) -> Result<Self, ConfigError> {
        let table = match text.parse::<toml::Table>() {
            Ok(table) => table,
            Err(error) => {
                let message = error.message().trim().replace('\n', "; ");
                let problem = match error.span() {
                    Some(span) => {
                        let before = &text.as_bytes()[..span.start.min(text.len())];
                        let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
                        format!("line {line}: {message}")
                    }
                    None => message,
                };
                return Err(ConfigError::file(path, &problem));
            }
        };
        if let Some(key) = table
            .keys()
            .find(|key| !SETTINGS.iter().any(|setting| setting.name == key.as_str()))
        {
            return Err(ConfigError::UnknownKey {
                suggestion: closest_setting(key),
                key: key.clone(),
                path,
            });
        }
        Ok(Self { path, table })
    }
}

/// The setting whose name is within two edits of `key`, if one is (`database-url`, `listne`).
fn closest_setting(key: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .map(|setting| (edit_distance(key, setting.name), setting.name))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, name)| name)
}

/// The Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The text of one setting, and where it came from.
struct Raw {
    text: String,
    origin: Origin,
}

/// The sources of settings, strongest first: flags, environment, file, defaults.
struct Sources<'a> {
    args: &'a ConfigArgs,
    env: &'a dyn Fn(&str) -> Option<String>,
    file: Option<ConfigFile>,
    /// The settings asked for so far, to check that none of the table is left unread.
    read: RefCell<BTreeSet<&'static str>>,
}

impl<'a> Sources<'a> {
    fn new(
        args: &'a ConfigArgs,
        env: &'a dyn Fn(&str) -> Option<String>,
        file: Option<ConfigFile>,
    ) -> Self {
        Self {
            args,
            env,
            file,
            read: RefCell::default(),
        }
    }

    /// The text of the setting from the strongest source that has it, or `None` when no source
    /// has it and it has no default.
    fn raw(&self, name: &'static str) -> Result<Option<Raw>, ConfigError> {
        let setting = setting(name);
        self.read.borrow_mut().insert(name);
        if let Some(text) = self.args.flag_value(name) {
            return Ok(Some(Raw {
                text: text.to_owned(),
                origin: Origin::Flag,
            }));
        }
        if let Some(text) = (self.env)(&setting.env()) {
            return Ok(Some(Raw {
                text,
                origin: Origin::Env,
            }));
        }
        let in_file = self
            .file
            .as_ref()
            .and_then(|file| Some((file, file.table.get(name)?)));
        if let Some((file, value)) = in_file {
            let origin = Origin::File(file.path.clone());
            return match toml_text(setting, value) {
                Ok(text) => Ok(Some(Raw { text, origin })),
                Err(problem) => Err(ConfigError::invalid(name, origin, &problem)),
            };
        }
        Ok(setting.default.map(|text| Raw {
            text: text.to_owned(),
            origin: Origin::Default,
        }))
    }

    /// The parsed value of a setting that may be unset.
    fn optional<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(raw) = self.raw(name)? else {
            return Ok(None);
        };
        match parse(&raw.text) {
            Ok(value) => Ok(Some(value)),
            Err(problem) => Err(ConfigError::invalid(name, raw.origin, &problem)),
        }
    }

    /// The parsed value of a setting that has a default.
    fn required<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.optional(name, parse)?
            .ok_or_else(|| ConfigError::invalid(name, Origin::Default, "is not set"))
    }

    /// Where the setting's value comes from, for a problem found after parsing it.
    fn origin(&self, name: &'static str) -> Origin {
        match self.raw(name) {
            Ok(Some(raw)) => raw.origin,
            Ok(None) | Err(_) => Origin::Default,
        }
    }

    fn was_read(&self, name: &str) -> bool {
        self.read.borrow().contains(name)
    }
}

/// The text of a TOML value, as a flag would give it: TOML may type numbers and booleans, and
/// write a list as an array of strings.
fn toml_text(setting: &Setting, value: &toml::Value) -> Result<String, String> {
    use toml::Value;
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Integer(number) => Ok(number.to_string()),
        Value::Boolean(boolean) => Ok(boolean.to_string()),
        Value::Array(items) if setting.kind == Kind::List => {
            let texts = items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text.as_str()),
                    other => Err(format!(
                        "the list holds a {}, not a string",
                        other.type_str()
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(texts.join(","))
        }
        other => Err(format!(
            "a TOML {} is not a value of this setting (write a string{})",
            other.type_str(),
            if setting.kind == Kind::List {
                " or an array of strings"
            } else {
                ""
            }
        )),
    }
}
