-- A submission's Idempotency-Key, hashed with the token that sent it, and a hash of
-- the request: a retried submission answers the run the first one made, a key used
-- again for another request is refused. NULLs are distinct: runs without a key.
ALTER TABLE runs ADD COLUMN idempotency_key TEXT;
ALTER TABLE runs ADD COLUMN request_hash TEXT;
CREATE UNIQUE INDEX runs_by_idempotency_key ON runs (idempotency_key);
