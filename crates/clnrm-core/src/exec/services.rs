//! What a scenario's services did (SPEC §7.2): whether one that was to keep running
//! exited, and each one's log, read once the scenario is over, saved whole as an
//! artifact and reported as a tail. Only containers that run their own command have
//! a log of their own; an agent's main process is clnrm's shell (such a service is
//! reported too, marked `agent`, so a report names every service a scenario started).

use super::events::ServiceReport;
use super::pool::{Env, Pool};
use crate::backend::ContainerEngine;
use crate::model::Condition;
use crate::model::defaults::LOG_TAIL_LINES;
use crate::otel::artifacts;
use crate::plan::{EnvSpec, PlannedScenario};
use std::collections::HashSet;
use std::path::Path;

/// The most of one container's log a scenario keeps, in bytes (the newest).
pub const LOG_CAP: usize = 8 * 1024 * 1024;

/// The services of `spec` that others wait on as `completed`: they are meant to end.
fn one_shots(spec: &EnvSpec) -> HashSet<&str> {
    spec.services
        .iter()
        .flat_map(|s| &s.depends_on)
        .filter(|(_, c)| *c == Condition::Completed)
        .map(|(id, _)| id.as_str())
        .collect()
}

/// `(service, container)` of each member running its own command (taken before any
/// await: a member's agent cannot cross one).
fn own_command(env: &Env) -> Vec<(String, String)> {
    env.members
        .iter()
        .filter(|m| m.agent.is_none())
        .map(|m| (m.service.clone(), m.container.clone()))
        .collect()
}

/// Why the scenario failed when a service that was to keep running has exited:
/// `service "app" exited with code 1 while step "create" was running`, with the
/// tail of its log; `None` when every such service still runs. `step` is the step
/// that failed, or the last one run.
pub async fn exited<E: ContainerEngine>(
    pool: &Pool<E>,
    env: &mut Env,
    step: Option<&str>,
) -> Option<String> {
    let spec = env.spec.clone();
    let ended = one_shots(&spec);
    for (service, container) in own_command(env) {
        if ended.contains(service.as_str()) {
            continue;
        }
        let when = step.map_or_else(
            || "before any step ran".to_owned(),
            |s| format!("while step \"{s}\" was running"),
        );
        if let Some(e) = pool.exited(&service, &container, when).await {
            return Some(e.to_string());
        }
    }
    None
}

/// A service's whole log, masked, as read after the scenario.
pub struct ServiceLog {
    /// Service id.
    pub service: String,
    /// The log without its timestamps, for `[[expect.log]]`.
    pub text: String,
}

/// Reads every own-command service's state and log after `sc`: the reports, and the
/// logs (masked) for log expectations. Each whole log is saved under `artifacts`.
pub async fn report<E: ContainerEngine>(
    pool: &Pool<E>,
    env: &mut Env,
    sc: &PlannedScenario,
    artifacts_dir: Option<&Path>,
) -> (Vec<ServiceReport>, Vec<ServiceLog>) {
    let mut reports = Vec::new();
    let mut logs = Vec::new();
    let spec = env.spec.clone();
    // In the services' order; those clnrm's shell drives are the scenario's too:
    // named, with no log of their own.
    let members: Vec<(String, String, bool)> = env
        .members
        .iter()
        .map(|m| (m.service.clone(), m.container.clone(), m.agent.is_some()))
        .collect();
    for (service, container, agent) in members {
        let image = spec
            .services
            .iter()
            .find(|s| s.id == service)
            .map(|s| s.image.clone())
            .unwrap_or_default();
        if agent {
            reports.push(ServiceReport {
                id: service,
                image,
                container: container.chars().take(12).collect(),
                exit_code: None,
                oom_killed: false,
                log_tail: String::new(),
                agent: true,
                build: false,
            });
            continue;
        }
        let state = pool.engine().inspect(&container).await.ok();
        let log = pool
            .engine()
            .log(&container, LOG_CAP)
            .await
            .map(|b| sc.masker.mask(&String::from_utf8_lossy(&b)))
            .unwrap_or_default();
        if let Some(dir) = artifacts_dir
            && !log.is_empty()
        {
            let path = artifacts::log_path(dir, &sc.id.0, &service);
            // A log that cannot be saved is still reported as a tail.
            let _ = crate::files::write_atomic(&path, log.as_bytes());
        }
        reports.push(ServiceReport {
            id: service.clone(),
            image,
            container: container.chars().take(12).collect(),
            exit_code: state
                .as_ref()
                .filter(|s| !s.running)
                .and_then(|s| s.exit_code),
            oom_killed: state.as_ref().is_some_and(|s| s.oom_killed),
            log_tail: last_lines(&log, LOG_TAIL_LINES),
            agent: false,
            build: false,
        });
        logs.push(ServiceLog {
            service,
            text: without_timestamps(&log),
        });
    }
    (reports, logs)
}

/// The last `n` lines of `text`.
pub(super) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    let mut out = lines[from..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// `text` with the engine's time prefix (`2026-11-23T23:59:00.123456789Z `) taken off
/// each line.
fn without_timestamps(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let rest = match line.split_once(' ') {
            Some((stamp, rest)) if looks_like_time(stamp) => rest,
            _ => line,
        };
        out.push_str(rest);
        out.push('\n');
    }
    out
}

fn looks_like_time(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && word.ends_with('Z')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_loses_its_timestamps_and_keeps_its_last_lines() {
        let log = "2026-11-23T23:59:00.123456789Z starting\n2026-11-23T23:59:01.000000001Z ready on :8080\nno stamp here\n";
        assert_eq!(
            without_timestamps(log),
            "starting\nready on :8080\nno stamp here\n"
        );
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines("", 2), "");
    }
}
