//! The SQLite schema, as an ordered list of migrations. A migration is never edited once
//! released: changes are new migrations, additive first (add, then remove a release later).

use rusqlite_migration::{M, Migrations};

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(INITIAL),
        M::up(RESEND_REQUESTS),
        M::up(RETENTION_INDEX),
        M::up(EVENT_TYPE_GROUPS),
        M::up(SETTINGS),
        M::up(APP_ACCESS),
        M::up(ROLLUP_MINUTES),
        M::up(MESSAGE_FILTERS),
        M::up(ENDPOINT_OPTIONS),
        M::up(ORDERED_ENDPOINTS),
        M::up(POLLING_ENDPOINTS),
    ])
}

const INITIAL: &str = r#"
CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    uid TEXT UNIQUE,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL,
    throttle_rate INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    uid TEXT,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    version INTEGER NOT NULL,
    disabled INTEGER NOT NULL,
    event_types TEXT NOT NULL,
    channels TEXT NOT NULL,
    throttle_rate INTEGER,
    metadata TEXT NOT NULL,
    headers TEXT NOT NULL,
    secret TEXT NOT NULL,
    retired_secrets TEXT NOT NULL,
    failing_since INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX endpoints_uid ON endpoints (app_id, uid) WHERE uid IS NOT NULL;
CREATE INDEX endpoints_app ON endpoints (app_id, id);

CREATE TABLE event_types (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    archived INTEGER NOT NULL,
    deprecated INTEGER NOT NULL,
    schemas TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_id TEXT,
    payload BLOB NOT NULL,
    channels TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deliver_at INTEGER,
    retain_payload_until INTEGER,
    expunged INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX messages_event_id ON messages (app_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX messages_app ON messages (app_id, id);
CREATE INDEX messages_created ON messages (created_at) WHERE expunged = 0;

CREATE TABLE deliveries (
    msg_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    status INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER,
    lease_owner TEXT,
    lease_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
) WITHOUT ROWID;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 1;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, msg_id);
CREATE INDEX deliveries_owner ON deliveries (lease_owner) WHERE lease_owner IS NOT NULL;

CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    msg_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    url TEXT NOT NULL,
    status INTEGER NOT NULL,
    response_status_code INTEGER NOT NULL,
    response TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    trigger_type INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX attempts_msg ON attempts (msg_id, id);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, id);
CREATE INDEX attempts_created ON attempts (created_at);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE idempotency (
    key_hash TEXT PRIMARY KEY,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE background_tasks (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"#;

/// Manual attempts asked of a node that does not deliver (`WEBHOOKD_ROLE=api`).
const RESEND_REQUESTS: &str = r#"
CREATE TABLE resend_requests (
    msg_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
);
"#;

/// Messages with a retention of their own (`payloadRetentionPeriod`), for the purge.
const RETENTION_INDEX: &str = r#"
CREATE INDEX messages_retain_until ON messages (retain_payload_until)
    WHERE expunged = 0 AND retain_payload_until IS NOT NULL;
"#;

/// Svix's `featureFlags` (a JSON list) and `groupName` of event types.
const EVENT_TYPE_GROUPS: &str = r#"
ALTER TABLE event_types ADD COLUMN feature_flags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE event_types ADD COLUMN group_name TEXT;
"#;

/// Facts about the store itself, kept for good: `had_tokens` once a token was ever created
/// (a store that already holds tokens gets it now).
const SETTINGS: &str = r#"
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO settings (key, value) SELECT 'had_tokens', '1' WHERE EXISTS (SELECT 1 FROM api_tokens);
"#;

/// App-scoped tokens (`appsk_…`) and browser sessions, both stored as hashes.
const APP_ACCESS: &str = r#"
CREATE TABLE app_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    session_label TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX app_tokens_app ON app_tokens (app_id);
CREATE INDEX app_tokens_expires ON app_tokens (expires_at);

CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    operator_token_hash TEXT,
    app_token_id TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
"#;

/// Deliveries per minute on every node together (see `crate::rollup`), kept two days.
const ROLLUP_MINUTES: &str = r#"
CREATE TABLE rollup_minutes (
    minute INTEGER PRIMARY KEY,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    latency_0 INTEGER NOT NULL DEFAULT 0,
    latency_1 INTEGER NOT NULL DEFAULT 0,
    latency_2 INTEGER NOT NULL DEFAULT 0,
    latency_3 INTEGER NOT NULL DEFAULT 0,
    latency_4 INTEGER NOT NULL DEFAULT 0,
    latency_5 INTEGER NOT NULL DEFAULT 0,
    latency_6 INTEGER NOT NULL DEFAULT 0,
    latency_7 INTEGER NOT NULL DEFAULT 0,
    latency_8 INTEGER NOT NULL DEFAULT 0,
    latency_9 INTEGER NOT NULL DEFAULT 0,
    latency_10 INTEGER NOT NULL DEFAULT 0,
    latency_11 INTEGER NOT NULL DEFAULT 0,
    latency_12 INTEGER NOT NULL DEFAULT 0,
    latency_13 INTEGER NOT NULL DEFAULT 0,
    latency_14 INTEGER NOT NULL DEFAULT 0,
    latency_15 INTEGER NOT NULL DEFAULT 0,
    latency_16 INTEGER NOT NULL DEFAULT 0
);
"#;

/// Indexes of the message list's filters: a message's tags and channels in tables of their
/// own (keyed to be read in id order), and its event type beside its id.
const MESSAGE_FILTERS: &str = r#"
CREATE TABLE message_tags (
    app_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    PRIMARY KEY (app_id, tag, msg_id)
) WITHOUT ROWID;
CREATE TABLE message_channels (
    app_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    PRIMARY KEY (app_id, channel, msg_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO message_tags (app_id, tag, msg_id)
    SELECT m.app_id, t.value, m.id FROM messages m, json_each(m.tags) t;
INSERT OR IGNORE INTO message_channels (app_id, channel, msg_id)
    SELECT m.app_id, c.value, m.id FROM messages m, json_each(m.channels) c;
CREATE INDEX messages_event_type ON messages (app_id, event_type, id);
"#;

/// An endpoint's payload filter (a CEL expression) and its delivery overrides: a retry
/// schedule (delays like `5s,5m`; empty is "never retry") and a request timeout. NULL keeps
/// the node's defaults.
const ENDPOINT_OPTIONS: &str = r#"
ALTER TABLE endpoints ADD COLUMN payload_filter TEXT;
ALTER TABLE endpoints ADD COLUMN retry_schedule TEXT;
ALTER TABLE endpoints ADD COLUMN request_timeout_ms INTEGER;
"#;

/// Ordered endpoints (FIFO delivery). "Earlier" is a per-endpoint sequence number
/// (`deliveries.seq`) drawn from `endpoints.last_seq` by the transaction that inserts the pending
/// delivery; the single writer commits them in that order. A pending delivery carries a number
/// exactly when its endpoint is ordered; numbered deliveries leave `deliveries_due` (the claim
/// reaches them by their line's head, through `deliveries_line`). The trigger numbers every
/// pending delivery inserted for an ordered endpoint, and takes the claim off one created
/// claimed behind other pending ones (only the head of the line is sent at once).
const ORDERED_ENDPOINTS: &str = r#"
ALTER TABLE endpoints ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN seq INTEGER;
CREATE INDEX deliveries_line ON deliveries (endpoint_id, seq) WHERE status = 1 AND seq IS NOT NULL;
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 1 AND seq IS NULL;
CREATE INDEX endpoints_ordered ON endpoints (id) WHERE ordered = 1;
CREATE TRIGGER deliveries_sequence AFTER INSERT ON deliveries
WHEN NEW.status = 1 AND NEW.seq IS NULL
    AND (SELECT ordered FROM endpoints WHERE id = NEW.endpoint_id) = 1
BEGIN
    UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
        WHERE msg_id = NEW.msg_id AND endpoint_id = NEW.endpoint_id
        AND NEW.lease_owner IS NOT NULL
        AND EXISTS (SELECT 1 FROM deliveries e WHERE e.endpoint_id = NEW.endpoint_id
            AND e.status = 1 AND e.seq IS NOT NULL);
    UPDATE endpoints SET last_seq = last_seq + 1 WHERE id = NEW.endpoint_id;
    UPDATE deliveries SET seq = (SELECT last_seq FROM endpoints WHERE id = NEW.endpoint_id)
        WHERE msg_id = NEW.msg_id AND endpoint_id = NEW.endpoint_id;
END;
"#;

/// Polling endpoints: the per-application commit sequence their streams are read in (see
/// `crate::poll`), the offsets kept per consumer, and the endpoints' poller tokens.
const POLLING_ENDPOINTS: &str = r#"
ALTER TABLE messages ADD COLUMN stream_seq INTEGER;
UPDATE messages SET stream_seq = rowid;
CREATE INDEX messages_stream ON messages (app_id, stream_seq);

CREATE TABLE poll_consumers (
    endpoint_id TEXT NOT NULL,
    consumer_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    iterator TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, consumer_id)
);
CREATE INDEX poll_consumers_app ON poll_consumers (app_id);

CREATE TABLE poller_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX poller_tokens_endpoint ON poller_tokens (endpoint_id, created_at);
CREATE INDEX poller_tokens_app ON poller_tokens (app_id);
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations()
            .validate()
            .expect("the migrations apply to an empty database");
    }
}
