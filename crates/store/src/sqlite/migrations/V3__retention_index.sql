-- Messages with a retention of their own (`payloadRetentionPeriod`), for the purge.
CREATE INDEX messages_retain_until ON messages (retain_payload_until)
    WHERE expunged = 0 AND retain_payload_until IS NOT NULL;
