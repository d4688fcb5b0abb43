//! The OTLP receiver a run starts when a scenario exports over OTLP: HTTP
//! `POST /v1/traces` with protobuf or JSON bodies (gzip accepted), and gRPC
//! `TraceService/Export`, on free ports of every interface (containers reach the host
//! through its bridge gateway, `host.docker.internal`; a listener on 127.0.0.1 only
//! would not be reachable from them).
//!
//! Spans are attributed to scenarios by the resource attribute `clnrm.scenario`
//! (clnrm puts it in `OTEL_RESOURCE_ATTRIBUTES` of every step), else by the address of
//! the container that sent them (a service's own process). Bad bodies get 400, bodies
//! over the limit 413, other media types 415; nothing a client sends can crash it.

use super::span::SpanRecord;
use super::{from_otlp_json, proto::from_proto};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The resource attribute naming the scenario a span belongs to.
pub const SCENARIO_ATTR: &str = "clnrm.scenario";

/// Largest body accepted (after decompression).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Default)]
struct Inner {
    by_scenario: HashMap<String, Vec<SpanRecord>>,
    last_arrival: HashMap<String, Instant>,
    ip_owner: HashMap<IpAddr, String>,
    by_ip: HashMap<IpAddr, Vec<SpanRecord>>,
}

struct State {
    inner: Mutex<Inner>,
    arrived: tokio::sync::Notify,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn ingest(&self, peer: Option<IpAddr>, spans: Vec<SpanRecord>) {
        let now = Instant::now();
        {
            let mut inner = self.lock();
            for span in spans {
                let owner = match span.resource.get(SCENARIO_ATTR) {
                    Some(super::AttrValue::Str(id)) => Some(id.clone()),
                    _ => peer.and_then(|ip| inner.ip_owner.get(&ip).cloned()),
                };
                match (owner, peer) {
                    (Some(id), _) => {
                        inner.last_arrival.insert(id.clone(), now);
                        inner.by_scenario.entry(id).or_default().push(span);
                    }
                    (None, Some(ip)) => inner.by_ip.entry(ip).or_default().push(span),
                    (None, None) => {}
                }
            }
        }
        self.arrived.notify_waiters();
    }
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    state: Arc<State>,
    http: SocketAddr,
    grpc: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Receiver {
    /// Starts both listeners on free ports of `bind` (all interfaces: `0.0.0.0`).
    pub async fn start(bind: IpAddr) -> std::io::Result<Self> {
        let state = Arc::new(State {
            inner: Mutex::new(Inner::default()),
            arrived: tokio::sync::Notify::new(),
        });
        let stop = CancellationToken::new();
        let http_listener = TcpListener::bind(SocketAddr::new(bind, 0)).await?;
        let grpc_listener = TcpListener::bind(SocketAddr::new(bind, 0)).await?;
        let http = http_listener.local_addr()?;
        let grpc = grpc_listener.local_addr()?;
        tokio::spawn(serve_http(http_listener, state.clone(), stop.clone()));
        let service = TraceServiceServer::new(Grpc {
            state: state.clone(),
        })
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_BODY);
        let incoming = tonic::transport::server::TcpIncoming::from(grpc_listener);
        let shutdown = stop.clone();
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                .await;
        });
        Ok(Self {
            state,
            http,
            grpc,
            stop,
        })
    }

    /// The HTTP listener's port.
    pub fn http_port(&self) -> u16 {
        self.http.port()
    }

    /// The gRPC listener's port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc.port()
    }

    /// From now on spans from `ips` belong to `scenario`; spans those addresses sent
    /// before (a service starting up) are given to it too.
    pub fn assign(&self, ips: &[IpAddr], scenario: &str) {
        let mut inner = self.state.lock();
        for ip in ips {
            inner.ip_owner.insert(*ip, scenario.to_owned());
            if let Some(early) = inner.by_ip.remove(ip) {
                inner
                    .by_scenario
                    .entry(scenario.to_owned())
                    .or_default()
                    .extend(early);
            }
        }
    }

    /// Spans from `ips` no longer belong to anyone.
    pub fn unassign(&self, ips: &[IpAddr]) {
        let mut inner = self.state.lock();
        for ip in ips {
            inner.ip_owner.remove(ip);
            inner.by_ip.remove(ip);
        }
    }

    /// Removes and returns the spans that came from `ip` and belong to no scenario.
    pub fn take_from(&self, ip: IpAddr) -> Vec<SpanRecord> {
        self.state.lock().by_ip.remove(&ip).unwrap_or_default()
    }

    /// Removes and returns the spans of `scenario`.
    pub fn take(&self, scenario: &str) -> Vec<SpanRecord> {
        let mut inner = self.state.lock();
        inner.last_arrival.remove(scenario);
        inner.by_scenario.remove(scenario).unwrap_or_default()
    }

    /// Waits until the spans of `scenario` are in: until a span named `wait_for`
    /// arrived (bounded by its timeout), else until `quiet` passed without a new span,
    /// at most `max`.
    pub async fn settle(
        &self,
        scenario: &str,
        wait_for: Option<(&str, Duration)>,
        quiet: Duration,
        max: Duration,
    ) {
        let start = Instant::now();
        if let Some((name, timeout)) = wait_for {
            let _ = tokio::time::timeout(
                timeout,
                self.until(|inner| {
                    inner
                        .by_scenario
                        .get(scenario)
                        .is_some_and(|v| v.iter().any(|s| s.name == name))
                }),
            )
            .await;
            return;
        }
        loop {
            let notified = self.state.arrived.notified();
            let last = self
                .state
                .lock()
                .last_arrival
                .get(scenario)
                .copied()
                .unwrap_or(start);
            let since = last.elapsed().min(start.elapsed());
            if since >= quiet || start.elapsed() >= max {
                return;
            }
            let _ = tokio::time::timeout(quiet - since, notified).await;
        }
    }

    /// Waits (bounded) until a span named `name` came from one of `ips`; for a
    /// service's `wait_for_span` readiness gate.
    pub async fn wait_span_from(&self, ips: &[IpAddr], name: &str, timeout: Duration) -> bool {
        tokio::time::timeout(
            timeout,
            self.until(|inner| {
                ips.iter().any(|ip| {
                    inner
                        .by_ip
                        .get(ip)
                        .is_some_and(|v| v.iter().any(|s| s.name == name))
                        || inner
                            .ip_owner
                            .get(ip)
                            .and_then(|id| inner.by_scenario.get(id))
                            .is_some_and(|v| v.iter().any(|s| s.name == name))
                })
            }),
        )
        .await
        .is_ok()
    }

    async fn until(&self, cond: impl Fn(&Inner) -> bool) {
        loop {
            let notified = self.state.arrived.notified();
            if cond(&self.state.lock()) {
                return;
            }
            notified.await;
        }
    }
}

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
        self.state.ingest(peer, from_proto(request.get_ref()));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn serve_http(listener: TcpListener, state: Arc<State>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.cancelled() => return,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(req, peer.ip(), &state).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    peer: IpAddr,
    state: &State,
) -> Response<Full<Bytes>> {
    let text = "text/plain";
    if req.uri().path() != "/v1/traces" {
        return reply(StatusCode::NOT_FOUND, text, "only /v1/traces is served\n");
    }
    if req.method() != hyper::Method::POST {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            text,
            "POST a trace export request\n",
        );
    }
    let header = |name: hyper::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let content_type = header(hyper::header::CONTENT_TYPE);
    let encoding = header(hyper::header::CONTENT_ENCODING);
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                text,
                format!("body over {MAX_BODY} bytes\n"),
            );
        }
        Err(_) => return reply(StatusCode::BAD_REQUEST, text, "could not read the body\n"),
    };
    let body = match encoding.as_str() {
        "" | "identity" => body,
        "gzip" => match gunzip(&body) {
            Ok(b) => b,
            Err(status) => return reply(status, text, "bad gzip body or over the limit\n"),
        },
        other => {
            return reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                text,
                format!("content-encoding {other} is not supported\n"),
            );
        }
    };
    if content_type.starts_with("application/json") {
        let parsed = serde_json::from_slice::<serde_json::Value>(&body)
            .map_err(|e| e.to_string())
            .and_then(|v| from_otlp_json(&v));
        return match parsed {
            Ok(spans) => {
                state.ingest(Some(peer), spans);
                reply(StatusCode::OK, "application/json", "{}")
            }
            Err(e) => reply(
                StatusCode::BAD_REQUEST,
                text,
                format!("not an OTLP-JSON trace request: {e}\n"),
            ),
        };
    }
    if content_type.starts_with("application/x-protobuf")
        || content_type.starts_with("application/protobuf")
    {
        return match ExportTraceServiceRequest::decode(body) {
            Ok(request) => {
                state.ingest(Some(peer), from_proto(&request));
                reply(
                    StatusCode::OK,
                    "application/x-protobuf",
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
            Err(e) => reply(
                StatusCode::BAD_REQUEST,
                text,
                format!("not an OTLP protobuf trace request: {e}\n"),
            ),
        };
    }
    reply(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        text,
        "send application/x-protobuf or application/json\n",
    )
}

fn gunzip(body: &[u8]) -> Result<Bytes, StatusCode> {
    let mut out = Vec::new();
    let mut reader = flate2::read::GzDecoder::new(body).take(MAX_BODY as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    if out.len() > MAX_BODY {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    Ok(out.into())
}
