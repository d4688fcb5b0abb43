-- Reference data for the orders example, run inside the db container:
--   psql -v ON_ERROR_STOP=1 -U postgres -d orders -f /seed.sql
-- `products` is not made by the app's migrations (its migration 001 needs it). Product
-- N is named 'product N' and costs (N % 50 + 1) * 100 cents: product 1 costs 200,
-- product 7 costs 800. The row count makes the seed take a few seconds on purpose
-- (a slow set-up step for clnrm's examples). Re-running it changes nothing.
-- `psql -v rows=N` seeds another number of products.
\if :{?rows}
\else
\set rows 500000
\endif
-- One transaction: with wal_level = minimal the rows of a table made in it skip the WAL.
BEGIN;
CREATE TABLE IF NOT EXISTS products (
    id          int PRIMARY KEY,
    name        text NOT NULL,
    price_cents int NOT NULL
);
INSERT INTO products (id, name, price_cents)
SELECT i, 'product ' || i, (i % 50 + 1) * 100
FROM generate_series(1, :rows) AS i
ON CONFLICT (id) DO NOTHING;
CREATE INDEX IF NOT EXISTS products_name_idx ON products (name);
COMMIT;
ANALYZE products;
-- Written out now, so that a snapshot holds no WAL to replay.
CHECKPOINT;
