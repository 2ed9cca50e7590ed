//! Applications, endpoints and event types.
//!
//! Functions take any client (a pooled connection or a transaction); those that write more
//! than one statement are called inside a transaction by `PostgresStore`.

use crate::key_column;
use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use webhookd_core::model::{Application, DeliveryStatus, Endpoint, EventType};
use webhookd_core::{AppId, EndpointId};
use webhookd_core::{AppKey, EndpointKey};

use tokio_postgres::types::ToSql;

use super::list::{self, Param, int, param, text};
use super::rows::{self, json, ms, opt_ms, status_code};
use super::sql::{execute, query, query_one, query_opt};
use crate::columns::{APPLICATION_COLUMNS, ENDPOINT_COLUMNS, EVENT_TYPE_COLUMNS};
use crate::lists;
use crate::{Conflict, Page, PageRequest, Result, SecretCodec, StoreError, overrides};

fn rate(rate: Option<u32>) -> Option<i64> {
    rate.map(i64::from)
}

pub(crate) async fn create_application(c: &impl GenericClient, app: &Application) -> Result<()> {
    let metadata = json(&app.metadata).unwrap_or_else(|_| "{}".into());
    execute(
        c,
        &format!(
            "INSERT INTO applications ({APPLICATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ),
        &[
            &app.id.as_str(),
            &app.uid,
            &app.name,
            &metadata,
            &rate(app.throttle_rate),
            &ms(app.created_at),
            &ms(app.updated_at),
        ],
    )
    .await
    .map_err(|error| error.taken_as(|| Conflict::application_uid(app.uid.as_deref())))?;
    Ok(())
}

pub(crate) async fn get_application(
    c: &impl GenericClient,
    key: &AppKey,
) -> Result<Option<Application>> {
    let (column, key) = key_column(key, "uid");
    let sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications WHERE {column} = $1");
    query_opt(c, &sql, &[&key])
        .await?
        .as_ref()
        .map(rows::application)
        .transpose()
}

pub(crate) async fn list_applications(
    c: &impl GenericClient,
    page: &PageRequest,
) -> Result<Page<Application>> {
    list::run(c, lists::applications(), page, rows::application).await
}

pub(crate) async fn update_application(c: &impl GenericClient, app: &Application) -> Result<()> {
    let metadata = json(&app.metadata).unwrap_or_else(|_| "{}".into());
    let changed = execute(
        c,
        "UPDATE applications SET uid = $1, name = $2, metadata = $3, throttle_rate = $4, \
         updated_at = $5 WHERE id = $6",
        &[
            &app.uid,
            &app.name,
            &metadata,
            &rate(app.throttle_rate),
            &ms(app.updated_at),
            &app.id.as_str(),
        ],
    )
    .await
    .map_err(|error| error.taken_as(|| Conflict::application_uid(app.uid.as_deref())))?;
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Deletes the application and everything under it. Call inside a transaction.
pub(crate) async fn delete_application(c: &impl GenericClient, id: &AppId) -> Result<bool> {
    let deleted = execute(c, "DELETE FROM applications WHERE id = $1", &[&id.as_str()]).await?;
    for table in [
        "endpoints",
        "deliveries",
        "attempts",
        "messages",
        "app_tokens",
        "message_tags",
        "message_channels",
        "poll_consumers",
        "poller_tokens",
    ] {
        execute(
            c,
            &format!("DELETE FROM {table} WHERE app_id = $1"),
            &[&id.as_str()],
        )
        .await?;
    }
    Ok(deleted > 0)
}

/// An endpoint's JSON columns, serialized.
struct EndpointJson {
    metadata: String,
    headers: String,
    secret: String,
    retired_secrets: String,
    retry_schedule: Option<String>,
    request_timeout_ms: Option<i64>,
}

impl EndpointJson {
    fn new(endpoint: &Endpoint, codec: &SecretCodec) -> Result<Self> {
        Ok(Self {
            metadata: json(&endpoint.metadata)?,
            headers: codec
                .seal_headers(&endpoint.headers)
                .map_err(StoreError::Internal)?,
            secret: codec.seal(&endpoint.secret),
            retired_secrets: codec
                .seal_retired(&endpoint.retired_secrets)
                .map_err(StoreError::Internal)?,
            retry_schedule: overrides::schedule_text(endpoint.retry_schedule.as_ref()),
            request_timeout_ms: overrides::timeout_ms(endpoint.request_timeout),
        })
    }
}

pub(crate) async fn create_endpoint(
    c: &impl GenericClient,
    codec: &SecretCodec,
    endpoint: &Endpoint,
) -> Result<()> {
    let values = EndpointJson::new(endpoint, codec)?;
    if endpoint.ordered {
        super::ordered::enable_numbering(c).await?;
    }
    execute(
        c,
        &format!(
            "INSERT INTO endpoints ({ENDPOINT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21)"
        ),
        &[
            &endpoint.id.as_str(),
            &endpoint.app_id.as_str(),
            &endpoint.uid,
            &endpoint.url,
            &endpoint.description,
            &endpoint.version,
            &endpoint.disabled,
            &endpoint.event_types,
            &endpoint.channels,
            &rate(endpoint.throttle_rate),
            &values.metadata,
            &values.headers,
            &values.secret,
            &values.retired_secrets,
            &opt_ms(endpoint.failing_since),
            &ms(endpoint.created_at),
            &ms(endpoint.updated_at),
            &endpoint.payload_filter,
            &values.retry_schedule,
            &values.request_timeout_ms,
            &endpoint.ordered,
        ],
    )
    .await
    .map_err(|error| error.taken_as(|| Conflict::endpoint_uid(endpoint.uid.as_deref())))?;
    Ok(())
}

pub(crate) async fn get_endpoint(
    c: &impl GenericClient,
    codec: &SecretCodec,
    app: &AppId,
    key: &EndpointKey,
) -> Result<Option<Endpoint>> {
    let (column, key) = key_column(key, "uid");
    let sql =
        format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = $1 AND {column} = $2");
    query_opt(c, &sql, &[&app.as_str(), &key])
        .await?
        .as_ref()
        .map(|row| rows::endpoint(row, codec))
        .transpose()
}

/// The endpoints with these ids, in the order asked (absent ones left out).
pub(crate) async fn get_endpoints(
    c: &impl GenericClient,
    codec: &SecretCodec,
    ids: &[EndpointId],
) -> Result<Vec<Endpoint>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<&str> = ids.iter().map(EndpointId::as_str).collect();
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = ANY($1)");
    let found = rows::all(&query(c, &sql, &[&keys]).await?, |row| {
        rows::endpoint(row, codec)
    })?;
    Ok(ids
        .iter()
        .filter_map(|id| found.iter().find(|endpoint| &endpoint.id == id).cloned())
        .collect())
}

pub(crate) async fn list_endpoints(
    c: &impl GenericClient,
    codec: &SecretCodec,
    app: &AppId,
    page: &PageRequest,
) -> Result<Page<Endpoint>> {
    list::run(c, lists::endpoints(app), page, |row| {
        rows::endpoint(row, codec)
    })
    .await
}

pub(crate) async fn list_all_endpoints(
    c: &impl GenericClient,
    codec: &SecretCodec,
    page: &PageRequest,
) -> Result<Page<Endpoint>> {
    list::run(c, lists::all_endpoints(), page, |row| {
        rows::endpoint(row, codec)
    })
    .await
}

pub(crate) async fn count_unsealed_endpoints(
    c: &impl GenericClient,
    codec: &SecretCodec,
) -> Result<u64> {
    let found = query(
        c,
        "SELECT secret, retired_secrets, headers FROM endpoints",
        &[],
    )
    .await?;
    let mut count = 0;
    for row in &found {
        let (secret, retired, headers): (&str, &str, &str) =
            (rows::get(row, 0)?, rows::get(row, 1)?, rows::get(row, 2)?);
        if codec.endpoint_needs_reseal(secret, retired, headers) {
            count += 1;
        }
    }
    Ok(count)
}

/// Replaces the endpoint; disabling it cancels its pending deliveries. Call inside a
/// transaction.
pub(crate) async fn update_endpoint(
    c: &impl GenericClient,
    codec: &SecretCodec,
    endpoint: &Endpoint,
) -> Result<()> {
    let values = EndpointJson::new(endpoint, codec)?;
    if endpoint.ordered {
        super::ordered::enable_numbering(c).await?;
    }
    let was_ordered = super::ordered::is_ordered(c, &endpoint.id).await?;
    // Every column but id, app_id and created_at is replaced.
    let changed = execute(
        c,
        "UPDATE endpoints SET uid = $3, url = $4, description = $5, version = $6, \
         disabled = $7, event_types = $8, channels = $9, throttle_rate = $10, \
         metadata = $11, headers = $12, secret = $13, retired_secrets = $14, \
         failing_since = $15, updated_at = $16, payload_filter = $17, retry_schedule = $18, \
         request_timeout_ms = $19, ordered = $20 WHERE id = $1 AND app_id = $2",
        &[
            &endpoint.id.as_str(),
            &endpoint.app_id.as_str(),
            &endpoint.uid,
            &endpoint.url,
            &endpoint.description,
            &endpoint.version,
            &endpoint.disabled,
            &endpoint.event_types,
            &endpoint.channels,
            &rate(endpoint.throttle_rate),
            &values.metadata,
            &values.headers,
            &values.secret,
            &values.retired_secrets,
            &opt_ms(endpoint.failing_since),
            &ms(endpoint.updated_at),
            &endpoint.payload_filter,
            &values.retry_schedule,
            &values.request_timeout_ms,
            &endpoint.ordered,
        ],
    )
    .await
    .map_err(|error| error.taken_as(|| Conflict::endpoint_uid(endpoint.uid.as_deref())))?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    if endpoint.disabled {
        cancel_pending(c, &endpoint.id, ms(endpoint.updated_at)).await?;
    } else if endpoint.ordered != was_ordered {
        super::ordered::reorder(c, &endpoint.id, endpoint.ordered).await?;
    }
    Ok(())
}

/// Cancels every pending delivery of an endpoint (disabled or deleted); its parameters come
/// from [`cancel_pending_params`].
pub(crate) const CANCEL_PENDING: &str = "UPDATE deliveries SET status = $1, next_attempt_at = NULL, \
     lease_owner = NULL, lease_until = NULL, updated_at = $2 WHERE endpoint_id = $3 AND status = $4";

pub(crate) fn cancel_pending_params(endpoint: &EndpointId, now_ms: i64) -> Vec<Param> {
    vec![
        param(status_code(DeliveryStatus::Canceled)),
        int(now_ms),
        text(endpoint.as_str()),
        param(status_code(DeliveryStatus::Pending)),
    ]
}

/// Cancels every pending delivery of an endpoint (disabled or deleted).
pub(crate) async fn cancel_pending(
    c: &impl GenericClient,
    endpoint: &EndpointId,
    now_ms: i64,
) -> Result<u64> {
    let params = cancel_pending_params(endpoint, now_ms);
    let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|param| param.as_ref() as _).collect();
    execute(c, CANCEL_PENDING, &params).await
}

/// Deletes the endpoint and cancels its pending deliveries. Call inside a transaction.
pub(crate) async fn delete_endpoint(
    c: &impl GenericClient,
    app: &AppId,
    id: &EndpointId,
    now: OffsetDateTime,
) -> Result<bool> {
    let deleted = execute(
        c,
        "DELETE FROM endpoints WHERE app_id = $1 AND id = $2",
        &[&app.as_str(), &id.as_str()],
    )
    .await?;
    if deleted > 0 {
        cancel_pending(c, id, ms(now)).await?;
        for table in ["poll_consumers", "poller_tokens"] {
            execute(
                c,
                &format!("DELETE FROM {table} WHERE endpoint_id = $1"),
                &[&id.as_str()],
            )
            .await?;
        }
    }
    Ok(deleted > 0)
}

/// Creates the event type, or replaces an archived one of that name; a live one is a
/// conflict. One statement, so that two nodes creating the same name cannot both succeed.
pub(crate) async fn create_event_type(
    c: &impl GenericClient,
    event_type: &EventType,
) -> Result<()> {
    let written = upsert_event_type(c, event_type, "WHERE event_types.archived").await?;
    if written == 0 {
        return Err(StoreError::Conflict(Conflict::event_type_name(
            &event_type.name,
        )));
    }
    Ok(())
}

pub(crate) async fn get_event_type(
    c: &impl GenericClient,
    name: &str,
) -> Result<Option<EventType>> {
    let sql = format!("SELECT {EVENT_TYPE_COLUMNS} FROM event_types WHERE name = $1");
    query_opt(c, &sql, &[&name])
        .await?
        .as_ref()
        .map(rows::event_type)
        .transpose()
}

pub(crate) async fn list_event_types(
    c: &impl GenericClient,
    page: &PageRequest,
    include_archived: bool,
) -> Result<Page<EventType>> {
    list::run(
        c,
        lists::event_types(include_archived),
        page,
        rows::event_type,
    )
    .await
}

pub(crate) async fn put_event_type(c: &impl GenericClient, event_type: &EventType) -> Result<()> {
    upsert_event_type(c, event_type, "").await.map(drop)
}

/// Inserts, or updates an existing row when `condition` (a `WHERE` on the existing row, or
/// nothing) allows. Returns the rows written.
async fn upsert_event_type(
    c: &impl GenericClient,
    event_type: &EventType,
    condition: &str,
) -> Result<u64> {
    let schemas = event_type.schemas.as_ref().map(json).transpose()?;
    let sql = format!(
        "INSERT INTO event_types ({EVENT_TYPE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (name) DO UPDATE SET description = $2, archived = $3, deprecated = $4, \
         schemas = $5, updated_at = $7, feature_flags = $8, group_name = $9 {condition}"
    );
    execute(
        c,
        &sql,
        &[
            &event_type.name,
            &event_type.description,
            &event_type.archived,
            &event_type.deprecated,
            &schemas,
            &ms(event_type.created_at),
            &ms(event_type.updated_at),
            &event_type.feature_flags,
            &event_type.group_name,
        ],
    )
    .await
}

pub(crate) async fn delete_event_type(
    c: &impl GenericClient,
    name: &str,
    expunge: bool,
    now: OffsetDateTime,
) -> Result<bool> {
    let changed = if expunge {
        execute(c, "DELETE FROM event_types WHERE name = $1", &[&name]).await?
    } else {
        execute(
            c,
            "UPDATE event_types SET archived = TRUE, updated_at = $1 WHERE name = $2",
            &[&ms(now), &name],
        )
        .await?
    };
    Ok(changed > 0)
}

pub(crate) async fn count_endpoints(c: &impl GenericClient, app: &AppId) -> Result<u64> {
    let row = query_one(
        c,
        "SELECT COUNT(*) FROM endpoints WHERE app_id = $1",
        &[&app.as_str()],
    )
    .await?;
    let count: i64 = rows::get(&row, 0)?;
    Ok(count.max(0) as u64)
}
