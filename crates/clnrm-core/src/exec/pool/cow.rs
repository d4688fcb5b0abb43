//! A fixture's data without copying. A snapshot of a service whose image declares
//! volumes (a database's data directory) keeps each volume's data in a named volume of
//! its own, `clnrm-fixture-<key>-<run>-<i>`, which no container mounts writable again.
//! Each container started from the snapshot mounts, at each of those paths, an
//! overlay volume of the engine's local driver: the fixture's data as its lower
//! layer, an empty upper layer of its own. Nothing is copied when a container starts
//! (the engine would copy the whole data into a fresh volume: 112 MiB, about 2 s here,
//! for the orders example's database); what a scenario writes lands in its upper
//! layer, which goes with its container. The snapshot itself is never written.
//!
//! An upper layer must be a directory with the owner and mode of the data's root (a
//! database checks that its data directory is its own and 0700), and only a process
//! on the engine's host can make one. When clnrm is that process (root on the
//! engine's host: it sees the volume of upper layers the engine made), it makes and
//! removes them itself. Else a helper container per snapshot and run, from the
//! service's image (the snapshot's, once it is made), running a shell with a volume
//! for the upper layers and the fixture's volumes read-only, makes pairs of
//! directories in batches, one exec each, and removes them after.
//!
//! Whether the engine can do all this (overlay mounts of the local driver, a shell in
//! the image, root in it) is tried once, when the snapshot is made; if it cannot, the
//! snapshot holds its data in the image as before and each container gets a copy.

use super::{Pool, PoolError, lock};
use crate::backend::{
    ContainerEngine, ContainerSpec, EngineError, ExecSpec, Labels, Mount, NetworkMode,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The label of a snapshot image whose data is in volumes: a JSON list of
/// `[path, volume]` pairs.
pub const VOLUMES_LABEL: &str = "clnrm.snapshot.volumes";
/// The label of a fixture's data volume: the key of its snapshot.
pub const FIXTURE_VOLUME_LABEL: &str = "clnrm.fixture";

/// Where the helper sees the upper layers and each fixture volume.
const UPPERS: &str = "/clnrm-uppers";
const LOWER: &str = "/clnrm-fixture";

/// A snapshot's volumes: (path in the container, fixture volume).
pub type Volumes = Vec<(String, String)>;

/// Whether `path` can go into an overlay's mount options as it is (a `,` or `:` would
/// be read as a separator).
fn plain(path: &str) -> bool {
    path.starts_with('/') && !path.contains([',', ':', '\\', '\n'])
}

/// The fixture volumes a snapshot image's labels name, if its data is in volumes.
pub fn volumes_of(labels: &Labels) -> Option<Volumes> {
    serde_json::from_str(labels.get(VOLUMES_LABEL)?).ok()
}

/// The label value naming `volumes`.
pub fn volumes_label(volumes: &Volumes) -> String {
    serde_json::to_string(volumes).unwrap_or_default()
}

/// The helper of one snapshot in one run.
#[derive(Debug)]
pub(super) struct Helper {
    /// Its container; `None` when this process makes the layers itself (see
    /// [`direct`]).
    container: Option<String>,
    /// Where the volume of upper layers is on the engine's host.
    uppers: String,
    /// Each of the snapshot's paths, with where its fixture volume is on the host.
    lowers: Vec<(String, String)>,
    next: AtomicU64,
    /// Pairs of directories made and not yet given to a container.
    stock: std::sync::Mutex<Vec<u64>>,
    /// Pairs whose container is gone, removed [`BATCH`] at a time.
    spent: std::sync::Mutex<Vec<u64>>,
}

/// How many containers' upper layers the helper makes, and removes, in one exec: an
/// exec costs the engine about as much as a container's start does, so one per
/// container each way was a tenth of an environment's engine time. What waits to be
/// removed holds at most this many scenarios' writes; the rest go with the run's
/// volume of upper layers.
const BATCH: u64 = 8;

/// The layers one container mounts: removed after it.
#[derive(Debug)]
pub(super) struct Layers {
    helper: Arc<Helper>,
    dir: u64,
    volumes: Vec<String>,
}

/// The per-run helpers, by snapshot image.
pub(super) type Helpers =
    std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::OnceCell<Arc<Helper>>>>>;

impl<E: ContainerEngine> Pool<E> {
    /// Creates the fixture volumes of snapshot `key` (one per path the image declares),
    /// labelled for `cache clear`.
    pub(super) async fn fixture_volumes(
        &self,
        key: &str,
        paths: &[String],
        labels: &Labels,
    ) -> Result<Volumes, EngineError> {
        let mut made = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let name = format!("clnrm-fixture-{key}-{}-{i}", self.inner.owner.run_id);
            let mut labels = labels.clone();
            labels.insert(FIXTURE_VOLUME_LABEL.into(), key.to_owned());
            match self.inner.engine.create_volume(&name, &[], &labels).await {
                Ok(_) => {
                    // Removed at shutdown unless the snapshot keeps it (an interrupt).
                    lock(&self.inner.volumes).insert(name.clone());
                    made.push((path.clone(), name));
                }
                Err(e) => {
                    self.remove_volumes(made.iter().map(|(_, v)| v.clone()).collect())
                        .await;
                    return Err(e);
                }
            }
        }
        Ok(made)
    }

    /// Removes volumes, quietly (what stays, `cache clear` or the next run's reaper
    /// removes); `true` when every one went.
    pub(super) async fn remove_volumes(&self, names: Vec<String>) -> bool {
        let mut all = true;
        for name in names {
            if self.inner.engine.remove_volume(&name).await.is_ok() {
                lock(&self.inner.volumes).remove(&name);
            } else {
                all = false;
            }
        }
        all
    }

    /// Whether containers of snapshot `tag` can start on its data without copying:
    /// the helper (from `image`) starts and one container of `image` mounts layers.
    pub(super) async fn try_layers(
        &self,
        image: &str,
        tag: &str,
        volumes: &Volumes,
    ) -> Result<(), PoolError> {
        let helper = self.helper(image, tag, volumes).await?;
        let name = format!(
            "clnrm-{}-{}-probe",
            self.inner.owner.run_id,
            self.inner.seq.fetch_add(1, Ordering::SeqCst)
        );
        // Its own layer, not one of a batch: the data's root may still change owner
        // or mode (the set-up may be running), which the batch's layers copy.
        let (mounts, layers) = self.layers(&helper, &name, 1).await?;
        let spec = self.shell_spec(name, image, "exit 0", mounts);
        let engine = &self.inner.engine;
        let started = async {
            let id = engine.create(&spec).await?;
            lock(&self.inner.live).insert(id.clone());
            let started = engine.start(&id).await;
            let _ = engine.remove(&id).await;
            lock(&self.inner.live).remove(&id);
            started
        }
        .await;
        self.drop_layers(layers).await;
        Ok(started?)
    }

    /// The fixture volumes of snapshot image `tag`, when its data is in volumes.
    pub(super) fn snapshot_volumes(&self, tag: &str) -> Option<Volumes> {
        lock(&self.inner.layered).get(tag).cloned()
    }

    /// Removes the helper of snapshot `tag`, if this run started one.
    pub(super) async fn forget_helper(&self, tag: &str) {
        let cell = lock(&self.inner.helpers).remove(tag);
        if let Some(helper) = cell.and_then(|c| c.get().cloned())
            && let Some(container) = &helper.container
        {
            let _ = self.inner.engine.remove(container).await;
            lock(&self.inner.live).remove(container);
        }
    }

    /// A container of this run from image `tag` that runs `script` in `/bin/sh`, with
    /// `mounts` and no network.
    fn shell_spec(
        &self,
        name: String,
        tag: &str,
        script: &str,
        mounts: Vec<Mount>,
    ) -> ContainerSpec {
        ContainerSpec {
            name,
            image: tag.to_owned(),
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
            cmd: Vec::new(),
            env: Vec::new(),
            ports: Vec::new(),
            mounts,
            tmpfs: Vec::new(),
            memory_bytes: None,
            nano_cpus: None,
            open_stdin: false,
            network: NetworkMode::None,
            extra_hosts: Vec::new(),
            labels: self.inner.owner.labels(),
        }
    }

    /// The helper of snapshot `tag` in this run, started from `image` by the first
    /// container that needs it.
    async fn helper(
        &self,
        image: &str,
        tag: &str,
        volumes: &Volumes,
    ) -> Result<Arc<Helper>, PoolError> {
        let cell = lock(&self.inner.helpers)
            .entry(tag.to_owned())
            .or_default()
            .clone();
        let helper = cell
            .get_or_try_init(|| self.start_helper(image, tag, volumes))
            .await?;
        Ok(helper.clone())
    }

    async fn start_helper(
        &self,
        image: &str,
        tag: &str,
        volumes: &Volumes,
    ) -> Result<Arc<Helper>, PoolError> {
        let engine = &self.inner.engine;
        let mut lowers = Vec::new();
        let mut mounts = Vec::new();
        for (i, (path, volume)) in volumes.iter().enumerate() {
            let at = engine
                .volume(volume)
                .await?
                .filter(|at| plain(at))
                .ok_or_else(|| {
                    EngineError::Api(format!(
                        "the fixture volume {volume} of {tag} is gone (removed outside clnrm?): \
                     run `clnrm cache clear` and run again"
                    ))
                })?;
            lowers.push((path.clone(), at));
            mounts.push(Mount {
                host_path: volume.clone(),
                container_path: format!("{LOWER}{i}"),
                read_only: true,
            });
        }
        let n = self.inner.seq.fetch_add(1, Ordering::SeqCst);
        let run = &self.inner.owner.run_id;
        let uppers_volume = format!("clnrm-{run}-{n}-uppers");
        let uppers = engine
            .create_volume(&uppers_volume, &[], &self.inner.owner.labels())
            .await?;
        lock(&self.inner.volumes).insert(uppers_volume.clone());
        if !plain(&uppers) {
            self.remove_volumes(vec![uppers_volume]).await;
            return Err(EngineError::Api(format!(
                "the engine put a volume at {uppers:?}, which an overlay's options cannot name"
            ))
            .into());
        }
        let helper = |container| Helper {
            container,
            uppers: uppers.clone(),
            lowers: lowers.clone(),
            next: AtomicU64::new(0),
            stock: std::sync::Mutex::default(),
            spent: std::sync::Mutex::default(),
        };
        let (dir, name, roots) = (uppers.clone(), uppers_volume.clone(), lowers.clone());
        if tokio::task::spawn_blocking(move || direct(&dir, &name, &roots))
            .await
            .unwrap_or(false)
        {
            return Ok(Arc::new(helper(None)));
        }
        mounts.push(Mount {
            host_path: uppers_volume.clone(),
            container_path: UPPERS.into(),
            read_only: false,
        });
        // Removed by force: it never needs to stop on its own.
        let name = format!("clnrm-{run}-{n}-fixture-helper");
        let spec = self.shell_spec(name, image, "while :; do sleep 3600; done", mounts);
        let id = match engine.create(&spec).await {
            Ok(id) => id,
            Err(e) => {
                self.remove_volumes(vec![uppers_volume]).await;
                return Err(e.into());
            }
        };
        lock(&self.inner.live).insert(id.clone());
        if let Err(e) = engine.start(&id).await {
            // No shell in the image, say: nothing of it may stay (it mounts the
            // fixture's volumes, which could then not be removed).
            if engine.remove(&id).await.is_ok() {
                lock(&self.inner.live).remove(&id);
            }
            self.remove_volumes(vec![uppers_volume]).await;
            return Err(e.into());
        }
        Ok(Arc::new(helper(Some(id))))
    }

    /// The mounts of container `name` started from the snapshot `tag` whose data is
    /// in `volumes`: an overlay of each fixture volume.
    pub(super) async fn layer_mounts(
        &self,
        tag: &str,
        volumes: &Volumes,
        name: &str,
    ) -> Result<(Vec<Mount>, Layers), PoolError> {
        let helper = self.helper(tag, tag, volumes).await?;
        self.layers(&helper, name, BATCH).await
    }

    /// The layers of container `name`: from the helper's stock, else from `batch`
    /// new ones (the rest stocked).
    async fn layers(
        &self,
        helper: &Arc<Helper>,
        name: &str,
        batch: u64,
    ) -> Result<(Vec<Mount>, Layers), PoolError> {
        let engine = &self.inner.engine;
        let stocked = match &helper.container {
            Some(_) if batch > 1 => lock(&helper.stock).pop(),
            _ => None,
        };
        let dir = match (&helper.container, stocked) {
            (_, Some(dir)) => dir,
            // Made here: one at a time costs microseconds.
            (None, None) => {
                let dir = helper.next.fetch_add(1, Ordering::SeqCst);
                let (uppers, lowers) = (helper.uppers.clone(), helper.lowers.clone());
                let made = tokio::task::spawn_blocking(move || make_layer(&uppers, dir, &lowers))
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|made| made);
                made.map_err(|e| {
                    EngineError::Api(format!(
                        "the layers of {name} could not be made in {}: {e}",
                        helper.uppers
                    ))
                })?;
                dir
            }
            // By the helper: a batch per exec.
            (Some(container), None) => {
                let first = helper.next.fetch_add(batch, Ordering::SeqCst);
                // Each upper layer gets the owner and mode of its fixture's root.
                let mut script = format!("set -e; cd {UPPERS}");
                for dir in first..first + batch {
                    script.push_str(&format!("; mkdir {dir}"));
                    for i in 0..helper.lowers.len() {
                        script.push_str(&format!(
                            "; mkdir {dir}/u{i} {dir}/w{i}; chown \"$(stat -c %u:%g {LOWER}{i})\" {dir}/u{i}; chmod \"$(stat -c %a {LOWER}{i})\" {dir}/u{i}"
                        ));
                    }
                }
                let spec = ExecSpec {
                    argv: vec!["/bin/sh".into(), "-c".into(), script],
                    env: Vec::new(),
                    workdir: None,
                };
                let out = crate::backend::exec(engine.as_ref(), container, &spec).await?;
                if out.exit_code != 0 {
                    return Err(EngineError::Api(format!(
                        "the fixture's helper could not make the layers of {name} (exit {}): {}",
                        out.exit_code,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ))
                    .into());
                }
                lock(&helper.stock).extend(first + 1..first + batch);
                first
            }
        };
        let mut layers = Layers {
            helper: helper.clone(),
            dir,
            volumes: Vec::new(),
        };
        let mut mounts = Vec::new();
        for (i, (path, lower)) in helper.lowers.iter().enumerate() {
            let volume = format!("{name}-data{i}");
            let upper = format!("{}/{dir}", helper.uppers);
            let options = [
                ("type".to_owned(), "overlay".to_owned()),
                ("device".to_owned(), "overlay".to_owned()),
                (
                    "o".to_owned(),
                    format!("lowerdir={lower},upperdir={upper}/u{i},workdir={upper}/w{i}"),
                ),
            ];
            if let Err(e) = engine
                .create_volume(&volume, &options, &self.inner.owner.labels())
                .await
            {
                self.drop_layers(layers).await;
                return Err(e.into());
            }
            lock(&self.inner.volumes).insert(volume.clone());
            layers.volumes.push(volume.clone());
            mounts.push(Mount {
                host_path: volume,
                container_path: path.clone(),
                read_only: false,
            });
        }
        Ok((mounts, layers))
    }

    /// Removes a container's layers, once the container is gone.
    pub(super) async fn drop_layers(&self, layers: Layers) {
        // A layer still mounted (its container not removed) keeps its directory; the
        // volume of upper layers goes when the run ends.
        if !self.remove_volumes(layers.volumes).await {
            return;
        }
        let Some(container) = &layers.helper.container else {
            let dir = std::path::Path::new(&layers.helper.uppers).join(layers.dir.to_string());
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
            return;
        };
        let dirs = {
            let mut spent = lock(&layers.helper.spent);
            spent.push(layers.dir);
            if spent.len() < BATCH as usize {
                return;
            }
            std::mem::take(&mut *spent)
        };
        let mut argv = vec!["rm".to_owned(), "-rf".to_owned()];
        argv.extend(dirs.iter().map(|dir| format!("{UPPERS}/{dir}")));
        let spec = ExecSpec {
            argv,
            env: Vec::new(),
            workdir: None,
        };
        let _ = crate::backend::exec(self.inner.engine.as_ref(), container, &spec).await;
    }
}

/// Whether this process makes the layers itself, with no helper container and no
/// exec per batch of layers (a directory costs microseconds, an exec as much as a
/// container's start): it sees the volume of upper layers the engine just made at
/// `uppers`, new and empty, under a path that names that `volume` (so this is the
/// engine's host, not another machine that has such a path), and it can make a
/// layer there with each fixture root's owner and mode (it is root there).
fn direct(uppers: &str, volume: &str, lowers: &[(String, String)]) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dir = std::path::Path::new(uppers);
    let named = dir.components().any(|c| c.as_os_str() == volume);
    let empty = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
    // Root's, and made as root: a rootless engine's volume is its user's, and what
    // another root made there would be no use to it.
    let root = |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.uid() == 0);
    if !(named && empty && root(dir)) {
        return false;
    }
    let trial = dir.join(u64::MAX.to_string());
    let made = make_layer(uppers, u64::MAX, lowers).is_ok() && root(&trial);
    let removed = std::fs::remove_dir_all(trial);
    made && removed.is_ok()
}

/// Makes the layers `n` under `uppers`: for each fixture root `i`, `n/u{i}` with that
/// root's owner and mode (a database checks its data directory's) and `n/w{i}`.
fn make_layer(uppers: &str, n: u64, lowers: &[(String, String)]) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = std::path::Path::new(uppers).join(n.to_string());
    std::fs::create_dir(&dir)?;
    for (i, (_, lower)) in lowers.iter().enumerate() {
        let root = std::fs::metadata(lower)?;
        let upper = dir.join(format!("u{i}"));
        std::fs::create_dir(&upper)?;
        std::fs::create_dir(dir.join(format!("w{i}")))?;
        std::os::unix::fs::chown(&upper, Some(root.uid()), Some(root.gid()))?;
        std::fs::set_permissions(
            &upper,
            std::fs::Permissions::from_mode(root.mode() & 0o7777),
        )?;
    }
    Ok(())
}
