//! `clnrm cache stats --explain`: plans the selected scenarios as a run would (their
//! inputs read through the stat index, their images' ids asked of the engine) and
//! explains each one's key against the entry of its last run, without running it.

use super::plan::plan_run;
use super::{PipelineError, Prepared};
use crate::backend::ContainerEngine;
use crate::cache::explain::{Explanation, explain};
use crate::cache::{Cache, INPUT_PART};
use crate::config::RunConfig;
use crate::exec::{RunOwner, scenario_key, with_snapshots};
use crate::inputs::InputDigest;
use std::collections::{BTreeMap, HashMap};

/// The explanations of the selected scenarios of `prepared` (with `config`'s
/// selection), in plan order, their images' ids asked of `engine`, and what the user
/// should know (no engine, so image parts are unknown).
pub async fn explain_keys<E: ContainerEngine>(
    prepared: &Prepared,
    config: &RunConfig,
    engine: Option<&E>,
) -> Result<(Vec<Explanation>, Vec<String>), PipelineError> {
    let config = RunConfig {
        cache: true,
        force: false,
        update_baseline: false,
        ..config.clone()
    };
    let planned = plan_run(prepared, &config, RunOwner::current())?;
    let mut warnings = planned.warnings.clone();
    let mut image_ids = HashMap::new();
    let images: std::collections::BTreeSet<&str> = planned
        .plan
        .selected()
        .flat_map(|s| s.env.services.iter().flat_map(|v| v.keyed_images()))
        .collect();
    for image in images {
        let found = match engine {
            Some(engine) => engine.image(image).await.ok().flatten(),
            None => None,
        };
        match found {
            Some(info) => {
                image_ids.insert(image.to_owned(), info.id);
            }
            None => warnings.push(format!(
                "the id of image {image} is unknown (no engine answered, or the image is missing): its part is shown empty"
            )),
        }
    }
    let layout = prepared.project.layout();
    let cache = Cache::open(&layout.cache());
    let manifests = crate::cache::manifests_dir(&layout.cache());
    let inputs = planned.options.inputs.as_deref();
    let out = planned
        .plan
        .selected()
        .map(|sc| {
            let key = scenario_key(sc, &image_ids, planned.options.baseline.as_deref(), inputs);
            let key = with_snapshots(&key, sc);
            let now_files: BTreeMap<String, BTreeMap<String, String>> = sc
                .host_inputs()
                .into_iter()
                .filter_map(|p| match inputs.and_then(|d| d.get(&p)) {
                    Some(InputDigest::Known { files, .. }) if !files.is_empty() => {
                        Some((format!("{INPUT_PART}{}", p.display()), files.clone()))
                    }
                    _ => None,
                })
                .collect();
            explain(
                &sc.id.0,
                &key,
                cache.entry(&sc.id.0),
                &manifests,
                &now_files,
            )
        })
        .collect();
    Ok((out, warnings))
}
