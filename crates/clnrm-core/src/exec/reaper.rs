//! Ownership labels, and removal of what dead runs left behind. Every container and
//! network of a run carries `clnrm.run=<run id>` plus the host, pid and pid start
//! time of the process that made it. A later run removes those whose process is
//! gone (on this host); it never touches a live run's.

use crate::backend::{ContainerEngine, EngineError, Labels};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The label that marks everything clnrm creates.
pub const RUN_LABEL: &str = "clnrm.run";
const HOST_LABEL: &str = "clnrm.host";
const PID_LABEL: &str = "clnrm.pid";
const PID_START_LABEL: &str = "clnrm.pid_start";

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
        }
    }

    /// The labels every container and network of the run carries.
    pub fn labels(&self) -> Labels {
        BTreeMap::from([
            (RUN_LABEL.to_owned(), self.run_id.clone()),
            (HOST_LABEL.to_owned(), self.host.clone()),
            (PID_LABEL.to_owned(), self.pid.to_string()),
            (PID_START_LABEL.to_owned(), self.pid_start.clone()),
        ])
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

/// Whether the run that wrote `labels` is certainly dead (same host, process gone or
/// a different process under its pid). Runs of other hosts are never judged dead.
pub fn is_dead(labels: &Labels, me: &RunOwner) -> bool {
    if labels.get(RUN_LABEL) == Some(&me.run_id) {
        return false;
    }
    if labels.get(HOST_LABEL) != Some(&me.host) {
        return false;
    }
    let Some(pid) = labels.get(PID_LABEL).and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    match pid_start(pid) {
        None => true,
        Some(start) => Some(&start) != labels.get(PID_START_LABEL),
    }
}

/// Removes the containers and networks of dead runs; returns how many of each.
pub async fn reap<E: ContainerEngine>(
    engine: &E,
    me: &RunOwner,
) -> Result<(usize, usize), EngineError> {
    let dead: Vec<_> = engine
        .list(RUN_LABEL)
        .await?
        .into_iter()
        .filter(|c| is_dead(&c.labels, me))
        .collect();
    let removals = dead.iter().map(|c| engine.remove(&c.id));
    for r in futures_util::future::join_all(removals).await {
        r?;
    }
    let networks: Vec<_> = engine
        .list_networks(RUN_LABEL)
        .await?
        .into_iter()
        .filter(|n| is_dead(&n.labels, me))
        .collect();
    for n in &networks {
        engine.remove_network(&n.id).await?;
    }
    // Volumes last: the layers of a fixture's containers, once those are gone.
    for v in engine.list_volumes(RUN_LABEL).await? {
        // One still mounted (its container not removed yet) goes next time.
        if is_dead(&v.labels, me) {
            let _ = engine.remove_volume(&v.id).await;
        }
    }
    Ok((dead.len(), networks.len()))
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
    fn own_run_is_never_dead() {
        let me = RunOwner::current();
        assert!(!is_dead(&me.labels(), &me));
        assert_eq!(me.run_id.len(), 12);
    }
}
