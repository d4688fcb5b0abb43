//! Rules on `[determinism]`: a frozen clock is an RFC 3339 timestamp.

use super::ctx::Ctx;
use crate::diag::Code;
use crate::model::TestFile;

pub(super) fn check_determinism(file: &TestFile, cx: &mut Ctx<'_>) {
    let Some(clock) = file
        .determinism
        .as_ref()
        .and_then(|d| d.freeze_clock.as_ref())
    else {
        return;
    };
    if time::OffsetDateTime::parse(&clock.value, &time::format_description::well_known::Rfc3339)
        .is_err()
    {
        cx.error(
            Code::BadTimestamp,
            clock.span,
            format!(
                "`freeze_clock` \"{}\" is not an RFC 3339 timestamp",
                clock.value
            ),
            "expected e.g. \"2025-01-01T00:00:00Z\"",
        );
    }
}
