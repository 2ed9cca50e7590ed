//! Applications, endpoints and event types.

use crate::key_column;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;
use webhookd_core::AppId;
use webhookd_core::EndpointId;
use webhookd_core::model::{Application, DeliveryStatus, Endpoint, EventType};
use webhookd_core::{AppKey, EndpointKey};

use super::list;
use super::map_error;
use super::rows::{self, json, ms, opt_ms};
use crate::columns::{APPLICATION_COLUMNS, ENDPOINT_COLUMNS, EVENT_TYPE_COLUMNS};
use crate::lists;
use crate::{Conflict, Page, PageRequest, Result, SecretCodec, StoreError, overrides};

pub(crate) fn create_application(c: &Connection, app: &Application) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO applications ({APPLICATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    ))
    .and_then(|mut insert| {
        insert.execute(params![
            app.id.as_str(),
            app.uid,
            app.name,
            json(&app.metadata).unwrap_or_else(|_| "{}".into()),
            app.throttle_rate,
            ms(app.created_at),
            ms(app.updated_at),
        ])
    })
    .map_err(|error| map_error(error).taken_as(|| Conflict::application_uid(app.uid.as_deref())))?;
    Ok(())
}

pub(crate) fn get_application(c: &Connection, key: &AppKey) -> Result<Option<Application>> {
    let (column, key) = key_column(key, "uid");
    c.prepare_cached(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM applications WHERE {column} = ?"
    ))
    .and_then(|mut select| select.query_row([key], rows::application).optional())
    .map_err(map_error)
}

pub(crate) fn list_applications(c: &Connection, page: &PageRequest) -> Result<Page<Application>> {
    list::run(c, lists::applications(), page, rows::application)
}

pub(crate) fn update_application(c: &Connection, app: &Application) -> Result<()> {
    let changed = c
        .prepare_cached(
            "UPDATE applications SET uid = ?, name = ?, metadata = ?, throttle_rate = ?, \
             updated_at = ? WHERE id = ?",
        )
        .and_then(|mut update| {
            update.execute(params![
                app.uid,
                app.name,
                json(&app.metadata).unwrap_or_else(|_| "{}".into()),
                app.throttle_rate,
                ms(app.updated_at),
                app.id.as_str(),
            ])
        })
        .map_err(|error| {
            map_error(error).taken_as(|| Conflict::application_uid(app.uid.as_deref()))
        })?;
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

pub(crate) fn delete_application(c: &Connection, id: &AppId) -> Result<bool> {
    let deleted = c
        .execute("DELETE FROM applications WHERE id = ?", [id.as_str()])
        .map_err(map_error)?;
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
        c.execute(
            &format!("DELETE FROM {table} WHERE app_id = ?"),
            [id.as_str()],
        )
        .map_err(map_error)?;
    }
    Ok(deleted > 0)
}

fn endpoint_params(
    endpoint: &Endpoint,
    codec: &SecretCodec,
) -> Result<[rusqlite::types::Value; 21]> {
    use rusqlite::types::Value;
    let opt_text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::Text);
    Ok([
        Value::Text(endpoint.id.to_string()),
        Value::Text(endpoint.app_id.to_string()),
        opt_text(&endpoint.uid),
        Value::Text(endpoint.url.clone()),
        Value::Text(endpoint.description.clone()),
        Value::Integer(endpoint.version),
        Value::Integer(i64::from(endpoint.disabled)),
        Value::Text(json(&endpoint.event_types)?),
        Value::Text(json(&endpoint.channels)?),
        endpoint
            .throttle_rate
            .map_or(Value::Null, |rate| Value::Integer(i64::from(rate))),
        Value::Text(json(&endpoint.metadata)?),
        Value::Text(
            codec
                .seal_headers(&endpoint.headers)
                .map_err(StoreError::Internal)?,
        ),
        Value::Text(codec.seal(&endpoint.secret)),
        Value::Text(
            codec
                .seal_retired(&endpoint.retired_secrets)
                .map_err(StoreError::Internal)?,
        ),
        opt_ms(endpoint.failing_since).map_or(Value::Null, Value::Integer),
        Value::Integer(ms(endpoint.created_at)),
        Value::Integer(ms(endpoint.updated_at)),
        opt_text(&endpoint.payload_filter),
        opt_text(&overrides::schedule_text(endpoint.retry_schedule.as_ref())),
        overrides::timeout_ms(endpoint.request_timeout).map_or(Value::Null, Value::Integer),
        Value::Integer(i64::from(endpoint.ordered)),
    ])
}

pub(crate) fn create_endpoint(
    c: &Connection,
    codec: &SecretCodec,
    endpoint: &Endpoint,
) -> Result<()> {
    let values = endpoint_params(endpoint, codec)?;
    c.prepare_cached(&format!(
        "INSERT INTO endpoints ({ENDPOINT_COLUMNS}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .and_then(|mut insert| insert.execute(rusqlite::params_from_iter(values)))
    .map_err(|error| {
        map_error(error).taken_as(|| Conflict::endpoint_uid(endpoint.uid.as_deref()))
    })?;
    Ok(())
}

pub(crate) fn get_endpoint(
    c: &Connection,
    codec: &SecretCodec,
    app: &AppId,
    key: &EndpointKey,
) -> Result<Option<Endpoint>> {
    let (column, key) = key_column(key, "uid");
    c.prepare_cached(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = ? AND {column} = ?"
    ))
    .and_then(|mut select| {
        select
            .query_row([app.as_str(), key], |row| rows::endpoint(row, codec))
            .optional()
    })
    .map_err(map_error)
}

pub(crate) fn get_endpoints(
    c: &Connection,
    codec: &SecretCodec,
    ids: &[EndpointId],
) -> Result<Vec<Endpoint>> {
    let mut select = c
        .prepare_cached(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = ?"
        ))
        .map_err(map_error)?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(endpoint) = select
            .query_row([id.as_str()], |row| rows::endpoint(row, codec))
            .optional()
            .map_err(map_error)?
        {
            found.push(endpoint);
        }
    }
    Ok(found)
}

pub(crate) fn list_endpoints(
    c: &Connection,
    codec: &SecretCodec,
    app: &AppId,
    page: &PageRequest,
) -> Result<Page<Endpoint>> {
    list::run(c, lists::endpoints(app), page, |row| {
        rows::endpoint(row, codec)
    })
}

pub(crate) fn list_all_endpoints(
    c: &Connection,
    codec: &SecretCodec,
    page: &PageRequest,
) -> Result<Page<Endpoint>> {
    list::run(c, lists::all_endpoints(), page, |row| {
        rows::endpoint(row, codec)
    })
}

pub(crate) fn count_unsealed_endpoints(c: &Connection, codec: &SecretCodec) -> Result<u64> {
    let mut select = c
        .prepare("SELECT secret, retired_secrets, headers FROM endpoints")
        .map_err(map_error)?;
    let mut rows = select.query([]).map_err(map_error)?;
    let mut count = 0;
    while let Some(row) = rows.next().map_err(map_error)? {
        let (secret, retired, headers): (String, String, String) = (
            row.get(0).map_err(map_error)?,
            row.get(1).map_err(map_error)?,
            row.get(2).map_err(map_error)?,
        );
        if codec.endpoint_needs_reseal(&secret, &retired, &headers) {
            count += 1;
        }
    }
    Ok(count)
}

pub(crate) fn update_endpoint(
    c: &Connection,
    codec: &SecretCodec,
    endpoint: &Endpoint,
) -> Result<()> {
    let values = endpoint_params(endpoint, codec)?;
    let was_ordered = super::ordered::is_ordered(c, &endpoint.id)?;
    // Every column but id, app_id and created_at is replaced.
    let changed = c
        .prepare_cached(
            "UPDATE endpoints SET uid = ?3, url = ?4, description = ?5, version = ?6, \
             disabled = ?7, event_types = ?8, channels = ?9, throttle_rate = ?10, metadata = ?11, \
             headers = ?12, secret = ?13, retired_secrets = ?14, failing_since = ?15, \
             updated_at = ?17, payload_filter = ?18, retry_schedule = ?19, \
             request_timeout_ms = ?20, ordered = ?21 WHERE id = ?1 AND app_id = ?2",
        )
        .and_then(|mut update| update.execute(rusqlite::params_from_iter(values)))
        .map_err(|error| {
            map_error(error).taken_as(|| Conflict::endpoint_uid(endpoint.uid.as_deref()))
        })?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    if endpoint.disabled {
        cancel_pending(c, &endpoint.id, ms(endpoint.updated_at))?;
    } else if endpoint.ordered != was_ordered {
        super::ordered::reorder(c, &endpoint.id, endpoint.ordered)?;
    }
    Ok(())
}

/// Cancels every pending delivery of an endpoint (disabled or deleted).
pub(crate) fn cancel_pending(c: &Connection, endpoint: &EndpointId, now_ms: i64) -> Result<usize> {
    c.prepare_cached(
        "UPDATE deliveries SET status = ?, next_attempt_at = NULL, lease_owner = NULL, \
         lease_until = NULL, updated_at = ? WHERE endpoint_id = ? AND status = ?",
    )
    .and_then(|mut update| {
        update.execute(params![
            DeliveryStatus::Canceled.code(),
            now_ms,
            endpoint.as_str(),
            DeliveryStatus::Pending.code()
        ])
    })
    .map_err(map_error)
}

pub(crate) fn delete_endpoint(
    c: &Connection,
    app: &AppId,
    id: &EndpointId,
    now: OffsetDateTime,
) -> Result<bool> {
    let deleted = c
        .execute(
            "DELETE FROM endpoints WHERE app_id = ? AND id = ?",
            [app.as_str(), id.as_str()],
        )
        .map_err(map_error)?;
    if deleted > 0 {
        cancel_pending(c, id, ms(now))?;
        for table in ["poll_consumers", "poller_tokens"] {
            c.execute(
                &format!("DELETE FROM {table} WHERE endpoint_id = ?"),
                [id.as_str()],
            )
            .map_err(map_error)?;
        }
    }
    Ok(deleted > 0)
}

fn event_type_params(event_type: &EventType) -> Result<[rusqlite::types::Value; 9]> {
    use rusqlite::types::Value;
    Ok([
        Value::Text(event_type.name.clone()),
        Value::Text(event_type.description.clone()),
        Value::Integer(i64::from(event_type.archived)),
        Value::Integer(i64::from(event_type.deprecated)),
        match &event_type.schemas {
            Some(schemas) => Value::Text(json(schemas)?),
            None => Value::Null,
        },
        Value::Integer(ms(event_type.created_at)),
        Value::Integer(ms(event_type.updated_at)),
        Value::Text(json(&event_type.feature_flags)?),
        match &event_type.group_name {
            Some(group) => Value::Text(group.clone()),
            None => Value::Null,
        },
    ])
}

pub(crate) fn create_event_type(c: &Connection, event_type: &EventType) -> Result<()> {
    if get_event_type(c, &event_type.name)?.is_some_and(|existing| !existing.archived) {
        return Err(StoreError::Conflict(Conflict::event_type_name(
            &event_type.name,
        )));
    }
    put_event_type(c, event_type)
}

pub(crate) fn get_event_type(c: &Connection, name: &str) -> Result<Option<EventType>> {
    c.prepare_cached(&format!(
        "SELECT {EVENT_TYPE_COLUMNS} FROM event_types WHERE name = ?"
    ))
    .and_then(|mut select| select.query_row([name], rows::event_type).optional())
    .map_err(map_error)
}

pub(crate) fn list_event_types(
    c: &Connection,
    page: &PageRequest,
    include_archived: bool,
) -> Result<Page<EventType>> {
    list::run(
        c,
        lists::event_types(include_archived),
        page,
        rows::event_type,
    )
}

pub(crate) fn put_event_type(c: &Connection, event_type: &EventType) -> Result<()> {
    let values = event_type_params(event_type)?;
    c.prepare_cached(&format!(
        "INSERT INTO event_types ({EVENT_TYPE_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (name) DO UPDATE SET description = ?2, archived = ?3, deprecated = ?4, \
         schemas = ?5, updated_at = ?7, feature_flags = ?8, group_name = ?9"
    ))
    .and_then(|mut upsert| upsert.execute(rusqlite::params_from_iter(values)))
    .map_err(map_error)?;
    Ok(())
}

pub(crate) fn delete_event_type(
    c: &Connection,
    name: &str,
    expunge: bool,
    now: OffsetDateTime,
) -> Result<bool> {
    let changed = if expunge {
        c.execute("DELETE FROM event_types WHERE name = ?", [name])
    } else {
        c.execute(
            "UPDATE event_types SET archived = 1, updated_at = ? WHERE name = ?",
            params![ms(now), name],
        )
    }
    .map_err(map_error)?;
    Ok(changed > 0)
}

pub(crate) fn count_endpoints(c: &Connection, app: &AppId) -> Result<u64> {
    c.prepare_cached("SELECT COUNT(*) FROM endpoints WHERE app_id = ?")
        .and_then(|mut count| count.query_row([app.as_str()], |row| row.get(0)))
        .map_err(map_error)
}
