//! A session: the pool of warm environments and the OTLP receiver, which may outlive
//! one run (`watch` keeps one for all its cycles, so that a warm container waits for
//! the next save). A run in a session is planned here and handed to the dispatcher.

use super::dispatcher::{CancelReason, Dispatcher};
use super::events::{Event, ScenarioResult};
use super::images::{Ahead, Images, LastBuilds, make_builds, resolve_images, tag_builds};
use super::pool::{self, Pool, PoolConfig};
use super::queue::{Queue, cache_keys, queue_order};
use super::vantage::Vantage;
use super::worker::Ctx;
use super::{RunOptions, RunOutcome, SessionOptions, Stop, reap};
use crate::backend::ContainerEngine;
use crate::cache::Cache;
use crate::otel::{Receiver, ReceiverConfig};
use crate::plan::Plan;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::RwLock;
use tokio::sync::mpsc::UnboundedSender;

/// The pool and the OTLP receiver, which may outlive one run: `watch` keeps one
/// session for all its cycles, so that a warm container waits for the next save.
pub struct Session<E> {
    engine: Arc<E>,
    pool: Pool<E>,
    receiver: Option<Arc<Receiver>>,
    /// Why there is no receiver, when one was asked for.
    receiver_error: Option<String>,
    warnings: Vec<String>,
    /// In a session that watches ([`Session::remember_builds`]): the image each build
    /// last gave, which `develop` sync rules put changed files into.
    builds: Option<std::sync::Mutex<LastBuilds>>,
    /// Whether it makes networks ahead for its next run ([`Session::networks_ahead`]).
    networks_ahead: bool,
    /// The engine's container clnrm runs in, when it runs in one.
    container: Option<String>,
}

impl<E: ContainerEngine> Session<E> {
    /// Starts the receiver (when `otlp`) and an empty pool; `keep_warm` keeps one clean
    /// environment per key between runs.
    pub async fn start(engine: Arc<E>, opts: &SessionOptions, otlp: bool, keep_warm: bool) -> Self {
        let (vantage, note) = Vantage::detect(&*engine).await;
        let mut session = Self::start_at(engine, opts, otlp, keep_warm, vantage).await;
        session.warnings.extend(note);
        session
    }

    /// [`Session::start`] where clnrm stands at `vantage`.
    pub(crate) async fn start_at(
        engine: Arc<E>,
        opts: &SessionOptions,
        otlp: bool,
        keep_warm: bool,
        vantage: Vantage,
    ) -> Self {
        let (mut receiver, mut receiver_error, mut warnings) = (None, None, Vec::new());
        if otlp {
            match start_receiver(&*engine, &vantage).await {
                Ok(started) => {
                    receiver = Some(started.receiver);
                    warnings.extend(started.warning);
                }
                Err(e) => receiver_error = Some(e.to_string()),
            }
        }
        let config = PoolConfig {
            max_containers: opts.max_containers,
            // Room for the two rounds of environments wanted ahead (see `Slot`).
            parallel: opts.workers.max(2) * 2,
            warm: opts.warm_pool,
            keep_warm,
        };
        // What it makes says which container it runs in: the reaper of another
        // clnrm asks the engine whether that one still runs.
        let mut owner = opts.owner.clone();
        owner.container = vantage.container_id().map(str::to_owned);
        let container = owner.container.clone();
        let pool = Pool::new(
            engine.clone(),
            owner,
            config,
            receiver.clone(),
            Arc::new(vantage),
            super::scenario::run_setup::<E>,
        );
        Self {
            engine,
            pool,
            receiver,
            receiver_error,
            warnings,
            builds: None,
            networks_ahead: false,
            container,
        }
    }

    /// Removes what dead runs left on the engine (see [`reap`]), as `me` (whose
    /// container is this session's); how many containers and networks.
    pub async fn reap(
        &self,
        me: &super::RunOwner,
    ) -> Result<(usize, usize), crate::backend::EngineError> {
        let mut me = me.clone();
        me.container.clone_from(&self.container);
        reap(&*self.engine, &me).await
    }

    /// Makes empty networks after each run, in the background, for the next run's
    /// first environments (`clnrm watch`, whose saves change environments' keys).
    pub fn networks_ahead(mut self) -> Self {
        self.networks_ahead = true;
        self
    }

    /// Remembers, from run to run, the image each build last gave, so that `develop`
    /// sync rules can put changed files into it (`clnrm watch`).
    pub fn remember_builds(mut self) -> Self {
        self.builds = Some(std::sync::Mutex::default());
        self
    }

    /// Whether it remembers builds ([`Session::remember_builds`]).
    pub fn remembers_builds(&self) -> bool {
        self.builds.is_some()
    }

    /// The engine it runs on.
    pub fn engine(&self) -> &Arc<E> {
        &self.engine
    }

    /// What the user should know about how the session was set up.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Kills and removes every container and network of the session; returns what
    /// could not be removed (the next run reaps it).
    pub async fn shutdown(&self) -> pool::Leftovers {
        self.pool.shutdown().await
    }

    /// What the session has not removed (yet).
    pub fn leftovers(&self) -> pool::Leftovers {
        self.pool.leftovers()
    }

    /// Runs the selected scenarios of `plan`. `stop.interrupt` stops dispatching and
    /// interrupts running scenarios; `stop.force` (a second interrupt) stops waiting
    /// for them at all. The run's dispatcher owns `cache` (scenarios it has a pass
    /// for are not run, each result is recorded in it) and gives it back in the
    /// outcome, for the caller to save.
    pub async fn run(
        &self,
        plan: Plan,
        opts: &RunOptions,
        mut cache: Option<Cache>,
        events: UnboundedSender<Event>,
        stop: Stop,
    ) -> RunOutcome {
        let cancel = stop.interrupt.clone();
        let engine = &self.engine;
        let started = Instant::now();
        let workers = opts.workers.max(1);
        let _ = events.send(Event::RunStarted {
            run_id: opts.owner.run_id.clone(),
            total: plan.selected().count(),
            workers,
        });
        let mut plan = plan;
        let mut images = tokio::select! {
            images = resolve_images(&**engine, &plan) => images,
            // Interrupted while the engine is asked (a slow pull, a stalled engine).
            () = cancel.cancelled() => Images::default(),
        };
        let mut last = self.builds.as_ref().map(|b| {
            std::mem::take(&mut *b.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
        });
        tag_builds(&**engine, &mut plan, &mut images, last.as_ref()).await;
        let keys = cache_keys(
            &plan,
            &images.ids,
            opts.baseline.as_deref(),
            opts.inputs.as_deref(),
        );
        let otlp_error = match (&self.receiver, &self.receiver_error) {
            (Some(_), _) => None,
            (None, Some(why)) => Some(why.clone()),
            (None, None) => Some(
                "this session has no OTLP receiver (the file began exporting over OTLP after it started)".to_owned(),
            ),
        };
        let (order, hits) = queue_order(&plan, &keys, opts, cache.as_mut());
        // Only what runs needs its image built.
        let ahead = tokio::select! {
            (_, ahead) = make_builds(engine, &plan, &order, &mut images, workers, &events, last.as_mut()) => ahead,
            () = cancel.cancelled() => Ahead::default(),
        };
        let Images {
            shells,
            errors: image_errors,
            ids: _,
        } = images;
        self.pool.set_agent_shells(shells);
        // What dead runs left is removed before this run starts containers (a run that
        // starts none, all cached, does not wait for it).
        let reaped = async {
            if order.is_empty() {
                return None;
            }
            tokio::select! {
                r = self.reap(&opts.owner) => r.ok(),
                () = cancel.cancelled() => None,
            }
        };
        if let Some((containers, networks)) = reaped.await
            && containers + networks > 0
        {
            let _ = events.send(Event::Reaped {
                containers,
                networks,
            });
        }
        let env_keys: Vec<String> = plan.scenarios.iter().map(|s| s.env.key.clone()).collect();
        // Whether environments with networks of their own run (for networks ahead).
        let made_networks = order
            .iter()
            .any(|&i| plan.scenarios[i].env.network == crate::plan::NetworkNeed::Private);
        let plan = Arc::new(plan);
        let ctx = Arc::new(Ctx {
            file_locks: (0..plan.files.len())
                .map(|_| Arc::new(RwLock::new(())))
                .collect(),
            plan: plan.clone(),
            pool: self.pool.clone(),
            receiver: self.receiver.clone(),
            image_errors,
            ahead: ahead.builds.clone(),
            otlp_error,
            artifacts: opts.artifacts.clone(),
            baseline: opts.baseline.clone(),
            run_id: opts.owner.run_id.clone(),
            started,
        });
        let mut dispatcher = Dispatcher {
            ctx,
            queue: Queue::new(order, &env_keys),
            results: vec![None; plan.scenarios.len()],
            keys,
            cache,
            events,
            workers,
            fail_fast: opts.fail_fast,
            retries: opts.retries,
            earlier: vec![Vec::new(); plan.scenarios.len()],
            reason: CancelReason::None,
        };
        for &i in &hits {
            dispatcher.finish(i, ScenarioResult::cached(&plan.scenarios[i], &plan));
        }
        for sc in plan.scenarios.iter().filter(|s| s.not_selected.is_some()) {
            dispatcher.finish(sc.order, ScenarioResult::not_selected(sc, &plan));
        }
        let outcome = dispatcher.run(stop).await;
        // Builds made ahead of their scenarios: the images the next save starts from
        // (their scenarios waited for them, unless they did not run); an interrupt
        // stops them (dropped, `ahead` aborts what still runs).
        for build in ahead.builds.values() {
            let made = tokio::select! {
                made = build.clone() => made,
                () = cancel.cancelled() => break,
            };
            if let (Ok((id, made)), Some(last)) = (made, last.as_mut()) {
                last.insert(id, made);
            }
        }
        drop(ahead);
        if let (Some(keep), Some(last)) = (&self.builds, last) {
            *keep
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = last;
        }
        // A snapshot only this run may use is not kept for the next one.
        self.pool.remove_own_snapshots().await;
        // Networks for the next run's first environments (a session that watches).
        if self.networks_ahead && made_networks && !cancel.is_cancelled() {
            self.pool.stock_networks(workers + 1);
        }
        outcome
    }
}

/// Why a session has no OTLP receiver.
#[derive(Debug, thiserror::Error)]
enum ReceiverError {
    /// The run token could not be drawn.
    #[error("no random source for the run token: {0}")]
    Token(#[source] std::io::Error),
    /// The receiver could not listen.
    #[error("could not start the OTLP receiver: {0}")]
    Listen(#[source] std::io::Error),
}

/// A started receiver and what the user should know about it.
struct Started {
    receiver: Arc<Receiver>,
    warning: Option<String>,
}

/// Starts the OTLP receiver with a fresh token on loopback and the engine's bridge
/// gateway (where containers reach this host). When that gateway is no address of this
/// host (a remote or rootless engine), it listens on every interface, still behind
/// the token, and says so. In one of the engine's containers, it listens on every
/// interface of that container (the networks clnrm joins), behind the token.
async fn start_receiver<E: ContainerEngine>(
    engine: &E,
    vantage: &Vantage,
) -> Result<Started, ReceiverError> {
    let token = ReceiverConfig::random_token().map_err(ReceiverError::Token)?;
    let local: std::net::IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
    let gateway = if vantage.joins_networks() {
        None
    } else {
        engine
            .network_gateway(crate::backend::DEFAULT_NETWORK)
            .await
            .ok()
            .flatten()
    };
    let mut why = "the engine did not name its bridge gateway".to_owned();
    if let Some(gw) = gateway {
        let config = ReceiverConfig {
            listen: vec![local, gw],
            token: Some(token.clone()),
            advertise: Some(gw),
        };
        match Receiver::start(config).await {
            Ok(r) => {
                return Ok(Started {
                    receiver: Arc::new(r),
                    warning: None,
                });
            }
            Err(e) => why = format!("cannot listen on its bridge gateway {gw} ({e})"),
        }
    }
    let config = ReceiverConfig {
        listen: vec![std::net::Ipv4Addr::UNSPECIFIED.into()],
        token: Some(token),
        advertise: None,
    };
    let receiver = Receiver::start(config)
        .await
        .map_err(ReceiverError::Listen)?;
    Ok(Started {
        receiver: Arc::new(receiver),
        warning: (!vantage.joins_networks()).then(|| format!(
            "the OTLP receiver listens on every interface, behind the run's token: {why} (a remote or rootless engine?)"
        )),
    })
}
