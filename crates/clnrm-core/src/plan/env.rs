//! The environment a scenario runs in: its services, the network between them and
//! the OTLP export they are given, keyed so that scenarios with the same environment
//! can share warm containers.

use super::encoding::encode;
use super::otel::{OtlpSettings, otlp_settings};
use super::services::ServiceSpec;
use crate::digest::hex;
use crate::model::{Exporter, TestFile};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How the containers of an environment are connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkNeed {
    /// Loopback only: one service, no ports, no OTLP export.
    None,
    /// The default bridge: published ports or an OTLP exporter to reach.
    Bridge,
    /// A network of its own where services reach each other by id.
    Private,
}

/// The containers a scenario runs in. Scenarios with equal keys can share warm
/// containers (one at a time).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct EnvSpec {
    /// Hash of everything below.
    #[serde(skip)]
    pub key: String,
    /// Services, sorted by id.
    pub services: Vec<ServiceSpec>,
    /// Network.
    pub network: NetworkNeed,
    /// OTLP export settings given to every container, when the file exports over OTLP.
    pub otlp: Option<OtlpSettings>,
}

pub(super) fn env_spec(file: &TestFile, services: Vec<ServiceSpec>) -> EnvSpec {
    let exports_otlp = file
        .otel
        .as_ref()
        .and_then(|o| o.exporter.as_ref())
        .is_some_and(|e| {
            matches!(
                e.value,
                Exporter::Otlp | Exporter::OtlpHttp | Exporter::OtlpGrpc
            )
        });
    let network = if services.len() > 1 {
        NetworkNeed::Private
    } else if exports_otlp || services.iter().any(|s| !s.ports.is_empty()) {
        NetworkNeed::Bridge
    } else {
        NetworkNeed::None
    };
    let otlp = exports_otlp.then(|| otlp_settings(file));
    let mut env = EnvSpec {
        key: String::new(),
        services,
        network,
        otlp,
    };
    env.rekey();
    env
}

impl EnvSpec {
    /// Sets [`EnvSpec::key`] from the rest.
    pub fn rekey(&mut self) {
        let mut hasher = Sha256::new();
        hasher.update(encode(&(self.network, &self.services, &self.otlp)).as_bytes());
        self.key = hex(&hasher.finalize()[..8]);
    }
}
