-- Svix's featureFlags and groupName of event types.
ALTER TABLE event_types ADD COLUMN feature_flags TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE event_types ADD COLUMN group_name TEXT;
