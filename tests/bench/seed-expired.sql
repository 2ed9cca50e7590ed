-- Seeds a webhookd SQLite database (after `webhookd migrate`) with 1,000,000 messages created
-- 100 days ago, each with a 1 KB payload, a delivered delivery and one attempt: retention
-- (90 days by default) has all of them to purge. Used by the retention row of BENCHMARKS.md:
--   WEBHOOKD_DATABASE_URL=sqlite:///tmp/retention/webhookd.db webhookd migrate
--   sqlite3 /tmp/retention/webhookd.db < tests/bench/seed-expired.sql
PRAGMA journal_mode = WAL;
BEGIN;
INSERT INTO applications (id, uid, name, metadata, throttle_rate, created_at, updated_at)
VALUES ('app_01SEEDEDEXPIRED00000000000', 'seeded', 'seeded', '{}', NULL, 0, 0);
CREATE TEMP TABLE seed AS
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
SELECT i, printf('msg_01SEED%017d', i) AS msg,
       CAST((unixepoch('now', '-100 days') * 1000) + i AS INTEGER) AS at
FROM n;
INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, tags, created_at,
                      deliver_at, retain_payload_until, expunged)
SELECT msg, 'app_01SEEDEDEXPIRED00000000000', 'seeded.event', NULL, randomblob(1000), '[]', '[]',
       at, NULL, NULL, 0 FROM seed;
INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at,
                        lease_owner, lease_until, created_at, updated_at)
SELECT msg, 'ep_01SEEDEDEXPIRED000000000000', 'app_01SEEDEDEXPIRED00000000000', 0, 1, NULL,
       NULL, NULL, at, at FROM seed;
INSERT INTO attempts (id, msg_id, endpoint_id, app_id, url, status, response_status_code,
                      response, duration_ms, trigger_type, created_at)
SELECT printf('atmpt_01SEED%017d', i), msg, 'ep_01SEEDEDEXPIRED000000000000',
       'app_01SEEDEDEXPIRED00000000000', 'http://127.0.0.1:9/gone', 0, 200, 'ok', 3, 0, at
FROM seed;
COMMIT;
