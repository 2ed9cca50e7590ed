-- Deliveries per minute on every node together (the console's overview), kept two days.
-- Every node adds into the same rows: INSERT ... ON CONFLICT (minute) DO UPDATE SET x = x + EXCLUDED.x.
CREATE TABLE rollup_minutes (
    minute BIGINT PRIMARY KEY,
    attempts BIGINT NOT NULL DEFAULT 0,
    delivered BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    retried BIGINT NOT NULL DEFAULT 0,
    latency_0 BIGINT NOT NULL DEFAULT 0,
    latency_1 BIGINT NOT NULL DEFAULT 0,
    latency_2 BIGINT NOT NULL DEFAULT 0,
    latency_3 BIGINT NOT NULL DEFAULT 0,
    latency_4 BIGINT NOT NULL DEFAULT 0,
    latency_5 BIGINT NOT NULL DEFAULT 0,
    latency_6 BIGINT NOT NULL DEFAULT 0,
    latency_7 BIGINT NOT NULL DEFAULT 0,
    latency_8 BIGINT NOT NULL DEFAULT 0,
    latency_9 BIGINT NOT NULL DEFAULT 0,
    latency_10 BIGINT NOT NULL DEFAULT 0,
    latency_11 BIGINT NOT NULL DEFAULT 0,
    latency_12 BIGINT NOT NULL DEFAULT 0,
    latency_13 BIGINT NOT NULL DEFAULT 0,
    latency_14 BIGINT NOT NULL DEFAULT 0,
    latency_15 BIGINT NOT NULL DEFAULT 0,
    latency_16 BIGINT NOT NULL DEFAULT 0
);
