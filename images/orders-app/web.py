"""web: a tiny web app written the standard way, for the tests of baselines and
hermeticity with real instrumentation: a WSGI application served by the standard
library's wsgiref, traced by OpenTelemetry's WSGI instrumentation (the
OpenTelemetryMiddleware of opentelemetry-instrumentation-wsgi; nothing here makes a
span by hand), exported over OTLP/HTTP with the SDK's defaults.

    GET /hello     -> 200 {"hello": "world"}
    GET /health    -> 200 ok (the health check's target)
    anything else  -> 404

Port $PORT (default 8000). The middleware records what every such server does:
http.server_name (the container's host name), net.peer.ip and net.peer.port (the
client's address and port, new each connection), http.user_agent, ...
SIGTERM flushes the spans and exits 0.
"""

import json
import os
import signal
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/hello":
        body, status = json.dumps({"hello": "world"}).encode(), "200 OK"
        kind = "application/json"
    elif path == "/health":
        body, status, kind = b"ok", "200 OK", "text/plain"
    else:
        body, status, kind = b"not found", "404 Not Found", "text/plain"
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]


class Quiet(WSGIRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))


def stop(*_):
    provider.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop)
    port = int(os.environ.get("PORT", "8000"))
    server = make_server("0.0.0.0", port, OpenTelemetryMiddleware(app), handler_class=Quiet)
    print(f"listening on :{port}", flush=True)
    server.serve_forever()
