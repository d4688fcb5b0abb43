//! Why a run could not be made: the one error type of the entry point, which its
//! stages (planning, conclusion) return too.

use crate::config::BadFlag;
use crate::diff::BaselineError;
use crate::report::WriteError;

/// Why a run could not be planned or concluded.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A flag with a value that cannot be used.
    #[error(transparent)]
    Flag(#[from] BadFlag),
    /// The baseline cannot be read or written.
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    /// A report file cannot be written.
    #[error(transparent)]
    Reports(#[from] WriteError),
    /// The engine does not answer (something had to run).
    #[error(transparent)]
    Engine(#[from] crate::backend::EngineError),
}

impl PipelineError {
    /// Whether the user's input is at fault (else the environment is).
    pub fn is_invalid_input(&self) -> bool {
        match self {
            PipelineError::Flag(_) => true,
            PipelineError::Baseline(e) => matches!(e, BaselineError::Corrupt { .. }),
            PipelineError::Reports(_) | PipelineError::Engine(_) => false,
        }
    }
}
