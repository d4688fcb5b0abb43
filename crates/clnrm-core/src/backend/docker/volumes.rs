//! Volumes: created with the local driver's options (a fixture's copy-on-write
//! overlay), found, removed and listed by label.

use super::client::Docker;
use super::error::api;
use super::labels::{label_filter, to_hash};
use crate::backend::{EngineError, Labels, Listed};
use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListVolumesOptions, RemoveVolumeOptions};

/// [`ContainerEngine::create_volume`](crate::backend::ContainerEngine::create_volume) on Docker.
pub(super) async fn create_volume(
    docker: &Docker,
    name: &str,
    options: &[(String, String)],
    labels: &Labels,
) -> Result<String, EngineError> {
    let request = VolumeCreateRequest {
        name: Some(name.to_owned()),
        driver: Some("local".into()),
        driver_opts: (!options.is_empty()).then(|| options.iter().cloned().collect()),
        labels: Some(to_hash(labels)),
        ..Default::default()
    };
    let made = docker.client().create_volume(request).await.map_err(api)?;
    Ok(made.mountpoint)
}

/// [`ContainerEngine::volume`](crate::backend::ContainerEngine::volume) on Docker.
pub(super) async fn volume(docker: &Docker, name: &str) -> Result<Option<String>, EngineError> {
    match docker.client().inspect_volume(name).await.map_err(api) {
        Ok(v) => Ok(Some(v.mountpoint)),
        Err(EngineError::Gone(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`ContainerEngine::remove_volume`](crate::backend::ContainerEngine::remove_volume) on Docker.
pub(super) async fn remove_volume(docker: &Docker, name: &str) -> Result<(), EngineError> {
    let options = RemoveVolumeOptions { force: false };
    match docker
        .client()
        .remove_volume(name, Some(options))
        .await
        .map_err(api)
    {
        Ok(()) | Err(EngineError::Gone(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// [`ContainerEngine::list_volumes`](crate::backend::ContainerEngine::list_volumes) on Docker.
pub(super) async fn list_volumes(docker: &Docker, key: &str) -> Result<Vec<Listed>, EngineError> {
    let options = ListVolumesOptions {
        filters: Some(label_filter(key)),
    };
    let found = docker
        .client()
        .list_volumes(Some(options))
        .await
        .map_err(api)?;
    Ok(found
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| Listed {
            id: v.name,
            labels: v.labels.into_iter().collect(),
        })
        .collect())
}
