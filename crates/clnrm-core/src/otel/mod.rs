//! OpenTelemetry intake: the span model, reading spans from a scenario's stdout
//! (OTLP-JSON and flat span objects), the OTLP receiver (HTTP and gRPC), and the
//! saved span artifacts.

pub mod artifacts;
mod intake;
mod json_request;
pub mod limits;
mod proto;
pub mod receiver;
mod span;

pub use intake::{IntakeError, flat_span, from_otlp_json, parse_line, spans_in_output};
pub use json_request::from_otlp_json_bytes;
pub use limits::{Overflow, SpanBudget, SpanLimits};
pub use proto::from_proto;
pub use receiver::{Collected, Receiver, ReceiverConfig};
pub use span::{AttrValue, SpanEvent, SpanLink, SpanRecord};
