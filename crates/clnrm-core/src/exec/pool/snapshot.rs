//! Fixture snapshots (SPEC §7.3): a service with `[[service.<id>.setup]]` is started
//! once, alone on a network of its own, its set-up steps run in it, and the stopped
//! container becomes an image that every scenario's container of that service starts
//! from; its declared volumes' data stays in fixture volumes that each container
//! mounts as overlay layers (see `cow`), or, where the engine cannot, goes into the
//! image. The image is named by a hash of the
//! service's image id, its table and its set-up steps, and kept by the engine across
//! runs; `clnrm cache` lists and removes them.

use super::{Env, Pool, PoolError, cow, lock};
use crate::backend::{ContainerEngine, EngineError, ImageInfo, Labels, Mount, layer};
use crate::exec::events::Status;
use crate::exec::steps::Steps;
use crate::model::defaults;
use crate::plan::{EnvSpec, Intake, NetworkNeed, ServiceSpec, Setup};
use futures_util::FutureExt;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

pub use crate::backend::SNAPSHOT_REPO;

/// The label every snapshot image carries: its key.
pub const SNAPSHOT_LABEL: &str = "clnrm.snapshot";
/// The label naming the service a snapshot is of.
pub const SNAPSHOT_SERVICE_LABEL: &str = "clnrm.snapshot.service";
/// The label naming the image a snapshot was made from.
pub const SNAPSHOT_IMAGE_LABEL: &str = "clnrm.snapshot.image";
/// The label naming the project (its root) a snapshot belongs to.
pub const SNAPSHOT_PROJECT_LABEL: &str = "clnrm.snapshot.project";

/// What a run remembers of each snapshot it asked for: its image, or why there is none
/// (shared by every scenario that waits for it).
pub(super) type Made = Arc<tokio::sync::OnceCell<Result<String, Arc<PoolError>>>>;

/// The key of `svc`'s snapshot when its image is `image_id`: a hash of that id, the
/// service's table and set-up steps, and the project they are in.
pub fn snapshot_key(image_id: &str, svc: &ServiceSpec) -> String {
    let table = serde_json::to_string(svc).unwrap_or_default();
    let project = svc.setup.as_ref().map_or("", |s| s.project.as_str());
    let mut hasher = Sha256::new();
    // The snapshot's format: one whose data is in fixture volumes is not what an
    // older clnrm (which looks for the data in the image) may find under its key.
    hasher.update(b"fixture-volumes\0");
    hasher.update(project.as_bytes());
    hasher.update([0]);
    hasher.update(image_id.as_bytes());
    hasher.update([0]);
    hasher.update(table.as_bytes());
    crate::digest::hex(&hasher.finalize()[..12])
}

impl<E: ContainerEngine> Pool<E> {
    /// The image `svc`'s containers start from: its snapshot, made by the first
    /// scenario of the run that needs it (the others wait for it) unless an earlier run
    /// left it. A failed set-up fails every scenario that needs it, without retrying.
    pub(super) async fn snapshot_image(
        &self,
        svc: &ServiceSpec,
        setup: &Arc<Setup>,
    ) -> Result<String, PoolError> {
        let engine = &self.inner.engine;
        let info = engine
            .image(&svc.image)
            .await?
            .ok_or_else(|| EngineError::ImageMissing {
                image: svc.image.clone(),
                reason: "it is not present locally".into(),
            })?;
        // The one-shots run into it are part of it: their images' ids too.
        let mut ids = info.id.clone();
        for one in &setup.then {
            let found =
                engine
                    .image(&one.image)
                    .await?
                    .ok_or_else(|| EngineError::ImageMissing {
                        image: one.image.clone(),
                        reason: "it is not present locally".into(),
                    })?;
            ids.push(' ');
            ids.push_str(&found.id);
        }
        let key = snapshot_key(&ids, svc);
        let cell = lock(&self.inner.snapshots)
            .entry(key.clone())
            .or_default()
            .clone();
        let made = cell
            .get_or_try_init(|| async {
                match self.make_snapshot(svc, setup, &info, &key).await {
                    Err(PoolError::Stopped) => Err(PoolError::Stopped),
                    other => Ok(other.map_err(Arc::new)),
                }
            })
            .await?;
        // A set-up's own failure already names its service: said once.
        made.clone().map_err(|why| match &*why {
            PoolError::Setup { service, message } => PoolError::Setup {
                service: service.clone(),
                message: message.clone(),
            },
            other => PoolError::Setup {
                service: svc.id.clone(),
                message: other.to_string(),
            },
        })
    }

    async fn make_snapshot(
        &self,
        svc: &ServiceSpec,
        setup: &Arc<Setup>,
        info: &ImageInfo,
        key: &str,
    ) -> Result<String, PoolError> {
        let engine = &self.inner.engine;
        let tag = format!("{SNAPSHOT_REPO}:{key}");
        if let Some(found) = engine.image(&tag).await? {
            let Some(volumes) = cow::volumes_of(&found.labels) else {
                return Ok(tag);
            };
            let mut there = true;
            for (_, volume) in &volumes {
                there &= engine.volume(volume).await?.is_some();
            }
            if there {
                lock(&self.inner.layered).insert(tag.clone(), volumes);
                return Ok(tag);
            }
            // Its data is gone (a `docker volume prune`): made again.
            let _ = engine.remove_image(&tag).await;
        }
        // Its declared volumes are fixture volumes, which keep the data for the
        // containers to come (see `cow`).
        let project = svc.setup.as_ref().map_or("", |s| s.project.as_str());
        let owned = Labels::from([
            (SNAPSHOT_PROJECT_LABEL.to_owned(), project.to_owned()),
            (SNAPSHOT_SERVICE_LABEL.to_owned(), svc.id.clone()),
        ]);
        // A path the service mounts itself is not the fixture's.
        let paths: Vec<String> = info
            .volumes
            .iter()
            .filter(|p| !svc.mounts.iter().any(|m| &m.container_path == *p))
            .cloned()
            .collect();
        let volumes = self.fixture_volumes(key, &paths, &owned).await?;
        // The service alone, on a network of its own so that it answers to its name;
        // ready when its health check passes (no span receiver here).
        let mut alone = ServiceSpec {
            depends_on: Vec::new(),
            wait_for_span: None,
            setup: None,
            ..svc.clone()
        };
        alone
            .mounts
            .extend(volumes.iter().map(|(path, volume)| Mount {
                host_path: volume.clone(),
                container_path: path.clone(),
                read_only: false,
            }));
        let spec = Arc::new(EnvSpec {
            key: format!("snapshot-{key}"),
            services: vec![alone],
            network: NetworkNeed::Private,
            otlp: None,
        });
        let mut env = Env {
            spec,
            members: Vec::new(),
            network: None,
            network_name: None,
            _permits: None,
        };
        // Whether containers can start on the fixture's data without copying is
        // tried while the set-up runs: the helper and a probe from the service's
        // image (by id: the one the key hashes; the snapshot's files but for what
        // the set-up changes, which they do not read). They start once the set-up's
        // service is up (started, and healthy where it has a check): the first
        // container to mount a fresh volume is the one the engine fills and gives
        // owners from (Podman), and that must be the service's, not the helper's.
        let (started, set_up_started) = tokio::sync::oneshot::channel();
        let probe = async {
            if volumes.is_empty() || set_up_started.await.is_err() {
                return Layered::Cannot;
            }
            match self.try_layers(&info.id, &tag, &volumes).await {
                Ok(()) => Layered::Can,
                Err(PoolError::Stopped) => Layered::Stopped,
                Err(_) => Layered::Cannot,
            }
        }
        .shared();
        let (made, _) = futures_util::join!(
            self.set_up(
                &mut env,
                svc,
                setup,
                info,
                &tag,
                key,
                &volumes,
                (started, probe.clone())
            ),
            probe
        );
        if matches!(made, Ok(true)) {
            // Its data stays in the volumes: the stopped set-up goes in the background.
            self.destroy_later(env);
        } else {
            self.destroy(env).await;
        }
        // The data stays in its volumes only when the snapshot reads it from there.
        if !matches!(made, Ok(true)) {
            self.forget_helper(&tag).await;
            self.remove_volumes(volumes.into_iter().map(|(_, v)| v).collect())
                .await;
        }
        let made = made.map(|_| tag.clone());
        let one_shots = svc.setup.iter().flat_map(|s| &s.then);
        if made.is_ok()
            && svc
                .inputs
                .iter()
                .chain(one_shots.flat_map(|o| &o.inputs))
                .any(|i| i.starts_with(crate::plan::UNKNOWABLE))
        {
            lock(&self.inner.own_snapshots).push((key.to_owned(), tag));
        }
        made
    }

    /// Starts `env`, runs the set-up in it and snapshots the stopped container; `true`
    /// when the snapshot's data stays in `volumes` (else it is in the image).
    #[allow(clippy::too_many_arguments)]
    async fn set_up(
        &self,
        env: &mut Env,
        svc: &ServiceSpec,
        setup: &Arc<Setup>,
        info: &ImageInfo,
        tag: &str,
        key: &str,
        volumes: &cow::Volumes,
        (started, probe): (
            tokio::sync::oneshot::Sender<()>,
            impl Future<Output = Layered>,
        ),
    ) -> Result<bool, PoolError> {
        self.start_env(env, None).await.map_err(|e| match e {
            PoolError::Stopped => PoolError::Stopped,
            e => PoolError::Setup {
                service: svc.id.clone(),
                message: format!("the service did not start: {e}"),
            },
        })?;
        let _ = started.send(());
        let id = format!("setup of service \"{}\"", svc.id);
        let spec = env.spec.clone();
        let steps = Steps {
            id: &id,
            env: &spec,
            intake: Intake::None,
            masker: &setup.masker,
            timeout: Some(Duration::from_secs(defaults::SETUP_TIMEOUT_SECS)),
            steps: &setup.steps,
            source: None,
        };
        let stop = self.inner.stop.clone();
        let ran = (self.inner.run_setup)(self, env, &steps, &stop).await;
        if stop.is_cancelled() {
            return Err(PoolError::Stopped);
        }
        if let Some((_, message)) = &ran.failure {
            return Err(PoolError::Setup {
                service: svc.id.clone(),
                message: setup_failure(message, &ran.steps),
            });
        }
        // Then the one-shots run into the fixture, each to completion, in order.
        for one in &setup.then {
            let alone = ServiceSpec {
                depends_on: Vec::new(),
                setup: None,
                ..one.clone()
            };
            let mut labels = self.inner.owner.labels();
            labels.insert("clnrm.env".into(), spec.key.clone());
            let seq = self
                .inner
                .seq
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let peers = self.peer_hosts(&env.members).await?;
            let started = self
                .start_member(
                    &alone,
                    env.network_name.clone(),
                    &peers,
                    &spec,
                    seq,
                    &labels,
                )
                .await;
            let done = match started {
                Ok(member) => {
                    let container = member.container.clone();
                    env.members.push(member);
                    self.wait_completed(&alone, &container).await
                }
                Err(e) => Err(e),
            };
            match done {
                Ok(()) => {}
                Err(PoolError::Stopped) => return Err(PoolError::Stopped),
                Err(e) => {
                    return Err(PoolError::Setup {
                        service: svc.id.clone(),
                        message: format!("its one-shot \"{}\" did not complete: {e}", one.id),
                    });
                }
            }
        }
        let (container, agent) = (
            env.members[0].container.clone(),
            env.members[0].agent.is_some(),
        );
        // clnrm's shell ignores SIGTERM as a container's first process: nothing to wait for.
        let grace = if agent {
            Duration::ZERO
        } else {
            Duration::from_secs(defaults::SETUP_STOP_GRACE_SECS)
        };
        let engine = &self.inner.engine;
        engine.stop(&container, grace).await?;
        let labels = Labels::from([
            (SNAPSHOT_LABEL.to_owned(), key.to_owned()),
            (SNAPSHOT_SERVICE_LABEL.to_owned(), svc.id.clone()),
            (SNAPSHOT_IMAGE_LABEL.to_owned(), svc.image.clone()),
            (SNAPSHOT_PROJECT_LABEL.to_owned(), setup.project.clone()),
        ]);
        let failed = |e: EngineError| PoolError::Setup {
            service: svc.id.clone(),
            message: format!("its snapshot could not be made: {e}"),
        };
        if !volumes.is_empty() {
            let mut with = labels.clone();
            with.insert(cow::VOLUMES_LABEL.to_owned(), cow::volumes_label(volumes));
            if self
                .unchanged_image(&container, info, tag, &with)
                .await
                .is_none()
            {
                engine
                    .snapshot(&container, tag, &[], &with)
                    .await
                    .map_err(failed)?;
            }
            match probe.await {
                Layered::Can => {
                    lock(&self.inner.layered).insert(tag.to_owned(), volumes.clone());
                    let mut tracked = lock(&self.inner.volumes);
                    for (_, volume) in volumes {
                        tracked.remove(volume);
                    }
                    return Ok(true);
                }
                Layered::Stopped => return Err(PoolError::Stopped),
                // The engine cannot (no overlay mounts, no shell in the image): the
                // data goes into the image, and each container gets a copy.
                Layered::Cannot => {
                    self.forget_helper(tag).await;
                    let _ = engine.remove_image(tag).await;
                }
            }
        }
        let unchanged = info.volumes.is_empty()
            && self
                .unchanged_image(&container, info, tag, &labels)
                .await
                .is_some();
        if !unchanged {
            engine
                .snapshot(&container, tag, &info.volumes, &labels)
                .await
                .map_err(failed)?;
        }
        Ok(false)
    }

    /// Image `tag`: `info`'s image with `labels`, when the stopped set-up `container`
    /// changed none of its image's files (its writable layer, read on the engine's
    /// host, holds only directories it touched; see [`layer::only_touched_dirs`]).
    /// Made in tens of ms, where a commit walks the whole file system (3–4 s for
    /// PostgreSQL on fuse-overlayfs). `None` when that cannot be told (the layer is
    /// not readable from here: a remote engine, clnrm in a container), when it changed
    /// something, or when the engine cannot (Podman): the caller commits.
    async fn unchanged_image(
        &self,
        container: &str,
        info: &ImageInfo,
        tag: &str,
        labels: &Labels,
    ) -> Option<String> {
        let engine = &self.inner.engine;
        let details = engine.details(container).await.ok()?;
        let upper = details.upper_dir?;
        let lowers = details.lower_dirs;
        if lowers.is_empty() {
            return None;
        }
        let unchanged = tokio::task::spawn_blocking(move || {
            layer::only_touched_dirs(&upper, &lowers, layer::MAX_ENTRIES)
        })
        .await
        .ok()?;
        if !unchanged {
            return None;
        }
        engine.relabel(&info.id, tag, labels).await.ok()
    }
}

/// Whether containers of a snapshot can start on its data in volumes without a copy
/// (overlay layers; see `cow`), as the probe made while the set-up ran found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layered {
    Can,
    /// No overlay mounts, no shell in the image: the data goes into the image.
    Cannot,
    /// The run was interrupted meanwhile.
    Stopped,
}

/// Why a set-up failed: its failed step, with the end of what the step printed.
fn setup_failure(message: &str, steps: &[crate::exec::StepResult]) -> String {
    let mut message = message.to_owned();
    if let Some(step) = steps
        .iter()
        .find(|s| matches!(s.status, Status::Failed | Status::Error))
    {
        for (name, text) in [("stdout", &step.stdout), ("stderr", &step.stderr)] {
            message.push_str(&super::ends(name, text, defaults::LOG_TAIL_LINES));
        }
    }
    message
}

/// A snapshot image the engine keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its image id.
    pub id: String,
    /// Its key (the tag in [`SNAPSHOT_REPO`]).
    pub key: String,
    /// The service it is of.
    pub service: String,
    /// The image it was made from.
    pub image: String,
    /// Its size in bytes, the image it was made from included.
    pub size: u64,
    /// What it adds to the image it was made from, in bytes (when that is present).
    pub added: Option<u64>,
    /// When it was made, in seconds since the Unix epoch.
    pub created: i64,
}

/// The snapshots the engine keeps for the project at `root`, oldest first.
pub async fn snapshots<E: ContainerEngine>(
    engine: &E,
    root: &str,
) -> Result<Vec<SnapshotInfo>, EngineError> {
    let mut out = Vec::new();
    let project = format!("{SNAPSHOT_PROJECT_LABEL}={root}");
    for found in engine.images(&project).await? {
        let label = |k: &str| found.labels.get(k).cloned().unwrap_or_default();
        let image = label(SNAPSHOT_IMAGE_LABEL);
        let base = engine.image(&image).await.ok().flatten();
        out.push(SnapshotInfo {
            key: label(SNAPSHOT_LABEL),
            service: label(SNAPSHOT_SERVICE_LABEL),
            added: base.map(|b| found.size.saturating_sub(b.size)),
            image,
            id: found.id,
            size: found.size,
            created: found.created,
        });
    }
    out.sort_by(|a, b| (a.created, &a.key).cmp(&(b.created, &b.key)));
    Ok(out)
}

/// Removes the project's snapshots; returns how many went, and why each other one did not (one
/// a container still uses, say).
pub async fn remove_snapshots<E: ContainerEngine>(
    engine: &E,
    root: &str,
) -> Result<(usize, Vec<String>), EngineError> {
    let mut removed = 0;
    let mut kept = Vec::new();
    for snap in snapshots(engine, root).await? {
        match engine.remove_image(&snap.id).await {
            Ok(()) => removed += 1,
            Err(e) => kept.push(format!("{SNAPSHOT_REPO}:{}: {e}", snap.key)),
        }
    }
    // Their data (see `cow`), once no snapshot reads it.
    let project = format!("{SNAPSHOT_PROJECT_LABEL}={root}");
    for volume in engine.list_volumes(&project).await? {
        if !volume.labels.contains_key(cow::FIXTURE_VOLUME_LABEL) {
            continue;
        }
        if let Err(e) = engine.remove_volume(&volume.id).await {
            kept.push(format!("volume {}: {e}", volume.id));
        }
    }
    Ok((removed, kept))
}
