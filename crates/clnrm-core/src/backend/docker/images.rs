//! Images: inspected (present or not), pulled, and listed by label.

use super::client::{Docker, too_new};
use super::error::{api, root_cause};
use super::labels::label_filter;
use crate::backend::{
    BUILD_OUTPUT_CAP, BuildOutcome, BuildSpec, EngineError, ImageInfo, ListedImage,
};
use bollard::query_parameters::{BuildImageOptions, CreateImageOptions, ListImagesOptions};
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
                triggers: cfg.on_build.map_or(0, |t| t.len()),
                labels: cfg.labels.unwrap_or_default().into_iter().collect(),
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

/// [`ContainerEngine::build`](crate::backend::ContainerEngine::build) on Docker: the
/// classic builder (Docker 20.10 and Podman's compatible API both have it), its
/// intermediate containers removed whatever happens.
pub(super) async fn build(
    docker: &Docker,
    spec: &BuildSpec,
    context: Vec<u8>,
) -> Result<BuildOutcome, EngineError> {
    let context = bytes::Bytes::from(context);
    let first = build_once(docker, spec, context.clone()).await?;
    // A layer of the builder's cache removed under the build (another build's image
    // removed with its untagged parents, a `docker image prune`): the cache no longer
    // has it, so building again makes the step afresh.
    match first {
        BuildOutcome::Failed { message, output } if lost_cache_layer(&message) => {
            let again = build_once(docker, spec, context).await?;
            // The first attempt stays in the output, said for what it was.
            let with_note = |then: String| {
                let mut all = format!(
                    "{output}\n(the builder lost a cached layer: {message}; built again)\n{then}"
                );
                trim_to_tail(&mut all);
                all
            };
            Ok(match again {
                BuildOutcome::Built { id, output } => BuildOutcome::Built {
                    id,
                    output: with_note(output),
                },
                BuildOutcome::Failed { message, output } => BuildOutcome::Failed {
                    message,
                    output: with_note(output),
                },
            })
        }
        other => Ok(other),
    }
}

/// Whether a build failed because a cached layer it was using went away.
fn lost_cache_layer(message: &str) -> bool {
    message.contains("unknown parent image ID")
}

async fn build_once(
    docker: &Docker,
    spec: &BuildSpec,
    context: bytes::Bytes,
) -> Result<BuildOutcome, EngineError> {
    let options = BuildImageOptions {
        dockerfile: spec.dockerfile.clone(),
        t: Some(spec.tag.clone()),
        target: spec.target.clone().unwrap_or_default(),
        buildargs: Some(spec.args.clone().into_iter().collect()),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let client = docker.client();
    let mut progress = client.build_image(options, None, Some(bollard::body_full(context)));
    let mut output = String::new();
    let mut id = None;
    while let Some(item) = progress.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                trim_to_tail(&mut output);
                return Ok(BuildOutcome::Failed {
                    message: error,
                    output,
                });
            }
            Err(e) => return Err(api(e)),
        };
        if let Some(text) = info.stream.as_deref().or(info.status.as_deref()) {
            keep_tail(&mut output, text);
        }
        if let Some(detail) = info.error_detail {
            trim_to_tail(&mut output);
            return Ok(BuildOutcome::Failed {
                message: detail.message.unwrap_or_default(),
                output,
            });
        }
        if let Some(aux) = info.aux.and_then(|a| a.id) {
            id = Some(aux);
        }
    }
    // Podman's compatible API says the id only in the output: ask for it.
    let id = match id {
        Some(id) => id,
        None => match image(docker, &spec.tag).await? {
            Some(found) => found.id,
            None => {
                trim_to_tail(&mut output);
                return Ok(BuildOutcome::Failed {
                    message: format!("the builder ended without making {}", spec.tag),
                    output,
                });
            }
        },
    };
    trim_to_tail(&mut output);
    Ok(BuildOutcome::Built { id, output })
}

/// Adds `text` to `output`, keeping its last [`BUILD_OUTPUT_CAP`] bytes (or a few
/// more, up to a character boundary); trimmed only once it holds twice that, so a
/// long build does not move the kept text at every line.
fn keep_tail(output: &mut String, text: &str) {
    output.push_str(text);
    if output.len() > 2 * BUILD_OUTPUT_CAP {
        trim_to_tail(output);
    }
}

/// `output` cut to its last [`BUILD_OUTPUT_CAP`] bytes, at a character boundary.
fn trim_to_tail(output: &mut String) {
    if output.len() > BUILD_OUTPUT_CAP {
        let mut cut = output.len() - BUILD_OUTPUT_CAP;
        while !output.is_char_boundary(cut) {
            cut += 1;
        }
        output.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lost_cache_layer_is_built_again() {
        assert!(lost_cache_layer(
            "unknown parent image ID sha256:a3d615231216e2d152dbf91c8a3e5f2e2c73aefb2d82ae9a695692cfcb583bd7"
        ));
        assert!(!lost_cache_layer(
            "The command '/bin/sh -c false' returned a non-zero code: 1"
        ));
    }

    #[test]
    fn a_long_output_keeps_its_end_whole_characters_and_no_more_than_the_cap() {
        let mut out = String::new();
        for i in 0..40_000 {
            keep_tail(&mut out, &format!("step {i} é\n"));
        }
        assert!(out.len() <= 2 * BUILD_OUTPUT_CAP);
        trim_to_tail(&mut out);
        assert!(out.len() <= BUILD_OUTPUT_CAP);
        assert!(out.ends_with("step 39999 é\n"));
        let mut short = "a".to_owned();
        trim_to_tail(&mut short);
        assert_eq!(short, "a");
    }
}
