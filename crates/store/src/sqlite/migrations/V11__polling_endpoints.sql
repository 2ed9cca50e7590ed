-- Polling endpoints: the per-application commit sequence their streams are read in (see
-- `crate::poll`), the offsets kept per consumer, and the endpoints' poller tokens.
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
