-- Svix's `featureFlags` (a JSON list) and `groupName` of event types.
ALTER TABLE event_types ADD COLUMN feature_flags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE event_types ADD COLUMN group_name TEXT;
