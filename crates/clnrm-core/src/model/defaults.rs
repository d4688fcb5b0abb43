//! What the file format means where a file is silent: the one place these values are
//! spelled (the planner applies them; the README and the schema's descriptions say
//! them).

/// The most runs after the first a scenario may have (`retries`, `[executor]
/// retries`, `--retries`).
pub const MAX_RETRIES: u64 = 100;
/// `executor.engine_timeout_ms`: the bound on one call to the engine.
pub const ENGINE_TIMEOUT_MS: u64 = 30_000;
/// `executor.pull_timeout_ms`: the bound on pulling one image.
pub const PULL_TIMEOUT_MS: u64 = 600_000;

/// `[service.<id>] plugin`.
pub const PLUGIN: &str = "generic_container";
/// `health_check.interval_ms`: the pause between tries.
pub const HEALTH_INTERVAL_MS: u64 = 500;
/// `health_check.timeout_ms`: the bound on one try.
pub const HEALTH_TIMEOUT_MS: u64 = 5_000;
/// `health_check.retries`: tries before the service counts as unhealthy.
pub const HEALTH_RETRIES: u64 = 30;
/// `wait_for_span_timeout_secs`.
pub const WAIT_FOR_SPAN_TIMEOUT_SECS: u64 = 30;
/// How long a one-shot service (a `depends_on` target with `completed`) may run.
pub const ONE_SHOT_TIMEOUT_SECS: u64 = 300;
/// Lines of a service's log shown where it failed.
pub const LOG_TAIL_LINES: usize = 20;
/// `[otel] settle_ms`: after a scenario's last step, its spans are in once none
/// arrived for this long...
pub const SPAN_SETTLE_MS: u64 = 300;
/// `[otel] max_wait_ms`: ...or this long has passed (without `wait_for_span`).
pub const SPAN_MAX_WAIT_MS: u64 = 5_000;

/// How long a service's set-up steps (`[[service.<id>.setup]]`) may take in all, in seconds.
pub const SETUP_TIMEOUT_SECS: u64 = 600;

/// How long a service stopped for its snapshot may take to exit after SIGTERM, in seconds.
pub const SETUP_STOP_GRACE_SECS: u64 = 10;

/// Pause between a step's runs under `retry`, in milliseconds.
pub const RETRY_INTERVAL_MS: u64 = 500;
/// The most runs `retry.attempts` may ask for.
pub const RETRY_MAX_ATTEMPTS: u64 = 1000;
/// The longest pause `retry.interval_ms` may ask for, in milliseconds.
pub const RETRY_MAX_INTERVAL_MS: u64 = 600_000;

/// Time an `http` step's request may take, in milliseconds.
pub const HTTP_TIMEOUT_MS: u64 = 30_000;
