//! Checking a scenario's collected spans against the file's `[[expect.*]]` tables
//! (SPEC §1.1). Every expectation kind: span, graph, counts, window, order, status,
//! hermeticity. A failure names the expectation and where it is written, what was
//! expected, and what was found nearest. No spans at all where expectations exist is
//! a failure, never a pass. Pure: no I/O.

mod matchers;

use crate::diag::{Source, Span};
use crate::model::Expect;
use crate::otel::SpanRecord;
use std::fmt;
use std::sync::Arc;

/// A file's expectations with the source they were read from (for positions).
#[derive(Clone, Debug)]
pub struct ExpectSet {
    /// The expectations.
    pub expect: Expect,
    /// The TOML they were parsed from.
    pub source: Arc<Source>,
    /// The file as shown to users.
    pub display: String,
}

impl ExpectSet {
    /// `file:line:col` of a span in the source.
    pub fn at(&self, span: Span) -> String {
        let lc = self.source.line_col(span.start);
        format!("{}:{}:{}", self.display, lc.line, lc.col)
    }
}

/// An expectation that the spans do not meet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmet {
    /// Which expectation, e.g. `[[expect.span]] "payment.authorize"`.
    pub what: String,
    /// Where it is written: `file:line:col`.
    pub at: String,
    /// What it asks for.
    pub expected: String,
    /// What was found nearest.
    pub found: String,
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): expected {}; found {}",
            self.what, self.at, self.expected, self.found
        )
    }
}

/// Every unmet expectation of `set` for `spans`.
pub fn check(set: &ExpectSet, spans: &[SpanRecord]) -> Vec<Unmet> {
    let e = &set.expect;
    if e.is_empty() {
        return Vec::new();
    }
    if spans.is_empty() {
        return vec![Unmet {
            what: "expectations".into(),
            at: set.display.clone(),
            expected: "spans from the system under test".into(),
            found: "no spans at all (check [otel].exporter and that the system exports)".into(),
        }];
    }
    let mut out = Vec::new();
    for s in &e.spans {
        out.extend(matchers::span(set, s, spans));
    }
    if let Some(g) = &e.graph {
        out.extend(matchers::graph(set, g, spans));
    }
    if let Some(c) = &e.counts {
        out.extend(matchers::counts(set, c, spans));
    }
    for w in &e.windows {
        out.extend(matchers::window(set, w, spans));
    }
    if let Some(o) = &e.order {
        out.extend(matchers::order(set, o, spans));
    }
    if let Some(s) = &e.status {
        out.extend(matchers::status(set, s, spans));
    }
    if let Some(h) = &e.hermeticity {
        out.extend(matchers::hermeticity(set, h, spans));
    }
    out
}

#[cfg(test)]
mod tests;
