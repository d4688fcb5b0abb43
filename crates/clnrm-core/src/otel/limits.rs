//! How many spans a scenario may collect: at most [`SpanLimits::max_spans`] spans and
//! [`SpanLimits::max_bytes`] bytes of span data (as held in memory, estimated by
//! [`SpanRecord::approx_bytes`]). A [`SpanBudget`] keeps what fits and counts the rest,
//! whatever the intake (OTLP receiver or stdout), so that nothing a system under test
//! sends can make clnrm's memory or its artifacts grow without bound.

use super::span::SpanRecord;
use std::fmt;

/// `[otel] max_spans` when a file does not set it.
pub const DEFAULT_MAX_SPANS: usize = 100_000;
/// Span data one scenario may collect (SPEC §12: 64 MiB).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Bounds on one scenario's spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanLimits {
    /// Spans kept, at most.
    pub max_spans: usize,
    /// Bytes of span data kept, at most.
    pub max_bytes: usize,
}

impl Default for SpanLimits {
    fn default() -> Self {
        Self {
            max_spans: DEFAULT_MAX_SPANS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// What did not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow {
    /// Spans kept.
    pub kept: usize,
    /// Spans dropped.
    pub dropped: usize,
    /// Requests dropped unread once the limits were reached.
    pub unread: usize,
    /// The limits that were hit.
    pub limits: SpanLimits,
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "more spans than a scenario may collect ([otel] max_spans = {}, at most {} MiB of span data): kept {}, dropped {}",
            self.limits.max_spans,
            self.limits.max_bytes / (1024 * 1024),
            self.kept,
            self.dropped
        )?;
        if self.unread > 0 {
            write!(f, " and {} requests unread", self.unread)?;
        }
        Ok(())
    }
}

/// Spans collected within limits.
#[derive(Clone, Debug, Default)]
pub struct SpanBudget {
    spans: Vec<SpanRecord>,
    bytes: usize,
    dropped: usize,
    unread: usize,
    limits: SpanLimits,
}

impl SpanBudget {
    /// An empty budget.
    pub fn new(limits: SpanLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Keeps `span` if it fits; returns whether it did. Once one span did not fit,
    /// none is kept any more (the set is already incomplete).
    pub fn push(&mut self, span: SpanRecord) -> bool {
        let size = span.approx_bytes();
        if self.dropped > 0
            || self.spans.len() >= self.limits.max_spans
            || self.bytes + size > self.limits.max_bytes
        {
            self.dropped += 1;
            return false;
        }
        self.bytes += size;
        self.spans.push(span);
        true
    }

    /// Keeps what fits of `spans`; returns how many were dropped.
    pub fn extend(&mut self, spans: impl IntoIterator<Item = SpanRecord>) -> usize {
        spans.into_iter().map(|s| usize::from(!self.push(s))).sum()
    }

    /// Whether a span has been dropped: nothing more will be kept.
    pub fn is_full(&self) -> bool {
        self.dropped > 0
    }

    /// Counts a request dropped unread (the budget was full before it was read).
    pub fn drop_unread(&mut self) {
        self.unread += 1;
    }

    /// The spans kept.
    pub fn spans(&self) -> &[SpanRecord] {
        &self.spans
    }

    /// Bytes of the spans kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The spans kept, and what did not fit if anything did not.
    pub fn into_parts(self) -> (Vec<SpanRecord>, Option<Overflow>) {
        let overflow = (self.dropped > 0).then_some(Overflow {
            kept: self.spans.len(),
            dropped: self.dropped,
            unread: self.unread,
            limits: self.limits,
        });
        (self.spans, overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str) -> SpanRecord {
        crate::otel::parse_line(&format!(
            r#"{{"name":"{name}","trace_id":"t","span_id":"s"}}"#
        ))
        .unwrap_or_default()
        .remove(0)
    }

    #[test]
    fn spans_past_either_bound_are_dropped_and_counted() {
        let mut by_count = SpanBudget::new(SpanLimits {
            max_spans: 2,
            max_bytes: usize::MAX,
        });
        assert_eq!(by_count.extend((0..5).map(|i| span(&i.to_string()))), 3);
        let (kept, over) = by_count.into_parts();
        assert_eq!(kept.len(), 2);
        assert_eq!(over.map(|o| (o.kept, o.dropped)), Some((2, 3)));

        let one = span("x").approx_bytes();
        let mut by_bytes = SpanBudget::new(SpanLimits {
            max_spans: usize::MAX,
            max_bytes: one * 3 + one / 2,
        });
        by_bytes.extend((0..10).map(|_| span("x")));
        assert_eq!(by_bytes.spans().len(), 3);
        assert!(by_bytes.bytes() <= one * 3);
        // Once incomplete, a small span that would fit is not kept either.
        let mut b = SpanBudget::new(SpanLimits {
            max_spans: 10,
            max_bytes: one,
        });
        assert!(b.push(span("x")));
        assert!(!b.push(span(&"long".repeat(100))));
        assert!(!b.push(span("")));
    }

    #[test]
    fn within_the_bounds_nothing_overflows() {
        let mut b = SpanBudget::new(SpanLimits::default());
        assert_eq!(b.extend((0..100).map(|i| span(&i.to_string()))), 0);
        assert_eq!(b.into_parts().1, None);
    }
}
