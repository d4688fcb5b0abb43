//! What the rules of a file share: the context they report into, the ids of the
//! file's services and the check that a service a key names is one of them, and the
//! error for bounds written the wrong way round. `rules` and the rule modules it calls
//! (`scenarios`, `services`, `http`, `captures`, ...) all use it.

use super::HostPaths;
use crate::diag::{Code, Diagnostic, Diagnostics, Source, Span};
use crate::model::{Sp, TestFile};
use std::sync::Arc;

/// The file being checked and where its problems go.
pub(super) struct Ctx<'a> {
    pub(super) src: &'a Arc<Source>,
    pub(super) diags: &'a mut Diagnostics,
    pub(super) host: &'a HostPaths,
    /// The directory relative host paths are read from (the test file's, or the
    /// template's).
    pub(super) base: &'a std::path::Path,
}

impl Ctx<'_> {
    /// Records a finished diagnostic.
    pub(super) fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Records an error at `span` and returns it, to add help or a fix.
    pub(super) fn error(
        &mut self,
        code: Code,
        span: Span,
        message: String,
        label: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diags
            .push_mut(Diagnostic::error(code, message).at(self.src, span, label))
    }
}

/// Reports `service` (named by `who`) when it is none of `defined`, with the closest
/// one as a fix.
pub(super) fn check_reference(cx: &mut Ctx<'_>, service: &Sp<String>, defined: &[&str], who: &str) {
    if defined.contains(&service.as_str()) {
        return;
    }
    let label = if defined.is_empty() {
        format!("no [service.{}]; no services are defined", service.value)
    } else {
        format!(
            "no [service.{}]; defined: {}",
            service.value,
            defined.join(", ")
        )
    };
    let d = cx.error(
        Code::UndefinedService,
        service.span,
        format!("{who} references undefined service \"{}\"", service.value),
        label,
    );
    match crate::model::reader::closest(&service.value, defined) {
        Some(best) => {
            let quoted = format!("\"{best}\"");
            d.help = Some(format!("did you mean {quoted}?"));
            d.fix = Some(quoted);
        }
        None => {
            d.help = Some(format!(
                "define [service.{}] with an `image`",
                service.value
            ))
        }
    }
}

/// The ids of the file's services, in the order written.
pub(super) fn service_ids(file: &TestFile) -> Vec<&str> {
    file.services
        .iter()
        .map(|(k, _)| k.value.as_str())
        .collect()
}

/// Reports `lo_name` (at `lo`) above `hi_name` (at `hi`): no value satisfies both.
pub(super) fn bounds_error(
    cx: &mut Ctx<'_>,
    lo: Span,
    hi: Span,
    lo_name: &str,
    hi_name: &str,
    lo_v: &dyn std::fmt::Display,
    hi_v: &dyn std::fmt::Display,
) {
    let src = cx.src;
    let d = cx.error(
        Code::BadBounds,
        lo,
        format!("`{lo_name}` ({lo_v}) is above `{hi_name}` ({hi_v})"),
        format!("{lo_name} = {lo_v}"),
    );
    *d = d
        .clone()
        .also(src, hi, format!("{hi_name} = {hi_v}"))
        .help(format!(
            "no value can satisfy both; `{lo_name}` must be at most `{hi_name}`"
        ));
}
