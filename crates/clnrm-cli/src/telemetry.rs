//! clnrm's own telemetry: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, a run is exported as a `clnrm.run` span
//! with a `clnrm.scenario` child per scenario and a `clnrm.step` grandchild per step,
//! through opentelemetry-otlp (`OTEL_EXPORTER_OTLP_PROTOCOL` `grpc`, else HTTP
//! protobuf). Built from the run's events, so it never slows the run down.

use clnrm_core::exec::{Event, ScenarioResult, StepResult};
use clnrm_core::plan::ScenarioId;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, SystemTime};

/// Spans of one run, exported when it ends.
pub struct Telemetry {
    trace_id: TraceId,
    run_span: SpanId,
    run_start: SystemTime,
    run_attrs: Vec<KeyValue>,
    scenario_spans: HashMap<ScenarioId, (SpanId, SystemTime)>,
    spans: Vec<SpanData>,
    ids: RandomState,
    counter: u64,
}

/// Whether the environment asks for clnrm's own spans.
pub fn wanted() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
}

impl Telemetry {
    /// An empty recording.
    pub fn new() -> Self {
        let ids = RandomState::new();
        let hi = ids.hash_one(("trace", std::process::id()));
        let lo = ids.hash_one(("trace-lo", SystemTime::now()));
        let mut t = Self {
            trace_id: TraceId::from_bytes(((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes()),
            run_span: SpanId::INVALID,
            run_start: SystemTime::now(),
            run_attrs: Vec::new(),
            scenario_spans: HashMap::new(),
            spans: Vec::new(),
            ids,
            counter: 0,
        };
        t.run_span = t.next_id();
        t
    }

    fn next_id(&mut self) -> SpanId {
        self.counter += 1;
        let id = self.ids.hash_one(self.counter).max(1);
        SpanId::from_bytes(id.to_be_bytes())
    }

    /// Records one event.
    pub fn event(&mut self, event: &Event) {
        let now = SystemTime::now();
        match event {
            Event::RunStarted {
                run_id,
                total,
                workers,
            } => {
                self.run_start = now;
                self.run_attrs = vec![
                    KeyValue::new("clnrm.run.id", run_id.clone()),
                    KeyValue::new("clnrm.run.scenarios", *total as i64),
                    KeyValue::new("clnrm.run.workers", *workers as i64),
                ];
            }
            Event::ScenarioStarted { id } => {
                let span = self.next_id();
                self.scenario_spans.insert(id.clone(), (span, now));
            }
            Event::StepFinished { id, step } => self.step(id, step, now),
            Event::ScenarioFinished(r) | Event::Retrying(r) => self.scenario(r, now),
            Event::RunFinished { interrupted, .. } => {
                let mut attrs = self.run_attrs.clone();
                attrs.push(KeyValue::new("clnrm.run.interrupted", *interrupted));
                let (run, start) = (self.run_span, self.run_start);
                let data = self.data(
                    "clnrm.run",
                    run,
                    SpanId::INVALID,
                    start,
                    now,
                    attrs,
                    Status::Unset,
                );
                self.spans.push(data);
            }
            Event::Reaped { .. } | Event::ImageBuilt { .. } => {}
        }
    }

    fn step(&mut self, id: &ScenarioId, step: &StepResult, now: SystemTime) {
        let Some(&(parent, _)) = self.scenario_spans.get(id) else {
            return;
        };
        let span = self.next_id();
        let start = now.checked_sub(step.duration).unwrap_or(now);
        let mut attrs = vec![
            KeyValue::new("clnrm.scenario.id", id.0.clone()),
            KeyValue::new("clnrm.step.name", step.name.clone()),
            KeyValue::new("clnrm.step.command", step.command.clone()),
            KeyValue::new("clnrm.step.status", step.status.as_str()),
            KeyValue::new("container.id", step.container.clone()),
        ];
        if let Some(code) = step.exit_code {
            attrs.push(KeyValue::new("process.exit_code", code));
        }
        let status = status_of(step.status.as_str(), step.message.as_deref());
        let data = self.data("clnrm.step", span, parent, start, now, attrs, status);
        self.spans.push(data);
    }

    fn scenario(&mut self, r: &ScenarioResult, now: SystemTime) {
        let (span, start) = match self.scenario_spans.get(&r.id) {
            Some(&(span, start)) => (span, start),
            None => (self.next_id(), now),
        };
        let mut attrs = vec![
            KeyValue::new("clnrm.scenario.id", r.id.0.clone()),
            KeyValue::new("clnrm.scenario.status", r.status.as_str()),
            KeyValue::new("clnrm.scenario.spans", r.spans as i64),
        ];
        if let Some(reason) = r.reason {
            attrs.push(KeyValue::new("clnrm.scenario.reason", reason.as_str()));
        }
        if let Some(step) = r.steps.iter().find(|s| !s.container.is_empty()) {
            attrs.push(KeyValue::new("container.id", step.container.clone()));
        }
        let status = status_of(r.status.as_str(), r.message.as_deref());
        let run = self.run_span;
        let data = self.data("clnrm.scenario", span, run, start, now, attrs, status);
        self.spans.push(data);
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one SpanData has this many parts"
    )]
    fn data(
        &self,
        name: &'static str,
        span: SpanId,
        parent: SpanId,
        start: SystemTime,
        end: SystemTime,
        attributes: Vec<KeyValue>,
        status: Status,
    ) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                self.trace_id,
                span,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: parent,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: name.into(),
            start_time: start,
            end_time: end.max(start),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: InstrumentationScope::builder("clnrm")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        }
    }

    /// Exports the recorded spans; an error says why (the run's outcome is unaffected).
    /// [`Telemetry::export`] from a blocking thread of the runtime.
    pub fn export_blocking(self) -> Result<usize, ExportError> {
        tokio::runtime::Handle::current().block_on(self.export())
    }

    /// Exports the recorded spans; how many.
    pub async fn export(self) -> Result<usize, ExportError> {
        let grpc = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .is_ok_and(|p| p.trim() == "grpc");
        let built = if grpc {
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
        } else {
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()
        };
        let mut exporter = built?;
        exporter.set_resource(&Resource::builder_empty().with_service_name("clnrm").build());
        let count = self.spans.len();
        let export = exporter.export(self.spans);
        match tokio::time::timeout(Duration::from_secs(10), export).await {
            Ok(Ok(())) => Ok(count),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(ExportError::Timeout),
        }
    }
}

/// Why clnrm's own spans were not exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The exporter could not be made from the `OTEL_EXPORTER_OTLP_*` settings.
    #[error(transparent)]
    Build(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The collector refused the spans, or could not be reached.
    #[error(transparent)]
    Export(#[from] opentelemetry_sdk::error::OTelSdkError),
    /// The collector did not answer in time.
    #[error("no answer within 10 s")]
    Timeout,
}

fn status_of(word: &str, message: Option<&str>) -> Status {
    match word {
        "passed" | "cached" => Status::Ok,
        "failed" | "error" => Status::error(message.unwrap_or(word).to_owned()),
        _ => Status::Unset,
    }
}
