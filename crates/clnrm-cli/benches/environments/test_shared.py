"""The shared stack of compose.yaml (started before pytest, by peers.sh): ten tests
against one app and one database."""

import os

import docker
import pytest

from checks import create_fetch_and_check

BASE = os.environ.get("SHARED_URL", "http://127.0.0.1:8080")
DB = os.environ["SHARED_DB"]


@pytest.fixture(scope="session")
def db():
    return docker.from_env().containers.get(DB)


def psql(db, sql):
    code, out = db.exec_run(["psql", "-U", "postgres", "-d", "orders", "-tAc", sql])
    assert code == 0, out
    return out.decode()


@pytest.mark.parametrize("n", range(10))
def test_order(db, n):
    create_fetch_and_check(BASE, lambda sql: psql(db, sql), hermetic=False)
