-- Indexes of the message list's filters: a message's tags and channels in tables of their own,
-- keyed to be read in id order, and its event type beside its id.
CREATE TABLE message_tags (
    app_id TEXT COLLATE "C" NOT NULL,
    tag TEXT COLLATE "C" NOT NULL,
    msg_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (app_id, tag, msg_id)
);
CREATE TABLE message_channels (
    app_id TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    msg_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (app_id, channel, msg_id)
);
INSERT INTO message_tags (app_id, tag, msg_id)
    SELECT DISTINCT m.app_id, t.tag, m.id FROM messages m, unnest(m.tags) AS t(tag);
INSERT INTO message_channels (app_id, channel, msg_id)
    SELECT DISTINCT m.app_id, c.channel, m.id FROM messages m, unnest(m.channels) AS c(channel);
CREATE INDEX messages_event_type ON messages (app_id, event_type, id);
