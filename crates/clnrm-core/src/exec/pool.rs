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

use super::agent::Agent;
use super::otel_env::{otel_env, with_token};
use super::reaper::RunOwner;
use crate::backend::{ContainerEngine, ContainerSpec, EngineError, ExecSpec, NetworkMode, layer};
use crate::otel::Receiver;
use crate::plan::{EnvSpec, HealthSpec, NetworkNeed, ServiceSpec};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why an environment could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The engine refused or failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// A health check never passed.
    #[error("service \"{service}\" is not healthy after {tries} tries of `{command}`{last}")]
    Unhealthy {
        /// Service id.
        service: String,
        /// The health command.
        command: String,
        /// Tries made.
        tries: u64,
        /// What the last try printed, prefixed for display.
        last: String,
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
    /// The scenario needs more containers than may exist at once.
    #[error("needs {need} containers but executor.max_concurrent_containers is {max}")]
    TooBig {
        /// Containers needed.
        need: usize,
        /// The bound.
        max: usize,
    },
    /// The run is stopping.
    #[error("the run is stopping")]
    Stopped,
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
    /// The filesystem changes the engine reports right after start (mount points it
    /// created); a clean container reports exactly these.
    pub baseline: Arc<Vec<String>>,
    /// What [`BIND_MOUNTED`] printed right after start.
    etc: String,
    /// The upper directory of its writable layer, and that layer's listing right
    /// after start, when this process can read it (else `baseline` is used).
    layer: Option<(std::path::PathBuf, Arc<Vec<String>>)>,
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

impl Env {
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
}

/// Shell snippet printing "<processes> <files in /dev/shm> <oom kills>" using builtins only.
const CHECK: &str = "set -- /proc/[0-9]*; p=$#; n=0; \
for f in /dev/shm/* /dev/shm/.[!.]* /dev/shm/..?*; do [ -e \"$f\" ] && n=$((n+1)); done; \
o=0; for f in /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events; do \
[ -r \"$f\" ] && while read -r k v; do [ \"$k\" = oom_kill ] && o=$((o+v)); done < \"$f\"; done; \
echo \"$p $n $o\"";

/// Shell snippet printing the files the engine bind-mounts into a container. They are
/// not in its filesystem layer, so the engine's diff does not see a scenario change
/// them; a clean container prints what it printed right after start. Builtins only.
const BIND_MOUNTED: &str = "for f in /etc/hosts /etc/resolv.conf /etc/hostname; do \
printf '== %s\\n' \"$f\"; [ -r \"$f\" ] && while IFS= read -r l || [ -n \"$l\" ]; do \
printf '%s\\n' \"$l\"; done < \"$f\"; done";

/// Shell snippet giving a container started with [`NetworkMode::Disabled`] the
/// `localhost` names the engine would have written.
const LOCALHOST: &str = "[ -s /etc/hosts ] || \
printf '127.0.0.1\\tlocalhost\\n::1\\tlocalhost ip6-localhost ip6-loopback\\n' > /etc/hosts; ";

#[derive(Default)]
struct Counts {
    /// Environments that will arrive on the channel (ready, preparing or being checked).
    supply: usize,
    /// Scenarios waiting for one.
    waiting: usize,
    /// Environments wanted beyond the waiting scenarios (for scenarios soon to come).
    ahead: usize,
    /// Environments of this key that scenarios hold now.
    in_use: usize,
    /// What to prepare them from.
    spec: Option<Arc<EnvSpec>>,
}

impl Counts {
    /// Environments to have on their way. Those in use come back when their scenarios
    /// end and a check (tens of ms) is cheaper than a start, so they count against the
    /// ones wanted ahead; one spare stays on its way while any are wanted, so a short
    /// scenario's successor does not wait for that check.
    fn target(&self) -> usize {
        let spare = self
            .ahead
            .saturating_sub(self.in_use)
            .max(usize::from(self.ahead > 0));
        self.waiting + spare
    }
}

/// Filesystem changes of a fresh container, per service. They depend only on what the
/// container is made from (image, mounts, network mode), which the key fixes, so the
/// first container of a key measures them and the others reuse the figure instead of
/// each paying for the engine's diff (a walk of the whole filesystem) while starting.
type Baselines = Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Vec<String>>>>>>;

struct Slot {
    tx: mpsc::UnboundedSender<Result<Env, PoolError>>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Result<Env, PoolError>>>,
    counts: Mutex<Counts>,
    baselines: Baselines,
}

struct Inner<E> {
    engine: Arc<E>,
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
    seq: AtomicU64,
    tracker: TaskTracker,
    stop: CancellationToken,
    warm: bool,
    receiver: Option<Arc<Receiver>>,
    /// Preparations a claim waits for.
    urgent: AtomicUsize,
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

/// A claim on the next environment of a key.
pub struct Claim {
    slot: Arc<Slot>,
}

impl Claim {
    /// Waits for the claimed environment.
    pub async fn ready(self) -> Result<Env, PoolError> {
        let got = self.slot.rx.lock().await.recv().await;
        let mut c = lock(&self.slot.counts);
        c.waiting -= 1;
        c.supply = c.supply.saturating_sub(1);
        if let Some(Ok(_)) = &got {
            c.in_use += 1;
        }
        got.unwrap_or(Err(PoolError::Stopped))
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

/// The shell of an image that serves as agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentShell {
    /// The shell to run.
    pub program: String,
    /// The image runs as root (so the agent can write `/etc/hosts`).
    pub as_root: bool,
}

/// Which shell of an image can serve as agent: the image must not have an entrypoint,
/// and its command must be empty or a bare shell (the image runs nothing of its own).
pub fn agent_shell(cmd: &[String], entrypoint: &[String]) -> Option<String> {
    if !entrypoint.is_empty() {
        return None;
    }
    match cmd {
        [] => Some("sh".to_owned()),
        [one] => {
            let base = one.rsplit('/').next().unwrap_or(one);
            ["sh", "bash", "ash", "dash"]
                .contains(&base)
                .then(|| one.clone())
        }
        _ => None,
    }
}

impl<E: ContainerEngine> Pool<E> {
    /// A pool for one run.
    pub fn new(
        engine: Arc<E>,
        owner: RunOwner,
        config: PoolConfig,
        receiver: Option<Arc<Receiver>>,
    ) -> Self {
        let max_containers = config.max_containers.max(1);
        Self {
            inner: Arc::new(Inner {
                engine,
                owner,
                agent_shells: Mutex::new(HashMap::new()),
                keep_warm: config.keep_warm,
                slots: Mutex::new(HashMap::new()),
                containers: Arc::new(Semaphore::new(max_containers)),
                max_containers,
                preparing: Semaphore::new(config.parallel.max(1)),
                warm: config.warm,
                receiver,
                urgent: AtomicUsize::new(0),
                live: Mutex::new(HashSet::new()),
                networks: Mutex::new(HashSet::new()),
                seq: AtomicU64::new(0),
                tracker: TaskTracker::new(),
                stop: CancellationToken::new(),
            }),
        }
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        let mut slots = lock(&self.inner.slots);
        slots
            .entry(key.to_owned())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                Arc::new(Slot {
                    tx,
                    rx: tokio::sync::Mutex::new(rx),
                    counts: Mutex::new(Counts::default()),
                    baselines: Mutex::new(HashMap::new()),
                })
            })
            .clone()
    }

    /// Claims the next ready environment for `spec`, starting its preparation if none is
    /// on its way; [`Claim::ready`] waits for it. Claiming first, then prewarming for
    /// later scenarios, keeps the preparations in dispatch order.
    pub fn claim(&self, spec: &Arc<EnvSpec>) -> Claim {
        let slot = self.slot(&spec.key);
        {
            let mut c = lock(&slot.counts);
            c.waiting += 1;
            if c.supply < c.waiting {
                c.supply += 1;
                self.spawn_prepare(spec.clone(), slot.clone(), true);
            }
        }
        Claim { slot }
    }

    /// Removes ready environments that no claim waits for (the queue is empty).
    pub fn trim(&self) {
        let slots: Vec<Arc<Slot>> = lock(&self.inner.slots).values().cloned().collect();
        for slot in slots {
            let mut c = lock(&slot.counts);
            let Ok(mut rx) = slot.rx.try_lock() else {
                continue;
            };
            while c.supply > c.waiting {
                match rx.try_recv() {
                    Ok(Ok(env)) => {
                        c.supply -= 1;
                        let pool = self.clone();
                        self.inner
                            .tracker
                            .spawn(async move { pool.destroy(env).await });
                    }
                    _ => break,
                }
            }
        }
    }

    /// Makes sure `count` environments for `spec` beyond those already claimed are on their way.
    pub fn prewarm(&self, spec: &Arc<EnvSpec>, count: usize) {
        if self.inner.stop.is_cancelled() || !self.inner.warm {
            return;
        }
        let slot = self.slot(&spec.key);
        {
            let mut c = lock(&slot.counts);
            c.ahead = count;
            c.spec = Some(spec.clone());
        }
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
            let mut c = lock(&slot.counts);
            let Some(spec) = c.spec.clone() else { continue };
            while c.supply < c.target() {
                c.supply += 1;
                self.spawn_prepare(spec.clone(), slot.clone(), false);
            }
        }
    }

    /// Gives an environment back after a scenario. `reusable` says the scenario ended
    /// normally; the environment is still checked before anyone else gets it.
    /// `queued` is how many scenarios not yet dispatched need this environment's key: an
    /// environment the ones on their way already cover is removed at once.
    pub fn release(&self, env: Env, reusable: bool, queued: usize) {
        let covered = {
            let slot = self.slot(&env.spec.key);
            let mut c = lock(&slot.counts);
            c.in_use = c.in_use.saturating_sub(1);
            c.supply.saturating_sub(c.waiting) >= queued.max(usize::from(self.inner.keep_warm))
        };
        let recyclable = reusable
            && !covered
            && self.inner.warm
            && !self.inner.stop.is_cancelled()
            && env.members.iter().all(|m| m.agent.is_some());
        if !recyclable {
            let pool = self.clone();
            self.inner
                .tracker
                .spawn(async move { pool.destroy(env).await });
            return;
        }
        let slot = self.slot(&env.spec.key);
        lock(&slot.counts).supply += 1;
        let pool = self.clone();
        self.inner.tracker.spawn(async move {
            let mut env = env;
            if pool.is_clean(&mut env).await {
                let _ = slot.tx.send(Ok(env));
                return;
            }
            let spec = env.spec.clone();
            pool.destroy(env).await;
            let mut c = lock(&slot.counts);
            if c.supply <= c.waiting {
                pool.spawn_prepare(spec, slot.clone(), true);
            } else {
                c.supply -= 1;
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
        let networks: Vec<String> = lock(&self.inner.networks).iter().cloned().collect();
        for n in &networks {
            if engine.remove_network(n).await.is_ok() {
                lock(&self.inner.networks).remove(n);
            }
        }
        self.leftovers()
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
        self.inner.tracker.spawn(async move {
            let result = pool.prepare(spec).await;
            let _ = slot.tx.send(result);
            if urgent && pool.inner.urgent.fetch_sub(1, Ordering::SeqCst) == 1 {
                pool.pump();
            }
        });
    }

    async fn prepare(&self, spec: Arc<EnvSpec>) -> Result<Env, PoolError> {
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
        match self.start_env(&mut env).await {
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
            let mut c = lock(&slot.counts);
            if c.supply <= c.waiting {
                continue;
            }
            let Ok(mut rx) = slot.rx.try_lock() else {
                continue;
            };
            if let Ok(Ok(env)) = rx.try_recv() {
                c.supply -= 1;
                let pool = self.clone();
                self.inner
                    .tracker
                    .spawn(async move { pool.destroy(env).await });
                return true;
            }
        }
        false
    }

    async fn start_env(&self, env: &mut Env) -> Result<(), PoolError> {
        let inner = &self.inner;
        let seq = inner.seq.fetch_add(1, Ordering::Relaxed);
        let spec = env.spec.clone();
        let mut labels = inner.owner.labels();
        labels.insert("clnrm.env".into(), spec.key.clone());
        if spec.network == NetworkNeed::Private {
            let name = format!("clnrm-{}-{seq}", inner.owner.run_id);
            let id = inner.engine.create_network(&name, &labels).await?;
            lock(&inner.networks).insert(id.clone());
            env.network = Some(id);
            env.network_name = Some(name);
        }
        for svc in &spec.services {
            if inner.stop.is_cancelled() {
                return Err(PoolError::Stopped);
            }
            let network = env.network_name.clone();
            let member = self.start_member(svc, network, &spec, seq, &labels).await?;
            env.members.push(member);
        }
        for (svc, member) in spec.services.iter().zip(env.members.iter_mut()) {
            if let Some(health) = &svc.health {
                self.wait_healthy(svc, health, member).await?;
            }
            if let Some((name, timeout)) = &svc.wait_for_span {
                let otlp = spec.otlp.as_ref().and(self.inner.receiver.as_ref());
                let target = MemberRef::of(member);
                let seen = tokio::select! {
                    seen = self.wait_span(otlp, &target, name, *timeout) => seen,
                    () = self.inner.stop.cancelled() => return Err(PoolError::Stopped),
                };
                if !seen {
                    return Err(PoolError::NoReadySpan {
                        service: svc.id.clone(),
                        span: name.clone(),
                        timeout: *timeout,
                    });
                }
            }
        }
        Ok(())
    }

    /// Waits for a span named `name` from the member: through the receiver when the
    /// file exports over OTLP, else in its main process's stdout. A member whose main
    /// process is the agent runs no service of its own, so there is nothing to wait for.
    async fn wait_span(
        &self,
        otlp: Option<&Arc<Receiver>>,
        member: &MemberRef,
        name: &str,
        timeout: Duration,
    ) -> bool {
        if let Some(r) = otlp {
            return r.wait_span_from(&member.ips, name, timeout).await;
        }
        if member.agent {
            return true;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(log) = self.inner.engine.stdout_log(&member.container).await
                && crate::otel::spans_in_output(&String::from_utf8_lossy(&log))
                    .iter()
                    .any(|s| s.name == name)
            {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn start_member(
        &self,
        svc: &ServiceSpec,
        network: Option<String>,
        of: &EnvSpec,
        seq: u64,
        labels: &crate::backend::Labels,
    ) -> Result<Member, PoolError> {
        let inner = &self.inner;
        let (need, otlp) = (of.network, of.otlp.as_ref());
        let shell = if svc.args.is_empty() {
            lock(&inner.agent_shells).get(&svc.image).cloned().flatten()
        } else {
            None
        };
        let network = match (network, need) {
            (Some(id), _) => NetworkMode::Named {
                id,
                aliases: vec![svc.id.clone()],
            },
            // The agent fills in /etc/hosts, which it can only do as root.
            (None, NetworkNeed::None) if shell.as_ref().is_some_and(|s| s.as_root) => {
                NetworkMode::Disabled
            }
            (None, NetworkNeed::None) => NetworkMode::None,
            (None, _) => NetworkMode::Bridge,
        };
        let setup = if network == NetworkMode::Disabled {
            LOCALHOST
        } else {
            ""
        };
        let mut labels = labels.clone();
        labels.insert("clnrm.service".into(), svc.id.clone());
        let mut env = svc.env.clone();
        if let (Some(settings), Some(receiver)) = (otlp, &inner.receiver) {
            env.extend(otel_env(settings, receiver, &svc.id, None));
            with_token(&mut env, receiver);
        }
        let env = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        let spec = ContainerSpec {
            name: format!("clnrm-{}-{seq}-{}", inner.owner.run_id, svc.id),
            image: svc.image.clone(),
            cmd: shell
                .as_ref()
                .map_or_else(|| svc.args.clone(), |s| vec![s.program.clone()]),
            env,
            ports: svc.ports.clone(),
            mounts: svc.mounts.clone(),
            memory_bytes: Some(svc.memory_bytes),
            nano_cpus: Some(svc.nano_cpus),
            open_stdin: shell.is_some(),
            extra_hosts: if matches!(network, NetworkMode::None | NetworkMode::Disabled) {
                Vec::new()
            } else {
                let host = inner
                    .receiver
                    .as_ref()
                    .map_or_else(|| "host-gateway".to_owned(), |r| r.container_host());
                vec![format!("host.docker.internal:{host}")]
            },
            network,
            labels,
        };
        let id = inner.engine.create(&spec).await?;
        lock(&inner.live).insert(id.clone());
        let attached = match shell {
            Some(_) => Some(inner.engine.attach(&id).await?),
            None => None,
        };
        let mut member = Member {
            service: svc.id.clone(),
            container: id.clone(),
            agent: attached.map(Agent::new),
            ips: Vec::new(),
            baseline: Arc::default(),
            etc: String::new(),
            layer: None,
        };
        inner.engine.start(&id).await?;
        let reusable = member.agent.is_some() && self.inner.warm;
        let mut upper = None;
        if otlp.is_some() || reusable {
            let details = inner.engine.details(&id).await?;
            member.ips = details.ips;
            upper = details.upper_dir;
        }
        if let Some(agent) = &mut member.agent {
            let out = agent
                .check(&format!("{setup}{BIND_MOUNTED}"), inner.engine.deadline())
                .await
                .map_err(|e| {
                    EngineError::Api(format!(
                        "the shell of service \"{}\" did not answer: {e}",
                        svc.id
                    ))
                })?;
            member.etc = String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if !reusable {
            return Ok(member);
        }
        // The writable layer as it is now, read from the host when this process can;
        // else the engine's diff, measured once per key (it is the same for all).
        if let Some(dir) = upper
            && let Some(at_start) = read_layer(dir.clone(), layer::MAX_ENTRIES).await
        {
            member.layer = Some((dir, Arc::new(at_start)));
            return Ok(member);
        }
        let baseline = lock(&self.slot(&of.key).baselines)
            .entry(svc.id.clone())
            .or_default()
            .clone();
        member.baseline = baseline
            .get_or_try_init(|| async { inner.engine.changes(&id).await.map(Arc::new) })
            .await?
            .clone();
        Ok(member)
    }

    async fn wait_healthy(
        &self,
        svc: &ServiceSpec,
        health: &HealthSpec,
        member: &mut Member,
    ) -> Result<(), PoolError> {
        let mut last = String::new();
        for _ in 0..health.retries.max(1) {
            let run = run_in(&*self.inner.engine, member, &health.argv, &[], None);
            let outcome = tokio::select! {
                r = tokio::time::timeout(health.timeout, run) => r,
                () = self.inner.stop.cancelled() => return Err(PoolError::Stopped),
            };
            match outcome {
                Ok(Ok(out)) if out.exit_code == 0 => return Ok(()),
                Ok(Ok(out)) => {
                    last = format!(
                        "exit {}: {}{}",
                        out.exit_code,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                Ok(Err(e)) => return Err(PoolError::Engine(EngineError::Api(e))),
                Err(_) => last = format!("timed out after {} ms", health.timeout.as_millis()),
            }
            tokio::select! {
                () = tokio::time::sleep(health.interval) => {}
                () = self.inner.stop.cancelled() => return Err(PoolError::Stopped),
            }
        }
        let last = last.trim();
        Err(PoolError::Unhealthy {
            service: svc.id.clone(),
            command: health.argv.join(" "),
            tries: health.retries.max(1),
            last: if last.is_empty() {
                String::new()
            } else {
                format!("; last: {last}")
            },
        })
    }

    async fn is_clean(&self, env: &mut Env) -> bool {
        for m in &mut env.members {
            let Some(agent) = &mut m.agent else {
                return false;
            };
            let check = format!("{CHECK}\n{BIND_MOUNTED}");
            let Ok(out) = agent.check(&check, self.inner.engine.deadline()).await else {
                return false;
            };
            let out = String::from_utf8_lossy(&out.stdout);
            let (state, etc) = out.split_once('\n').unwrap_or((&out, ""));
            if state.trim() != "1 0 0" || etc != m.etc {
                return false;
            }
            let unchanged = match &m.layer {
                // One more entry than at start is enough to know.
                Some((dir, at_start)) => read_layer(dir.clone(), at_start.len() + 1)
                    .await
                    .is_some_and(|now| now == **at_start),
                None => {
                    self.inner.engine.changes(&m.container).await.ok().as_ref()
                        == Some(&*m.baseline)
                }
            };
            if !unchanged {
                return false;
            }
        }
        true
    }

    /// Kills and removes an environment's containers and network.
    pub async fn destroy(&self, env: Env) {
        let inner = &self.inner;
        if let Some(r) = &inner.receiver {
            r.forget(&env.ips());
        }
        let ids: Vec<String> = env.members.iter().map(|m| m.container.clone()).collect();
        drop(env.members);
        futures_util::future::join_all(ids.iter().map(|id| inner.engine.remove(id))).await;
        {
            let mut live = lock(&inner.live);
            for id in &ids {
                live.remove(id);
            }
        }
        if let Some(net) = env.network {
            let _ = inner.engine.remove_network(&net).await;
            lock(&inner.networks).remove(&net);
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

/// The listing of the writable layer at `dir` (at most `limit` entries read), off
/// the async threads; `None` when it cannot be read.
async fn read_layer(dir: std::path::PathBuf, limit: usize) -> Option<Vec<String>> {
    tokio::task::spawn_blocking(move || layer::listing(&dir, limit).ok())
        .await
        .ok()
        .flatten()
}

/// Runs a command in a member: through its agent, else by an engine exec.
pub async fn run_in<E: ContainerEngine>(
    engine: &E,
    member: &mut Member,
    argv: &[String],
    env: &[(String, String)],
    workdir: Option<&str>,
) -> Result<crate::backend::ExecOutput, String> {
    match &mut member.agent {
        Some(agent) => agent
            .run(argv, env, workdir)
            .await
            .map_err(|e| e.to_string()),
        None => {
            let spec = ExecSpec {
                argv: argv.to_vec(),
                env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                workdir: workdir.map(str::to_owned),
            };
            crate::backend::exec(engine, &member.container, &spec)
                .await
                .map_err(|e| e.to_string())
        }
    }
}

/// OOM kills counted by the member's memory cgroup (v1 or v2), if it can be read.
pub async fn oom_kills<E: ContainerEngine>(engine: &E, member: &mut Member) -> Option<u64> {
    let text = match &mut member.agent {
        Some(agent) => {
            let out = agent.check(CHECK, engine.deadline()).await.ok()?;
            let line = String::from_utf8_lossy(&out.stdout).to_string();
            return line.split_whitespace().nth(2)?.parse().ok();
        }
        None => {
            let mut text = String::new();
            for path in [
                "/sys/fs/cgroup/memory/memory.oom_control",
                "/sys/fs/cgroup/memory.events",
            ] {
                let spec = ExecSpec {
                    argv: vec!["cat".into(), path.into()],
                    ..Default::default()
                };
                if let Ok(out) = crate::backend::exec(engine, &member.container, &spec).await {
                    text.push_str(&String::from_utf8_lossy(&out.stdout));
                }
            }
            text
        }
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("oom_kill "))
        .map(|v| v.trim().parse::<u64>().ok())
        .sum()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn images_that_run_nothing_of_their_own_get_an_agent() {
        assert_eq!(agent_shell(&v(&["sh"]), &[]), Some("sh".into()));
        assert_eq!(
            agent_shell(&v(&["/bin/bash"]), &[]),
            Some("/bin/bash".into())
        );
        assert_eq!(agent_shell(&[], &[]), Some("sh".into()));
        assert_eq!(agent_shell(&v(&["postgres"]), &[]), None);
        assert_eq!(agent_shell(&v(&["sh"]), &v(&["/entry.sh"])), None);
        assert_eq!(agent_shell(&v(&["sh", "-c", "serve"]), &[]), None);
    }

    #[test]
    fn environments_in_use_count_against_those_wanted_ahead_but_one_spare_stays() {
        let counts = |waiting, ahead, in_use| Counts {
            waiting,
            ahead,
            in_use,
            ..Counts::default()
        };
        // 8 workers busy, 8 queued: their own environments come back; one spare.
        assert_eq!(counts(0, 8, 8).target(), 1);
        // 8 claims waiting at the start, nothing in use yet: 8 plus 8 ahead.
        assert_eq!(counts(8, 8, 0).target(), 16);
        // One worker on short scenarios: the next one's environment is ready.
        assert_eq!(counts(0, 1, 1).target(), 1);
        // Nothing queued: nothing ahead.
        assert_eq!(counts(2, 0, 3).target(), 2);
        assert_eq!(counts(0, 5, 2).target(), 3);
    }
}
