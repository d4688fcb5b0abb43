//! Images: inspected (present or not), pulled, and listed by label.

use super::client::{Docker, too_new};
use super::error::{api, root_cause};
use super::labels::label_filter;
use crate::backend::{EngineError, ImageInfo, ListedImage};
use bollard::query_parameters::{CreateImageOptions, ListImagesOptions};
use futures_util::StreamExt;

/// [`ContainerEngine::image`](crate::backend::ContainerEngine::image) on Docker.
pub(super) async fn image(docker: &Docker, image: &str) -> Result<Option<ImageInfo>, EngineError> {
    let mut inspected = docker.client().inspect_image(image).await;
    // The first call of a fully cached run: an engine that refuses the pinned
    // version is met here too.
    if matches!(&inspected, Err(e) if too_new(e)) && docker.negotiate().await.is_ok() {
        inspected = docker.client().inspect_image(image).await;
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

/// [`ContainerEngine::pull`](crate::backend::ContainerEngine::pull) on Docker.
pub(super) async fn pull(docker: &Docker, image: &str) -> Result<(), EngineError> {
    let options = CreateImageOptions {
        from_image: Some(image.to_owned()),
        ..Default::default()
    };
    let client = docker.client();
    let mut progress = client.create_image(Some(options), None, None);
    while let Some(item) = progress.next().await {
        item.map_err(|e| EngineError::ImageMissing {
            image: image.to_owned(),
            reason: root_cause(&e),
        })?;
    }
    Ok(())
}

/// [`ContainerEngine::images`](crate::backend::ContainerEngine::images) on Docker.
pub(super) async fn images(docker: &Docker, key: &str) -> Result<Vec<ListedImage>, EngineError> {
    let options = ListImagesOptions {
        filters: Some(label_filter(key)),
        ..Default::default()
    };
    let found = docker
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
