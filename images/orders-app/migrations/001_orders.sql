-- Orders of products. `products` is reference data made by the db's seed
-- (images/postgres/seed.sql), not by a migration: it must exist before this runs.
CREATE TABLE orders (
    id          serial PRIMARY KEY,
    product_id  int NOT NULL REFERENCES products (id),
    quantity    int NOT NULL CHECK (quantity > 0),
    total_cents bigint NOT NULL,
    created_at  timestamptz DEFAULT now()
);
