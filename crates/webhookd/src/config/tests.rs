//! Tests of the configuration through its boundary: an argv, an environment and a file go in, a
//! `Config` or a one-line error comes out. The environment is injected, never the process's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use webhookd_core::retry::RetrySchedule;
use webhookd_core::ssrf::AllowPrivate;

use super::*;

/// The reference configuration, which must match the table.
const DEFAULT_FILE: &str = include_str!("../../config.default.toml");

/// The environment variable names users configure webhookd with, written out: they are a contract, so a change
/// to how the table derives them must fail here.
const CONTRACT_ENV_NAMES: &[&str] = &[
    "WEBHOOKD_LISTEN",
    "WEBHOOKD_DATABASE_URL",
    "WEBHOOKD_DATABASE_POOL_SIZE",
    "WEBHOOKD_API_TOKENS",
    "WEBHOOKD_RETRY_SCHEDULE",
    "WEBHOOKD_REQUEST_TIMEOUT",
    "WEBHOOKD_ALLOW_PRIVATE",
    "WEBHOOKD_RETRY_CLIENT_ERRORS",
    "WEBHOOKD_ENDPOINT_CONCURRENCY",
    "WEBHOOKD_MAX_IN_FLIGHT",
    "WEBHOOKD_LEASE",
    "WEBHOOKD_LOCAL_MODE",
    "WEBHOOKD_STORE_TIMEOUT",
    "WEBHOOKD_ROLE",
    "WEBHOOKD_PROXY",
    "WEBHOOKD_MAX_PAYLOAD_BYTES",
    "WEBHOOKD_DISABLE_AFTER",
    "WEBHOOKD_RETENTION",
    "WEBHOOKD_HEARTBEAT",
    "WEBHOOKD_SVIX_HEADERS",
    "WEBHOOKD_SIGNATURE_TYPE",
    "WEBHOOKD_ENCRYPTION_KEY",
    "WEBHOOKD_LOG_FORMAT",
    "WEBHOOKD_TLS_CERT",
    "WEBHOOKD_TLS_KEY",
    "WEBHOOKD_CA_CERTS",
    "WEBHOOKD_PUBLIC_URL",
    "WEBHOOKD_CORS_ORIGINS",
    "WEBHOOKD_SESSION_TTL",
    "WEBHOOKD_PORTAL_FRAME_ANCESTORS",
];

/// A value that each setting refuses. `ca_certs` is missing: any list of paths is one (the
/// files are opened by the client that uses them).
const BAD_VALUES: &[(&str, &str)] = &[
    ("listen", "localhost"),
    ("database_url", "mysql://db/webhookd"),
    ("database_pool_size", "0"),
    ("api_tokens", "good,bad token"),
    ("retry_schedule", "5s,soon"),
    ("request_timeout", "5 parsecs"),
    ("allow_private", "intranet"),
    ("retry_client_errors", "maybe"),
    ("endpoint_concurrency", "0"),
    ("max_in_flight", "many"),
    ("lease", "0s"),
    ("local_mode", "off"),
    ("store_timeout", "0s"),
    ("role", "leader"),
    ("proxy", "ftp://proxy.internal"),
    ("max_payload_bytes", "1MB"),
    ("disable_after", "never"),
    ("retention", "-1d"),
    ("heartbeat", "often"),
    ("svix_headers", "2"),
    ("signature_type", "rsa"),
    ("encryption_key", ""),
    ("log_format", "xml"),
    ("tls_cert", ""),
    ("tls_key", " "),
    ("public_url", "ftp://hooks.example.com"),
    ("cors_origins", "https://app.example.com/path"),
    ("session_ttl", "0s"),
    ("portal_frame_ancestors", "'self'; script-src *"),
];

/// The configuration flags as a binary would flatten them.
#[derive(Parser, Debug)]
struct TestCli {
    #[command(flatten)]
    args: ConfigArgs,
}

fn args(argv: &[&str]) -> ConfigArgs {
    let argv = std::iter::once("webhookd").chain(argv.iter().copied());
    TestCli::try_parse_from(argv)
        .expect("the test's argv parses")
        .args
}

/// Loads from flags, an environment and a file's text (named `test.toml` in messages).
fn load_with(
    argv: &[&str],
    env: &[(&str, &str)],
    file: Option<&str>,
) -> Result<Config, ConfigError> {
    let args = args(argv);
    let env = |name: &str| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    };
    let file = file
        .map(|text| ConfigFile::parse(PathBuf::from("test.toml"), text))
        .transpose()?;
    resolve(&Sources::new(&args, &env, file))
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("webhookd-config-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn defaults_are_those_of_the_design() {
    let config = Config::default();
    assert_eq!(config, load_with(&[], &[], None).unwrap());
    assert_eq!(
        config.listen,
        "127.0.0.1:8090".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        config.database,
        Database::Sqlite {
            path: PathBuf::from("./webhookd-data/webhookd.db")
        }
    );
    assert!(config.api_tokens.is_empty());
    assert_eq!(config.retry_schedule, RetrySchedule::default());
    assert_eq!(config.request_timeout, Duration::from_secs(15));
    assert_eq!(config.allow_private, None);
    assert!(!config.retry_client_errors);
    assert_eq!(
        (config.endpoint_concurrency, config.max_in_flight),
        (8, 1024)
    );
    assert_eq!(config.lease, Duration::from_secs(60));
    assert_eq!(config.role, Role::All);
    assert_eq!(config.proxy, None);
    assert_eq!(config.max_payload_bytes, 1_048_576);
    assert_eq!(config.disable_after, Duration::from_secs(5 * 86_400));
    assert_eq!(config.retention, Duration::from_secs(90 * 86_400));
    assert_eq!(config.heartbeat, None);
    assert!(!config.svix_headers);
    assert_eq!(config.encryption_key, None);
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.tls, None);
    assert!(config.ca_certs.is_empty());
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let file = "listen = \"127.0.0.1:1\"\nrole = \"worker\"\nmax_in_flight = 10\n";
    let env = [("WEBHOOKD_LISTEN", "127.0.0.1:2"), ("WEBHOOKD_ROLE", "api")];
    let flags = ["--listen", "127.0.0.1:3"];
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));

    let config = load_with(&flags, &env, Some(file)).unwrap();
    assert_eq!(config.listen, addr(3));
    assert_eq!(config.role, Role::Api);
    assert_eq!(config.max_in_flight, 10);
    assert_eq!(config.endpoint_concurrency, 8);

    let config = load_with(&[], &env, Some(file)).unwrap();
    assert_eq!(config.listen, addr(2));

    let config = load_with(&[], &[], Some(file)).unwrap();
    assert_eq!(config.listen, addr(1));
    assert_eq!(config.role, Role::Worker);

    assert_eq!(load_with(&[], &[], None).unwrap().listen, addr(8090));
}

#[test]
fn the_file_is_named_by_flag_or_by_environment() {
    let from_flag = TempFile::new("flag.toml", "role = \"api\"\n");
    let from_env = TempFile::new("env.toml", "role = \"worker\"\n");
    let env = |name: &str| (name == "WEBHOOKD_CONFIG").then(|| from_env.path().to_owned());

    let config = load_from(&args(&["--config", from_flag.path()]), &env).unwrap();
    assert_eq!(config.role, Role::Api);
    let config = load_from(&args(&[]), &env).unwrap();
    assert_eq!(config.role, Role::Worker);

    let error = load_from(&args(&["--config", "/nonexistent/webhookd.toml"]), &no_env).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("cannot use the configuration file /nonexistent/webhookd.toml (--config / WEBHOOKD_CONFIG): "),
        "{message}"
    );
}

#[test]
fn the_error_names_the_setting_and_where_to_change_it() {
    let error = load_with(&["--request-timeout", "5 parsecs"], &[], None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid value for `request_timeout` (--request-timeout / WEBHOOKD_REQUEST_TIMEOUT): \
         `5 parsecs` is not a duration (write it like 500ms, 5s, 5m, 2h or 5d)"
    );
    let error = load_with(&[], &[], Some("request_timeout = \"5 parsecs\"")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid value for `request_timeout` (in test.toml): \
         `5 parsecs` is not a duration (write it like 500ms, 5s, 5m, 2h or 5d)"
    );
}

#[test]
fn every_bad_value_is_refused_naming_its_setting_from_every_source() {
    for setting in SETTINGS.iter().filter(|setting| setting.name != "ca_certs") {
        assert!(
            BAD_VALUES.iter().any(|(name, _)| *name == setting.name),
            "no bad value tried for `{}`",
            setting.name
        );
    }
    for &(name, bad) in BAD_VALUES {
        let setting = setting(name);
        let flag = format!("{}={bad}", setting.flag());
        let env = [(setting.env(), bad)];
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(key, value)| (key.as_str(), *value))
            .collect();
        let file = format!("{name} = {}", toml::Value::from(bad));
        let sources = [
            ("flag", load_with(&[&flag], &[], None)),
            ("env", load_with(&[], &env, None)),
            ("file", load_with(&[], &[], Some(&file))),
        ];
        for (source, result) in sources {
            let error = result.expect_err(&format!("`{bad}` for `{name}` from the {source}"));
            let message = error.to_string();
            assert_eq!(error.setting(), Some(name), "{message}");
            assert!(!message.contains('\n'), "{message}");
            let place = match source {
                "file" => "(in test.toml)".to_owned(),
                _ => format!("({} / {})", setting.flag(), setting.env()),
            };
            assert!(
                message.starts_with(&format!("invalid value for `{name}` {place}: ")),
                "{message}"
            );
        }
    }
}

#[test]
fn the_lease_must_outlive_two_request_timeouts() {
    let at_limit = load_with(&["--lease", "30s", "--request-timeout", "15s"], &[], None).unwrap();
    assert_eq!(at_limit.lease, Duration::from_secs(30));

    let error = load_with(&["--lease", "29s"], &[], None).unwrap_err();
    assert_eq!(error.setting(), Some("lease"));
    // Raising the timeout alone breaks the default lease; the error still says which to change.
    let error = load_with(&[], &[("WEBHOOKD_REQUEST_TIMEOUT", "31s")], None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid value for `lease` (--lease / WEBHOOKD_LEASE): 1m is shorter than twice \
         `request_timeout` (31s); raise the lease or lower the timeout"
    );
}

#[test]
fn tls_needs_both_files_or_neither() {
    let error = load_with(&["--tls-cert", "cert.pem"], &[], None).unwrap_err();
    assert_eq!(error.setting(), Some("tls_key"));
    assert!(
        error.to_string().contains("(--tls-key / WEBHOOKD_TLS_KEY)"),
        "{error}"
    );
    let error = load_with(&[], &[("WEBHOOKD_TLS_KEY", "key.pem")], None).unwrap_err();
    assert_eq!(error.setting(), Some("tls_cert"));

    let config = load_with(
        &["--tls-cert", "cert.pem", "--tls-key", "key.pem"],
        &[],
        None,
    )
    .unwrap();
    let tls = config.tls.unwrap();
    assert_eq!(
        (tls.cert, tls.key),
        (PathBuf::from("cert.pem"), PathBuf::from("key.pem"))
    );
}

#[test]
fn a_key_of_the_file_that_is_no_setting_is_refused() {
    let error = load_with(&[], &[], Some("listne = \"127.0.0.1:1\"")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown setting `listne` in the configuration file test.toml (did you mean `listen`?)"
    );
    let error = load_with(&[], &[], Some("database-url = \"x.db\"")).unwrap_err();
    assert!(
        error.to_string().contains("(did you mean `database_url`?)"),
        "{error}"
    );
    let error = load_with(&[], &[], Some("[server]\nlisten = \"127.0.0.1:1\"")).unwrap_err();
    assert!(
        error.to_string().starts_with("unknown setting `server` "),
        "{error}"
    );

    let error = load_with(&[], &[], Some("listen = \"127.0.0.1:1\"\nrole = \n")).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("cannot use the configuration file test.toml "),
        "{message}"
    );
    assert!(message.contains("line 2: "), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn the_file_may_use_toml_types() {
    let file = r#"
        api_tokens = ["token-a", "token-b"]
        retry_schedule = ["1s", "1m"]
        endpoint_concurrency = 2
        svix_headers = true
        allow_private = ["10.0.0.0/8", "::1/128"]
    "#;
    let config = load_with(&[], &[], Some(file)).unwrap();
    let tokens: Vec<&str> = config.api_tokens.iter().map(ApiToken::expose).collect();
    assert_eq!(tokens, ["token-a", "token-b"]);
    assert_eq!(
        config.retry_schedule.delays(),
        [Duration::from_secs(1), Duration::from_secs(60)]
    );
    assert_eq!(config.endpoint_concurrency, 2);
    assert!(config.svix_headers);
    assert_eq!(
        config.allow_private,
        Some("10.0.0.0/8,::1/128".parse::<AllowPrivate>().unwrap())
    );

    for wrong in [
        "listen = [\"127.0.0.1:1\"]",
        "max_payload_bytes = 1e6",
        "api_tokens = [1, 2]",
    ] {
        let error = load_with(&[], &[], Some(wrong)).unwrap_err();
        assert!(error.to_string().contains("(in test.toml)"), "{error}");
    }
}

#[test]
fn empty_and_off_values_override_a_lower_source() {
    let file = "api_tokens = \"from-file\"\nheartbeat = \"5s\"\nproxy = \"http://proxy:3128\"";
    let env = [
        ("WEBHOOKD_API_TOKENS", ""),
        ("WEBHOOKD_HEARTBEAT", "off"),
        ("WEBHOOKD_PROXY", "none"),
    ];
    let config = load_with(&[], &env, Some(file)).unwrap();
    assert!(config.api_tokens.is_empty());
    assert_eq!(config.heartbeat, None);
    assert_eq!(config.proxy, None);

    let config = load_with(&[], &[], Some(file)).unwrap();
    assert_eq!(config.heartbeat, Some(Duration::from_secs(5)));
    assert_eq!(config.proxy.unwrap().as_str(), "http://proxy:3128/");
}

#[test]
fn a_boolean_flag_alone_means_true() {
    assert!(
        load_with(&["--svix-headers"], &[], None)
            .unwrap()
            .svix_headers
    );
    let config = load_with(
        &["--retry-client-errors", "--listen", "[::1]:80"],
        &[],
        None,
    )
    .unwrap();
    assert!(config.retry_client_errors);
    assert!(
        !load_with(&["--svix-headers", "no"], &[], None)
            .unwrap()
            .svix_headers
    );
    assert!(
        !load_with(&["--svix-headers=false"], &[], None)
            .unwrap()
            .svix_headers
    );
    assert!(
        load_with(&[], &[("WEBHOOKD_SVIX_HEADERS", "yes")], None)
            .unwrap()
            .svix_headers
    );
}

#[test]
fn secrets_stay_out_of_debug() {
    let argv = [
        "--api-tokens=hunter2-token",
        "--encryption-key=hunter2-key",
        "--database-url=postgres://webhookd:hunter2-db@db/webhookd",
        "--proxy=http://user:hunter2-proxy@proxy:3128",
    ];
    let args = args(&argv);
    let config = load_from(&args, &no_env).unwrap();
    for shown in [format!("{config:?}"), format!("{args:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    assert_eq!(config.api_tokens[0].expose(), "hunter2-token");
    assert_eq!(config.encryption_key.unwrap().expose(), "hunter2-key");
    assert_eq!(
        config.database,
        Database::Postgres {
            url: "postgres://webhookd:hunter2-db@db/webhookd".to_owned()
        }
    );
}

/// The reference file, the table, the flags and the environment names agree.
#[test]
fn the_reference_file_lists_every_setting_with_its_default() {
    let active: toml::Table = DEFAULT_FILE.parse().expect("config.default.toml is TOML");
    let commented_lines: Vec<&str> = DEFAULT_FILE
        .lines()
        .filter_map(|line| line.strip_prefix("# "))
        .filter(|rest| {
            rest.split_once(" = ").is_some_and(|(key, _)| {
                !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            })
        })
        .collect();
    let commented: toml::Table = commented_lines
        .join("\n")
        .parse()
        .expect("commented keys are TOML");

    for key in active.keys().chain(commented.keys()) {
        assert!(
            SETTINGS.iter().any(|setting| setting.name == key),
            "`{key}` in config.default.toml is not a setting"
        );
        assert!(
            !(active.contains_key(key) && commented.contains_key(key)),
            "`{key}` is both set and commented out"
        );
    }
    for setting in SETTINGS {
        match setting.default {
            Some(default) => {
                let value = active.get(setting.name).unwrap_or_else(|| {
                    panic!(
                        "`{}` (default {default}) is not set in config.default.toml",
                        setting.name
                    )
                });
                assert_eq!(
                    toml_text(setting, value).as_deref(),
                    Ok(default),
                    "{}",
                    setting.name
                );
            }
            None => assert!(
                commented.contains_key(setting.name),
                "`{}` has no default, so config.default.toml shows it commented out",
                setting.name
            ),
        }
    }

    // The file as it is loads to the defaults, and with its examples uncommented it still loads.
    let file = ConfigFile::parse(PathBuf::from("config.default.toml"), DEFAULT_FILE).unwrap();
    assert_eq!(
        resolve(&Sources::new(&ConfigArgs::default(), &no_env, Some(file))),
        Ok(Config::default())
    );
    let all = format!("{DEFAULT_FILE}\n{}", commented_lines.join("\n"));
    let file = ConfigFile::parse(PathBuf::from("config.default.toml"), &all).unwrap();
    let config = resolve(&Sources::new(&ConfigArgs::default(), &no_env, Some(file))).unwrap();
    assert!(config.tls.is_some() && config.heartbeat.is_some() && config.proxy.is_some());
}

#[test]
fn every_setting_has_its_flag_and_environment_variable() {
    let envs: Vec<String> = SETTINGS.iter().map(Setting::env).collect();
    assert_eq!(envs, CONTRACT_ENV_NAMES);

    let command = TestCli::command();
    for setting in SETTINGS {
        let long = setting.name.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(long.as_str()))
            .unwrap_or_else(|| panic!("no --{long} flag"));
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        assert!(
            help.contains(&format!("[env: {}]", setting.env())),
            "--{long}: {help}"
        );
        assert_eq!(setting.flag(), format!("--{long}"));
    }
    for arg in command.get_arguments() {
        let long = arg.get_long().unwrap_or_default();
        assert!(
            long == "config"
                || SETTINGS
                    .iter()
                    .any(|setting| setting.flag() == format!("--{long}")),
            "--{long} is not a setting"
        );
    }
    let help = TestCli::command().render_long_help().to_string();
    assert!(help.contains("--database-url <URL>"), "{help}");
    assert!(help.contains("[env: WEBHOOKD_CONFIG]"), "{help}");
}

#[test]
fn the_environment_is_read_under_the_setting_names_only() {
    let asked = std::cell::RefCell::new(Vec::new());
    let env = |name: &str| {
        asked.borrow_mut().push(name.to_owned());
        None
    };
    load_from(&ConfigArgs::default(), &env).unwrap();
    let asked = asked.into_inner();
    assert!(
        asked.iter().all(|name| name.starts_with("WEBHOOKD_")),
        "{asked:?}"
    );
    for name in CONTRACT_ENV_NAMES.iter().chain(&["WEBHOOKD_CONFIG"]) {
        assert!(asked.iter().any(|asked| asked == name), "{name} never read");
    }
}

#[test]
fn weak_tokens_are_refused_off_loopback_only() {
    let weak = [("WEBHOOKD_API_TOKENS", "hunter2")];
    assert!(
        load_with(&[], &weak, None).is_ok(),
        "on loopback any token will do"
    );
    let error = load_with(&["--listen", "0.0.0.0:8090"], &weak, None).unwrap_err();
    assert!(error.to_string().contains("`api_tokens`"), "{error}");
    assert!(error.to_string().contains("24 characters"), "{error}");
    let repetitive = [("WEBHOOKD_API_TOKENS", "abababababababababababababab")];
    assert!(load_with(&["--listen", "0.0.0.0:8090"], &repetitive, None).is_err());
    let strong = [("WEBHOOKD_API_TOKENS", "q6Hx7nVYJ1c0mJpM4Jg5bJ8Gz0s3kQ2f")];
    assert!(load_with(&["--listen", "0.0.0.0:8090"], &strong, None).is_ok());
}

#[test]
fn portal_and_browser_settings_are_read_and_normalized() {
    let config = load_with(&[], &[], None).unwrap();
    assert_eq!(config.public_url, None);
    assert!(config.cors_origins.is_empty());
    assert_eq!(config.session_ttl, Duration::from_secs(12 * 3600));
    assert_eq!(config.portal_frame_ancestors, "'self'");

    let env = [
        ("WEBHOOKD_PUBLIC_URL", "https://hooks.example.com/webhookd/"),
        (
            "WEBHOOKD_CORS_ORIGINS",
            "https://App.Example.com, http://localhost:3000,",
        ),
        ("WEBHOOKD_SESSION_TTL", "30m"),
        (
            "WEBHOOKD_PORTAL_FRAME_ANCESTORS",
            "'self'   https://app.example.com",
        ),
    ];
    let config = load_with(&[], &env, None).unwrap();
    assert_eq!(
        config.public_url.unwrap().as_str(),
        "https://hooks.example.com/webhookd"
    );
    assert_eq!(
        config.cors_origins,
        ["https://app.example.com", "http://localhost:3000"]
    );
    assert_eq!(config.session_ttl, Duration::from_secs(30 * 60));
    assert_eq!(
        config.portal_frame_ancestors,
        "'self' https://app.example.com"
    );

    for origin in [
        "*",
        "https://app.example.com/",
        "app.example.com",
        "ftp://x.example.com",
    ] {
        let error = load_with(&[], &[("WEBHOOKD_CORS_ORIGINS", origin)], None).unwrap_err();
        assert_eq!(error.setting(), Some("cors_origins"), "{origin}");
    }
}
