//! `clnrm build`: the images the selected scenarios build from source (SPEC §14),
//! made as a run would make them (same keys, same tags, each once) without running
//! anything: for a CI step that fills the engine's images before the tests, or to see
//! that a Dockerfile builds.

use super::plan::plan_run;
use super::{PipelineError, Prepared};
use crate::backend::ContainerEngine;
use crate::config::RunConfig;
use crate::exec::{BuildDone, RunOwner, build_images};
use std::sync::Arc;

/// Builds the images of the scenarios `config` selects in `prepared` on `engine`;
/// what became of each, and what the user should know.
pub async fn build<E: ContainerEngine>(
    prepared: &Prepared,
    config: &RunConfig,
    engine: Arc<E>,
) -> Result<(Vec<BuildDone>, Vec<String>), PipelineError> {
    let config = RunConfig {
        cache: false,
        ..config.clone()
    };
    let planned = plan_run(prepared, &config, RunOwner::current())?;
    engine.ping().await?;
    // Build events are the results here; nobody listens to them.
    let (events, _) = tokio::sync::mpsc::unbounded_channel();
    let done = build_images(&engine, planned.plan, config.workers.max(1), &events).await;
    Ok((done, planned.warnings))
}
