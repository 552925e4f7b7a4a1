use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use secrecy::{ExposeSecret, SecretString};

use crate::testing::{CrashGate, CrashStore, FakeFailure, FakeOp, FakeTarget};
use crate::{
    Clock, ConflictReason, Field, Key, ManualClock, MemberState, MemoryStore, Missing,
    PasswordSource, Precondition, ReconcileKind, ReconcileMethod, RecordState, RecoverOutcome,
    RotateOptions, RotationMethod, RotationOutcome, Rotator, RotatorConfig, Schedule, Sealer,
    SetConfig, SkipReason, StateError, StateStore, TargetErrorKind, TargetId,
};

const INITIAL: &str = "Initial-Password-0";
const START: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

pub(super) struct Counter(std::sync::atomic::AtomicUsize);

impl PasswordSource for Counter {
    fn generate(&self, _: &TargetId) -> crate::Result<SecretString> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(SecretString::from(format!("Generated-Password-{n}")))
    }
}

pub(super) fn counter() -> Counter {
    Counter(std::sync::atomic::AtomicUsize::new(1))
}

fn admin() -> RotateOptions {
    RotateOptions::new(RotationMethod::AdminReset)
}

fn selfchange() -> RotateOptions {
    RotateOptions::new(RotationMethod::SelfChange)
}

fn opts(method: RotationMethod) -> RotateOptions {
    RotateOptions::new(method)
}

/// A realistic target: it keeps accepting the previous password for an hour (like
/// AD and Samba) and reports "password last set" from its own clock, which runs
/// 1.5 s ahead of ours.
fn realistic(t: FakeTarget) -> FakeTarget {
    t.accepting_previous_for(HOUR).with_clock_offset(1_500)
}

pub(super) struct World {
    pub(super) id: TargetId,
    pub(super) base: Arc<dyn StateStore>,
    pub(super) sealer: Arc<Sealer>,
    pub(super) clock: ManualClock,
    pub(super) gate: Arc<CrashGate>,
    pub(super) target: Arc<FakeTarget>,
}

impl World {
    async fn new(configure: impl FnOnce(FakeTarget) -> FakeTarget) -> Self {
        Self::with_store(Arc::new(MemoryStore::new()), configure).await
    }

    pub(super) async fn with_store(
        base: Arc<dyn StateStore>,
        configure: impl FnOnce(FakeTarget) -> FakeTarget,
    ) -> Self {
        let id = crate::conformance::unique_id("ad");
        let sealer = Arc::new(Sealer::new("k1", Key::from_bytes(&[3; 32]).unwrap()).unwrap());
        let clock = ManualClock::new(START);
        let gate = CrashGate::new();
        let target = Arc::new(configure(
            FakeTarget::new(&id, INITIAL)
                .with_gate(gate.clone())
                .with_clock(Arc::new(clock.clone())),
        ));
        let w = Self {
            id,
            base,
            sealer,
            clock,
            gate,
            target,
        };
        w.rotator("enroller", false)
            .enroll_verified(
                &*w.target,
                &w.id,
                &SecretString::from(INITIAL),
                Schedule::Every {
                    interval_ms: 24 * HOUR,
                },
            )
            .await
            .unwrap();
        w
    }

    pub(super) fn rotator(&self, holder: &str, gated: bool) -> Rotator {
        self.rotator_with(holder, gated, RotatorConfig::with_holder(holder))
    }

    fn rotator_with(&self, _holder: &str, gated: bool, config: RotatorConfig) -> Rotator {
        let store: Arc<dyn StateStore> = if gated {
            Arc::new(CrashStore::new(self.base.clone(), self.gate.clone()))
        } else {
            self.base.clone()
        };
        Rotator::with_clock(
            store,
            self.sealer.clone(),
            Arc::new(self.clock.clone()),
            config,
        )
    }

    async fn stored_current(&self) -> SecretString {
        self.rotator("reader", false)
            .current_password(&self.id)
            .await
            .unwrap()
            .0
    }

    async fn record(&self) -> crate::Record {
        self.base.get_record(&self.id).await.unwrap()
    }

    /// The invariant: no rotation in flight, state Ok, and the stored current
    /// password is the one the target has.
    pub(super) async fn assert_consistent(&self, ctx: &str) {
        let rec = self.record().await;
        assert!(rec.pending.is_none(), "{ctx}: pending left");
        assert_eq!(rec.state, RecordState::Ok, "{ctx}");
        let cur = self.stored_current().await;
        assert!(
            self.target.accepts(&cur),
            "{ctx}: stored current is not the target's password"
        );
    }

    /// Runs `fut` (a rotation through the gated store and target) until the armed
    /// crash point, drops it there, and lets the runtime run the dead process's
    /// leftovers into the dead gate.
    async fn crash<T>(&self, fut: impl std::future::Future<Output = T>) -> Option<T> {
        let out = fut.now_or_never();
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        out
    }
}

/// Drops the rotation future at every await point (before and after each gated
/// operation, in the store and in the target), then recovers with a new process.
/// The target keeps accepting the previous password and reports realistic
/// "password last set" times.
#[tokio::test]
async fn crash_at_every_await_point_then_recover() {
    for method in [RotationMethod::AdminReset, RotationMethod::SelfChange] {
        for after in [false, true] {
            let mut point = 0;
            loop {
                let w = World::new(realistic).await;
                let src = counter();
                let r = w.rotator("crashing", true);
                w.gate.arm(point, after);
                let finished = w
                    .crash(r.rotate(&*w.target, &w.id, &src, opts(method)))
                    .await;
                w.gate.disarm();
                let ctx = format!("{method:?} crash at point {point} (after={after})");
                if let Some(res) = finished {
                    // Past the last await point: a clean run.
                    assert!(
                        matches!(res, Ok(RotationOutcome::Rotated { .. })),
                        "{ctx}: {res:?}"
                    );
                    assert!(point >= 8, "{ctx}: too few await points seen");
                    w.assert_consistent(&ctx).await;
                    break;
                }
                // The process died. Its claim lapses; a new process recovers.
                w.clock.advance(RotatorConfig::default().claim_ttl_ms + 1);
                let rec = w.rotator("recoverer", false);
                let out = rec.recover(&*w.target, &w.id).await.unwrap();
                assert!(
                    !matches!(out, RecoverOutcome::NeedsReconcile { .. }),
                    "{ctx}: {out:?}"
                );
                w.assert_consistent(&ctx).await;
                // And the account keeps rotating normally afterwards.
                let again = rec
                    .rotate(&*w.target, &w.id, &src, opts(method))
                    .await
                    .unwrap();
                assert!(matches!(again, RotationOutcome::Rotated { .. }), "{ctx}");
                w.assert_consistent(&ctx).await;
                point += 1;
            }
        }
    }
}

/// Bug 1: a crash in a second rotation shortly (1 s) after a first one committed
/// must not end in NeedsReconcile: the target's own "password last set" equals
/// the baseline recorded at the first commit, whatever our clock says.
#[tokio::test]
async fn crash_in_second_rotation_shortly_after_first() {
    for method in [RotationMethod::AdminReset, RotationMethod::SelfChange] {
        for after in [false, true] {
            for point in 0..20 {
                let w = World::new(realistic).await;
                let src = counter();
                let out = w
                    .rotator("first", false)
                    .rotate(&*w.target, &w.id, &src, opts(method))
                    .await
                    .unwrap();
                assert!(matches!(out, RotationOutcome::Rotated { .. }));
                w.clock.advance(1_000);
                w.gate.arm(point, after);
                let done = w
                    .crash(
                        w.rotator("second", true)
                            .rotate(&*w.target, &w.id, &src, opts(method)),
                    )
                    .await;
                w.gate.disarm();
                let ctx = format!("{method:?} second rotation crash {point} after={after}");
                if done.is_some() {
                    w.assert_consistent(&ctx).await;
                    break;
                }
                // The dead process's claim lapses (its release never ran).
                w.clock.advance(RotatorConfig::default().claim_ttl_ms + 1);
                let out = w
                    .rotator("recoverer", false)
                    .recover(&*w.target, &w.id)
                    .await
                    .unwrap();
                assert!(
                    matches!(
                        out,
                        RecoverOutcome::Clean
                            | RecoverOutcome::RolledBack { .. }
                            | RecoverOutcome::RolledForward { .. }
                    ),
                    "{ctx}: {out:?}"
                );
                w.assert_consistent(&ctx).await;
            }
        }
    }
}

/// A target that keeps whole seconds: a second rotation applied within the same
/// second as the first commit, then a crash, rolls forward (the baseline alone
/// cannot tell).
#[tokio::test]
async fn same_second_on_a_whole_second_target() {
    for after in [false, true] {
        let w = World::new(|t| realistic(t).with_whole_seconds()).await;
        let src = counter();
        w.rotator("first", false)
            .rotate(&*w.target, &w.id, &src, admin())
            .await
            .unwrap();
        assert_eq!(w.record().await.target_set_at.map(|t| t % 1000), Some(0));
        w.clock.advance(100);
        // Points: 0 read, 1 claim, 2 read, 3 write pending, 4 apply.
        w.gate.arm(4, after);
        assert!(
            w.crash(
                w.rotator("second", true)
                    .rotate(&*w.target, &w.id, &src, admin())
            )
            .await
            .is_none()
        );
        w.gate.disarm();
        w.clock.advance(RotatorConfig::default().claim_ttl_ms + 1);
        let out = w
            .rotator("r", false)
            .recover(&*w.target, &w.id)
            .await
            .unwrap();
        let want_forward = after;
        assert_eq!(
            matches!(out, RecoverOutcome::RolledForward { .. }),
            want_forward,
            "{out:?}"
        );
        w.assert_consistent(&format!("same second, applied={after}"))
            .await;
    }
}

/// Crash matrix on a durable store: the rotation future is dropped at each gated
/// point (while the runtime really waits on the store), and a fresh store handle,
/// as a new process would open, recovers. Second rotations follow the first
/// shortly, against a realistic target.
pub(super) async fn crash_matrix_on(
    open: impl Fn() -> Arc<dyn StateStore>,
    fresh_db: impl Fn() -> Arc<dyn StateStore>,
) {
    for method in [RotationMethod::AdminReset, RotationMethod::SelfChange] {
        for after in [false, true] {
            let mut point = 0;
            loop {
                let w = World::with_store(fresh_db(), realistic).await;
                let src = counter();
                let first = w
                    .rotator("first", false)
                    .rotate(&*w.target, &w.id, &src, opts(method))
                    .await
                    .unwrap();
                assert!(matches!(first, RotationOutcome::Rotated { .. }));
                w.clock.advance(500);
                let r = w.rotator("crashing", true);
                w.gate.arm(point, after);
                let finished = w
                    .gate
                    .run(r.rotate(&*w.target, &w.id, &src, opts(method)))
                    .await;
                drop(r);
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                w.gate.disarm();
                let ctx = format!("durable {method:?} crash at {point} (after={after})");
                if let Some(res) = finished {
                    assert!(
                        matches!(res, Ok(RotationOutcome::Rotated { .. })),
                        "{ctx}: {res:?}"
                    );
                    assert!(point >= 8, "{ctx}: too few await points seen");
                    w.assert_consistent(&ctx).await;
                    break;
                }
                w.clock.advance(RotatorConfig::default().claim_ttl_ms + 1);
                let rec = Rotator::with_clock(
                    open(),
                    w.sealer.clone(),
                    Arc::new(w.clock.clone()),
                    RotatorConfig::with_holder("recoverer"),
                );
                let out = rec.recover(&*w.target, &w.id).await.unwrap();
                assert!(
                    !matches!(out, RecoverOutcome::NeedsReconcile { .. }),
                    "{ctx}: {out:?}"
                );
                w.assert_consistent(&ctx).await;
                point += 1;
            }
        }
    }
}

/// A crash inside recover() itself is recovered by the next recover().
#[tokio::test]
async fn crash_during_recover() {
    for after in [false, true] {
        for point in 0..12 {
            let w = World::new(realistic).await;
            let src = counter();
            // Leave a pending record with the password applied (crash after apply:
            // points 0 read, 1 claim, 2 read, 3 write pending, 4 apply).
            w.gate.arm(4, true);
            let r = w.rotator("first", true);
            assert!(
                w.crash(r.rotate(&*w.target, &w.id, &src, admin()))
                    .await
                    .is_none()
            );
            assert_eq!(w.target.writes(), 1);
            w.clock.advance(200_000);
            w.gate.arm(point, after);
            let _ = w
                .crash(w.rotator("second", true).recover(&*w.target, &w.id))
                .await;
            w.gate.disarm();
            w.clock.advance(200_000);
            w.rotator("third", false)
                .recover(&*w.target, &w.id)
                .await
                .unwrap();
            w.assert_consistent(&format!("recover crash {point} {after}"))
                .await;
        }
    }
}

#[tokio::test]
async fn rotate_commits_current_history_and_baseline() {
    let w = World::new(realistic).await;
    let r = w.rotator_with("p", false, {
        let mut c = RotatorConfig::with_holder("p");
        c.history = 3;
        c
    });
    let src = counter();
    let mut versions = Vec::new();
    for i in 1..=4 {
        w.clock.advance(10_000);
        let out = r
            .rotate(&*w.target, &w.id, &src, selfchange())
            .await
            .unwrap();
        let RotationOutcome::Rotated { version } = out else {
            panic!("{out:?}")
        };
        versions.push(version);
        let rec = w.record().await;
        assert_eq!(rec.version, version);
        assert_eq!(rec.set_at, Some(w.clock.now()));
        assert_eq!(rec.target_set_at, w.target.last_set(), "baseline recorded");
        assert_eq!(rec.next_due, Some(w.clock.now() + 24 * HOUR));
        let c = r.credentials(&w.id).await.unwrap();
        assert_eq!(
            c.current().expose_secret(),
            format!("Generated-Password-{i}")
        );
        assert_eq!(c.version(), version);
        assert_eq!(c.history().len(), i.min(3));
    }
    let c = r.credentials(&w.id).await.unwrap();
    let hist: Vec<_> = c
        .history()
        .iter()
        .map(|p| p.expose_secret().to_owned())
        .collect();
    assert_eq!(
        hist,
        [
            "Generated-Password-3",
            "Generated-Password-2",
            "Generated-Password-1"
        ]
    );
    assert_eq!(
        c.last().unwrap().expose_secret(),
        "Generated-Password-3",
        "last = newest history entry"
    );
    assert_eq!(w.target.writes(), 4);
    w.assert_consistent("four rotations").await;
}

/// Bug 2: NeedsReconcile stops every automatic touch of the target (no more
/// verifications, not listed as due) until an explicit reconcile.
#[tokio::test]
async fn needs_reconcile_stops_automatic_retries() {
    let w = World::new(realistic).await;
    // The pending password never reaches the target; someone else changes it.
    w.gate.arm(4, false);
    assert!(
        w.crash(
            w.rotator("p", true)
                .rotate(&*w.target, &w.id, &counter(), admin())
        )
        .await
        .is_none()
    );
    w.gate.disarm();
    w.clock.advance(1_000);
    w.target.set_out_of_band("Someone-Else-1");
    w.clock.advance(200_000);
    let r = w.rotator("q", false);
    let out = r.recover(&*w.target, &w.id).await.unwrap();
    assert!(
        matches!(&out, RecoverOutcome::NeedsReconcile { why } if why.kind == ReconcileKind::ChangedElsewhere),
        "{out:?}"
    );
    let rec = w.record().await;
    assert!(rec.state.needs_operator());
    let verifies = w.target.verifies();
    let failed = w.target.failed_verifies();
    // Lazy readers, schedulers and recovery all leave it alone now.
    w.clock.advance(48 * HOUR);
    for _ in 0..5 {
        let out = r
            .rotate(&*w.target, &w.id, &counter(), admin())
            .await
            .unwrap();
        assert!(
            matches!(out, RotationOutcome::NeedsReconcile { .. }),
            "{out:?}"
        );
        let out = r.recover(&*w.target, &w.id).await.unwrap();
        assert!(matches!(out, RecoverOutcome::NeedsReconcile { .. }));
        let c = r
            .fresh_credentials(
                &*w.target,
                &w.id,
                &counter(),
                RotationMethod::AdminReset,
                Duration::from_millis(10),
            )
            .await
            .unwrap();
        assert!(c.state().needs_operator());
    }
    assert_eq!(w.target.verifies(), verifies, "no more logon attempts");
    assert_eq!(w.target.failed_verifies(), failed);
    assert_eq!(w.target.writes(), 1, "only the out-of-band change");
    assert!(
        !w.base
            .list_due(w.clock.now(), None, 100)
            .await
            .unwrap()
            .contains(&w.id)
    );
    let ops = w.base.list_needing_operator(None, 100).await.unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].id, w.id);
    // The operator reconciles: a fresh password, automatic work resumes.
    let out = r
        .reconcile(&*w.target, &w.id, &counter(), ReconcileMethod::AdminReset)
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }), "{out:?}");
    w.assert_consistent("reconciled").await;
    assert!(
        w.base
            .list_needing_operator(None, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Bug 3: every failure kind backs off exponentially, and after too many failed
/// cycles the record needs an operator.
#[tokio::test]
async fn every_failure_kind_backs_off_then_needs_an_operator() {
    for kind in [
        TargetErrorKind::Rejected,
        TargetErrorKind::BadCredentials,
        TargetErrorKind::Denied,
        TargetErrorKind::NoSuchAccount,
        TargetErrorKind::AccountDisabled,
        TargetErrorKind::PasswordExpired,
        TargetErrorKind::Unavailable,
        TargetErrorKind::Other,
    ] {
        let w = World::new(realistic).await;
        let cfg = RotatorConfig::with_holder("p");
        let (base, max) = (cfg.backoff_base_ms, cfg.max_failures);
        let r = w.rotator_with("p", false, cfg);
        w.clock.advance(24 * HOUR);
        let mut expected_backoff = base;
        for cycle in 1..=max {
            w.target
                .fail_next(FakeOp::AdminSet, FakeFailure::Fail(kind));
            let now = w.clock.now();
            let out = r
                .rotate(
                    &*w.target,
                    &w.id,
                    &counter(),
                    admin().precondition(Precondition::IfDue(now)),
                )
                .await
                .unwrap();
            let rec = w.record().await;
            assert_eq!(rec.failures, cycle, "{kind:?}");
            if cycle < max {
                let RotationOutcome::Failed {
                    error,
                    in_doubt,
                    retry_at,
                } = out
                else {
                    panic!("{kind:?} cycle {cycle}: {out:?}")
                };
                assert_eq!(error.kind(), kind);
                assert_eq!(in_doubt, !kind.certainly_not_applied(), "{kind:?}");
                assert_eq!(retry_at, Some(now + expected_backoff), "{kind:?} {cycle}");
                // Not listed and skipped while backing off.
                assert!(
                    !w.base
                        .list_due(now + 1, None, 10)
                        .await
                        .unwrap()
                        .contains(&w.id)
                );
                let skip = r
                    .rotate(
                        &*w.target,
                        &w.id,
                        &counter(),
                        admin().precondition(Precondition::IfDue(now + 1)),
                    )
                    .await
                    .unwrap();
                assert!(
                    matches!(
                        skip,
                        RotationOutcome::Skipped {
                            reason: SkipReason::BackingOff { .. },
                            ..
                        }
                    ),
                    "{skip:?}"
                );
                w.clock.set(now + expected_backoff);
                assert!(
                    w.base
                        .list_due(w.clock.now(), None, 10)
                        .await
                        .unwrap()
                        .contains(&w.id),
                    "{kind:?}: listed again after the backoff"
                );
                // Keep it due by schedule for the next cycle.
                w.clock.advance(24 * HOUR);
                expected_backoff =
                    (expected_backoff * 2).min(RotatorConfig::default().backoff_max_ms);
            } else {
                assert!(
                    matches!(&out, RotationOutcome::NeedsReconcile { why } if why.kind == ReconcileKind::TooManyFailures),
                    "{kind:?}: {out:?}"
                );
                assert!(rec.state.needs_operator());
            }
        }
        assert!(w.target.accepts(&SecretString::from(INITIAL)) || !kind.certainly_not_applied());
    }
}

/// A locked account, or a refused stored password on a self-change, needs an
/// operator at once: more attempts would only add failed logons.
#[tokio::test]
async fn lockout_risks_stop_at_once() {
    let w = World::new(realistic).await;
    w.target.fail_next(
        FakeOp::AdminSet,
        FakeFailure::Fail(TargetErrorKind::AccountLocked),
    );
    let out = w
        .rotator("p", false)
        .rotate(&*w.target, &w.id, &counter(), admin())
        .await
        .unwrap();
    assert!(
        matches!(&out, RotationOutcome::NeedsReconcile { why } if why.kind == ReconcileKind::Locked),
        "{out:?}"
    );
    let w = World::new(realistic).await;
    w.target.set_out_of_band("Changed-Elsewhere");
    let out = w
        .rotator("p", false)
        .rotate(&*w.target, &w.id, &counter(), selfchange())
        .await
        .unwrap();
    assert!(
        matches!(&out, RotationOutcome::NeedsReconcile { why } if why.kind == ReconcileKind::BadStoredPassword),
        "{out:?}"
    );
    let rec = w.record().await;
    assert!(rec.pending.is_none() && rec.state.needs_operator());
}

/// Bug 4: the schedule belongs to the account. A rotation recomputes `next_due`
/// from it; rotating an unscheduled account or a rejection never invents one.
#[tokio::test]
async fn schedules_survive_rotations_and_rejections() {
    let w = World::new(realistic).await;
    let r = w.rotator("any", false);
    let out = r
        .rotate(&*w.target, &w.id, &counter(), admin())
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }));
    let rec = w.record().await;
    assert_eq!(
        rec.schedule,
        Schedule::Every {
            interval_ms: 24 * HOUR
        }
    );
    assert_eq!(rec.next_due, Some(w.clock.now() + 24 * HOUR));

    // keep_anchor: a manual rotation off schedule keeps the future due time.
    let due = rec.next_due;
    w.clock.advance(HOUR);
    r.rotate(&*w.target, &w.id, &counter(), admin().keep_anchor(true))
        .await
        .unwrap();
    assert_eq!(w.record().await.next_due, due);

    // No schedule: rotations and rejections leave next_due None.
    r.set_schedule(&w.id, Schedule::None).await.unwrap();
    assert_eq!(w.record().await.next_due, None);
    r.rotate(&*w.target, &w.id, &counter(), admin())
        .await
        .unwrap();
    assert_eq!(w.record().await.next_due, None);
    w.target.fail_next(
        FakeOp::AdminSet,
        FakeFailure::Fail(TargetErrorKind::Rejected),
    );
    r.rotate(&*w.target, &w.id, &counter(), admin())
        .await
        .unwrap();
    let rec = w.record().await;
    assert_eq!(rec.next_due, None, "a rejection invents no schedule");
    assert_eq!(rec.schedule, Schedule::None);

    // External rules go to the embedder's NextDue.
    let spec = "daily 02:00 UTC";
    let r2 = w.rotator("ext", false).with_next_due(Arc::new(
        |s: &str, set_at: i64| -> crate::Result<Option<i64>> {
            assert_eq!(s, "daily 02:00 UTC");
            Ok(Some(set_at - set_at % (24 * HOUR) + 24 * HOUR + 2 * HOUR))
        },
    ));
    r2.set_schedule(&w.id, Schedule::External { spec: spec.into() })
        .await
        .unwrap();
    let out = r2
        .rotate(&*w.target, &w.id, &counter(), admin())
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }));
    let now = w.clock.now();
    assert_eq!(
        w.record().await.next_due,
        Some(now - now % (24 * HOUR) + 26 * HOUR)
    );
    // A rotator without NextDue refuses before touching anything.
    let writes = w.target.writes();
    let err = r
        .rotate(
            &*w.target,
            &w.id,
            &counter(),
            admin().precondition(Precondition::Always),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::Invalid(_)), "{err:?}");
    assert_eq!(w.target.writes(), writes);
    assert!(w.record().await.pending.is_none());
}

/// Bug 5: a pending password that verifies only through the target's grace
/// period (someone changed the password after our attempt's deadline) is not
/// rolled forward.
#[tokio::test]
async fn roll_forward_needs_the_baseline_too() {
    let w = World::new(realistic).await;
    // Our attempt applied P and died before committing.
    w.gate.arm(4, true);
    assert!(
        w.crash(
            w.rotator("p", true)
                .rotate(&*w.target, &w.id, &counter(), admin())
        )
        .await
        .is_none()
    );
    w.gate.disarm();
    // Long after the attempt's deadline, an admin sets another password; P
    // still verifies through the grace period.
    w.clock
        .advance(RotatorConfig::default().max_attempt_ms + 60_000);
    w.target.set_out_of_band("Admin-Set-Later");
    w.clock.advance(1_000);
    let out = w
        .rotator("q", false)
        .recover(&*w.target, &w.id)
        .await
        .unwrap();
    assert!(
        matches!(&out, RecoverOutcome::NeedsReconcile { why } if why.kind == ReconcileKind::ChangedElsewhere),
        "{out:?}"
    );
    assert!(
        !w.target.accepts(&w.stored_current().await),
        "nothing wrong was committed as current"
    );
    // Within the deadline the same verification is trusted.
    let w = World::new(realistic).await;
    w.gate.arm(4, true);
    assert!(
        w.crash(
            w.rotator("p", true)
                .rotate(&*w.target, &w.id, &counter(), admin())
        )
        .await
        .is_none()
    );
    w.gate.disarm();
    w.clock.advance(RotatorConfig::default().claim_ttl_ms + 1);
    let out = w
        .rotator("q", false)
        .recover(&*w.target, &w.id)
        .await
        .unwrap();
    assert!(
        matches!(out, RecoverOutcome::RolledForward { .. }),
        "{out:?}"
    );
    w.assert_consistent("rolled forward").await;
}

/// Bug 6: reconcile never retries a rejected pending password, and accounts that
/// can only change themselves have a way out.
#[tokio::test]
async fn reconcile_does_not_dead_end() {
    let w = World::new(realistic).await;
    w.target.fail_next(FakeOp::Verify, FakeFailure::SayNo);
    let r = w.rotator("p", false);
    let out = r
        .rotate(&*w.target, &w.id, &counter(), admin())
        .await
        .unwrap();
    assert!(
        matches!(out, RotationOutcome::NeedsReconcile { .. }),
        "{out:?}"
    );
    let first_pending = w.record().await.pending.unwrap();
    // The target refuses the reset: the record still needs an operator.
    w.target.fail_next(
        FakeOp::AdminSet,
        FakeFailure::Fail(TargetErrorKind::Rejected),
    );
    let src = counter();
    let out = r
        .reconcile(&*w.target, &w.id, &src, ReconcileMethod::AdminReset)
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            RotationOutcome::Failed {
                in_doubt: false,
                ..
            }
        ),
        "{out:?}"
    );
    assert!(w.record().await.state.needs_operator());
    // The next reconcile uses a fresh password.
    let out = r
        .reconcile(&*w.target, &w.id, &src, ReconcileMethod::AdminReset)
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }), "{out:?}");
    assert_eq!(
        w.stored_current().await.expose_secret(),
        "Generated-Password-2"
    );
    assert_ne!(w.record().await.current.unwrap(), first_pending.sealed);
    w.assert_consistent("admin reconcile").await;

    // Self-change only: the stored pending password is the target's.
    let w = World::new(realistic).await;
    w.target.fail_next(FakeOp::Verify, FakeFailure::SayNo);
    let r = w.rotator("p", false);
    r.rotate(&*w.target, &w.id, &counter(), selfchange())
        .await
        .unwrap();
    assert!(w.record().await.state.needs_operator());
    let out = r
        .reconcile(
            &*w.target,
            &w.id,
            &counter(),
            ReconcileMethod::SelfChange { current: None },
        )
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }), "{out:?}");
    w.assert_consistent("self-change reconcile from pending")
        .await;

    // Self-change only, after an out-of-band change: the operator supplies it.
    let w = World::new(realistic).await;
    w.target.set_out_of_band("Operator-Knows-This");
    let r = w.rotator("p", false);
    let out = r
        .rotate(&*w.target, &w.id, &counter(), selfchange())
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::NeedsReconcile { .. }));
    let out = r
        .reconcile(
            &*w.target,
            &w.id,
            &counter(),
            ReconcileMethod::SelfChange {
                current: Some(SecretString::from("Operator-Knows-This")),
            },
        )
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }), "{out:?}");
    w.assert_consistent("self-change reconcile with operator password")
        .await;

    // Or the operator adopts the password they set.
    let w = World::new(realistic).await;
    w.target.set_out_of_band("Adopt-Me");
    let r = w.rotator("p", false);
    assert!(
        r.adopt(&*w.target, &w.id, &SecretString::from("wrong"))
            .await
            .is_err()
    );
    r.adopt(&*w.target, &w.id, &SecretString::from("Adopt-Me"))
        .await
        .unwrap();
    w.assert_consistent("adopted").await;
}

/// Bug 7: the claim margin is checked before the pending write, a cancelled
/// rotation releases its claim, and long target calls renew the claim.
#[tokio::test]
async fn claim_margin_cancellation_and_renewal() {
    let w = World::new(realistic).await;
    let r = w.rotator("a", false);
    // A claim that is too short and cannot be renewed (taken over meanwhile):
    // nothing is written.
    let mut g = r.claim(&w.id, None).await.unwrap();
    w.clock.advance(RotatorConfig::default().claim_ttl_ms + 1);
    let other = w.rotator("b", false).claim(&w.id, None).await.unwrap();
    let err = r
        .rotate_claimed(&mut g, &*w.target, &counter(), &admin())
        .await
        .unwrap_err();
    assert_eq!(err, StateError::Conflict(ConflictReason::Fenced));
    assert!(w.record().await.pending.is_none(), "no pending write");
    other.release().await;
    drop(g);
    // A short claim still held is renewed before the pending write.
    let mut g = r.claim(&w.id, None).await.unwrap();
    w.clock
        .advance(RotatorConfig::default().claim_ttl_ms - 1_000);
    let out = r
        .rotate_claimed(&mut g, &*w.target, &counter(), &admin())
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }));
    assert!(g.claim().expires_at > w.clock.now() + 60_000, "renewed");
    g.release().await;

    // Cancelled: the caller's timeout drops the rotation inside the target call.
    w.gate.arm_pause(4, false); // 0 read, 1 claim, 2 read, 3 pending, 4 apply
    let r2 = Arc::new(w.rotator("c", true));
    let (r3, t, id) = (r2.clone(), w.target.clone(), w.id.clone());
    let h = tokio::spawn(async move {
        let src = counter();
        tokio::time::timeout(
            Duration::from_millis(50),
            r3.rotate(&*t, &id, &src, admin()),
        )
        .await
    });
    assert!(h.await.unwrap().is_err(), "timed out");
    for _ in 0..50 {
        if w.base.get_claim(&w.id).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        w.base.get_claim(&w.id).await.unwrap(),
        None,
        "the cancelled rotation released its claim"
    );
    w.gate.resume();
    w.gate.disarm();
}

/// A long target call keeps its claim alive (real time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_target_calls_renew_the_claim() {
    struct Slow(FakeTarget);
    #[async_trait::async_trait]
    impl crate::RotationTarget for Slow {
        async fn set_password_as_admin(
            &self,
            a: &TargetId,
            p: &SecretString,
        ) -> Result<(), crate::TargetError> {
            tokio::time::sleep(Duration::from_millis(900)).await;
            self.0.set_password_as_admin(a, p).await
        }
        async fn change_password(
            &self,
            a: &TargetId,
            c: &SecretString,
            p: &SecretString,
        ) -> Result<(), crate::TargetError> {
            self.0.change_password(a, c, p).await
        }
        async fn verify(&self, a: &TargetId, p: &SecretString) -> Result<bool, crate::TargetError> {
            self.0.verify(a, p).await
        }
        async fn password_last_set(&self, a: &TargetId) -> Result<Option<i64>, crate::TargetError> {
            self.0.password_last_set(a).await
        }
    }
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let id = crate::conformance::unique_id("ad");
    let target = Arc::new(Slow(FakeTarget::new(&id, INITIAL)));
    let sealer = Arc::new(Sealer::new("k", Key::from_bytes(&[1; 32]).unwrap()).unwrap());
    let mut cfg = RotatorConfig::with_holder("slow");
    cfg.claim_ttl_ms = 300;
    cfg.target_margin_ms = 100;
    let r = Arc::new(Rotator::try_new(store.clone(), sealer.clone(), cfg).unwrap());
    r.enroll(&id, &SecretString::from(INITIAL), Schedule::None)
        .await
        .unwrap();
    let (r2, t2, id2) = (r.clone(), target.clone(), id.clone());
    let h = tokio::spawn(async move { r2.rotate(&*t2, &id2, &counter(), admin()).await });
    // Meanwhile nobody else can claim it, although 300 ms pass several times.
    let other = Rotator::new(store.clone(), sealer, RotatorConfig::with_holder("other"));
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if h.is_finished() {
            break;
        }
        assert!(matches!(
            other.claim(&id, None).await,
            Err(StateError::InFlight {
                holder_silent: false,
                ..
            })
        ));
    }
    let out = h.await.unwrap().unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }), "{out:?}");
}

/// Bug 8 at the protocol level: a scheduler paging through `list_due` reaches
/// every due record even when the first page's records stay due.
#[tokio::test]
async fn list_due_pages_reach_everything() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let sealer = Arc::new(Sealer::new("k", Key::from_bytes(&[1; 32]).unwrap()).unwrap());
    let clock = ManualClock::new(START);
    let r = Rotator::with_clock(
        store.clone(),
        sealer,
        Arc::new(clock.clone()),
        RotatorConfig::default(),
    );
    let mut ids = Vec::new();
    for i in 0..25 {
        let id = TargetId::new("sam", "host", format!("acct{i:02}")).unwrap();
        r.enroll(
            &id,
            &SecretString::from("x"),
            Schedule::Every { interval_ms: 1 },
        )
        .await
        .unwrap();
        ids.push(id);
    }
    clock.advance(10);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_due(clock.now(), after.as_ref(), 10)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        seen.extend(page);
    }
    assert_eq!(seen, ids);
}

/// Conditional rotation: of many callers who saw the same version, one rotates.
#[tokio::test]
async fn conditional_rotation_skips_with_fresh_version() {
    let w = World::new(realistic).await;
    let r = w.rotator("p", false);
    let v = w.record().await.version;
    let out = r
        .rotate(
            &*w.target,
            &w.id,
            &counter(),
            admin().precondition(Precondition::IfVersion(v)),
        )
        .await
        .unwrap();
    let RotationOutcome::Rotated { version } = out else {
        panic!("{out:?}")
    };
    let out = r
        .rotate(
            &*w.target,
            &w.id,
            &counter(),
            admin().precondition(Precondition::IfVersion(v)),
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        RotationOutcome::Skipped {
            version,
            reason: SkipReason::VersionChanged
        }
    );
    let out = r
        .rotate(
            &*w.target,
            &w.id,
            &counter(),
            admin().precondition(Precondition::IfDue(w.clock.now())),
        )
        .await
        .unwrap();
    assert!(matches!(
        out,
        RotationOutcome::Skipped {
            reason: SkipReason::NotDue,
            ..
        }
    ));
    assert_eq!(w.target.writes(), 1);
}

/// 200 concurrent lazy readers of an expired password: exactly one target write,
/// every reader gets the new password.
pub(super) async fn lazy_readers_on(store: Arc<dyn StateStore>, readers: usize) {
    let id = crate::conformance::unique_id("ad");
    let target = Arc::new(FakeTarget::new(&id, INITIAL));
    let sealer = Arc::new(Sealer::new("k", Key::from_bytes(&[5; 32]).unwrap()).unwrap());
    let r = Arc::new(Rotator::new(
        store,
        sealer,
        RotatorConfig::with_holder("lazy"),
    ));
    let mut rec = r
        .enroll(
            &id,
            &SecretString::from(INITIAL),
            Schedule::Ttl { ttl_ms: HOUR },
        )
        .await
        .unwrap();
    // The password expired a minute ago.
    rec.next_due = Some(crate::SystemClock.now() - 60_000);
    r.store()
        .compare_and_swap(&rec, rec.version, None)
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(readers));
    let src = Arc::new(counter());
    let mut hs = Vec::new();
    for _ in 0..readers {
        let (r, t, id, b, src) = (
            r.clone(),
            target.clone(),
            id.clone(),
            barrier.clone(),
            src.clone(),
        );
        hs.push(tokio::spawn(async move {
            b.wait().await;
            r.fresh_credentials(
                &*t,
                &id,
                &*src,
                RotationMethod::AdminReset,
                Duration::from_secs(60),
            )
            .await
            .unwrap()
        }));
    }
    let mut got = Vec::new();
    for h in hs {
        got.push(h.await.unwrap());
    }
    assert_eq!(target.writes(), 1, "exactly one target write");
    for c in &got {
        assert_eq!(c.current().expose_secret(), "Generated-Password-1");
        assert!(target.accepts(c.current()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lazy_readers_memory() {
    // A long ttl after the first rotation: the new password is fresh.
    lazy_readers_on(Arc::new(MemoryStore::new()), 200).await;
}

/// Waiting: a caller finding a rotation in flight can tell a live holder from a
/// silent one, and when its claim lapses.
#[tokio::test]
async fn waiting_reports_in_flight_holders() {
    let w = World::new(realistic).await;
    let r = w.rotator("waiter", false);
    let now = w.clock.now();
    let c = w.base.claim(&w.id, "dead", now, 120_000).await.unwrap();
    let info = r.in_flight(&w.id).await.unwrap().unwrap();
    assert_eq!(
        (info.holder.as_str(), info.expires_at, info.holder_silent),
        ("dead", now + 120_000, false)
    );
    let err = r
        .rotate(
            &*w.target,
            &w.id,
            &counter(),
            admin().wait(Duration::from_millis(30)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StateError::InFlight {
            expires_at: now + 120_000,
            holder_silent: false
        }
    );
    w.clock.advance(90_000);
    let err = r
        .rotate(&*w.target, &w.id, &counter(), admin())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StateError::InFlight {
            expires_at: now + 120_000,
            holder_silent: true
        }
    );
    // After the lapse, the waiter takes over.
    w.clock.advance(30_001);
    assert!(matches!(
        r.rotate(&*w.target, &w.id, &counter(), admin())
            .await
            .unwrap(),
        RotationOutcome::Rotated { .. }
    ));
    assert_eq!(
        w.base
            .compare_and_swap(&w.record().await, w.record().await.version, Some(c.fence()))
            .await,
        Err(StateError::Conflict(ConflictReason::Fenced))
    );
}

/// Protocol-level fencing: a holder that stalls at each point, is taken over, and
/// resumes, never overwrites the new holder's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_holder_resuming_after_takeover_is_fenced() {
    // Gated points: 0 read, 1 claim, 2 read, 3 write pending, 4 apply, 5 verify,
    // 6 password-last-set, 7 commit. Paused after 2..=6, A still has writes to do.
    for point in 2..7 {
        let w = World::new(realistic).await;
        let a = Arc::new(w.rotator("a", true));
        w.gate.arm_pause(point, true);
        let (a2, t, id) = (a.clone(), w.target.clone(), w.id.clone());
        let h = tokio::spawn(async move { a2.rotate(&*t, &id, &counter(), admin()).await });
        tokio::select! {
            () = w.gate.paused() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => panic!("point {point}: never paused"),
        }
        // A stalls past its claim; B takes over and settles/rotates.
        w.clock.advance(RotatorConfig::default().max_attempt_ms + 1);
        let b = w.rotator("b", false);
        let src = Counter(std::sync::atomic::AtomicUsize::new(100));
        let out = b.rotate(&*w.target, &w.id, &src, admin()).await.unwrap();
        assert!(
            matches!(out, RotationOutcome::Rotated { .. }),
            "point {point}: {out:?}"
        );
        let after_b = w.record().await;
        w.gate.resume();
        let res = h.await.unwrap();
        let rec = w.record().await;
        let ctx = format!("stale holder paused at {point}: {res:?}");
        assert!(
            matches!(
                res,
                Err(StateError::Conflict(_) | StateError::ClaimTooShort { .. })
            ),
            "{ctx}"
        );
        assert_eq!(rec, after_b, "{ctx}: the stale holder changed nothing");
        let cur = w.stored_current().await;
        assert!(w.target.accepts(&cur) || w.target.writes() > 2, "{ctx}");
    }
}

/// The check-out cycle with fenced transitions.
#[tokio::test]
async fn check_out_cycle() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let sealer = Arc::new(Sealer::new("k", Key::from_bytes(&[1; 32]).unwrap()).unwrap());
    let clock = ManualClock::new(START);
    let r = Rotator::with_clock(
        store.clone(),
        sealer,
        Arc::new(clock.clone()),
        RotatorConfig::with_holder("lib"),
    );
    let id = TargetId::new("sam", "host", "cwlocal1").unwrap();
    let target = FakeTarget::new(&id, INITIAL);
    r.enroll(&id, &SecretString::from(INITIAL), Schedule::None)
        .await
        .unwrap();
    store
        .put_set("pool", &SetConfig::new(60_000, 120_000), 0)
        .await
        .unwrap();
    store
        .add_to_set("pool", std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(
        r.check_out("pool", "alice", None).await,
        Err(StateError::NoneAvailable)
    );
    let src = counter();
    let m = store.set_members("pool").await.unwrap().remove(0);
    assert_eq!(m.state, MemberState::Returning);
    let ci = r
        .complete_return(
            &target,
            &m,
            &src,
            RotationMethod::AdminReset,
            Precondition::Always,
        )
        .await
        .unwrap();
    assert_eq!(ci.member.state, MemberState::Available);
    let before = r.credentials(&id).await.unwrap();
    let l1 = r.check_out("pool", "alice", Some(1_000_000)).await.unwrap();
    assert_eq!(l1.expires_at - l1.issued_at, 120_000, "capped by max ttl");
    assert_eq!(
        r.renew(&l1.lease_id, "mallory", None).await,
        Err(StateError::NotBorrower)
    );
    // Check-in enforcement: only alice (or a forced check-in).
    assert_eq!(
        r.check_in(
            &target,
            &l1.lease_id,
            Some("mallory"),
            &src,
            RotationMethod::AdminReset
        )
        .await
        .unwrap_err(),
        StateError::NotBorrower
    );
    let ci = r
        .check_in(
            &target,
            &l1.lease_id,
            Some("alice"),
            &src,
            RotationMethod::AdminReset,
        )
        .await
        .unwrap();
    assert!(matches!(ci.rotation, RotationOutcome::Rotated { .. }));
    assert_eq!(ci.member.state, MemberState::Available);
    let after = r.credentials(&id).await.unwrap();
    assert_ne!(
        after.current().expose_secret(),
        before.current().expose_secret()
    );
    assert!(target.accepts(after.current()));
    // Lent again; a reaper holding the old lease cannot rotate it.
    let l2 = r.check_out("pool", "bob", None).await.unwrap();
    let writes = target.writes();
    assert_eq!(
        r.check_in(
            &target,
            &l1.lease_id,
            None,
            &src,
            RotationMethod::AdminReset
        )
        .await
        .unwrap_err(),
        StateError::NotFound(Missing::Lease)
    );
    assert_eq!(target.writes(), writes, "bob's password untouched");
    // A failed check-in rotation leaves it Returning with a backoff, never lent.
    target.fail_next(
        FakeOp::AdminSet,
        FakeFailure::Fail(TargetErrorKind::Unavailable),
    );
    let ci = r
        .check_in(
            &target,
            &l2.lease_id,
            None,
            &src,
            RotationMethod::AdminReset,
        )
        .await
        .unwrap();
    assert!(matches!(ci.rotation, RotationOutcome::Failed { .. }));
    assert_eq!(ci.member.state, MemberState::Returning);
    assert_eq!(
        r.check_out("pool", "carol", None).await,
        Err(StateError::NoneAvailable)
    );
    let retry = r
        .complete_return(
            &target,
            &ci.member,
            &src,
            RotationMethod::AdminReset,
            Precondition::UnlessBackingOff(clock.now()),
        )
        .await
        .unwrap();
    assert!(matches!(
        retry.rotation,
        RotationOutcome::Skipped {
            reason: SkipReason::BackingOff { .. },
            ..
        }
    ));
    clock.advance(RotatorConfig::default().backoff_max_ms);
    let retry = r
        .complete_return(
            &target,
            &ci.member,
            &src,
            RotationMethod::AdminReset,
            Precondition::UnlessBackingOff(clock.now()),
        )
        .await
        .unwrap();
    assert!(
        matches!(retry.rotation, RotationOutcome::Rotated { .. }),
        "{retry:?}"
    );
    assert_eq!(retry.member.state, MemberState::Available);
    assert!(target.accepts(r.credentials(&id).await.unwrap().current()));
    assert_eq!(
        r.check_out("pool", "carol", None).await.unwrap().account,
        id
    );
}

#[tokio::test]
async fn store_only_sees_ciphertext_and_seals_are_bound() {
    let w = World::new(realistic).await;
    let r = w.rotator("p", false);
    r.rotate(&*w.target, &w.id, &counter(), admin())
        .await
        .unwrap();
    let rec = w.record().await;
    let dump = format!("{rec:?}");
    assert!(!dump.contains("Generated") && !dump.contains("Initial"));
    for s in [rec.current.as_ref().unwrap(), rec.last().unwrap()] {
        assert!(
            !s.as_bytes()
                .windows(9)
                .any(|x| x == b"Generated" || x == b"Initial-P")
        );
    }
    let c = r.credentials(&w.id).await.unwrap();
    let dump = format!("{c:?}");
    assert!(!dump.contains("Generated") && !dump.contains("Initial"));
    // Swapping current and last in the store is detected.
    let mut swapped = rec.clone();
    let last = swapped.history[0].clone();
    swapped.history[0] = swapped.current.take().unwrap();
    swapped.current = Some(last);
    w.base
        .compare_and_swap(&swapped, rec.version, None)
        .await
        .unwrap();
    assert_eq!(
        r.current_password(&w.id).await.err(),
        Some(StateError::Unseal)
    );
    assert!(
        w.sealer
            .open(&w.id, Field::Last, &swapped.history[0])
            .is_err()
    );
}

#[test]
fn target_error_display_has_no_secret() {
    let e = crate::TargetError::new(TargetErrorKind::Rejected, "password does not meet policy");
    let s = StateError::Target(e).to_string();
    assert!(s.contains("Rejected") && s.contains("policy"));
}

#[tokio::test]
async fn rotate_finishes_an_interrupted_rotation_instead_of_starting_another() {
    let w = World::new(realistic).await;
    // Crash right after the target took the new password.
    w.gate.arm(4, true);
    let src = counter();
    assert!(
        w.crash(
            w.rotator("a", true)
                .rotate(&*w.target, &w.id, &src, selfchange())
        )
        .await
        .is_none()
    );
    w.gate.disarm();
    w.clock.advance(120_001);
    let out = w
        .rotator("b", false)
        .rotate(&*w.target, &w.id, &src, selfchange())
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }), "{out:?}");
    assert_eq!(w.target.writes(), 1, "no second change");
    assert_eq!(
        w.stored_current().await.expose_secret(),
        "Generated-Password-1"
    );
    w.assert_consistent("finished interrupted rotation").await;
}

#[tokio::test]
async fn credentials_are_cached_per_version() {
    let w = World::new(realistic).await;
    let r = w.rotator("p", false);
    let a = r.credentials(&w.id).await.unwrap();
    let b = r.credentials(&w.id).await.unwrap();
    assert!(std::ptr::eq(a.current(), b.current()), "cached");
    r.rotate(&*w.target, &w.id, &counter(), admin())
        .await
        .unwrap();
    let c = r.credentials(&w.id).await.unwrap();
    assert_ne!(c.version(), a.version());
    assert_eq!(c.last().unwrap().expose_secret(), INITIAL);
    assert_eq!(c.due_at(), Some(w.clock.now() + 24 * HOUR));
    assert_eq!(c.state(), &RecordState::Ok);
    assert!(!c.is_due(w.clock.now()));
    assert!(c.is_due(w.clock.now() + 24 * HOUR));
}

#[tokio::test]
async fn config_is_validated() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let sealer = Arc::new(Sealer::new("k", Key::from_bytes(&[1; 32]).unwrap()).unwrap());
    let mut cfg = RotatorConfig::default();
    cfg.target_margin_ms = cfg.claim_ttl_ms;
    assert!(Rotator::try_new(store, sealer, cfg).is_err());
}
