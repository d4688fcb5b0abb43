//! Whether a used environment is as clean as a fresh one: only the shell alive, an
//! empty `/dev/shm`, no OOM kill, the bind-mounted files as they were, and the
//! writable layer unchanged (read from the host, else the engine's diff).

use super::{Env, Member, Pool};
use crate::backend::{ContainerEngine, ExecSpec, layer};

/// Shell snippet printing "<processes> <files in /dev/shm> <oom kills>" using builtins only.
pub(super) const CHECK: &str = "set -- /proc/[0-9]*; p=$#; n=0; \
for f in /dev/shm/* /dev/shm/.[!.]* /dev/shm/..?*; do [ -e \"$f\" ] && n=$((n+1)); done; \
o=0; for f in /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events; do \
[ -r \"$f\" ] && while read -r k v; do [ \"$k\" = oom_kill ] && o=$((o+v)); done < \"$f\"; done; \
echo \"$p $n $o\"";

/// Shell snippet printing the files the engine bind-mounts into a container. They are
/// not in its filesystem layer, so the engine's diff does not see a scenario change
/// them; a clean container prints what it printed right after start. Builtins only.
pub(super) const BIND_MOUNTED: &str = "for f in /etc/hosts /etc/resolv.conf /etc/hostname; do \
printf '== %s\\n' \"$f\"; [ -r \"$f\" ] && while IFS= read -r l || [ -n \"$l\" ]; do \
printf '%s\\n' \"$l\"; done < \"$f\"; done";

impl<E: ContainerEngine> Pool<E> {
    /// Whether `env` may serve another scenario.
    pub(super) async fn is_clean(&self, env: &mut Env) -> bool {
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
}

/// The listing of the writable layer at `dir` (at most `limit` entries read), off
/// the async threads; `None` when it cannot be read.
pub(super) async fn read_layer(dir: std::path::PathBuf, limit: usize) -> Option<Vec<String>> {
    tokio::task::spawn_blocking(move || layer::listing(&dir, limit).ok())
        .await
        .ok()
        .flatten()
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
