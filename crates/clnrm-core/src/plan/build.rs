//! A service whose image is built from source (SPEC §14), as a run plans it: where its
//! context is and how it is built, written in the file; the key of its sources and
//! the base images its Dockerfile names, read by the run ([`attach_builds`]); its tag,
//! once the run knows the bases' ids ([`BuildPlan::tag`]).
//!
//! A scenario's cache key names the key of its sources and its bases' ids (not the
//! built image's id): a run in which no source changed finds its passes without
//! asking the engine for the image at all, and a rebuild of the same sources does not
//! count as a change.

use crate::build::{BuildRecipe, base_images, build_key, build_tag, with_bases};
use crate::inputs::StatIndex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A service's image built from source.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct BuildPlan {
    /// The service it is built for.
    pub service: String,
    /// The project's name (its root directory's), for the tag.
    pub project: String,
    /// The project's root, for the label its images carry.
    #[serde(skip)]
    pub root: String,
    /// The context directory, absolute.
    pub context: PathBuf,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    /// The stage built (the last when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Build arguments.
    pub args: BTreeMap<String, String>,
    /// The key of its sources, once the run read them ([`attach_builds`]); why there
    /// is none when they cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Result<String, String>>,
    /// The images its Dockerfile starts from, by name (read with its sources).
    pub bases: Vec<String>,
    /// Paths in the context that are clnrm's own (the project's outputs): neither
    /// keyed nor sent.
    #[serde(skip)]
    pub leave_out: Vec<PathBuf>,
    /// Where `[service.<id>.build]` is written (`file:line:col`).
    #[serde(skip)]
    pub at: String,
}

impl BuildPlan {
    /// How it is built, with the bases' ids taken from `ids` (by image name).
    pub fn recipe(&self, ids: &HashMap<String, String>) -> BuildRecipe {
        BuildRecipe {
            dockerfile: self.dockerfile.clone(),
            target: self.target.clone(),
            args: self.args.clone(),
            bases: self.base_ids(ids),
            leave_out: self.leave_out.clone(),
        }
    }

    /// The bases' ids from `ids` (an empty id for one the engine does not have).
    pub fn base_ids(&self, ids: &HashMap<String, String>) -> BTreeMap<String, String> {
        self.bases
            .iter()
            .map(|b| (b.clone(), ids.get(b).cloned().unwrap_or_default()))
            .collect()
    }

    /// The key of its image (sources and bases' ids), when its sources have one.
    pub fn key(&self, ids: &HashMap<String, String>) -> Result<String, String> {
        match &self.sources {
            Some(Ok(sources)) => Ok(with_bases(sources, &self.base_ids(ids))),
            Some(Err(why)) => Err(why.clone()),
            None => Err(format!(
                "its build context {} was not read",
                self.context.display()
            )),
        }
    }

    /// The tag its image gets (or has) when its bases have ids `ids`.
    pub fn tag(&self, ids: &HashMap<String, String>) -> Result<String, String> {
        Ok(build_tag(&self.project, &self.service, &self.key(ids)?))
    }

    /// What the image is called before its tag is known: `clnrm-build/<project>-<service>`.
    pub fn untagged(&self) -> String {
        let tag = build_tag(&self.project, &self.service, "");
        tag.trim_end_matches(':').to_owned()
    }
}

/// Reads the sources of the builds of the selected scenarios of `plan` (each context
/// once, through `index`) and the base images their Dockerfiles name; `leave_out` are
/// clnrm's own outputs, part of no build.
pub fn attach_builds(plan: &mut super::Plan, index: &mut StatIndex, leave_out: &[PathBuf]) {
    // What a build is made from (context, Dockerfile, target, arguments) → its
    // sources' key and its bases.
    type Made = (PathBuf, String, Option<String>, BTreeMap<String, String>);
    type Read = (Option<Result<String, String>>, Vec<String>);
    let mut read: HashMap<Made, Read> = HashMap::new();
    for sc in plan
        .scenarios
        .iter_mut()
        .filter(|s| s.not_selected.is_none())
    {
        if sc.env.services.iter().all(|s| s.build.is_none()) {
            continue;
        }
        let env = Arc::make_mut(&mut sc.env);
        for svc in &mut env.services {
            let Some(build) = svc.build.as_mut() else {
                continue;
            };
            let b = Arc::make_mut(build);
            b.leave_out = leave_out.to_vec();
            let id = (
                b.context.clone(),
                b.dockerfile.clone(),
                b.target.clone(),
                b.args.clone(),
            );
            let (sources, bases) = read
                .entry(id)
                .or_insert_with(|| read_sources(b, index))
                .clone();
            b.sources = sources;
            b.bases = bases;
        }
        env.rekey();
    }
}

fn read_sources(
    b: &BuildPlan,
    index: &mut StatIndex,
) -> (Option<Result<String, String>>, Vec<String>) {
    let recipe = b.recipe(&HashMap::new());
    let dockerfile = b.context.join(&b.dockerfile);
    let bases = match std::fs::read_to_string(&dockerfile) {
        Ok(text) => base_images(&text, &b.args),
        Err(e) => {
            let why = format!("cannot read the Dockerfile {} ({e})", dockerfile.display());
            return (Some(Err(why)), Vec::new());
        }
    };
    let sources = build_key(&b.context, &recipe, index).map_err(|e| e.to_string());
    (Some(sources), bases)
}

/// The build of service `id` written in a file that lives in `base`, for `project`
/// (its root); `at` is where its table is.
pub(super) fn build_plan(
    id: &str,
    build: &crate::model::Build,
    base: &Path,
    project: &str,
    at: String,
) -> BuildPlan {
    let name = Path::new(project).file_name().map_or_else(
        || "project".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    BuildPlan {
        service: id.to_owned(),
        project: name,
        root: project.to_owned(),
        context: build.context_in(base),
        dockerfile: build.dockerfile().to_owned(),
        target: build.target.as_ref().map(|t| t.value.clone()),
        args: build
            .args
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        sources: None,
        bases: Vec::new(),
        leave_out: Vec::new(),
        at,
    }
}
