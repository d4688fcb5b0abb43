//! The store behind the service: tokens, runs (each also its queue entry, claimed
//! with a lease), their events and their scenarios' history. One trait; SQLite is
//! [`crate::sqlite`].

use serde::Serialize;
use std::future::Future;

/// What a store call failed with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The URL names no database clnrm can use.
    #[error("database: {0}: expected sqlite://PATH or postgres://…")]
    Url(String),
    /// The database did not answer in time.
    #[error("database: no answer in time ({0})")]
    Timeout(&'static str),
    /// The database answered something that cannot be.
    #[error("database: {0}")]
    Lost(String),
    /// The SQLite file's directory could not be made.
    #[error("database: {}: {source}", dir.display())]
    Directory {
        /// The directory.
        dir: std::path::PathBuf,
        /// What making it said.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the same request sent again may succeed: no answer in time, the
    /// connection lost or refused (the database restarting), the pool out of
    /// connections, PostgreSQL's connection errors (class 08 but a protocol
    /// violation), shutdown and start-up (57P01–57P03), too many connections
    /// (53300), a serialization failure or deadlock (40001, 40P01), read-only after
    /// a failover (25006); SQLite busy or locked (5, 6 and their extended codes).
    pub fn is_transient(&self) -> bool {
        const POSTGRES: [&str; 7] = [
            "57P01", "57P02", "57P03", "53300", "40001", "40P01", "25006",
        ];
        const SQLITE: [&str; 6] = ["5", "6", "261", "262", "517", "773"];
        match self {
            StoreError::Timeout(_) => true,
            StoreError::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::WorkerCrashed,
            ) => true,
            StoreError::Database(sqlx::Error::Database(d)) => d.code().is_some_and(|c| {
                (c.starts_with("08") && c != "08P01")
                    || POSTGRES.contains(&c.as_ref())
                    || SQLITE.contains(&c.as_ref())
            }),
            _ => false,
        }
    }
}

/// A submission's `Idempotency-Key` as stored: hashed with the token that sent it
/// (two clients' keys never meet), and the hash of its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    /// SHA-256 of the token and the key.
    pub key: String,
    /// SHA-256 of the request (options and body).
    pub request: String,
}

/// What storing a run with a key did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The run was stored.
    New,
    /// A run of the key was stored before: its id and request hash.
    Existing {
        /// The stored run.
        id: String,
        /// Its request's hash.
        request: String,
    },
}

/// A store result.
pub type Result<T> = std::result::Result<T, StoreError>;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// GET anything.
    Read,
    /// Also submit and cancel runs.
    Run,
    /// Also manage tokens.
    Admin,
}

impl Scope {
    /// The word stored and given on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Run => "run",
            Scope::Admin => "admin",
        }
    }

    /// The scope a word names.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "read" => Some(Scope::Read),
            "run" => Some(Scope::Run),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// A token as listed (never the token itself: only its hash is kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenRow {
    /// Its id (for deleting it).
    pub id: i64,
    /// Its name.
    pub name: String,
    /// What it may do.
    pub scope: String,
    /// When it was made (ms since the epoch).
    pub created_ms: i64,
}

/// A run as stored (without its project).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RunRow {
    /// Its id.
    pub id: String,
    /// `queued`, `running`, `passed`, `failed`, `error` or `cancelled`.
    pub status: String,
    /// When it was submitted (ms since the epoch).
    pub created_ms: i64,
    /// When a worker first claimed it.
    pub started_ms: Option<i64>,
    /// When it ended.
    pub finished_ms: Option<i64>,
    /// The worker that holds (or held) it.
    pub worker: Option<String>,
    /// Claims so far (more than 1: a worker lost it and another took it over).
    pub attempts: i64,
    /// A cancel was asked for while it ran.
    pub cancel_requested: bool,
    /// The options it was submitted with.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// Counts by status and the duration, once it ended.
    #[schema(value_type = Option<Object>)]
    pub summary: Option<serde_json::Value>,
    /// Position in the list (the keyset cursor).
    #[serde(skip)]
    pub seq: i64,
}

/// A run a worker claimed.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// Its id.
    pub id: String,
    /// Its options (JSON).
    pub options: serde_json::Value,
    /// Its project, as a tar archive.
    pub bundle: Vec<u8>,
    /// The next event number (events of an earlier attempt are kept).
    pub next_event: i64,
    /// Which claim this is.
    pub attempt: i64,
}

/// What renewing a lease found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Still ours; whether a cancel was asked for.
    Held {
        /// Cancel asked for.
        cancel: bool,
    },
    /// Another worker took it over, or it ended: stop working on it.
    Lost,
}

/// One scenario's outcome in a run, for its history.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScenarioOutcome {
    /// Scenario id.
    pub scenario_id: String,
    /// Run id.
    pub run_id: String,
    /// Its status.
    pub status: String,
    /// Its duration.
    pub duration_ms: i64,
    /// When its run ended.
    pub finished_ms: i64,
}

/// How a run ended, as its worker stores it.
#[derive(Clone, Debug)]
pub struct Finished {
    /// `passed`, `failed`, `error` or `cancelled`.
    pub status: String,
    /// Counts and duration.
    pub summary: serde_json::Value,
    /// The JSON report.
    pub report: String,
    /// Its scenarios that ran.
    pub scenarios: Vec<ScenarioOutcome>,
    /// The spans each scenario collected (scenario id, JSON list).
    pub spans: Vec<(String, String)>,
    /// The baseline it recorded (`update_baseline`): the baseline file's text.
    pub baseline: Option<String>,
}

/// The service's database.
pub trait Store: Send + Sync + 'static {
    /// Stores a token's hash with its scope.
    fn create_token(
        &self,
        name: &str,
        scope: Scope,
        hash: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The scope of the token with this hash.
    fn token_scope(&self, hash: &str) -> impl Future<Output = Result<Option<Scope>>> + Send;
    /// Every token, oldest first.
    fn tokens(&self) -> impl Future<Output = Result<Vec<TokenRow>>> + Send;
    /// Deletes a token; whether there was one.
    fn delete_token(&self, id: i64) -> impl Future<Output = Result<bool>> + Send;
    /// Stores a queued run; with `key`, unless a run of that key is stored already
    /// (then that run).
    fn insert_run(
        &self,
        id: &str,
        options: &serde_json::Value,
        bundle: &[u8],
        key: Option<&Idempotency>,
    ) -> impl Future<Output = Result<Inserted>> + Send;
    /// The run submitted with this idempotency key, and its request's hash.
    fn run_by_key(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(String, String)>>> + Send;
    /// How many runs wait in the queue.
    fn queued(&self) -> impl Future<Output = Result<i64>> + Send;
    /// A run.
    fn run(&self, id: &str) -> impl Future<Output = Result<Option<RunRow>>> + Send;
    /// Runs newest first, before `cursor` (a `seq`), of `status` when given.
    fn runs(
        &self,
        status: Option<&str>,
        limit: i64,
        cursor: Option<i64>,
    ) -> impl Future<Output = Result<Vec<RunRow>>> + Send;
    /// The stored report of a run that ended.
    fn report(&self, id: &str) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Claims the oldest queued run (or one whose lease ran out) for `worker`.
    fn claim(
        &self,
        worker: &str,
        lease_ms: i64,
    ) -> impl Future<Output = Result<Option<Claimed>>> + Send;
    /// Extends the lease of `worker`'s claim `attempt` on run `id`.
    fn renew(
        &self,
        id: &str,
        worker: &str,
        attempt: i64,
        lease_ms: i64,
    ) -> impl Future<Output = Result<Renewal>> + Send;
    /// Gives a run back to the queue (a worker stopping before it ended).
    fn release(&self, id: &str, worker: &str) -> impl Future<Output = Result<()>> + Send;
    /// Stores event `seq` of run `id` if the claim `holder` (worker, attempt) still
    /// holds it; whether it did.
    fn append_event(
        &self,
        id: &str,
        holder: (&str, i64),
        seq: i64,
        data: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// The events of run `id` after `after`, in order (at most `limit`).
    fn events(
        &self,
        id: &str,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<(i64, String)>>> + Send;
    /// Ends run `id` if the claim `holder` (worker, attempt) still holds it; whether
    /// it did.
    fn finish(
        &self,
        id: &str,
        holder: (&str, i64),
        f: &Finished,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Cancels a queued run at once, or asks its worker to stop a running one; the
    /// status after and whether this call cancelled a queued run (none: no such run).
    fn cancel(&self, id: &str) -> impl Future<Output = Result<Option<(String, bool)>>> + Send;
    /// The last `limit` outcomes of a scenario, newest first.
    fn history(
        &self,
        scenario_id: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ScenarioOutcome>>> + Send;
    /// The baseline run `id` recorded (`update_baseline`).
    fn baseline(&self, id: &str) -> impl Future<Output = Result<Option<String>>> + Send;
    /// The spans scenario `scenario_id` of run `run_id` collected (a JSON list).
    fn spans(
        &self,
        run_id: &str,
        scenario_id: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Says that `worker` is alive now.
    fn heartbeat(&self, worker: &str) -> impl Future<Output = Result<()>> + Send;
    /// How many workers said so since `since_ms`.
    fn workers_alive(&self, since_ms: i64) -> impl Future<Output = Result<i64>> + Send;
    /// Scenario durations: how many took at most each of `bounds_ms` (cumulative),
    /// how many in all, and their sum in ms.
    fn durations(
        &self,
        bounds_ms: &[i64],
    ) -> impl Future<Output = Result<(Vec<i64>, i64, i64)>> + Send;
    /// How many runs are in each status.
    fn counts(&self) -> impl Future<Output = Result<Vec<(String, i64)>>> + Send;
}

/// Whether a run in this status has ended.
pub fn is_final(status: &str) -> bool {
    matches!(status, "passed" | "failed" | "error" | "cancelled")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_a_retry_can_mend_are_transient() {
        assert!(StoreError::Timeout("x").is_transient());
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(StoreError::from(sqlx::Error::Io(io)).is_transient());
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!StoreError::from(sqlx::Error::PoolClosed).is_transient());
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_transient());
        assert!(!StoreError::Url("mysql://x".into()).is_transient());
        assert!(!StoreError::Lost("x".into()).is_transient());
    }

    #[test]
    fn store_errors_read_as_database_errors() {
        assert_eq!(
            StoreError::Url("mysql://x".into()).to_string(),
            "database: mysql://x: expected sqlite://PATH or postgres://…"
        );
        let dir = StoreError::Directory {
            dir: "/x".into(),
            source: std::io::ErrorKind::Other.into(),
        };
        assert_eq!(dir.to_string(), "database: /x: other error");
        assert_eq!(
            StoreError::from(sqlx::Error::RowNotFound).to_string(),
            format!("database: {}", sqlx::Error::RowNotFound)
        );
    }
}
