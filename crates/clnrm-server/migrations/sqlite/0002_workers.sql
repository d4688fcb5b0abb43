-- Workers say they are alive every few seconds (the `clnrm_workers_alive` metric).
CREATE TABLE workers (
    name    TEXT   NOT NULL PRIMARY KEY,
    seen_ms BIGINT NOT NULL
);
