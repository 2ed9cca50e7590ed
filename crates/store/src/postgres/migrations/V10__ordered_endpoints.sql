-- Ordered endpoints: FIFO delivery, one message in flight at a time per endpoint.
--
-- "Earlier" is a per-endpoint sequence number (`deliveries.seq`), drawn from the endpoint's
-- row (`endpoints.last_seq`) by the transaction that inserts the pending delivery. Drawing it
-- locks that row until the transaction ends, so the inserts of one ordered endpoint commit
-- one after the other, in the order of their numbers: once a number is visible, every smaller
-- one is too. (Message ids are time-sortable but made before the transaction: two concurrent
-- commits, or two nodes, can make an older id visible after a newer one.)
--
-- A pending delivery carries a number exactly when its endpoint is ordered; the claim hands
-- out only the lowest pending number of an endpoint, and only while no other delivery of it
-- is leased.
ALTER TABLE endpoints
    ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN seq BIGINT;
CREATE INDEX deliveries_line ON deliveries (endpoint_id, seq) WHERE status = 1 AND seq IS NOT NULL;
-- Numbered deliveries leave the due index: the claim reaches them by their line's head, through
-- `deliveries_line`, so a long line costs it nothing but its head.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 1 AND seq IS NULL;
CREATE INDEX endpoints_ordered ON endpoints (id) WHERE ordered;

-- Numbers every pending delivery inserted for an ordered endpoint (whichever statement inserts
-- it). A delivery created claimed (the ingesting node sends it at once) keeps its claim only
-- when it is the endpoint's only pending delivery; behind others it waits for the claim.
-- The check runs after the row lock is taken, in a statement of its own, so it sees the
-- commits of the transactions that held the lock before.
CREATE FUNCTION deliveries_sequence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE endpoints SET last_seq = last_seq + 1 WHERE id = NEW.endpoint_id AND ordered
        RETURNING last_seq INTO NEW.seq;
    IF NEW.seq IS NOT NULL AND NEW.lease_owner IS NOT NULL AND EXISTS (
        SELECT 1 FROM deliveries
        WHERE endpoint_id = NEW.endpoint_id AND status = 1 AND seq IS NOT NULL
    ) THEN
        NEW.lease_owner := NULL;
        NEW.lease_until := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER deliveries_sequence BEFORE INSERT ON deliveries
    FOR EACH ROW WHEN (NEW.status = 1 AND NEW.seq IS NULL)
    EXECUTE FUNCTION deliveries_sequence();

-- Off until an endpoint becomes ordered: the store turns it on in the transaction that makes
-- the first ordered endpoint (`ordered::enable_numbering`), so a database without ordered
-- endpoints pays nothing per inserted delivery.
ALTER TABLE deliveries DISABLE TRIGGER deliveries_sequence;
