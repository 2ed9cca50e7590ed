//! Conversions between rows and the domain model: the column lists and the mapping functions,
//! kept side by side so that a SELECT and its reader cannot drift apart.

use bytes::Bytes;
use rusqlite::Row;
use rusqlite::types::Type;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use webhookd_core::model::{
    Application, Attempt, BackgroundTask, Delivery, DeliveryStatus, Endpoint, EventType, Message,
    TaskStatus, TriggerType,
};
use webhookd_core::time::{from_unix_ms, to_unix_ms};
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId, TaskId};

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

fn conversion(
    index: usize,
    error: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(error))
}

fn from_json<T: DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|error| conversion(index, error))
}

fn time_at(row: &Row<'_>, index: usize) -> rusqlite::Result<OffsetDateTime> {
    Ok(from_unix_ms(row.get(index)?))
}

fn opt_time_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<OffsetDateTime>> {
    Ok(row.get::<_, Option<i64>>(index)?.map(from_unix_ms))
}

fn status_at(row: &Row<'_>, index: usize) -> rusqlite::Result<DeliveryStatus> {
    let code: i64 = row.get(index)?;
    DeliveryStatus::from_code(code).ok_or(rusqlite::Error::IntegralValueOutOfRange(index, code))
}

pub(crate) fn application(row: &Row<'_>) -> rusqlite::Result<Application> {
    Ok(Application {
        id: AppId::from_trusted(row.get(0)?),
        uid: row.get(1)?,
        name: row.get(2)?,
        metadata: from_json(row, 3)?,
        throttle_rate: row.get(4)?,
        created_at: time_at(row, 5)?,
        updated_at: time_at(row, 6)?,
    })
}

fn codec_error(index: usize, message: String) -> rusqlite::Error {
    conversion(index, std::io::Error::other(message))
}

/// Reads an endpoint from `ENDPOINT_COLUMNS` starting at column 0, opening its secrets.
pub(crate) fn endpoint(row: &Row<'_>, codec: &SecretCodec) -> rusqlite::Result<Endpoint> {
    let secret: String = row.get(12)?;
    let retired: String = row.get(13)?;
    let headers: String = row.get(11)?;
    Ok(Endpoint {
        id: EndpointId::from_trusted(row.get(0)?),
        app_id: AppId::from_trusted(row.get(1)?),
        uid: row.get(2)?,
        url: row.get(3)?,
        description: row.get(4)?,
        version: row.get(5)?,
        disabled: row.get(6)?,
        event_types: from_json(row, 7)?,
        channels: from_json(row, 8)?,
        throttle_rate: row.get(9)?,
        ordered: row.get(20)?,
        metadata: from_json(row, 10)?,
        headers: codec
            .open_headers(&headers)
            .map_err(|error| codec_error(11, error))?,
        secret: codec
            .open(&secret)
            .map_err(|error| codec_error(12, error))?,
        retired_secrets: codec
            .open_retired(&retired)
            .map_err(|error| codec_error(13, error))?,
        failing_since: opt_time_at(row, 14)?,
        created_at: time_at(row, 15)?,
        updated_at: time_at(row, 16)?,
        payload_filter: row.get(17)?,
        retry_schedule: overrides::schedule_from(row.get::<_, Option<String>>(18)?.as_deref())
            .map_err(|error| codec_error(18, error))?,
        request_timeout: overrides::timeout_from(row.get(19)?),
    })
}

pub(crate) fn event_type(row: &Row<'_>) -> rusqlite::Result<EventType> {
    let schemas: Option<String> = row.get(4)?;
    Ok(EventType {
        name: row.get(0)?,
        description: row.get(1)?,
        archived: row.get(2)?,
        deprecated: row.get(3)?,
        schemas: schemas
            .map(|text| serde_json::from_str(&text).map_err(|error| conversion(4, error)))
            .transpose()?,
        created_at: time_at(row, 5)?,
        updated_at: time_at(row, 6)?,
        feature_flags: from_json(row, 7)?,
        group_name: row.get(8)?,
    })
}

/// Reads a message from `MESSAGE_COLUMNS` starting at column `at`.
pub(crate) fn message_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Message> {
    let payload: Vec<u8> = row.get(at + 4)?;
    Ok(Message {
        id: MessageId::from_trusted(row.get(at)?),
        app_id: AppId::from_trusted(row.get(at + 1)?),
        event_type: row.get(at + 2)?,
        event_id: row.get(at + 3)?,
        payload: Bytes::from(payload),
        channels: from_json(row, at + 5)?,
        tags: from_json(row, at + 6)?,
        created_at: time_at(row, at + 7)?,
        deliver_at: opt_time_at(row, at + 8)?,
        retain_payload_until: opt_time_at(row, at + 9)?,
    })
}

/// Reads a delivery from `DELIVERY_COLUMNS` starting at column `at`.
pub(crate) fn delivery_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        msg_id: MessageId::from_trusted(row.get(at)?),
        endpoint_id: EndpointId::from_trusted(row.get(at + 1)?),
        app_id: AppId::from_trusted(row.get(at + 2)?),
        status: status_at(row, at + 3)?,
        attempts: row.get(at + 4)?,
        next_attempt_at: opt_time_at(row, at + 5)?,
        created_at: time_at(row, at + 6)?,
        updated_at: time_at(row, at + 7)?,
    })
}

pub(crate) fn attempt(row: &Row<'_>) -> rusqlite::Result<Attempt> {
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
        created_at: time_at(row, 10)?,
    })
}

pub(crate) fn task(row: &Row<'_>) -> rusqlite::Result<BackgroundTask> {
    let status: String = row.get(2)?;
    Ok(BackgroundTask {
        id: TaskId::from_trusted(row.get(0)?),
        kind: row.get(1)?,
        status: match status.as_str() {
            "running" => TaskStatus::Running,
            "finished" => TaskStatus::Finished,
            _ => TaskStatus::Failed,
        },
        data: from_json(row, 3)?,
        updated_at: time_at(row, 4)?,
    })
}
