//! Networks: a labelled bridge created, its gateway, removed, and listed by label.

use super::client::Docker;
use super::error::api;
use super::labels::{label_filter, to_hash};
use crate::backend::{EngineError, Labels, Listed};
use bollard::models::NetworkCreateRequest;
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
