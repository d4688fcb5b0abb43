//! `clnrm import`: test definitions made from other tools' files. Today: Compose
//! ([`compose`]). The output is clnrm's TOML text, with what had no equivalent listed
//! in a comment at its top, so that a user can see what was left behind.

pub mod compose;
pub(crate) mod toml_text;

pub use compose::{ComposeInput, from_compose};

/// What an import made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// The test definition, as TOML text.
    pub toml: String,
    /// What had no equivalent, one line each (also in the text's header comment).
    pub skipped: Vec<String>,
}

/// Why a file cannot be imported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The file is not YAML, with the position the parser gives.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file as named to the user.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A value that cannot be imported, named by its path in the file.
    #[error("{file}: {path}: {message}")]
    Value {
        /// The file as named to the user.
        file: String,
        /// Where, such as `services.web.ports[1]`.
        path: String,
        /// What is wrong, naming the offending value.
        message: String,
    },
}
