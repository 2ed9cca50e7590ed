//! The table of settings: each one's name, value, default and help, written once.
//!
//! The table drives everything that is spelled the same way for every setting: the flag (the
//! name in kebab-case), the environment variable (`WEBHOOKD_` and the name in upper case), the
//! key of the TOML file (the name itself), the `--help` text and the default. The `settings!`
//! macro generates the table and the clap struct, [`ConfigArgs`], from one list, so a setting
//! cannot be in one and not the other. What each value *means* is the loader's business
//! (`config.rs`).

use std::fmt;
use std::path::PathBuf;

use clap::builder::ValueRange;

/// One setting of the configuration contract: its flag, environment variable and TOML key are
/// derived from one name, and users rely on all three.
#[derive(Debug)]
pub struct Setting {
    /// The TOML key, in snake_case; the flag and the environment variable derive from it.
    pub name: &'static str,
    /// The placeholder `--help` shows for the value.
    pub value_name: &'static str,
    /// The built-in default as the user would write it, or `None` for "unset".
    pub default: Option<&'static str>,
    pub kind: Kind,
    /// Whether the value may hold a secret, so that `Debug` must not show it.
    pub secret: bool,
    /// One line for `--help`.
    pub help: &'static str,
}

/// How a setting is written, where that differs between settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One value.
    Text,
    /// Comma-separated; the TOML file may also give an array of strings.
    List,
    /// A boolean; the bare flag (`--svix-headers`) means `true`.
    Switch,
}

impl Setting {
    /// `--database-url` for `database_url`.
    pub fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    /// `WEBHOOKD_DATABASE_URL` for `database_url`.
    pub fn env(&self) -> String {
        format!("{ENV_PREFIX}{}", self.name.to_ascii_uppercase())
    }

    /// The help line with what clap cannot show for us: we read the environment ourselves (so
    /// that tests can inject it) and apply the default after the file (so that the file can set
    /// it), hence neither is known to clap.
    fn help_text(&self) -> String {
        let default = match self.default {
            Some(default) => format!(" [default: {default}]"),
            None => String::new(),
        };
        format!("{} [env: {}]{default}", self.help, self.env())
    }
}

/// The prefix of every environment variable of the configuration.
pub(super) const ENV_PREFIX: &str = "WEBHOOKD_";

/// The environment variable that names the configuration file, like `--config`.
pub(super) const CONFIG_FILE_ENV: &str = "WEBHOOKD_CONFIG";

/// The setting called `name`. The names the code asks for are those of the table.
pub(super) fn setting(name: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|setting| setting.name == name)
        .unwrap_or_else(|| panic!("`{name}` is not in the table of settings"))
}

fn flag_help(name: &str) -> String {
    setting(name).help_text()
}

fn flag_num_args(name: &str) -> ValueRange {
    match setting(name).kind {
        Kind::Switch => ValueRange::new(0..=1),
        Kind::Text | Kind::List => ValueRange::new(1..=1),
    }
}

fn flag_missing_value(name: &str) -> Option<&'static str> {
    (setting(name).kind == Kind::Switch).then_some("true")
}

/// Generates [`SETTINGS`] and [`ConfigArgs`] from one list of `name { field: value, … }`, the
/// fields being those of [`Setting`] but `name`.
macro_rules! settings {
    ($($name:ident { $($field:ident: $value:expr),* $(,)? })*) => {
        /// Every setting, in the order `--help` and the reference file show them.
        pub static SETTINGS: &[Setting] = &[
            $(Setting { name: stringify!($name), $($field: $value),* },)*
        ];

        /// The configuration as given on the command line: text, not yet validated. Flatten it
        /// into the subcommands that need the configuration and pass it to [`super::load`].
        #[derive(clap::Args, Clone, Default)]
        pub struct ConfigArgs {
            #[arg(long, value_name = "FILE", help = config_file_help())]
            pub config: Option<PathBuf>,
            $(
                #[arg(
                    long,
                    value_name = setting(stringify!($name)).value_name,
                    help = flag_help(stringify!($name)),
                    num_args = flag_num_args(stringify!($name)),
                    default_missing_value = flag_missing_value(stringify!($name)),
                )]
                pub $name: Option<String>,
            )*
        }

        impl ConfigArgs {
            /// The value given by flag for the setting called `name`.
            pub fn flag_value(&self, name: &str) -> Option<&str> {
                match name {
                    $(stringify!($name) => self.$name.as_deref(),)*
                    _ => None,
                }
            }
        }
    };
}

fn config_file_help() -> String {
    format!("TOML file of settings, overridden by flags and environment [env: {CONFIG_FILE_ENV}]")
}

impl fmt::Debug for ConfigArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("ConfigArgs");
        debug.field("config", &self.config);
        for setting in SETTINGS {
            match self.flag_value(setting.name) {
                Some(_) if setting.secret => debug.field(setting.name, &"<redacted>"),
                Some(value) => debug.field(setting.name, &value),
                None => continue,
            };
        }
        debug.finish()
    }
}

settings! {
    listen {
        value_name: "ADDR",
        default: Some("127.0.0.1:8090"),
        kind: Kind::Text,
        secret: false,
        help: "Address and port the API listens on",
    }
    database_url {
        value_name: "URL",
        default: Some("sqlite://./webhookd-data/webhookd.db"),
        kind: Kind::Text,
        secret: true,
        help: "Database: sqlite://PATH (or a bare path), or postgres://USER:PASSWORD@HOST/DB",
    }
    database_pool_size {
        value_name: "N",
        default: Some("16"),
        kind: Kind::Text,
        secret: false,
        help: "Connections a node keeps to PostgreSQL (unused with SQLite)",
    }
    api_tokens {
        value_name: "TOKEN,…",
        default: None,
        kind: Kind::List,
        secret: true,
        help: "API bearer tokens, besides those made by `webhookd token create`",
    }
    retry_schedule {
        value_name: "DELAY,…",
        default: Some("5s,5m,30m,2h,5h,10h,10h"),
        kind: Kind::List,
        secret: false,
        help: "Delays before each retry after the first attempt",
    }
    request_timeout {
        value_name: "DURATION",
        default: Some("15s"),
        kind: Kind::Text,
        secret: false,
        help: "Time limit of one delivery attempt",
    }
    allow_private {
        value_name: "all|none|CIDR,…",
        default: None,
        kind: Kind::List,
        secret: false,
        help: "Non-public addresses deliveries may reach (unset: all in local mode, none otherwise)",
    }
    retry_client_errors {
        value_name: "BOOL",
        default: Some("false"),
        kind: Kind::Switch,
        secret: false,
        help: "Retry every non-2xx answer but 410, as Svix does, not only transient failures",
    }
    endpoint_concurrency {
        value_name: "N",
        default: Some("8"),
        kind: Kind::Text,
        secret: false,
        help: "Most requests in flight to one endpoint",
    }
    max_in_flight {
        value_name: "N",
        default: Some("1024"),
        kind: Kind::Text,
        secret: false,
        help: "Most delivery requests in flight overall",
    }
    lease {
        value_name: "DURATION",
        default: Some("60s"),
        kind: Kind::Text,
        secret: false,
        help: "Lease on a delivery in flight, renewed while it runs; at least twice the request timeout",
    }
    local_mode {
        value_name: "auto|on",
        default: Some("auto"),
        kind: Kind::Text,
        secret: false,
        help: "Local mode (no auth on loopback): `auto` unless the store ever had a token; `on` also then",
    }
    store_timeout {
        value_name: "DURATION",
        default: Some("5s"),
        kind: Kind::Text,
        secret: false,
        help: "Time limit of one database call; past it the request is answered 503 with Retry-After",
    }
    role {
        value_name: "api|worker|all",
        default: Some("all"),
        kind: Kind::Text,
        secret: false,
        help: "What this node does: serve the API, deliver, or both",
    }
    proxy {
        value_name: "URL",
        default: None,
        kind: Kind::Text,
        secret: true,
        help: "Proxy that deliveries go through: http://, https:// or socks5://HOST:PORT",
    }
    max_payload_bytes {
        value_name: "BYTES",
        default: Some("1048576"),
        kind: Kind::Text,
        secret: false,
        help: "Largest message payload accepted",
    }
    disable_after {
        value_name: "DURATION",
        default: Some("5d"),
        kind: Kind::Text,
        secret: false,
        help: "Disable an endpoint once it has failed every attempt for this long",
    }
    retention {
        value_name: "DURATION",
        default: Some("90d"),
        kind: Kind::Text,
        secret: false,
        help: "How long payloads and attempts are kept",
    }
    heartbeat {
        value_name: "DURATION",
        default: None,
        kind: Kind::Text,
        secret: false,
        help: "Send a demo heartbeat event to every endpoint this often (unset or `off`: never)",
    }
    svix_headers {
        value_name: "BOOL",
        default: Some("false"),
        kind: Kind::Switch,
        secret: false,
        help: "Also send the svix-id, svix-timestamp and svix-signature headers",
    }
    signature_type {
        value_name: "hmac|ed25519",
        default: Some("hmac"),
        kind: Kind::Text,
        secret: false,
        help: "Signature scheme of new endpoints given no secret: HMAC (whsec_) or ed25519 (whsk_/whpk_)",
    }
    encryption_key {
        value_name: "KEY",
        default: None,
        kind: Kind::Text,
        secret: true,
        help: "Key that encrypts endpoint secrets at rest (unset: stored in plain)",
    }
    log_format {
        value_name: "text|json",
        default: Some("text"),
        kind: Kind::Text,
        secret: false,
        help: "Format of log lines; RUST_LOG chooses which lines",
    }
    tls_cert {
        value_name: "PEM_FILE",
        default: None,
        kind: Kind::Text,
        secret: false,
        help: "Certificate chain for the API to serve TLS with (with --tls-key)",
    }
    tls_key {
        value_name: "PEM_FILE",
        default: None,
        kind: Kind::Text,
        secret: false,
        help: "Private key for the API to serve TLS with (with --tls-cert)",
    }
    ca_certs {
        value_name: "PEM_FILE,…",
        default: None,
        kind: Kind::List,
        secret: false,
        help: "Extra root certificates that deliveries trust, besides the system's and Mozilla's",
    }
    public_url {
        value_name: "URL",
        default: None,
        kind: Kind::Text,
        secret: false,
        help: "Address users reach this service at, for portal links (unset: http:// or https:// and the listen address)",
    }
    cors_origins {
        value_name: "ORIGIN,…",
        default: None,
        kind: Kind::List,
        secret: false,
        help: "Browser origins allowed to call the API (CORS), e.g. https://app.example.com; none when unset",
    }
    session_ttl {
        value_name: "DURATION",
        default: Some("12h"),
        kind: Kind::Text,
        secret: false,
        help: "Longest life of a console or portal session",
    }
    portal_frame_ancestors {
        value_name: "SOURCES",
        default: Some("'self'"),
        kind: Kind::Text,
        secret: false,
        help: "Who may frame the portal: a Content-Security-Policy frame-ancestors source list",
    }
}
