//! A container's log: its stdout alone, the tail of both streams, or all of it with
//! timestamps, each capped.

use super::client::Docker;
use super::exec::chunk;
use crate::backend::{Chunk, EngineError};
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;

impl Docker {
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

/// [`ContainerEngine::stdout_log`](crate::backend::ContainerEngine::stdout_log) on Docker.
pub(super) async fn stdout_log(docker: &Docker, id: &str) -> Result<Vec<u8>, EngineError> {
    let options = LogsOptions {
        stdout: true,
        tail: "all".into(),
        ..Default::default()
    };
    let client = docker.client();
    let mut stream = client.logs(id, Some(options));
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        if let Some(Ok(Chunk::Stdout(b))) = chunk(item) {
            crate::backend::push_capped(&mut out, &b);
        }
    }
    Ok(out)
}

/// [`ContainerEngine::log_tail`](crate::backend::ContainerEngine::log_tail) on Docker.
pub(super) async fn log_tail(
    docker: &Docker,
    id: &str,
    lines: usize,
) -> Result<Vec<u8>, EngineError> {
    docker
        .read_log(id, lines.to_string(), false, crate::backend::LOG_TAIL_CAP)
        .await
}

/// [`ContainerEngine::log`](crate::backend::ContainerEngine::log) on Docker.
pub(super) async fn log(docker: &Docker, id: &str, cap: usize) -> Result<Vec<u8>, EngineError> {
    docker.read_log(id, "all".into(), true, cap).await
}
