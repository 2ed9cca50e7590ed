-- Facts about the store itself, kept for good: `had_tokens` once a token was ever created
-- (a store that already holds tokens gets it now).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO settings (key, value) SELECT 'had_tokens', '1' WHERE EXISTS (SELECT 1 FROM api_tokens);
