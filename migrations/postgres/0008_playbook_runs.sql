-- Playbook runs: a state machine (requested -> awaiting_approval -> approved
-- -> running -> succeeded / failed; or rejected / expired), each move a
-- compare-and-set on status, recorded with its audit entry in one transaction.
CREATE TABLE playbook_runs (
    id               BIGSERIAL PRIMARY KEY,
    playbook         TEXT NOT NULL,
    title            TEXT NOT NULL,
    params           TEXT NOT NULL,
    plan             TEXT,
    status           TEXT NOT NULL,
    step             BIGINT NOT NULL DEFAULT 0,
    requested_by     TEXT NOT NULL,
    trigger_kind     TEXT NOT NULL,
    tenant           TEXT,
    channel          TEXT NOT NULL,
    thread_ts        TEXT,
    approvals_needed BIGINT NOT NULL,
    expires_at       BIGINT,
    outcome          TEXT,
    pr_url           TEXT,
    cards            TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX playbook_runs_status ON playbook_runs (status, created_at);
CREATE INDEX playbook_runs_playbook ON playbook_runs (playbook, created_at);

-- Approvals and rejections: one per run and person, so approvals are counted
-- per distinct approver.
CREATE TABLE playbook_decisions (
    run_id   BIGINT NOT NULL REFERENCES playbook_runs (id),
    approver TEXT NOT NULL,
    decision TEXT NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (run_id, approver)
);
