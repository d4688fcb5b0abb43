"""The greeter of examples/grpc-greeter: a gRPC server (grpcio) with its reflection
service, traced by OpenTelemetry's gRPC instrumentation (its spans exported over
OTLP/HTTP to where OTEL_EXPORTER_OTLP_ENDPOINT says, as clnrm sets it).

SayHello answers "Hello, <name>!" (INVALID_ARGUMENT for an empty name); SayHellos
streams `times` greetings (1 to 100; OUT_OF_RANGE otherwise). Listens on $PORT (50051).
"""

import os
from concurrent import futures

import grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import GrpcInstrumentorServer
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import greeter_pb2
import greeter_pb2_grpc

provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "greeter")}))
if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=200))
trace.set_tracer_provider(provider)
GrpcInstrumentorServer().instrument()


class Greeter(greeter_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        if not request.name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name is empty")
        return greeter_pb2.HelloReply(message=f"Hello, {request.name}!", index=0)

    def SayHellos(self, request, context):
        if not 1 <= request.times <= 100:
            context.abort(grpc.StatusCode.OUT_OF_RANGE, f"times is {request.times}, not 1 to 100")
        for i in range(request.times):
            yield greeter_pb2.HelloReply(message=f"Hello #{i + 1}, {request.name}!", index=i + 1)


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    greeter_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    names = (
        greeter_pb2.DESCRIPTOR.services_by_name["Greeter"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
    port = os.environ.get("PORT", "50051")
    server.add_insecure_port(f"0.0.0.0:{port}")
    server.start()
    print(f"greeter listening on {port}", flush=True)
    try:
        server.wait_for_termination()
    finally:
        provider.shutdown()


if __name__ == "__main__":
    main()
