//! A container's streams: attaching to its standard input and output, and running a
//! command in it (its output, then its exit code).

use super::client::Docker;
use super::error::api;
use crate::backend::{Attached, Chunk, EngineError, ExecSpec, Execution};
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::AttachContainerOptions;
use futures_util::StreamExt;

/// An output item as a [`Chunk`] (`None` for echoed input).
pub(super) fn chunk(
    item: Result<LogOutput, bollard::errors::Error>,
) -> Option<Result<Chunk, EngineError>> {
    match item {
        Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
            Some(Ok(Chunk::Stdout(message)))
        }
        Ok(LogOutput::StdErr { message }) => Some(Ok(Chunk::Stderr(message))),
        Ok(LogOutput::StdIn { .. }) => None,
        Err(e) => Some(Err(api(e))),
    }
}

/// [`ContainerEngine::attach`](crate::backend::ContainerEngine::attach) on Docker.
pub(super) async fn attach(docker: &Docker, id: &str) -> Result<Attached, EngineError> {
    let options = AttachContainerOptions {
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let attached = docker
        .client()
        .attach_container(id, Some(options))
        .await
        .map_err(api)?;
    let output = attached
        .output
        .filter_map(|item| std::future::ready(chunk(item)))
        .boxed();
    Ok(Attached {
        input: attached.input,
        output,
    })
}

/// [`ContainerEngine::exec_start`](crate::backend::ContainerEngine::exec_start) on Docker.
pub(super) async fn exec_start(
    docker: &Docker,
    id: &str,
    spec: &ExecSpec,
) -> Result<Execution, EngineError> {
    let options = CreateExecOptions {
        cmd: Some(spec.argv.clone()),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        working_dir: spec.workdir.clone(),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec = docker
        .client()
        .create_exec(id, options)
        .await
        .map_err(api)?;
    let started = docker
        .client()
        .start_exec(&exec.id, Some(StartExecOptions::default()))
        .await
        .map_err(api)?;
    let output = match started {
        StartExecResults::Attached { output, .. } => output
            .filter_map(|item| std::future::ready(chunk(item)))
            .boxed(),
        StartExecResults::Detached => futures_util::stream::empty().boxed(),
    };
    Ok(Execution {
        id: exec.id,
        output,
    })
}

/// [`ContainerEngine::exec_exit_code`](crate::backend::ContainerEngine::exec_exit_code) on Docker.
pub(super) async fn exec_exit_code(docker: &Docker, exec: &str) -> Result<i64, EngineError> {
    let inspected = docker.client().inspect_exec(exec).await.map_err(api)?;
    Ok(inspected.exit_code.unwrap_or(-1))
}
