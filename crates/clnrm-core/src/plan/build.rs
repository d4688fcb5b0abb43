//! A service whose image is built from source (SPEC §14), as a run plans it: where its
//! context is and how it is built, written in the file; the key of its sources and
//! the base images its Dockerfile names, read by the run ([`attach_builds`]); its tag,
//! once the run knows the bases' ids ([`BuildPlan::tag`]).
//!
//! A scenario's cache key names the key of its sources and its bases' ids (not the
//! built image's id): a run in which no source changed finds its passes without
//! asking the engine for the image at all, and a rebuild of the same sources does not
//! count as a change.

use crate::build::{BuildRecipe, base_images, build_sources, build_tag, with_bases};
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
    /// The project's root, where what clnrm built for it is recorded.
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
    /// The context's regular files (relative path → content hash) its sources' key
    /// covers, read with it: what tells which files a later change touched.
    #[serde(skip)]
    pub files: Arc<BTreeMap<String, String>>,
    /// `develop.watch` rules that sync (`sync`, `sync+restart`): where the files
    /// under a path of the context go in the image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sync: Vec<SyncRule>,
    /// `develop.watch` rules that rebuild: paths of the context.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rebuild: Vec<String>,
    /// In a session that watches (`clnrm watch`), the image is the last one with the
    /// changed files put into it (`develop` sync) rather than a build of its sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synced: Option<Synced>,
    /// Paths in the context that are clnrm's own (the project's outputs): neither
    /// keyed nor sent.
    #[serde(skip)]
    pub leave_out: Vec<PathBuf>,
    /// Where `[service.<id>.build]` is written (`file:line:col`).
    #[serde(skip)]
    pub at: String,
}

/// A `sync` rule: the files under `path` (relative to the context) go under `target`
/// in the image.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SyncRule {
    /// A path of the context.
    pub path: String,
    /// An absolute path in the image.
    pub target: String,
}

/// An image's changed files put into the containers of an earlier image instead of
/// a build (`develop` sync): each container of the service is made from `onto`, and
/// the files are copied into it before it starts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Synced {
    /// The tag of the image they go into.
    pub onto: String,
    /// Each file: its path in the context, its path in the image.
    pub files: Vec<(String, String)>,
    /// The files as the engine is given them (a tar whose paths are from `/`), read
    /// once when the sync is decided.
    #[serde(skip)]
    pub archive: Arc<Vec<u8>>,
    /// For a rebuild (not a `develop` sync): the tag of the build made meanwhile,
    /// whose last `COPY`s put the files where they are put here
    /// ([`BuildPlan::ahead_onto`]). The scenarios' verdicts wait for it and stand
    /// for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahead: Option<String>,
}

impl Synced {
    /// What tells this sync from another: the image and each file's place in it.
    pub fn id(&self) -> String {
        let mut parts = vec![self.onto.as_str()];
        for (from, to) in &self.files {
            parts.push(from);
            parts.push(to);
        }
        crate::digest::key(parts)
    }
}

impl BuildPlan {
    /// What its image is made by besides its context's files: the Dockerfile's path,
    /// the target, the arguments, the bases' ids (from `ids`) and the `develop` sync
    /// rules. A sync goes only into an image made by the same.
    pub fn recipe_id(&self, ids: &HashMap<String, String>) -> String {
        let mut parts = vec![
            "dockerfile".to_owned(),
            self.dockerfile.clone(),
            "target".to_owned(),
            self.target.clone().unwrap_or_default(),
        ];
        for (k, v) in &self.args {
            parts.push(format!("arg {k}"));
            parts.push(v.clone());
        }
        for (name, id) in self.base_ids(ids) {
            parts.push(format!("base {name}"));
            parts.push(id);
        }
        for rule in &self.sync {
            parts.push(format!("sync {}", rule.path));
            parts.push(rule.target.clone());
        }
        crate::digest::key(parts.iter().map(String::as_str))
    }

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

    /// The key of its image (sources and bases' ids), when its sources have one; for a
    /// synced one, also the image the files went into.
    pub fn key(&self, ids: &HashMap<String, String>) -> Result<String, String> {
        match &self.sources {
            Some(Ok(sources)) => {
                let key = with_bases(sources, &self.base_ids(ids));
                Ok(match &self.synced {
                    Some(s) if s.ahead.is_none() => {
                        crate::digest::key([key.as_str(), "synced", s.id().as_str()])
                    }
                    _ => key,
                })
            }
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

    /// What a scenario's cache key names of its image: the key of its sources, and for
    /// a synced one the image the files went into (a pass on a synced image is no pass
    /// of a build of the same sources).
    pub fn sources_part(&self) -> Option<Result<String, String>> {
        let sources = self.sources.clone()?;
        Some(sources.map(|k| match &self.synced {
            Some(s) if s.ahead.is_none() => format!(
                "{k} synced onto {} ({})",
                s.onto,
                crate::digest::short(&s.id())
            ),
            _ => k,
        }))
    }

    /// The files changed since an image made from `before` (the context's files then)
    /// as a sync into that image tagged `onto`, when the `develop` rules allow it:
    /// every changed or added file lies under a `sync` rule's path (and none under a
    /// `rebuild` rule's), none was removed, and neither the Dockerfile nor
    /// `.dockerignore` changed. `None` means a build.
    pub fn sync_onto(&self, onto: &str, before: &BTreeMap<String, String>) -> Option<Synced> {
        if self.sync.is_empty() {
            return None;
        }
        let (added, removed, changed) = crate::inputs::manifest::changes(before, &self.files);
        if !removed.is_empty() {
            return None;
        }
        let under = |rel: &str, path: &str| {
            let path = path.trim_start_matches("./").trim_end_matches('/');
            path.is_empty() || path == "." || rel == path || rel.starts_with(&format!("{path}/"))
        };
        let mut files = Vec::new();
        for rel in added.iter().chain(&changed) {
            if rel == &self.dockerfile
                || rel == ".dockerignore"
                || self.rebuild.iter().any(|p| under(rel, p))
            {
                return None;
            }
            let rule = self.sync.iter().find(|r| under(rel, &r.path))?;
            let path = rule.path.trim_start_matches("./").trim_end_matches('/');
            let rest = if path.is_empty() || path == "." {
                rel.as_str()
            } else {
                rel[path.len()..].trim_start_matches('/')
            };
            let target = if rest.is_empty() {
                rule.target.clone()
            } else {
                format!("{}/{rest}", rule.target.trim_end_matches('/'))
            };
            files.push((rel.clone(), target));
        }
        (!files.is_empty()).then(|| Synced {
            onto: onto.to_owned(),
            files,
            archive: Arc::default(),
            ahead: None,
        })
    }

    /// The files changed since an image made from `before` (the context's files then)
    /// put into that image tagged `onto`, while the build tagged `tag` is made, when
    /// its `dockerfile` (its text) puts them into the image only with the last
    /// instructions of the stage it builds, `COPY`s with nothing after them that reads
    /// or changes the file system ([`crate::build::late_copies`]): the files at their
    /// places make the image the build makes. None was removed, neither the Dockerfile
    /// nor `.dockerignore` changed, and one at least goes into the image. `None`
    /// means the scenarios wait for the build.
    pub fn ahead_onto(
        &self,
        (onto, tag): (&str, &str),
        before: &BTreeMap<String, String>,
        dockerfile: &str,
    ) -> Option<Synced> {
        let (added, removed, changed) = crate::inputs::manifest::changes(before, &self.files);
        if !removed.is_empty() {
            return None;
        }
        let late = crate::build::late_copies(dockerfile, self.target.as_deref())?;
        let mut files = Vec::new();
        for rel in added.iter().chain(&changed) {
            if rel == &self.dockerfile || rel == ".dockerignore" {
                return None;
            }
            for place in late.places(rel)? {
                files.push((rel.clone(), place));
            }
        }
        (!files.is_empty()).then(|| Synced {
            onto: onto.to_owned(),
            files,
            archive: Arc::default(),
            ahead: Some(tag.to_owned()),
        })
    }

    /// What the image is called before its tag is known:
    /// `clnrm-build/<project>-<service>:unkeyed-<digest of its context and recipe>`,
    /// one name per build (the errors of builds that cannot be keyed are kept by it).
    pub fn untagged(&self) -> String {
        let context = self.context.to_string_lossy();
        let mut parts = vec![context.as_ref(), self.dockerfile.as_str()];
        let target = self.target.clone().unwrap_or_default();
        parts.push(&target);
        for (k, v) in &self.args {
            parts.push(k);
            parts.push(v);
        }
        let id = crate::digest::short(&crate::digest::key(parts));
        build_tag(&self.project, &self.service, &format!("unkeyed-{id}"))
    }
}

/// Reads the sources of the builds of the selected scenarios of `plan` (each context
/// once, through `index`) and the base images their Dockerfiles name; `leave_out` are
/// clnrm's own outputs, part of no build.
pub fn attach_builds(plan: &mut super::Plan, index: &mut StatIndex, leave_out: &[PathBuf]) {
    // What a build is made from (context, Dockerfile, target, arguments) → its
    // sources' key and its bases.
    type Made = (PathBuf, String, Option<String>, BTreeMap<String, String>);
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
            b.leave_out = leave_out
                .iter()
                .filter(|p| p.starts_with(&b.context) || b.context.starts_with(p))
                .cloned()
                .collect();
            let id = (
                b.context.clone(),
                b.dockerfile.clone(),
                b.target.clone(),
                b.args.clone(),
            );
            let got = read
                .entry(id)
                .or_insert_with(|| read_sources(b, index))
                .clone();
            b.sources = Some(got.sources);
            b.bases = got.bases;
            b.files = got.files;
        }
        env.rekey();
    }
}

/// What is read of a build's sources.
#[derive(Clone)]
struct Read {
    /// Their key, or why there is none.
    sources: Result<String, String>,
    /// The images the Dockerfile starts from.
    bases: Vec<String>,
    /// The context's regular files.
    files: Arc<BTreeMap<String, String>>,
}

fn read_sources(b: &BuildPlan, index: &mut StatIndex) -> Read {
    let recipe = b.recipe(&HashMap::new());
    let dockerfile = b.context.join(&b.dockerfile);
    let bases = match crate::build::read_small_text(&dockerfile) {
        Ok(text) => base_images(&text, &b.args),
        Err(e) => {
            let why = format!("cannot read the Dockerfile {} ({e})", dockerfile.display());
            return Read {
                sources: Err(why),
                bases: Vec::new(),
                files: Arc::default(),
            };
        }
    };
    match build_sources(&b.context, &recipe, index) {
        Ok((key, files)) => Read {
            sources: Ok(key),
            bases,
            files: Arc::new(files),
        },
        Err(e) => Read {
            sources: Err(e.to_string()),
            bases,
            files: Arc::default(),
        },
    }
}

/// A path relative to a context as the walk names it: `./` and doubled or trailing
/// slashes left out.
fn normal(rel: &str) -> String {
    rel.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// The build of service `id` written in a file that lives in `base`, for `project`
/// (its root); `at` is where its table is.
pub(super) fn build_plan(
    id: &str,
    build: &crate::model::Build,
    develop: Option<&crate::model::Develop>,
    base: &Path,
    project: &str,
    at: String,
) -> BuildPlan {
    use crate::model::DevelopAction;
    let rules = develop.map(|d| d.watch.as_slice()).unwrap_or_default();
    let sync = rules
        .iter()
        .filter(|r| {
            matches!(
                r.action.value,
                DevelopAction::Sync | DevelopAction::SyncRestart
            )
        })
        .filter_map(|r| {
            Some(SyncRule {
                path: r.path.value.clone(),
                target: r.target.as_ref()?.value.clone(),
            })
        })
        .collect();
    let rebuild = rules
        .iter()
        .filter(|r| r.action.value == DevelopAction::Rebuild)
        .map(|r| r.path.value.clone())
        .collect();
    let name = crate::build::project_name(Path::new(project));
    BuildPlan {
        sync,
        rebuild,
        service: id.to_owned(),
        project: name,
        root: project.to_owned(),
        context: build.context_in(base),
        dockerfile: normal(build.dockerfile()),
        target: build.target.as_ref().map(|t| t.value.clone()),
        args: build
            .args
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        sources: None,
        bases: Vec::new(),
        files: Arc::default(),
        synced: None,
        leave_out: Vec::new(),
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(files: &[(&str, &str)]) -> BuildPlan {
        BuildPlan {
            service: "app".into(),
            project: "p".into(),
            root: "/p".into(),
            context: PathBuf::from("/p/app"),
            dockerfile: "Dockerfile".into(),
            target: None,
            args: BTreeMap::new(),
            sources: Some(Ok("k".into())),
            bases: Vec::new(),
            files: Arc::new(
                files
                    .iter()
                    .map(|(p, h)| ((*p).to_owned(), (*h).to_owned()))
                    .collect(),
            ),
            sync: vec![
                SyncRule {
                    path: "src".into(),
                    target: "/app/src/".into(),
                },
                SyncRule {
                    path: "./static/".into(),
                    target: "/srv".into(),
                },
            ],
            rebuild: vec!["src/requirements.txt".into()],
            synced: None,
            leave_out: Vec::new(),
            at: "t.clnrm.toml:1:1".into(),
        }
    }

    fn before() -> BTreeMap<String, String> {
        [
            ("Dockerfile", "d"),
            ("src/app.py", "1"),
            ("src/requirements.txt", "r"),
            ("static/css/a.css", "c"),
            ("README", "x"),
        ]
        .iter()
        .map(|(p, h)| ((*p).to_owned(), (*h).to_owned()))
        .collect()
    }

    #[test]
    fn changed_files_under_sync_paths_are_synced_to_their_targets() {
        let now = plan(&[
            ("Dockerfile", "d"),
            ("src/app.py", "2"),
            ("src/new/mod.py", "n"),
            ("src/requirements.txt", "r"),
            ("static/css/a.css", "c2"),
            ("README", "x"),
        ]);
        let synced = now.sync_onto("clnrm-build/p-app:old", &before());
        let synced = synced.unwrap_or_else(|| panic!("a sync"));
        assert_eq!(synced.onto, "clnrm-build/p-app:old");
        assert_eq!(
            synced.files,
            vec![
                (
                    "src/new/mod.py".to_owned(),
                    "/app/src/new/mod.py".to_owned()
                ),
                ("src/app.py".to_owned(), "/app/src/app.py".to_owned()),
                ("static/css/a.css".to_owned(), "/srv/css/a.css".to_owned()),
            ]
        );
    }

    #[test]
    fn a_change_no_sync_rule_covers_a_removal_or_a_rebuild_path_is_a_build() {
        let mut files = before();
        files.insert("README".into(), "y".into());
        let outside: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            plan(&outside).sync_onto("t", &before()),
            None,
            "outside every rule"
        );
        let mut files = before();
        files.remove("src/app.py");
        let removed: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(plan(&removed).sync_onto("t", &before()), None, "a removal");
        let mut files = before();
        files.insert("src/requirements.txt".into(), "r2".into());
        let rebuild: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            plan(&rebuild).sync_onto("t", &before()),
            None,
            "a rebuild path wins"
        );
        let mut files = before();
        files.insert("Dockerfile".into(), "d2".into());
        let dockerfile: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            plan(&dockerfile).sync_onto("t", &before()),
            None,
            "the Dockerfile"
        );
        let was = before();
        let same: Vec<(&str, &str)> = was.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let unchanged = plan(&same);
        assert_eq!(unchanged.sync_onto("t", &before()), None, "nothing to sync");
        let mut no_rules = plan(&same);
        no_rules.sync.clear();
        assert_eq!(
            no_rules.sync_onto("t", &BTreeMap::new()),
            None,
            "no sync rule"
        );
    }

    #[test]
    fn a_synced_image_is_keyed_apart_from_a_build_of_the_same_sources() {
        let mut p = plan(&[]);
        let ids = HashMap::new();
        let built = p.tag(&ids).unwrap_or_default();
        let part = p.sources_part();
        p.synced = Some(Synced {
            onto: "clnrm-build/p-app:old".into(),
            files: vec![("src/a.py".into(), "/app/src/a.py".into())],
            archive: Arc::default(),
            ahead: None,
        });
        assert_ne!(p.tag(&ids).unwrap_or_default(), built);
        assert_ne!(p.sources_part(), part);
        let part = p.sources_part().and_then(Result::ok).unwrap_or_default();
        assert!(
            part.starts_with("k synced onto clnrm-build/p-app:old ("),
            "{part}"
        );
        // Other files synced onto the same image are another image.
        let before = p.tag(&ids);
        if let Some(s) = p.synced.as_mut() {
            s.files[0].1 = "/srv/a.py".into();
        }
        assert_ne!(p.tag(&ids), before);
    }

    #[test]
    fn a_rebuild_whose_files_only_the_last_copies_read_goes_ahead_of_its_build() {
        let dockerfile = "FROM python:3 AS deps\nCOPY requirements.txt /r\nRUN pip install -r /r\nFROM python:3\nWORKDIR /app\nCOPY src/ ./src/\nCMD [\"python3\"]\n";
        let before = BTreeMap::from([
            ("Dockerfile".to_owned(), "d".to_owned()),
            ("requirements.txt".to_owned(), "r".to_owned()),
            ("src/a.py".to_owned(), "1".to_owned()),
        ]);
        let with = |changes: &[(&str, &str)]| {
            let mut files = before.clone();
            for (p, h) in changes {
                files.insert((*p).to_owned(), (*h).to_owned());
            }
            let mut p = plan(&[]);
            p.files = Arc::new(files);
            p
        };
        let ahead = with(&[("src/a.py", "2"), ("src/b.py", "3")])
            .ahead_onto(("t:old", "t:new"), &before, dockerfile)
            .unwrap_or_else(|| panic!("no ahead"));
        assert_eq!(ahead.onto, "t:old");
        assert_eq!(ahead.ahead.as_deref(), Some("t:new"));
        assert_eq!(
            ahead.files,
            vec![
                ("src/b.py".to_owned(), "/app/src/b.py".to_owned()),
                ("src/a.py".to_owned(), "/app/src/a.py".to_owned())
            ]
        );
        // Its verdict stands for the build: keyed as the build is.
        let mut p = with(&[("src/a.py", "2")]);
        let built = p.tag(&HashMap::new());
        p.synced = Some(ahead);
        assert_eq!(p.tag(&HashMap::new()), built);
        assert_eq!(p.sources_part(), Some(Ok("k".to_owned())));
        // What an earlier stage's RUN reads, a removal, the Dockerfile: the build.
        let no = |p: BuildPlan, why: &str| {
            assert_eq!(
                p.ahead_onto(("t:old", "t:new"), &before, dockerfile),
                None,
                "{why}"
            );
        };
        no(with(&[("requirements.txt", "r2")]), "read by a RUN");
        no(with(&[("Dockerfile", "d2")]), "the Dockerfile");
        let mut removed = with(&[]);
        Arc::make_mut(&mut removed.files).remove("src/a.py");
        no(removed, "a removal");
        no(
            with(&[("notes.txt", "n")]),
            "copied by nothing: nothing to put",
        );
    }
}
