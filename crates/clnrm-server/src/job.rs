//! What a run submitted to the service is: the options a client may give (SPEC §9)
//! and the checks of its project, made by the API when it is submitted and by a
//! worker before it runs it.

use crate::problem::Problem;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Run options a client may give (SPEC §9).
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunOptions {
    /// Scenarios at once.
    #[schema(minimum = 1, maximum = 1024)]
    pub workers: Option<u64>,
    /// Scenario-id glob.
    pub filter: Option<String>,
    /// Only scenarios with any of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Template variables.
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
    /// Run everything.
    #[serde(default)]
    pub force: bool,
    /// Runs after a failure.
    #[schema(maximum = 100)]
    pub retries: Option<u64>,
    /// Record baselines.
    #[serde(default)]
    pub update_baseline: bool,
    /// Only the scenarios with these ids (`file::name`; empty: every selected one),
    /// at most 1000 of 64 KiB in all: `run --server --failed` sends those whose last
    /// outcome here failed. Left out when empty (a server of before it refuses it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scenarios: Vec<String>,
}

/// The most scenario ids a run's options may name.
pub const MAX_SCENARIO_IDS: usize = 1000;

/// The most bytes the scenario ids of a run's options may hold in all (they travel in
/// a header).
pub const MAX_SCENARIO_BYTES: usize = 64 * 1024;

impl RunOptions {
    pub(crate) fn check(&self) -> Result<(), Problem> {
        if self.workers.is_some_and(|w| !(1..=1024).contains(&w)) {
            return Err(Problem::bad_request("options.workers: expected 1 to 1024"));
        }
        if self
            .retries
            .is_some_and(|r| r > clnrm_core::validate::MAX_RETRIES)
        {
            return Err(Problem::bad_request("options.retries: expected 0 to 100"));
        }
        if let Some(f) = &self.filter {
            globset::Glob::new(f)
                .map_err(|e| Problem::bad_request(format!("options.filter: {e}")))?;
        }
        if self.scenarios.len() > MAX_SCENARIO_IDS
            || self.scenarios.iter().map(String::len).sum::<usize>() > MAX_SCENARIO_BYTES
            || self
                .scenarios
                .iter()
                .any(|id| id.is_empty() || id.len() > 1024)
        {
            return Err(Problem::bad_request(format!(
                "options.scenarios: at most {MAX_SCENARIO_IDS} ids of 1 to 1024 bytes, {MAX_SCENARIO_BYTES} bytes in all"
            )));
        }
        Ok(())
    }

    /// `--var` assignments.
    pub fn assignments(&self) -> Vec<String> {
        self.vars.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// The paths a run runs (absolute): `tests/` when the project has it, else the
/// whole project.
pub fn paths(dir: &Path) -> Vec<PathBuf> {
    let tests = dir.join("tests");
    if tests.is_dir() {
        vec![tests]
    } else {
        vec![dir.to_path_buf()]
    }
}

/// A path an uploaded project names for clnrm to write or read that leads out of it.
#[derive(Debug, thiserror::Error)]
pub enum ConfinementError {
    /// `diff.baseline_path` of `.clnrm/config.toml`.
    #[error(".clnrm/config.toml: diff.baseline_path \"{0}\" is outside the project")]
    Baseline(String),
    /// A `[report]` path of a test file.
    #[error("{file}: [report] path \"{path}\" is outside the project")]
    Report {
        /// The test file, as shown to users.
        file: String,
        /// The path as written.
        path: String,
    },
    /// A `grpc` step's `.proto` file: clnrm would read a file of the server.
    #[error("{file}: step \"{step}\" names the .proto \"{path}\", outside the project")]
    Proto {
        /// The test file, as shown to users.
        file: String,
        /// The step.
        step: String,
        /// The path as written.
        path: String,
    },
    /// A service's build context: the builder would be sent files of the server.
    #[error("{file}: service \"{service}\" is built from \"{path}\", outside the project")]
    BuildContext {
        /// The test file, as shown to users.
        file: String,
        /// The service.
        service: String,
        /// The context as written.
        path: String,
    },
}

/// Whether every path an uploaded project names for clnrm to write or read stays
/// inside it (`[report]` paths, `diff.baseline_path`, build contexts, `grpc` steps'
/// `.proto` files); the error names the first that does not.
pub fn confined(prepared: &clnrm_core::pipeline::Prepared) -> Result<(), ConfinementError> {
    use std::path::Component;
    let inside = |base: &Path, rel: &str| {
        let mut depth: i64 = 0;
        for c in base
            .join(rel)
            .strip_prefix(&prepared.project.root)
            .ok()
            .into_iter()
            .flat_map(Path::components)
        {
            match c {
                Component::ParentDir => depth -= 1,
                Component::Normal(_) => depth += 1,
                _ => {}
            }
            if depth < 0 {
                return false;
            }
        }
        !Path::new(rel).is_absolute() && base.join(rel).starts_with(&prepared.project.root)
    };
    let root = prepared.project.root.clone();
    let baseline = &prepared.project.config.diff.baseline_path;
    if !inside(&root, baseline) {
        return Err(ConfinementError::Baseline(baseline.clone()));
    }
    for f in &prepared.files {
        let dir = f.path.parent().unwrap_or(&root);
        for (id, svc) in f.file.iter().flat_map(|m| m.services.iter()) {
            let Some(build) = &svc.build else { continue };
            // A context that is a link leads where the link does.
            let real = build.context_in(dir).canonicalize();
            let real_root = root.canonicalize().unwrap_or_else(|_| root.clone());
            if !inside(dir, &build.context.value) || real.is_ok_and(|r| !r.starts_with(&real_root))
            {
                return Err(ConfinementError::BuildContext {
                    file: f.display.clone(),
                    service: id.value.clone(),
                    path: build.context.value.clone(),
                });
            }
        }
        let steps = f
            .file
            .iter()
            .flat_map(|m| m.scenarios.iter())
            .flat_map(|sc| sc.steps.iter());
        for step in steps {
            let files = step
                .grpc
                .iter()
                .flat_map(|g| g.proto.iter())
                .flat_map(|p| &p.value);
            for proto in files {
                // A file that is a link leads where the link does.
                let real = dir.join(&proto.value).canonicalize();
                let real_root = root.canonicalize().unwrap_or_else(|_| root.clone());
                if !inside(dir, &proto.value) || real.is_ok_and(|r| !r.starts_with(&real_root)) {
                    return Err(ConfinementError::Proto {
                        file: f.display.clone(),
                        step: step.name.value.clone(),
                        path: proto.value.clone(),
                    });
                }
            }
        }
        let Some(report) = f.file.as_ref().and_then(|m| m.report.as_ref()) else {
            continue;
        };
        for p in [&report.json, &report.junit, &report.digest]
            .into_iter()
            .flatten()
        {
            if !inside(dir, &p.value) {
                return Err(ConfinementError::Report {
                    file: f.display.clone(),
                    path: p.value.clone(),
                });
            }
        }
    }
    Ok(())
}
