//! Building an environment: its private network, then each service's container,
//! started with its limits, OTLP variables and, where the image runs nothing of its
//! own, clnrm's shell as agent; then readiness (see `ready`).

use super::hygiene::{BIND_MOUNTED, read_layer};
use super::{Env, Member, MemberRef, Pool, PoolError, lock};
use crate::backend::{ContainerEngine, ContainerSpec, EngineError, ExecSpec, NetworkMode, layer};
use crate::exec::agent::Agent;
use crate::exec::otel_env::{otel_env, with_token};
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
    pub(super) async fn start_env(&self, env: &mut Env) -> Result<(), PoolError> {
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
        let baseline = self.slot(&of.key).baseline(&svc.id);
        member.baseline = baseline
            .get_or_try_init(|| async { inner.engine.changes(&id).await.map(Arc::new) })
            .await?
            .clone();
        Ok(member)
    }
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
}
