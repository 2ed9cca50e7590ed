-- Manual attempts asked of a node that does not deliver (WEBHOOKD_ROLE=api), for a
-- delivering node to make.
CREATE TABLE resend_requests (
    msg_id TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    requested_at BIGINT NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
);
