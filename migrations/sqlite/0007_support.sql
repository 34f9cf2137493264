-- Support intake: requests opened from customer threads, the escalations
-- that page people until someone acknowledges, and incidents opened by
-- Alertmanager alerts.
CREATE TABLE requests (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant             TEXT NOT NULL,
    channel            TEXT NOT NULL,
    thread_ts          TEXT NOT NULL,
    opened_by          TEXT NOT NULL,
    opened_at          BIGINT NOT NULL,
    text               TEXT NOT NULL,
    status             TEXT NOT NULL,
    urgent             BIGINT NOT NULL DEFAULT 0,
    claimed_by         TEXT,
    first_response_at  BIGINT,
    first_response_by  TEXT,
    first_response_due BIGINT,
    resolution_due     BIGINT,
    breached_at        BIGINT,
    resolved_at        BIGINT,
    resolved_by        TEXT,
    last_customer_at   BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (channel, thread_ts)
);
CREATE INDEX requests_status ON requests (status, tenant);
CREATE INDEX requests_opener ON requests (channel, opened_by, status);

-- Top-level messages that joined an open request (same customer, within the
-- join window): reactions and edits on them act on the request.
CREATE TABLE request_messages (
    channel    TEXT NOT NULL,
    ts         TEXT NOT NULL,
    request_id BIGINT NOT NULL,
    PRIMARY KEY (channel, ts)
);

CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    group_key   TEXT NOT NULL,
    status      TEXT NOT NULL,
    title       TEXT NOT NULL,
    severity    TEXT NOT NULL,
    opened_at   BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE UNIQUE INDEX incidents_open_group ON incidents (group_key) WHERE status = 'open';

CREATE TABLE incident_alerts (
    incident_id BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    name        TEXT NOT NULL,
    firing      BIGINT NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
);

-- An escalation keeps the policy as it was when it started (snapshot, JSON).
CREATE TABLE escalations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    subject     TEXT NOT NULL,
    request_id  BIGINT,
    incident_id BIGINT,
    policy      TEXT NOT NULL,
    snapshot    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    started_by  TEXT,
    started_at  BIGINT NOT NULL,
    status      TEXT NOT NULL,
    round       BIGINT NOT NULL DEFAULT 0,
    level       BIGINT NOT NULL DEFAULT 0,
    paged       TEXT NOT NULL DEFAULT '[]',
    acked_by    TEXT,
    acked_at    BIGINT,
    ended_at    BIGINT
);
CREATE INDEX escalations_request ON escalations (request_id, status);
CREATE INDEX escalations_incident ON escalations (incident_id, status);
