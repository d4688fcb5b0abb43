//! Containers: created from a [`ContainerSpec`], started, inspected (state, addresses,
//! ports, changed files), stopped, removed and listed by label.

use super::client::Docker;
use super::error::{api, docker_words};
use super::labels::{label_filter, to_hash};
use crate::backend::{
    ContainerSpec, ContainerState, ContainerView, Details, EngineError, Listed, NetworkMode,
};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, StopContainerOptions,
};
use std::collections::HashMap;
use std::time::Duration;

fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let port_key = |p: &u16| format!("{p}/tcp");
    let port_bindings = spec
        .ports
        .iter()
        .map(|p| {
            let any = PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(String::new()),
            };
            (port_key(p), Some(vec![any]))
        })
        .collect::<HashMap<_, _>>();
    let binds = spec
        .mounts
        .iter()
        .map(|m| {
            let ro = if m.read_only { ":ro" } else { "" };
            format!("{}:{}{ro}", m.host_path, m.container_path)
        })
        .collect::<Vec<_>>();
    let (network_mode, networking_config) = match &spec.network {
        NetworkMode::None | NetworkMode::Disabled => (Some("none".to_owned()), None),
        NetworkMode::Bridge => (Some("bridge".to_owned()), None),
        NetworkMode::Named { id, aliases } => {
            let endpoint = EndpointSettings {
                aliases: Some(aliases.clone()),
                ..Default::default()
            };
            let cfg = NetworkingConfig {
                endpoints_config: Some(HashMap::from([(id.clone(), endpoint)])),
            };
            (Some(id.clone()), Some(cfg))
        }
    };
    let host_config = HostConfig {
        memory: spec.memory_bytes,
        memory_swap: spec.memory_bytes,
        nano_cpus: spec.nano_cpus,
        binds: (!binds.is_empty()).then_some(binds),
        tmpfs: (!spec.tmpfs.is_empty()).then(|| {
            spec.tmpfs
                .iter()
                .map(|t| {
                    let (path, options) = crate::model::tmpfs_parts(t);
                    (path.to_owned(), options.to_owned())
                })
                .collect()
        }),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        network_mode,
        extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: (!spec.cmd.is_empty()).then(|| spec.cmd.clone()),
        env: Some(spec.env.clone()),
        exposed_ports: (!spec.ports.is_empty()).then(|| spec.ports.iter().map(port_key).collect()),
        labels: Some(to_hash(&spec.labels)),
        open_stdin: Some(spec.open_stdin),
        attach_stdin: Some(spec.open_stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        stdin_once: Some(false),
        tty: Some(false),
        host_config: Some(host_config),
        network_disabled: (spec.network == NetworkMode::Disabled).then_some(true),
        networking_config,
        ..Default::default()
    }
}

impl Docker {
    /// Waits (up to 5 s) until container `id` no longer exists.
    async fn gone(&self, id: &str) -> Result<(), EngineError> {
        for _ in 0..100 {
            match self.client().inspect_container(id, None).await.map_err(api) {
                Err(EngineError::Gone(_)) => return Ok(()),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        Err(EngineError::Api(format!(
            "container {id} was still being removed after 5 s"
        )))
    }

    /// Inspects a container, on Podman too (see [`docker_words`]).
    async fn inspect_container(
        &self,
        id: &str,
    ) -> Result<bollard::models::ContainerInspectResponse, EngineError> {
        match self.client().inspect_container(id, None).await {
            Err(bollard::errors::Error::JsonDataError {
                contents, message, ..
            }) => {
                let v = docker_words(&contents).ok_or(EngineError::Api(message))?;
                serde_json::from_value(v).map_err(|e| EngineError::Api(e.to_string()))
            }
            other => other.map_err(api),
        }
    }
}

/// [`ContainerEngine::create`](crate::backend::ContainerEngine::create) on Docker.
pub(super) async fn create(docker: &Docker, spec: &ContainerSpec) -> Result<String, EngineError> {
    let options = CreateContainerOptions {
        name: Some(spec.name.clone()),
        ..Default::default()
    };
    let created = docker
        .client()
        .create_container(Some(options), create_body(spec))
        .await
        .map_err(api)?;
    Ok(created.id)
}

/// [`ContainerEngine::start`](crate::backend::ContainerEngine::start) on Docker.
pub(super) async fn start(docker: &Docker, id: &str) -> Result<(), EngineError> {
    docker.client().start_container(id, None).await.map_err(api)
}

/// [`ContainerEngine::inspect`](crate::backend::ContainerEngine::inspect) on Docker.
pub(super) async fn inspect(docker: &Docker, id: &str) -> Result<ContainerState, EngineError> {
    let found = docker.inspect_container(id).await?;
    let state = found.state.unwrap_or_default();
    Ok(ContainerState {
        running: state.running.unwrap_or(false),
        exit_code: state.exit_code,
        oom_killed: state.oom_killed.unwrap_or(false),
    })
}

/// [`ContainerEngine::details`](crate::backend::ContainerEngine::details) on Docker.
pub(super) async fn details(docker: &Docker, id: &str) -> Result<Details, EngineError> {
    let found = docker.inspect_container(id).await?;
    let settings = found.network_settings.unwrap_or_default();
    let mut ports: Vec<(u16, u16)> = settings
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(key, bindings)| {
            let inside = key.strip_suffix("/tcp")?.parse().ok()?;
            let outside = bindings?
                .iter()
                .find_map(|b| b.host_port.as_deref()?.parse().ok())?;
            Some((inside, outside))
        })
        .collect();
    ports.sort_unstable();
    let networks = settings.networks.unwrap_or_default();
    let ips = networks
        .values()
        .filter_map(|n| n.ip_address.as_deref())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    let driver = found.graph_driver.map(|g| g.data).unwrap_or_default();
    let upper_dir = driver
        .get("UpperDir")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from);
    let lower_dirs = driver
        .get("LowerDir")
        .into_iter()
        .flat_map(|l| l.split(':'))
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .collect();
    Ok(Details {
        ips,
        ports,
        upper_dir,
        lower_dirs,
    })
}

/// [`ContainerEngine::container_view`](crate::backend::ContainerEngine::container_view) on Docker.
pub(super) async fn view(docker: &Docker, id: &str) -> Result<Option<ContainerView>, EngineError> {
    let found = match docker.inspect_container(id).await {
        Ok(found) => found,
        Err(EngineError::Gone(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mounts = found
        .mounts
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| {
            let destination = m.destination.filter(|d| d.starts_with('/'))?;
            Some((m.source.filter(|s| s.starts_with('/')), destination))
        })
        .collect();
    let network_mode = found
        .host_config
        .and_then(|h| h.network_mode)
        .unwrap_or_default();
    let mut networks: Vec<String> = found
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default()
        .into_keys()
        .collect();
    networks.sort();
    Ok(Some(ContainerView {
        id: found.id.unwrap_or_default(),
        hostname: found.config.and_then(|c| c.hostname).unwrap_or_default(),
        mounts,
        networks,
        network_mode,
    }))
}

/// [`ContainerEngine::changes`](crate::backend::ContainerEngine::changes) on Docker.
pub(super) async fn changes(docker: &Docker, id: &str) -> Result<Vec<String>, EngineError> {
    let changes = docker.client().container_changes(id).await.map_err(api)?;
    let mut paths: Vec<String> = changes
        .unwrap_or_default()
        .into_iter()
        .map(|c| format!("{:?} {}", c.kind, c.path))
        .collect();
    paths.sort();
    Ok(paths)
}

/// [`ContainerEngine::stop`](crate::backend::ContainerEngine::stop) on Docker.
pub(super) async fn stop(docker: &Docker, id: &str, grace: Duration) -> Result<(), EngineError> {
    let options = StopContainerOptions {
        t: Some(grace.as_secs().min(3600) as i32),
        ..Default::default()
    };
    docker
        .client()
        .stop_container(id, Some(options))
        .await
        .map_err(api)
}

/// [`ContainerEngine::remove`](crate::backend::ContainerEngine::remove) on Docker.
pub(super) async fn remove(docker: &Docker, id: &str) -> Result<(), EngineError> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    // Podman can refuse while the container is exiting on its own ("could not be
    // stopped: ... container state improper: stopped"); the same call a moment
    // later removes it. Removing is idempotent, so any refusal is tried again.
    let mut last = None;
    for pause_ms in [0, 50, 250] {
        if pause_ms > 0 {
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
        match docker
            .client()
            .remove_container(id, Some(options.clone()))
            .await
            .map_err(api)
        {
            Ok(()) | Err(EngineError::Gone(_)) => return Ok(()),
            // Another call is removing it: done once it is gone (a network it was on
            // can be removed only then), which takes a moment.
            Err(EngineError::Api(m)) if m.contains("already in progress") => {
                return docker.gone(id).await;
            }
            Err(e @ EngineError::Api(_)) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| EngineError::Api(format!("cannot remove container {id}"))))
}

/// [`ContainerEngine::list`](crate::backend::ContainerEngine::list) on Docker.
pub(super) async fn list(docker: &Docker, key: &str) -> Result<Vec<Listed>, EngineError> {
    let options = ListContainersOptions {
        all: true,
        filters: Some(label_filter(key)),
        ..Default::default()
    };
    let found: Vec<bollard::models::ContainerSummary> =
        match docker.client().list_containers(Some(options)).await {
            Err(bollard::errors::Error::JsonDataError {
                contents, message, ..
            }) => {
                let v = docker_words(&contents).ok_or(EngineError::Api(message))?;
                serde_json::from_value(v).map_err(|e| EngineError::Api(e.to_string()))?
            }
            other => other.map_err(api)?,
        };
    Ok(found
        .into_iter()
        .map(|c| Listed {
            id: c.id.unwrap_or_default(),
            labels: c.labels.unwrap_or_default().into_iter().collect(),
        })
        .collect())
}
