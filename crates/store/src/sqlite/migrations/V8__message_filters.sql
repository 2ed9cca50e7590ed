-- Indexes of the message list's filters: a message's tags and channels in tables of their
-- own (keyed to be read in id order), and its event type beside its id.
CREATE TABLE message_tags (
    app_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    PRIMARY KEY (app_id, tag, msg_id)
) WITHOUT ROWID;
CREATE TABLE message_channels (
    app_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    PRIMARY KEY (app_id, channel, msg_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO message_tags (app_id, tag, msg_id)
    SELECT m.app_id, t.value, m.id FROM messages m, json_each(m.tags) t;
INSERT OR IGNORE INTO message_channels (app_id, channel, msg_id)
    SELECT m.app_id, c.value, m.id FROM messages m, json_each(m.channels) c;
CREATE INDEX messages_event_type ON messages (app_id, event_type, id);
