-- Foundation: Slack event de-duplication and the audit log.
CREATE TABLE slack_events (
    event_id    TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE INDEX slack_events_received_at ON slack_events (received_at);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          BIGINT NOT NULL,
    actor_user  TEXT NOT NULL,
    actor_team  TEXT,
    roles       TEXT NOT NULL,
    tenant      TEXT,
    channel     TEXT,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    reason      TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor_user, at);
