//! `grpc` steps: the call clnrm makes and what its answer is checked against, planned
//! from a step's `grpc` table. Making it is `exec::grpc`'s job.

use super::encoding::millis;
use crate::model::defaults;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// A `grpc` step's call and checks.
#[derive(Clone, Debug, Serialize)]
pub struct GrpcSpec {
    /// `<service id>:<port>` as written (`${name}` resolved before the call).
    pub target: String,
    /// `package.Service/Method`.
    pub method: String,
    /// The request as JSON.
    pub json: serde_json::Value,
    /// Request metadata.
    pub metadata: Vec<(String, String)>,
    /// The `.proto` files, relative to `proto_base`; none: the server's reflection.
    pub proto: Vec<String>,
    /// The directory of the test file, where the `.proto` files are named from.
    #[serde(skip)]
    pub proto_base: PathBuf,
    /// A digest of the text of every `.proto` file the call's descriptors come from
    /// (those named and what they import): a changed file is another scenario.
    pub proto_digest: String,
    /// The call's deadline.
    #[serde(serialize_with = "millis")]
    pub timeout: Duration,
    /// The status that counts as success (0 OK).
    pub expected_status: i32,
    /// JSONPath → the value it must select first in the response (a stream's: the
    /// array of its messages).
    #[serde(serialize_with = "super::http::json_checks")]
    pub expected_json: Vec<(crate::model::JsonPathQuery, serde_json::Value)>,
}

impl GrpcSpec {
    /// The service and port the target names, when it names them (not a capture).
    pub fn target(&self) -> Option<(String, u16)> {
        if self.target.contains('$') {
            return None;
        }
        let (host, port) = self.target.rsplit_once(':')?;
        Some((host.to_owned(), port.parse().ok()?))
    }
}

pub(super) fn grpc_spec(
    st: &crate::model::Step,
    g: &crate::model::GrpcRequest,
    base: &std::path::Path,
) -> GrpcSpec {
    let json = super::http::toml_json;
    let proto: Vec<String> = g
        .proto
        .iter()
        .flat_map(|p| p.value.iter().map(|f| f.value.clone()))
        .collect();
    GrpcSpec {
        target: g.target.value.clone(),
        method: g.method.value.clone(),
        json: g
            .json
            .as_ref()
            .map_or_else(|| serde_json::json!({}), |j| json(&j.value)),
        metadata: g
            .metadata
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        proto_digest: proto_digest(base, &proto),
        proto,
        proto_base: base.to_path_buf(),
        timeout: Duration::from_millis(
            g.timeout_ms
                .as_ref()
                .map_or(defaults::HTTP_TIMEOUT_MS, |t| t.value),
        ),
        expected_status: st.expected_grpc_status.as_ref().map_or(0, |s| {
            s.value
                .parse()
                .ok()
                .or_else(|| crate::grpc::call::code_of(&s.value))
                .unwrap_or(0)
        }),
        expected_json: super::http::expected_json(st),
    }
}

/// The digest of the files `proto` compiles from (what they import too), in order;
/// of the names alone when they do not compile (the run reports why).
fn proto_digest(base: &std::path::Path, proto: &[String]) -> String {
    if proto.is_empty() {
        return String::new();
    }
    let mut parts: Vec<String> = proto.to_vec();
    if let Ok(protos) = crate::grpc::Protos::compile(base, proto) {
        for path in protos.files_read() {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            parts.push(format!(
                "{}\0{}",
                path.display(),
                crate::digest::key([text.as_str()])
            ));
        }
    }
    crate::digest::key(parts.iter().map(String::as_str))
}
