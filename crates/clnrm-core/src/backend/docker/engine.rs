//! [`ContainerEngine`] for [`Docker`]: each call handed to the file of its job.

use super::client::{self, Docker};
use super::{containers, exec, images, logs, networks, volumes};
use crate::backend::{
    Attached, ContainerEngine, ContainerSpec, ContainerState, ContainerView, Details, EngineError,
    ExecSpec, Execution, ImageInfo, Labels, Listed, ListedImage,
};
use std::time::Duration;

impl ContainerEngine for Docker {
    async fn ping(&self) -> Result<(), EngineError> {
        client::ping(self).await
    }

    async fn image(&self, image: &str) -> Result<Option<ImageInfo>, EngineError> {
        images::image(self, image).await
    }

    async fn pull(&self, image: &str) -> Result<(), EngineError> {
        images::pull(self, image).await
    }

    async fn create_network(&self, name: &str, labels: &Labels) -> Result<String, EngineError> {
        networks::create_network(self, name, labels).await
    }

    async fn network_containers(&self, id: &str) -> Result<Vec<String>, EngineError> {
        networks::network_containers(self, id).await
    }

    async fn network_gateway(
        &self,
        network: &str,
    ) -> Result<Option<std::net::IpAddr>, EngineError> {
        networks::network_gateway(self, network).await
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        networks::remove_network(self, id).await
    }

    async fn connect(
        &self,
        network: &str,
        container: &str,
    ) -> Result<Option<std::net::IpAddr>, EngineError> {
        networks::connect(self, network, container).await
    }

    async fn disconnect(&self, network: &str, container: &str) -> Result<(), EngineError> {
        networks::disconnect(self, network, container).await
    }

    async fn container_view(&self, id: &str) -> Result<Option<ContainerView>, EngineError> {
        containers::view(self, id).await
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        containers::create(self, spec).await
    }

    async fn attach(&self, id: &str) -> Result<Attached, EngineError> {
        exec::attach(self, id).await
    }

    async fn start(&self, id: &str) -> Result<(), EngineError> {
        containers::start(self, id).await
    }

    async fn exec_start(&self, id: &str, spec: &ExecSpec) -> Result<Execution, EngineError> {
        exec::exec_start(self, id, spec).await
    }

    async fn exec_exit_code(&self, exec: &str) -> Result<i64, EngineError> {
        exec::exec_exit_code(self, exec).await
    }

    async fn inspect(&self, id: &str) -> Result<ContainerState, EngineError> {
        containers::inspect(self, id).await
    }

    async fn stdout_log(&self, id: &str) -> Result<Vec<u8>, EngineError> {
        logs::stdout_log(self, id).await
    }

    async fn log_tail(&self, id: &str, lines: usize) -> Result<Vec<u8>, EngineError> {
        logs::log_tail(self, id, lines).await
    }

    async fn log(&self, id: &str, cap: usize) -> Result<Vec<u8>, EngineError> {
        logs::log(self, id, cap).await
    }

    async fn details(&self, id: &str) -> Result<Details, EngineError> {
        containers::details(self, id).await
    }

    async fn changes(&self, id: &str) -> Result<Vec<String>, EngineError> {
        containers::changes(self, id).await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), EngineError> {
        containers::stop(self, id, grace).await
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

    async fn relabel(
        &self,
        image: &str,
        tag: &str,
        labels: &Labels,
    ) -> Result<String, EngineError> {
        self.relabel_image(image, tag, labels).await
    }

    async fn put_files(&self, id: &str, files: Vec<u8>) -> Result<(), EngineError> {
        let options = bollard::query_parameters::UploadToContainerOptions {
            path: "/".to_owned(),
            ..Default::default()
        };
        self.client()
            .upload_to_container(id, Some(options), bollard::body_full(files.into()))
            .await
            .map_err(super::api)
    }

    async fn tag_image(&self, image: &str, tag: &str) -> Result<(), EngineError> {
        let (repo, version) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
        let options = bollard::query_parameters::TagImageOptions {
            repo: Some(repo.to_owned()),
            tag: Some(version.to_owned()),
        };
        self.client()
            .tag_image(image, Some(options))
            .await
            .map_err(super::api)
    }

    async fn images(&self, key: &str) -> Result<Vec<ListedImage>, EngineError> {
        images::images(self, key).await
    }

    async fn remove_image(&self, id: &str) -> Result<(), EngineError> {
        self.remove_image_quietly(id).await
    }

    async fn build(
        &self,
        spec: &crate::backend::BuildSpec,
        context: Vec<u8>,
    ) -> Result<crate::backend::BuildOutcome, EngineError> {
        images::build(self, spec, context).await
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
        containers::remove(self, id).await
    }

    async fn list(&self, key: &str) -> Result<Vec<Listed>, EngineError> {
        containers::list(self, key).await
    }

    async fn list_networks(&self, key: &str) -> Result<Vec<Listed>, EngineError> {
        networks::list_networks(self, key).await
    }

    async fn create_volume(
        &self,
        name: &str,
        options: &[(String, String)],
        labels: &Labels,
    ) -> Result<String, EngineError> {
        volumes::create_volume(self, name, options, labels).await
    }

    async fn volume(&self, name: &str) -> Result<Option<String>, EngineError> {
        volumes::volume(self, name).await
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        volumes::remove_volume(self, name).await
    }

    async fn list_volumes(&self, key: &str) -> Result<Vec<Listed>, EngineError> {
        volumes::list_volumes(self, key).await
    }
}
