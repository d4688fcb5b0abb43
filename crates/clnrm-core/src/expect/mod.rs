//! Checking a scenario's collected spans against the file's `[[expect.*]]` tables
//! (SPEC §1.1). Every expectation kind: span, graph, counts, window, order, status,
//! hermeticity. A failure names the expectation and where it is written, what was
//! expected, and what was found nearest. No spans at all where expectations exist is
//! a failure, never a pass. Pure: no I/O.

mod matchers;
mod select;
pub mod starter;

pub use select::{Miss, NearMiss};

use crate::diag::{Source, SourceKind, Span};
use crate::model::{Expect, NamePattern};
use crate::otel::SpanRecord;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A file's expectations with the file they were read from (for positions).
#[derive(Clone, Debug)]
pub struct ExpectSet {
    /// The expectations.
    pub expect: Expect,
    /// The file they were parsed from.
    pub file: Arc<SourceFile>,
}

impl ExpectSet {
    /// `expect`, read from `source`, of the file shown as `display`.
    pub fn new(expect: Expect, source: Arc<Source>, display: String) -> Self {
        Self::in_file(expect, Arc::new(SourceFile::new(source, display)))
    }

    /// `expect`, read from `file` (shared with what else is located in it).
    pub fn in_file(expect: Expect, file: Arc<SourceFile>) -> Self {
        Self { expect, file }
    }

    /// The spans whose name matches `pattern`.
    pub(crate) fn named<'a>(
        &self,
        spans: &'a [SpanRecord],
        pattern: &NamePattern,
    ) -> Vec<&'a SpanRecord> {
        spans.iter().filter(|s| pattern.is_match(&s.name)).collect()
    }

    /// Where a span of the source is. For a template, that is the template line the
    /// expectation is literal text on; where it is not (a tag wrote it), the rendered
    /// line, marked as such.
    pub fn at(&self, span: Span) -> Position {
        self.file.at(span)
    }
}

/// A rendered test file, for the positions of what is written in it (an expectation,
/// a failed step); for a template, its line map is worked out on the first position
/// asked.
#[derive(Debug)]
pub struct SourceFile {
    source: Arc<Source>,
    display: String,
    origins: std::sync::OnceLock<Vec<Option<usize>>>,
}

impl SourceFile {
    /// `source`, the file shown as `display`.
    pub fn new(source: Arc<Source>, display: String) -> Self {
        Self {
            source,
            display,
            origins: std::sync::OnceLock::new(),
        }
    }

    /// The file as shown to users.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Where `span` is (the template line, for a template).
    pub fn at(&self, span: Span) -> Position {
        Position::locate(&self.source, &self.display, span, &self.origins)
    }
}

impl Position {
    /// Where `span` of `source` (the file shown as `display`) is: for a template, the
    /// template line it is literal text on; where it is not (a tag wrote it), the
    /// rendered line, marked as such. `origins` caches the template's line map.
    pub fn locate(
        source: &Source,
        display: &str,
        span: Span,
        origins: &std::sync::OnceLock<Vec<Option<usize>>>,
    ) -> Self {
        let lc = source.line_col(span.start);
        let mut at = Self {
            file: display.to_owned(),
            line: Some(lc.line),
            col: Some(lc.col),
            rendered: false,
        };
        if let SourceKind::Rendered { template } = source.kind() {
            let origins = origins.get_or_init(|| crate::template::line_origins(template, source));
            match origins.get(lc.line - 1).copied().flatten() {
                Some(line) => at.line = Some(line),
                None => at.rendered = true,
            }
        }
        at
    }
}

/// Where an expectation is written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The file, as shown to users.
    pub file: String,
    /// 1-based line, when the expectation has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column (in characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub col: Option<usize>,
    /// The position is in the rendered text of a template (a tag wrote the
    /// expectation, so no template line holds it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rendered: bool,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let (Some(line), Some(col)) = (self.line, self.col) {
            write!(f, ":{line}:{col}")?;
        }
        if self.rendered {
            f.write_str(" (rendered)")?;
        }
        Ok(())
    }
}

/// Which kind of expectation is unmet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectKind {
    /// The file has expectations and the scenario sent no span at all.
    NoSpans,
    /// `[[expect.span]]`.
    Span,
    /// `[expect.graph]`.
    Graph,
    /// `[expect.counts]`.
    Counts,
    /// `[[expect.window]]`.
    Window,
    /// `[expect.order]`.
    Order,
    /// `[expect.status]`.
    Status,
    /// `[expect.hermeticity]`.
    Hermeticity,
    /// `[[expect.log]]`.
    Log,
    /// `[[expect.per_span]]`.
    PerSpan,
}

/// An expectation that the spans do not meet, as data: reports render it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmet {
    /// Its kind.
    pub kind: ExpectKind,
    /// Which expectation, e.g. `[[expect.span]] "payment.authorize"`.
    pub what: String,
    /// Where it is written.
    #[serde(flatten)]
    pub at: Position,
    /// What it asks for.
    pub expected: String,
    /// What was found nearest.
    pub found: String,
    /// How many spans its selector matched, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<usize>,
    /// The closest spans its selector did not match (or, for `each`, the matching
    /// spans that failed), each with the criteria it failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub near: Vec<NearMiss>,
}

impl Unmet {
    /// The same with every text passed through `f` (secret masking).
    pub fn map_text(self, f: impl Fn(&str) -> String) -> Self {
        let near = self
            .near
            .into_iter()
            .map(|n| NearMiss {
                span: f(&n.span),
                span_id: n.span_id,
                misses: n
                    .misses
                    .into_iter()
                    .map(|m| Miss {
                        what: f(&m.what),
                        expected: f(&m.expected),
                        found: f(&m.found),
                    })
                    .collect(),
            })
            .collect();
        Self {
            what: f(&self.what),
            expected: f(&self.expected),
            found: f(&self.found),
            near,
            ..self
        }
    }
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

/// The unmet `[[expect.log]]` of `set`, given each service's log (`(service, text)`;
/// a service without one counts as an empty log).
pub fn check_logs(set: &ExpectSet, logs: &[(&str, &str)]) -> Vec<Unmet> {
    let mut out = Vec::new();
    for l in &set.expect.logs {
        let text = logs
            .iter()
            .find(|(s, _)| *s == l.service.value)
            .map_or("", |(_, t)| *t);
        let absent = l.absent.as_ref().is_some_and(|a| a.value);
        let (what, hit) = match (&l.contains, &l.regex) {
            (Some(c), _) => (
                format!("\"{}\"", c.value),
                text.lines().find(|line| line.contains(&c.value)),
            ),
            (None, Some(re)) => (
                format!("/{}/", re.as_str()),
                text.lines().find(|line| re.regex().is_match(line)),
            ),
            (None, None) => continue,
        };
        let found = match (absent, hit) {
            (false, None) => Some(match last_line(text) {
                Some(last) => format!("not in its log; it ends: {last}"),
                None => "its log is empty".to_owned(),
            }),
            (true, Some(line)) => Some(format!("the line: {line}")),
            _ => None,
        };
        if let Some(found) = found {
            out.push(Unmet {
                kind: ExpectKind::Log,
                what: format!("[[expect.log]] service \"{}\"", l.service.value),
                at: set.at(l.span),
                expected: format!(
                    "the log of \"{}\" {} {what}",
                    l.service.value,
                    if absent { "never shows" } else { "shows" }
                ),
                found,
                matched: None,
                near: Vec::new(),
            });
        }
    }
    out
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().rev().find(|l| !l.trim().is_empty())
}

/// Every unmet expectation of `set` for `spans`, with nothing known of the scenario
/// they came from (see [`check_in`]).
pub fn check(set: &ExpectSet, spans: &[SpanRecord]) -> Vec<Unmet> {
    check_in(set, spans, &Scope::default())
}

/// What the checks know of the scenario the spans came from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope<'a> {
    /// Its own hosts (service ids, container host names, addresses): a peer among
    /// them is no external service.
    pub own_hosts: &'a [String],
    /// The address of its network's gateway, where clnrm's own requests (HTTP steps,
    /// probes) come from: internal as the peer of a SERVER span only (a client that
    /// calls the gateway leaves the scenario's network).
    pub gateway: Option<&'a str>,
    /// Where its spans were looked for and how long, said when there were none.
    pub collected: &'a str,
}

/// Every unmet expectation of `set` for `spans` of the scenario `scope` describes.
pub fn check_in(set: &ExpectSet, spans: &[SpanRecord], scope: &Scope<'_>) -> Vec<Unmet> {
    let e = &set.expect;
    if !e.expects_spans() {
        return Vec::new();
    }
    if spans.is_empty() {
        return vec![Unmet {
            kind: ExpectKind::NoSpans,
            what: "expectations".into(),
            at: Position {
                file: set.file.display().to_owned(),
                line: None,
                col: None,
                rendered: false,
            },
            expected: "spans from the system under test".into(),
            found: if scope.collected.is_empty() {
                "no spans at all (check [otel].exporter and that the system exports)".into()
            } else {
                format!("no spans at all: {}", scope.collected)
            },
            matched: None,
            near: Vec::new(),
        }];
    }
    let trace = select::Trace::new(spans);
    let mut m = select::Matcher::new(&trace);
    let mut out = Vec::new();
    for s in &e.spans {
        out.extend(matchers::span(set, s, &mut m));
    }
    if let Some(g) = &e.graph {
        out.extend(matchers::graph(set, g, &mut m));
    }
    if let Some(c) = &e.counts {
        out.extend(matchers::counts(set, c, &mut m));
    }
    for w in &e.windows {
        out.extend(matchers::window(set, w, &mut m));
    }
    for p in &e.per_span {
        out.extend(matchers::per_span(set, p, &mut m));
    }
    if let Some(o) = &e.order {
        out.extend(matchers::order(set, o, &mut m));
    }
    if let Some(s) = &e.status {
        out.extend(matchers::status(set, s, spans));
    }
    if let Some(h) = &e.hermeticity {
        out.extend(matchers::hermeticity(set, h, spans, scope));
    }
    out
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_select;
