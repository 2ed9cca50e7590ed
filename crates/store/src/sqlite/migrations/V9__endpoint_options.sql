-- An endpoint's payload filter (a CEL expression) and its delivery overrides: a retry
-- schedule (delays like `5s,5m`; empty is "never retry") and a request timeout. NULL keeps
-- the node's defaults.
ALTER TABLE endpoints ADD COLUMN payload_filter TEXT;
ALTER TABLE endpoints ADD COLUMN retry_schedule TEXT;
ALTER TABLE endpoints ADD COLUMN request_timeout_ms INTEGER;
