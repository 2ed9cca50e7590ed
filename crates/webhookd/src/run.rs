//! Assembles a node from its configuration: store, engine, API, and the background tasks.
//!
//! Start-up, in order: open the store (running migrations); on SQLite give back the leases a
//! previous process left; check that every secret opens (and warn about secrets or headers
//! left unsealed under a key); decide the auth mode; build the outbound client; start the
//! engine when this node delivers; serve the API on the given listener (`serve`: the
//! descriptor limit raised, connections capped and timed out), watching for tokens while in
//! local mode.
//!
//! Shutdown, in order, when `shutdown` completes: stop accepting requests and finish those in
//! progress; stop the engine by its protocol (in-flight attempts finish up to a deadline, queued
//! leases are released); return.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::http::HeaderValue;
use tokio::net::TcpListener;
use webhookd_api::auth::{AuthMode, hash_token};
use webhookd_api::{ApiConfig, ApiState};
use webhookd_core::cipher::SecretCipher;
use webhookd_core::ssrf::AllowPrivate;
use webhookd_delivery::http::{HttpClient, HttpConfig};
use webhookd_delivery::{Dispatcher, EngineConfig};
use webhookd_store::postgres::PostgresStore;
use webhookd_store::sqlite::SqliteStore;
use webhookd_store::{DeadlineStore, SecretCodec, Store};

use crate::config::{Config, Database, LocalMode};
use crate::{heartbeat, telemetry};

/// Opens the configured store, applying pending migrations, with endpoint secrets sealed by
/// `WEBHOOKD_ENCRYPTION_KEY` when it is set, and every call bounded by `store_timeout`.
pub fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = open_unbounded_store(config)?;
    Ok(Arc::new(DeadlineStore::new(store, config.store_timeout)))
}

fn open_unbounded_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let codec = match &config.encryption_key {
        Some(key) => SecretCodec::sealed(SecretCipher::parse(key.expose()).map_err(|error| {
            anyhow::anyhow!("invalid encryption_key (WEBHOOKD_ENCRYPTION_KEY): {error}")
        })?),
        None => SecretCodec::default(),
    };
    match &config.database {
        Database::Sqlite { path } => {
            let store = SqliteStore::open(path)
                .with_context(|| format!("cannot open the database {}", path.display()))?;
            Ok(Arc::new(store.with_secret_codec(codec)))
        }
        Database::Postgres { url } => {
            let store = PostgresStore::open_with(url, config.database_pool_size)
                .with_context(|| format!("cannot open the database {}", config.database))?;
            Ok(Arc::new(store.with_secret_codec(codec)))
        }
    }
}

/// A start refused because of how the node is configured (exit code 2, like bad settings).
#[derive(Debug)]
pub struct StartRefused(pub String);

impl std::fmt::Display for StartRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartRefused {}

/// Local mode: the listener is loopback-only, no token exists, and either none ever did or
/// `WEBHOOKD_LOCAL_MODE=on`. Otherwise, without a token, the node refuses to start.
async fn auth_mode(
    config: &Config,
    store: &dyn Store,
    listen: SocketAddr,
) -> anyhow::Result<AuthMode> {
    let stored = store
        .count_tokens()
        .await
        .context("cannot read the API tokens")?;
    if !config.api_tokens.is_empty() || stored > 0 {
        let configured = config
            .api_tokens
            .iter()
            .map(|token| hash_token(token.expose()))
            .collect();
        return Ok(AuthMode::Tokens { configured });
    }
    if !listen.ip().is_loopback() {
        return Err(StartRefused(format!(
            "refusing to listen on {listen} without an API token: set WEBHOOKD_API_TOKENS or run \
             `webhookd token create`, or listen on 127.0.0.1"
        ))
        .into());
    }
    let had_tokens = store
        .had_tokens()
        .await
        .context("cannot read the API tokens")?;
    if had_tokens && config.local_mode != LocalMode::On {
        return Err(StartRefused(
            "refusing to start without authentication: this store had API tokens and all were \
             revoked; create one (`webhookd token create`), or set WEBHOOKD_LOCAL_MODE=on to run \
             in local mode on loopback anyway"
                .into(),
        )
        .into());
    }
    tracing::warn!(
        %listen,
        "local mode: no API token exists and the listener is loopback-only, so requests are \
         not authenticated until one is created (set WEBHOOKD_API_TOKENS, run `webhookd token \
         create` or POST /api/v1/auth/token)"
    );
    Ok(AuthMode::Local)
}

/// Warns when a key is configured but endpoints still hold secrets or sensitive headers that
/// are not sealed with it.
async fn warn_unsealed(config: &Config, store: &dyn Store) -> anyhow::Result<()> {
    if config.encryption_key.is_none() {
        return Ok(());
    }
    let unsealed = store
        .count_unsealed_endpoints()
        .await
        .context("cannot read the endpoint secrets")?;
    if unsealed > 0 {
        tracing::warn!(
            endpoints = unsealed,
            "endpoints hold secrets or sensitive headers not sealed with the first \
             WEBHOOKD_ENCRYPTION_KEY; run `webhookd secrets reencrypt` to seal them"
        );
    }
    Ok(())
}

/// Runs a node until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listen = listener
        .local_addr()
        .context("the listener has no address")?;
    let descriptors = crate::serve::raise_descriptor_limit();
    let limits = crate::serve::ConnectionLimits::for_descriptor_limit(descriptors);
    let tls = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
    let store = open_store(&config)?;
    if matches!(config.database, Database::Sqlite { .. }) {
        // The data directory is locked to this process: every lease in it is a dead one's.
        let released = store
            .release_all_leases()
            .await
            .context("cannot release old leases")?;
        if released > 0 {
            tracing::info!(released, "resuming deliveries left by the previous run");
        }
    }
    crate::commands::secrets::check_all_open(store.as_ref()).await?;
    warn_unsealed(&config, store.as_ref()).await?;
    let auth = auth_mode(&config, store.as_ref(), listen).await?;
    let local = auth == AuthMode::Local;
    let allow_private = config.allow_private.clone().unwrap_or(if local {
        AllowPrivate::All
    } else {
        AllowPrivate::None
    });

    let mut outbound = None;
    let (dispatcher, engine) = if config.role.delivers() {
        let http = HttpClient::new(HttpConfig {
            request_timeout: config.request_timeout,
            allow_private,
            proxy: config.proxy.as_ref().map(|proxy| proxy.as_url().clone()),
            extra_ca_certs: config.ca_certs.clone(),
            ..HttpConfig::default()
        })
        .context("cannot build the outbound HTTP client")?;
        outbound = Some(http.clone());
        let (dispatcher, engine) =
            webhookd_delivery::start(Arc::clone(&store), engine_config(&config), http);
        (dispatcher, Some(engine))
    } else {
        (Dispatcher::disabled(), None)
    };

    let metrics = telemetry::metrics_render();
    let global_gauges = tokio::spawn(crate::metrics::global_gauges(Arc::clone(&store)));
    let api_config = ApiConfig {
        auth,
        max_payload_bytes: config.max_payload_bytes,
        metrics: Some(metrics),
        public_url: public_url(&config, listen),
        cors_origins: config
            .cors_origins
            .iter()
            .filter_map(|origin| HeaderValue::from_str(origin).ok())
            .collect(),
        session_ttl: config.session_ttl,
        secure_cookies: tls.is_some(),
        portal_frame_ancestors: config.portal_frame_ancestors.clone(),
        // The origins allowed to call the API from a browser are let in in local mode too.
        allowed_origins: config.cors_origins.clone(),
        signature_type: config.signature_type,
        lease: config.lease,
    };
    let state = ApiState::new(Arc::clone(&store), dispatcher.clone(), api_config);
    let token_watch = local.then(|| {
        let watch = webhookd_api::auth::watch_tokens(
            state.clone(),
            webhookd_api::auth::TOKEN_WATCH_INTERVAL,
        );
        // Private destinations were allowed for local mode only (unless set explicitly).
        let tighten = outbound.filter(|_| config.allow_private.is_none());
        tokio::spawn(async move {
            watch.await;
            if let Some(http) = tighten {
                http.set_allow_private(AllowPrivate::None);
                tracing::info!(
                    "private destinations are refused from now on (WEBHOOKD_ALLOW_PRIVATE)"
                );
            }
        })
    });
    let heartbeat = config.heartbeat.map(|every| {
        tokio::spawn(heartbeat::run(
            Arc::clone(&store),
            dispatcher.clone(),
            every,
        ))
    });

    tracing::info!(
        %listen,
        role = ?config.role,
        open_files = descriptors,
        max_connections = limits.max_connections,
        "webhookd is serving"
    );
    let service = if config.role.serves_api() {
        webhookd_api::service(state)
    } else {
        webhookd_api::ops_service(state)
    };
    let served = crate::serve::serve(listener, tls, service, limits, shutdown).await;
    if let Some(heartbeat) = heartbeat {
        heartbeat.abort();
    }
    if let Some(token_watch) = token_watch {
        token_watch.abort();
    }
    global_gauges.abort();
    if let Some(engine) = engine {
        engine.shutdown().await;
    }
    tracing::info!("webhookd stopped");
    served.context("the HTTP server failed")
}

/// `WEBHOOKD_PUBLIC_URL`, or the scheme and address this node listens on.
fn public_url(config: &Config, listen: SocketAddr) -> String {
    match &config.public_url {
        Some(url) => url.as_str().trim_end_matches('/').to_owned(),
        None if config.tls.is_some() => format!("https://{listen}"),
        None => format!("http://{listen}"),
    }
}

fn engine_config(config: &Config) -> EngineConfig {
    let node_id = format!(
        "node_{}",
        webhookd_core::TaskId::new()
            .as_str()
            .trim_start_matches("qtask_")
    );
    EngineConfig {
        lease: config.lease,
        retry_schedule: config.retry_schedule.clone(),
        retry_client_errors: config.retry_client_errors,
        endpoint_concurrency: config.endpoint_concurrency,
        max_in_flight: config.max_in_flight,
        disable_after: config.disable_after,
        svix_headers: config.svix_headers,
        retention: config.retention,
        shutdown_grace: config.request_timeout + std::time::Duration::from_secs(1),
        ..EngineConfig::new(node_id)
    }
}
