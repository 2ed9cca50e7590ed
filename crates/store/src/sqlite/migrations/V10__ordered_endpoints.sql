-- Ordered endpoints (FIFO delivery). "Earlier" is a per-endpoint sequence number
-- (`deliveries.seq`) drawn from `endpoints.last_seq` by the transaction that inserts the pending
-- delivery; the single writer commits them in that order. A pending delivery carries a number
-- exactly when its endpoint is ordered; numbered deliveries leave `deliveries_due` (the claim
-- reaches them by their line's head, through `deliveries_line`). The trigger numbers every
-- pending delivery inserted for an ordered endpoint, and takes the claim off one created
-- claimed behind other pending ones (only the head of the line is sent at once).
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
