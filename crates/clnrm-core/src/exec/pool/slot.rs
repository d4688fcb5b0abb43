//! The environments of one key: the channel they arrive on and the counts that decide
//! how many to prepare. Every change to the counts happens here, each under the one
//! lock, so that they always add up: `supply` environments will arrive on the channel
//! (prepared, being prepared or being checked), `waiting` claims wait for one,
//! `in_use` are held by scenarios, `ahead` are wanted for scenarios soon to come.

use super::{Env, PoolError, lock};
use crate::plan::EnvSpec;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OnceCell, mpsc};

#[derive(Default)]
struct Counts {
    /// Environments that will arrive on the channel (ready, preparing or being checked).
    supply: usize,
    /// Scenarios waiting for one.
    waiting: usize,
    /// Environments wanted beyond the waiting scenarios, for the scenarios due next
    /// (one per worker).
    ahead: usize,
    /// The same for the scenarios due after those (one more per worker): prepared
    /// too when this key's environments never come back ([`Counts::target`]).
    further: usize,
    /// Whether this key's environments come back for reuse, once one has been taken.
    returns: Option<bool>,
    /// Environments of this key that scenarios hold now and that may come back for
    /// the next ones (those of services all driven by clnrm's shell; a database's
    /// never does, so one wanted ahead is prepared while its scenario runs).
    in_use: usize,
    /// What to prepare them from.
    spec: Option<Arc<EnvSpec>>,
}

impl Counts {
    /// Environments to have on their way. Those in use come back when their scenarios
    /// end and a check (tens of ms) is cheaper than a start, so they count against the
    /// ones wanted ahead; one spare stays on its way while any are wanted, so a short
    /// scenario's successor does not wait for that check.
    ///
    /// Environments that never come back (a database's) take longer to start than
    /// their scenarios take to run: prepared for the next scenarios only, each
    /// worker waited for most of a start after every scenario. They are prepared
    /// for the two rounds of scenarios due next.
    fn target(&self) -> usize {
        if self.returns == Some(false) {
            return self.waiting + self.ahead + self.further;
        }
        let spare = self
            .ahead
            .saturating_sub(self.in_use)
            .max(usize::from(self.ahead > 0));
        self.waiting + spare
    }
}

/// Filesystem changes of a fresh container, per service. They depend only on what the
/// container is made from (image, mounts, network mode), which the key fixes, so the
/// first container of a key measures them and the others reuse the figure instead of
/// each paying for the engine's diff (a walk of the whole filesystem) while starting.
pub(super) type Baseline = Arc<OnceCell<Arc<Vec<String>>>>;

type Delivery = Result<Env, PoolError>;

/// The environments of one key.
pub(super) struct Slot {
    tx: mpsc::UnboundedSender<Delivery>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Delivery>>,
    counts: Mutex<Counts>,
    baselines: Mutex<HashMap<String, Baseline>>,
}

impl Slot {
    pub(super) fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: tokio::sync::Mutex::new(rx),
            counts: Mutex::new(Counts::default()),
            baselines: Mutex::new(HashMap::new()),
        }
    }

    /// One more scenario waits; `true` when no environment is on its way for it and
    /// the caller must prepare one (already counted).
    pub(super) fn claim(&self) -> bool {
        let mut c = lock(&self.counts);
        c.waiting += 1;
        let short = c.supply < c.waiting;
        if short {
            c.supply += 1;
        }
        short
    }

    /// Waits for the next environment for a claim made with [`Slot::claim`].
    pub(super) async fn take(&self) -> Delivery {
        let got = self.rx.lock().await.recv().await;
        let mut c = lock(&self.counts);
        c.waiting -= 1;
        c.supply = c.supply.saturating_sub(1);
        if let Some(Ok(env)) = &got {
            let returns = env.may_return();
            c.returns = Some(returns);
            if returns {
                c.in_use += 1;
            }
        }
        got.unwrap_or(Err(PoolError::Stopped))
    }

    /// A ready environment that no claim waits for, beyond `keep` of them, taken off
    /// the channel; failed preparations nobody waits for are dropped on the way.
    pub(super) fn surplus(&self, keep: usize) -> Option<Env> {
        let mut c = lock(&self.counts);
        let mut rx = self.rx.try_lock().ok()?;
        while c.supply > c.waiting + keep {
            match rx.try_recv() {
                Ok(Ok(env)) => {
                    c.supply -= 1;
                    return Some(env);
                }
                Ok(Err(_)) => c.supply -= 1,
                Err(_) => return None,
            }
        }
        None
    }

    /// `count` environments are wanted beyond the claims, prepared from `spec`.
    pub(super) fn want_ahead(&self, spec: &Arc<EnvSpec>, count: usize, further: usize) {
        let mut c = lock(&self.counts);
        c.ahead = count;
        c.further = further;
        c.spec = Some(spec.clone());
    }

    /// Nothing more is wanted ahead (the run's queue is empty).
    pub(super) fn want_nothing(&self) {
        let mut c = lock(&self.counts);
        c.ahead = 0;
        c.further = 0;
    }

    /// How many preparations to start now to reach the target, and from what; they
    /// are counted as on their way.
    pub(super) fn top_up(&self) -> Option<(Arc<EnvSpec>, usize)> {
        let mut c = lock(&self.counts);
        let spec = c.spec.clone()?;
        let more = c.target().saturating_sub(c.supply);
        c.supply += more;
        (more > 0).then_some((spec, more))
    }

    /// A scenario gives its environment back. `true` when those on their way already
    /// cover the `queued` scenarios still to come (or the one kept warm), so this one
    /// is not needed.
    pub(super) fn give_back(&self, env: &Env, queued: usize, keep_warm: bool) -> bool {
        let mut c = lock(&self.counts);
        if env.may_return() {
            c.in_use = c.in_use.saturating_sub(1);
        }
        c.supply.saturating_sub(c.waiting) >= queued.max(usize::from(keep_warm))
    }

    /// A given-back environment is being checked: it will arrive, or a replacement.
    pub(super) fn checking(&self) {
        lock(&self.counts).supply += 1;
    }

    /// The check of a given-back environment failed. `true` when a claim waits for it
    /// and the caller must prepare a replacement (still counted); else one fewer is on
    /// its way.
    pub(super) fn check_failed(&self) -> bool {
        let mut c = lock(&self.counts);
        if c.supply <= c.waiting {
            return true;
        }
        c.supply -= 1;
        false
    }

    /// Hands an environment, or why there is none, to the next claim.
    pub(super) fn deliver(&self, result: Delivery) {
        // The receiver lives as long as the slot: this cannot fail while it exists.
        let _ = self.tx.send(result);
    }

    /// The filesystem changes of a fresh container of `service`, measured once.
    pub(super) fn baseline(&self, service: &str) -> Baseline {
        lock(&self.baselines)
            .entry(service.to_owned())
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_in_use_count_against_those_wanted_ahead_but_one_spare_stays() {
        let counts = |waiting, ahead, in_use| Counts {
            waiting,
            ahead,
            in_use,
            ..Counts::default()
        };
        // 8 workers busy, 8 queued: their own environments come back; one spare.
        assert_eq!(counts(0, 8, 8).target(), 1);
        // 8 claims waiting at the start, nothing in use yet: 8 plus 8 ahead.
        assert_eq!(counts(8, 8, 0).target(), 16);
        // One worker on short scenarios: the next one's environment is ready.
        assert_eq!(counts(0, 1, 1).target(), 1);
        // Nothing queued: nothing ahead.
        assert_eq!(counts(2, 0, 3).target(), 2);
        assert_eq!(counts(0, 5, 2).target(), 3);
    }

    fn spec() -> Arc<EnvSpec> {
        Arc::new(EnvSpec {
            key: "k".into(),
            services: Vec::new(),
            network: crate::plan::NetworkNeed::None,
            otlp: None,
        })
    }

    /// An environment that may come back (`true`: none of its containers runs a
    /// process of its own; here it has none) or not (`false`: one container runs its
    /// own process, as a database's does).
    fn env(may_return: bool) -> Env {
        let member = || super::super::Member::new("db".into(), "c".into(), None, None);
        Env {
            spec: spec(),
            members: if may_return {
                Vec::new()
            } else {
                vec![member()]
            },
            network: None,
            network_name: None,
            _permits: None,
        }
    }

    #[tokio::test]
    async fn environments_that_never_come_back_do_not_count_against_those_wanted_ahead() {
        for (may_return, ahead) in [(false, 2), (true, 1)] {
            let slot = Slot::new();
            slot.want_ahead(&spec(), 2, 0);
            for _ in 0..2 {
                assert!(slot.claim());
                slot.deliver(Ok(env(may_return)));
                assert!(slot.take().await.is_ok());
            }
            // Two scenarios run: a database's environments are prepared for the
            // next two meanwhile; the shell's come back, so one spare.
            let (_, more) = slot.top_up().unwrap_or_else(|| panic!("nothing to top up"));
            assert_eq!(more, ahead, "may_return {may_return}");
            slot.give_back(&env(may_return), 2, false);
            slot.give_back(&env(may_return), 2, false);
            assert_eq!(lock(&slot.counts).in_use, 0);
        }
    }

    #[tokio::test]
    async fn environments_that_never_come_back_are_prepared_for_two_rounds_ahead() {
        for (may_return, then) in [(false, 2), (true, 0)] {
            let slot = Slot::new();
            // A scenario claims; two are due next, two more after them. Nothing
            // taken yet, so whether they come back is not known: two for the next
            // ones only, as for the shell's.
            assert!(slot.claim());
            slot.want_ahead(&spec(), 2, 2);
            let (_, more) = slot.top_up().unwrap_or_else(|| panic!("nothing to top up"));
            assert_eq!(more, 2, "may_return {may_return}");
            slot.deliver(Ok(env(may_return)));
            assert!(slot.take().await.is_ok());
            // One taken: a database's are prepared for all four; for the shell's,
            // the one in use comes back and counts.
            let more = slot.top_up().map_or(0, |(_, more)| more);
            assert_eq!(more, then, "may_return {may_return}");
        }
    }

    #[test]
    fn claims_and_returns_keep_the_counts_in_step() {
        let slot = Slot::new();
        let env = || env(true);
        // An environment comes back while a scenario is still to come: it is kept
        // and checked...
        assert!(!slot.give_back(&env(), 1, false));
        slot.checking();
        // ...so the next claim needs no preparation of its own.
        assert!(!slot.claim());
        // The check fails: the claim needs a replacement.
        assert!(slot.check_failed());
        // A second claim finds nothing on its way.
        assert!(slot.claim());
        assert!(slot.surplus(0).is_none());
        // Nothing is wanted ahead and there is no spec: nothing to top up.
        assert!(slot.top_up().is_none());
        // With nothing still to come, a given-back environment is not needed.
        assert!(slot.give_back(&env(), 0, false));
        // Unless one is kept warm and none is spare.
        assert!(!slot.give_back(&env(), 0, true));
    }
}
