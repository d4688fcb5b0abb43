//! A step (`[[scenario.steps]]` or `[[service.<id>.setup]]`): a command, an HTTP
//! request or a gRPC call, the checks on its result, its captures and its retry.

use crate::diag::Span;
use crate::model::{HttpUrl, JsonPathQuery, Pattern, Sp, SpMap};
use schemars::JsonSchema;

/// A step's `http`: a request clnrm sends to a service of the scenario.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD` or `OPTIONS` (default `GET`).
    pub method: Option<Sp<String>>,
    /// `http://<service id>:<container port>/path?query`.
    pub url: Sp<HttpUrl>,
    /// Request headers.
    #[serde(default)]
    pub headers: SpMap<Sp<String>>,
    /// The request body as text.
    pub body: Option<Sp<String>>,
    /// The request body as JSON (sets `Content-Type: application/json`).
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Sp<toml::Value>>,
    /// Time the request may take in milliseconds (default 30000).
    pub timeout_ms: Option<Sp<u64>>,
    /// Where the `http` table is.
    #[serde(skip)]
    pub span: Span,
}

/// A step's `grpc`: a call clnrm makes itself to a service of the scenario (SPEC §17).
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct GrpcRequest {
    /// `<service id>:<container port>`: the service and the port it serves gRPC on.
    pub target: Sp<String>,
    /// `package.Service/Method`.
    pub method: Sp<String>,
    /// The request message as JSON (proto3's JSON mapping; default `{}`).
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Sp<toml::Value>>,
    /// Request metadata (ASCII keys and values).
    #[serde(default)]
    pub metadata: SpMap<Sp<String>>,
    /// `.proto` files that describe the service, relative to this file (compiled by
    /// clnrm); without them, the server's reflection service describes it.
    pub proto: Option<Sp<Vec<Sp<String>>>>,
    /// The call's deadline in milliseconds (default 30000).
    pub timeout_ms: Option<Sp<u64>>,
    /// Where the `grpc` table is.
    #[serde(skip)]
    pub span: Span,
}

fn grpc_status_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let code = generator.subschema_for::<u8>();
    schemars::json_schema!({
        "anyOf": [{ "type": "string" }, code]
    })
}

fn status_codes_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let code = generator.subschema_for::<u16>();
    schemars::json_schema!({
        "anyOf": [code, { "type": "array", "items": code, "minItems": 1 }]
    })
}

/// One `capture` of a step: a JSONPath query or a regex over one of its outputs.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Capture {
    /// JSONPath (RFC 9535) into the output parsed as JSON; the first value selected.
    pub json: Option<Sp<JsonPathQuery>>,
    /// Regex over the output; its first group (or the whole match, without groups).
    pub regex: Option<Sp<Pattern>>,
    /// Which output: `stdout` (default for commands), `stderr`, `body` (default for
    /// `http`) or `header:<name>`.
    pub from: Option<Sp<String>>,
    /// `json` or `regex` is written (even if it did not compile).
    #[serde(skip)]
    pub says: bool,
    /// Where the capture's table is.
    #[serde(skip)]
    pub span: Span,
}

/// A step's `retry`: for eventual consistency and readiness.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Retry {
    /// Runs in all, the first included (1 to 1000).
    pub attempts: Sp<u64>,
    /// Pause between runs in milliseconds (default 500).
    pub interval_ms: Option<Sp<u64>>,
}

/// `[[scenario.steps]]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Step {
    /// The step's name.
    pub name: Sp<String>,
    /// Program and arguments, not run through a shell (or `http`).
    #[schemars(length(min = 1))]
    pub command: Option<Sp<Vec<Sp<String>>>>,
    /// An HTTP request clnrm makes itself (or `command`).
    pub http: Option<HttpRequest>,
    /// A gRPC call clnrm makes itself (or `command`).
    pub grpc: Option<GrpcRequest>,
    /// The gRPC status that counts as success, by name (`NOT_FOUND`) or number (5)
    /// (default `OK`).
    #[serde(default)]
    #[schemars(schema_with = "grpc_status_schema")]
    pub expected_grpc_status: Option<Sp<String>>,
    /// HTTP status codes that count as success (default: any 2xx).
    #[serde(default)]
    #[schemars(schema_with = "status_codes_schema")]
    pub expected_status: Option<Sp<Vec<Sp<u16>>>>,
    /// Regex the HTTP response body must match.
    pub expected_body_regex: Option<Sp<Pattern>>,
    /// JSONPath (RFC 9535) → the value it must select first in the response body (of
    /// a `grpc` step: the response message, or the array of a stream's messages).
    #[serde(default)]
    #[schemars(with = "SpMap<serde_json::Value>")]
    pub expected_json: SpMap<toml::Value>,
    /// Service to run in (defaults to the scenario's; for an `http` step, the service
    /// its URL names; in a set-up, the service itself).
    pub service: Option<Sp<String>>,
    /// Exit code that counts as success (default 0).
    pub expected_exit_code: Option<Sp<i64>>,
    /// Regex that stdout or stderr must match.
    pub expected_output_regex: Option<Sp<Pattern>>,
    /// Working directory in the container.
    pub workdir: Option<Sp<String>>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: SpMap<Sp<String>>,
    /// Carry on with the next step when this one fails.
    pub continue_on_failure: Option<Sp<bool>>,
    /// Kill the step's container and fail with `timeout` after this many milliseconds.
    pub timeout_ms: Option<Sp<u64>>,
    /// Run a failing step again, up to `attempts` times in all.
    pub retry: Option<Retry>,
    /// Compare the step's output (an `http` step's body) with its snapshot in
    /// `.clnrm/snapshots/` (after `[snapshot] redact`).
    pub snapshot: Option<Sp<bool>>,
    /// Values taken from what the step printed, for `${name}` in later steps.
    #[serde(default)]
    pub capture: SpMap<Capture>,
    /// Where the step's table is.
    #[serde(skip)]
    pub span: Span,
}
