//! A deadline on every engine call. An engine that stops answering (a hung daemon, a
//! stalled socket proxy) would otherwise hold a run forever: each call is bounded by
//! [`Deadlines::call`] (image pulls by [`Deadlines::pull`]), and a call past it fails
//! with [`EngineError::Timeout`] naming the call.
//!
//! Once one call has timed out the engine counts as stalled: later calls fail at once
//! with [`EngineError::Stalled`] instead of each waiting out its own deadline, until a
//! probe (a ping a second, itself bounded) gets an answer again. So a stall ends a
//! run in about one deadline, however many scenarios it has.
//!
//! Streams (a container's attached output, an exec's output) last as long as the
//! process behind them, so only setting them up is bounded; `stalled()` lets whoever
//! waits on one notice a stall meanwhile.

use super::{
    Attached, ContainerEngine, ContainerSpec, ContainerState, ContainerView, Details, EngineError,
    ExecSpec, Execution, ImageInfo, Labels, Listed, ListedImage,
};
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `executor.engine_timeout_ms` when the config does not set it.
pub const DEFAULT_CALL: Duration = Duration::from_millis(crate::model::defaults::ENGINE_TIMEOUT_MS);
/// `executor.pull_timeout_ms` when the config does not set it.
pub const DEFAULT_PULL: Duration = Duration::from_millis(crate::model::defaults::PULL_TIMEOUT_MS);

/// How often a stalled engine is probed, and how often `stalled()` checks.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// An engine whose every call has a deadline.
pub struct Deadlines<E> {
    inner: Arc<E>,
    call: Duration,
    pull: Duration,
    stalled: Arc<Mutex<Option<String>>>,
}

impl<E: ContainerEngine> Deadlines<E> {
    /// `inner` with calls bounded by `call` and pulls by `pull`.
    pub fn new(inner: E, call: Duration, pull: Duration) -> Self {
        Self {
            inner: Arc::new(inner),
            call,
            pull,
            stalled: Arc::default(),
        }
    }

    /// The deadline of one call.
    pub fn call(&self) -> Duration {
        self.call
    }

    /// The deadline of an image pull.
    pub fn pull(&self) -> Duration {
        self.pull
    }

    /// The wrapped engine.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    fn stalled(&self) -> Option<String> {
        self.stalled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Runs `fut` as the call `what`, within `limit`.
    async fn within<T>(
        &self,
        what: &'static str,
        limit: Duration,
        fut: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        if let Some(first) = self.stalled() {
            return Err(EngineError::Stalled {
                call: what.to_owned(),
                first,
            });
        }
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => {
                self.trip(what, limit);
                Err(EngineError::Timeout {
                    call: what.to_owned(),
                    after: limit,
                })
            }
        }
    }

    /// Marks the engine stalled and starts probing it.
    fn trip(&self, what: &str, limit: Duration) {
        let mut stalled = self
            .stalled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if stalled.is_some() {
            return;
        }
        *stalled = Some(format!(
            "`{what}` got no answer within {}",
            super::seconds(limit)
        ));
        let (inner, flag, call) = (self.inner.clone(), self.stalled.clone(), self.call);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                if let Ok(Ok(())) = tokio::time::timeout(call, inner.ping()).await {
                    *flag
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                    return;
                }
                if Arc::strong_count(&flag) == 1 {
                    return; // Nobody uses the engine any more.
                }
            }
        });
    }
}

impl<E: ContainerEngine> ContainerEngine for Deadlines<E> {
    fn deadline(&self) -> Duration {
        self.call
    }

    async fn stalled(&self) -> EngineError {
        loop {
            tokio::time::sleep(PROBE_EVERY.min(self.call / 2)).await;
            if let Err(e) = self.ping().await {
                return e;
            }
        }
    }

    async fn ping(&self) -> Result<(), EngineError> {
        self.within("ping", self.call, self.inner.ping()).await
    }

    async fn image(&self, image: &str) -> Result<Option<ImageInfo>, EngineError> {
        self.within("inspect image", self.call, self.inner.image(image))
            .await
    }

    async fn pull(&self, image: &str) -> Result<(), EngineError> {
        self.within("pull image", self.pull, self.inner.pull(image))
            .await
    }

    async fn create_network(&self, name: &str, labels: &Labels) -> Result<String, EngineError> {
        self.within(
            "create network",
            self.call,
            self.inner.create_network(name, labels),
        )
        .await
    }

    async fn network_containers(&self, id: &str) -> Result<Vec<String>, EngineError> {
        self.within(
            "inspect network",
            self.call,
            self.inner.network_containers(id),
        )
        .await
    }

    async fn network_gateway(&self, network: &str) -> Result<Option<IpAddr>, EngineError> {
        self.within(
            "inspect network",
            self.call,
            self.inner.network_gateway(network),
        )
        .await
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        self.within("remove network", self.call, self.inner.remove_network(id))
            .await
    }

    async fn connect(&self, network: &str, container: &str) -> Result<Option<IpAddr>, EngineError> {
        self.within(
            "connect to network",
            self.call,
            self.inner.connect(network, container),
        )
        .await
    }

    async fn disconnect(&self, network: &str, container: &str) -> Result<(), EngineError> {
        self.within(
            "disconnect from network",
            self.call,
            self.inner.disconnect(network, container),
        )
        .await
    }

    async fn container_view(&self, id: &str) -> Result<Option<ContainerView>, EngineError> {
        self.within(
            "inspect container",
            self.call,
            self.inner.container_view(id),
        )
        .await
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        self.within("create container", self.call, self.inner.create(spec))
            .await
    }

    async fn attach(&self, id: &str) -> Result<Attached, EngineError> {
        self.within("attach to container", self.call, self.inner.attach(id))
            .await
    }

    async fn start(&self, id: &str) -> Result<(), EngineError> {
        self.within("start container", self.call, self.inner.start(id))
            .await
    }

    async fn exec_start(&self, id: &str, spec: &ExecSpec) -> Result<Execution, EngineError> {
        self.within("start exec", self.call, self.inner.exec_start(id, spec))
            .await
    }

    async fn exec_exit_code(&self, exec: &str) -> Result<i64, EngineError> {
        self.within("inspect exec", self.call, self.inner.exec_exit_code(exec))
            .await
    }

    async fn inspect(&self, id: &str) -> Result<ContainerState, EngineError> {
        self.within("inspect container", self.call, self.inner.inspect(id))
            .await
    }

    async fn stdout_log(&self, id: &str) -> Result<Vec<u8>, EngineError> {
        self.within("read container logs", self.call, self.inner.stdout_log(id))
            .await
    }

    async fn log(&self, id: &str, cap: usize) -> Result<Vec<u8>, EngineError> {
        self.within("read container logs", self.call, self.inner.log(id, cap))
            .await
    }

    async fn log_tail(&self, id: &str, lines: usize) -> Result<Vec<u8>, EngineError> {
        self.within(
            "read container logs",
            self.call,
            self.inner.log_tail(id, lines),
        )
        .await
    }

    async fn details(&self, id: &str) -> Result<Details, EngineError> {
        self.within("inspect container", self.call, self.inner.details(id))
            .await
    }

    async fn changes(&self, id: &str) -> Result<Vec<String>, EngineError> {
        self.within("diff container", self.call, self.inner.changes(id))
            .await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), EngineError> {
        self.within(
            "stop container",
            self.call + grace,
            self.inner.stop(id, grace),
        )
        .await
    }

    async fn snapshot(
        &self,
        id: &str,
        tag: &str,
        volumes: &[String],
        labels: &Labels,
    ) -> Result<String, EngineError> {
        // A commit and a build copy the container's data: as long as a pull may take.
        let made = self.inner.snapshot(id, tag, volumes, labels);
        self.within("snapshot container", self.pull, made).await
    }

    async fn relabel(
        &self,
        image: &str,
        tag: &str,
        labels: &Labels,
    ) -> Result<String, EngineError> {
        // A load of a configuration alone: an API call.
        self.within(
            "label image",
            self.call,
            self.inner.relabel(image, tag, labels),
        )
        .await
    }

    async fn put_files(&self, id: &str, files: Vec<u8>) -> Result<(), EngineError> {
        // A copy of files of any size: as long as a pull may take.
        self.within(
            "copy files into container",
            self.pull,
            self.inner.put_files(id, files),
        )
        .await
    }

    async fn tag_image(&self, image: &str, tag: &str) -> Result<(), EngineError> {
        self.within("tag image", self.call, self.inner.tag_image(image, tag))
            .await
    }

    async fn images(&self, key: &str) -> Result<Vec<ListedImage>, EngineError> {
        self.within("list images", self.call, self.inner.images(key))
            .await
    }

    async fn remove_image(&self, id: &str) -> Result<(), EngineError> {
        self.within("remove image", self.call, self.inner.remove_image(id))
            .await
    }

    async fn build(
        &self,
        spec: &super::BuildSpec,
        context: Vec<u8>,
    ) -> Result<super::BuildOutcome, EngineError> {
        // A build may pull its base images: the pull's deadline.
        self.within("build image", self.pull, self.inner.build(spec, context))
            .await
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
        self.within("remove container", self.call, self.inner.remove(id))
            .await
    }

    async fn list(&self, key: &str) -> Result<Vec<Listed>, EngineError> {
        self.within("list containers", self.call, self.inner.list(key))
            .await
    }

    async fn list_networks(&self, key: &str) -> Result<Vec<Listed>, EngineError> {
        self.within("list networks", self.call, self.inner.list_networks(key))
            .await
    }

    async fn create_volume(
        &self,
        name: &str,
        options: &[(String, String)],
        labels: &Labels,
    ) -> Result<String, EngineError> {
        let call = self.inner.create_volume(name, options, labels);
        self.within("create volume", self.call, call).await
    }

    async fn volume(&self, name: &str) -> Result<Option<String>, EngineError> {
        self.within("inspect volume", self.call, self.inner.volume(name))
            .await
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.within("remove volume", self.call, self.inner.remove_volume(name))
            .await
    }

    async fn list_volumes(&self, key: &str) -> Result<Vec<Listed>, EngineError> {
        self.within("list volumes", self.call, self.inner.list_volumes(key))
            .await
    }
}
