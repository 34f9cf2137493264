-- Health inputs as an append-only log: every replica applies the events it
-- has not seen to its in-memory health book, so all replicas agree on what an
-- alert or a check said. rag NULL means the source cleared its input.
CREATE TABLE health_events (
    id        BIGSERIAL PRIMARY KEY,
    component TEXT NOT NULL,
    source    TEXT NOT NULL,
    rag       TEXT,
    reason    TEXT NOT NULL,
    since     BIGINT NOT NULL,
    link      TEXT
);
CREATE INDEX health_events_component ON health_events (component, source, id);
