"""greeter: the web-develop example's app, a small HTTP service traced with the
OpenTelemetry SDK, reached through the nginx proxy beside it.

    GET /hello?name=N  -> 200 {"message": "Hello, N!"}
                          (400 {"error": "name is required"} without a name)
    GET /healthz       -> 200 "ok" (not traced)
    anything else      -> 404 {"error": "not found"} (not traced)

Tracing: one SERVER span per request of /hello (`GET /hello`), continuing the W3C
traceparent the proxy passes on, with an INTERNAL child `compose greeting`; exported
over OTLP/HTTP by a BatchSpanProcessor with the SDK's defaults, so the standard OTEL_*
variables decide where and how. Port $PORT (default 8000). SIGTERM flushes the spans
and exits 0.
"""

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

PORT = int(os.environ.get("PORT", "8000"))
GREETING = "Hello"


def make_provider():
    resource = Resource.create()
    # The environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) wins over our name.
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "greeter"}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


provider = make_provider()
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("greeter")


def greet(query):
    """(status, payload) of GET /hello with the query string `query`."""
    name = parse_qs(query).get("name", [""])[0].strip()
    if not name:
        return 400, {"error": "name is required"}
    with tracer.start_as_current_span("compose greeting", attributes={"greeting.name": name}):
        return 200, {"message": f"{GREETING}, {name}!"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "greeter"

    def log_message(self, format, *args):  # the one line per request is ours
        pass

    def reply(self, status, payload):
        if isinstance(payload, str):
            body, ctype = payload.encode(), "text/plain; charset=utf-8"
        else:
            body, ctype = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print(f"{self.command} {self.path} {status}", flush=True)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self.reply(200, "ok")
        elif url.path == "/hello":
            self.traced("/hello", lambda: greet(url.query))
        else:
            self.reply(404, {"error": "not found"})

    def traced(self, route, work):
        """Serve one request of `route` in a SERVER span; `work` returns (status, payload)."""
        with tracer.start_as_current_span(
            f"{self.command} {route}",
            context=propagate.extract(self.headers),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": self.command,
                "url.path": urlsplit(self.path).path,
                "http.route": route,
                "server.address": self.headers.get("Host", "").split(":")[0],
            },
        ) as span:
            status, payload = work()
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            self.reply(status, payload)


def main():
    server = ThreadingHTTPServer(("", PORT), Handler)
    server.daemon_threads = True

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return: call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on :{PORT}", flush=True)
    server.serve_forever()
    server.server_close()
    provider.shutdown()  # flushes the spans still batched
    sys.exit(0)


if __name__ == "__main__":
    main()
