-- The runs service's store in PostgreSQL: the same tables as migrations/sqlite/, with
-- PostgreSQL's types. A run row is also its queue entry (claimed with FOR UPDATE SKIP
-- LOCKED and a lease).
CREATE TABLE tokens (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT   NOT NULL,
    scope      TEXT   NOT NULL CHECK (scope IN ('read', 'run', 'admin')),
    hash       TEXT   NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL
);

CREATE TABLE runs (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT   NOT NULL UNIQUE,
    status           TEXT   NOT NULL,
    created_ms       BIGINT NOT NULL,
    started_ms       BIGINT,
    finished_ms      BIGINT,
    worker           TEXT,
    lease_until_ms   BIGINT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    options          TEXT   NOT NULL,
    bundle           BYTEA  NOT NULL,
    summary          TEXT,
    report           TEXT
);
CREATE INDEX runs_by_status ON runs (status, seq);

CREATE TABLE events (
    run_id TEXT   NOT NULL,
    seq    BIGINT NOT NULL,
    data   TEXT   NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE scenario_runs (
    id          BIGSERIAL PRIMARY KEY,
    scenario_id TEXT   NOT NULL,
    run_id      TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    duration_ms BIGINT NOT NULL,
    finished_ms BIGINT NOT NULL
);
CREATE INDEX scenario_runs_by_id ON scenario_runs (scenario_id, finished_ms);
