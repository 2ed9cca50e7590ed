//! Endpoint secrets at rest: the start-up check that every stored secret opens with the
//! configured keys, and `webhookd secrets reencrypt`, which seals every secret, sensitive
//! custom header and stored idempotent answer with the first key so that older keys can be
//! dropped, then scrubs the database files of the old copies.

use std::io::Write;

use anyhow::Context;
use webhookd_store::Store;

use crate::walk;

/// What `webhookd secrets` does.
#[derive(Debug, clap::Subcommand)]
pub enum SecretsAction {
    /// Seals every endpoint secret, sensitive custom header and stored idempotent answer with
    /// the first key of WEBHOOKD_ENCRYPTION_KEY (or, with no key set, stores them in plain),
    /// then truncates SQLite's write-ahead log so that no old copy stays in the files.
    Reencrypt,
}

/// Reads every endpoint, so that a secret no configured key opens stops the start with the
/// reason (which key is missing), instead of failing deliveries later.
pub async fn check_all_open(store: &dyn Store) -> anyhow::Result<()> {
    for app in walk::applications(store)
        .await
        .context("cannot read the applications")?
    {
        walk::endpoints(store, &app.id).await.with_context(|| {
            format!("cannot open the endpoint secrets of application {}", app.id)
        })?;
    }
    Ok(())
}

pub async fn run(
    store: &dyn Store,
    action: SecretsAction,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match action {
        SecretsAction::Reencrypt => {
            let mut count = 0u64;
            for app in walk::applications(store)
                .await
                .context("cannot read the applications")?
            {
                let endpoints = walk::endpoints(store, &app.id).await.with_context(|| {
                    format!("cannot open the endpoint secrets of application {}", app.id)
                })?;
                for endpoint in endpoints {
                    // Writing an endpoint seals its secrets with the current first key.
                    store
                        .update_endpoint(&endpoint)
                        .await
                        .context("cannot rewrite an endpoint")?;
                    count += 1;
                }
            }
            let answers = store
                .reseal_idempotent_responses()
                .await
                .context("cannot rewrite the stored idempotent answers")?;
            let poller_tokens = store
                .reseal_poller_tokens()
                .await
                .context("cannot rewrite the poller tokens")?;
            // Leave no copy of the old values in the database files.
            store
                .scrub()
                .await
                .context("cannot checkpoint the database")?;
            writeln!(
                out,
                "re-sealed the secrets and sensitive headers of {count} endpoints and \
                 {answers} stored answers, and {poller_tokens} poller tokens"
            )?;
        }
    }
    Ok(())
}
