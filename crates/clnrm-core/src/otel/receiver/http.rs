//! OTLP over HTTP: `POST /v1/traces`, protobuf or JSON, gzip or not. The token is
//! checked before the body is read; bad bodies get 400, bodies over the limit 413,
//! other media types 415.

use super::{MAX_BODY, State, TOKEN_HEADER};
use crate::otel::{SpanRecord, from_otlp_json_bytes, proto::from_proto};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How long a request's head, and then its body, may take to arrive.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Accepts connections until `stop`, at most `connections` at once.
pub(super) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    connections: Arc<Semaphore>,
    stop: CancellationToken,
) {
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => p,
            () = stop.cancelled() => return,
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.cancelled() => return,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let state = state.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(req, peer.ip(), &state).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .serve_connection(io, service);
            tokio::select! {
                _ = conn => {}
                () = stop.cancelled() => {}
            }
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
    let token = req.headers().get(TOKEN_HEADER).map(|v| v.as_bytes());
    if !state.allows(token) {
        return reply(
            StatusCode::UNAUTHORIZED,
            text,
            format!(
                "a missing or wrong {TOKEN_HEADER} header: this receiver takes spans from its run's containers only\n"
            ),
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
    let json = content_type.starts_with("application/json");
    if !json
        && !content_type.starts_with("application/x-protobuf")
        && !content_type.starts_with("application/protobuf")
    {
        return reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            text,
            "send application/x-protobuf or application/json\n",
        );
    }
    if !matches!(encoding.as_str(), "" | "identity" | "gzip") {
        return reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            text,
            format!("content-encoding {encoding} is not supported\n"),
        );
    }
    if state.full(Some(peer)) {
        // Its scenario already failed on its limits: no need to read or decode more.
        let mut r = reply(
            StatusCode::OK,
            "application/json",
            r#"{"partialSuccess":{"errorMessage":"the scenario's span limits are reached; spans are dropped"}}"#,
        );
        r.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return r;
    }
    // Reading and decoding hold a slot: only so many bodies are in memory at once.
    let Ok(_slot) = state.decode.acquire().await else {
        return reply(StatusCode::SERVICE_UNAVAILABLE, text, "stopping\n");
    };
    let read = tokio::time::timeout(
        READ_TIMEOUT,
        Limited::new(req.into_body(), MAX_BODY).collect(),
    );
    let Ok(read) = read.await else {
        return reply(
            StatusCode::REQUEST_TIMEOUT,
            text,
            "the body took too long\n",
        );
    };
    let body = match read {
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
    match decode_body(json, encoding == "gzip", &body) {
        Ok(spans) => {
            let dropped = state.ingest(Some(peer), spans);
            if json {
                let answer = if dropped == 0 {
                    "{}".to_owned()
                } else {
                    serde_json::json!({"partialSuccess": {
                        "rejectedSpans": dropped.to_string(),
                        "errorMessage": "over the scenario's span limits, or for no scenario of this run",
                    }})
                    .to_string()
                };
                reply(StatusCode::OK, "application/json", answer)
            } else {
                reply(
                    StatusCode::OK,
                    "application/x-protobuf",
                    response(dropped).encode_to_vec(),
                )
            }
        }
        Err(BadBody::TooLarge) => reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            text,
            format!("body over {MAX_BODY} bytes once inflated\n"),
        ),
        Err(BadBody::Invalid(why)) => reply(StatusCode::BAD_REQUEST, text, format!("{why}\n")),
    }
}

/// Why a body holds no spans.
#[derive(Debug, PartialEq, Eq)]
pub enum BadBody {
    /// Over [`MAX_BODY`] once inflated.
    TooLarge,
    /// Not gzip, or not an export request of its media type.
    Invalid(String),
}

/// The spans of a request body: OTLP-JSON when `json`, else protobuf; inflated first
/// when `gzip`. Pure, for the fuzzers as much as for the receiver.
pub fn decode_body(json: bool, gzip: bool, body: &[u8]) -> Result<Vec<SpanRecord>, BadBody> {
    let inflated;
    let body = if gzip {
        inflated = gunzip(body)?;
        &inflated[..]
    } else {
        body
    };
    if json {
        return from_otlp_json_bytes(body)
            .map_err(|e| BadBody::Invalid(format!("not an OTLP-JSON trace request: {e}")));
    }
    ExportTraceServiceRequest::decode(body)
        .map(from_proto)
        .map_err(|e| BadBody::Invalid(format!("not an OTLP protobuf trace request: {e}")))
}

/// The export response: a partial success when spans were dropped.
pub(super) fn response(dropped: usize) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: (dropped > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: dropped as i64,
            error_message: "over the scenario's span limits, or for no scenario of this run".into(),
        }),
    }
}

fn gunzip(body: &[u8]) -> Result<Vec<u8>, BadBody> {
    let mut out = Vec::new();
    let mut reader = flate2::read::GzDecoder::new(body).take(MAX_BODY as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| BadBody::Invalid(format!("bad gzip body: {e}")))?;
    if out.len() > MAX_BODY {
        return Err(BadBody::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_body_is_inflated_then_decoded_by_its_media_type() {
        let json =
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a","spanId":"01"}]}]}]}"#;
        assert_eq!(decode_body(true, false, json).map(|s| s.len()), Ok(1));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, json).unwrap_or_else(|e| panic!("{e}"));
        let gz = gz.finish().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decode_body(true, true, &gz).map(|s| s.len()), Ok(1));
        assert!(matches!(
            decode_body(true, true, json),
            Err(BadBody::Invalid(_))
        ));
        assert!(matches!(
            decode_body(false, false, json),
            Err(BadBody::Invalid(_))
        ));
        assert_eq!(decode_body(false, false, b"").map(|s| s.len()), Ok(0));
    }

    proptest! {
        #[test]
        fn no_body_makes_decoding_panic(
            body in prop::collection::vec(any::<u8>(), 0..2048),
            json in any::<bool>(),
            gzip in any::<bool>(),
        ) {
            let _ = decode_body(json, gzip, &body);
        }
    }
}
