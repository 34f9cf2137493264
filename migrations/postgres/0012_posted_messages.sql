-- Where Slack put each message the outbox delivered (channel and ts), kept
-- after housekeeping deletes the outbox row at the end of the retention
-- period: an escalation card, a playbook run's card or thread root may be
-- edited or replied to weeks after it was posted, and such an edit names the
-- message by the key of the outbox row that posted it.
CREATE TABLE posted_messages (
    idem_key  TEXT PRIMARY KEY,
    channel   TEXT NOT NULL,
    ts        TEXT NOT NULL,
    posted_at BIGINT NOT NULL
);
CREATE INDEX posted_messages_at ON posted_messages (posted_at);
