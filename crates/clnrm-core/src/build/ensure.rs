//! Built images, one build per tag per run: an image whose tag (its build's key) the
//! engine already has is used as it is, so a run in which no source changed builds
//! nothing; scenarios that need the same build while it is made wait for it.

use super::{BuildRecipe, KeyError, context_tar};
use crate::backend::{BUILD_REPO, BuildOutcome, BuildSpec, ContainerEngine, EngineError};
use crate::inputs::StatIndex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// An image there is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ensured {
    /// Its tag.
    pub tag: String,
    /// Its id.
    pub id: String,
    /// Whether this run built it (else the engine had it).
    pub built: bool,
    /// What the builder printed (its end), when this run built it.
    pub output: String,
}

/// Why there is no image.
#[derive(Debug, thiserror::Error)]
pub enum EnsureError {
    /// The context could not be read or archived.
    #[error(transparent)]
    Context(#[from] KeyError),
    /// The builder stopped.
    #[error("building {tag} failed: {message}")]
    Failed {
        /// The tag it was to get.
        tag: String,
        /// Why, as the builder said it.
        message: String,
        /// What it printed up to then (its end).
        output: String,
    },
    /// The context changed between its key and its archive: what would be built is not
    /// what the tag names.
    #[error("build context {}: it changed while it was read; run again", context.display())]
    Changed {
        /// The context.
        context: PathBuf,
    },
    /// The engine did not answer.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What a build is: where its context is, how it is built, whose it is.
#[derive(Clone, Debug)]
pub struct Wanted {
    /// The build's context directory.
    pub context: PathBuf,
    /// How it is built.
    pub recipe: BuildRecipe,
    /// The project's root, where what clnrm built for it is recorded.
    pub root: String,
    /// The project (its root's name) and the service, for its tag.
    pub project: String,
    /// The service.
    pub service: String,
    /// The build's key, as its tag was made from ([`super::build_key`] then
    /// [`super::with_bases`]).
    pub key: String,
}

/// Records `tag` as built for `wanted`'s service in its project (what `clnrm cache`
/// lists and prunes); a record that cannot be written only leaves it out of those.
fn remember(wanted: &Wanted, tag: &str) {
    if let Err(e) = super::record_built(Path::new(&wanted.root), tag, &wanted.service) {
        eprintln!("warning: the build of {tag} is not recorded in the project ({e})");
    }
}

/// The tag of `service`'s image in `project` built with key `key`:
/// `clnrm-build/<project>-<service>:<key>`, names lowered and made of what a
/// repository name may hold.
pub fn build_tag(project: &str, service: &str, key: &str) -> String {
    let name = |s: &str| -> String {
        let lowered: String = s
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_alphanumeric() { c } else { '-' }
            })
            .collect();
        let trimmed = lowered.trim_matches('-');
        if trimmed.is_empty() {
            "x".to_owned()
        } else {
            trimmed.chars().take(60).collect()
        }
    };
    let key: String = key.chars().take(32).collect();
    format!("{BUILD_REPO}/{}-{}:{key}", name(project), name(service))
}

type Cell = Arc<OnceCell<Result<Ensured, Arc<EnsureError>>>>;

/// The builds of one run, made at most once per key (services built from the same
/// sources the same way share the image, under a tag each).
pub struct Builds<E> {
    engine: Arc<E>,
    made: Mutex<HashMap<String, Cell>>,
}

impl<E: ContainerEngine> Builds<E> {
    /// No build made yet, on `engine`.
    pub fn new(engine: Arc<E>) -> Self {
        Self {
            engine,
            made: Mutex::new(HashMap::new()),
        }
    }

    /// The image tagged `tag` (the key of `wanted`): the engine's when it has it, else
    /// built now, once however many ask for it in this run (another service's image
    /// of the same key is tagged `tag` too).
    pub async fn ensure(&self, tag: &str, wanted: &Wanted) -> Result<Ensured, Arc<EnsureError>> {
        // By key: services built from the same sources the same way share one image.
        let cell = self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(wanted.key.clone())
            .or_default()
            .clone();
        let first = cell
            .get_or_init(|| async { self.make(tag, wanted).await.map_err(Arc::new) })
            .await
            .clone()?;
        if first.tag == tag {
            return Ok(first);
        }
        // Another service's build of the same sources: that image, named for this one
        // too.
        let named = async {
            if self.engine.image(tag).await?.is_none() {
                self.engine.tag_image(&first.id, tag).await?;
                remember(wanted, tag);
            }
            Ok::<(), EngineError>(())
        };
        named.await.map_err(|e| Arc::new(EnsureError::Engine(e)))?;
        Ok(Ensured {
            tag: tag.to_owned(),
            id: first.id,
            built: false,
            output: String::new(),
        })
    }

    async fn make(&self, tag: &str, wanted: &Wanted) -> Result<Ensured, EnsureError> {
        if let Some(info) = self.engine.image(tag).await? {
            return Ok(Ensured {
                tag: tag.to_owned(),
                id: info.id,
                built: false,
                output: String::new(),
            });
        }
        let context = archive(&wanted.context, &wanted.recipe, &wanted.key).await?;
        let spec = BuildSpec {
            tag: tag.to_owned(),
            dockerfile: wanted.recipe.dockerfile().to_owned(),
            target: wanted.recipe.target.clone(),
            args: wanted.recipe.args.clone(),
        };
        match self.engine.build(&spec, context).await? {
            BuildOutcome::Built { id, output } => {
                remember(wanted, tag);
                Ok(Ensured {
                    tag: tag.to_owned(),
                    id,
                    built: true,
                    output,
                })
            }
            BuildOutcome::Failed { message, output } => Err(EnsureError::Failed {
                tag: tag.to_owned(),
                message,
                output,
            }),
        }
    }
}

/// The archive of a sync: each file (where it is, its content's SHA-256 when it was
/// keyed, its absolute path in the image) at its path in the image, owned by root as
/// `COPY` makes them, when its content is still what was keyed (`None` when not, or
/// when the archive cannot be made: the caller builds instead). Reads the files: call
/// it off the runtime's threads.
pub fn sync_tar(files: &[(PathBuf, String, String)]) -> Option<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, hash, target) in files {
        let bytes = std::fs::read(path).ok()?;
        let now = crate::inputs::index::hash_reader(&mut bytes.as_slice()).ok()?;
        if &now != hash {
            return None;
        }
        let meta = std::fs::metadata(path).ok()?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata(&meta);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(bytes.len() as u64);
        header.set_cksum();
        tar.append_data(
            &mut header,
            target.trim_start_matches('/'),
            bytes.as_slice(),
        )
        .ok()?;
    }
    tar.into_inner().ok()
}

/// The context's archive, made on a blocking thread (it reads every file), when the
/// context's key, taken again from the files once they are archived, is still `key`:
/// an edit while the tag was made, or while the files were read, is not built under a
/// tag that names other content.
async fn archive(context: &Path, recipe: &BuildRecipe, key: &str) -> Result<Vec<u8>, EnsureError> {
    let (context, recipe, key) = (context.to_path_buf(), recipe.clone(), key.to_owned());
    let dir = context.clone();
    tokio::task::spawn_blocking(move || {
        let tar = context_tar(&context, &recipe)?;
        // Every file read again, not through a stat index: a build is worth it.
        let now = super::build_key(&context, &recipe, &mut StatIndex::in_memory())?;
        if super::with_bases(&now, &recipe.bases) != key {
            return Err(EnsureError::Changed { context });
        }
        Ok(tar)
    })
    .await
    .unwrap_or_else(|_| {
        Err(EnsureError::Context(KeyError::Context {
            context: dir,
            why: "archiving it failed (a bug; please report it)".into(),
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::fake::FakeEngine;

    fn wanted(dir: &Path) -> Wanted {
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap_or_else(|e| panic!("{e}"));
        let recipe = BuildRecipe::default();
        let key = super::super::build_key(dir, &recipe, &mut StatIndex::in_memory())
            .unwrap_or_else(|e| panic!("{e}"));
        let key = super::super::with_bases(&key, &recipe.bases);
        Wanted {
            context: dir.to_path_buf(),
            recipe,
            root: "/work/shop".into(),
            project: "Shop".into(),
            service: "api_v2".into(),
            key,
        }
    }

    #[test]
    fn a_tag_is_a_repository_name_whatever_the_names_are() {
        assert_eq!(
            build_tag("My Shop", "Api_V2", "abc"),
            "clnrm-build/my-shop-api-v2:abc"
        );
        assert_eq!(build_tag("---", "", "k"), "clnrm-build/x-x:k");
    }

    #[tokio::test]
    async fn a_build_is_made_once_however_many_scenarios_wait_for_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let w = wanted(dir.path());
        let engine = Arc::new(FakeEngine::new());
        let builds = Builds::new(engine.clone());
        let tag = build_tag(&w.project, &w.service, "k1");
        let (a, b) = tokio::join!(builds.ensure(&tag, &w), builds.ensure(&tag, &w));
        let (a, b) = (
            a.unwrap_or_else(|e| panic!("{e}")),
            b.unwrap_or_else(|e| panic!("{e}")),
        );
        assert!(a.built && b.built);
        assert_eq!(a.id, b.id);
        assert_eq!(engine.builds(), 1);
        // A later run finds it made: nothing is built.
        let later = Builds::new(engine.clone());
        let again = later
            .ensure(&tag, &w)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!again.built);
        assert_eq!(engine.builds(), 1);
        // Another service built the same way shares the image, under its own tag.
        let twin = Wanted {
            service: "worker".into(),
            ..w.clone()
        };
        let twin_tag = build_tag(&twin.project, &twin.service, "k1");
        let shared = later
            .ensure(&twin_tag, &twin)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (shared.id.as_str(), shared.built),
            (again.id.as_str(), false)
        );
        assert_eq!(engine.builds(), 1);
        assert!(engine.has_image(&twin_tag));
        // Another key is another build.
        std::fs::write(dir.path().join("app.py"), "changed").unwrap_or_else(|e| panic!("{e}"));
        let w2 = wanted(dir.path());
        let other = build_tag(&w2.project, &w2.service, "k2");
        later
            .ensure(&other, &w2)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(engine.builds(), 2);
    }

    #[tokio::test]
    async fn a_context_changed_since_its_key_is_not_built_under_that_key() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let w = wanted(dir.path());
        std::fs::write(dir.path().join("app.py"), "edited after the key")
            .unwrap_or_else(|e| panic!("{e}"));
        let engine = Arc::new(FakeEngine::new());
        let e = Builds::new(engine.clone())
            .ensure("clnrm-build/shop-api-v2:k", &w)
            .await
            .expect_err("changed");
        assert!(e.to_string().contains("changed while it was read"), "{e}");
        assert_eq!(engine.builds(), 0);
    }

    #[tokio::test]
    async fn a_context_that_is_not_there_is_an_error_naming_it() {
        let engine = Arc::new(FakeEngine::new());
        let w = Wanted {
            context: PathBuf::from("/nonexistent/ctx"),
            recipe: BuildRecipe::default(),
            root: "/p".into(),
            project: "p".into(),
            service: "s".into(),
            key: "k".into(),
        };
        let e = Builds::new(engine)
            .ensure("clnrm-build/p-s:k", &w)
            .await
            .expect_err("no context");
        assert!(e.to_string().contains("/nonexistent/ctx"), "{e}");
    }
}
