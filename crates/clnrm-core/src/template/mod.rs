//! Rendering `*.clnrm.toml.tera` templates with Tera.
//!
//! Owns the variable context and its precedence, the clnrm template functions,
//! include resolution (next to the template, then `.clnrm/templates/`, then the
//! shipped `_macros.toml.tera`), and mapping template errors to diagnostics. It does
//! not parse TOML; that is [`crate::model`].

mod context;
mod engine;
mod fold;
mod functions;
mod guard;
mod origin;

pub use crate::model::reader::toml_to_value;
pub use context::{
    BadAssignment, DEFAULT_IMAGE, VarLayers, builtin_defaults, is_identifier, plain_table,
    tera_context,
};
pub use engine::{MACROS, MACROS_NAME, Rendered, TemplateEngine};
pub use functions::{sha256_hex, toml_encode};
pub use guard::MAX_DEPTH;

use std::sync::atomic::{AtomicBool, Ordering};

static UNTRUSTED: AtomicBool = AtomicBool::new(false);

/// Says that this process renders projects it did not get from its user (the runs
/// service's uploads): from then on a template may include only files of its own
/// project (no absolute path, no `..`), `env()` is refused and `CLNRM_VAR_*` is not
/// read, so that an upload cannot read the host's files or environment.
pub fn set_untrusted() {
    UNTRUSTED.store(true, Ordering::SeqCst);
}

/// Whether [`set_untrusted`] was called.
pub fn untrusted() -> bool {
    UNTRUSTED.load(Ordering::SeqCst)
}
pub use origin::{attach_template_origin, line_origins, locate_in_tags};

/// Whether a path names a template (`*.clnrm.toml.tera`) rather than plain TOML.
pub fn is_template(path: &std::path::Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".clnrm.toml.tera"))
}

#[cfg(test)]
mod tests;
