//! The images of a run, looked at once before it starts: each image's id (part of
//! the cache keys), whether it can serve an agent, and why it cannot be had; and the
//! images built from source (SPEC §14): their tags, once their bases' ids are known,
//! and their builds, made once per tag for the scenarios that run (a scenario the
//! cache answers needs no image).

use super::events::{Event, ServiceReport};
use super::pool::{AgentShell, agent_shell};
use super::services::last_lines;
use crate::backend::{ContainerEngine, EngineError, ImageInfo};
use crate::build::{Builds, EnsureError, Wanted, failed_step, sync_tar};
use crate::plan::{BuildPlan, Plan};
use futures_util::{FutureExt, StreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// Why the scenarios using an image cannot run.
#[derive(Clone, Debug)]
pub struct ImageError {
    /// In a sentence.
    pub message: String,
    /// For an image that could not be built: what the builder printed, as a report
    /// of the service it was for.
    pub build: Option<ServiceReport>,
}

impl ImageError {
    pub(super) fn plain(message: String) -> Self {
        Self {
            message,
            build: None,
        }
    }
}

/// What the run knows about its images.
#[derive(Default)]
pub(super) struct Images {
    /// Image → the shell to use as agent.
    pub shells: HashMap<String, Option<AgentShell>>,
    /// Image → why it cannot be had.
    pub errors: HashMap<String, ImageError>,
    /// Image → its id.
    pub ids: HashMap<String, String>,
}

impl Images {
    fn take(&mut self, image: String, found: Result<ImageInfo, String>) {
        match found {
            Ok(info) => {
                let shell = agent_shell(&info.cmd, &info.entrypoint).map(|program| AgentShell {
                    program,
                    as_root: matches!(info.user.split(':').next(), None | Some("" | "root" | "0")),
                });
                self.shells.insert(image.clone(), shell);
                self.ids.insert(image, info.id);
            }
            Err(e) => {
                self.errors.insert(image, ImageError::plain(e));
            }
        }
    }
}

/// Inspects every image the selected scenarios' keys name once (for a built one, its
/// bases); pulls what is missing.
pub(super) async fn resolve_images<E: ContainerEngine>(engine: &E, plan: &Plan) -> Images {
    let images: BTreeSet<String> = plan
        .selected()
        .flat_map(|s| s.env.services.iter().flat_map(|v| v.keyed_images()))
        .map(str::to_owned)
        .collect();
    let mut out = Images::default();
    for image in images {
        let found = inspect_or_pull(engine, &image).await;
        out.take(image, found);
    }
    out
}

async fn inspect_or_pull<E: ContainerEngine>(engine: &E, image: &str) -> Result<ImageInfo, String> {
    let mut found = engine.image(image).await;
    if matches!(found, Ok(None)) {
        found = match engine.pull(image).await {
            Ok(()) => engine.image(image).await,
            Err(e) => Err(e),
        };
    }
    match found {
        Ok(Some(info)) => Ok(info),
        Ok(None) => Err(EngineError::ImageMissing {
            image: image.to_owned(),
            reason: "the pull reported success but the image is not there".into(),
        }
        .to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// What a session that watches remembers of each build (by [`build_id`]): the image
/// its scenarios last used, and the context's files it holds.
#[derive(Clone, Debug)]
pub(super) struct LastBuild {
    tag: String,
    files: Arc<BTreeMap<String, String>>,
    /// What made it besides the files ([`BuildPlan::recipe_id`]).
    recipe: String,
    /// The context's shape then ([`crate::build::context_shape`]): modes, links and
    /// directories, which a sync does not carry.
    shape: Option<Arc<BTreeMap<String, String>>>,
}

impl LastBuild {
    /// Reads the context's shape (a walk of its entries, no content).
    fn of(plan: &BuildPlan, tag: &str, ids: &HashMap<String, String>) -> Self {
        Self {
            tag: tag.to_owned(),
            files: plan.files.clone(),
            recipe: plan.recipe_id(ids),
            shape: crate::build::context_shape(&plan.context, &plan.recipe(ids)).map(Arc::new),
        }
    }
}

/// The builds a watching session remembers.
pub(super) type LastBuilds = HashMap<String, LastBuild>;

/// A build's identity across runs: its project, service, context, Dockerfile, target
/// and arguments (two files may build one service id from one context differently).
fn build_id(b: &BuildPlan) -> String {
    let mut id = format!(
        "{}\0{}\0{}\0{}\0{}",
        b.root,
        b.service,
        b.context.display(),
        b.dockerfile,
        b.target.as_deref().unwrap_or_default()
    );
    for (k, v) in &b.args {
        id.push_str(&format!("\0{k}={v}"));
    }
    id
}

/// Gives every built service of `plan` its tag, made from the key of its sources and
/// its bases' ids (in `images`), and re-keys the environments. A build whose sources
/// have no key keeps its untagged name, with the reason as its image's error.
///
/// With `last` (a session that watches), a build whose `develop` rules sync every
/// file changed since the image it last used, and whose own tag the engine does not
/// have, becomes that image with the files put into it ([`BuildPlan::sync_onto`]).
pub(super) async fn tag_builds<E: ContainerEngine>(
    engine: &E,
    plan: &mut Plan,
    images: &mut Images,
    last: Option<&LastBuilds>,
) {
    // Each build's sync decided once, for all the scenarios that use it.
    let mut synced: HashMap<String, Option<crate::plan::Synced>> = HashMap::new();
    for sc in &mut plan.scenarios {
        if sc.env.services.iter().all(|s| s.build.is_none()) {
            continue;
        }
        let selected = sc.not_selected.is_none();
        let env = Arc::make_mut(&mut sc.env);
        for svc in &mut env.services {
            let Some(build) = &mut svc.build else {
                continue;
            };
            if selected && let Some(last) = last {
                let id = build_id(build);
                let sync = match synced.get(&id) {
                    Some(s) => s.clone(),
                    None => {
                        let s = sync_of(engine, build, last.get(&id), &images.ids).await;
                        synced.insert(id, s.clone());
                        s
                    }
                };
                if sync.is_some() {
                    Arc::make_mut(build).synced = sync;
                }
            }
            // A synced service's containers are made from the image the files go into.
            let tag = match &build.synced {
                Some(s) => Ok(s.onto.clone()),
                None => build.tag(&images.ids),
            };
            match tag {
                Ok(tag) => svc.image = tag,
                Err(why) if selected => {
                    let message = format!(
                        "service \"{}\" ({}): cannot build its image: {why}",
                        build.service, build.at
                    );
                    images
                        .errors
                        .insert(svc.image.clone(), ImageError::plain(message));
                }
                Err(_) => {}
            }
        }
        env.rekey();
    }
}

/// The most a sync copies into each container, in bytes; more is a build.
const MAX_SYNC_BYTES: u64 = 64 << 20;

/// The sync that makes `build`'s image from the one its scenarios last used, when its
/// rules allow it and the engine has no build of its sources already.
async fn sync_of<E: ContainerEngine>(
    engine: &E,
    build: &BuildPlan,
    last: Option<&LastBuild>,
    ids: &HashMap<String, String>,
) -> Option<crate::plan::Synced> {
    let last = last?;
    // Only into an image made the same way (Dockerfile, target, arguments, bases,
    // rules), and one the engine still has.
    if last.recipe != build.recipe_id(ids) || !matches!(engine.image(&last.tag).await, Ok(Some(_)))
    {
        return None;
    }
    let own = build.tag(ids).ok()?;
    if own == last.tag {
        return None;
    }
    if !matches!(engine.image(&own).await, Ok(None)) {
        // Built already (a change undone, a `clnrm build`): the build it is.
        return None;
    }
    // Only files' contents changed, or files were added (no mode, link or directory
    // changed): that is all that is put into the image.
    let (context, recipe) = (build.context.clone(), build.recipe(ids));
    let now = tokio::task::spawn_blocking(move || crate::build::context_shape(&context, &recipe))
        .await
        .ok()??;
    if !crate::build::same_shape(last.shape.as_deref()?, &now) {
        return None;
    }
    let mut sync = match build.sync_onto(&last.tag, &last.files) {
        Some(sync) => sync,
        None => ahead_of_build(engine, build, last, &own).await?,
    };
    // The files read now, checked against their keyed content: one edited since is
    // no sync (its build reads it again, under the key of what it holds).
    let files: Vec<(std::path::PathBuf, String, String)> = sync
        .files
        .iter()
        .map(|(rel, target)| {
            let hash = build.files.get(rel).cloned().unwrap_or_default();
            (build.context.join(rel), hash, target.clone())
        })
        .collect();
    let archive = tokio::task::spawn_blocking(move || sync_tar(&files))
        .await
        .ok()??;
    // Copied into every container of the service: a big change is a build instead.
    if archive.len() as u64 > MAX_SYNC_BYTES {
        return None;
    }
    sync.archive = Arc::new(archive);
    Some(sync)
}

/// The files changed since the last image put into it while its build is made, when
/// the Dockerfile copies them last ([`BuildPlan::ahead_onto`]) and no base image has
/// `ONBUILD` instructions (which would read the context right after a `FROM`).
async fn ahead_of_build<E: ContainerEngine>(
    engine: &E,
    build: &BuildPlan,
    last: &LastBuild,
    own: &str,
) -> Option<crate::plan::Synced> {
    let dockerfile = crate::build::read_small_text(&build.context.join(&build.dockerfile)).ok()?;
    // The Dockerfile as keyed (it is one of the files): an edit since is a build.
    let keyed = build.files.get(&build.dockerfile)?;
    if crate::inputs::index::hash_reader(&mut dockerfile.as_bytes()).ok()? != *keyed {
        return None;
    }
    for base in &build.bases {
        match engine.image(base).await {
            Ok(Some(info)) if info.triggers == 0 => {}
            _ => return None,
        }
    }
    // The image's volumes would hide files put below them.
    let volumes = engine.image(&last.tag).await.ok()??.volumes;
    let ahead = build.ahead_onto((&last.tag, own), &last.files, &dockerfile)?;
    let hidden = ahead.files.iter().any(|(_, place)| {
        volumes
            .iter()
            .any(|v| place.starts_with(&format!("{}/", v.trim_end_matches('/'))))
    });
    (!hidden).then_some(ahead)
}

/// A build made while the scenarios that need it run on the image it replaces, with
/// the changed files put in ([`crate::plan::Synced::ahead`]): what it made (by
/// [`build_id`]), for the next save to start from, or why it failed; the scenarios'
/// verdicts wait for it.
pub(super) type AheadBuild = futures_util::future::Shared<
    futures_util::future::BoxFuture<'static, Result<(String, LastBuild), Arc<ImageError>>>,
>;

/// The builds made ahead in a run, by tag; dropped, it stops those still running (a
/// run interrupted while its builds were made, or before it awaited them).
#[derive(Default)]
pub(super) struct Ahead {
    pub builds: HashMap<String, AheadBuild>,
    stops: Vec<tokio::task::AbortHandle>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.stops.iter().for_each(tokio::task::AbortHandle::abort);
    }
}

/// Makes the images built from source that the scenarios `order` (indices into
/// `plan`) use: each tag once, as many at a time as `parallel`; an image the engine
/// has is used as it is. Each is inspected as the others are; a build that fails is
/// its image's error, with the builder's output and the Dockerfile's line.
pub(super) async fn make_builds<E: ContainerEngine>(
    engine: &Arc<E>,
    plan: &Plan,
    order: &[usize],
    images: &mut Images,
    parallel: usize,
    events: &UnboundedSender<Event>,
    mut last: Option<&mut LastBuilds>,
) -> (Vec<BuildDone>, Ahead) {
    let mut wanted: BTreeMap<String, Arc<BuildPlan>> = BTreeMap::new();
    for &i in order {
        for svc in &plan.scenarios[i].env.services {
            if let Some(b) = &svc.build
                && !images.errors.contains_key(&svc.image)
            {
                wanted.entry(svc.image.clone()).or_insert_with(|| b.clone());
            }
        }
    }
    // The images of builds whose scenarios the cache answered: a watching session
    // remembers those the engine has, for the first save to sync into.
    if let Some(last) = last.as_deref_mut() {
        let mut seen = BTreeSet::new();
        for svc in plan.selected().flat_map(|sc| &sc.env.services) {
            let Some(b) = &svc.build else { continue };
            // A sync's containers come from the image it went into, which stays the
            // one to sync into (with every file changed since it).
            if b.synced.is_some() {
                continue;
            }
            if wanted.contains_key(&svc.image)
                || images.errors.contains_key(&svc.image)
                || !seen.insert(svc.image.clone())
            {
                continue;
            }
            if matches!(engine.image(&svc.image).await, Ok(Some(_))) {
                last.insert(build_id(b), LastBuild::of(b, &svc.image, &images.ids));
            }
        }
    }
    if wanted.is_empty() {
        return (Vec::new(), Ahead::default());
    }
    let builds = Arc::new(Builds::new(engine.clone()));
    let ids = images.ids.clone();
    let made: Vec<_> = futures_util::stream::iter(wanted)
        .map(|(tag, plan)| {
            let (builds, ids) = (&builds, &ids);
            async move {
                let started = Instant::now();
                let want = Wanted {
                    context: plan.context.clone(),
                    recipe: plan.recipe(ids),
                    root: plan.root.clone(),
                    project: plan.project.clone(),
                    service: plan.service.clone(),
                    key: plan.key(ids).unwrap_or_default(),
                };
                let made = match &plan.synced {
                    // Nothing to build: the image the files go into, as it is.
                    Some(_) => match engine.image(&tag).await {
                        Ok(Some(info)) => Ok(crate::build::Ensured {
                            tag: tag.clone(),
                            id: info.id,
                            built: false,
                            output: String::new(),
                        }),
                        Ok(None) => Err(Arc::new(EnsureError::Engine(EngineError::ImageMissing {
                            image: tag.clone(),
                            reason: "the image a sync goes into was removed; save again to build"
                                .into(),
                        }))),
                        Err(e) => Err(Arc::new(EnsureError::Engine(e))),
                    },
                    None => builds.ensure(&tag, &want).await,
                };
                (tag, plan, made, started.elapsed().as_secs_f64())
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut done = Vec::new();
    let mut ahead = Ahead::default();
    for (tag, plan, made, secs) in made {
        let duration = std::time::Duration::from_secs_f64(secs);
        let outcome = match made {
            Ok(ensured) => {
                let building = plan.synced.as_ref().and_then(|s| s.ahead.clone());
                if ensured.built || plan.synced.is_some() {
                    let _ = events.send(Event::ImageBuilt {
                        service: plan.service.clone(),
                        tag: tag.clone(),
                        duration,
                        synced: plan.synced.as_ref().map(|s| s.files.len()),
                        ahead: building.clone(),
                    });
                }
                if let Some(built) = building
                    && !ahead.builds.contains_key(&built)
                {
                    let task = tokio::spawn(build_ahead(
                        builds.clone(),
                        plan.clone(),
                        built.clone(),
                        ids.clone(),
                        events.clone(),
                    ));
                    ahead.stops.push(task.abort_handle());
                    let outcome = task.map(|joined| {
                        joined.unwrap_or_else(|_| {
                            Err(Arc::new(ImageError::plain(
                                "its build was stopped".to_owned(),
                            )))
                        })
                    });
                    ahead.builds.insert(built, outcome.boxed().shared());
                }
                let found = match engine.image(&tag).await {
                    Ok(Some(info)) => Ok(info),
                    Ok(None) => Err(format!(
                        "the image {tag} was built but the engine does not have it"
                    )),
                    Err(e) => Err(e.to_string()),
                };
                let failed = found.as_ref().err().cloned();
                images.take(tag.clone(), found);
                if failed.is_none()
                    && plan.synced.is_none()
                    && let Some(last) = last.as_deref_mut()
                {
                    last.insert(build_id(&plan), LastBuild::of(&plan, &tag, &ids));
                }
                match failed {
                    None => Ok(ensured.built),
                    Some(why) => Err(ImageError::plain(why)),
                }
            }
            Err(e) => {
                let error = build_error(&plan, &tag, &e);
                images.errors.insert(tag.clone(), error.clone());
                Err(error)
            }
        };
        done.push(BuildDone {
            service: plan.service.clone(),
            tag,
            duration,
            outcome,
        });
    }
    (done, ahead)
}

/// The build tagged `tag` of `plan`, made while its scenarios run on the image it
/// replaces ([`Ahead`]): announced once made, or its error as any build's.
async fn build_ahead<E: ContainerEngine>(
    builds: Arc<Builds<E>>,
    plan: Arc<BuildPlan>,
    tag: String,
    ids: HashMap<String, String>,
    events: UnboundedSender<Event>,
) -> Result<(String, LastBuild), Arc<ImageError>> {
    let started = Instant::now();
    let want = Wanted {
        context: plan.context.clone(),
        recipe: plan.recipe(&ids),
        root: plan.root.clone(),
        project: plan.project.clone(),
        service: plan.service.clone(),
        key: plan.key(&ids).unwrap_or_default(),
    };
    match builds.ensure(&tag, &want).await {
        Ok(ensured) => {
            if ensured.built {
                let _ = events.send(Event::ImageBuilt {
                    service: plan.service.clone(),
                    tag: tag.clone(),
                    duration: started.elapsed(),
                    synced: None,
                    ahead: None,
                });
            }
            // What the next save starts from: this build, not the sync.
            let mut made = (*plan).clone();
            made.synced = None;
            Ok((build_id(&made), LastBuild::of(&made, &tag, &ids)))
        }
        Err(e) => Err(Arc::new(build_error(&plan, &tag, &e))),
    }
}

/// What became of one image built from source.
#[derive(Clone, Debug)]
pub struct BuildDone {
    /// The service it is for.
    pub service: String,
    /// Its tag.
    pub tag: String,
    /// How long it took to have it.
    pub duration: std::time::Duration,
    /// Whether it was built (else the engine had it), or why there is none.
    pub outcome: Result<bool, ImageError>,
}

/// Why `plan`'s image (to be tagged `tag`) could not be built, in a sentence that
/// names the service, where its build is written and the Dockerfile's line the
/// builder stopped at; the builder's output as the service's report.
fn build_error(plan: &BuildPlan, tag: &str, e: &EnsureError) -> ImageError {
    let who = format!("service \"{}\" ({})", plan.service, plan.at);
    match e {
        EnsureError::Failed {
            message, output, ..
        } => {
            let dockerfile = plan.context.join(&plan.dockerfile);
            let line = crate::build::read_small_text(&dockerfile)
                .ok()
                .and_then(|text| failed_step(&text, output));
            let at = match line {
                Some((n, text)) => format!(" at {}:{n} ({text})", shown(&dockerfile)),
                None => String::new(),
            };
            ImageError {
                message: format!("{who}: building its image failed{at}: {}", message.trim()),
                build: Some(ServiceReport {
                    id: plan.service.clone(),
                    image: tag.to_owned(),
                    log_tail: last_lines(output, crate::model::defaults::LOG_TAIL_LINES),
                    build: true,
                    ..ServiceReport::default()
                }),
            }
        }
        other => ImageError::plain(format!("{who}: cannot build its image: {other}")),
    }
}

/// `path` relative to the current directory when it is below it.
fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// Makes every image built from source that the selected scenarios of `plan` use, as
/// a run would, without running anything (`clnrm build`): their bases inspected (and
/// pulled), each tag built once unless the engine has it, `parallel` at a time.
pub async fn build_images<E: ContainerEngine>(
    engine: &Arc<E>,
    mut plan: Plan,
    parallel: usize,
    events: &UnboundedSender<Event>,
) -> Vec<BuildDone> {
    let mut images = resolve_images(&**engine, &plan).await;
    tag_builds(&**engine, &mut plan, &mut images, None).await;
    let order: Vec<usize> = plan.selected().map(|s| s.order).collect();
    let (mut done, _) =
        make_builds(engine, &plan, &order, &mut images, parallel, events, None).await;
    // A build whose sources have no key, or whose bases cannot be had, was never tried.
    let mut seen: BTreeSet<String> = done.iter().map(|d| d.tag.clone()).collect();
    for &i in &order {
        for svc in &plan.scenarios[i].env.services {
            let Some(b) = &svc.build else { continue };
            let error = images.errors.get(&svc.image).cloned().or_else(|| {
                b.bases.iter().find_map(|base| {
                    let e = images.errors.get(base)?;
                    Some(ImageError::plain(format!(
                        "service \"{}\" ({}): its base image: {}",
                        b.service, b.at, e.message
                    )))
                })
            });
            if let Some(error) = error
                && seen.insert(svc.image.clone())
            {
                done.push(BuildDone {
                    service: b.service.clone(),
                    tag: svc.image.clone(),
                    duration: std::time::Duration::ZERO,
                    outcome: Err(error),
                });
            }
        }
    }
    done
}
