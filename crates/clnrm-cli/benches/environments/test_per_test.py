"""testcontainers-python, each test on its own: PostgreSQL, the seed, the migration and
the app started for it, then removed."""

import pytest
from testcontainers.core.network import Network

from checks import create_fetch_and_check
from conftest import migrate, psql, running_app, seed, start_db


@pytest.fixture
def stack():
    with Network() as network:
        db = start_db(network)
        try:
            seed(db)
            migrate(network)
            with running_app(network) as base:
                yield base, db
        finally:
            db.stop()


@pytest.mark.parametrize("n", range(10))
def test_order(stack, n):
    base, db = stack
    create_fetch_and_check(base, lambda sql: psql(db, sql))
