-- The spans each scenario of a finished run collected, for its detail in the API.
CREATE TABLE scenario_spans (
    run_id      TEXT NOT NULL,
    scenario_id TEXT NOT NULL,
    spans       TEXT NOT NULL,
    PRIMARY KEY (run_id, scenario_id)
);
