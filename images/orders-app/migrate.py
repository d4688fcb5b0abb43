"""Apply the SQL migrations in migrations/ (next to this file) to the `orders` database.

Idempotent: each file, in name order, runs in a transaction of its own unless its name
is already in schema_migrations, and is recorded there in the same transaction. Waits
up to $MIGRATE_WAIT_SECONDS (default 30) for the database to accept connections.
Prints `applied NAME` or `already applied NAME` per file; exits 0, or 1 with the
reason on stderr.
"""

import os
import sys
import time
from pathlib import Path

import psycopg2

DB_HOST = os.environ.get("DATABASE_HOST", "db")
DB_PORT = int(os.environ.get("DATABASE_PORT", "5432"))
DB_NAME = "orders"
DB_USER = "postgres"
WAIT_SECONDS = float(os.environ.get("MIGRATE_WAIT_SECONDS", "30"))
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = 7010  # an advisory lock: two runners at once apply each file once


def fail(message):
    print(f"migrate: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def connect():
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            return psycopg2.connect(
                host=DB_HOST, port=DB_PORT, dbname=DB_NAME, user=DB_USER, connect_timeout=5
            )
        except psycopg2.OperationalError as e:
            if time.monotonic() >= deadline:
                reason = str(e).strip().replace("\n", " ")
                fail(
                    f"cannot connect to database {DB_NAME!r} at {DB_HOST}:{DB_PORT} "
                    f"after {WAIT_SECONDS:g} s: {reason}"
                )
            time.sleep(0.5)


def main():
    files = sorted(MIGRATIONS.glob("*.sql"))
    if not files:
        fail(f"no migrations in {MIGRATIONS}")
    conn = connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY)")
        for path in files:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (path.name,))
                if cur.fetchone():
                    print(f"already applied {path.name}", flush=True)
                    continue
                try:
                    cur.execute(path.read_text())
                except psycopg2.Error as e:
                    reason = str(e).strip().replace("\n", " ")
                    conn.rollback()
                    fail(f"{path.name} failed (rolled back): {reason}")
                cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (path.name,))
            print(f"applied {path.name}", flush=True)
    except psycopg2.Error as e:
        fail(f"database error: {str(e).strip()}")
    finally:
        conn.close()


if __name__ == "__main__":
    main()
