-- Manual attempts asked of a node that does not deliver (`WEBHOOKD_ROLE=api`).
CREATE TABLE resend_requests (
    msg_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
);
