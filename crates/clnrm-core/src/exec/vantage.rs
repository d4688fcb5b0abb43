//! Where clnrm stands relative to the containers it starts.
//!
//! On the engine's host (the usual case) it reaches a service through the port the
//! engine publishes on loopback, containers reach its OTLP receiver at their network's
//! gateway, and a bind mount's path is the same for both. In one of the engine's own
//! containers (a CI job whose container mounts the engine's socket: GitLab's Docker
//! executor, a Jenkins agent, `clnrm` run from its image), none of that holds: the
//! engine's loopback and gateway are not this process's, nor are its paths. There,
//! clnrm connects its own container to each network its environments use, reaches a
//! service at the service's address on that network and the container's own port,
//! tells containers its own address there (`host.docker.internal`), and gives the
//! engine each bind mount's path as the engine's host sees it, through its own mounts.

use crate::backend::{ContainerEngine, ContainerView, EngineError};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// The variable that names clnrm's own container when it cannot find it by itself
/// (`none`: clnrm is not in one of the engine's containers).
pub const CONTAINER_VAR: &str = "CLNRM_CONTAINER";

/// Where clnrm runs: on the engine's host, or in one of its containers.
#[derive(Debug, Default)]
pub enum Vantage {
    /// On the engine's host (or anywhere its loopback and gateway are this host's).
    #[default]
    Host,
    /// In one of the engine's containers.
    Container(Inside),
}

/// A bind mount of a path that only clnrm's container has.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} is inside clnrm's container {container} and in none of its mounts, so the engine cannot \
     mount it; mount the project into clnrm's container (e.g. `-v \"$PWD:$PWD\" -w \"$PWD\"`)"
)]
pub struct NotMounted {
    /// The path, as clnrm sees it.
    pub path: String,
    /// clnrm's container (its short id).
    pub container: String,
}

/// clnrm's own container, and the networks it joined.
#[derive(Debug)]
pub struct Inside {
    view: ContainerView,
    /// The container whose network namespace clnrm's is, which joins networks: its
    /// own, or the one it shares (`container:<id>`); `None` on the host's network
    /// (`--network host`), where the engine host's loopback and gateway are clnrm's.
    joiner: Option<String>,
    /// Network name → clnrm's address there, for each network it is on that an
    /// environment uses.
    addresses: Mutex<HashMap<String, IpAddr>>,
}

impl Vantage {
    /// Finds out where this process runs: `CLNRM_CONTAINER` when set, else the
    /// container whose id the mounts of `/etc/hostname` (and the others the engine
    /// makes) or the cgroups of this process name, or whose name is the host name
    /// in a container; checked with the engine, which must know it. The second value
    /// is what the user should know (a named container the engine does not have).
    pub async fn detect<E: ContainerEngine>(engine: &E) -> (Self, Option<String>) {
        let named = std::env::var(CONTAINER_VAR).ok().filter(|v| !v.is_empty());
        let hostname = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        if let Some(name) = named {
            if name == "none" {
                return (Self::Host, None);
            }
            return match engine.container_view(&name).await {
                Ok(Some(view)) => (Self::inside(view), None),
                Ok(None) => (
                    Self::Host,
                    Some(format!(
                        "{CONTAINER_VAR}={name}: the engine has no such container; clnrm runs as on the engine's host"
                    )),
                ),
                Err(e) => (
                    Self::Host,
                    Some(format!(
                        "{CONTAINER_VAR}={name}: the engine did not say what it is ({e}); clnrm runs as on the engine's host"
                    )),
                ),
            };
        }
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let mut ids = container_ids(&read("/proc/self/mountinfo"));
        for id in container_ids_of_cgroups(&read("/proc/self/cgroup")) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let in_container = ["/.dockerenv", "/run/.containerenv"]
            .iter()
            .any(|p| std::path::Path::new(p).exists());
        if in_container && !hostname.is_empty() {
            ids.push(hostname.clone());
        }
        for id in ids {
            match engine.container_view(&id).await {
                // The name asked for is the host name: the container must say it is.
                Ok(Some(view)) if view.id.starts_with(&id) || view.hostname == hostname => {
                    return (Self::inside(view), None);
                }
                Ok(_) => {}
                Err(e) => {
                    return (
                        Self::Host,
                        Some(format!(
                            "clnrm seems to run in container {id} but the engine did not say what it is ({e}); \
                             it runs as on the engine's host (set {CONTAINER_VAR} to say)"
                        )),
                    );
                }
            }
        }
        (Self::Host, None)
    }

    /// clnrm in container `view`.
    pub fn inside(view: ContainerView) -> Self {
        let mode = view.network_mode.as_str();
        let joiner = match mode.strip_prefix("container:") {
            _ if mode == "host" => None,
            Some(other) => Some(other.to_owned()),
            None => Some(view.id.clone()),
        };
        Self::Container(Inside {
            view,
            joiner,
            addresses: Mutex::new(HashMap::new()),
        })
    }

    /// Whether clnrm reaches its containers through networks it joins (it runs in one
    /// of the engine's containers, not on the host's network).
    pub fn joins_networks(&self) -> bool {
        matches!(
            self,
            Self::Container(Inside {
                joiner: Some(_),
                ..
            })
        )
    }

    /// The id of the engine's container clnrm runs in.
    pub fn container_id(&self) -> Option<&str> {
        match self {
            Self::Host => None,
            Self::Container(inside) => Some(&inside.view.id),
        }
    }

    /// The container clnrm connects to environments' networks (its own, or the one
    /// whose network it shares), as it was named.
    pub fn joiner(&self) -> Option<&str> {
        match self {
            Self::Container(Inside {
                joiner: Some(j), ..
            }) => Some(j),
            _ => None,
        }
    }

    /// In a container: connects it to `network` (by name) unless it is on it, and
    /// returns its address there (what containers on it reach clnrm at). `None` on
    /// the host (and on the host's network).
    pub async fn join<E: ContainerEngine>(
        &self,
        engine: &E,
        network: &str,
    ) -> Result<Option<IpAddr>, EngineError> {
        let Self::Container(Inside {
            joiner: Some(joiner),
            addresses,
            ..
        }) = self
        else {
            return Ok(None);
        };
        if let Some(ip) = lock(addresses).get(network) {
            return Ok(Some(*ip));
        }
        let ip = engine.connect(network, joiner).await?.ok_or_else(|| {
            EngineError::Api(format!(
                "the engine gave clnrm's container {} no address on network {network}",
                short(joiner)
            ))
        })?;
        lock(addresses).insert(network.to_owned(), ip);
        Ok(Some(ip))
    }

    /// In a container: disconnects it from `network` (an environment's own, which no
    /// other process uses) before the network is removed. The engine's default
    /// bridge, and the networks it was started on, stay: another clnrm in the same
    /// container may use them. One it could not leave is tried again by
    /// [`Vantage::leave_all`].
    pub async fn leave<E: ContainerEngine>(&self, engine: &E, network: &str) {
        let Self::Container(Inside {
            joiner: Some(joiner),
            addresses,
            view,
        }) = self
        else {
            return;
        };
        if network == crate::backend::DEFAULT_NETWORK
            || view.networks.iter().any(|n| n == network)
            || !lock(addresses).contains_key(network)
        {
            return;
        }
        if engine.disconnect(network, joiner).await.is_ok() {
            lock(addresses).remove(network);
        }
    }

    /// Leaves every network clnrm joined that [`Vantage::leave`] leaves.
    pub async fn leave_all<E: ContainerEngine>(&self, engine: &E) {
        let Self::Container(inside) = self else {
            return;
        };
        let joined: Vec<String> = lock(&inside.addresses).keys().cloned().collect();
        for network in joined {
            self.leave(engine, &network).await;
        }
    }

    /// The path the engine must be given for `path` (absolute, as clnrm sees it) to
    /// bind-mount what clnrm sees there: itself on the host; in a container, the
    /// engine's host path of the deepest bind mount or volume of clnrm's container
    /// that holds it, symbolic links resolved first (as clnrm sees them: the engine
    /// would follow them on its host). What is in no mount of it, or in a tmpfs,
    /// exists only inside clnrm's container, where the engine cannot reach.
    pub fn engine_path(&self, path: &str) -> Result<String, NotMounted> {
        let Self::Container(inside) = self else {
            return Ok(path.to_owned());
        };
        let real = std::fs::canonicalize(path)
            .ok()
            .and_then(|p| p.to_str().map(str::to_owned))
            .unwrap_or_else(|| path.to_owned());
        host_path(&inside.view.mounts, &real).ok_or_else(|| NotMounted {
            path: path.to_owned(),
            container: short(&inside.view.id).to_owned(),
        })
    }
}

/// The first 12 characters of an id.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `path` (clnrm's view) as the engine's host sees it, through the deepest of
/// `mounts` ((engine host's path, path inside)) that holds it; `None` when that one is
/// on no path of the engine's host (a tmpfs) or none holds it.
fn host_path(mounts: &[(Option<String>, String)], path: &str) -> Option<String> {
    let holds = |inside: &str| {
        let inside = inside.trim_end_matches('/');
        path == inside || inside.is_empty() || path.starts_with(&format!("{inside}/"))
    };
    let (source, inside) = mounts
        .iter()
        .filter(|(_, inside)| holds(inside))
        .max_by_key(|(_, inside)| inside.trim_end_matches('/').len())?;
    let rest = &path[inside.trim_end_matches('/').len()..];
    Some(format!(
        "{}{rest}",
        source.as_deref()?.trim_end_matches('/')
    ))
}

/// Whether `word` is a container id as engines write it (64 lowercase hex digits).
fn is_id(word: &str) -> bool {
    word.len() == 64
        && word
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The container ids named by the mounts engines make for a container's
/// `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` (their sources are files of
/// the container's directory: `.../containers/<id>/hostname` on Docker,
/// `.../overlay-containers/<id>/userdata/hostname` on Podman), in `mountinfo`'s text.
fn container_ids(mountinfo: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(root), Some(at)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        if !["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"].contains(at) {
            continue;
        }
        for id in root.split('/').filter(|w| is_id(w)) {
            if !ids.iter().any(|known| known == id) {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}

/// The container ids named in `/proc/self/cgroup` (cgroup v1, or v2 without a
/// namespace of its own: `/docker/<id>`, `docker-<id>.scope`, `libpod-<id>.scope`).
fn container_ids_of_cgroups(cgroup: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for word in cgroup.split(['/', ':', '\n']) {
        let word = word.strip_suffix(".scope").unwrap_or(word);
        let word = word.rsplit('-').next().unwrap_or(word);
        if is_id(word) && !ids.iter().any(|known| known == word) {
            ids.push(word.to_owned());
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::fake::FakeEngine;

    const ID: &str = "4f1c2b7e9a0d3c5b6e8f7a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5";

    #[test]
    fn the_container_id_is_read_from_the_mounts_of_etc_hostname_on_docker_and_podman() {
        let docker = format!(
            "812 790 0:44 / / rw,relatime master:300 - overlay overlay rw\n\
             835 812 254:1 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda1 rw\n\
             836 812 254:1 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n\
             840 812 254:1 /home/ci/project /project rw - ext4 /dev/vda1 rw\n"
        );
        assert_eq!(container_ids(&docker), vec![ID.to_owned()]);
        let podman = format!(
            "1 0 0:1 /containers/storage/overlay-containers/{ID}/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw\n"
        );
        assert_eq!(container_ids(&podman), vec![ID.to_owned()]);
        // On a host: nothing mounted there, or a volume path naming another container.
        let host =
            format!("25 1 254:1 /var/lib/docker/containers/{ID}/x /mnt/x rw - ext4 /dev/vda1 rw\n");
        assert!(container_ids(&host).is_empty());
        assert!(container_ids("garbage\n\n1 2").is_empty());
    }

    #[test]
    fn the_container_id_is_read_from_cgroups_of_version_one() {
        let v1 = format!("12:pids:/docker/{ID}\n11:cpu:/system.slice/docker-{ID}.scope\n");
        assert_eq!(container_ids_of_cgroups(&v1), vec![ID.to_owned()]);
        assert!(container_ids_of_cgroups("0::/\n").is_empty());
    }

    #[test]
    fn a_path_is_given_to_the_engine_through_the_deepest_mount_that_holds_it() {
        let mounts = vec![
            (Some("/home/ci/project".to_owned()), "/project".to_owned()),
            (
                Some("/var/lib/docker/volumes/data/_data".to_owned()),
                "/project/data".to_owned(),
            ),
            (
                Some("/var/run/docker.sock".to_owned()),
                "/var/run/docker.sock".to_owned(),
            ),
            (None, "/project/scratch".to_owned()),
        ];
        assert_eq!(
            host_path(&mounts, "/project/examples/site").as_deref(),
            Some("/home/ci/project/examples/site")
        );
        assert_eq!(
            host_path(&mounts, "/project/data/seed.sql").as_deref(),
            Some("/var/lib/docker/volumes/data/_data/seed.sql")
        );
        assert_eq!(
            host_path(&mounts, "/project").as_deref(),
            Some("/home/ci/project")
        );
        // A sibling whose name begins alike is not in the mount.
        assert_eq!(host_path(&mounts, "/projectile"), None);
        // A tmpfs over part of a mount: nothing of the engine's host is there.
        assert_eq!(host_path(&mounts, "/project/scratch/x"), None);
        assert_eq!(host_path(&mounts, "/etc/passwd"), None);
        let inside = Vantage::inside(ContainerView {
            id: ID.into(),
            mounts,
            ..ContainerView::default()
        });
        let err = inside
            .engine_path("/tmp/x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("/tmp/x is inside clnrm's container 4f1c2b7e9a0d"),
            "{err}"
        );
        assert_eq!(
            Vantage::Host.engine_path("/tmp/x").ok().as_deref(),
            Some("/tmp/x")
        );
    }

    #[tokio::test]
    async fn in_a_container_it_joins_each_network_once_and_leaves_only_those_it_joined() {
        let engine = FakeEngine::new();
        let labels = crate::backend::Labels::new();
        engine
            .create_network("env-1", &labels)
            .await
            .unwrap_or_default();
        let vantage = Vantage::inside(ContainerView {
            id: ID.into(),
            networks: vec!["bridge".into()],
            ..ContainerView::default()
        });
        let ip = vantage.join(&engine, "env-1").await.ok().flatten();
        assert!(ip.is_some());
        assert_eq!(vantage.join(&engine, "env-1").await.ok().flatten(), ip);
        assert!(vantage.join(&engine, "bridge").await.is_ok());
        assert_eq!(engine.connected().len(), 2);
        // A network that does not exist is the engine's error.
        assert!(vantage.join(&engine, "gone").await.is_err());
        vantage.leave_all(&engine).await;
        // It was started on the bridge: that one stays.
        assert_eq!(
            engine.connected(),
            vec![("bridge".to_owned(), ID.to_owned())]
        );
        assert_eq!(Vantage::Host.join(&engine, "env-1").await.ok(), Some(None));

        // On the host's network (`--network host`): nothing to join, paths still
        // translated; sharing another container's (`container:<id>`): that one joins.
        let host_net = Vantage::inside(ContainerView {
            id: ID.into(),
            network_mode: "host".into(),
            mounts: vec![(Some("/srv/p".into()), "/p".into())],
            ..ContainerView::default()
        });
        assert!(!host_net.joins_networks());
        assert_eq!(host_net.join(&engine, "env-1").await.ok(), Some(None));
        assert_eq!(
            host_net.engine_path("/p/x").ok().as_deref(),
            Some("/srv/p/x")
        );
        let shared = Vantage::inside(ContainerView {
            id: ID.into(),
            network_mode: "container:sidecar".into(),
            ..ContainerView::default()
        });
        assert!(shared.joins_networks());
        assert!(shared.join(&engine, "env-1").await.is_ok());
        assert!(
            engine
                .connected()
                .contains(&("env-1".to_owned(), "sidecar".to_owned()))
        );
    }
}
