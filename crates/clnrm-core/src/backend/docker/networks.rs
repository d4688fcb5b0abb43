//! Networks: a labelled bridge created, its gateway, removed, and listed by label.

use super::client::Docker;
use super::error::api;
use super::labels::{label_filter, to_hash};
use crate::backend::{EngineError, Labels, Listed};
use bollard::models::{NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest};
use bollard::query_parameters::{InspectNetworkOptions, ListNetworksOptions};

/// [`ContainerEngine::create_network`](crate::backend::ContainerEngine::create_network) on Docker.
pub(super) async fn create_network(
    docker: &Docker,
    name: &str,
    labels: &Labels,
) -> Result<String, EngineError> {
    let request = NetworkCreateRequest {
        name: name.to_owned(),
        driver: Some("bridge".into()),
        labels: Some(to_hash(labels)),
        ..Default::default()
    };
    let created = docker.client().create_network(request).await.map_err(api)?;
    Ok(created.id)
}

/// [`ContainerEngine::network_containers`](crate::backend::ContainerEngine::network_containers) on Docker.
pub(super) async fn network_containers(
    docker: &Docker,
    id: &str,
) -> Result<Vec<String>, EngineError> {
    let network = docker
        .client()
        .inspect_network(id, None::<InspectNetworkOptions>)
        .await
        .map_err(api)?;
    Ok(network.containers.unwrap_or_default().into_keys().collect())
}

/// [`ContainerEngine::network_gateway`](crate::backend::ContainerEngine::network_gateway) on Docker.
pub(super) async fn network_gateway(
    docker: &Docker,
    network: &str,
) -> Result<Option<std::net::IpAddr>, EngineError> {
    let network = docker
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

/// Container `container`'s address on `network` (by name or id), when it is on it:
/// `Some(None)` on it without an address the engine names.
async fn address_on(
    docker: &Docker,
    network: &str,
    container: &str,
) -> Result<Option<Option<std::net::IpAddr>>, EngineError> {
    let found = docker
        .client()
        .inspect_container(container, None)
        .await
        .map_err(api)?;
    let networks = found
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default();
    // By the name or id asked for; else by the network's own id and name (Podman
    // answers for `bridge` with its `podman`).
    let mut found = networks
        .iter()
        .find(|(name, e)| *name == network || e.network_id.as_deref() == Some(network));
    if found.is_none()
        && let Ok(net) = docker
            .client()
            .inspect_network(network, None::<InspectNetworkOptions>)
            .await
    {
        found = networks.iter().find(|(name, e)| {
            net.name.as_deref() == Some(name.as_str())
                || (e.network_id.is_some() && e.network_id == net.id)
        });
    }
    Ok(found.map(|(_, e)| {
        [&e.ip_address, &e.global_ipv6_address]
            .into_iter()
            .flatten()
            .find_map(|ip| ip.parse().ok())
    }))
}

/// [`ContainerEngine::connect`](crate::backend::ContainerEngine::connect) on Docker.
pub(super) async fn connect(
    docker: &Docker,
    network: &str,
    container: &str,
) -> Result<Option<std::net::IpAddr>, EngineError> {
    let request = NetworkConnectRequest {
        container: container.to_owned(),
        endpoint_config: None,
    };
    let connected = docker
        .client()
        .connect_network(network, request)
        .await
        .map_err(api);
    // Connected already is an error to the engine (its words differ between engines
    // and versions), not to the caller: what counts is being on it.
    match (connected, address_on(docker, network, container).await?) {
        (_, Some(ip)) => Ok(ip),
        (Err(e), None) => Err(e),
        (Ok(()), None) => Err(EngineError::Api(format!(
            "container {container} is not on network {network} after connecting it"
        ))),
    }
}

/// [`ContainerEngine::disconnect`](crate::backend::ContainerEngine::disconnect) on Docker.
pub(super) async fn disconnect(
    docker: &Docker,
    network: &str,
    container: &str,
) -> Result<(), EngineError> {
    let request = NetworkDisconnectRequest {
        container: container.to_owned(),
        force: Some(true),
    };
    match docker
        .client()
        .disconnect_network(network, request)
        .await
        .map_err(api)
    {
        Ok(()) | Err(EngineError::Gone(_)) => Ok(()),
        Err(e) => match address_on(docker, network, container).await {
            Ok(None) | Err(EngineError::Gone(_)) => Ok(()),
            _ => Err(e),
        },
    }
}

/// [`ContainerEngine::remove_network`](crate::backend::ContainerEngine::remove_network) on Docker.
pub(super) async fn remove_network(docker: &Docker, id: &str) -> Result<(), EngineError> {
    match docker.client().remove_network(id).await.map_err(api) {
        Ok(()) | Err(EngineError::Gone(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// [`ContainerEngine::list_networks`](crate::backend::ContainerEngine::list_networks) on Docker.
pub(super) async fn list_networks(docker: &Docker, key: &str) -> Result<Vec<Listed>, EngineError> {
    let options = ListNetworksOptions {
        filters: Some(label_filter(key)),
    };
    let found = docker
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
