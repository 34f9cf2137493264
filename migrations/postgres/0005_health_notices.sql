-- What subscribers were last told about each component's health, so a
-- transition is announced once (the row is updated compare-and-set).
CREATE TABLE health_notices (
    component   TEXT PRIMARY KEY,
    rag         TEXT NOT NULL,
    notified_at BIGINT NOT NULL
);
