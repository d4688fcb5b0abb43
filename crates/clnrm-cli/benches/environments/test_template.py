"""testcontainers-python as a skilled user writes it: one PostgreSQL per worker, seeded
and migrated once into a template database; each test gets `orders` afresh by
`CREATE DATABASE … TEMPLATE` and an app of its own."""

import pytest
from testcontainers.core.network import Network

from checks import create_fetch_and_check
from conftest import migrate, psql, running_app, seed, start_db


@pytest.fixture(scope="session")
def template():
    with Network() as network:
        db = start_db(network)
        try:
            seed(db)
            migrate(network)
            psql(db, "ALTER DATABASE orders RENAME TO orders_template", dbname="postgres")
            yield network, db
        finally:
            db.stop()


@pytest.fixture
def stack(template):
    network, db = template
    psql(db, "DROP DATABASE IF EXISTS orders WITH (FORCE)", dbname="postgres")
    psql(db, "CREATE DATABASE orders TEMPLATE orders_template", dbname="postgres")
    with running_app(network) as base:
        yield base, db


@pytest.mark.parametrize("n", range(10))
def test_order(stack, n):
    base, db = stack
    create_fetch_and_check(base, lambda sql: psql(db, sql))
