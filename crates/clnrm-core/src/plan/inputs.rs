//! Which host paths each planned scenario reads (its services' bind mounts), and the
//! plan once their digests are known: each service carries the digest of each of its
//! mounts, so that an environment or fixture snapshot made from other content is
//! another one (a warm container that read the old file is not reused). Files in a
//! writable mount that runs have been seen to write themselves are the service's
//! data: they do not make another environment or snapshot.

use super::scenario::{Plan, PlannedScenario};
use crate::inputs::Digests;
use crate::inputs::written::Written;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// How a service's input whose content cannot be summarised is named in its key
/// (followed by the run): an environment or snapshot of it is that run's own.
pub const UNKNOWABLE: &str = "unknowable, run ";

impl PlannedScenario {
    /// The host paths its services bind-mount, absolute, each once.
    pub fn host_inputs(&self) -> BTreeSet<PathBuf> {
        self.env
            .services
            .iter()
            .flat_map(|s| s.mounts_with_fixture())
            .map(|m| PathBuf::from(&m.host_path))
            .collect()
    }

    /// The host paths its services bind-mount writable: the only ones a run of it
    /// can change.
    pub fn writable_inputs(&self) -> BTreeSet<PathBuf> {
        self.env
            .services
            .iter()
            .flat_map(|s| s.mounts_with_fixture())
            .filter(|m| !m.read_only)
            .map(|m| PathBuf::from(&m.host_path))
            .collect()
    }
}

/// The host paths the selected scenarios of `plan` read.
pub fn host_inputs(plan: &Plan) -> BTreeSet<PathBuf> {
    plan.selected()
        .flat_map(PlannedScenario::host_inputs)
        .collect()
}

/// Gives every service of `plan` the digests of its mounts (in a writable one, the
/// files `written` says runs write themselves left out) and re-keys the environments; scenarios' fingerprints stay as they were (their cache
/// keys name each input as a part of its own).
///
/// An input whose content cannot be summarised (unreadable, too many entries) makes
/// the environments that mount it this run's own (`run_id`): none made by another
/// run is reused for it.
pub fn attach_inputs(plan: &mut Plan, digests: &Digests, written: &Written, run_id: &str) {
    let of = |mounts: &[crate::backend::Mount]| -> Vec<String> {
        mounts
            .iter()
            .map(|m| {
                let path = std::path::Path::new(&m.host_path);
                let skip = written
                    .get(path)
                    .filter(|_| !m.read_only)
                    .cloned()
                    .unwrap_or_default();
                match digests.get(path) {
                    Some(crate::inputs::InputDigest::Unknowable(_)) => {
                        format!("{UNKNOWABLE}{run_id}")
                    }
                    Some(d) => d
                        .without(&skip)
                        .unwrap_or_else(|| "written by its runs".to_owned()),
                    None => "unknown".to_owned(),
                }
            })
            .collect()
    };
    for sc in &mut plan.scenarios {
        if sc
            .env
            .services
            .iter()
            .all(|s| s.mounts_with_fixture().next().is_none())
        {
            continue;
        }
        let env = Arc::make_mut(&mut sc.env);
        for svc in &mut env.services {
            svc.inputs = of(&svc.mounts);
            // The one-shots run into its fixture: their inputs are the snapshot's too.
            if let Some(setup) = svc.setup.as_mut().filter(|s| !s.then.is_empty()) {
                for one in &mut Arc::make_mut(setup).then {
                    one.inputs = of(&one.mounts);
                }
            }
        }
        env.rekey();
    }
}

/// The build contexts of the services of a validated file (SPEC §14), absolute
/// (relative ones read from the file's directory), each with the Dockerfiles built
/// from it (relative to it); none for a file that could not be read.
pub fn file_contexts(
    cf: &crate::validate::CheckedFile,
) -> std::collections::BTreeMap<PathBuf, BTreeSet<String>> {
    let mut out: std::collections::BTreeMap<PathBuf, BTreeSet<String>> = Default::default();
    let Some(file) = &cf.file else {
        return out;
    };
    let base = cf.path.parent().unwrap_or(std::path::Path::new("."));
    for b in file
        .services
        .iter()
        .filter_map(|(_, svc)| svc.build.as_ref())
    {
        let dockerfile = b.dockerfile().trim_start_matches("./").to_owned();
        out.entry(b.context_in(base))
            .or_default()
            .insert(dockerfile);
    }
    out
}

/// The host paths the services of a validated file bind-mount, absolute (relative ones
/// read from the file's directory); none for a file that could not be read.
pub fn file_inputs(cf: &crate::validate::CheckedFile) -> BTreeSet<PathBuf> {
    let Some(file) = &cf.file else {
        return BTreeSet::new();
    };
    let base = cf.path.parent().unwrap_or(std::path::Path::new("."));
    file.services
        .iter()
        .flat_map(|(_, svc)| &svc.volumes)
        .filter(|v| !v.host_path.value.is_empty())
        .map(|v| v.host_path_in(base))
        .collect()
}
