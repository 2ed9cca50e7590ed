-- Polling endpoints: the transaction that stored each message orders the streams they read
-- (see the store's `poll` module), the offsets kept per consumer, and the poller tokens.
ALTER TABLE messages ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX messages_stream ON messages (app_id, xid, id);

CREATE TABLE poll_consumers (
    endpoint_id TEXT COLLATE "C" NOT NULL,
    consumer_id TEXT COLLATE "C" NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    iterator TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, consumer_id)
);
CREATE INDEX poll_consumers_app ON poll_consumers (app_id);

CREATE TABLE poller_tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    hash TEXT COLLATE "C" NOT NULL UNIQUE,
    app_id TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX poller_tokens_endpoint ON poller_tokens (endpoint_id, created_at);
CREATE INDEX poller_tokens_app ON poller_tokens (app_id);
