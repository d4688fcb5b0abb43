//! Reaching the engine: the client at `DOCKER_HOST` (else the local socket), the API
//! version pinned to 1.41, and negotiating another one with an engine that refuses it.

use super::error::root_cause;
use crate::backend::EngineError;
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
    pub(super) async fn negotiate(&self) -> Result<(), bollard::errors::Error> {
        let negotiated = self.client().negotiate_version().await?;
        *self
            .api
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = negotiated;
        Ok(())
    }

    /// The client (a cheap clone).
    pub(in crate::backend) fn client(&self) -> bollard::Docker {
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
pub(super) fn too_new(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 400, message }
        if message.contains("version"))
}

/// [`ContainerEngine::ping`](crate::backend::ContainerEngine::ping) on Docker.
pub(super) async fn ping(docker: &Docker) -> Result<(), EngineError> {
    let unreachable = |e: &bollard::errors::Error| EngineError::Unreachable {
        address: docker.address.clone(),
        reason: root_cause(e),
    };
    let client = docker.client();
    match client.ping().await {
        Ok(_) => Ok(()),
        // The engine answered but refused the pinned version (an engine older
        // than Docker 20.10): negotiate, and use that from now on.
        Err(bollard::errors::Error::DockerResponseServerError { .. }) => {
            docker.negotiate().await.map_err(|e| unreachable(&e))
        }
        Err(e) => Err(unreachable(&e)),
    }
}
