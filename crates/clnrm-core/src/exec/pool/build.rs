//! Building an environment: its private network, then each service's container,
//! started with its limits, OTLP variables and, where the image runs nothing of its
//! own, clnrm's shell as agent; then readiness (see `ready`).

use super::hygiene::{BIND_MOUNTED, read_layer};
use super::{Env, Member, MemberRef, Pool, PoolError, Unstarted, lock};
use crate::backend::{ContainerEngine, ContainerSpec, EngineError, ExecSpec, NetworkMode, layer};
use crate::exec::agent::{Agent, AgentError};
use crate::exec::otel_env::{merged, otel_env, with_token};
use crate::model::Condition;
use crate::plan::{EnvSpec, NetworkNeed, ServiceSpec};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Shell snippet giving a container started with [`NetworkMode::Disabled`] the
/// `localhost` names the engine would have written.
const LOCALHOST: &str = "[ -s /etc/hosts ] || \
printf '127.0.0.1\\tlocalhost\\n::1\\tlocalhost ip6-localhost ip6-loopback\\n' > /etc/hosts; ";

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
    /// Starts `env`'s network and services; `unstarted` (a preparation's count, see
    /// `Pool::trim`) is released once its network is chosen.
    pub(super) async fn start_env(
        &self,
        env: &mut Env,
        unstarted: Option<Unstarted<'_, E>>,
    ) -> Result<(), PoolError> {
        let inner = &self.inner;
        let seq = inner.seq.fetch_add(1, Ordering::Relaxed);
        let spec = env.spec.clone();
        let mut labels = inner.owner.labels();
        labels.insert("clnrm.env".into(), spec.key.clone());
        if spec.network == NetworkNeed::Private {
            // An empty one a removed environment left (clnrm's container, when it
            // runs in one, is still on it), else a new one.
            let spare = lock(&inner.spare_networks).pop();
            drop(unstarted);
            let name = if let Some((id, name)) = spare {
                env.network = Some(id);
                name
            } else {
                let name = format!("clnrm-{}-{seq}", inner.owner.run_id);
                let id = inner.engine.create_network(&name, &labels).await?;
                lock(&inner.networks).insert(id.clone());
                env.network = Some(id);
                name
            };
            env.network_name = Some(name.clone());
            // Also for a spare: its first environment may have failed before it
            // joined (a no-op once joined).
            self.join(&name).await?;
        } else {
            drop(unstarted);
            if spec.network == NetworkNeed::Bridge {
                self.join(crate::backend::DEFAULT_NETWORK).await?;
            }
        }
        // Dependency order (SPEC §7.1): a wave starts once every service it depends on
        // has reached its condition; the services of a wave start concurrently.
        let services = &spec.services;
        let needed = needed_conditions(services);
        let mut settled = vec![false; services.len()];
        for wave in start_waves(services) {
            if inner.stop.is_cancelled() {
                return Err(PoolError::Stopped);
            }
            let network = env.network_name.clone();
            let peers = match &network {
                Some(_) => self.peer_hosts(&env.members).await?,
                None => Vec::new(),
            };
            let starts = wave.iter().map(|&i| {
                self.start_member(&services[i], network.clone(), &peers, &spec, seq, &labels)
            });
            let mut failed = None;
            for result in futures_util::future::join_all(starts).await {
                match result {
                    Ok(member) => env.members.push(member),
                    Err(e) => failed = failed.or(Some(e)),
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
            // What the next waves wait for.
            let waits = env.members.iter_mut().filter_map(|m| {
                let i = index_of(services, &m.service);
                let svc = &services[i];
                match needed[i] {
                    Some(Condition::Healthy) if wave.contains(&i) => {
                        settled[i] = true;
                        Some(futures_util::future::Either::Left(
                            self.ready(svc, m, &spec),
                        ))
                    }
                    Some(Condition::Completed) if wave.contains(&i) => {
                        settled[i] = true;
                        let container = m.container.clone();
                        Some(futures_util::future::Either::Right(async move {
                            self.wait_completed(svc, &container).await
                        }))
                    }
                    _ => None,
                }
            });
            futures_util::future::try_join_all(waits).await?;
        }
        // Every other service with a probe is ready before the scenario runs.
        let rest = env.members.iter_mut().filter_map(|m| {
            let i = index_of(services, &m.service);
            (!settled[i] && services[i].has_probe()).then(|| self.ready(&services[i], m, &spec))
        });
        futures_util::future::try_join_all(rest).await?;
        env.members.sort_by_key(|m| index_of(services, &m.service));
        Ok(())
    }

    /// Waits until `member` is ready: its health check passed and its ready span, if
    /// any, arrived.
    async fn ready(
        &self,
        svc: &ServiceSpec,
        member: &mut Member,
        spec: &EnvSpec,
    ) -> Result<(), PoolError> {
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
        Ok(())
    }

    /// In one of the engine's containers, joins `network` (by name): clnrm's address
    /// there is where its containers reach it and where its requests come from.
    async fn join(&self, network: &str) -> Result<(), PoolError> {
        let inner = &self.inner;
        if let Some(ip) = inner.vantage.join(&*inner.engine, network).await? {
            lock(&inner.gateways).insert(network.to_owned(), ip.to_string());
        }
        Ok(())
    }

    /// The gateway of `network` (an environment's, [`Env::network_name`]): the
    /// address requests clnrm sends its containers through their published ports
    /// (HTTP steps) come from.
    pub async fn gateway(&self, network: Option<String>) -> Option<std::net::IpAddr> {
        let name = network?;
        if let Some(ip) = lock(&self.inner.gateways)
            .get(&name)
            .and_then(|g| g.parse().ok())
        {
            return Some(ip);
        }
        let ip = self
            .inner
            .engine
            .network_gateway(&name)
            .await
            .ok()
            .flatten()?;
        lock(&self.inner.gateways).insert(name, ip.to_string());
        Some(ip)
    }

    /// What `host.docker.internal` is in a container on `network`: the receiver's
    /// address when it listens on one, else the gateway of the container's own
    /// network (an address of this host on Docker and on Podman, whose default bridge
    /// exists only while a container uses it, and which knows no `host-gateway` before
    /// version 5), else the engine's `host-gateway`. `None` without a network.
    async fn host_address(&self, network: &NetworkMode) -> Option<String> {
        let inner = &self.inner;
        let name = match network {
            NetworkMode::None | NetworkMode::Disabled => return None,
            NetworkMode::Named { id, .. } => id.as_str(),
            NetworkMode::Bridge => crate::backend::DEFAULT_NETWORK,
        };
        if let Some(ip) = inner.receiver.as_ref().and_then(|r| r.advertised()) {
            return Some(ip.to_string());
        }
        if let Some(known) = lock(&inner.gateways).get(name) {
            return Some(known.clone());
        }
        match inner.engine.network_gateway(name).await {
            Ok(Some(ip)) => {
                let host = ip.to_string();
                lock(&inner.gateways).insert(name.to_owned(), host.clone());
                Some(host)
            }
            // Not kept: the next container asks again.
            _ => Some("host-gateway".to_owned()),
        }
    }

    /// `name:address` of each of `members` on their private network, for the
    /// `/etc/hosts` of a container started after them: its first look-ups of them
    /// then do not wait on the engine's DNS (Podman's aardvark-dns reloads on every
    /// container start and meanwhile answers none, so a one-shot that resolves its
    /// database as it starts failed now and then with `bad address`).
    /// A member that is not running (a one-shot that completed) has no address and
    /// no entry.
    pub(super) fn peer_hosts<'a>(
        &'a self,
        members: &[Member],
    ) -> impl Future<Output = Result<Vec<String>, PoolError>> + Send + use<'a, E> {
        // Owned: the future holds no member (a member's shell is not `Sync`).
        let known: Vec<(String, String, Vec<std::net::IpAddr>)> = members
            .iter()
            .map(|m| (m.service.clone(), m.container.clone(), m.ips.clone()))
            .collect();
        let engine = &self.inner.engine;
        async move {
            let asked = known
                .into_iter()
                .map(|(service, container, ips)| async move {
                    let ips = if ips.is_empty() {
                        engine.details(&container).await?.ips
                    } else {
                        ips
                    };
                    Ok::<_, EngineError>(ips.first().map(|ip| format!("{service}:{ip}")))
                });
            let mut hosts = Vec::new();
            for answer in futures_util::future::join_all(asked).await {
                hosts.extend(answer?);
            }
            Ok(hosts)
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn start_member(
        &self,
        svc: &ServiceSpec,
        network: Option<String>,
        peers: &[String],
        of: &EnvSpec,
        seq: u64,
        labels: &crate::backend::Labels,
    ) -> Result<Member, PoolError> {
        let inner = &self.inner;
        let (need, otlp) = (of.network, of.otlp.as_ref());
        let shell = if svc.args.is_empty() && svc.entrypoint.is_none() {
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
            env = merged(&env, otel_env(settings, receiver, &svc.id, None), false);
            with_token(&mut env, receiver);
        }
        let env = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        let image = match &svc.setup {
            // Boxed: making a snapshot starts an environment of its own.
            Some(setup) => Box::pin(self.snapshot_image(svc, setup)).await?,
            None => svc.image.clone(),
        };
        let name = format!("clnrm-{}-{seq}-{}", inner.owner.run_id, svc.id);
        let mut mounts = svc.mounts.clone();
        // The engine mounts its host's paths: clnrm's, when it runs in a container,
        // are not those.
        for m in mounts.iter_mut().filter(|m| m.host_path.starts_with('/')) {
            m.host_path = inner.vantage.engine_path(&m.host_path).map_err(|why| {
                EngineError::Api(format!("service \"{}\": a bind mount: {why}", svc.id))
            })?;
        }
        // A snapshot whose data is in volumes: each container gets layers over it.
        let mut layers = None;
        if let (Some(_), Some(volumes)) = (&svc.setup, self.snapshot_volumes(&image)) {
            let (extra, made) = self.layer_mounts(&image, &volumes, &name).await?;
            mounts.extend(extra);
            layers = Some(made);
        }
        let spec = ContainerSpec {
            name,
            image,
            entrypoint: svc.entrypoint.clone(),
            cmd: shell
                .as_ref()
                .map_or_else(|| svc.args.clone(), |s| vec![s.program.clone()]),
            env,
            ports: svc.ports.clone(),
            mounts,
            tmpfs: svc.tmpfs.clone(),
            memory_bytes: Some(svc.memory_bytes),
            nano_cpus: Some(svc.nano_cpus),
            open_stdin: shell.is_some(),
            extra_hosts: match self.host_address(&network).await {
                Some(host) => vec![format!("host.docker.internal:{host}")],
                None => Vec::new(),
            }
            .into_iter()
            .chain(peers.iter().cloned())
            .collect(),
            network,
            labels,
        };
        let id = match inner.engine.create(&spec).await {
            Ok(id) => id,
            Err(e) => {
                if let Some(layers) = layers {
                    self.drop_layers(layers).await;
                }
                return Err(e.into());
            }
        };
        lock(&inner.live).insert(id.clone());
        // `develop` sync: the changed files go into the container before it starts
        // (a fixture snapshot has them already, and what its set-up did with them).
        if let Some(sync) = svc.build.as_ref().and_then(|b| b.synced.as_ref())
            && svc.setup.is_none()
        {
            inner
                .engine
                .put_files(&id, sync.archive.as_ref().clone())
                .await?;
        }
        let attached = match shell {
            Some(_) => Some(inner.engine.attach(&id).await?),
            None => None,
        };
        let mut member = Member::new(svc.id.clone(), id.clone(), attached.map(Agent::new), layers);
        inner.engine.start(&id).await?;
        let reusable = member.agent.is_some() && self.inner.warm;
        let mut upper = None;
        if otlp.is_some() || reusable || !svc.ports.is_empty() {
            let details = inner.engine.details(&id).await?;
            if inner.vantage.joins_networks() {
                // Only on the network clnrm shares with it can clnrm reach it.
                member.reach = details.ips.first().copied();
                if member.reach.is_none() {
                    return Err(EngineError::Api(format!(
                        "the engine gave service \"{}\" no address on its network",
                        svc.id
                    ))
                    .into());
                }
            }
            member.ips = details.ips;
            member.ports = details.ports;
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
        let baseline = self.slot(&of.key).baseline(&svc.id);
        member.baseline = baseline
            .get_or_try_init(|| async { inner.engine.changes(&id).await.map(Arc::new) })
            .await?
            .clone();
        Ok(member)
    }
}

/// Where service `id` is in `services` (the last place when it is not there).
fn index_of(services: &[ServiceSpec], id: &str) -> usize {
    services
        .iter()
        .position(|s| s.id == id)
        .unwrap_or(services.len().saturating_sub(1))
}

/// For each service, the strongest condition a dependent waits for
/// (`completed` > `healthy` > `started`), if any.
fn needed_conditions(services: &[ServiceSpec]) -> Vec<Option<Condition>> {
    let rank = |c: Condition| match c {
        Condition::Started => 0,
        Condition::Healthy => 1,
        Condition::Completed => 2,
    };
    let mut needed: Vec<Option<Condition>> = vec![None; services.len()];
    for svc in services {
        for (dep, condition) in &svc.depends_on {
            if let Some(i) = services.iter().position(|s| &s.id == dep) {
                let stronger = needed[i].is_none_or(|have| rank(*condition) > rank(have));
                if stronger {
                    needed[i] = Some(*condition);
                }
            }
        }
    }
    needed
}

/// The services in start order, as waves: each wave depends only on earlier ones.
/// Services left in a cycle (the validator refuses those) form a last wave.
fn start_waves(services: &[ServiceSpec]) -> Vec<Vec<usize>> {
    let deps: Vec<Vec<usize>> = services
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .filter_map(|(d, _)| services.iter().position(|t| &t.id == d))
                .collect()
        })
        .collect();
    let mut placed = vec![false; services.len()];
    let mut waves = Vec::new();
    while placed.iter().any(|p| !p) {
        let wave: Vec<usize> = (0..services.len())
            .filter(|&i| !placed[i] && deps[i].iter().all(|&d| placed[d]))
            .collect();
        if wave.is_empty() {
            waves.push((0..services.len()).filter(|&i| !placed[i]).collect());
            break;
        }
        for &i in &wave {
            placed[i] = true;
        }
        waves.push(wave);
    }
    waves
}

/// Why a command could not be run in a member (not how it ended: its exit code is
/// its output's).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// clnrm's shell in the container failed.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The engine's exec failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Runs a command in a member: through its agent, else by an engine exec.
pub async fn run_in<E: ContainerEngine>(
    engine: &E,
    member: &mut Member,
    argv: &[String],
    env: &[(String, String)],
    workdir: Option<&str>,
) -> Result<crate::backend::ExecOutput, StepError> {
    match &mut member.agent {
        Some(agent) => Ok(agent.run(argv, env, workdir).await?),
        None => {
            let spec = ExecSpec {
                argv: argv.to_vec(),
                env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                workdir: workdir.map(str::to_owned),
            };
            Ok(crate::backend::exec(engine, &member.container, &spec).await?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    fn svc(id: &str, deps: &[(&str, Condition)]) -> ServiceSpec {
        ServiceSpec {
            id: id.into(),
            image: "i".into(),
            build: None,
            entrypoint: None,
            args: Vec::new(),
            env: Vec::new(),
            ports: Vec::new(),
            mounts: Vec::new(),
            tmpfs: Vec::new(),
            inputs: Vec::new(),
            health: None,
            memory_bytes: 0,
            nano_cpus: 0,
            wait_for_span: None,
            depends_on: deps.iter().map(|(d, c)| ((*d).to_owned(), *c)).collect(),
            setup: None,
        }
    }

    #[test]
    fn services_start_in_waves_of_their_dependencies() {
        use Condition::*;
        // Sorted by id, as plans give them: app needs db healthy and migrate
        // completed; migrate needs db started; cache needs nothing.
        let services = [
            svc("app", &[("db", Healthy), ("migrate", Completed)]),
            svc("cache", &[]),
            svc("db", &[]),
            svc("migrate", &[("db", Started)]),
        ];
        assert_eq!(start_waves(&services), vec![vec![1, 2], vec![3], vec![0]]);
        assert_eq!(
            needed_conditions(&services),
            vec![None, None, Some(Healthy), Some(Completed)]
        );
        // A cycle (refused by the validator) still starts everything, last.
        let cyclic = [svc("a", &[("b", Started)]), svc("b", &[("a", Started)])];
        assert_eq!(start_waves(&cyclic), vec![vec![0, 1]]);
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
}
