-- On-call: overrides of who is on call for a rotation, swaps two engineers
-- must both confirm, and what each person was last told about their
-- upcoming shifts (so a change tells exactly the people whose shifts moved).

-- An override puts user_id on call for the rotation during [starts_at,
-- ends_at); the newest (highest id) wins where overrides overlap. A confirmed
-- swap is recorded as two overrides carrying its id.
CREATE TABLE oncall_overrides (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    rotation     TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    starts_at    BIGINT NOT NULL,
    ends_at      BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    swap_id      BIGINT,
    cancelled_at BIGINT,
    cancelled_by TEXT
);
CREATE INDEX oncall_overrides_rotation ON oncall_overrides (rotation, ends_at);

-- A swap of two shifts (first_user's and second_user's); pending until both
-- have confirmed, then done (its overrides exist), or declined / expired.
CREATE TABLE oncall_swaps (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    rotation            TEXT NOT NULL,
    proposed_by         TEXT NOT NULL,
    first_user          TEXT NOT NULL,
    first_starts_at     BIGINT NOT NULL,
    first_ends_at       BIGINT NOT NULL,
    first_confirmed_at  BIGINT,
    second_user         TEXT NOT NULL,
    second_starts_at    BIGINT NOT NULL,
    second_ends_at      BIGINT NOT NULL,
    second_confirmed_at BIGINT,
    status              TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

-- What a person was last told about their shifts of a rotation up to
-- horizon_end (a JSON list of [start, end] in Unix milliseconds).
CREATE TABLE oncall_told (
    rotation    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    shifts      TEXT NOT NULL,
    horizon_end BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (rotation, user_id)
);
