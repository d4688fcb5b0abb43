//! Ownership labels, and removal of what dead runs left behind. Every container and
//! network of a run carries `clnrm.run=<run id>` plus the host, pid and pid start
//! time of the process that made it, and, when clnrm runs in one of the engine's
//! containers, that container's id. A later run removes those whose process is gone
//! (on this host, or in this container), or whose container the engine no longer
//! runs (a CI job's, ended); it never touches a live run's.

use crate::backend::{ContainerEngine, EngineError, Labels};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The label that marks everything clnrm creates.
pub const RUN_LABEL: &str = "clnrm.run";
const HOST_LABEL: &str = "clnrm.host";
const PID_LABEL: &str = "clnrm.pid";
const PID_START_LABEL: &str = "clnrm.pid_start";
const CONTAINER_LABEL: &str = "clnrm.container";

/// Who owns a run's containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOwner {
    /// Run id.
    pub run_id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Process start time (clock ticks since boot), so a reused pid is not mistaken.
    pub pid_start: String,
    /// The engine's container this process runs in, when it runs in one (its full id).
    pub container: Option<String>,
}

impl RunOwner {
    /// This process, with a fresh run id.
    pub fn current() -> Self {
        let pid = std::process::id();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let digest = Sha256::digest(format!("{now}:{pid}").as_bytes());
        let run_id = crate::digest::hex(&digest[..6]);
        Self {
            run_id,
            host: host_name(),
            pid,
            pid_start: pid_start(pid).unwrap_or_default(),
            container: None,
        }
    }

    /// The labels every container and network of the run carries.
    pub fn labels(&self) -> Labels {
        let mut labels = BTreeMap::from([
            (RUN_LABEL.to_owned(), self.run_id.clone()),
            (HOST_LABEL.to_owned(), self.host.clone()),
            (PID_LABEL.to_owned(), self.pid.to_string()),
            (PID_START_LABEL.to_owned(), self.pid_start.clone()),
        ]);
        if let Some(c) = &self.container {
            labels.insert(CONTAINER_LABEL.to_owned(), c.clone());
        }
        labels
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Field 22 of `/proc/<pid>/stat`: the start time in clock ticks.
fn pid_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its ')' are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19).map(str::to_owned)
}

/// What can be said of the run that wrote some labels from this process.
#[derive(Debug, PartialEq, Eq)]
enum Judged {
    Alive,
    Dead,
    /// It ran in another of the engine's containers: dead when the engine no longer
    /// runs that one.
    Ask(String),
}

fn judge(labels: &Labels, me: &RunOwner) -> Judged {
    if labels.get(RUN_LABEL) == Some(&me.run_id) {
        return Judged::Alive;
    }
    match (labels.get(CONTAINER_LABEL), &me.container) {
        (Some(c), mine) if mine.as_ref() != Some(c) => return Judged::Ask(c.clone()),
        // A run on the host, seen from a container: its processes are not in this
        // container's view (a container on the host's network even has the host's
        // name), so nothing says it is dead.
        (None, Some(_)) => return Judged::Alive,
        _ => {}
    }
    if labels.get(HOST_LABEL) != Some(&me.host) {
        return Judged::Alive;
    }
    let Some(pid) = labels.get(PID_LABEL).and_then(|p| p.parse::<u32>().ok()) else {
        return Judged::Alive;
    };
    let dead = match pid_start(pid) {
        None => true,
        Some(start) => Some(&start) != labels.get(PID_START_LABEL),
    };
    if dead { Judged::Dead } else { Judged::Alive }
}

/// Whether the run that wrote `labels` is certainly dead as far as this process can
/// tell by itself (same host or container, process gone or a different process under
/// its pid). Runs of other hosts, and of other containers, are not judged dead here
/// ([`reap`] asks the engine about the latter).
pub fn is_dead(labels: &Labels, me: &RunOwner) -> bool {
    judge(labels, me) == Judged::Dead
}

/// Whether the run that wrote `labels` is dead: [`is_dead`], or its container is one
/// the engine no longer has or runs (`known`: what the engine said of each asked).
async fn dead<E: ContainerEngine>(
    engine: &E,
    labels: &Labels,
    me: &RunOwner,
    known: &mut BTreeMap<String, bool>,
) -> bool {
    match judge(labels, me) {
        Judged::Alive => false,
        Judged::Dead => true,
        Judged::Ask(c) => {
            if let Some(dead) = known.get(&c) {
                return *dead;
            }
            let dead = match engine.inspect(&c).await {
                Ok(state) => !state.running,
                Err(EngineError::Gone(_)) => true,
                // Cannot tell: alive.
                Err(_) => false,
            };
            known.insert(c, dead);
            dead
        }
    }
}

/// Removes the containers and networks of dead runs; returns how many of each were
/// removed (one the engine will not remove yet is left for the next time).
pub async fn reap<E: ContainerEngine>(
    engine: &E,
    me: &RunOwner,
) -> Result<(usize, usize), EngineError> {
    let mut known = BTreeMap::new();
    let mut dead_containers = Vec::new();
    for c in engine.list(RUN_LABEL).await? {
        if dead(engine, &c.labels, me, &mut known).await {
            dead_containers.push(c.id);
        }
    }
    let removals = dead_containers.iter().map(|id| engine.remove(id));
    let removed = futures_util::future::join_all(removals)
        .await
        .into_iter()
        .filter(Result::is_ok)
        .count();
    let mut networks = 0;
    for n in engine.list_networks(RUN_LABEL).await? {
        if !dead(engine, &n.labels, me, &mut known).await {
            continue;
        }
        // clnrm's own container may still be on a network a run of an earlier
        // process in it joined.
        if let Some(mine) = &me.container {
            let _ = engine.disconnect(&n.id, mine).await;
        }
        if engine.remove_network(&n.id).await.is_ok() {
            networks += 1;
        }
    }
    // Volumes last: the layers of a fixture's containers, once those are gone.
    for v in engine.list_volumes(RUN_LABEL).await? {
        // One still mounted (its container not removed yet) goes next time.
        if dead(engine, &v.labels, me, &mut known).await {
            let _ = engine.remove_volume(&v.id).await;
        }
    }
    Ok((removed, networks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_vanished_pid_is_dead() {
        let me = RunOwner::current();
        let mut other = me.labels();
        other.insert(RUN_LABEL.into(), "other".into());
        assert!(!is_dead(&other, &me), "same pid and start time: alive");
        other.insert(PID_START_LABEL.into(), "1".into());
        assert!(is_dead(&other, &me), "pid reused by another process: dead");
        other.insert(PID_LABEL.into(), u32::MAX.to_string());
        assert!(is_dead(&other, &me), "no such pid: dead");
        other.insert(HOST_LABEL.into(), "elsewhere".into());
        assert!(!is_dead(&other, &me), "other hosts are never judged");
    }

    #[test]
    fn a_run_in_another_container_is_asked_about_and_one_in_this_container_judged_by_pid() {
        let mut me = RunOwner::current();
        me.container = Some("mine".into());
        let mut other = me.labels();
        other.insert(RUN_LABEL.into(), "other".into());
        other.insert(PID_LABEL.into(), u32::MAX.to_string());
        assert_eq!(judge(&other, &me), Judged::Dead, "this container, pid gone");
        other.insert(CONTAINER_LABEL.into(), "theirs".into());
        assert_eq!(judge(&other, &me), Judged::Ask("theirs".into()));
        // On the host, a run of a container is asked about too.
        me.container = None;
        assert_eq!(judge(&other, &me), Judged::Ask("theirs".into()));
        // From a container with the host's name (`--network host`), a host's run whose
        // pid this container cannot see is alive.
        let mut host_run = RunOwner::current().labels();
        host_run.insert(RUN_LABEL.into(), "host".into());
        host_run.insert(PID_LABEL.into(), u32::MAX.to_string());
        me.container = Some("mine".into());
        assert_eq!(judge(&host_run, &me), Judged::Alive);
    }

    #[tokio::test]
    async fn the_runs_of_a_container_the_engine_no_longer_runs_are_reaped() {
        use crate::backend::fake::FakeEngine;
        let engine = FakeEngine::new();
        let me = RunOwner::current();
        let mut gone = me.labels();
        gone.insert(RUN_LABEL.into(), "gone".into());
        gone.insert(CONTAINER_LABEL.into(), "no-such-container".into());
        engine
            .create_network("left", &gone)
            .await
            .unwrap_or_default();
        let mut running = me.labels();
        running.insert(RUN_LABEL.into(), "running".into());
        let spec = crate::backend::ContainerSpec {
            name: "job".into(),
            image: "img".into(),
            entrypoint: None,
            cmd: Vec::new(),
            env: Vec::new(),
            ports: Vec::new(),
            mounts: Vec::new(),
            tmpfs: Vec::new(),
            memory_bytes: None,
            nano_cpus: None,
            open_stdin: false,
            network: crate::backend::NetworkMode::None,
            extra_hosts: Vec::new(),
            labels: BTreeMap::new(),
        };
        let job = engine.create(&spec).await.unwrap_or_default();
        engine.start(&job).await.unwrap_or_default();
        running.insert(CONTAINER_LABEL.into(), job);
        engine
            .create_network("kept", &running)
            .await
            .unwrap_or_default();
        assert_eq!(reap(&engine, &me).await.ok(), Some((0, 1)));
        assert_eq!(engine.networks(), 1, "the running container's run is kept");
    }

    #[test]
    fn own_run_is_never_dead() {
        let me = RunOwner::current();
        assert!(!is_dead(&me.labels(), &me));
        assert_eq!(me.run_id.len(), 12);
    }
}
