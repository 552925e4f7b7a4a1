//! The scheduler: finds due work in the store, runs it with bounded concurrency
//! and jitter, keeps retry counters and heartbeats, and shuts down gracefully.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::meta::{self, META_KIND, Meta, RotationState};
use super::{Credwheel, Managed, Outcome, lock_state, ms};
use crate::error::Error;
use crate::schedule::NextDue;
use crate::state::{ConflictReason, Millis, StateError};

/// What started a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Job {
    /// The scheduler (a slot, a retry, a first rotation, a heartbeat).
    Scheduled,
    /// An operator's rotate-now.
    Manual,
    /// A read of a lazy (TTL) rotation.
    Lazy,
    /// An operator's reconcile.
    Reconcile,
}

/// What one [`Credwheel::tick`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TickReport {
    /// Rotations attempted.
    pub rotations: usize,
    /// Heartbeats run.
    pub heartbeats: usize,
    /// Interrupted rotations settled.
    pub recovered: usize,
    /// Expired check-out leases checked in.
    pub checked_in: usize,
}

impl TickReport {
    fn add(&mut self, o: TickReport) {
        self.rotations += o.rotations;
        self.heartbeats += o.heartbeats;
        self.recovered += o.recovered;
        self.checked_in += o.checked_in;
    }
}

/// A running scheduler (see [`Credwheel::start`]).
#[derive(Debug)]
pub struct RunHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunHandle {
    /// Stops picking up work, lets in-flight rotations finish for up to `grace`,
    /// then abandons them (their runs stay recoverable: the next runner settles any
    /// interrupted rotation from its write-ahead record).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
    }
}

struct Shared {
    inflight: Mutex<HashSet<usize>>,
    sem: Semaphore,
}

/// How much later than our last commit the target's "password last set" may be
/// before it counts as a change made elsewhere (replication lag, clock skew).
const DRIFT_TOLERANCE_MS: i64 = 5_000;

fn backoff(initial: Duration, max: Duration, failures: u32) -> i64 {
    let shift = failures.saturating_sub(1).min(30);
    let d = initial.saturating_mul(1u32 << shift).min(max);
    ms(d)
}

impl Credwheel {
    /// Runs every due rotation, heartbeat, recovery and lease expiry once, waits for
    /// them, and reports what was done. [`start`](Self::start) calls this in a loop;
    /// tests call it directly.
    pub async fn tick(&self) -> Result<TickReport, Error> {
        let shared = Arc::new(Shared {
            inflight: Mutex::new(HashSet::new()),
            sem: Semaphore::new(self.inner.config.scheduler.concurrency.max(1) as usize),
        });
        let mut set = JoinSet::new();
        let mut report = self.spawn_due(&shared, &mut set).await?;
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                report.add(r);
            }
        }
        Ok(report)
    }

    /// Starts the scheduler on the current tokio runtime: it wakes every
    /// `scheduler.tick`, finds due work with one store query, and runs it with at most
    /// `scheduler.concurrency` rotations at once. Stop it with [`RunHandle::shutdown`].
    pub fn start(&self) -> RunHandle {
        let (stop, rx) = watch::channel(false);
        let cw = self.clone();
        let task = tokio::spawn(async move {
            let stopped = async move {
                let mut rx = rx;
                while !*rx.borrow() {
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            };
            cw.run_until(stopped).await;
        });
        RunHandle { stop, task }
    }

    /// Runs the scheduler until `shutdown` completes, then waits for in-flight work.
    pub async fn run_until(&self, shutdown: impl Future<Output = ()>) {
        let shared = Arc::new(Shared {
            inflight: Mutex::new(HashSet::new()),
            sem: Semaphore::new(self.inner.config.scheduler.concurrency.max(1) as usize),
        });
        let tick = self.inner.config.scheduler.tick;
        let mut set: JoinSet<TickReport> = JoinSet::new();
        tokio::pin!(shutdown);
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.inner.wake.notified() => {
                    if let Err(e) = self.spawn_due(&shared, &mut set).await {
                        tracing::warn!(error = %e, "scheduler: looking for due work failed");
                    }
                }
                _ = interval.tick() => {
                    if let Err(e) = self.spawn_due(&shared, &mut set).await {
                        tracing::warn!(error = %e, "scheduler: looking for due work failed");
                    }
                    while let Some(r) = set.try_join_next() {
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "scheduler: a task failed");
                        }
                    }
                }
            }
        }
        tracing::info!(
            in_flight = set.len(),
            "scheduler: stopping; letting in-flight work finish"
        );
        while set.join_next().await.is_some() {}
    }

    async fn spawn_due(
        &self,
        shared: &Arc<Shared>,
        set: &mut JoinSet<TickReport>,
    ) -> Result<TickReport, Error> {
        let now = self.now();
        let ids = self.inner.store.list_due(now, None, 4096).await?;
        for id in ids {
            let (idx, recover) = if id.kind() == META_KIND && id.scope() == self.inner.namespace {
                match self.inner.by_name.get(id.account()) {
                    Some(&i) => (i, false),
                    None => {
                        // A rotation removed from the configuration: stop listing it.
                        if let Ok(Some(l)) =
                            meta::load(&*self.inner.store, &self.inner.sealer, &id).await
                        {
                            let _ = meta::swap(
                                &*self.inner.store,
                                &self.inner.sealer,
                                &l,
                                &l.meta,
                                None,
                            )
                            .await;
                        }
                        continue;
                    }
                }
            } else if let Some(&i) = self.inner.by_cred.get(&id) {
                (i, true)
            } else {
                if let Some(lib) = self.inner.lib_by_cred.get(&id).cloned() {
                    let cw = self.clone();
                    set.spawn(async move {
                        if let Err(e) = cw.recover_library_account(&lib, &id).await {
                            tracing::warn!(library = %lib, account = %id, error = %e, "recovering an interrupted check-in failed");
                        }
                        TickReport::default()
                    });
                }
                continue;
            };
            {
                let mut g = shared.inflight.lock().unwrap_or_else(|p| p.into_inner());
                if !g.insert(idx) {
                    continue;
                }
            }
            let cw = self.clone();
            let shared2 = shared.clone();
            set.spawn(async move {
                let r = async {
                    let _permit = shared2.sem.acquire().await.ok();
                    if recover {
                        cw.recover(idx).await
                    } else {
                        cw.process(idx).await
                    }
                }
                .await;
                shared2
                    .inflight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&idx);
                match r {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(rotation = %cw.inner.rotations[idx].def.name, error = %e, "scheduler: work failed");
                        TickReport::default()
                    }
                }
            });
        }
        let checked_in = self.expire_leases(now).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "checking in expired leases failed");
            0
        });
        Ok(TickReport {
            checked_in,
            ..TickReport::default()
        })
    }

    /// Settles an interrupted rotation found by the store (a pending write-ahead
    /// record older than any claim).
    async fn recover(&self, idx: usize) -> Result<TickReport, Error> {
        let m = &self.inner.rotations[idx];
        match self.inner.rotator.recover(&*m.target, &m.id).await {
            Ok(outcome) => {
                tracing::info!(rotation = %m.def.name, outcome = ?outcome, "settled an interrupted rotation");
                if let crate::state::RecoverOutcome::RolledForward { version } = outcome
                    && let Err(e) = self.publish(m, version).await
                {
                    tracing::warn!(rotation = %m.def.name, error = %e, "publishing after recovery failed");
                }
                if matches!(outcome, crate::state::RecoverOutcome::NeedsReconcile { .. }) {
                    self.finish(idx, |meta, _| {
                        meta.state = RotationState::NeedsOperator;
                        meta.last_error = Some(
                            "an interrupted rotation left the password unknown; run reconcile"
                                .into(),
                        );
                    })
                    .await?;
                }
                Ok(TickReport {
                    recovered: 1,
                    ..TickReport::default()
                })
            }
            Err(StateError::Conflict(ConflictReason::ClaimHeld) | StateError::InFlight { .. }) => {
                Ok(TickReport::default())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Takes the rotation for this process (compare-and-swap on its metadata) if
    /// nobody runs it; returns the metadata as taken.
    async fn take(&self, m: &Managed) -> Result<Option<(Meta, Millis)>, Error> {
        let now = self.now();
        let Some(loaded) = meta::load(&*self.inner.store, &self.inner.sealer, &m.meta_id).await?
        else {
            return Err(StateError::NotFound(crate::state::Missing::Record).into());
        };
        if loaded.meta.running_until.is_some_and(|r| r > now) {
            return Ok(None);
        }
        let mut meta = loaded.meta.clone();
        meta.running_until = Some(now.saturating_add(super::RUN_LEASE_MS));
        meta.running_by = Some(self.inner.holder.clone());
        let ok = meta::swap(
            &*self.inner.store,
            &self.inner.sealer,
            &loaded,
            &meta,
            meta.running_until,
        )
        .await?;
        Ok(ok.map(|_| (loaded.meta, now)))
    }

    /// Releases the rotation, applying `f` to fresh metadata (another process may
    /// have paused it meanwhile), and stores the next wake-up time.
    async fn finish(&self, idx: usize, f: impl Fn(&mut Meta, Millis)) -> Result<(), Error> {
        let m = &self.inner.rotations[idx];
        for _ in 0..16 {
            let now = self.now();
            let Some(loaded) =
                meta::load(&*self.inner.store, &self.inner.sealer, &m.meta_id).await?
            else {
                return Err(StateError::NotFound(crate::state::Missing::Record).into());
            };
            let mut meta = loaded.meta.clone();
            if meta
                .running_by
                .as_deref()
                .is_some_and(|b| b == self.inner.holder)
            {
                meta.running_until = None;
                meta.running_by = None;
            }
            f(&mut meta, now);
            let due = self.wake_time(m, &meta, now);
            if meta::swap(&*self.inner.store, &self.inner.sealer, &loaded, &meta, due)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(Error::Busy(m.def.name.clone()))
    }

    /// What is due for a rotation now: (rotate with this slot, heartbeat).
    fn due_work(&self, m: &Managed, meta: &Meta, now: Millis) -> (Option<Option<Millis>>, bool) {
        let automatic = !meta.paused && meta.state != RotationState::NeedsOperator;
        let mut rotate = None;
        if automatic {
            if let Some(t) = meta.next_attempt {
                if t <= now {
                    rotate = Some(meta.cycle_slot);
                }
            } else if let Some(s) = &m.def.schedule
                && s.is_automatic()
                && let NextDue::Scheduled(d) = s.next_due(meta.anchor, meta.last_success, now)
                && d.slot <= now
            {
                rotate = Some(Some(d.slot));
            }
        }
        let heartbeat = m.def.heartbeat
            && !meta.paused
            && !meta.heartbeat_suspended
            && meta.next_heartbeat.is_some_and(|t| t <= now);
        (rotate, heartbeat)
    }

    /// One scheduled pass over a rotation the store reported due.
    async fn process(&self, idx: usize) -> Result<TickReport, Error> {
        let m = &self.inner.rotations[idx];
        let now = self.now();
        let Some(loaded) = meta::load(&*self.inner.store, &self.inner.sealer, &m.meta_id).await?
        else {
            return Ok(TickReport::default());
        };
        if loaded.meta.running_until.is_some_and(|r| r > now) {
            return Ok(TickReport::default());
        }
        let (rotate, heartbeat) = self.due_work(m, &loaded.meta, now);
        if rotate.is_none() && !heartbeat {
            // Nothing due (a missed cron window, a stale wake-up): store the next one.
            let due = self.wake_time(m, &loaded.meta, now);
            if due != loaded.record.next_due {
                meta::swap(
                    &*self.inner.store,
                    &self.inner.sealer,
                    &loaded,
                    &loaded.meta,
                    due,
                )
                .await?;
            }
            return Ok(TickReport::default());
        }
        let Some((taken, _)) = self.take(m).await? else {
            return Ok(TickReport::default());
        };
        self.renewing(m, async {
            // Re-decide on what we took (another process may have just finished it).
            let (rotate, heartbeat) = self.due_work(m, &taken, self.now());
            let mut report = TickReport::default();
            if let Some(slot) = rotate {
                let jitter = ms(self.inner.config.scheduler.jitter);
                if jitter > 0 && taken.next_attempt.is_none() {
                    let d = rand::Rng::random_range(&mut rand::rng(), 0..jitter);
                    tokio::time::sleep(Duration::from_millis(d.unsigned_abs())).await;
                }
                report.rotations += 1;
                let result = self.rotate_once(m, false).await;
                self.record_rotation(idx, Job::Scheduled, slot, &result)
                    .await?;
            } else if heartbeat {
                report.heartbeats += 1;
                self.heartbeat(idx).await?;
            } else {
                self.finish(idx, |_, _| {}).await?;
            }
            Ok(report)
        })
        .await
    }

    /// Runs `work` while keeping this process's run lease on `m` alive (renewed
    /// every third of the lease), so the lease can be short: a crashed process
    /// frees the rotation within one lease, whatever the work would have taken.
    async fn renewing<T>(&self, m: &Managed, work: impl std::future::Future<Output = T>) -> T {
        let every = Duration::from_millis((super::RUN_LEASE_MS / 3).unsigned_abs());
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                () = tokio::time::sleep(every) => {
                    if let Err(e) = self.renew_run_lease(m).await {
                        tracing::warn!(rotation = %m.def.name, error = %e, "renewing the run lease failed");
                    }
                }
            }
        }
    }

    /// Moves this process's run lease on `m` to a full lease from now (nothing if
    /// it no longer holds it).
    async fn renew_run_lease(&self, m: &Managed) -> Result<(), Error> {
        for _ in 0..8 {
            let Some(loaded) =
                meta::load(&*self.inner.store, &self.inner.sealer, &m.meta_id).await?
            else {
                return Ok(());
            };
            let mine = loaded.meta.running_until.is_some()
                && loaded.meta.running_by.as_deref() == Some(self.inner.holder.as_str());
            if !mine {
                return Ok(());
            }
            let mut meta = loaded.meta.clone();
            meta.running_until = Some(self.now().saturating_add(super::RUN_LEASE_MS));
            if meta::swap(
                &*self.inner.store,
                &self.inner.sealer,
                &loaded,
                &meta,
                meta.running_until,
            )
            .await?
            .is_some()
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Runs one rotation through the protocol and publishes the mapped secrets.
    async fn rotate_once(&self, m: &Managed, reconcile: bool) -> Result<Outcome, Error> {
        let r = if reconcile {
            self.inner
                .rotator
                .reconcile(
                    &*m.target,
                    &m.id,
                    &m.source,
                    crate::state::ReconcileMethod::AdminReset,
                )
                .await
        } else {
            self.inner
                .rotator
                .rotate(
                    &*m.target,
                    &m.id,
                    &m.source,
                    crate::state::RotateOptions::new(m.method),
                )
                .await
        };
        let outcome = Credwheel::rotation_result(&m.def.name, r)?;
        if let Outcome::Rotated { version } = outcome {
            tracing::info!(rotation = %m.def.name, target = %m.def.target.describe(), version, "rotated");
            if let Err(e) = self.publish(m, version).await {
                // The password is safe in the store; report, do not fail the rotation.
                tracing::warn!(rotation = %m.def.name, error = %e, "mapped secrets not written");
            }
        }
        Ok(outcome)
    }

    /// Applies a rotation's result to the metadata: success resets counters (a
    /// scheduled success moves the anchor to its slot); a scheduled failure backs
    /// off, ends the cycle after `max_retries_per_cycle` retries, and stops
    /// automation after `max_retry_cycles` failed cycles.
    async fn record_rotation(
        &self,
        idx: usize,
        job: Job,
        slot: Option<Millis>,
        result: &Result<Outcome, Error>,
    ) -> Result<(), Error> {
        let s = self.inner.config.scheduler.clone();
        let m = &self.inner.rotations[idx];
        let error_text = result.as_ref().err().map(ToString::to_string);
        let busy = matches!(
            result,
            Err(Error::State(
                StateError::Conflict(ConflictReason::ClaimHeld) | StateError::InFlight { .. }
            ))
        );
        let needs_reconcile = matches!(result, Err(Error::Rotation { message, .. }) if message.contains("run reconcile"));
        if let Some(e) = &error_text {
            tracing::warn!(rotation = %m.def.name, error = %e, job = ?job, "rotation failed");
        }
        self.finish(idx, |meta, now| {
            meta.last_attempt = Some(now);
            match result {
                Ok(_) => {
                    if job == Job::Scheduled
                        && let Some(slot) = slot.or(meta.cycle_slot)
                    {
                        meta.anchor = slot;
                    }
                    meta.state = RotationState::Ok;
                    meta.retries = 0;
                    meta.failed_cycles = 0;
                    meta.next_attempt = None;
                    meta.cycle_slot = None;
                    meta.last_success = Some(now);
                    meta.last_error = None;
                    meta.rotations += 1;
                    if job == Job::Reconcile {
                        meta.heartbeat_suspended = false;
                        meta.heartbeat = Some("reconciled".into());
                    }
                }
                Err(_) if busy => {
                    meta.next_attempt = Some(now.saturating_add(1_000));
                }
                Err(_) => {
                    meta.last_error = error_text.clone();
                    if needs_reconcile {
                        meta.state = RotationState::NeedsOperator;
                        meta.next_attempt = None;
                        return;
                    }
                    if job != Job::Scheduled {
                        return;
                    }
                    if meta.cycle_slot.is_none() {
                        meta.cycle_slot = slot;
                    }
                    meta.retries += 1;
                    if meta.retries > s.max_retries_per_cycle {
                        meta.failed_cycles += 1;
                        meta.retries = 0;
                        if meta.failed_cycles >= s.max_retry_cycles {
                            meta.state = RotationState::NeedsOperator;
                            meta.next_attempt = None;
                        } else {
                            meta.state = RotationState::Backoff;
                            meta.next_attempt = Some(now.saturating_add(ms(s.backoff_max)));
                        }
                    } else {
                        if meta.state != RotationState::NotEnrolled {
                            meta.state = RotationState::Backoff;
                        }
                        meta.next_attempt = Some(now.saturating_add(backoff(
                            s.backoff_initial,
                            s.backoff_max,
                            meta.retries,
                        )));
                    }
                }
            }
        })
        .await?;
        if let Ok(st) = self.status_of(&m.def.name).await
            && st.state == RotationState::NeedsOperator
            && job == Job::Scheduled
        {
            tracing::error!(rotation = %m.def.name, error = ?st.last_error, "rotation needs an operator; automation stopped");
        }
        Ok(())
    }

    /// Verifies the stored password against the target (one logon), reports drift,
    /// reconciles it when the definition allows, and never tries again on a locked
    /// or disabled account.
    async fn heartbeat(&self, idx: usize) -> Result<(), Error> {
        let m = &self.inner.rotations[idx];
        let interval = ms(self.inner.config.scheduler.heartbeat_interval);
        let current = match self.inner.rotator.current_password(&m.id).await {
            Ok((c, _)) => c,
            Err(StateError::NotFound(_)) => {
                return self
                    .finish(idx, |meta, now| meta.next_heartbeat = Some(now + interval))
                    .await;
            }
            Err(e) => return Err(e.into()),
        };
        // First without a logon: has the target's "password last set" moved past the
        // baseline recorded at our last commit (beyond the clock-skew tolerance)?
        let baseline = self
            .inner
            .store
            .get_record(&m.id)
            .await
            .ok()
            .and_then(|r| r.target_set_at);
        let changed_elsewhere = match (baseline, m.target.password_last_set(&m.id).await) {
            (Some(b), Ok(Some(t))) => t > b.saturating_add(DRIFT_TOLERANCE_MS),
            _ => false,
        };
        let verdict = if changed_elsewhere {
            Ok(false)
        } else {
            m.target.verify(&m.id, &current).await
        };
        drop(current);
        enum Found {
            Ok,
            Drift,
            Locked(RotationState, String),
            Inconclusive(String),
        }
        let found = match verdict {
            Ok(true) => Found::Ok,
            Ok(false) => Found::Drift,
            Err(e) => match lock_state(e.kind()) {
                Some(st) => Found::Locked(st, e.to_string()),
                None => Found::Inconclusive(e.to_string()),
            },
        };
        let mut reconciled: Option<Result<Outcome, Error>> = None;
        match &found {
            Found::Ok => tracing::debug!(rotation = %m.def.name, "heartbeat: password verified"),
            Found::Drift => {
                tracing::warn!(rotation = %m.def.name, target = %m.def.target.describe(), "heartbeat: the target no longer accepts the stored password (changed out of band)");
                if m.def.reconcile_on_drift && m.method == crate::state::RotationMethod::AdminReset
                {
                    let r = self.rotate_once(m, true).await;
                    if r.is_ok() {
                        tracing::info!(rotation = %m.def.name, "heartbeat: drift reconciled with an admin reset");
                    }
                    reconciled = Some(r);
                }
            }
            Found::Locked(st, msg) => {
                tracing::error!(rotation = %m.def.name, state = st.as_str(), error = %msg, "heartbeat: account unusable; no more logon attempts until an operator acts");
            }
            Found::Inconclusive(msg) => {
                tracing::warn!(rotation = %m.def.name, error = %msg, "heartbeat inconclusive");
            }
        }
        self.finish(idx, |meta, now| {
            meta.last_heartbeat = Some(now);
            meta.next_heartbeat = Some(now.saturating_add(interval));
            match &found {
                Found::Ok => {
                    meta.heartbeat = Some("ok".into());
                    if meta.state == RotationState::Drifted {
                        meta.state = RotationState::Ok;
                    }
                }
                Found::Drift => match &reconciled {
                    Some(Ok(_)) => {
                        meta.heartbeat = Some("drifted; reconciled".into());
                        meta.state = RotationState::Ok;
                        meta.last_success = Some(now);
                        meta.last_error = None;
                    }
                    Some(Err(e)) => {
                        meta.heartbeat = Some("drifted; reconcile failed".into());
                        meta.state = RotationState::Drifted;
                        meta.last_error = Some(e.to_string());
                    }
                    None => {
                        meta.heartbeat = Some("drifted".into());
                        meta.state = RotationState::Drifted;
                        meta.last_error = Some(
                            "the target no longer accepts the stored password (changed out of band); run reconcile".into(),
                        );
                    }
                },
                Found::Locked(st, msg) => {
                    meta.heartbeat = Some(format!("{}: {msg}", st.as_str()));
                    meta.state = *st;
                    meta.heartbeat_suspended = true;
                    meta.last_error = Some(msg.clone());
                }
                Found::Inconclusive(msg) => {
                    meta.heartbeat = Some(format!("inconclusive: {msg}"));
                }
            }
        })
        .await
    }

    /// Takes the rotation, runs `job`, records the result. `None`: someone else
    /// holds it.
    pub(crate) async fn run_exclusive(
        &self,
        idx: usize,
        job: Job,
    ) -> Result<Option<Result<Outcome, Error>>, Error> {
        let m = &self.inner.rotations[idx];
        let Some((_, _)) = self.take(m).await? else {
            return Ok(None);
        };
        self.renewing(m, self.run_taken(idx, job)).await
    }

    /// The work of [`run_exclusive`](Self::run_exclusive), under the run lease.
    async fn run_taken(
        &self,
        idx: usize,
        job: Job,
    ) -> Result<Option<Result<Outcome, Error>>, Error> {
        let m = &self.inner.rotations[idx];
        let result = match job {
            Job::Reconcile => self.rotate_once(m, true).await,
            Job::Lazy => {
                // Re-check under ownership: another reader may have rotated it.
                let now = self.now();
                let rec = self.inner.store.get_record(&m.id).await?;
                let fresh = match (
                    m.def.schedule.as_ref().and_then(|s| s.lazy_ttl()),
                    rec.set_at,
                ) {
                    (Some(ttl), Some(t)) => now < t.saturating_add(ms(ttl)),
                    (_, Some(_)) => rec.current.is_some(),
                    _ => false,
                };
                if fresh && rec.current.is_some() && rec.pending.is_none() {
                    Ok(Outcome::Unchanged)
                } else {
                    self.rotate_once(m, false).await
                }
            }
            _ => self.rotate_once(m, false).await,
        };
        self.record_rotation(idx, job, None, &result).await?;
        Ok(Some(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let i = Duration::from_secs(10);
        let m = Duration::from_secs(60);
        assert_eq!(backoff(i, m, 1), 10_000);
        assert_eq!(backoff(i, m, 2), 20_000);
        assert_eq!(backoff(i, m, 3), 40_000);
        assert_eq!(backoff(i, m, 4), 60_000);
        assert_eq!(backoff(i, m, 40), 60_000);
    }
}
