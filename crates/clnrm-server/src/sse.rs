//! `GET /runs/{id}/events`: Server-Sent Events. Every stored event of the run from
//! the start (or after `Last-Event-ID`), then the new ones as workers store them (woken
//! at once in this process, by polling the store for workers elsewhere); the stream
//! ends once the run has ended and everything was sent, with `run.finished`.

use crate::problem::Problem;
use crate::store::{Scope, Store, is_final};
use crate::{App, auth};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How often the store is asked for events stored by other processes.
const POLL: Duration = Duration::from_millis(200);

/// The SSE name of a stored event: its `event` field with the first `_` made `.`
/// (`scenario_finished` → `scenario.finished`).
pub fn name_of(data: &str) -> String {
    let kind = serde_json::from_str::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v["event"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "message".into());
    kind.replacen('_', ".", 1)
}

struct Follow<S> {
    app: Arc<App<S>>,
    /// This stream's place among the process's streams (given back when it ends).
    _slot: tokio::sync::OwnedSemaphorePermit,
    id: String,
    after: i64,
    pending: VecDeque<(i64, String)>,
    wake: tokio::sync::broadcast::Receiver<String>,
    finished_sent: bool,
    done: bool,
}

/// The handler.
#[utoipa::path(get, path = "/api/v1/runs/{id}/events", tag = "runs",
    params(("id" = String, Path, description = "run id"), ("Last-Event-ID" = Option<String>, Header, description = "resume after this event")),
    responses((status = 200, description = "Server-Sent Events: run.started, scenario.started, step.finished, scenario.retrying, scenario.finished, run.finished; data: the event as JSON", body = String, content_type = "text/event-stream"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "too many event streams open", body = crate::problem::ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn events<S: Store>(
    State(app): State<Arc<App<S>>>,
    axum::extract::Extension(granted): axum::extract::Extension<auth::Granted>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Problem> {
    auth::need(granted, Scope::Read)?;
    if app.store.run(&id).await?.is_none() {
        return Err(Problem::not_found(format!("no run \"{id}\"")));
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let slot = app.streams.clone().try_acquire_owned().map_err(|_| {
        Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this server already serves {} event streams; try again later",
                crate::MAX_STREAMS
            ),
        )
    })?;
    let wake = app.appended.subscribe();
    let state = Follow {
        _slot: slot,
        app,
        id,
        after,
        pending: VecDeque::new(),
        wake,
        finished_sent: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        let event = next(&mut st).await?;
        Some((Ok(event), st))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn next<S: Store>(st: &mut Follow<S>) -> Option<SseEvent> {
    loop {
        if let Some((seq, data)) = st.pending.pop_front() {
            let name = name_of(&data);
            st.finished_sent |= name == "run.finished";
            return Some(
                SseEvent::default()
                    .id(seq.to_string())
                    .event(name)
                    .data(data),
            );
        }
        if st.done {
            return None;
        }
        match st.app.store.events(&st.id, st.after, 500).await {
            Ok(batch) if !batch.is_empty() => {
                st.after = batch.last().map_or(st.after, |b| b.0);
                st.pending.extend(batch);
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                st.done = true;
                return Some(SseEvent::default().event("error").data(e.to_string()));
            }
        }
        // Nothing new: the run may have ended (then, once more for what came meanwhile).
        // A store that cannot say (its database away) ends the stream with an error,
        // never with a finish the run did not reach; the client follows again.
        let status = match st.app.store.run(&st.id).await {
            Ok(run) => run.map(|r| r.status),
            Err(e) => {
                st.done = true;
                return Some(SseEvent::default().event("error").data(e.to_string()));
            }
        };
        if status.as_deref().is_none_or(is_final) {
            if let Ok(batch) = st.app.store.events(&st.id, st.after, 500).await
                && !batch.is_empty()
            {
                st.after = batch.last().map_or(st.after, |b| b.0);
                st.pending.extend(batch);
                continue;
            }
            st.done = true;
            if !st.finished_sent {
                // A run cancelled before it started has no events of its own.
                let data = serde_json::json!({
                    "event": "run_finished",
                    "duration_ms": 0,
                    "interrupted": true,
                    "status": status,
                });
                return Some(
                    SseEvent::default()
                        .event("run.finished")
                        .data(data.to_string()),
                );
            }
            return None;
        }
        let id = st.id.clone();
        let woken = async {
            loop {
                match st.wake.recv().await {
                    Ok(run) if run == id => return,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        let stopping = st.app.stopping.clone();
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(POLL) => {}
            () = stopping.cancelled() => {
                st.done = true;
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stored_events_are_named_with_a_dot() {
        assert_eq!(
            super::name_of(r#"{"event":"scenario_finished"}"#),
            "scenario.finished"
        );
        assert_eq!(super::name_of(r#"{"event":"run_started"}"#), "run.started");
        assert_eq!(super::name_of("junk"), "message");
    }
}
