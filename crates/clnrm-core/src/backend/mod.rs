//! The container engine seen through a small trait: create, attach, start, exec,
//! inspect, remove and list by label. Docker through bollard is the one
//! implementation ([`Docker`]); the executor only talks to [`ContainerEngine`]. This
//! module knows nothing about scenarios or steps.

mod deadline;
mod docker;
#[cfg(test)]
pub mod fake;
pub mod layer;
mod snapshot;

pub use deadline::{DEFAULT_CALL, DEFAULT_PULL, Deadlines};

/// How an image is built from its context (SPEC §14).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildSpec {
    /// The tag the image gets.
    pub tag: String,
    /// The Dockerfile's path in the context.
    pub dockerfile: String,
    /// The stage built (the last when `None`).
    pub target: Option<String>,
    /// `ARG` values.
    pub args: BTreeMap<String, String>,
}

/// The most of a build's output kept (its end).
pub const BUILD_OUTPUT_CAP: usize = 256 * 1024;

/// How a build ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildOutcome {
    /// The image was made.
    Built {
        /// Its id.
        id: String,
        /// What the builder printed (its end, at most [`BUILD_OUTPUT_CAP`] bytes).
        output: String,
    },
    /// The builder stopped.
    Failed {
        /// Why, as the builder said it.
        message: String,
        /// What it printed up to then (its end).
        output: String,
    },
}

/// The repository of fixture snapshot images; the tag is the snapshot's key.
pub const SNAPSHOT_REPO: &str = "clnrm-snapshot";

/// The repository of images clnrm builds from source (`<project>-<service>` below
/// it; the tag is the build's key).
pub const BUILD_REPO: &str = "clnrm-build";

/// The engine clnrm runs against: Docker (or Podman) with a deadline on every call.
pub type Engine = Deadlines<Docker>;
pub use docker::Docker;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use tokio::io::AsyncWrite;

/// Errors from the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No engine answers at the configured address.
    #[error("no container engine answers at {address}: {reason}")]
    Unreachable {
        /// Where we looked (`DOCKER_HOST` or the default socket).
        address: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The image is not present and could not be pulled.
    #[error("image \"{image}\" is not available locally and could not be pulled: {reason}")]
    ImageMissing {
        /// The image reference.
        image: String,
        /// What the pull said.
        reason: String,
    },
    /// A container or exec is gone (removed, or its process exited).
    #[error("container {0} is gone")]
    Gone(String),
    /// A call got no answer within its deadline.
    #[error("the container engine did not answer `{call}` within {}", seconds(*after))]
    Timeout {
        /// What was asked.
        call: String,
        /// The deadline.
        after: std::time::Duration,
    },
    /// An earlier call timed out and the engine has not answered since.
    #[error("the container engine stopped answering ({first}); `{call}` was not tried")]
    Stalled {
        /// What would have been asked.
        call: String,
        /// The call that timed out first, and its deadline.
        first: String,
    },
    /// Any other answer from the engine.
    #[error("{0}")]
    Api(String),
}

/// A duration as people read it in a message: `30 s`, `2.5 s`, `250 ms`.
pub fn seconds(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The name of the engine's default bridge network (Podman's compatible API answers
/// to it too).
pub const DEFAULT_NETWORK: &str = "bridge";

/// Labels on a container or network.
pub type Labels = BTreeMap<String, String>;

/// What an image declares about how it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id (`sha256:...`).
    pub id: String,
    /// Its `CMD`.
    pub cmd: Vec<String>,
    /// Its `ENTRYPOINT`.
    pub entrypoint: Vec<String>,
    /// Its `USER` (empty: root).
    pub user: String,
    /// The paths it declares as volumes (`VOLUME`), sorted.
    pub volumes: Vec<String>,
    /// Its size in bytes, layers it shares with other images included.
    pub size: u64,
    /// Its labels.
    pub labels: Labels,
    /// How many `ONBUILD` instructions it holds: each runs in a build that starts
    /// from it, right after its `FROM`.
    pub triggers: usize,
}

/// An image found by label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListedImage {
    /// Its id (`sha256:...`).
    pub id: String,
    /// Its `repository:tag` names.
    pub tags: Vec<String>,
    /// Its labels.
    pub labels: Labels,
    /// Its size in bytes, layers it shares with other images included.
    pub size: u64,
    /// When it was made, in seconds since the Unix epoch.
    pub created: i64,
}

/// The most a snapshot may take from a container's volumes, in bytes: a bound on what
/// clnrm copies from the engine through its temporary directory.
pub const SNAPSHOT_VOLUMES_CAP: u64 = 8 * 1024 * 1024 * 1024;

/// A bind mount.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Mount {
    /// Absolute path on the engine's host.
    pub host_path: String,
    /// Absolute path in the container.
    pub container_path: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// How a container is connected.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NetworkMode {
    /// No network but loopback.
    None,
    /// No network but loopback, and none of the engine's network set-up (Docker runs a
    /// hook per container for it, a quarter of a start's CPU time): `/etc/hosts` is
    /// then left empty, for whoever starts the container to fill in.
    Disabled,
    /// The engine's default bridge.
    Bridge,
    /// A network of this run, reachable by these aliases.
    Named {
        /// Network name.
        id: String,
        /// DNS names of the container on it.
        aliases: Vec<String>,
    },
}

/// Everything needed to create a container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Entrypoint; `None` means the image's, `[]` none.
    pub entrypoint: Option<Vec<String>>,
    /// Command; empty means the image's.
    pub cmd: Vec<String>,
    /// `KEY=VALUE` pairs.
    pub env: Vec<String>,
    /// Container ports published on random host ports.
    pub ports: Vec<u16>,
    /// Bind mounts.
    pub mounts: Vec<Mount>,
    /// In-memory file systems: `/path` or `/path:options` (mount options).
    pub tmpfs: Vec<String>,
    /// Memory limit in bytes (swap included: no swap).
    pub memory_bytes: Option<i64>,
    /// CPU limit in billionths of a core.
    pub nano_cpus: Option<i64>,
    /// Keep stdin open so that a process can read commands from it.
    pub open_stdin: bool,
    /// Network.
    pub network: NetworkMode,
    /// Extra `/etc/hosts` entries (`name:address`).
    pub extra_hosts: Vec<String>,
    /// Labels.
    pub labels: Labels,
}

/// One chunk of a container's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// From stdout.
    Stdout(Bytes),
    /// From stderr.
    Stderr(Bytes),
}

/// A live connection to a container's main process.
pub struct Attached {
    /// Its stdin.
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    /// Its stdout and stderr, as they come.
    pub output: BoxStream<'static, Result<Chunk, EngineError>>,
}

/// A command run by the engine in a running container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// `KEY=VALUE` pairs added to the container's.
    pub env: Vec<String>,
    /// Working directory.
    pub workdir: Option<String>,
}

/// What an exec produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit code.
    pub exit_code: i64,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// A command running in a container.
pub struct Execution {
    /// The engine's id of the command.
    pub id: String,
    /// Its stdout and stderr, as they come; ends when the command does.
    pub output: BoxStream<'static, Result<Chunk, EngineError>>,
}

/// Output kept per stream and command; beyond it, the oldest bytes are dropped.
pub const OUTPUT_CAP: usize = 8 * 1024 * 1024;

/// The most of a container's log a tail holds, in bytes.
pub const LOG_TAIL_CAP: usize = 64 * 1024;

/// Appends `bytes` to `buf`, dropping the oldest bytes beyond [`OUTPUT_CAP`].
pub fn push_capped(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(bytes);
    if buf.len() > OUTPUT_CAP {
        let cut = buf.len() - OUTPUT_CAP / 2;
        buf.drain(..cut);
    }
}

/// Runs a command in a running container and waits for it, keeping at most
/// [`OUTPUT_CAP`] bytes of each stream. Its duration is the command's: the caller
/// bounds it (a step timeout), not the engine's call deadline.
pub async fn exec<E: ContainerEngine>(
    engine: &E,
    id: &str,
    spec: &ExecSpec,
) -> Result<ExecOutput, EngineError> {
    use futures_util::StreamExt;
    let mut running = engine.exec_start(id, spec).await?;
    let mut out = ExecOutput::default();
    while let Some(chunk) = running.output.next().await {
        match chunk? {
            Chunk::Stdout(b) => push_capped(&mut out.stdout, &b),
            Chunk::Stderr(b) => push_capped(&mut out.stderr, &b),
        }
    }
    out.exit_code = engine.exec_exit_code(&running.id).await?;
    Ok(out)
}

/// A container's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerState {
    /// Its main process is running.
    pub running: bool,
    /// Exit code of the main process, once it ended.
    pub exit_code: Option<i64>,
    /// The kernel killed the main process for lack of memory.
    pub oom_killed: bool,
}

/// What a started container is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Details {
    /// Its addresses on its networks.
    pub ips: Vec<std::net::IpAddr>,
    /// Its published ports: (container port, port on the engine host's loopback).
    pub ports: Vec<(u16, u16)>,
    /// The upper directory of its writable layer on the engine's host, when the
    /// storage driver is an overlay and the engine says where.
    pub upper_dir: Option<std::path::PathBuf>,
    /// The directories below it, topmost first (the container's own `-init` layer,
    /// then its image's), where the engine says.
    pub lower_dirs: Vec<std::path::PathBuf>,
}

/// A container as its own processes need to know it when they drive the engine that
/// runs it (clnrm in a CI job's container): its id, host name, mounts and networks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerView {
    /// Its full id.
    pub id: String,
    /// Its host name (what `hostname` prints inside it).
    pub hostname: String,
    /// Its mounts: (where on the engine's host, where inside it); `None` for what is
    /// on no path of the engine's host (a tmpfs).
    pub mounts: Vec<(Option<String>, String)>,
    /// The networks it is on (by name).
    pub networks: Vec<String>,
    /// Its network mode as the engine says it (`host`, `container:<id>`, a network's
    /// name, `default`).
    pub network_mode: String,
}

/// A container or network found by label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    /// Its id.
    pub id: String,
    /// Its labels.
    pub labels: Labels,
}

/// Engine operations, each one API call or close to it.
pub trait ContainerEngine: Send + Sync + 'static {
    /// How long one call may take ([`Deadlines`] enforces it); clnrm's own checks
    /// inside containers are bounded by it too.
    fn deadline(&self) -> std::time::Duration {
        DEFAULT_CALL
    }
    /// Returns (only) when the engine has stopped answering, with the error that says
    /// so; for whoever waits on a stream meanwhile. Never, unless [`Deadlines`] watches.
    fn stalled(&self) -> impl Future<Output = EngineError> + Send {
        std::future::pending()
    }
    /// Fails with [`EngineError::Unreachable`] when nothing answers.
    fn ping(&self) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// The image, if present locally.
    fn image(
        &self,
        image: &str,
    ) -> impl Future<Output = Result<Option<ImageInfo>, EngineError>> + Send;
    /// Pulls an image.
    fn pull(&self, image: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Creates a bridge network; returns its id.
    fn create_network(
        &self,
        name: &str,
        labels: &Labels,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
    /// The containers on network `id` now (their ids), as the engine says.
    fn network_containers(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<String>, EngineError>> + Send;
    /// The gateway address of a network (by name or id; [`DEFAULT_NETWORK`] is the
    /// engine's default bridge): where its containers reach the engine's host (`None`
    /// when the engine does not say).
    fn network_gateway(
        &self,
        network: &str,
    ) -> impl Future<Output = Result<Option<std::net::IpAddr>, EngineError>> + Send;
    /// Removes a network.
    fn remove_network(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Connects container `container` to `network` (connected already is fine);
    /// returns its address there (`None` when the engine does not say).
    fn connect(
        &self,
        network: &str,
        container: &str,
    ) -> impl Future<Output = Result<Option<std::net::IpAddr>, EngineError>> + Send;
    /// Disconnects container `container` from `network`; not connected, or either
    /// gone, is fine.
    fn disconnect(
        &self,
        network: &str,
        container: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Container `id` (an id or a name) as [`ContainerView`] describes it; `None`
    /// when the engine has no such container.
    fn container_view(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ContainerView>, EngineError>> + Send;
    /// Creates a container; returns its id.
    fn create(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
    /// Attaches to the main process's stdin, stdout and stderr (before start, to miss nothing).
    fn attach(&self, id: &str) -> impl Future<Output = Result<Attached, EngineError>> + Send;
    /// Starts a created container.
    fn start(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Starts a command in a running container; its output streams until it ends.
    fn exec_start(
        &self,
        id: &str,
        spec: &ExecSpec,
    ) -> impl Future<Output = Result<Execution, EngineError>> + Send;
    /// The exit code of a command started by [`ContainerEngine::exec_start`], once
    /// its output has ended.
    fn exec_exit_code(&self, exec: &str) -> impl Future<Output = Result<i64, EngineError>> + Send;
    /// The container's state.
    fn inspect(&self, id: &str)
    -> impl Future<Output = Result<ContainerState, EngineError>> + Send;
    /// What the container's main process wrote to stdout so far.
    fn stdout_log(&self, id: &str) -> impl Future<Output = Result<Vec<u8>, EngineError>> + Send;
    /// Everything the container's main process wrote, stdout and stderr interleaved,
    /// each line prefixed with its RFC 3339 time; at most `cap` bytes (the newest).
    fn log(
        &self,
        id: &str,
        cap: usize,
    ) -> impl Future<Output = Result<Vec<u8>, EngineError>> + Send;
    /// The last `lines` lines the container's main process wrote, stdout and stderr
    /// interleaved, at most [`LOG_TAIL_CAP`] bytes (the newest kept).
    fn log_tail(
        &self,
        id: &str,
        lines: usize,
    ) -> impl Future<Output = Result<Vec<u8>, EngineError>> + Send;
    /// What the container is once started: its addresses, its writable layer.
    fn details(&self, id: &str) -> impl Future<Output = Result<Details, EngineError>> + Send;
    /// The paths of the container's filesystem that differ from its image, sorted.
    fn changes(&self, id: &str) -> impl Future<Output = Result<Vec<String>, EngineError>> + Send;
    /// Stops a container's main process: SIGTERM, then SIGKILL after `grace`.
    fn stop(
        &self,
        id: &str,
        grace: std::time::Duration,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Makes image `tag` (`repository:tag`) of a stopped container: its filesystem,
    /// plus what is in `volumes` (paths its image declares as volumes, which a commit
    /// leaves out), labelled `labels`. Returns the image id.
    fn snapshot(
        &self,
        id: &str,
        tag: &str,
        volumes: &[String],
        labels: &Labels,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
    /// Makes image `tag` of image `image`'s layers and configuration with `labels`
    /// added, without a container (what stands for a snapshot of a container that
    /// changed nothing of its image's files); an engine that cannot, an error.
    /// Returns the image id.
    fn relabel(
        &self,
        image: &str,
        tag: &str,
        labels: &Labels,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
    /// Puts the files of `files` (a tar whose paths are from `/`) into container `id`,
    /// created and not started (what `develop` sync does instead of a build).
    fn put_files(
        &self,
        id: &str,
        files: Vec<u8>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Gives image `image` (an id or a name) the name `tag` (`repository:tag`) too.
    fn tag_image(
        &self,
        image: &str,
        tag: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Images that carry label `key`.
    fn images(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Vec<ListedImage>, EngineError>> + Send;
    /// Removes an image (and the untagged images it was made from); gone already is fine.
    fn remove_image(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Builds an image from `context` (a tar of the build context) as `spec` says. A
    /// build that fails (a Dockerfile step, a missing base image) is an `Ok` of
    /// [`BuildOutcome::Failed`]; `Err` is the engine not answering.
    fn build(
        &self,
        spec: &BuildSpec,
        context: Vec<u8>,
    ) -> impl Future<Output = Result<BuildOutcome, EngineError>> + Send;
    /// Kills and removes a container with its anonymous volumes; gone already is fine.
    fn remove(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Containers (running or not) that carry label `key`.
    fn list(&self, key: &str) -> impl Future<Output = Result<Vec<Listed>, EngineError>> + Send;
    /// Networks that carry label `key`.
    fn list_networks(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Vec<Listed>, EngineError>> + Send;
    /// Creates volume `name` of the local driver with its `options` (`type`, `device`,
    /// `o`: what `mount` gets), labelled `labels`; returns where it is on the engine's
    /// host. A container mounts it as a [`Mount`] whose `host_path` is its name.
    fn create_volume(
        &self,
        name: &str,
        options: &[(String, String)],
        labels: &Labels,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
    /// Where volume `name` is on the engine's host, if it exists.
    fn volume(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, EngineError>> + Send;
    /// Removes a volume no container uses; gone already is fine.
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Volumes that carry label `key` (`id` is the name).
    fn list_volumes(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Vec<Listed>, EngineError>> + Send;
}
