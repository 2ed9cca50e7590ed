//! Conversions between PostgreSQL rows and the domain model: the column lists and the mapping
//! functions, kept side by side so that a SELECT and its reader cannot drift apart.
//!
//! Columns hold what SQLite's hold (Unix milliseconds, JSON text as serde_json wrote it), with
//! PostgreSQL's types where they help: BOOLEAN flags, TEXT[] string lists, BYTEA payloads.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;
use webhookd_core::model::{
    Application, Attempt, BackgroundTask, Delivery, DeliveryStatus, Endpoint, EventType, Message,
    TaskStatus, TriggerType,
};
use webhookd_core::time::{from_unix_ms, to_unix_ms};
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId, TaskId};

use super::error::map_error;
use crate::{Lease, Result, SecretCodec, StoreError, overrides};

pub(crate) fn ms(at: OffsetDateTime) -> i64 {
    to_unix_ms(at)
}

/// The database's clock in Unix milliseconds, as SQL: the one clock every node's leases are
/// measured by, however far the nodes' own clocks drift apart.
pub(crate) const DB_NOW_MS: &str = "(EXTRACT(EPOCH FROM now()) * 1000)::bigint";

/// How long a lease runs, in milliseconds: its end as the node computed it, less the node's
/// own now. Added to [`DB_NOW_MS`] in SQL, it gives the lease's end on the database's clock.
pub(crate) fn lease_ms(lease: &Lease) -> i64 {
    to_unix_ms(lease.until)
        .saturating_sub(to_unix_ms(webhookd_core::time::now()))
        .max(0)
}

pub(crate) fn opt_ms(at: Option<OffsetDateTime>) -> Option<i64> {
    at.map(to_unix_ms)
}

/// A status as its SMALLINT column holds it.
pub(crate) fn status_code(status: DeliveryStatus) -> i16 {
    status as i16
}

pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|error| StoreError::Internal(error.to_string()))
}

/// A value the database holds that the model cannot: a bug or a hand-edited row.
fn corrupt(index: usize, what: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("column {index} holds an unreadable value: {what}"))
}

pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T> {
    row.try_get(index).map_err(map_error)
}

fn from_json<T: DeserializeOwned>(row: &Row, index: usize) -> Result<T> {
    let text: &str = get(row, index)?;
    serde_json::from_str(text).map_err(|error| corrupt(index, error))
}

fn time_at(row: &Row, index: usize) -> Result<OffsetDateTime> {
    Ok(from_unix_ms(get(row, index)?))
}

fn opt_time_at(row: &Row, index: usize) -> Result<Option<OffsetDateTime>> {
    Ok(get::<Option<i64>>(row, index)?.map(from_unix_ms))
}

fn status_at(row: &Row, index: usize) -> Result<DeliveryStatus> {
    let code: i16 = get(row, index)?;
    DeliveryStatus::from_code(i64::from(code)).ok_or_else(|| corrupt(index, code))
}

fn int_at<T: TryFrom<i64>>(row: &Row, index: usize) -> Result<T> {
    let value: i64 = get(row, index)?;
    T::try_from(value).map_err(|_| corrupt(index, value))
}

fn opt_rate_at(row: &Row, index: usize) -> Result<Option<u32>> {
    get::<Option<i64>>(row, index)?
        .map(|rate| u32::try_from(rate).map_err(|_| corrupt(index, rate)))
        .transpose()
}

pub(crate) fn application(row: &Row) -> Result<Application> {
    Ok(Application {
        id: AppId::from_trusted(get(row, 0)?),
        uid: get(row, 1)?,
        name: get(row, 2)?,
        metadata: from_json(row, 3)?,
        throttle_rate: opt_rate_at(row, 4)?,
        created_at: time_at(row, 5)?,
        updated_at: time_at(row, 6)?,
    })
}

/// Reads an endpoint from `ENDPOINT_COLUMNS` starting at column 0, opening its secrets.
pub(crate) fn endpoint(row: &Row, codec: &SecretCodec) -> Result<Endpoint> {
    Ok(Endpoint {
        id: EndpointId::from_trusted(get(row, 0)?),
        app_id: AppId::from_trusted(get(row, 1)?),
        uid: get(row, 2)?,
        url: get(row, 3)?,
        description: get(row, 4)?,
        version: get(row, 5)?,
        disabled: get(row, 6)?,
        event_types: get(row, 7)?,
        channels: get(row, 8)?,
        throttle_rate: opt_rate_at(row, 9)?,
        ordered: get(row, 20)?,
        metadata: from_json(row, 10)?,
        headers: codec
            .open_headers(get(row, 11)?)
            .map_err(|error| corrupt(11, error))?,
        secret: codec
            .open(get(row, 12)?)
            .map_err(|error| corrupt(12, error))?,
        retired_secrets: codec
            .open_retired(get(row, 13)?)
            .map_err(|error| corrupt(13, error))?,
        failing_since: opt_time_at(row, 14)?,
        created_at: time_at(row, 15)?,
        updated_at: time_at(row, 16)?,
        payload_filter: get(row, 17)?,
        retry_schedule: overrides::schedule_from(get::<Option<&str>>(row, 18)?)
            .map_err(|error| corrupt(18, error))?,
        request_timeout: overrides::timeout_from(get(row, 19)?),
    })
}

pub(crate) fn event_type(row: &Row) -> Result<EventType> {
    let schemas: Option<&str> = get(row, 4)?;
    Ok(EventType {
        name: get(row, 0)?,
        description: get(row, 1)?,
        archived: get(row, 2)?,
        deprecated: get(row, 3)?,
        schemas: schemas
            .map(|text| serde_json::from_str(text).map_err(|error| corrupt(4, error)))
            .transpose()?,
        created_at: time_at(row, 5)?,
        updated_at: time_at(row, 6)?,
        feature_flags: get(row, 7)?,
        group_name: get(row, 8)?,
    })
}

/// Reads a message from `MESSAGE_COLUMNS` starting at column `at`.
pub(crate) fn message_at(row: &Row, at: usize) -> Result<Message> {
    let payload: Vec<u8> = get(row, at + 4)?;
    Ok(Message {
        id: MessageId::from_trusted(get(row, at)?),
        app_id: AppId::from_trusted(get(row, at + 1)?),
        event_type: get(row, at + 2)?,
        event_id: get(row, at + 3)?,
        payload: Bytes::from(payload),
        channels: get(row, at + 5)?,
        tags: get(row, at + 6)?,
        created_at: time_at(row, at + 7)?,
        deliver_at: opt_time_at(row, at + 8)?,
        retain_payload_until: opt_time_at(row, at + 9)?,
    })
}

/// Reads a delivery from `DELIVERY_COLUMNS` starting at column `at`.
pub(crate) fn delivery_at(row: &Row, at: usize) -> Result<Delivery> {
    let attempts: i32 = get(row, at + 4)?;
    Ok(Delivery {
        msg_id: MessageId::from_trusted(get(row, at)?),
        endpoint_id: EndpointId::from_trusted(get(row, at + 1)?),
        app_id: AppId::from_trusted(get(row, at + 2)?),
        status: status_at(row, at + 3)?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt(at + 4, attempts))?,
        next_attempt_at: opt_time_at(row, at + 5)?,
        created_at: time_at(row, at + 6)?,
        updated_at: time_at(row, at + 7)?,
    })
}

pub(crate) fn attempt(row: &Row) -> Result<Attempt> {
    let code: i32 = get(row, 6)?;
    let trigger: i16 = get(row, 9)?;
    Ok(Attempt {
        id: AttemptId::from_trusted(get(row, 0)?),
        msg_id: MessageId::from_trusted(get(row, 1)?),
        endpoint_id: EndpointId::from_trusted(get(row, 2)?),
        app_id: AppId::from_trusted(get(row, 3)?),
        url: get(row, 4)?,
        status: status_at(row, 5)?,
        response_status_code: u16::try_from(code).map_err(|_| corrupt(6, code))?,
        response: get(row, 7)?,
        duration_ms: int_at(row, 8)?,
        trigger_type: TriggerType::from_code(i64::from(trigger)),
        created_at: time_at(row, 10)?,
    })
}

pub(crate) fn task(row: &Row) -> Result<BackgroundTask> {
    let status: &str = get(row, 2)?;
    Ok(BackgroundTask {
        id: TaskId::from_trusted(get(row, 0)?),
        kind: get(row, 1)?,
        status: match status {
            "running" => TaskStatus::Running,
            "finished" => TaskStatus::Finished,
            _ => TaskStatus::Failed,
        },
        data: from_json(row, 3)?,
        updated_at: time_at(row, 4)?,
    })
}

/// Maps every row with `map`, stopping at the first failure.
pub(crate) fn all<T>(rows: &[Row], map: impl FnMut(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(map).collect()
}
