//! Applications, endpoints and event types, written once for both backends.
//!
//! Functions that write more than one statement are called inside the store's transaction
//! (SQLite's group commit, or a PostgreSQL transaction).

use time::OffsetDateTime;
use webhookd_core::model::{Application, Endpoint, EventType};
use webhookd_core::{AppId, AppKey, EndpointId, EndpointKey};

use crate::columns::{APPLICATION_COLUMNS, ENDPOINT_COLUMNS, EVENT_TYPE_COLUMNS};
use crate::db::{Db, params};
use crate::rows::{self, json};
use crate::status::{CANCELED, PENDING};
use crate::{Conflict, Page, PageRequest, Result, SecretCodec, StoreError, key_column, lists};

pub(crate) async fn create_application(db: &mut Db<'_>, app: &Application) -> Result<()> {
    let metadata = json(&app.metadata)?;
    db.execute(
        const_format::formatcp!(
            "INSERT INTO applications ({APPLICATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ),
        &params![
            app.id.as_str(),
            &app.uid,
            &app.name,
            &metadata,
            app.throttle_rate,
            app.created_at,
            app.updated_at,
        ],
    )
    .await
    .map_err(|error| error.taken_as(|| Conflict::application_uid(app.uid.as_deref())))?;
    Ok(())
}

pub(crate) async fn get_application(db: &mut Db<'_>, key: &AppKey) -> Result<Option<Application>> {
    let (column, key) = key_column(key, "uid");
    let sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications WHERE {column} = $1");
    db.query_opt(&sql, &params![key], rows::application).await
}

pub(crate) async fn list_applications(
    db: &mut Db<'_>,
    page: &PageRequest,
) -> Result<Page<Application>> {
    lists::run(db, lists::applications(), page, rows::application).await
}

pub(crate) async fn update_application(db: &mut Db<'_>, app: &Application) -> Result<()> {
    let metadata = json(&app.metadata)?;
    let changed = db
        .execute(
            "UPDATE applications SET uid = $1, name = $2, metadata = $3, throttle_rate = $4, \
             updated_at = $5 WHERE id = $6",
            &params![
                &app.uid,
                &app.name,
                &metadata,
                app.throttle_rate,
                app.updated_at,
                app.id.as_str(),
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

/// Deletes the application and everything under it.
pub(crate) async fn delete_application(db: &mut Db<'_>, id: &AppId) -> Result<bool> {
    let deleted = db
        .execute(
            "DELETE FROM applications WHERE id = $1",
            &params![id.as_str()],
        )
        .await?;
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
        let sql = format!("DELETE FROM {table} WHERE app_id = $1");
        db.execute(&sql, &params![id.as_str()]).await?;
    }
    Ok(deleted > 0)
}

/// An endpoint's columns that are not its fields as they are: JSON, sealed secrets, overrides.
struct Sealed {
    metadata: String,
    headers: String,
    secret: String,
    retired_secrets: String,
    retry_schedule: Option<String>,
    request_timeout_ms: Option<i64>,
}

impl Sealed {
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
            retry_schedule: crate::overrides::schedule_text(endpoint.retry_schedule.as_ref()),
            request_timeout_ms: crate::overrides::timeout_ms(endpoint.request_timeout),
        })
    }
}

/// Writes every column of an endpoint: inserts it, or (`update`) replaces every column but
/// `id`, `app_id` and `created_at` of the existing row. Returns the rows written.
async fn write_endpoint(
    db: &mut Db<'_>,
    codec: &SecretCodec,
    endpoint: &Endpoint,
    update: bool,
) -> Result<u64> {
    let sealed = Sealed::new(endpoint, codec)?;
    let sql = if update {
        "UPDATE endpoints SET uid = $3, url = $4, description = $5, version = $6, \
         disabled = $7, event_types = $8, channels = $9, throttle_rate = $10, metadata = $11, \
         headers = $12, secret = $13, retired_secrets = $14, failing_since = $15, \
         updated_at = $16, payload_filter = $17, retry_schedule = $18, \
         request_timeout_ms = $19, ordered = $20 WHERE id = $1 AND app_id = $2"
    } else {
        const_format::formatcp!(
            "INSERT INTO endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        )
    };
    let mut params = params![
        endpoint.id.as_str(),
        endpoint.app_id.as_str(),
        &endpoint.uid,
        &endpoint.url,
        &endpoint.description,
        endpoint.version,
        endpoint.disabled,
        &endpoint.event_types,
        &endpoint.channels,
        endpoint.throttle_rate,
        &sealed.metadata,
        &sealed.headers,
        &sealed.secret,
        &sealed.retired_secrets,
        endpoint.failing_since,
        endpoint.created_at,
        endpoint.updated_at,
        &endpoint.payload_filter,
        &sealed.retry_schedule,
        sealed.request_timeout_ms,
        endpoint.ordered,
    ]
    .to_vec();
    if update {
        // An update keeps `created_at` (PostgreSQL refuses a parameter a statement ignores).
        params.remove(15);
    }
    db.execute(sql, &params)
        .await
        .map_err(|error| error.taken_as(|| Conflict::endpoint_uid(endpoint.uid.as_deref())))
}

pub(crate) async fn create_endpoint(
    db: &mut Db<'_>,
    codec: &SecretCodec,
    endpoint: &Endpoint,
) -> Result<()> {
    if endpoint.ordered {
        crate::ordered::enable_numbering(db).await?;
    }
    write_endpoint(db, codec, endpoint, false).await?;
    Ok(())
}

pub(crate) async fn get_endpoint(
    db: &mut Db<'_>,
    codec: &SecretCodec,
    app: &AppId,
    key: &EndpointKey,
) -> Result<Option<Endpoint>> {
    let (column, key) = key_column(key, "uid");
    let sql =
        format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = $1 AND {column} = $2");
    db.query_opt(&sql, &params![app.as_str(), key], |row| {
        rows::endpoint(row, codec)
    })
    .await
}

/// The endpoints with these ids, in the order asked (absent ones left out).
pub(crate) async fn get_endpoints(
    db: &mut Db<'_>,
    codec: &SecretCodec,
    ids: &[EndpointId],
) -> Result<Vec<Endpoint>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE {}",
        db.any_of("id", "$1")
    );
    let found = db
        .query(&sql, &params![&keys], |row| rows::endpoint(row, codec))
        .await?;
    Ok(ids
        .iter()
        .filter_map(|id| found.iter().find(|endpoint| &endpoint.id == id).cloned())
        .collect())
}

pub(crate) async fn list_endpoints(
    db: &mut Db<'_>,
    codec: &SecretCodec,
    app: &AppId,
    page: &PageRequest,
) -> Result<Page<Endpoint>> {
    lists::run(db, lists::endpoints(app), page, |row| {
        rows::endpoint(row, codec)
    })
    .await
}

pub(crate) async fn list_all_endpoints(
    db: &mut Db<'_>,
    codec: &SecretCodec,
    page: &PageRequest,
) -> Result<Page<Endpoint>> {
    lists::run(db, lists::all_endpoints(), page, |row| {
        rows::endpoint(row, codec)
    })
    .await
}

pub(crate) async fn count_unsealed_endpoints(db: &mut Db<'_>, codec: &SecretCodec) -> Result<u64> {
    let unsealed = db
        .query(
            "SELECT secret, retired_secrets, headers FROM endpoints",
            &[],
            |row| Ok(codec.endpoint_needs_reseal(row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .await?;
    Ok(unsealed.into_iter().filter(|&unsealed| unsealed).count() as u64)
}

/// Replaces the endpoint; disabling it cancels its pending deliveries, and a change of
/// `ordered` lines up (or unnumbers) them.
pub(crate) async fn update_endpoint(
    db: &mut Db<'_>,
    codec: &SecretCodec,
    endpoint: &Endpoint,
) -> Result<()> {
    if endpoint.ordered {
        crate::ordered::enable_numbering(db).await?;
    }
    let was_ordered = is_ordered(db, &endpoint.id).await?;
    if write_endpoint(db, codec, endpoint, true).await? == 0 {
        return Err(StoreError::NotFound);
    }
    if endpoint.disabled {
        cancel_pending(db, &endpoint.id, endpoint.updated_at).await?;
    } else if endpoint.ordered != was_ordered {
        crate::ordered::reorder(db, &endpoint.id, endpoint.ordered).await?;
    }
    Ok(())
}

/// Whether the endpoint delivers in order (false when it does not exist).
pub(crate) async fn is_ordered(db: &mut Db<'_>, endpoint: &EndpointId) -> Result<bool> {
    let ordered = db
        .query_opt(
            "SELECT ordered FROM endpoints WHERE id = $1",
            &params![endpoint.as_str()],
            |row| row.get(0),
        )
        .await?;
    Ok(ordered.unwrap_or(false))
}

/// Cancels every pending delivery of an endpoint (disabled or deleted).
pub(crate) const CANCEL_PENDING: &str = const_format::formatcp!(
    "UPDATE deliveries SET status = {CANCELED}, next_attempt_at = NULL, lease_owner = NULL, \
     lease_until = NULL, updated_at = $1 WHERE endpoint_id = $2 AND status = {PENDING}"
);

/// Cancels every pending delivery of an endpoint (disabled or deleted).
pub(crate) async fn cancel_pending(
    db: &mut Db<'_>,
    endpoint: &EndpointId,
    now: OffsetDateTime,
) -> Result<u64> {
    db.execute(CANCEL_PENDING, &params![now, endpoint.as_str()])
        .await
}

/// Deletes the endpoint and cancels its pending deliveries.
pub(crate) async fn delete_endpoint(
    db: &mut Db<'_>,
    app: &AppId,
    id: &EndpointId,
    now: OffsetDateTime,
) -> Result<bool> {
    let deleted = db
        .execute(
            "DELETE FROM endpoints WHERE app_id = $1 AND id = $2",
            &params![app.as_str(), id.as_str()],
        )
        .await?;
    if deleted > 0 {
        cancel_pending(db, id, now).await?;
        for table in ["poll_consumers", "poller_tokens"] {
            let sql = format!("DELETE FROM {table} WHERE endpoint_id = $1");
            db.execute(&sql, &params![id.as_str()]).await?;
        }
    }
    Ok(deleted > 0)
}

/// Creates the event type, or replaces an archived one of that name; a live one is a
/// conflict. One statement, so that two nodes creating the same name cannot both succeed.
pub(crate) async fn create_event_type(db: &mut Db<'_>, event_type: &EventType) -> Result<()> {
    if upsert_event_type(db, event_type, true).await? == 0 {
        return Err(StoreError::Conflict(Conflict::event_type_name(
            &event_type.name,
        )));
    }
    Ok(())
}

pub(crate) async fn get_event_type(db: &mut Db<'_>, name: &str) -> Result<Option<EventType>> {
    db.query_opt(
        const_format::formatcp!("SELECT {EVENT_TYPE_COLUMNS} FROM event_types WHERE name = $1"),
        &params![name],
        rows::event_type,
    )
    .await
}

pub(crate) async fn list_event_types(
    db: &mut Db<'_>,
    page: &PageRequest,
    include_archived: bool,
) -> Result<Page<EventType>> {
    let list = lists::event_types(include_archived);
    lists::run(db, list, page, rows::event_type).await
}

pub(crate) async fn put_event_type(db: &mut Db<'_>, event_type: &EventType) -> Result<()> {
    upsert_event_type(db, event_type, false).await.map(drop)
}

/// Inserts the event type, or updates the existing row (`only_archived`: only an archived
/// one). Returns the rows written.
async fn upsert_event_type(
    db: &mut Db<'_>,
    event_type: &EventType,
    only_archived: bool,
) -> Result<u64> {
    const UPSERT: &str = const_format::formatcp!(
        "INSERT INTO event_types ({EVENT_TYPE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (name) DO UPDATE SET description = $2, archived = $3, deprecated = $4, \
         schemas = $5, updated_at = $7, feature_flags = $8, group_name = $9"
    );
    const UPSERT_ARCHIVED: &str = const_format::concatcp!(UPSERT, " WHERE event_types.archived");
    let schemas = event_type.schemas.as_ref().map(json).transpose()?;
    db.execute(
        if only_archived {
            UPSERT_ARCHIVED
        } else {
            UPSERT
        },
        &params![
            &event_type.name,
            &event_type.description,
            event_type.archived,
            event_type.deprecated,
            &schemas,
            event_type.created_at,
            event_type.updated_at,
            &event_type.feature_flags,
            &event_type.group_name,
        ],
    )
    .await
}

pub(crate) async fn delete_event_type(
    db: &mut Db<'_>,
    name: &str,
    expunge: bool,
    now: OffsetDateTime,
) -> Result<bool> {
    let changed = if expunge {
        db.execute("DELETE FROM event_types WHERE name = $1", &params![name])
            .await?
    } else {
        db.execute(
            "UPDATE event_types SET archived = TRUE, updated_at = $1 WHERE name = $2",
            &params![now, name],
        )
        .await?
    };
    Ok(changed > 0)
}

pub(crate) async fn count_endpoints(db: &mut Db<'_>, app: &AppId) -> Result<u64> {
    db.query_one(
        "SELECT COUNT(*) FROM endpoints WHERE app_id = $1",
        &params![app.as_str()],
        |row| row.get(0),
    )
    .await
}
