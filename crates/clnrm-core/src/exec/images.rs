//! The images of a run, looked at once before it starts: each image's id (part of
//! the cache keys), whether it can serve an agent, and why it cannot be had.

use super::pool::{AgentShell, agent_shell};
use crate::backend::{ContainerEngine, EngineError};
use crate::plan::Plan;
use std::collections::{BTreeSet, HashMap};

/// What the run knows about its images.
#[derive(Default)]
pub(super) struct Images {
    /// Image → the shell to use as agent.
    pub shells: HashMap<String, Option<AgentShell>>,
    /// Image → why it cannot be had.
    pub errors: HashMap<String, String>,
    /// Image → its id.
    pub ids: HashMap<String, String>,
}

/// Inspects every image of the selected scenarios once; pulls what is missing.
pub(super) async fn resolve_images<E: ContainerEngine>(engine: &E, plan: &Plan) -> Images {
    let images: BTreeSet<String> = plan
        .selected()
        .flat_map(|s| s.env.services.iter().map(|v| v.image.clone()))
        .collect();
    let mut out = Images::default();
    for image in images {
        let mut found = engine.image(&image).await;
        if matches!(found, Ok(None)) {
            found = match engine.pull(&image).await {
                Ok(()) => engine.image(&image).await,
                Err(e) => Err(e),
            };
        }
        match found {
            Ok(Some(info)) => {
                let shell = agent_shell(&info.cmd, &info.entrypoint).map(|program| AgentShell {
                    program,
                    as_root: matches!(info.user.split(':').next(), None | Some("" | "root" | "0")),
                });
                out.shells.insert(image.clone(), shell);
                out.ids.insert(image, info.id);
            }
            Ok(None) => {
                let e = EngineError::ImageMissing {
                    image: image.clone(),
                    reason: "the pull reported success but the image is not there".into(),
                };
                out.errors.insert(image, e.to_string());
            }
            Err(e) => {
                out.errors.insert(image, e.to_string());
            }
        }
    }
    out
}
