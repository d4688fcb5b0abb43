//! [`ContainerEngine`](super::ContainerEngine) over the Docker engine API through
//! bollard. Honours `DOCKER_HOST` (a Podman socket works the same way) and negotiates
//! the API version, so Docker 20.10 (API 1.41) and newer engines answer alike.
//!
//! `client` reaches the engine and settles the API version; `engine` implements the
//! trait by handing each call to the file of its job: `containers`, `exec` (attach and
//! exec), `logs`, `images`, `networks` and `volumes`; `error` reads the engine's errors (and
//! Podman's words), `labels` puts labels in bollard's shapes.

mod client;
mod containers;
mod engine;
mod error;
mod exec;
mod images;
mod labels;
mod logs;
mod networks;
mod volumes;

pub use client::Docker;
pub(super) use error::api;
pub(super) use labels::to_hash;
