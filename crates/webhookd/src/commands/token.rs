//! `webhookd token create | list | revoke`: API tokens kept in the database as SHA-256 hashes.
//! A token is shown once, when it is created.
//!
//! Without `--url`, the command writes to the configured store directly: on PostgreSQL that
//! works beside running nodes (they notice a new token within seconds and check revoked ones
//! on every request). An SQLite data directory belongs to the server while it runs, so there
//! the command goes through the running server's API instead: `--url http://HOST:PORT` with
//! `--token` (or `WEBHOOKD_TOKEN`), unless the server runs in local mode.

use std::io::Write;

use anyhow::{Context, bail};
use hyper::Method;
use serde_json::{Value, json};
use url::Url;
use webhookd_api::auth::{check_token_name, generate_token, hash_token};
use webhookd_core::TokenId;
use webhookd_core::time::{format_timestamp, now};
use webhookd_store::sqlite::SqliteStore;
use webhookd_store::{ApiTokenRecord, Store};

use crate::config::{Config, Database};
use crate::tools::client::Api;

/// What `webhookd token` does.
#[derive(Debug, clap::Subcommand)]
pub enum TokenAction {
    /// Creates a token and prints it once.
    Create {
        /// A name to recognise the token by.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Lists tokens (never the tokens themselves).
    List,
    /// Revokes a token by id or name; it stops working at once.
    Revoke {
        /// The token's id (`tok_…`) or name.
        key: String,
    },
}

/// Where `webhookd token` manages tokens: the running server's API rather than the database.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RemoteArgs {
    /// Manage tokens through the API of the server at this URL (`http://HOST:PORT`), e.g. on
    /// SQLite while the server runs.
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<Url>,
    /// The API token for `--url` (not needed when the server runs in local mode).
    #[arg(
        long,
        global = true,
        env = "WEBHOOKD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
}

/// Runs the command against the server at `--url`, or against the configured store.
pub async fn dispatch(
    config: &Config,
    remote: RemoteArgs,
    action: TokenAction,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if let Some(url) = &remote.url {
        if url.scheme() != "http" {
            bail!("--url must be an http:// URL (the server's API address), not `{url}`");
        }
        let api = Api::new(url, remote.token.as_deref())?;
        return run_remote(&api, action, out).await;
    }
    if let Database::Sqlite { path } = &config.database
        && SqliteStore::in_use(path)
    {
        bail!(
            "the database {} is in use by a running webhookd server; manage tokens through it \
             with `--url http://HOST:PORT` (and `--token`, or WEBHOOKD_TOKEN)",
            path.display()
        );
    }
    let store = crate::run::open_store(config)?;
    run(store.as_ref(), action, out).await
}

/// Runs the command against the store.
pub async fn run(
    store: &dyn Store,
    action: TokenAction,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match action {
        TokenAction::Create { name } => {
            check_token_name(&name).map_err(|problem| anyhow::anyhow!("--name {problem}"))?;
            let token = generate_token();
            let record = ApiTokenRecord {
                id: TokenId::new(),
                name,
                hash: hex::encode(hash_token(&token)),
                created_at: now(),
            };
            store
                .create_token(&record)
                .await
                .context("cannot create the token")?;
            writeln!(out, "{token}")?;
            eprintln!(
                "created token {} ({}); it is shown only this once, keep it somewhere safe",
                record.id, record.name
            );
        }
        TokenAction::List => {
            for token in store.list_tokens().await.context("cannot list tokens")? {
                writeln!(
                    out,
                    "{}\t{}\t{}",
                    token.id,
                    token.name,
                    format_timestamp(token.created_at)
                )?;
            }
        }
        TokenAction::Revoke { key } => {
            if !store
                .revoke_token(&key)
                .await
                .context("cannot revoke the token")?
            {
                bail!("no token has the id or name `{key}`");
            }
            writeln!(out, "revoked {key}")?;
        }
    }
    Ok(())
}

const TOKENS: &str = "/api/v1/auth/token";

fn field<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name].as_str().unwrap_or_default()
}

/// Runs the command through `POST/GET/DELETE /api/v1/auth/token`.
async fn run_remote(api: &Api, action: TokenAction, out: &mut impl Write) -> anyhow::Result<()> {
    match action {
        TokenAction::Create { name } => {
            check_token_name(&name).map_err(|problem| anyhow::anyhow!("--name {problem}"))?;
            let created = api
                .call(Method::POST, TOKENS, Some(&json!({ "name": name })))
                .await?;
            writeln!(out, "{}", field(&created, "token"))?;
            eprintln!(
                "created token {} ({}); it is shown only this once, keep it somewhere safe",
                field(&created, "id"),
                field(&created, "name")
            );
        }
        TokenAction::List => {
            let list = api.call(Method::GET, TOKENS, None).await?;
            for token in list["data"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "{}\t{}\t{}",
                    field(token, "id"),
                    field(token, "name"),
                    field(token, "createdAt")
                )?;
            }
        }
        TokenAction::Revoke { key } => {
            let id = if TokenId::looks_like(&key) {
                key.clone()
            } else {
                let list = api.call(Method::GET, TOKENS, None).await?;
                list["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|token| field(token, "name") == key)
                    .map(|token| field(token, "id").to_owned())
                    .with_context(|| format!("no token has the id or name `{key}`"))?
            };
            api.call(Method::DELETE, &format!("{TOKENS}/{id}"), None)
                .await?;
            writeln!(out, "revoked {key}")?;
        }
    }
    Ok(())
}
