-- App-scoped tokens (`appsk_…`) and browser sessions, both stored as hashes.
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
