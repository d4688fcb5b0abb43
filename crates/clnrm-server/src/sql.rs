//! The store in SQL, one implementation for both databases through sqlx's `Any`
//! driver: SQLite (the default: embedded, nothing to install; WAL and a busy timeout so
//! that several processes can share one file) and PostgreSQL (for workers on several
//! machines). Queries use `$N` parameters, which both understand; what differs (the
//! schema's types, how a claim locks) is chosen by [`Backend`]. Migrations of
//! `migrations/<backend>/` are applied at start.

use crate::now_ms;
use crate::store::{
    Claimed, Finished, Idempotency, Inserted, Renewal, Result, RunRow, ScenarioOutcome, Scope,
    Store, StoreError, TokenRow,
};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use std::str::FromStr;

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://PATH`.
    Sqlite,
    /// `postgres://…`.
    Postgres,
}

/// Claims a run may have before it ends as an error.
pub const MAX_ATTEMPTS: i64 = 3;

/// The migrations of each backend, in order: (version, SQL).
const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_workers.sql")),
    (3, include_str!("../migrations/sqlite/0003_spans.sql")),
    (4, include_str!("../migrations/sqlite/0004_baselines.sql")),
    (5, include_str!("../migrations/sqlite/0005_idempotency.sql")),
];
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_workers.sql")),
    (3, include_str!("../migrations/postgres/0003_spans.sql")),
    (4, include_str!("../migrations/postgres/0004_baselines.sql")),
    (
        5,
        include_str!("../migrations/postgres/0005_idempotency.sql"),
    ),
];

/// A database.
#[derive(Clone, Debug)]
pub struct Sql {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer: this process's writes queue here instead of colliding in
    /// SQLite's lock, whose busy handler sleeps (other processes still meet the busy
    /// timeout).
    writes: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Backend {
    /// The backend of a URL, if it names one this store knows.
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite://") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

impl Sql {
    /// Opens the database at `url` (an SQLite file and its directory are made when
    /// missing) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url).ok_or_else(|| StoreError::Url(url.to_owned()))?;
        let url = match backend {
            Backend::Sqlite => {
                let path = url.trim_start_matches("sqlite://");
                if let Some(dir) = std::path::Path::new(path).parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                        dir: dir.to_path_buf(),
                        source,
                    })?;
                }
                format!("sqlite://{path}?mode=rwc")
            }
            Backend::Postgres => url.to_owned(),
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        let db = Self {
            pool,
            backend,
            writes: Default::default(),
        };
        db.migrate().await?;
        Ok(db)
    }

    /// Holds this process's SQLite write turn (PostgreSQL: none needed).
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writes.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Which database it is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The time leases are counted in, in ms since the epoch: PostgreSQL's clock,
    /// the one every worker on every host shares (their own clocks may drift
    /// apart); SQLite's file is one machine's, whose clock this is.
    async fn clock(&self) -> Result<i64> {
        match self.backend {
            Backend::Sqlite => Ok(now_ms()),
            Backend::Postgres => Ok(sqlx::query_scalar(
                "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            )
            .fetch_one(&self.pool)
            .await?),
        }
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // One process migrates at a time; the others wait, then find it done.
            tx.execute("SELECT pg_advisory_xact_lock(7878)").await?;
        }
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .await?;
        let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?;
        let all = match self.backend {
            Backend::Sqlite => SQLITE,
            Backend::Postgres => POSTGRES,
        };
        for (version, sql) in all {
            if done.contains(version) {
                continue;
            }
            tx.execute(*sql).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)")
                .bind(version)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

const RUN_COLUMNS: &str = "seq, id, status, created_ms, started_ms, finished_ms, worker, attempts, cancel_requested, options, summary";

fn run_row(r: &AnyRow) -> Result<RunRow> {
    let json = |s: Option<String>| s.and_then(|t| serde_json::from_str(&t).ok());
    Ok(RunRow {
        seq: r.try_get("seq")?,
        id: r.try_get("id")?,
        status: r.try_get("status")?,
        created_ms: r.try_get("created_ms")?,
        started_ms: r.try_get("started_ms")?,
        finished_ms: r.try_get("finished_ms")?,
        worker: r.try_get("worker")?,
        attempts: r.try_get("attempts")?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
        options: json(r.try_get("options")?).unwrap_or_default(),
        summary: json(r.try_get("summary")?),
    })
}

impl Store for Sql {
    async fn create_token(&self, name: &str, scope: Scope, hash: &str) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query("INSERT INTO tokens (name, scope, hash, created_ms) VALUES ($1, $2, $3, $4)")
            .bind(name)
            .bind(scope.as_str())
            .bind(hash)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn token_scope(&self, hash: &str) -> Result<Option<Scope>> {
        let scope: Option<String> = sqlx::query_scalar("SELECT scope FROM tokens WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(scope.as_deref().and_then(Scope::parse))
    }

    async fn tokens(&self) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query("SELECT id, name, scope, created_ms FROM tokens ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    scope: r.try_get("scope")?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect()
    }

    async fn delete_token(&self, id: i64) -> Result<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM tokens WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_run(
        &self,
        id: &str,
        options: &serde_json::Value,
        bundle: &[u8],
        key: Option<&Idempotency>,
    ) -> Result<Inserted> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "INSERT INTO runs (id, status, created_ms, options, bundle, idempotency_key, request_hash) \
             VALUES ($1, 'queued', $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(id)
        .bind(now_ms())
        .bind(options.to_string())
        .bind(bundle.to_vec())
        .bind(key.map(|k| k.key.clone()))
        .bind(key.map(|k| k.request.clone()))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Inserted::New);
        }
        // Another submission with the key was stored first.
        let key = key.map(|k| k.key.as_str()).unwrap_or_default();
        match self.run_by_key(key).await? {
            Some((id, request)) => Ok(Inserted::Existing { id, request }),
            None => Err(StoreError::Lost(format!(
                "a run with this Idempotency-Key was stored and is gone (run {id} not stored)"
            ))),
        }
    }

    async fn run_by_key(&self, key: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT id, request_hash FROM runs WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get::<Option<String>, _>("request_hash")?
                    .unwrap_or_default(),
            ))
        })
        .transpose()
    }

    async fn queued(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE status = 'queued'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn run(&self, id: &str) -> Result<Option<RunRow>> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_row).transpose()
    }

    async fn runs(
        &self,
        status: Option<&str>,
        limit: i64,
        cursor: Option<i64>,
    ) -> Result<Vec<RunRow>> {
        let cursor = cursor.unwrap_or(i64::MAX);
        let by_status = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE status = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        );
        let all =
            format!("SELECT {RUN_COLUMNS} FROM runs WHERE seq < $1 ORDER BY seq DESC LIMIT $2");
        let rows = match status {
            Some(s) => sqlx::query(&by_status)
                .bind(s.to_owned())
                .bind(cursor)
                .bind(limit),
            None => sqlx::query(&all).bind(cursor).bind(limit),
        }
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_row).collect()
    }

    async fn report(&self, id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar::<_, Option<String>>("SELECT report FROM runs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }

    async fn claim(&self, worker: &str, lease_ms: i64) -> Result<Option<Claimed>> {
        let _turn = self.write_turn().await;
        let now = self.clock().await?;
        // A run whose worker was asked to cancel it and then vanished is cancelled.
        sqlx::query(
            "UPDATE runs SET status = 'cancelled', finished_ms = $1 WHERE status = 'running' AND cancel_requested = 1 AND lease_until_ms < $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        // A run whose worker was lost MAX_ATTEMPTS times ends as an error instead of
        // taking down one more (a project that kills its worker).
        sqlx::query(&format!(
            "UPDATE runs SET status = 'error', finished_ms = $1, \
             summary = '{{\"message\": \"its worker was lost {MAX_ATTEMPTS} times; not run again\"}}' \
             WHERE status = 'running' AND lease_until_ms < $1 AND attempts >= {MAX_ATTEMPTS}"
        ))
        .bind(now)
        .execute(&self.pool)
        .await?;
        // SQLite runs the statement under its one writer lock; PostgreSQL skips the
        // rows other claims hold.
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let row = sqlx::query(&format!(
            "UPDATE runs SET status = 'running', worker = $1, lease_until_ms = $2, \
             started_ms = COALESCE(started_ms, $3), attempts = attempts + 1 \
             WHERE seq = (SELECT seq FROM runs WHERE status = 'queued' \
                          OR (status = 'running' AND lease_until_ms < $3) ORDER BY seq LIMIT 1{lock}) \
             RETURNING id, options, bundle, attempts"
        ))
        .bind(worker)
        .bind(now + lease_ms)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.try_get("id")?;
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events WHERE run_id = $1")
            .bind(&id)
            .fetch_one(&self.pool)
            .await?;
        let options: String = row.try_get("options")?;
        Ok(Some(Claimed {
            id,
            options: serde_json::from_str(&options).unwrap_or_default(),
            bundle: row.try_get("bundle")?,
            next_event: last.unwrap_or(0) + 1,
            attempt: row.try_get("attempts")?,
        }))
    }

    async fn renew(&self, id: &str, worker: &str, attempt: i64, lease_ms: i64) -> Result<Renewal> {
        let _turn = self.write_turn().await;
        let cancel: Option<i64> = sqlx::query_scalar(
            "UPDATE runs SET lease_until_ms = $1 WHERE id = $2 AND worker = $3 AND attempts = $4 AND status = 'running' RETURNING cancel_requested",
        )
        .bind(self.clock().await? + lease_ms)
        .bind(id)
        .bind(worker)
        .bind(attempt)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match cancel {
            Some(c) => Renewal::Held { cancel: c != 0 },
            None => Renewal::Lost,
        })
    }

    async fn release(&self, id: &str, worker: &str) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE runs SET status = 'queued', worker = NULL, lease_until_ms = NULL WHERE id = $1 AND worker = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn append_event(
        &self,
        id: &str,
        holder: (&str, i64),
        seq: i64,
        data: &str,
    ) -> Result<bool> {
        let _turn = self.write_turn().await;
        // Only the claim that holds the run writes its events: a worker that lost it
        // cannot take the numbers of the attempt that took over. An event sent again
        // (its first answer lost with the connection) finds itself stored: the same
        // data at the same number counts as stored, other data there does not.
        let done = sqlx::query(
            "INSERT INTO events (run_id, seq, data) SELECT $1, $2, $3 \
             WHERE EXISTS (SELECT 1 FROM runs WHERE id = $1 AND worker = $4 AND attempts = $5 AND status = 'running') \
             ON CONFLICT (run_id, seq) DO UPDATE SET data = excluded.data WHERE events.data = excluded.data",
        )
        .bind(id)
        .bind(seq)
        .bind(data)
        .bind(holder.0)
        .bind(holder.1)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn events(&self, id: &str, after: i64, limit: i64) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT seq, data FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("seq")?, r.try_get("data")?)))
            .collect()
    }

    async fn finish(&self, id: &str, (worker, attempt): (&str, i64), f: &Finished) -> Result<bool> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE runs SET status = $1, summary = $2, report = $3, finished_ms = $4, lease_until_ms = NULL, baseline = $8 \
             WHERE id = $5 AND worker = $6 AND attempts = $7 AND status = 'running'",
        )
        .bind(&f.status)
        .bind(f.summary.to_string())
        .bind(&f.report)
        .bind(now)
        .bind(id)
        .bind(worker)
        .bind(attempt)
        .bind(f.baseline.clone())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            for s in &f.scenarios {
                sqlx::query(
                    "INSERT INTO scenario_runs (scenario_id, run_id, status, duration_ms, finished_ms) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&s.scenario_id)
                .bind(id)
                .bind(&s.status)
                .bind(s.duration_ms)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            for (scenario, spans) in &f.spans {
                sqlx::query(
                    "INSERT INTO scenario_spans (run_id, scenario_id, spans) VALUES ($1, $2, $3)",
                )
                .bind(id)
                .bind(scenario)
                .bind(spans)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn cancel(&self, id: &str) -> Result<Option<(String, bool)>> {
        let _turn = self.write_turn().await;
        // A run cancelled before it ran has an empty report: it ended.
        let report = serde_json::json!({
            "run_id": id,
            "interrupted": true,
            "summary": {"passed": 0, "flaky": 0, "failed": 0, "errors": 0, "cached": 0, "skipped": 0, "duration_ms": 0},
            "scenarios": [],
        })
        .to_string();
        let now_cancelled = sqlx::query(
            "UPDATE runs SET status = 'cancelled', finished_ms = $1, report = $3 WHERE id = $2 AND status = 'queued'",
        )
        .bind(now_ms())
        .bind(id)
        .bind(report)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        sqlx::query("UPDATE runs SET cancel_requested = 1 WHERE id = $1 AND status = 'running'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(status.map(|s| (s, now_cancelled)))
    }

    async fn history(&self, scenario_id: &str, limit: i64) -> Result<Vec<ScenarioOutcome>> {
        let rows = sqlx::query(
            "SELECT scenario_id, run_id, status, duration_ms, finished_ms FROM scenario_runs \
             WHERE scenario_id = $1 ORDER BY finished_ms DESC, id DESC LIMIT $2",
        )
        .bind(scenario_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScenarioOutcome {
                    scenario_id: r.try_get("scenario_id")?,
                    run_id: r.try_get("run_id")?,
                    status: r.try_get("status")?,
                    duration_ms: r.try_get("duration_ms")?,
                    finished_ms: r.try_get("finished_ms")?,
                })
            })
            .collect()
    }

    async fn baseline(&self, id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar::<_, Option<String>>("SELECT baseline FROM runs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }

    async fn spans(&self, run_id: &str, scenario_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT spans FROM scenario_spans WHERE run_id = $1 AND scenario_id = $2",
        )
        .bind(run_id)
        .bind(scenario_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn heartbeat(&self, worker: &str) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO workers (name, seen_ms) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET seen_ms = excluded.seen_ms",
        )
        .bind(worker)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn workers_alive(&self, since_ms: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM workers WHERE seen_ms >= $1")
                .bind(since_ms)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn durations(&self, bounds_ms: &[i64]) -> Result<(Vec<i64>, i64, i64)> {
        // PostgreSQL sums to NUMERIC: cast back to what both databases read as i64.
        let mut sql = String::from(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(duration_ms), 0) AS BIGINT) AS total",
        );
        for (i, b) in bounds_ms.iter().enumerate() {
            sql.push_str(&format!(
                ", CAST(COALESCE(SUM(CASE WHEN duration_ms <= {b} THEN 1 ELSE 0 END), 0) AS BIGINT) AS b{i}"
            ));
        }
        sql.push_str(" FROM scenario_runs");
        let row = sqlx::query(&sql).fetch_one(&self.pool).await?;
        let buckets = (0..bounds_ms.len())
            .map(|i| row.try_get::<i64, _>(format!("b{i}").as_str()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok((buckets, row.try_get("n")?, row.try_get("total")?))
    }

    async fn counts(&self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM runs GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }
}
