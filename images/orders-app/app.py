"""orders-app: a small HTTP service over PostgreSQL, traced with the OpenTelemetry SDK.

    POST /orders       {"product_id": N, "quantity": Q} -> 201 the order (404 when
                       the product does not exist, 400 on a bad body)
    GET  /orders/<id>  -> 200 the order, or 404 {"error": "order not found"}
    POST /quotes       {"items": [{"product_id": N, "quantity": Q}, ...]} -> 200
                       {"items", "total_cents"}: the products' prices read in one
                       statement (404 naming the first unknown product, recorded on
                       the span as an exception event; 400 on a bad body)
    POST /quotes/naive the same, one statement per product quoted: the N+1 query
                       pattern that the trace-assertion example catches
    GET  /healthz      -> 200 "ok" (not traced)

An order is {"id", "product_id", "quantity", "total_cents"}; total_cents is the
product's price_cents times the quantity. The database is `orders` as user postgres
on host $DATABASE_HOST (default "db"), port $DATABASE_PORT (default 5432).

Tracing: one SERVER span per request (`POST /orders`, `GET /orders/{id}`, `POST
/quotes`, `POST /quotes/naive`), continuing a W3C traceparent from the request, and a
CLIENT span per SQL statement (`SELECT products`, `INSERT orders`, `SELECT orders`).
A quote is also published to an in-process queue (a PRODUCER span `quote.created
publish` under the request's) and processed by a consumer thread (a CONSUMER span
`quote.created process`, the root of a trace of its own, linked to the producer's
span with the link attribute messaging.operation = "process"). Spans are exported over OTLP/HTTP by a
BatchSpanProcessor with the SDK's defaults, so the standard OTEL_* variables
(OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
OTEL_BSP_SCHEDULE_DELAY, ...) decide where and how. SIGTERM flushes and exits 0.
"""

import json
import os
import queue
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

PORT = 8080
DB_HOST = os.environ.get("DATABASE_HOST", "db")
DB_PORT = int(os.environ.get("DATABASE_PORT", "5432"))
DB_NAME = "orders"
DB_USER = "postgres"
MAX_INT4 = 2**31 - 1
MAX_QUOTE_ITEMS = 100
ORDER_PATH = re.compile(r"^/orders/([^/]+)$")


def make_provider():
    resource = Resource.create()
    # The SDK names an unnamed service "unknown_service:python3"; the environment
    # (OTEL_SERVICE_NAME, or service.name in OTEL_RESOURCE_ATTRIBUTES) wins over ours.
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "orders-app"}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


provider = make_provider()
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("orders-app")


class NotFound(Exception):
    pass


class BadRequest(Exception):
    pass


def connect():
    return psycopg2.connect(
        host=DB_HOST, port=DB_PORT, dbname=DB_NAME, user=DB_USER, connect_timeout=5
    )


def query(conn, name, sql, params, rows=False):
    """Run one statement inside a CLIENT span named `name`; returns the first row (all
    rows with `rows`)."""
    with tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes={
            "db.system": "postgresql",
            "db.name": DB_NAME,
            "net.peer.name": DB_HOST,
            "server.address": DB_HOST,
        },
    ):
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if rows else cur.fetchone()


def as_order(row):
    return {"id": row[0], "product_id": row[1], "quantity": row[2], "total_cents": row[3]}


def create_order(body):
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body is not JSON")
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    product_id, quantity = data.get("product_id"), data.get("quantity")
    for key, value in (("product_id", product_id), ("quantity", quantity)):
        if type(value) is not int:
            raise BadRequest(f"{key} must be an integer")
    if not 0 < quantity <= MAX_INT4:
        raise BadRequest("quantity must be a positive integer")
    if not 0 <= product_id <= MAX_INT4:
        raise NotFound("product not found")
    conn = connect()
    try:
        with conn:
            row = query(
                conn,
                "SELECT products",
                "SELECT price_cents FROM products WHERE id = %s",
                (product_id,),
            )
            if row is None:
                raise NotFound("product not found")
            total = row[0] * quantity
            row = query(
                conn,
                "INSERT orders",
                "INSERT INTO orders (product_id, quantity, total_cents) VALUES (%s, %s, %s)"
                " RETURNING id, product_id, quantity, total_cents",
                (product_id, quantity, total),
            )
            return as_order(row)
    finally:
        conn.close()


def get_order(raw_id):
    if not raw_id.isdigit() or int(raw_id) > MAX_INT4:
        raise NotFound("order not found")
    conn = connect()
    try:
        with conn:
            row = query(
                conn,
                "SELECT orders",
                "SELECT id, product_id, quantity, total_cents FROM orders WHERE id = %s",
                (int(raw_id),),
            )
    finally:
        conn.close()
    if row is None:
        raise NotFound("order not found")
    return as_order(row)


def quote_items(body):
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body is not JSON")
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not 0 < len(items) <= MAX_QUOTE_ITEMS:
        raise BadRequest(f"items must be a list of 1 to {MAX_QUOTE_ITEMS} items")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise BadRequest("each item must be a JSON object")
        product_id, quantity = item.get("product_id"), item.get("quantity")
        if type(product_id) is not int or type(quantity) is not int:
            raise BadRequest("product_id and quantity must be integers")
        if not 0 < quantity <= MAX_INT4 or not 0 <= product_id <= MAX_INT4:
            raise BadRequest("product_id and quantity must be in range")
        out.append((product_id, quantity))
    return out


def quote(body, batched):
    items = quote_items(body)
    ids = sorted({pid for pid, _ in items})
    conn = connect()
    try:
        with conn:
            if batched:
                rows = query(
                    conn,
                    "SELECT products",
                    "SELECT id, price_cents FROM products WHERE id = ANY(%s)",
                    (ids,),
                    rows=True,
                )
            else:
                # One statement per product: the N+1 query pattern.
                rows = [
                    query(
                        conn,
                        "SELECT products",
                        "SELECT id, price_cents FROM products WHERE id = %s",
                        (pid,),
                    )
                    for pid in ids
                ]
    finally:
        conn.close()
    prices = dict(row for row in rows if row is not None)
    for pid in ids:
        if pid not in prices:
            raise NotFound(f"product {pid} not found")
    total = sum(prices[pid] * quantity for pid, quantity in items)
    publish("quote.created", {"items": len(items), "total_cents": total})
    return {"items": len(items), "total_cents": total}


# The in-process queue between the request and the consumer thread.
QUEUE = queue.Queue()
MESSAGING = {"messaging.system": "in-process"}


def publish(topic, payload):
    with tracer.start_as_current_span(
        f"{topic} publish",
        kind=SpanKind.PRODUCER,
        attributes={**MESSAGING, "messaging.destination.name": topic, "messaging.operation": "publish"},
    ) as span:
        QUEUE.put((span.get_span_context(), topic, payload))


def consume():
    """Process each message in a trace of its own, linked to the span that sent it."""
    while True:
        sent_by, topic, payload = QUEUE.get()
        try:
            with tracer.start_as_current_span(
                f"{topic} process",
                context=Context(),
                kind=SpanKind.CONSUMER,
                links=[trace.Link(sent_by, {"messaging.operation": "process"})],
                attributes={**MESSAGING, "messaging.destination.name": topic, "messaging.operation": "process"},
            ):
                print(f"processed {topic} total_cents={payload['total_cents']}", flush=True)
        finally:
            QUEUE.task_done()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "orders-app"

    def log_message(self, format, *args):  # the one line per request is ours
        pass

    def reply(self, status, payload, note=""):
        if isinstance(payload, str):
            body, ctype = payload.encode(), "text/plain; charset=utf-8"
        else:
            body, ctype = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print(f"{self.command} {self.path} {status}{' ' + note if note else ''}", flush=True)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def traced(self, route, work, record_not_found=False):
        """Serve one request of `route` in a SERVER span; `work` returns (status, payload).
        With `record_not_found`, a 404 is recorded on the span as an exception event."""
        host = self.headers.get("Host", "")
        # The host part of Host: "name", "name:port", "[v6]" or "[v6]:port".
        server_address = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
        with tracer.start_as_current_span(
            f"{self.command} {route}",
            context=propagate.extract(self.headers),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": self.command,
                "url.path": self.path.split("?")[0],
                "http.route": route,
                "server.address": server_address,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                status, payload = work()
            except BadRequest as e:
                status, payload = 400, {"error": str(e)}
            except NotFound as e:
                if record_not_found:
                    span.record_exception(e)
                status, payload = 404, {"error": str(e)}
            except psycopg2.OperationalError as e:
                span.record_exception(e)
                status, payload = 503, {"error": "database unavailable"}
                print(f"database unavailable: {e}".strip(), file=sys.stderr, flush=True)
            except Exception as e:  # noqa: BLE001 - a 500, traced, instead of a dropped connection
                span.record_exception(e)
                status, payload = 500, {"error": "internal error"}
                print(f"error: {e!r}", file=sys.stderr, flush=True)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            note = f"id={payload['id']}" if status in (200, 201) and "id" in payload else ""
            self.reply(status, payload, note)

    def do_POST(self):
        path = self.path.split("?")[0]
        if path == "/orders":
            body = self.read_body()
            self.traced("/orders", lambda: (201, create_order(body)))
        elif path in ("/quotes", "/quotes/naive"):
            body = self.read_body()
            batched = path == "/quotes"
            self.traced(path, lambda: (200, quote(body, batched)), record_not_found=True)
        else:
            self.read_body()
            self.reply(404, {"error": "not found"})

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/healthz":
            self.reply(200, "ok")
            return
        m = ORDER_PATH.match(path)
        if m:
            self.traced("/orders/{id}", lambda: (200, get_order(m.group(1))))
        else:
            self.reply(404, {"error": "not found"})


def main():
    server = ThreadingHTTPServer(("", PORT), Handler)
    server.daemon_threads = True

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return: call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=consume, daemon=True).start()
    print(f"listening on :{PORT}", flush=True)
    server.serve_forever()
    server.server_close()
    QUEUE.join()  # every message published is processed (and its span ended)
    provider.shutdown()  # flushes the spans still batched
    print("stopped", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
