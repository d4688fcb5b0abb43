"""Shared pieces of the testcontainers-python sides of the environments bench: the
images are the ones clnrm's side uses (clnrm/postgres:15, clnrm/orders-app:bench), built
locally; Ryuk is off (its image cannot be pulled here), every container is removed by
the fixtures."""

import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.container import DockerContainer  # noqa: E402

from checks import http_ready, wait_until  # noqa: E402

PG = "clnrm/postgres:15"
APP = os.environ.get("ORDERS_APP_IMAGE", "clnrm/orders-app:bench")


def psql(db, sql, dbname="orders"):
    code, out = db.exec(["psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", dbname, "-tAc", sql])
    assert code == 0, out
    return out.decode()


def start_db(network):
    db = (
        DockerContainer(PG)
        .with_env("POSTGRES_DB", "orders")
        .with_network(network)
        .with_network_aliases("db")
    )
    db.start()
    ready = ["pg_isready", "-h", "localhost", "-U", "postgres", "-d", "orders"]
    try:
        wait_until(lambda: db.exec(ready)[0] == 0, interval=0.1)
    except BaseException:
        db.stop()
        raise
    return db


def seed(db):
    code, out = db.exec(["psql", "-v", "ON_ERROR_STOP=1", "-q", "-U", "postgres", "-d", "orders", "-f", "/seed.sql"])
    assert code == 0, out


def migrate(network):
    one_shot = DockerContainer(APP).with_network(network).with_command("python3 -u /app/migrate.py")
    one_shot.start()
    try:
        assert one_shot.get_wrapped_container().wait()["StatusCode"] == 0, one_shot.get_logs()
    finally:
        one_shot.stop()


@contextlib.contextmanager
def running_app(network):
    """The app on `network`, ready; its base URL. Removed after."""
    app, base = start_app(network)
    try:
        yield base
    finally:
        app.stop()


def start_app(network):
    app = (
        DockerContainer(APP)
        .with_network(network)
        .with_env("OTEL_SERVICE_NAME", "orders-api")
        .with_exposed_ports(8080)
    )
    app.start()
    try:
        base = f"http://{app.get_container_host_ip()}:{app.get_exposed_port(8080)}"
        http_ready(base)
    except BaseException:
        app.stop()
        raise
    return app, base
