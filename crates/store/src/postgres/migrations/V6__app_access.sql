-- App-scoped tokens (appsk_...) and browser sessions, both stored as hashes.
CREATE TABLE app_tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    hash TEXT COLLATE "C" NOT NULL UNIQUE,
    app_id TEXT COLLATE "C" NOT NULL,
    capabilities TEXT NOT NULL,
    session_label TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX app_tokens_app ON app_tokens (app_id);
CREATE INDEX app_tokens_expires ON app_tokens (expires_at);

CREATE TABLE sessions (
    hash TEXT COLLATE "C" PRIMARY KEY,
    operator_token_hash TEXT COLLATE "C",
    app_token_id TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
