//! OTLP over gRPC: `TraceService/Export`. The token is checked by an interceptor
//! before the message is decoded; decoding shares the HTTP side's slots.

use super::{MAX_BODY, State, TOKEN_HEADER};
use crate::otel::proto::from_proto;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Grpc {
    state: Arc<State>,
}

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let peer = request.remote_addr().map(|a| a.ip());
        let dropped = self.state.ingest(peer, from_proto(request.into_inner()));
        Ok(tonic::Response::new(super::http::response(dropped)))
    }
}

/// Serves gRPC on `listener` until `stop`.
pub(super) async fn serve(listener: TcpListener, state: Arc<State>, stop: CancellationToken) {
    let check = state.clone();
    let authorise = move |req: tonic::Request<()>| {
        let token = req.metadata().get(TOKEN_HEADER).map(|v| v.as_bytes());
        if !check.allows(token) {
            return Err(tonic::Status::unauthenticated(format!(
                "a missing or wrong {TOKEN_HEADER}: this receiver takes spans from its run's containers only"
            )));
        }
        if check.full(req.remote_addr().map(|a| a.ip())) {
            return Err(tonic::Status::resource_exhausted(
                "the scenario's span limits are reached; spans are dropped",
            ));
        }
        Ok(req)
    };
    let service = TraceServiceServer::new(Grpc {
        state: state.clone(),
    })
    .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
    .max_decoding_message_size(MAX_BODY);
    let service = tonic::service::interceptor::InterceptedService::new(service, authorise);
    let limit = tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(state.decode.clone());
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let _ = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(super::DECODE_SLOTS as u32))
        .layer(limit)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
        .await;
}
