-- The initial PostgreSQL schema: the same tables and columns as SQLite's, in PostgreSQL's
-- types. Times are Unix milliseconds (BIGINT), JSON objects are stored as the text serde_json
-- wrote (byte for byte what SQLite keeps), string lists are TEXT[] so that fan-out and the
-- channel and tag filters run in SQL. Ids and names are ordered with COLLATE "C", byte order,
-- as SQLite orders them, so cursors page the same whatever the server's locale.
--
-- A migration is never edited once released: changes are new files, additive first (add,
-- then remove a release later), so that two adjacent versions can share one database.

CREATE TABLE applications (
    id TEXT COLLATE "C" PRIMARY KEY,
    uid TEXT COLLATE "C" UNIQUE,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL,
    throttle_rate BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE endpoints (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT COLLATE "C" NOT NULL,
    uid TEXT COLLATE "C",
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    version BIGINT NOT NULL,
    disabled BOOLEAN NOT NULL,
    event_types TEXT[] NOT NULL,
    channels TEXT[] NOT NULL,
    throttle_rate BIGINT,
    metadata TEXT NOT NULL,
    headers TEXT NOT NULL,
    secret TEXT NOT NULL,
    retired_secrets TEXT NOT NULL,
    failing_since BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX endpoints_uid ON endpoints (app_id, uid) WHERE uid IS NOT NULL;
CREATE INDEX endpoints_app ON endpoints (app_id, id);

CREATE TABLE event_types (
    name TEXT COLLATE "C" PRIMARY KEY,
    description TEXT NOT NULL,
    archived BOOLEAN NOT NULL,
    deprecated BOOLEAN NOT NULL,
    schemas TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE messages (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT COLLATE "C" NOT NULL,
    event_type TEXT COLLATE "C" NOT NULL,
    event_id TEXT COLLATE "C",
    payload BYTEA NOT NULL,
    channels TEXT[] NOT NULL,
    tags TEXT[] NOT NULL,
    created_at BIGINT NOT NULL,
    deliver_at BIGINT,
    retain_payload_until BIGINT,
    expunged BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX messages_event_id ON messages (app_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX messages_app ON messages (app_id, id);
CREATE INDEX messages_created ON messages (created_at) WHERE NOT expunged;

CREATE TABLE deliveries (
    msg_id TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    status SMALLINT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT,
    lease_owner TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 1;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, msg_id);
CREATE INDEX deliveries_owner ON deliveries (lease_owner) WHERE lease_owner IS NOT NULL;

CREATE TABLE attempts (
    id TEXT COLLATE "C" PRIMARY KEY,
    msg_id TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    url TEXT NOT NULL,
    status SMALLINT NOT NULL,
    response_status_code INTEGER NOT NULL,
    response TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    trigger_type SMALLINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX attempts_msg ON attempts (msg_id, id);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, id);
CREATE INDEX attempts_created ON attempts (created_at);

CREATE TABLE api_tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE idempotency (
    key_hash TEXT PRIMARY KEY,
    status INTEGER NOT NULL,
    body BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE background_tasks (
    id TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
