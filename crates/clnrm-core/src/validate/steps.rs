//! What every step needs, in a scenario or a service's set-up: a command that is not
//! empty, a timeout above 0, retry bounds in range.

use super::ctx::Ctx;
use crate::diag::Code;
use crate::model::Sp;

/// What every step needs, wherever it is: a command, a sane timeout.
pub(super) fn check_step(cx: &mut Ctx<'_>, step: &crate::model::Step, what: &str) {
    if let Some(command) = &step.command
        && command.value.is_empty()
    {
        cx.error(
            Code::EmptyCommand,
            command.span,
            format!("{what} \"{}\" has an empty command", step.name.value),
            "expected a program and its arguments",
        );
    }
    check_timeout(cx, step.timeout_ms.as_ref());
    if let Some(retry) = &step.retry {
        let (max, a) = (crate::model::defaults::RETRY_MAX_ATTEMPTS, &retry.attempts);
        if a.value == 0 || a.value > max {
            cx.error(
                Code::OutOfRange,
                a.span,
                format!("`retry.attempts` is {}", a.value),
                format!("expected 1 to {max} (runs in all, the first included)"),
            );
        }
        let max = crate::model::defaults::RETRY_MAX_INTERVAL_MS;
        if let Some(i) = &retry.interval_ms
            && i.value > max
        {
            cx.error(
                Code::OutOfRange,
                i.span,
                format!("`retry.interval_ms` is {}", i.value),
                format!("expected at most {max} (10 minutes)"),
            );
        }
    }
}

pub(super) fn check_timeout(cx: &mut Ctx<'_>, timeout: Option<&Sp<u64>>) {
    if let Some(t) = timeout
        && t.value == 0
    {
        cx.error(
            Code::OutOfRange,
            t.span,
            "`timeout_ms` must be above 0".into(),
            "0 would time out at once",
        );
    }
}
