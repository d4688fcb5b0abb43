//! Warm environments. An environment is the set of started (and healthy) containers a
//! scenario runs in, plus its private network when it has several services. The pool
//! prepares environments ahead of the scenarios that will need them, keyed by
//! [`EnvSpec::key`], so a scenario does not wait for container create and start.
//!
//! No state leaks between scenarios: an environment goes back to the pool only when
//! every container in it is an agent container (its main process is clnrm's shell)
//! and, after the scenario, its writable layer is as it was right after start (read
//! from the host when clnrm can, see [`crate::backend::layer`], else the engine's
//! diff), no process but the shell is alive, `/dev/shm` is empty and no OOM kill
//! happened.
//! Anything else is removed and a fresh environment takes its place.
//!
//! Split by job: [`slot`] keeps each key's counts (their one owner), `build` creates
//! networks and containers, `ready` waits for health checks and ready spans,
//! `hygiene` decides whether a used environment is clean; this file hands
//! environments out and takes them back.

mod build;
mod cow;
mod hygiene;
mod ready;
mod slot;
mod snapshot;

pub use build::{AgentShell, StepError, agent_shell, run_in};
pub use cow::{FIXTURE_VOLUME_LABEL, VOLUMES_LABEL};
pub use hygiene::oom_kills;
pub use snapshot::{
    SNAPSHOT_IMAGE_LABEL, SNAPSHOT_LABEL, SNAPSHOT_REPO, SNAPSHOT_SERVICE_LABEL, SnapshotInfo,
    remove_snapshots, snapshot_key, snapshots,
};

use super::agent::Agent;
use super::reaper::RunOwner;
use super::steps::{Steps, StepsRan};
use super::vantage::Vantage;
use crate::backend::{ContainerEngine, EngineError};
use crate::otel::Receiver;
use crate::plan::EnvSpec;
use slot::Slot;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Empty networks kept for the next environments, at most.
const SPARE_NETWORKS: usize = 8;

/// Why an environment could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The engine refused or failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// A health check never passed.
    #[error("service \"{service}\" is not healthy after {tries} tries of `{command}`{last}{}", log_suffix(.log))]
    Unhealthy {
        /// Service id.
        service: String,
        /// The health command.
        command: String,
        /// Tries made.
        tries: u64,
        /// What the last try printed, prefixed for display.
        last: String,
        /// The tail of the service's log.
        log: String,
    },
    /// A service's `wait_for_span` never arrived.
    #[error("service \"{service}\" did not emit its ready span \"{span}\" within {} s", timeout.as_secs())]
    NoReadySpan {
        /// Service id.
        service: String,
        /// The span it must emit.
        span: String,
        /// How long clnrm waited.
        timeout: Duration,
    },
    /// A service's main process exited: a one-shot with a non-zero code, or a
    /// service that was to keep running.
    #[error("service \"{service}\" {} {when}{}", exit_words(*.code, *.oom_killed), log_suffix(.log))]
    ServiceExited {
        /// Service id.
        service: String,
        /// Its exit code (137: killed).
        code: i64,
        /// The kernel killed it for lack of memory.
        oom_killed: bool,
        /// What it was doing, for the message.
        when: String,
        /// The tail of its log.
        log: String,
    },
    /// A one-shot did not finish in time.
    #[error("one-shot service \"{service}\" did not exit within {} s{}", timeout.as_secs(), log_suffix(.log))]
    NotCompleted {
        /// Service id.
        service: String,
        /// How long clnrm waited.
        timeout: Duration,
        /// The tail of its log.
        log: String,
    },
    /// The scenario needs more containers than may exist at once.
    #[error("needs {need} containers but executor.max_concurrent_containers is {max}")]
    TooBig {
        /// Containers needed.
        need: usize,
        /// The bound.
        max: usize,
    },
    /// A service's set-up steps failed, or its snapshot could not be made.
    #[error("set-up of service \"{service}\" failed: {message}")]
    Setup {
        /// Service id.
        service: String,
        /// What failed, with the failed step's output.
        message: String,
    },
    /// The run is stopping.
    #[error("the run is stopping")]
    Stopped,
}

/// How a main process ended, for a message.
fn exit_words(code: i64, oom_killed: bool) -> String {
    if oom_killed {
        format!("was killed for lack of memory (exit code {code})")
    } else {
        format!("exited with code {code}")
    }
}

/// A log tail for an error message: indented under it, or nothing.
fn log_suffix(log: &str) -> String {
    ends("log", log, usize::MAX)
}

/// The last `lines` lines of `text` for an error message, indented under it after
/// "; its `what` ends:", or nothing when `text` is blank.
fn ends(what: &str, text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    if all.is_empty() {
        return String::new();
    }
    let mut out = format!("; its {what} ends:");
    for line in &all[all.len().saturating_sub(lines)..] {
        out.push_str("\n    ");
        out.push_str(line);
    }
    out
}

impl PoolError {
    /// The tail of the failing service's log, when the error has one.
    pub fn log(&self) -> Option<&str> {
        match self {
            PoolError::ServiceExited { log, .. }
            | PoolError::NotCompleted { log, .. }
            | PoolError::Unhealthy { log, .. } => Some(log),
            _ => None,
        }
    }
}

/// What a session could not remove when it ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Containers.
    pub containers: usize,
    /// Networks.
    pub networks: usize,
}

impl Leftovers {
    /// Whether everything was removed.
    pub fn is_empty(&self) -> bool {
        self.containers + self.networks == 0
    }
}

/// One service's container in an environment.
#[derive(Debug)]
pub struct Member {
    /// Service id.
    pub service: String,
    /// Container id.
    pub container: String,
    /// The agent, when the container's main process is clnrm's shell.
    pub agent: Option<Agent>,
    /// Its addresses (for attributing the spans it sends).
    pub ips: Vec<std::net::IpAddr>,
    /// Its published ports: (container port, loopback port on the engine's host).
    pub ports: Vec<(u16, u16)>,
    /// Its address on the network clnrm shares with it, when clnrm runs in one of
    /// the engine's containers (which reach none of the engine host's loopback).
    pub reach: Option<std::net::IpAddr>,
    /// The filesystem changes the engine reports right after start (mount points it
    /// created); a clean container reports exactly these.
    pub baseline: Arc<Vec<String>>,
    /// What [`BIND_MOUNTED`] printed right after start.
    etc: String,
    /// The upper directory of its writable layer, and that layer's listing right
    /// after start, when this process can read it (else `baseline` is used).
    layer: Option<(std::path::PathBuf, Arc<Vec<String>>)>,
    /// When each of clnrm's health probes of it ran (ns since the epoch, from before
    /// it was sent to after it answered): the traffic they caused is not the
    /// scenario's.
    pub probes: Vec<(u64, u64)>,
    /// The layers it mounts over a fixture's data, removed after it.
    layers: Option<cow::Layers>,
}

impl Member {
    /// Where clnrm reaches the member's container port `port`, when it is published:
    /// the engine host's loopback port, or (clnrm in a container) the member's
    /// address and the port itself.
    pub fn address(&self, port: u16) -> Option<std::net::SocketAddr> {
        let (inside, outside) = self.ports.iter().find(|(inside, _)| *inside == port)?;
        Some(match self.reach {
            Some(ip) => (ip, *inside).into(),
            None => (std::net::Ipv4Addr::LOCALHOST, *outside).into(),
        })
    }
}

/// What waiting on a member needs (a [`Member`] itself cannot cross an await: its
/// agent's connection is not `Sync`).
struct MemberRef {
    container: String,
    ips: Vec<std::net::IpAddr>,
    agent: bool,
}

impl MemberRef {
    fn of(m: &Member) -> Self {
        Self {
            container: m.container.clone(),
            ips: m.ips.clone(),
            agent: m.agent.is_some(),
        }
    }
}

/// Started, healthy containers for one scenario at a time.
#[derive(Debug)]
pub struct Env {
    /// What it was made from.
    pub spec: Arc<EnvSpec>,
    /// Its containers, in the order of `spec.services`.
    pub members: Vec<Member>,
    network: Option<String>,
    network_name: Option<String>,
    _permits: Option<OwnedSemaphorePermit>,
}

impl Member {
    /// Container `container` of service `service`, just created: what is learnt
    /// once it runs (addresses, ports, its layer as it started) comes after.
    fn new(
        service: String,
        container: String,
        agent: Option<Agent>,
        layers: Option<cow::Layers>,
    ) -> Self {
        Self {
            service,
            container,
            agent,
            ips: Vec::new(),
            ports: Vec::new(),
            reach: None,
            baseline: Arc::default(),
            etc: String::new(),
            layer: None,
            probes: Vec::new(),
            layers,
        }
    }
}

impl Env {
    /// Whether it may serve another scenario after its own (checked clean then): its
    /// containers all run clnrm's shell, which can tell what a scenario changed.
    pub(super) fn may_return(&self) -> bool {
        self.members.iter().all(|m| m.agent.is_some())
    }

    /// Every address of every container.
    pub fn ips(&self) -> Vec<std::net::IpAddr> {
        self.members
            .iter()
            .flat_map(|m| m.ips.iter().copied())
            .collect()
    }

    /// The member running `service`.
    pub fn member(&mut self, service: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.service == service)
    }

    /// When clnrm's health probes of any of its containers ran.
    pub fn probe_windows(&self) -> Vec<(u64, u64)> {
        self.members
            .iter()
            .flat_map(|m| m.probes.iter().copied())
            .collect()
    }

    /// Values that are its containers (full id, short id, which is also the host
    /// name, and addresses) → the service id each stands for.
    pub fn identities(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        for m in &self.members {
            let short: String = m.container.chars().take(12).collect();
            for v in [m.container.clone(), short]
                .into_iter()
                .chain(m.ips.iter().map(ToString::to_string))
            {
                out.insert(v, m.service.clone());
            }
        }
        out
    }

    /// The name of the network its containers are on, when they are on one.
    pub fn network_name(&self) -> Option<&str> {
        match self.spec.network {
            crate::plan::NetworkNeed::Private => self.network_name.as_deref(),
            crate::plan::NetworkNeed::Bridge => Some(crate::backend::DEFAULT_NETWORK),
            crate::plan::NetworkNeed::None => None,
        }
    }
}

struct Inner<E> {
    engine: Arc<E>,
    run_setup: RunSetup<E>,
    owner: RunOwner,
    /// Image → the shell to use as agent when the service sets no `args`.
    agent_shells: Mutex<HashMap<String, Option<AgentShell>>>,
    keep_warm: bool,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    containers: Arc<Semaphore>,
    max_containers: usize,
    preparing: Semaphore,
    live: Mutex<HashSet<String>>,
    networks: Mutex<HashSet<String>>,
    /// Networks of removed environments, empty, for the next ones: (id, name).
    spare_networks: Mutex<Vec<(String, String)>>,
    /// The run's queue is empty and no environment is kept warm: a network an
    /// environment leaves is removed at once, not kept for a next one (see `trim`).
    drained: AtomicBool,
    /// Preparations that have not chosen their network yet: the spare networks are
    /// kept for them when the queue runs dry, and removed once they have.
    unstarted: AtomicUsize,
    seq: AtomicU64,
    tracker: TaskTracker,
    stop: CancellationToken,
    warm: bool,
    receiver: Option<Arc<Receiver>>,
    /// Where clnrm runs (on the engine's host, or in one of its containers).
    vantage: Arc<Vantage>,
    /// Preparations a claim waits for.
    urgent: AtomicUsize,
    /// Snapshot key → its image, once made (or why it could not be).
    snapshots: Mutex<HashMap<String, snapshot::Made>>,
    /// Snapshots of services that mount what cannot be summarised (key, image): a
    /// run's own (no later run may reuse them), removed when it ends.
    own_snapshots: Mutex<Vec<(String, String)>>,
    /// Network → the address its containers reach this host at (see `host_address`).
    gateways: Mutex<HashMap<String, String>>,
    /// Each snapshot's helper (see `cow`).
    helpers: cow::Helpers,
    /// Snapshot image → its fixture volumes, for those whose data is in volumes.
    layered: Mutex<HashMap<String, cow::Volumes>>,
    /// The volumes of the run not removed yet (layers of containers, helpers' uppers).
    volumes: Mutex<HashSet<String>>,
}

/// How big and how eager a pool is.
#[derive(Clone, Copy, Debug)]
pub struct PoolConfig {
    /// Containers alive at once, at most.
    pub max_containers: usize,
    /// Environments prepared at once, at most.
    pub parallel: usize,
    /// Prepare ahead and reuse clean environments; `false` creates each scenario's
    /// containers when it starts and removes them after (to measure what the pool buys).
    pub warm: bool,
    /// Keep one clean environment per key when no scenario needs it (`watch`).
    pub keep_warm: bool,
}

/// How the pool runs a fixture's set-up steps in an environment it started: the
/// executor's step runner, given by the session. The pool starts, checks and removes
/// environments; running steps is not its job.
pub type RunSetup<E> =
    for<'a> fn(
        &'a Pool<E>,
        &'a mut Env,
        &'a Steps<'a>,
        &'a CancellationToken,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = StepsRan> + Send + 'a>>;

/// A claim on the next environment of a key.
pub struct Claim {
    slot: Arc<Slot>,
}

impl Claim {
    /// Waits for the claimed environment.
    pub async fn ready(self) -> Result<Env, PoolError> {
        self.slot.take().await
    }
}

/// The pool of warm environments of one run.
pub struct Pool<E> {
    inner: Arc<Inner<E>>,
}

impl<E> Clone for Pool<E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<E: ContainerEngine> Pool<E> {
    /// A pool for one run, which runs fixtures' set-up steps with `run_setup`.
    pub fn new(
        engine: Arc<E>,
        owner: RunOwner,
        config: PoolConfig,
        receiver: Option<Arc<Receiver>>,
        vantage: Arc<Vantage>,
        run_setup: RunSetup<E>,
    ) -> Self {
        let max_containers = config.max_containers.max(1);
        Self {
            inner: Arc::new(Inner {
                engine,
                run_setup,
                owner,
                agent_shells: Mutex::new(HashMap::new()),
                keep_warm: config.keep_warm,
                slots: Mutex::new(HashMap::new()),
                containers: Arc::new(Semaphore::new(max_containers)),
                max_containers,
                preparing: Semaphore::new(config.parallel.max(1)),
                warm: config.warm,
                receiver,
                vantage,
                urgent: AtomicUsize::new(0),
                snapshots: Mutex::new(HashMap::new()),
                own_snapshots: Mutex::new(Vec::new()),
                gateways: Mutex::new(HashMap::new()),
                helpers: Mutex::new(HashMap::new()),
                layered: Mutex::new(HashMap::new()),
                volumes: Mutex::new(HashSet::new()),
                live: Mutex::new(HashSet::new()),
                networks: Mutex::new(HashSet::new()),
                spare_networks: Mutex::default(),
                drained: AtomicBool::new(false),
                unstarted: AtomicUsize::new(0),
                seq: AtomicU64::new(0),
                tracker: TaskTracker::new(),
                stop: CancellationToken::new(),
            }),
        }
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        lock(&self.inner.slots)
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Slot::new()))
            .clone()
    }

    /// Claims the next ready environment for `spec`, starting its preparation if none is
    /// on its way; [`Claim::ready`] waits for it. Claiming first, then prewarming for
    /// later scenarios, keeps the preparations in dispatch order.
    pub fn claim(&self, spec: &Arc<EnvSpec>) -> Claim {
        // A claim after the queue ran dry (a retry): networks are worth keeping again.
        self.inner.drained.store(false, Ordering::SeqCst);
        let slot = self.slot(&spec.key);
        if slot.claim() {
            self.spawn_prepare(spec.clone(), slot.clone(), true);
        }
        Claim { slot }
    }

    /// Removes ready environments that no claim waits for (the queue is empty), but
    /// the one per key kept warm (`watch`).
    ///
    /// Without environments kept warm, nothing more is wanted ahead (unless a
    /// scenario is retried): the spare networks are removed in the background (once
    /// the preparations still waiting for their turn have chosen theirs), and so is
    /// each network an environment leaves from now on. The engine removes networks
    /// one at a time (about 0.2 s each here), so those left to shutdown lengthen
    /// every run's end.
    pub fn trim(&self) {
        let keep = usize::from(self.inner.keep_warm);
        let slots: Vec<Arc<Slot>> = lock(&self.inner.slots).values().cloned().collect();
        for slot in &slots {
            while let Some(env) = slot.surplus(keep) {
                self.destroy_later(env);
            }
        }
        if self.inner.keep_warm || self.inner.stop.is_cancelled() {
            return;
        }
        for slot in &slots {
            slot.want_nothing();
        }
        self.inner.drained.store(true, Ordering::SeqCst);
        // Preparations for the last scenarios may still be waiting for their turn:
        // the spares are theirs, and the last of them to start removes the rest.
        if self.inner.unstarted.load(Ordering::SeqCst) == 0 {
            self.remove_spare_networks();
        }
    }

    /// A preparation has chosen its network (or given up before): when the queue
    /// ran dry and it was the last, the spare networks go.
    fn started_one(&self) {
        if self.inner.unstarted.fetch_sub(1, Ordering::SeqCst) == 1
            && self.inner.drained.load(Ordering::SeqCst)
        {
            self.remove_spare_networks();
        }
    }

    /// Removes the spare networks in the background.
    fn remove_spare_networks(&self) {
        if self.inner.stop.is_cancelled() {
            return;
        }
        let spare = std::mem::take(&mut *lock(&self.inner.spare_networks));
        if spare.is_empty() {
            return;
        }
        let pool = self.clone();
        self.inner.tracker.spawn(async move {
            for (id, name) in spare {
                pool.remove_network(&id, &name).await;
            }
        });
    }

    /// Makes sure `count` environments for `spec` beyond those already claimed are on
    /// their way, and `further` more when its environments never come back for reuse
    /// (see `Slot`): the scenarios due next, and those due after them.
    pub fn prewarm(&self, spec: &Arc<EnvSpec>, count: usize, further: usize) {
        if self.inner.stop.is_cancelled() || !self.inner.warm {
            return;
        }
        self.slot(&spec.key).want_ahead(spec, count, further);
        self.pump();
    }

    /// Starts the ahead-of-time preparations, but only while no scenario waits for an
    /// environment being prepared: they must not slow down one that is needed now.
    fn pump(&self) {
        if self.inner.urgent.load(Ordering::SeqCst) > 0 || self.inner.stop.is_cancelled() {
            return;
        }
        let slots: Vec<Arc<Slot>> = lock(&self.inner.slots).values().cloned().collect();
        for slot in slots {
            let Some((spec, more)) = slot.top_up() else {
                continue;
            };
            for _ in 0..more {
                self.spawn_prepare(spec.clone(), slot.clone(), false);
            }
        }
    }

    /// Gives an environment back after a scenario. `reusable` says the scenario ended
    /// normally; the environment is still checked before anyone else gets it.
    /// `queued` is how many scenarios not yet dispatched need this environment's key: an
    /// environment the ones on their way already cover is removed at once.
    pub fn release(&self, env: Env, reusable: bool, queued: usize) {
        let slot = self.slot(&env.spec.key);
        let covered = slot.give_back(&env, queued, self.inner.keep_warm);
        let recyclable = reusable
            && !covered
            && self.inner.warm
            && !self.inner.stop.is_cancelled()
            && env.may_return();
        if !recyclable {
            // Kept warm (`watch`) but not reusable (a database, say): a fresh one is
            // prepared now, so that the next save does not wait for its start.
            let replace = !covered
                && self.inner.keep_warm
                && self.inner.warm
                && !self.inner.stop.is_cancelled();
            let spec = env.spec.clone();
            self.destroy_later(env);
            if replace {
                slot.checking();
                self.spawn_prepare(spec, slot, false);
            }
            return;
        }
        slot.checking();
        let pool = self.clone();
        self.inner.tracker.spawn(async move {
            let mut env = env;
            if pool.is_clean(&mut env).await {
                slot.deliver(Ok(env));
                return;
            }
            let spec = env.spec.clone();
            pool.destroy(env).await;
            if slot.check_failed() {
                pool.spawn_prepare(spec, slot, true);
            }
        });
    }

    /// Makes empty networks in the background, as many as it takes for `n` (at most 8)
    /// to be spare now (those removed environments left count): the first
    /// environments of the next run (`clnrm watch`: a save changed their key) do not
    /// wait for the engine to make theirs (it costs about as much as a container's
    /// start). Removed with the others at shutdown.
    pub fn stock_networks(&self, n: usize) {
        if self.inner.stop.is_cancelled() {
            return;
        }
        let wanted = n
            .min(SPARE_NETWORKS)
            .saturating_sub(lock(&self.inner.spare_networks).len());
        let pool = self.clone();
        self.inner.tracker.spawn(async move {
            let inner = &pool.inner;
            for _ in 0..wanted {
                if inner.stop.is_cancelled() {
                    return;
                }
                let seq = inner.seq.fetch_add(1, Ordering::Relaxed);
                let name = format!("clnrm-{}-{seq}", inner.owner.run_id);
                let Ok(id) = inner
                    .engine
                    .create_network(&name, &inner.owner.labels())
                    .await
                else {
                    return;
                };
                lock(&inner.networks).insert(id.clone());
                lock(&inner.spare_networks).push((id, name));
            }
        });
    }

    /// Stops preparing, then kills and removes every container and network of the run;
    /// returns what could not be removed (a stalled engine), which the next run reaps.
    /// Dropped midway (no time left), [`Pool::leftovers`] says what is left.
    pub async fn shutdown(&self) -> Leftovers {
        self.inner.stop.cancel();
        self.inner.tracker.close();
        // What is in flight is a chain of engine calls, each bounded.
        let settle = self.inner.engine.deadline() * 2;
        let _ = tokio::time::timeout(settle, self.inner.tracker.wait()).await;
        let containers: Vec<String> = lock(&self.inner.live).iter().cloned().collect();
        let engine = &self.inner.engine;
        let removals = containers.iter().map(|id| async move {
            if engine.remove(id).await.is_ok() {
                lock(&self.inner.live).remove(id);
            }
        });
        futures_util::future::join_all(removals).await;
        let volumes: Vec<String> = lock(&self.inner.volumes).iter().cloned().collect();
        self.remove_volumes(volumes).await;
        self.inner.vantage.leave_all(&**engine).await;
        lock(&self.inner.spare_networks).clear();
        let networks: Vec<String> = lock(&self.inner.networks).iter().cloned().collect();
        for n in &networks {
            if engine.remove_network(n).await.is_ok() {
                lock(&self.inner.networks).remove(n);
                lock(&self.inner.gateways).remove(n);
            }
        }
        self.remove_own_snapshots().await;
        self.leftovers()
    }

    /// Removes the snapshots made for one run only (of services that mount what
    /// cannot be summarised); what the engine keeps (in use, not answering) `cache
    /// clear` removes.
    pub async fn remove_own_snapshots(&self) {
        let own: Vec<(String, String)> = std::mem::take(&mut *lock(&self.inner.own_snapshots));
        for (key, tag) in own {
            lock(&self.inner.snapshots).remove(&key);
            let _ = self.inner.engine.remove_image(&tag).await;
            // Its data goes when the run's containers have (warm ones may still
            // mount layers over it): at shutdown, with the run's other volumes.
            let volumes = lock(&self.inner.layered).remove(&tag).unwrap_or_default();
            lock(&self.inner.volumes).extend(volumes.into_iter().map(|(_, v)| v));
        }
    }

    /// The containers and networks of the run not removed (yet).
    pub fn leftovers(&self) -> Leftovers {
        Leftovers {
            containers: lock(&self.inner.live).len(),
            networks: lock(&self.inner.networks).len(),
        }
    }

    /// Prepares an environment in the background; `urgent` when a scenario waits for it.
    fn spawn_prepare(&self, spec: Arc<EnvSpec>, slot: Arc<Slot>, urgent: bool) {
        let pool = self.clone();
        if urgent {
            self.inner.urgent.fetch_add(1, Ordering::SeqCst);
        }
        // Counted before it runs: a `trim` right after this claim keeps its spare.
        self.inner.unstarted.fetch_add(1, Ordering::SeqCst);
        self.inner.tracker.spawn(async move {
            use futures_util::FutureExt;
            // A panic while preparing (a defect) must not leave its claim waiting
            // forever: it is that claim's error. What it made is removed at shutdown.
            let result = std::panic::AssertUnwindSafe(pool.prepare(spec))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Err(PoolError::Engine(EngineError::Api(
                        "preparing the environment failed unexpectedly (a defect in clnrm)".into(),
                    )))
                });
            slot.deliver(result);
            if urgent && pool.inner.urgent.fetch_sub(1, Ordering::SeqCst) == 1 {
                pool.pump();
            }
        });
    }

    async fn prepare(&self, spec: Arc<EnvSpec>) -> Result<Env, PoolError> {
        // Counted by `spawn_prepare`; released once the network is chosen, or here.
        let unstarted = Unstarted(self);
        let need = spec.services.len();
        if need > self.inner.max_containers {
            return Err(PoolError::TooBig {
                need,
                max: self.inner.max_containers,
            });
        }
        let permits = self.container_permits(&spec.key, need).await?;
        let _turn = tokio::select! {
            t = self.inner.preparing.acquire() => t.map_err(|_| PoolError::Stopped)?,
            () = self.inner.stop.cancelled() => return Err(PoolError::Stopped),
        };
        let mut env = Env {
            spec: spec.clone(),
            members: Vec::new(),
            network: None,
            network_name: None,
            _permits: Some(permits),
        };
        match self.start_env(&mut env, Some(unstarted)).await {
            Ok(()) => Ok(env),
            Err(e) => {
                self.destroy(env).await;
                Err(e)
            }
        }
    }

    async fn container_permits(
        &self,
        key: &str,
        need: usize,
    ) -> Result<OwnedSemaphorePermit, PoolError> {
        let sem = self.inner.containers.clone();
        loop {
            if let Ok(p) = sem.clone().try_acquire_many_owned(need as u32) {
                return Ok(p);
            }
            if !self.evict_idle(key) {
                break;
            }
        }
        tokio::select! {
            p = sem.acquire_many_owned(need as u32) => p.map_err(|_| PoolError::Stopped),
            () = self.inner.stop.cancelled() => Err(PoolError::Stopped),
        }
    }

    /// Removes one ready environment that nobody waits for, of another key.
    fn evict_idle(&self, except: &str) -> bool {
        let slots: Vec<(String, Arc<Slot>)> = lock(&self.inner.slots)
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        for (key, slot) in slots {
            if key == except {
                continue;
            }
            if let Some(env) = slot.surplus(0) {
                self.destroy_later(env);
                return true;
            }
        }
        false
    }

    /// Removes an environment in the background.
    fn destroy_later(&self, env: Env) {
        let pool = self.clone();
        self.inner
            .tracker
            .spawn(async move { pool.destroy(env).await });
    }

    /// Kills and removes an environment's containers and network.
    pub async fn destroy(&self, env: Env) {
        let inner = &self.inner;
        if let Some(r) = &inner.receiver {
            r.forget(&env.ips());
        }
        let ids: Vec<String> = env.members.iter().map(|m| m.container.clone()).collect();
        let mut members = env.members;
        let layers: Vec<cow::Layers> = members.iter_mut().filter_map(|m| m.layers.take()).collect();
        drop(members);
        let removed =
            futures_util::future::join_all(ids.iter().map(|id| inner.engine.remove(id))).await;
        {
            let mut live = lock(&inner.live);
            for id in &ids {
                live.remove(id);
            }
        }
        for layers in layers {
            self.drop_layers(layers).await;
        }
        // Both are set together when the environment's network is chosen.
        if let (Some(net), Some(name)) = (env.network, env.network_name) {
            // Empty (the engine lists no container on it but clnrm's own: none of
            // its names answers there any more, not even a container whose start
            // failed), it serves the next environment: a network costs the engine
            // about as much to make and remove as a container does.
            let empty = removed.iter().all(Result::is_ok)
                && !inner.stop.is_cancelled()
                && !inner.drained.load(Ordering::SeqCst)
                && lock(&inner.spare_networks).len() < SPARE_NETWORKS
                && inner.engine.network_containers(&net).await.is_ok_and(|on| {
                    on.iter()
                        .all(|c| inner.vantage.joiner() == Some(c.as_str()))
                });
            if empty {
                // Asked again under the lock `trim` takes them with: the queue may
                // have run dry meanwhile.
                let mut spare = lock(&inner.spare_networks);
                if !inner.drained.load(Ordering::SeqCst) && spare.len() < SPARE_NETWORKS {
                    spare.push((net, name));
                    return;
                }
            }
            self.remove_network(&net, &name).await;
        }
    }

    /// Removes one of the run's networks (`id`, named `name`): clnrm's container
    /// leaves it first, when it had joined. One the engine keeps (an endpoint left)
    /// stays counted: shutdown tries again, and what is left then is reported and
    /// reaped by the next run.
    async fn remove_network(&self, id: &str, name: &str) {
        let inner = &self.inner;
        inner.vantage.leave(&*inner.engine, name).await;
        lock(&inner.gateways).remove(name);
        if inner.engine.remove_network(id).await.is_ok() {
            lock(&inner.networks).remove(id);
        }
    }

    /// Kills one container at once (a timeout); the environment is then useless.
    pub async fn kill(&self, container: &str) -> Result<(), EngineError> {
        self.inner.engine.remove(container).await?;
        lock(&self.inner.live).remove(container);
        Ok(())
    }

    /// Sets which shell of each image serves as agent (images may change between runs).
    pub fn set_agent_shells(&self, shells: HashMap<String, Option<AgentShell>>) {
        lock(&self.inner.agent_shells).extend(shells);
    }

    /// The OTLP receiver, when the run has one.
    pub fn receiver(&self) -> Option<&Receiver> {
        self.inner.receiver.as_deref()
    }

    /// The engine.
    pub fn engine(&self) -> &E {
        &self.inner.engine
    }
}

/// Counts a preparation as not having chosen its network until dropped.
pub(super) struct Unstarted<'a, E: ContainerEngine>(&'a Pool<E>);

impl<E: ContainerEngine> Drop for Unstarted<'_, E> {
    fn drop(&mut self) {
        self.0.started_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
