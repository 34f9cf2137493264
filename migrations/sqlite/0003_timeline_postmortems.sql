-- Follow-ups: an effect may name a timer kind to run once it has ended
-- (delivered, failed or abandoned), e.g. to post an issue's link in Slack once
-- the forge has created it.
ALTER TABLE outbox ADD COLUMN follow_up TEXT;

-- The timeline: what happened to a subject (a request, an incident, a thread),
-- who did it and when. Jobs append; postmortems read it.
CREATE TABLE timeline (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    subject  TEXT NOT NULL,
    at       BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    actor    TEXT,
    text     TEXT NOT NULL
);
CREATE INDEX timeline_subject ON timeline (subject, at);

-- Postmortems: one per subject, tracked until its ticket is closed.
CREATE TABLE postmortems (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    subject      TEXT NOT NULL UNIQUE,
    channel      TEXT NOT NULL,
    thread_ts    TEXT,
    tenant       TEXT,
    title        TEXT NOT NULL,
    severity     TEXT NOT NULL,
    owner        TEXT,
    forge        TEXT NOT NULL,
    repo         TEXT NOT NULL,
    status       TEXT NOT NULL,
    issue_number BIGINT,
    issue_url    TEXT,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    closed_at    BIGINT
);
CREATE INDEX postmortems_issue ON postmortems (forge, repo, issue_number);
CREATE INDEX postmortems_status ON postmortems (status);
