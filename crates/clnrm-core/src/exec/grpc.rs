//! `grpc` steps (SPEC §17): clnrm makes the call itself, to the port of the service
//! the target names (the engine's loopback port, or the service's address on a
//! network clnrm joined), with the messages its `.proto` files or the server's
//! reflection service describe; then it checks the status and the response. Each call
//! carries a `traceparent` in its metadata naming a client span clnrm adds to the
//! scenario's spans (`clnrm.grpc <step>`), so the server's spans join clnrm's trace.

use super::captures::Captured;
use super::events::{Answer, Reason, StepResult, fail};
use super::http::{HttpCtx, TraceContext, before_deadline, json_failure, step_span};
use super::pool::Env;
use crate::grpc::{self, Call, Protos, proto};
use crate::otel::SpanRecord;
use crate::plan::{GrpcSpec, PlannedStep};
use std::time::SystemTime;

/// Runs a `grpc` step; the result and whether the step's container is still usable.
pub(super) async fn run(
    env: &mut Env,
    step: &PlannedStep,
    spec: &GrpcSpec,
    ctx: &HttpCtx<'_>,
    captured: &mut Captured,
    spans: &mut Vec<SpanRecord>,
    mut result: StepResult,
) -> (StepResult, bool) {
    let (started, cancel) = (ctx.started, ctx.cancel);
    result.command = captured
        .masker
        .mask(&format!("grpc {} {}", spec.target, spec.method));
    let Some((host, port)) = spec.target() else {
        fail(
            &mut result,
            Reason::Status,
            format!("target \"{}\" is not `<service id>:<port>`", spec.target),
        );
        return (result, true);
    };
    let addr = env.member(&host).and_then(|m| {
        result.container = m.container.chars().take(12).collect();
        m.address(port)
    });
    let Some(addr) = addr else {
        fail(
            &mut result,
            Reason::Engine,
            format!(
                "port {port} of service \"{host}\" is not published (is \"{host}\" a service of this scenario?)"
            ),
        );
        return (result, false);
    };
    let limit = started + spec.timeout;
    let deadline = ctx.deadline.map_or(limit, |d| d.min(limit));
    let timeout = deadline.saturating_duration_since(std::time::Instant::now());
    let trace = TraceContext::new(ctx.scenario, &step.name);
    let own = spec
        .metadata
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("traceparent"));
    let mut metadata = spec.metadata.clone();
    if !own {
        metadata.push(("traceparent".to_owned(), trace.traceparent()));
    }
    let sent_at = SystemTime::now();
    let called = async {
        let protos = describe(spec, addr, timeout).await?;
        // What reflection took is not the call's: it gets what is left.
        let timeout = deadline.saturating_duration_since(std::time::Instant::now());
        let method = protos
            .method(&spec.method, &where_described(spec))
            .map_err(|e| (Reason::Status, e.to_string()))?;
        let request =
            proto::request(&method, &spec.json).map_err(|e| (Reason::Status, e.to_string()))?;
        grpc::call::call(Call {
            addr,
            authority: &spec.target,
            method: &method,
            request,
            metadata: &metadata,
            timeout,
        })
        .await
        .map(|a| (a, method.is_server_streaming()))
        .map_err(|e| (reason_of(&e), e.to_string()))
    };
    let Some(answer) = before_deadline(called, (started, deadline), cancel, &mut result).await
    else {
        return (result, false);
    };
    result.duration = started.elapsed();
    let (answer, streaming) = match answer {
        Ok(a) => a,
        Err((reason, why)) => {
            fail(&mut result, reason, captured.masker.mask(&why));
            return (result, true);
        }
    };
    // A unary call's response is its message; a stream's, the array of its messages.
    let doc = if streaming {
        serde_json::Value::Array(answer.messages.clone())
    } else {
        answer
            .messages
            .first()
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    let body = serde_json::to_string_pretty(&doc).unwrap_or_default();
    if answer.code != spec.expected_status {
        let said = if answer.message.is_empty() {
            String::new()
        } else {
            format!(": {}", answer.message)
        };
        fail(
            &mut result,
            Reason::Status,
            captured.masker.mask(&format!(
                "status {} ({}){said}, expected {} ({})",
                answer.code_name(),
                answer.code,
                grpc::call::code_name(spec.expected_status),
                spec.expected_status
            )),
        );
    } else if let Some(why) = json_failure(&spec.expected_json, &doc) {
        fail(&mut result, Reason::Json, captured.masker.mask(&why));
    } else {
        let read = Answer {
            status: 200,
            headers: answer.metadata.clone(),
            body: body.clone().into_bytes(),
        };
        if let Err(why) = captured.take_http(step, &read) {
            fail(&mut result, Reason::Capture, why.to_string());
        }
    }
    result.stdout = captured.masker.mask(&body);
    result.stderr = captured.masker.mask(&format!(
        "grpc-status: {} ({}){}",
        answer.code_name(),
        answer.code,
        if answer.message.is_empty() {
            String::new()
        } else {
            format!("\ngrpc-message: {}", answer.message)
        }
    ));
    if !own {
        let when = (sent_at, result.duration);
        spans.push(client_span(
            step,
            spec,
            (&host, port),
            &trace,
            &answer,
            when,
        ));
    }
    (result, true)
}

/// The step's descriptors: its `.proto` files, or the server's reflection service.
async fn describe(
    spec: &GrpcSpec,
    addr: std::net::SocketAddr,
    timeout: std::time::Duration,
) -> Result<Protos, (Reason, String)> {
    if !spec.proto.is_empty() {
        return Protos::compile(&spec.proto_base, &spec.proto)
            .map_err(|e| (Reason::Status, e.to_string()));
    }
    let (service, _) = proto::split_method(&spec.method).ok_or_else(|| {
        (
            Reason::Status,
            format!("method \"{}\" is not `package.Service/Method`", spec.method),
        )
    })?;
    grpc::descriptors(addr, &spec.target, service, timeout)
        .await
        .map_err(|e| match &e {
            grpc::ReflectError::Call(c) => (reason_of(c), e.to_string()),
            _ => (Reason::Status, e.to_string()),
        })
}

/// A call with no answer in time is a timeout; any other failure, a status failure.
fn reason_of(e: &grpc::CallError) -> Reason {
    match e {
        grpc::CallError::Timeout(_) => Reason::Timeout,
        _ => Reason::Status,
    }
}

fn where_described(spec: &GrpcSpec) -> String {
    if spec.proto.is_empty() {
        "the server's reflection service".to_owned()
    } else {
        spec.proto.join(", ")
    }
}

/// clnrm's span of one `grpc` step: the parent of the server's spans.
fn client_span(
    step: &PlannedStep,
    spec: &GrpcSpec,
    (host, port): (&str, u16),
    trace: &TraceContext,
    answer: &grpc::Answer,
    when: (SystemTime, std::time::Duration),
) -> SpanRecord {
    use crate::otel::AttrValue;
    let text = |v: &str| AttrValue::Str(v.to_owned());
    let (service, method) = proto::split_method(&spec.method).unwrap_or(("", ""));
    let attributes = [
        ("clnrm.step", text(&step.name)),
        ("rpc.system", text("grpc")),
        ("rpc.service", text(service)),
        ("rpc.method", text(method)),
        ("server.address", text(host)),
        ("server.port", AttrValue::Int(i64::from(port))),
        (
            "rpc.grpc.status_code",
            AttrValue::Int(i64::from(answer.code)),
        ),
    ];
    step_span(
        format!("clnrm.grpc {}", step.name),
        trace,
        attributes,
        when,
        answer.code != 0,
    )
}
