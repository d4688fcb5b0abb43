-- The runs service's store (SPEC §9). A run row is also its queue entry: a worker
-- claims it by taking a lease, renews the lease while it runs, and only the holder of
-- the lease may finish it.
CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    scope      TEXT    NOT NULL CHECK (scope IN ('read', 'run', 'admin')),
    hash       TEXT    NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);

CREATE TABLE runs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    status           TEXT    NOT NULL,
    created_ms       INTEGER NOT NULL,
    started_ms       INTEGER,
    finished_ms      INTEGER,
    worker           TEXT,
    lease_until_ms   INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    options          TEXT    NOT NULL,
    bundle           BLOB    NOT NULL,
    summary          TEXT,
    report           TEXT
);
CREATE INDEX runs_by_status ON runs (status, seq);

CREATE TABLE events (
    run_id TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    data   TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE scenario_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    scenario_id TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL,
    finished_ms INTEGER NOT NULL
);
CREATE INDEX scenario_runs_by_id ON scenario_runs (scenario_id, finished_ms);
