//! The store in SQLite (the default: embedded, nothing to install): WAL, a busy
//! timeout so that several processes on one file wait instead of failing, the
//! migrations of `migrations/sqlite/` applied at start. A claim is one `UPDATE …
//! RETURNING`, which SQLite runs under its single writer lock, so two workers never
//! take the same run.

use crate::now_ms;
use crate::store::{
    Claimed, Finished, Renewal, Result, RunRow, ScenarioOutcome, Scope, Store, StoreError,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// The migrations, in order: (version, SQL).
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/sqlite/0001_init.sql"))];

/// A SQLite database.
#[derive(Clone, Debug)]
pub struct Sqlite {
    pool: SqlitePool,
}

impl Sqlite {
    /// Opens (creating it and its directory when missing) the database at `url`
    /// (`sqlite://path`), and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        if let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        let db = Self { pool };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?;
        for (version, sql) in MIGRATIONS {
            if done.contains(version) {
                continue;
            }
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)")
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

fn run_row(r: &sqlx::sqlite::SqliteRow) -> Result<RunRow> {
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

impl Store for Sqlite {
    async fn create_token(&self, name: &str, scope: Scope, hash: &str) -> Result<()> {
        sqlx::query("INSERT INTO tokens (name, scope, hash, created_ms) VALUES (?, ?, ?, ?)")
            .bind(name)
            .bind(scope.as_str())
            .bind(hash)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn token_scope(&self, hash: &str) -> Result<Option<Scope>> {
        let scope: Option<String> = sqlx::query_scalar("SELECT scope FROM tokens WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(scope.as_deref().and_then(Scope::parse))
    }

    async fn insert_run(&self, id: &str, options: &serde_json::Value, bundle: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO runs (id, status, created_ms, options, bundle) VALUES (?, 'queued', ?, ?, ?)",
        )
        .bind(id)
        .bind(now_ms())
        .bind(options.to_string())
        .bind(bundle)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn run(&self, id: &str) -> Result<Option<RunRow>> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?"))
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
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR status = ?1) AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
        ))
        .bind(status)
        .bind(cursor.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_row).collect()
    }

    async fn report(&self, id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT report FROM runs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .flatten())
    }

    async fn claim(&self, worker: &str, lease_ms: i64) -> Result<Option<Claimed>> {
        let now = now_ms();
        // A run whose worker was asked to cancel it and then vanished is cancelled.
        sqlx::query(
            "UPDATE runs SET status = 'cancelled', finished_ms = ?1 WHERE status = 'running' AND cancel_requested = 1 AND lease_until_ms < ?1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "UPDATE runs SET status = 'running', worker = ?1, lease_until_ms = ?2, \
             started_ms = COALESCE(started_ms, ?3), attempts = attempts + 1 \
             WHERE seq = (SELECT seq FROM runs WHERE status = 'queued' \
                          OR (status = 'running' AND lease_until_ms < ?3) ORDER BY seq LIMIT 1) \
             RETURNING id, options, bundle, attempts",
        )
        .bind(worker)
        .bind(now + lease_ms)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.try_get("id")?;
        let next: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?")
                .bind(&id)
                .fetch_one(&self.pool)
                .await?;
        let options: String = row.try_get("options")?;
        Ok(Some(Claimed {
            id,
            options: serde_json::from_str(&options).unwrap_or_default(),
            bundle: row.try_get("bundle")?,
            next_event: next,
            attempt: row.try_get("attempts")?,
        }))
    }

    async fn renew(&self, id: &str, worker: &str, lease_ms: i64) -> Result<Renewal> {
        let cancel: Option<i64> = sqlx::query_scalar(
            "UPDATE runs SET lease_until_ms = ? WHERE id = ? AND worker = ? AND status = 'running' RETURNING cancel_requested",
        )
        .bind(now_ms() + lease_ms)
        .bind(id)
        .bind(worker)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match cancel {
            Some(c) => Renewal::Held { cancel: c != 0 },
            None => Renewal::Lost,
        })
    }

    async fn release(&self, id: &str, worker: &str) -> Result<()> {
        sqlx::query(
            "UPDATE runs SET status = 'queued', worker = NULL, lease_until_ms = NULL WHERE id = ? AND worker = ? AND status = 'running'",
        )
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn append_event(&self, id: &str, seq: i64, data: &str) -> Result<()> {
        sqlx::query("INSERT INTO events (run_id, seq, data) VALUES (?, ?, ?)")
            .bind(id)
            .bind(seq)
            .bind(data)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn events(&self, id: &str, after: i64, limit: i64) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT seq, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
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

    async fn finish(&self, id: &str, worker: &str, f: &Finished) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE runs SET status = ?, summary = ?, report = ?, finished_ms = ?, lease_until_ms = NULL \
             WHERE id = ? AND worker = ? AND status = 'running'",
        )
        .bind(&f.status)
        .bind(f.summary.to_string())
        .bind(&f.report)
        .bind(now)
        .bind(id)
        .bind(worker)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            for s in &f.scenarios {
                sqlx::query(
                    "INSERT INTO scenario_runs (scenario_id, run_id, status, duration_ms, finished_ms) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(&s.scenario_id)
                .bind(id)
                .bind(&s.status)
                .bind(s.duration_ms)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn cancel(&self, id: &str) -> Result<Option<String>> {
        let now = now_ms();
        sqlx::query("UPDATE runs SET status = 'cancelled', finished_ms = ? WHERE id = ? AND status = 'queued'")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        sqlx::query("UPDATE runs SET cancel_requested = 1 WHERE id = ? AND status = 'running'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT status FROM runs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn history(&self, scenario_id: &str, limit: i64) -> Result<Vec<ScenarioOutcome>> {
        let rows = sqlx::query(
            "SELECT scenario_id, run_id, status, duration_ms, finished_ms FROM scenario_runs \
             WHERE scenario_id = ? ORDER BY finished_ms DESC, rowid DESC LIMIT ?",
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
