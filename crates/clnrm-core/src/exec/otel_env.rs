//! The `OTEL_*` variables clnrm gives a container of a scenario that exports over
//! OTLP: where the receiver is, the protocol, the resource attributes that name the
//! scenario and service, the file's `[otel]` settings, and the run's token in
//! `OTEL_EXPORTER_OTLP_HEADERS` (which the official SDKs send as headers).

use crate::otel::Receiver;
use crate::otel::receiver::{SCENARIO_ATTR, TOKEN_HEADER};
use crate::plan::{OtlpSettings, resource_attributes};

/// The variables that carry OTLP headers: the generic one and the traces one (which
/// the SDKs prefer when both are set).
const HEADER_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
];

/// The `OTEL_*` variables of a container of an environment that exports over OTLP;
/// `scenario` is added to the resource attributes of a step's commands.
pub fn otel_env(
    settings: &OtlpSettings,
    receiver: &Receiver,
    service: &str,
    scenario: Option<&str>,
) -> Vec<(String, String)> {
    let port = if settings.grpc() {
        receiver.grpc_port()
    } else {
        receiver.http_port()
    };
    let mut resources = Vec::new();
    if let Some(id) = scenario {
        resources.push((SCENARIO_ATTR.to_owned(), id.to_owned()));
    }
    resources.push(("clnrm.service".to_owned(), service.to_owned()));
    resources.extend(settings.resources.iter().cloned());
    let mut env = vec![
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            format!("http://host.docker.internal:{port}"),
        ),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
            settings.protocol.clone(),
        ),
        (
            "OTEL_RESOURCE_ATTRIBUTES".to_owned(),
            resource_attributes(&resources),
        ),
    ];
    if !settings.resources.iter().any(|(k, _)| k == "service.name") {
        env.push(("OTEL_SERVICE_NAME".to_owned(), service.to_owned()));
    }
    env.extend(settings.env.iter().cloned());
    if !env.iter().any(|(k, _)| k == HEADER_VARS[0]) {
        env.push((HEADER_VARS[0].to_owned(), String::new()));
    }
    env
}

/// Puts the receiver's token first in every header variable of `env`, whoever set
/// it (the file's `[otel.headers]`, a service's or a step's `env`), so that the
/// value that wins still carries it.
pub fn with_token(env: &mut [(String, String)], receiver: &Receiver) {
    let Some(token) = receiver.token() else {
        return;
    };
    let pair = format!("{TOKEN_HEADER}={token}");
    for (k, v) in env.iter_mut() {
        if HEADER_VARS.contains(&k.as_str()) && !v.split(',').any(|p| p.trim() == pair) {
            *v = if v.trim().is_empty() {
                pair.clone()
            } else {
                format!("{pair},{v}")
            };
        }
    }
}
