//! The error of loading the configuration: one line that names the setting and where to change
//! it. The binary prints it and exits with status 2.

use std::fmt;
use std::path::PathBuf;

use super::settings::{CONFIG_FILE_ENV, setting};

/// Where the value of a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    File(PathBuf),
    Default,
}

/// Why the configuration cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The value of a setting is not acceptable, alone or together with another one.
    Invalid {
        setting: &'static str,
        origin: Origin,
        problem: String,
    },
    /// The configuration file cannot be read, or is not TOML.
    File { path: PathBuf, problem: String },
    /// The configuration file has a key that is not a setting.
    UnknownKey {
        path: PathBuf,
        key: String,
        suggestion: Option<&'static str>,
    },
}

impl ConfigError {
    pub fn invalid(setting: &'static str, origin: Origin, problem: &str) -> Self {
        Self::Invalid {
            setting,
            origin,
            problem: one_line(problem),
        }
    }

    pub fn file(path: PathBuf, problem: &str) -> Self {
        Self::File {
            path,
            problem: one_line(problem),
        }
    }

    /// The setting at fault, when it is one setting's.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { setting, .. } => Some(setting),
            Self::File { .. } | Self::UnknownKey { .. } => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid {
                setting: name,
                origin: Origin::File(path),
                problem,
            } => write!(
                f,
                "invalid value for `{name}` (in {}): {problem}",
                one_line(&path.display().to_string())
            ),
            Self::Invalid {
                setting: name,
                origin: Origin::Flag | Origin::Env | Origin::Default,
                problem,
            } => {
                let setting = setting(name);
                write!(
                    f,
                    "invalid value for `{name}` ({} / {}): {problem}",
                    setting.flag(),
                    setting.env()
                )
            }
            Self::File { path, problem } => write!(
                f,
                "cannot use the configuration file {} (--config / {CONFIG_FILE_ENV}): {problem}",
                one_line(&path.display().to_string())
            ),
            Self::UnknownKey {
                path,
                key,
                suggestion,
            } => {
                write!(
                    f,
                    "unknown setting `{}` in the configuration file {}",
                    one_line(key),
                    one_line(&path.display().to_string())
                )?;
                match suggestion {
                    Some(suggestion) => write!(f, " (did you mean `{suggestion}`?)"),
                    None => f.write_str(" (`webhookd serve --help` lists the settings)"),
                }
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The text with its control characters (line breaks above all) escaped, so that a message that
/// quotes a value stays on one line.
fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}
