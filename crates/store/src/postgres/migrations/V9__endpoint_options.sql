-- An endpoint's payload filter (a CEL expression) and its delivery overrides: a retry schedule
-- (delays like `5s,5m`; empty is "never retry") and a request timeout. NULL keeps the node's
-- defaults.
ALTER TABLE endpoints ADD COLUMN payload_filter TEXT;
ALTER TABLE endpoints ADD COLUMN retry_schedule TEXT;
ALTER TABLE endpoints ADD COLUMN request_timeout_ms BIGINT;
-- The endpoints with a filter, by application: fan-out looks for them with every message, and
-- an application without filters finds none at once.
CREATE INDEX endpoints_filtered ON endpoints (app_id) WHERE payload_filter IS NOT NULL;
