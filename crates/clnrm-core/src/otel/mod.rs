//! OpenTelemetry intake: the span model, reading spans from a scenario's stdout
//! (OTLP-JSON and flat span objects), and the saved span artifacts.

pub mod artifacts;
mod intake;
mod span;

pub use intake::{flat_span, from_otlp_json, parse_line, spans_in_output};
pub use span::{AttrValue, SpanEvent, SpanRecord};
