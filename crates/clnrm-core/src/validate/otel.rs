//! Rules on `[otel]`: a sample ratio in range, span bounds above 0 and the right way
//! round, an http(s) endpoint, known propagators.

use super::ctx::{Ctx, bounds_error};
use crate::diag::{Code, Diagnostic};
use crate::model::TestFile;

/// Known context propagators.
const PROPAGATORS: &[&str] = &[
    "tracecontext",
    "baggage",
    "b3",
    "b3multi",
    "jaeger",
    "xray",
    "ottrace",
    "none",
];

pub(super) fn check_otel(file: &TestFile, cx: &mut Ctx<'_>) {
    let Some(otel) = &file.otel else { return };
    if let Some(r) = &otel.sample_ratio
        && !(0.0..=1.0).contains(&r.value)
    {
        cx.error(
            Code::OutOfRange,
            r.span,
            format!("`sample_ratio` {} is outside 0.0 to 1.0", r.value),
            "expected 0.0 to 1.0",
        );
    }
    if let Some(m) = &otel.max_spans
        && m.value == 0
    {
        cx.error(
            Code::OutOfRange,
            m.span,
            "`max_spans` 0 would refuse every span".into(),
            "expected 1 or more",
        );
    }
    for (name, v) in [
        ("settle_ms", &otel.settle_ms),
        ("max_wait_ms", &otel.max_wait_ms),
    ] {
        if let Some(v) = v
            && v.value == 0
        {
            cx.error(
                Code::OutOfRange,
                v.span,
                format!("`{name}` must be above 0"),
                "expected 1 or more",
            );
        }
    }
    if let (Some(settle), Some(max)) = (&otel.settle_ms, &otel.max_wait_ms)
        && settle.value > max.value
    {
        bounds_error(
            cx,
            settle.span,
            max.span,
            "settle_ms",
            "max_wait_ms",
            &settle.value,
            &max.value,
        );
    }
    if let Some(e) = &otel.endpoint {
        let ok = ["http://", "https://"]
            .iter()
            .any(|p| e.value.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
        if !ok {
            cx.error(
                Code::BadValue,
                e.span,
                format!("`endpoint` \"{}\" is not an http(s) URL", e.value),
                "expected e.g. \"http://localhost:4318\"",
            );
        }
    }
    for p in otel.propagators.iter().flat_map(|p| &p.use_) {
        if !PROPAGATORS.contains(&p.as_str()) {
            let mut d = Diagnostic::warning(
                Code::UnknownWord,
                format!("unknown propagator \"{}\"", p.value),
            )
            .at(cx.src, p.span, format!("known: {}", PROPAGATORS.join(", ")));
            if let Some(best) = crate::model::reader::closest(&p.value, PROPAGATORS) {
                let quoted = format!("\"{best}\"");
                d = d.suggest(&quoted, quoted.clone());
            }
            cx.diags.push(d);
        }
    }
}
