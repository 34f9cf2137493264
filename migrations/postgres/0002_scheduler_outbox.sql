-- Scheduler, inbox and outbox: everything the bot must do later, durably.
--
-- timers: one-shot work with a due time. queue 'timers' holds business timers
-- (escalations, SLA checks, schedule occurrences); queue 'inbox' holds inbound
-- Slack events and interactions, de-duplicated by idem_key and run in order
-- per lane (channel). A worker claims rows with a lease; the handler's
-- transaction marks the row done, so a row's effects commit exactly once.
CREATE TABLE timers (
    id          BIGSERIAL PRIMARY KEY,
    queue       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    idem_key    TEXT NOT NULL UNIQUE,
    grp         TEXT,
    lane        TEXT,
    payload     TEXT NOT NULL,
    due_at      BIGINT NOT NULL,
    status      TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    claimed_by  TEXT,
    lease_until BIGINT,
    last_error  TEXT,
    created_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX timers_due ON timers (queue, status, due_at);
CREATE INDEX timers_lane ON timers (lane, id);
CREATE INDEX timers_grp ON timers (grp);
CREATE INDEX timers_finished ON timers (finished_at);

-- Recurring schedules (cron in a time zone). Each occurrence becomes one timer.
CREATE TABLE schedules (
    name        TEXT PRIMARY KEY,
    cron        TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    next_due_at BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Effects on the outside world, written with the decision that caused them and
-- delivered by a worker in order per lane, each exactly once.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    idem_key        TEXT NOT NULL UNIQUE,
    lane            TEXT NOT NULL,
    sink            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    in_doubt        BIGINT NOT NULL DEFAULT 0,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_by      TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    result          TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_lane ON outbox (lane, id);

-- Event de-duplication moved into the inbox (timers.idem_key).
DROP TABLE slack_events;
