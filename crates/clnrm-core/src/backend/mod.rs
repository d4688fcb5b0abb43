//! The container engine seen through a small trait: create, attach, start, exec,
//! inspect, remove and list by label. Docker through bollard is the one
//! implementation ([`Docker`]); the executor only talks to [`ContainerEngine`]. This
//! module knows nothing about scenarios or steps.

mod docker;

pub use docker::{Docker, image_ids_now};

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
    /// Any other answer from the engine.
    #[error("{0}")]
    Api(String),
}

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
}

/// A bind mount.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
    /// Command; empty means the image's.
    pub cmd: Vec<String>,
    /// `KEY=VALUE` pairs.
    pub env: Vec<String>,
    /// Container ports published on random host ports.
    pub ports: Vec<u16>,
    /// Bind mounts.
    pub mounts: Vec<Mount>,
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
    /// The gateway address of the engine's default bridge network: where its
    /// containers reach the engine's host (`None` when the engine does not say).
    fn bridge_gateway(
        &self,
    ) -> impl Future<Output = Result<Option<std::net::IpAddr>, EngineError>> + Send;
    /// Removes a network.
    fn remove_network(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Creates a container; returns its id.
    fn create(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
    /// Attaches to the main process's stdin, stdout and stderr (before start, to miss nothing).
    fn attach(&self, id: &str) -> impl Future<Output = Result<Attached, EngineError>> + Send;
    /// Starts a created container.
    fn start(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Runs a command in a running container and waits for it.
    fn exec(
        &self,
        id: &str,
        spec: &ExecSpec,
    ) -> impl Future<Output = Result<ExecOutput, EngineError>> + Send;
    /// The container's state.
    fn inspect(&self, id: &str)
    -> impl Future<Output = Result<ContainerState, EngineError>> + Send;
    /// What the container's main process wrote to stdout so far.
    fn stdout_log(&self, id: &str) -> impl Future<Output = Result<Vec<u8>, EngineError>> + Send;
    /// The container's addresses on its networks.
    fn ip_addresses(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<std::net::IpAddr>, EngineError>> + Send;
    /// The paths of the container's filesystem that differ from its image, sorted.
    fn changes(&self, id: &str) -> impl Future<Output = Result<Vec<String>, EngineError>> + Send;
    /// Kills and removes a container with its anonymous volumes; gone already is fine.
    fn remove(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Containers (running or not) that carry label `key`.
    fn list(&self, key: &str) -> impl Future<Output = Result<Vec<Listed>, EngineError>> + Send;
    /// Networks that carry label `key`.
    fn list_networks(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Vec<Listed>, EngineError>> + Send;
}
