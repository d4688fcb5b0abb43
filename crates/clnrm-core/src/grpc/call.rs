//! One call: a connection of its own (HTTP/2 over TCP, no TLS: the services of a
//! scenario), the request as one message, its metadata and deadline (`grpc-timeout`,
//! and clnrm's own bound a little later, so that a server's `DEADLINE_EXCEEDED` comes
//! first), the answer's messages (one for a unary call, each of a server stream: at
//! most [`MAX_MESSAGES`], [`MAX_MESSAGE`] bytes each and [`MAX_BYTES`] in all), its
//! status and metadata. A status the server sent is an [`Answer`]; what went wrong on
//! the way (no connection, a broken HTTP/2 stream, a message that does not decode, an
//! answer too big) is a [`CallError`], never a made-up status.

use super::proto::to_json;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// The most messages a server stream is read for.
pub const MAX_MESSAGES: usize = 10_000;

/// The largest message read.
pub const MAX_MESSAGE: usize = 4 << 20;

/// The most bytes of messages an answer may hold.
pub const MAX_BYTES: usize = 8 << 20;

/// The longest deadline (a larger one is this).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// How much longer than the deadline clnrm waits for the server's own answer to it.
const GRACE: Duration = Duration::from_secs(2);

/// What a call is.
#[derive(Debug)]
pub struct Call<'a> {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// `:authority` (the target as the step names it, `service:port`).
    pub authority: &'a str,
    /// The method.
    pub method: &'a MethodDescriptor,
    /// The request.
    pub request: DynamicMessage,
    /// Metadata: ASCII keys and values, a key given twice sent twice; binary (`-bin`)
    /// keys and the ones gRPC itself sets (`grpc-*`, `te`, `content-type`) are refused.
    pub metadata: &'a [(String, String)],
    /// The deadline (`grpc-timeout`), at most a day.
    pub timeout: Duration,
}

/// The answer of a call: the status the server sent.
#[derive(Debug, Default)]
pub struct Answer {
    /// The status code (0 OK … 16 UNAUTHENTICATED).
    pub code: i32,
    /// The status message.
    pub message: String,
    /// The response messages as JSON, in order (one for a unary call that succeeded;
    /// those a stream gave before its status).
    pub messages: Vec<serde_json::Value>,
    /// Response metadata (headers and trailers) with text values.
    pub metadata: Vec<(String, String)>,
}

impl Answer {
    /// The status code's name (`OK`, `NOT_FOUND`, …).
    pub fn code_name(&self) -> &'static str {
        code_name(self.code)
    }
}

/// Why a call has no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// What connecting said.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP/2 connection could not be set up.
    #[error("HTTP/2 with {addr}: {source}")]
    Handshake {
        /// Where.
        addr: SocketAddr,
        /// What hyper said.
        #[source]
        source: hyper::Error,
    },
    /// A metadata entry that cannot be sent.
    #[error("metadata \"{key}\": {why}")]
    Metadata {
        /// The key.
        key: String,
        /// Why.
        why: &'static str,
    },
    /// The target cannot be an `:authority`.
    #[error("\"{0}\" is not a host:port")]
    Authority(String),
    /// The exchange broke before a status came (the connection, HTTP/2, a message
    /// that does not decode).
    #[error("{0}")]
    Broken(String),
    /// The answer is bigger than clnrm reads.
    #[error("the answer holds more than {MAX_MESSAGES} messages or {} MiB", MAX_BYTES >> 20)]
    TooBig,
    /// No answer within the deadline (and its grace).
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
}

/// The name of status code `code`.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// The code of status name `name` (as [`code_name`] writes it, any case).
pub fn code_of(name: &str) -> Option<i32> {
    (0..=16).find(|&c| code_name(c).eq_ignore_ascii_case(name))
}

/// What a call needs, owned (the exchange runs on a task of its own).
struct Owned {
    addr: SocketAddr,
    authority: String,
    method: MethodDescriptor,
    request: DynamicMessage,
    metadata: tonic::metadata::MetadataMap,
    timeout: Duration,
}

/// Makes the call; an answer with a status, or why there is none. The exchange runs
/// on a task of its own: a server's answer that tonic cannot take (it panics on some)
/// is an error of this call, not of clnrm.
pub async fn call(c: Call<'_>) -> Result<Answer, CallError> {
    let timeout = c.timeout.min(MAX_TIMEOUT);
    let owned = Owned {
        addr: c.addr,
        authority: c.authority.to_owned(),
        method: c.method.clone(),
        request: c.request,
        metadata: metadata(c.metadata)?,
        timeout,
    };
    let mut task = tokio::spawn(async move {
        let (grpc, connection) = connect(owned.addr, &owned.authority).await?;
        let result = exchange(&owned, grpc).await;
        connection.abort();
        result
    });
    match tokio::time::timeout(timeout + GRACE, &mut task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(CallError::Broken(format!(
            "the server's answer could not be read ({})",
            if e.is_panic() {
                "the gRPC library failed on it"
            } else {
                "cancelled"
            }
        ))),
        Err(_) => {
            task.abort();
            Err(CallError::Timeout(timeout))
        }
    }
}

/// Why metadata key `key` cannot be sent, if it cannot: binary (`-bin`), one gRPC sets
/// itself, or not a key.
pub fn metadata_refusal(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    if lower.ends_with("-bin") {
        Some("binary metadata (-bin) is not supported")
    } else if lower.starts_with("grpc-")
        || ["te", "content-type", "user-agent"].contains(&lower.as_str())
    {
        Some("gRPC sets it itself")
    } else if lower.is_empty()
        || !lower
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        Some("not a valid metadata key")
    } else {
        None
    }
}

/// `entries` as gRPC metadata.
fn metadata(entries: &[(String, String)]) -> Result<tonic::metadata::MetadataMap, CallError> {
    let mut map = tonic::metadata::MetadataMap::new();
    for (k, v) in entries {
        let lower = k.to_ascii_lowercase();
        let refuse = |why| CallError::Metadata {
            key: k.clone(),
            why,
        };
        if let Some(why) = metadata_refusal(k) {
            return Err(refuse(why));
        }
        let key = tonic::metadata::AsciiMetadataKey::from_bytes(lower.as_bytes())
            .map_err(|_| refuse("not a valid key"))?;
        let value: tonic::metadata::AsciiMetadataValue = v
            .parse()
            .map_err(|_| refuse("its value is not printable ASCII"))?;
        map.append(key, value);
    }
    Ok(map)
}

/// The client of tonic on a connection of its own to `addr` (`authority` as the
/// step names the target); the connection's task, to end when done.
pub(super) async fn connect(
    addr: SocketAddr,
    authority: &str,
) -> Result<(tonic::client::Grpc<H2>, tokio::task::JoinHandle<()>), CallError> {
    let origin: hyper::Uri = format!("http://{authority}")
        .parse()
        .ok()
        .filter(|u: &hyper::Uri| u.path() == "/" && u.authority().is_some())
        .ok_or_else(|| CallError::Authority(authority.to_owned()))?;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| CallError::Connect { addr, source })?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .map_err(|source| CallError::Handshake { addr, source })?;
    let connection = tokio::spawn(async move {
        let _ = conn.await;
    });
    let grpc =
        tonic::client::Grpc::with_origin(H2(sender), origin).max_decoding_message_size(MAX_MESSAGE);
    Ok((grpc, connection))
}

/// A status the server sent, or why none came: tonic gives both as a `Status`; one
/// of its own (a transport error, a message clnrm's codec could not take) carries the
/// error it came from.
pub(super) fn sent_by_server(status: tonic::Status) -> Result<tonic::Status, CallError> {
    // Some that tonic makes itself carry no source: they are known by their words
    // (tonic 0.14's decoder: a message over the limit, a stream cut short, a bad
    // compression flag, a unary answer without its message).
    const TONIC_OWN: [&str; 5] = [
        "decoded message length too large",
        "Unexpected EOF decoding stream",
        "Missing response message",
        "protocol error: received message with invalid compression flag",
        "Message compressed, compression support not enabled",
    ];
    if std::error::Error::source(&status).is_some()
        || TONIC_OWN.iter().any(|w| status.message().starts_with(w))
    {
        return Err(CallError::Broken(status.message().to_owned()));
    }
    Ok(status)
}

async fn exchange(c: &Owned, mut grpc: tonic::client::Grpc<H2>) -> Result<Answer, CallError> {
    let path: hyper::http::uri::PathAndQuery = format!(
        "/{}/{}",
        c.method.parent_service().full_name(),
        c.method.name()
    )
    .parse()
    .map_err(|_| CallError::Broken(format!("no path for method {}", c.method.full_name())))?;
    let mut request = tonic::Request::new(c.request.clone());
    *request.metadata_mut() = c.metadata.clone();
    request.set_timeout(c.timeout);
    let codec = DynCodec(c.method.output());
    grpc.ready()
        .await
        .map_err(|e| CallError::Broken(format!("the connection closed: {e}")))?;
    let mut answer = Answer::default();
    if c.method.is_server_streaming() {
        let response = match grpc.server_streaming(request, path, codec).await {
            Ok(r) => r,
            Err(status) => return Ok(status_answer(sent_by_server(status)?)),
        };
        answer.metadata = text_metadata(response.metadata());
        let mut stream = response.into_inner();
        let mut bytes = 0;
        loop {
            match stream.message().await {
                Ok(Some(m)) => {
                    bytes += m.encoded_len();
                    if answer.messages.len() == MAX_MESSAGES || bytes > MAX_BYTES {
                        return Err(CallError::TooBig);
                    }
                    answer.messages.push(json_of(&m)?);
                }
                Ok(None) => break,
                Err(status) => {
                    let mut end = status_answer(sent_by_server(status)?);
                    end.messages = std::mem::take(&mut answer.messages);
                    end.metadata.splice(0..0, answer.metadata);
                    return Ok(end);
                }
            }
        }
        match stream.trailers().await {
            Ok(Some(trailers)) => answer.metadata.extend(text_metadata(&trailers)),
            Ok(None) => {}
            Err(status) => return Ok(status_answer(sent_by_server(status)?)),
        }
        return Ok(answer);
    }
    match grpc.unary(request, path, codec).await {
        Ok(response) => {
            answer.metadata = text_metadata(response.metadata());
            answer.messages.push(json_of(response.get_ref())?);
            Ok(answer)
        }
        Err(status) => Ok(status_answer(sent_by_server(status)?)),
    }
}

/// A message as JSON, or why it has none (a well-known type the mapping refuses).
fn json_of(m: &DynamicMessage) -> Result<serde_json::Value, CallError> {
    to_json(m).map_err(|e| CallError::Broken(format!("a response message has no JSON form: {e}")))
}

/// The answer a status alone makes (a failed call, or one the connection ended).
fn status_answer(status: tonic::Status) -> Answer {
    Answer {
        code: status.code() as i32,
        message: status.message().to_owned(),
        messages: Vec::new(),
        metadata: text_metadata(status.metadata()),
    }
}

fn text_metadata(m: &tonic::metadata::MetadataMap) -> Vec<(String, String)> {
    m.iter()
        .filter_map(|kv| match kv {
            tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))
            }
            tonic::metadata::KeyAndValueRef::Binary(..) => None,
        })
        .collect()
}

/// A hyper HTTP/2 connection as the service tonic's client sends requests through.
#[derive(Clone)]
pub(super) struct H2(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

type Responding = Pin<
    Box<dyn Future<Output = Result<hyper::Response<hyper::body::Incoming>, hyper::Error>> + Send>,
>;

impl tower::Service<hyper::Request<tonic::body::Body>> for H2 {
    type Response = hyper::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Responding;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: hyper::Request<tonic::body::Body>) -> Responding {
        Box::pin(self.0.send_request(req))
    }
}

/// A status for what went wrong in clnrm, not at the server: it carries a source,
/// which [`sent_by_server`] tells apart.
pub(super) fn local(message: String) -> tonic::Status {
    let mut status = tonic::Status::internal(message.clone());
    status.set_source(Arc::new(CallError::Broken(message)));
    status
}

/// Messages of a descriptor's type, on the wire.
#[derive(Clone)]
struct DynCodec(MessageDescriptor);

struct DynEncoder;

struct DynDecoder(MessageDescriptor);

impl Codec for DynCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynEncoder;
    type Decoder = DynDecoder;

    fn encoder(&mut self) -> DynEncoder {
        DynEncoder
    }

    fn decoder(&mut self) -> DynDecoder {
        DynDecoder(self.0.clone())
    }
}

impl Encoder for DynEncoder {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: DynamicMessage,
        dst: &mut EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        item.encode(dst)
            .map_err(|e| local(format!("encoding the request: {e}")))
    }
}

impl Decoder for DynDecoder {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, tonic::Status> {
        let mut message = DynamicMessage::new(self.0.clone());
        message
            .merge(src)
            .map_err(|e| local(format!("decoding the response: {e}")))?;
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::proto::{self, Protos};
    use crate::otel::{Receiver, ReceiverConfig};

    /// The part of OTLP's trace service a call needs (field numbers as OTLP's).
    const OTLP: &str = r#"syntax = "proto3";
package opentelemetry.proto.collector.trace.v1;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { string schema_url = 3; }
message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
message ExportTracePartialSuccess { int64 rejected_spans = 1; string error_message = 2; }
service TraceService { rpc Export(ExportTraceServiceRequest) returns (ExportTraceServiceResponse); }
"#;

    fn method() -> (tempfile::TempDir, MethodDescriptor) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("otlp.proto"), OTLP).unwrap_or_else(|e| panic!("{e}"));
        let protos = Protos::compile(dir.path(), &["otlp.proto".to_owned()])
            .unwrap_or_else(|e| panic!("{e}"));
        let m = protos
            .method(
                "opentelemetry.proto.collector.trace.v1.TraceService/Export",
                "otlp.proto",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        (dir, m)
    }

    /// A unary call to a real gRPC server (tonic's, clnrm's own OTLP receiver): its
    /// status and message without the token it asks for; OK and the response as JSON
    /// with it, sent as metadata.
    #[tokio::test]
    async fn a_unary_call_gets_the_servers_status_its_message_and_its_answer() {
        let receiver = Receiver::start(ReceiverConfig {
            listen: vec![std::net::Ipv4Addr::LOCALHOST.into()],
            token: Some("sesame".into()),
            advertise: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let (_dir, m) = method();
        let addr = SocketAddr::from(([127, 0, 0, 1], receiver.grpc_port()));
        let request = proto::request(
            &m,
            &serde_json::json!({"resourceSpans": [{"schemaUrl": "x"}]}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let call = |metadata: &'static [(String, String)]| Call {
            addr,
            authority: "collector:4317",
            method: &m,
            request: request.clone(),
            metadata,
            timeout: Duration::from_secs(10),
        };
        let refused = super::call(call(&[]))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(refused.code_name(), "UNAUTHENTICATED", "{refused:?}");
        assert!(refused.message.contains("x-clnrm-token"), "{refused:?}");
        assert!(refused.messages.is_empty());
        let token: &'static [(String, String)] = Box::leak(Box::new([(
            "X-Clnrm-Token".to_owned(),
            "sesame".to_owned(),
        )]));
        let answer = super::call(call(token))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((answer.code, answer.code_name()), (0, "OK"), "{answer:?}");
        assert_eq!(answer.messages, vec![serde_json::json!({})], "{answer:?}");
    }

    #[tokio::test]
    async fn no_server_and_a_silent_one_are_errors_not_answers() {
        let (_dir, m) = method();
        let request = proto::request(&m, &serde_json::json!({})).unwrap_or_else(|e| panic!("{e}"));
        // Metadata gRPC sets itself, or binary, is refused before anything is sent.
        for key in ["grpc-timeout", "te", "x-trace-bin", "bad key"] {
            let refused = super::call(Call {
                addr: SocketAddr::from(([127, 0, 0, 1], 9)),
                authority: "x:1",
                method: &m,
                request: request.clone(),
                metadata: &[(key.to_owned(), "v".to_owned())],
                timeout: Duration::from_secs(1),
            })
            .await;
            assert!(
                matches!(refused, Err(CallError::Metadata { .. })),
                "{key}: {refused:?}"
            );
        }
        // A port nobody listens on.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("{e}"));
        let no_one = Call {
            addr: free,
            authority: "x:1",
            method: &m,
            request: request.clone(),
            metadata: &[],
            timeout: Duration::from_secs(5),
        };
        assert!(matches!(
            super::call(no_one).await,
            Err(CallError::Connect { .. })
        ));
        // One that accepts and never answers: the deadline ends it.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = silent.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let _held = tokio::spawn(async move {
            let kept = silent.accept().await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(kept);
        });
        let waits = Call {
            addr,
            authority: "x:1",
            method: &m,
            request,
            metadata: &[],
            timeout: Duration::from_millis(300),
        };
        assert!(matches!(
            super::call(waits).await,
            Err(CallError::Timeout(_))
        ));
    }

    #[test]
    fn status_names_and_codes_go_both_ways() {
        assert_eq!(code_of("not_found"), Some(5));
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_of("NOPE"), None);
    }
}
