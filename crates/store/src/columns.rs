//! The columns each kind of row is read from, in the order both backends' row decoders read
//! them, and how many there are (the offset of what a joined row holds next).

pub(crate) const APPLICATION_COLUMNS: &str =
    "id, uid, name, metadata, throttle_rate, created_at, updated_at";

pub(crate) const ENDPOINT_COLUMNS: &str = "id, app_id, uid, url, description, version, disabled, \
     event_types, channels, throttle_rate, metadata, headers, secret, retired_secrets, \
     failing_since, created_at, updated_at, payload_filter, retry_schedule, request_timeout_ms, \
     ordered";
pub(crate) const ENDPOINT_WIDTH: usize = 21;

pub(crate) const EVENT_TYPE_COLUMNS: &str = "name, description, archived, deprecated, schemas, \
     created_at, updated_at, feature_flags, group_name";

pub(crate) const MESSAGE_COLUMNS: &str = "m.id, m.app_id, m.event_type, m.event_id, m.payload, \
     m.channels, m.tags, m.created_at, m.deliver_at, m.retain_payload_until";
pub(crate) const MESSAGE_WIDTH: usize = 10;

pub(crate) const DELIVERY_COLUMNS: &str = "d.msg_id, d.endpoint_id, d.app_id, d.status, \
     d.attempts, d.next_attempt_at, d.created_at, d.updated_at";
pub(crate) const DELIVERY_WIDTH: usize = 8;

pub(crate) const ATTEMPT_COLUMNS: &str = "a.id, a.msg_id, a.endpoint_id, a.app_id, a.url, \
     a.status, a.response_status_code, a.response, a.duration_ms, a.trigger_type, a.created_at";

pub(crate) const TASK_COLUMNS: &str = "id, kind, status, data, updated_at";

/// `columns` (unqualified) qualified by the table alias `alias`.
pub(crate) fn prefixed(alias: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|column| format!("{alias}.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_count_the_columns() {
        for (columns, width) in [
            (ENDPOINT_COLUMNS, ENDPOINT_WIDTH),
            (MESSAGE_COLUMNS, MESSAGE_WIDTH),
            (DELIVERY_COLUMNS, DELIVERY_WIDTH),
        ] {
            assert_eq!(columns.split(',').count(), width, "{columns}");
        }
        assert_eq!(prefixed("e", "id, app_id"), "e.id, e.app_id");
    }
}
