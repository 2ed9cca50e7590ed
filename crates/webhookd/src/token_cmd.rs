//! `webhookd token create | list | revoke`: API tokens kept in the database as SHA-256 hashes.
//! A token is shown once, when it is created.

use std::io::Write;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use webhookd_core::TokenId;
use webhookd_core::time::{format_timestamp, now};
use webhookd_store::{ApiTokenRecord, Store};

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
    /// Revokes a token by id or name.
    Revoke {
        /// The token's id (`tok_…`) or name.
        key: String,
    },
}

/// A new token: a recognisable prefix and 32 random bytes.
fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whk_{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub async fn run(
    store: &dyn Store,
    action: TokenAction,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match action {
        TokenAction::Create { name } => {
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let token = generate();
            let record = ApiTokenRecord {
                id: TokenId::new(),
                name,
                hash: hex::encode(webhookd_api::auth::hash_token(&token)),
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
