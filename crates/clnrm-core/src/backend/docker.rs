//! [`ContainerEngine`] over the Docker engine API through bollard. Honours
//! `DOCKER_HOST` (a Podman socket works the same way) and negotiates the API version,
//! so Docker 20.10 (API 1.41) and newer engines answer alike.

use super::{
    Attached, Chunk, ContainerEngine, ContainerSpec, ContainerState, Details, EngineError,
    ExecSpec, Execution, ImageInfo, Labels, Listed, ListedImage, NetworkMode,
};
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding,
};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions, InspectNetworkOptions,
    ListContainersOptions, ListImagesOptions, ListNetworksOptions, LogsOptions,
    RemoveContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

/// Where Docker listens when `DOCKER_HOST` is unset.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The Docker engine, reached through `DOCKER_HOST` or the default socket.
#[derive(Clone, Debug)]
pub struct Docker {
    /// The client at the version the engine speaks (replaced once negotiated).
    api: std::sync::Arc<std::sync::RwLock<bollard::Docker>>,
    address: String,
}

impl Docker {
    /// A client of the engine at `DOCKER_HOST` (else the local socket), not asked
    /// anything yet: the first call says whether it answers. The API version is pinned
    /// to 1.41 (Docker 20.10; newer engines serve it too), which saves a version round
    /// trip.
    pub fn new() -> Result<Self, EngineError> {
        let address = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        const PINNED: bollard::ClientVersion = bollard::ClientVersion {
            major_version: 1,
            minor_version: 41,
        };
        let pinned = if address.starts_with("unix://") {
            bollard::Docker::connect_with_unix(&address, 600, &PINNED)
        } else if address.starts_with("tcp://") || address.starts_with("http://") {
            bollard::Docker::connect_with_http(&address, 600, &PINNED)
        } else {
            bollard::Docker::connect_with_host(&address)
        };
        match pinned {
            Ok(client) => Ok(Self::of(client, address)),
            Err(e) => Err(EngineError::Unreachable {
                address,
                reason: e.to_string(),
            }),
        }
    }

    fn of(client: bollard::Docker, address: String) -> Self {
        Self {
            api: std::sync::Arc::new(std::sync::RwLock::new(client)),
            address,
        }
    }

    /// Negotiates the API version with the engine; later calls use it.
    async fn negotiate(&self) -> Result<(), bollard::errors::Error> {
        let negotiated = self.client().negotiate_version().await?;
        *self
            .api
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = negotiated;
        Ok(())
    }

    /// The client (a cheap clone).
    pub(super) fn client(&self) -> bollard::Docker {
        self.api
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Connects and checks that the engine answers; an engine older than the pinned
    /// API version is met by negotiating.
    pub async fn connect() -> Result<Self, EngineError> {
        let docker = Self::new()?;
        let (client, address) = (docker.client(), docker.address);
        let unreachable = |reason: String| EngineError::Unreachable {
            address: address.clone(),
            reason,
        };
        let ping = tokio::time::timeout(Duration::from_secs(10), client.ping()).await;
        match ping {
            Err(_) => Err(unreachable("no answer within 10 s".into())),
            Ok(Ok(_)) => Ok(Self::of(client, address)),
            Ok(Err(bollard::errors::Error::DockerResponseServerError { .. })) => {
                // The engine answered but refused the version: negotiate.
                let client = client
                    .negotiate_version()
                    .await
                    .map_err(|e| unreachable(root_cause(&e)))?;
                Ok(Self::of(client, address))
            }
            Ok(Err(e)) => Err(unreachable(root_cause(&e))),
        }
    }
}

/// Whether the engine refused the client's API version (an engine older than it).
fn too_new(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 400, message }
        if message.contains("version"))
}

/// The innermost message of an error chain ("Connection refused", not "error trying to connect").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// An answer about containers (one inspected, or a list) in Docker's words: Podman's
/// API says "stopped" where Docker says "exited", a word bollard's model does not know.
/// `None` when there is no such word to change (the error stands).
fn docker_words(contents: &str) -> Option<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_str(contents).ok()?;
    let mut changed = false;
    let mut fix = |slot: Option<&mut serde_json::Value>| {
        if let Some(s) = slot.filter(|s| *s == "stopped") {
            *s = "exited".into();
            changed = true;
        }
    };
    match &mut v {
        serde_json::Value::Array(items) => {
            for item in items {
                fix(item.get_mut("State"));
            }
        }
        other => fix(other.pointer_mut("/State/Status")),
    }
    changed.then_some(v)
}

pub(super) fn api(e: bollard::errors::Error) -> EngineError {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message,
        } => EngineError::Gone(message),
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            EngineError::Api(message)
        }
        other => EngineError::Api(root_cause(&other)),
    }
}

fn label_filter(key: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![key.to_owned()])])
}

pub(super) fn to_hash(labels: &Labels) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

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

fn chunk(item: Result<LogOutput, bollard::errors::Error>) -> Option<Result<Chunk, EngineError>> {
    match item {
        Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
            Some(Ok(Chunk::Stdout(message)))
        }
        Ok(LogOutput::StdErr { message }) => Some(Ok(Chunk::Stderr(message))),
        Ok(LogOutput::StdIn { .. }) => None,
        Err(e) => Some(Err(api(e))),
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

    /// A container's log (stdout and stderr interleaved), the newest `cap` bytes of
    /// its last `tail` lines.
    async fn read_log(
        &self,
        id: &str,
        tail: String,
        timestamps: bool,
        cap: usize,
    ) -> Result<Vec<u8>, EngineError> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            timestamps,
            tail,
            ..Default::default()
        };
        let client = self.client();
        let mut stream = client.logs(id, Some(options));
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            match chunk(item) {
                Some(Ok(Chunk::Stdout(b) | Chunk::Stderr(b))) => {
                    out.extend_from_slice(&b);
                    // Drop the oldest in large steps, not on every chunk.
                    if out.len() > 2 * cap {
                        out.drain(..out.len() - cap);
                    }
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        if out.len() > cap {
            out.drain(..out.len() - cap);
        }
        Ok(out)
    }
}

impl ContainerEngine for Docker {
    async fn ping(&self) -> Result<(), EngineError> {
        let unreachable = |e: &bollard::errors::Error| EngineError::Unreachable {
            address: self.address.clone(),
            reason: root_cause(e),
        };
        let client = self.client();
        match client.ping().await {
            Ok(_) => Ok(()),
            // The engine answered but refused the pinned version (an engine older
            // than Docker 20.10): negotiate, and use that from now on.
            Err(bollard::errors::Error::DockerResponseServerError { .. }) => {
                self.negotiate().await.map_err(|e| unreachable(&e))
            }
            Err(e) => Err(unreachable(&e)),
        }
    }

    async fn image(&self, image: &str) -> Result<Option<ImageInfo>, EngineError> {
        let mut inspected = self.client().inspect_image(image).await;
        // The first call of a fully cached run: an engine that refuses the pinned
        // version is met here too.
        if matches!(&inspected, Err(e) if too_new(e)) && self.negotiate().await.is_ok() {
            inspected = self.client().inspect_image(image).await;
        }
        match inspected {
            Ok(found) => {
                let cfg = found.config.unwrap_or_default();
                Ok(Some(ImageInfo {
                    id: found.id.unwrap_or_default(),
                    cmd: cfg.cmd.unwrap_or_default(),
                    entrypoint: cfg.entrypoint.unwrap_or_default(),
                    user: cfg.user.unwrap_or_default(),
                    volumes: {
                        let mut v: Vec<String> = cfg.volumes.unwrap_or_default();
                        v.sort();
                        v
                    },
                    size: found.size.unwrap_or_default().max(0) as u64,
                }))
            }
            Err(e) => match api(e) {
                EngineError::Gone(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn pull(&self, image: &str) -> Result<(), EngineError> {
        let options = CreateImageOptions {
            from_image: Some(image.to_owned()),
            ..Default::default()
        };
        let client = self.client();
        let mut progress = client.create_image(Some(options), None, None);
        while let Some(item) = progress.next().await {
            item.map_err(|e| EngineError::ImageMissing {
                image: image.to_owned(),
                reason: root_cause(&e),
            })?;
        }
        Ok(())
    }

    async fn create_network(&self, name: &str, labels: &Labels) -> Result<String, EngineError> {
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".into()),
            labels: Some(to_hash(labels)),
            ..Default::default()
        };
        let created = self.client().create_network(request).await.map_err(api)?;
        Ok(created.id)
    }

    async fn network_gateway(
        &self,
        network: &str,
    ) -> Result<Option<std::net::IpAddr>, EngineError> {
        let network = self
            .client()
            .inspect_network(network, None::<InspectNetworkOptions>)
            .await
            .map_err(api)?;
        let configs = network.ipam.and_then(|i| i.config).unwrap_or_default();
        let from_config = configs
            .iter()
            .find_map(|c| c.gateway.as_deref().and_then(|g| g.parse().ok()));
        // Docker leaves the default bridge's gateway out of its answer at times; it is
        // the subnet's first address (on Podman's networks too).
        let first_of_subnet = || {
            configs.iter().find_map(|c| {
                let (net, _) = c.subnet.as_deref()?.split_once('/')?;
                let net: std::net::Ipv4Addr = net.parse().ok()?;
                Some(std::net::IpAddr::V4((u32::from(net) + 1).into()))
            })
        };
        Ok(from_config.or_else(first_of_subnet))
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        match self.client().remove_network(id).await.map_err(api) {
            Ok(()) | Err(EngineError::Gone(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let created = self
            .client()
            .create_container(Some(options), create_body(spec))
            .await
            .map_err(api)?;
        Ok(created.id)
    }

    async fn attach(&self, id: &str) -> Result<Attached, EngineError> {
        let options = AttachContainerOptions {
            stream: true,
            stdin: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let attached = self
            .client()
            .attach_container(id, Some(options))
            .await
            .map_err(api)?;
        let output = attached
            .output
            .filter_map(|item| std::future::ready(chunk(item)))
            .boxed();
        Ok(Attached {
            input: attached.input,
            output,
        })
    }

    async fn start(&self, id: &str) -> Result<(), EngineError> {
        self.client().start_container(id, None).await.map_err(api)
    }

    async fn exec_start(&self, id: &str, spec: &ExecSpec) -> Result<Execution, EngineError> {
        let options = CreateExecOptions {
            cmd: Some(spec.argv.clone()),
            env: (!spec.env.is_empty()).then(|| spec.env.clone()),
            working_dir: spec.workdir.clone(),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self.client().create_exec(id, options).await.map_err(api)?;
        let started = self
            .client()
            .start_exec(&exec.id, Some(StartExecOptions::default()))
            .await
            .map_err(api)?;
        let output = match started {
            StartExecResults::Attached { output, .. } => output
                .filter_map(|item| std::future::ready(chunk(item)))
                .boxed(),
            StartExecResults::Detached => futures_util::stream::empty().boxed(),
        };
        Ok(Execution {
            id: exec.id,
            output,
        })
    }

    async fn exec_exit_code(&self, exec: &str) -> Result<i64, EngineError> {
        let inspected = self.client().inspect_exec(exec).await.map_err(api)?;
        Ok(inspected.exit_code.unwrap_or(-1))
    }

    async fn inspect(&self, id: &str) -> Result<ContainerState, EngineError> {
        let found = self.inspect_container(id).await?;
        let state = found.state.unwrap_or_default();
        Ok(ContainerState {
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
        })
    }

    async fn stdout_log(&self, id: &str) -> Result<Vec<u8>, EngineError> {
        let options = LogsOptions {
            stdout: true,
            tail: "all".into(),
            ..Default::default()
        };
        let client = self.client();
        let mut stream = client.logs(id, Some(options));
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            if let Some(Ok(Chunk::Stdout(b))) = chunk(item) {
                super::push_capped(&mut out, &b);
            }
        }
        Ok(out)
    }

    async fn log_tail(&self, id: &str, lines: usize) -> Result<Vec<u8>, EngineError> {
        self.read_log(id, lines.to_string(), false, super::LOG_TAIL_CAP)
            .await
    }

    async fn log(&self, id: &str, cap: usize) -> Result<Vec<u8>, EngineError> {
        self.read_log(id, "all".into(), true, cap).await
    }

    async fn details(&self, id: &str) -> Result<Details, EngineError> {
        let found = self.inspect_container(id).await?;
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
        let upper_dir = found
            .graph_driver
            .and_then(|g| g.data.get("UpperDir").cloned())
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from);
        Ok(Details {
            ips,
            ports,
            upper_dir,
        })
    }

    async fn changes(&self, id: &str) -> Result<Vec<String>, EngineError> {
        let changes = self.client().container_changes(id).await.map_err(api)?;
        let mut paths: Vec<String> = changes
            .unwrap_or_default()
            .into_iter()
            .map(|c| format!("{:?} {}", c.kind, c.path))
            .collect();
        paths.sort();
        Ok(paths)
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), EngineError> {
        let options = StopContainerOptions {
            t: Some(grace.as_secs().min(3600) as i32),
            ..Default::default()
        };
        self.client()
            .stop_container(id, Some(options))
            .await
            .map_err(api)
    }

    async fn snapshot(
        &self,
        id: &str,
        tag: &str,
        volumes: &[String],
        labels: &Labels,
    ) -> Result<String, EngineError> {
        self.make_snapshot(id, tag, volumes, labels).await
    }

    async fn images(&self, key: &str) -> Result<Vec<ListedImage>, EngineError> {
        let options = ListImagesOptions {
            filters: Some(label_filter(key)),
            ..Default::default()
        };
        let found = self
            .client()
            .list_images(Some(options))
            .await
            .map_err(api)?;
        Ok(found
            .into_iter()
            .map(|i| ListedImage {
                id: i.id,
                tags: i.repo_tags,
                labels: i.labels.into_iter().collect(),
                size: i.size.max(0) as u64,
                created: i.created,
            })
            .collect())
    }

    async fn remove_image(&self, id: &str) -> Result<(), EngineError> {
        self.remove_image_quietly(id).await
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
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
            match self
                .client()
                .remove_container(id, Some(options.clone()))
                .await
                .map_err(api)
            {
                Ok(()) | Err(EngineError::Gone(_)) => return Ok(()),
                // Another call is removing it: done once it is gone (a network it was on
                // can be removed only then), which takes a moment.
                Err(EngineError::Api(m)) if m.contains("already in progress") => {
                    return self.gone(id).await;
                }
                Err(e @ EngineError::Api(_)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| EngineError::Api(format!("cannot remove container {id}"))))
    }

    async fn list(&self, key: &str) -> Result<Vec<Listed>, EngineError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(label_filter(key)),
            ..Default::default()
        };
        let found: Vec<bollard::models::ContainerSummary> =
            match self.client().list_containers(Some(options)).await {
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

    async fn list_networks(&self, key: &str) -> Result<Vec<Listed>, EngineError> {
        let options = ListNetworksOptions {
            filters: Some(label_filter(key)),
        };
        let found = self
            .client()
            .list_networks(Some(options))
            .await
            .map_err(api)?;
        Ok(found
            .into_iter()
            .map(|n| Listed {
                id: n.id.unwrap_or_default(),
                labels: n.labels.unwrap_or_default().into_iter().collect(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::docker_words;

    #[test]
    fn podman_stopped_is_read_as_exited() {
        let podman = r#"{"Id":"x","State":{"Status":"stopped","Running":false,"ExitCode":3}}"#;
        let v = docker_words(podman).unwrap_or_default();
        assert_eq!(v["State"]["Status"], "exited");
        assert_eq!(v["State"]["ExitCode"], 3);
        let parsed: bollard::models::ContainerInspectResponse =
            serde_json::from_value(v).unwrap_or_default();
        assert_eq!(parsed.state.and_then(|s| s.exit_code), Some(3));
        let list = r#"[{"Id":"a","State":"stopped"},{"Id":"b","State":"running"}]"#;
        let v = docker_words(list).unwrap_or_default();
        assert_eq!(
            (v[0]["State"].as_str(), v[1]["State"].as_str()),
            (Some("exited"), Some("running"))
        );
        let parsed: Vec<bollard::models::ContainerSummary> =
            serde_json::from_value(v).unwrap_or_default();
        assert_eq!(parsed.len(), 2);
        // Anything else is not rewritten: the error stands.
        assert_eq!(docker_words(r#"{"State":{"Status":"weird"}}"#), None);
        assert_eq!(docker_words("not json"), None);
    }
}
