//! Rows read into the domain model, once for both backends: each reader follows its column list
//! in `columns`, so that a SELECT and its reader cannot drift apart.
//!
//! Columns hold the same things on both backends: Unix milliseconds, JSON text as serde_json
//! wrote it, statuses as their codes; PostgreSQL's BOOLEAN, TEXT[] and BYTEA columns read as
//! SQLite's integers, JSON arrays and blobs do (see [`crate::db::FromValue`]).

use bytes::Bytes;
use serde::Serialize;
use time::OffsetDateTime;
use webhookd_core::model::{
    Application, Attempt, BackgroundTask, Delivery, DeliveryStatus, Endpoint, EventType, Message,
    TaskStatus, TriggerType,
};
use webhookd_core::time::to_unix_ms;
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId, TaskId};

use crate::db::{Row, corrupt};
use crate::{Result, SecretCodec, StoreError, overrides};

pub(crate) fn ms(at: OffsetDateTime) -> i64 {
    to_unix_ms(at)
}

pub(crate) fn opt_ms(at: Option<OffsetDateTime>) -> Option<i64> {
    at.map(to_unix_ms)
}

pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|error| StoreError::Internal(error.to_string()))
}

fn status_at(row: &Row<'_>, index: usize) -> Result<DeliveryStatus> {
    let code: i64 = row.get(index)?;
    DeliveryStatus::from_code(code).ok_or_else(|| corrupt(index, code))
}

pub(crate) fn application(row: &Row<'_>) -> Result<Application> {
    Ok(Application {
        id: AppId::from_trusted(row.get(0)?),
        uid: row.get(1)?,
        name: row.get(2)?,
        metadata: row.json(3)?,
        throttle_rate: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

/// Reads an endpoint from `ENDPOINT_COLUMNS` starting at column 0, opening its secrets.
pub(crate) fn endpoint(row: &Row<'_>, codec: &SecretCodec) -> Result<Endpoint> {
    Ok(Endpoint {
        id: EndpointId::from_trusted(row.get(0)?),
        app_id: AppId::from_trusted(row.get(1)?),
        uid: row.get(2)?,
        url: row.get(3)?,
        description: row.get(4)?,
        version: row.get(5)?,
        disabled: row.get(6)?,
        event_types: row.get(7)?,
        channels: row.get(8)?,
        throttle_rate: row.get(9)?,
        ordered: row.get(20)?,
        metadata: row.json(10)?,
        headers: codec
            .open_headers(row.get(11)?)
            .map_err(|error| corrupt(11, error))?,
        secret: codec
            .open(row.get(12)?)
            .map_err(|error| corrupt(12, error))?,
        retired_secrets: codec
            .open_retired(row.get(13)?)
            .map_err(|error| corrupt(13, error))?,
        failing_since: row.get(14)?,
        created_at: row.get(15)?,
        updated_at: row.get(16)?,
        payload_filter: row.get(17)?,
        retry_schedule: overrides::schedule_from(row.get::<Option<&str>>(18)?)
            .map_err(|error| corrupt(18, error))?,
        request_timeout: overrides::timeout_from(row.get(19)?),
    })
}

pub(crate) fn event_type(row: &Row<'_>) -> Result<EventType> {
    Ok(EventType {
        name: row.get(0)?,
        description: row.get(1)?,
        archived: row.get(2)?,
        deprecated: row.get(3)?,
        schemas: row
            .get::<Option<&str>>(4)?
            .map(|text| serde_json::from_str(text).map_err(|error| corrupt(4, error)))
            .transpose()?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        feature_flags: row.get(7)?,
        group_name: row.get(8)?,
    })
}

/// Reads a message from `MESSAGE_COLUMNS` starting at column `at`.
pub(crate) fn message_at(row: &Row<'_>, at: usize) -> Result<Message> {
    Ok(Message {
        id: MessageId::from_trusted(row.get(at)?),
        app_id: AppId::from_trusted(row.get(at + 1)?),
        event_type: row.get(at + 2)?,
        event_id: row.get(at + 3)?,
        payload: Bytes::from(row.get::<Vec<u8>>(at + 4)?),
        channels: row.get(at + 5)?,
        tags: row.get(at + 6)?,
        created_at: row.get(at + 7)?,
        deliver_at: row.get(at + 8)?,
        retain_payload_until: row.get(at + 9)?,
    })
}

/// Reads a delivery from `DELIVERY_COLUMNS` starting at column `at`.
pub(crate) fn delivery_at(row: &Row<'_>, at: usize) -> Result<Delivery> {
    Ok(Delivery {
        msg_id: MessageId::from_trusted(row.get(at)?),
        endpoint_id: EndpointId::from_trusted(row.get(at + 1)?),
        app_id: AppId::from_trusted(row.get(at + 2)?),
        status: status_at(row, at + 3)?,
        attempts: row.get(at + 4)?,
        next_attempt_at: row.get(at + 5)?,
        created_at: row.get(at + 6)?,
        updated_at: row.get(at + 7)?,
    })
}

pub(crate) fn attempt(row: &Row<'_>) -> Result<Attempt> {
    Ok(Attempt {
        id: AttemptId::from_trusted(row.get(0)?),
        msg_id: MessageId::from_trusted(row.get(1)?),
        endpoint_id: EndpointId::from_trusted(row.get(2)?),
        app_id: AppId::from_trusted(row.get(3)?),
        url: row.get(4)?,
        status: status_at(row, 5)?,
        response_status_code: row.get(6)?,
        response: row.get(7)?,
        duration_ms: row.get(8)?,
        trigger_type: TriggerType::from_code(row.get(9)?),
        created_at: row.get(10)?,
    })
}

pub(crate) fn task(row: &Row<'_>) -> Result<BackgroundTask> {
    Ok(BackgroundTask {
        id: TaskId::from_trusted(row.get(0)?),
        kind: row.get(1)?,
        status: match row.get::<&str>(2)? {
            "running" => TaskStatus::Running,
            "finished" => TaskStatus::Finished,
            _ => TaskStatus::Failed,
        },
        data: row.json(3)?,
        updated_at: row.get(4)?,
    })
}
