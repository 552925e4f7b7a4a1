use std::sync::Arc;

use futures::FutureExt as _;
use secrecy::{ExposeSecret, SecretString};

use crate::testing::{CrashGate, CrashStore, FakeFailure, FakeOp, FakeTarget};
use crate::{
    Clock, Field, Key, ManualClock, MemoryStore, PasswordSource, RecoverOutcome, RotationMethod,
    RotationOutcome, Rotator, RotatorConfig, Sealer, StateError, StateStore, TargetErrorKind,
    TargetId,
};

const INITIAL: &str = "Initial-Password-0";

struct Counter(std::sync::atomic::AtomicUsize);

impl PasswordSource for Counter {
    fn generate(&self, _: &TargetId) -> crate::Result<SecretString> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(SecretString::from(format!("Generated-Password-{n}")))
    }
}

fn counter() -> Counter {
    Counter(std::sync::atomic::AtomicUsize::new(1))
}

struct World {
    id: TargetId,
    base: Arc<dyn StateStore>,
    sealer: Arc<Sealer>,
    clock: ManualClock,
    gate: Arc<CrashGate>,
    target: FakeTarget,
}

impl World {
    async fn new(configure: impl FnOnce(FakeTarget) -> FakeTarget) -> Self {
        Self::with_store(Arc::new(MemoryStore::new()), configure).await
    }

    async fn with_store(
        base: Arc<dyn StateStore>,
        configure: impl FnOnce(FakeTarget) -> FakeTarget,
    ) -> Self {
        let id = TargetId::new("ad", "example.com", "svc").unwrap();
        let sealer = Arc::new(Sealer::new("k1", Key::from_bytes(&[3; 32]).unwrap()).unwrap());
        let clock = ManualClock::new(1_700_000_000_000);
        let gate = CrashGate::new();
        let target = configure(
            FakeTarget::new(&id, INITIAL)
                .with_gate(gate.clone())
                .with_clock(Arc::new(clock.clone())),
        );
        let w = Self {
            id,
            base,
            sealer,
            clock,
            gate,
            target,
        };
        w.rotator("enroller", false)
            .enroll(&w.id, &SecretString::from(INITIAL), Some(0))
            .await
            .unwrap();
        w
    }

    fn rotator(&self, holder: &str, gated: bool) -> Rotator {
        let store: Arc<dyn StateStore> = if gated {
            Arc::new(CrashStore::new(self.base.clone(), self.gate.clone()))
        } else {
            self.base.clone()
        };
        Rotator::with_clock(
            store,
            self.sealer.clone(),
            Arc::new(self.clock.clone()),
            RotatorConfig::with_holder(holder),
        )
    }

    async fn stored_current(&self) -> SecretString {
        self.rotator("reader", false)
            .current_password(&self.id)
            .await
            .unwrap()
            .0
    }

    /// The invariant: no rotation in flight and the stored current password is the
    /// one the target accepts.
    async fn assert_consistent(&self, ctx: &str) {
        let rec = self.base.get_record(&self.id).await.unwrap();
        assert!(rec.pending.is_none(), "{ctx}: pending left");
        let cur = self.stored_current().await;
        assert!(
            self.target.accepts(&cur),
            "{ctx}: stored current is not the target's password"
        );
    }
}

/// Drops the rotation future at every await point (before and after each gated
/// operation, in the store and in the target), then recovers with a new process.
#[tokio::test]
async fn crash_at_every_await_point_then_recover() {
    for method in [RotationMethod::AdminReset, RotationMethod::SelfChange] {
        for after in [false, true] {
            let mut point = 0;
            loop {
                let w = World::new(|t| t).await;
                let src = counter();
                let r = w.rotator("crashing", true);
                w.gate.arm(point, after);
                let finished = r.rotate(&w.target, &w.id, &src, method).now_or_never();
                w.gate.disarm();
                let ctx = format!("{method:?} crash at point {point} (after={after})");
                if let Some(res) = finished {
                    // Past the last await point: a clean run.
                    assert!(
                        matches!(res, Ok(RotationOutcome::Rotated { .. })),
                        "{ctx}: {res:?}"
                    );
                    assert!(point >= 7, "{ctx}: too few await points seen");
                    w.assert_consistent(&ctx).await;
                    break;
                }
                // The process died. Its claim lapses; a new process recovers.
                w.clock.advance(RotatorConfig::default().claim_ttl_ms + 1);
                let rec = w.rotator("recoverer", false);
                let out = rec.recover(&w.target, &w.id).await.unwrap();
                assert!(
                    !matches!(out, RecoverOutcome::NeedsReconcile),
                    "{ctx}: {out:?}"
                );
                w.assert_consistent(&ctx).await;
                // And the account keeps rotating normally afterwards.
                let again = rec.rotate(&w.target, &w.id, &src, method).await.unwrap();
                assert!(matches!(again, RotationOutcome::Rotated { .. }), "{ctx}");
                w.assert_consistent(&ctx).await;
                point += 1;
            }
        }
    }
}

/// The same crash matrix on a durable store: the rotation future is dropped at
/// each gated point (while the runtime really waits on the store), and a fresh
/// store handle, as a new process would open, recovers.
pub(super) async fn crash_matrix_on(
    open: impl Fn() -> Arc<dyn StateStore>,
    fresh_db: impl Fn() -> Arc<dyn StateStore>,
) {
    for method in [RotationMethod::AdminReset, RotationMethod::SelfChange] {
        for after in [false, true] {
            let mut point = 0;
            loop {
                let w = World::with_store(fresh_db(), |t| t).await;
                let src = counter();
                let r = w.rotator("crashing", true);
                w.gate.arm(point, after);
                let finished = w.gate.run(r.rotate(&w.target, &w.id, &src, method)).await;
                w.gate.disarm();
                drop(r);
                let ctx = format!("durable {method:?} crash at {point} (after={after})");
                if let Some(res) = finished {
                    assert!(
                        matches!(res, Ok(RotationOutcome::Rotated { .. })),
                        "{ctx}: {res:?}"
                    );
                    assert!(point >= 7, "{ctx}: too few await points seen");
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
                let out = rec.recover(&w.target, &w.id).await.unwrap();
                assert!(
                    !matches!(out, RecoverOutcome::NeedsReconcile),
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
            let w = World::new(|t| t).await;
            let src = counter();
            // Leave a pending record with the password applied (crash after apply).
            w.gate.arm(3, true);
            let r = w.rotator("first", true);
            assert!(
                r.rotate(&w.target, &w.id, &src, RotationMethod::AdminReset)
                    .now_or_never()
                    .is_none()
            );
            w.clock.advance(200_000);
            w.gate.arm(point, after);
            let _ = w
                .rotator("second", true)
                .recover(&w.target, &w.id)
                .now_or_never();
            w.gate.disarm();
            w.clock.advance(200_000);
            w.rotator("third", false)
                .recover(&w.target, &w.id)
                .await
                .unwrap();
            w.assert_consistent(&format!("recover crash {point} {after}"))
                .await;
        }
    }
}

#[tokio::test]
async fn rotate_commits_current_and_last() {
    let w = World::new(|t| t).await;
    let r = w.rotator("p", false);
    let src = counter();
    let out = r
        .rotate(&w.target, &w.id, &src, RotationMethod::SelfChange)
        .await
        .unwrap();
    let RotationOutcome::Rotated { version } = out else {
        panic!("{out:?}")
    };
    let rec = w.base.get_record(&w.id).await.unwrap();
    assert_eq!(rec.version, version);
    assert_eq!(rec.last_rotated, Some(w.clock.now()));
    assert_eq!(
        w.stored_current().await.expose_secret(),
        "Generated-Password-1"
    );
    assert_eq!(
        r.last_password(&w.id)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        INITIAL
    );
    assert_eq!(w.target.writes(), 1);
    // The claim was released: another holder can rotate right away.
    let out = w
        .rotator("q", false)
        .rotate(&w.target, &w.id, &src, RotationMethod::AdminReset)
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }));
    assert_eq!(
        r.last_password(&w.id)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "Generated-Password-1"
    );
    w.assert_consistent("two rotations").await;
}

#[tokio::test]
async fn rejected_password_is_recorded_not_retried() {
    let w = World::new(|t| t.with_min_length(100)).await;
    let r = w.rotator("p", false);
    let out = r
        .rotate(&w.target, &w.id, &counter(), RotationMethod::AdminReset)
        .await
        .unwrap();
    assert!(
        matches!(&out, RotationOutcome::Rejected { message } if message.contains("length")),
        "{out:?}"
    );
    let rec = w.base.get_record(&w.id).await.unwrap();
    assert!(rec.pending.is_none(), "the refused password is dropped");
    assert!(rec.last_error.as_deref().unwrap().contains("Rejected"));
    let due = rec.next_due.unwrap();
    assert_eq!(
        due,
        w.clock.now() + RotatorConfig::default().retry_after_rejection_ms
    );
    assert!(
        !w.base
            .list_due(w.clock.now(), 10)
            .await
            .unwrap()
            .contains(&w.id),
        "not due again right away"
    );
    assert_eq!(w.stored_current().await.expose_secret(), INITIAL);
    assert_eq!(w.target.writes(), 0);
    w.assert_consistent("rejected").await;
}

#[tokio::test]
async fn definite_failures_keep_current_and_record_error() {
    for kind in [
        TargetErrorKind::BadCredentials,
        TargetErrorKind::Denied,
        TargetErrorKind::NoSuchAccount,
    ] {
        let w = World::new(|t| t).await;
        w.target
            .fail_next(FakeOp::AdminSet, FakeFailure::Fail(kind));
        let err = w
            .rotator("p", false)
            .rotate(&w.target, &w.id, &counter(), RotationMethod::AdminReset)
            .await
            .unwrap_err();
        assert!(matches!(&err, StateError::Target(e) if e.kind() == kind));
        let rec = w.base.get_record(&w.id).await.unwrap();
        assert!(rec.pending.is_none());
        assert!(rec.last_error.is_some());
        w.assert_consistent(&format!("{kind:?}")).await;
    }
}

#[tokio::test]
async fn ambiguous_failures_keep_pending_until_recover() {
    for (failure, applied) in [
        (FakeFailure::Fail(TargetErrorKind::Unavailable), false),
        (
            FakeFailure::FailAfterApply(TargetErrorKind::Unavailable),
            true,
        ),
        (FakeFailure::FailAfterApply(TargetErrorKind::Other), true),
    ] {
        let w = World::new(|t| t).await;
        w.target.fail_next(FakeOp::AdminSet, failure);
        let r = w.rotator("p", false);
        let err = r
            .rotate(&w.target, &w.id, &counter(), RotationMethod::AdminReset)
            .await
            .unwrap_err();
        assert!(matches!(err, StateError::Target(_)));
        assert!(
            w.base.get_record(&w.id).await.unwrap().pending.is_some(),
            "{failure:?}"
        );
        let out = r.recover(&w.target, &w.id).await.unwrap();
        if applied {
            assert!(
                matches!(out, RecoverOutcome::RolledForward { .. }),
                "{out:?}"
            );
        } else {
            assert!(matches!(out, RecoverOutcome::RolledBack { .. }), "{out:?}");
        }
        w.assert_consistent(&format!("{failure:?}")).await;
    }
}

#[tokio::test]
async fn verify_failures() {
    // Verify unreachable after a successful write: pending kept, recover rolls forward.
    let w = World::new(|t| t).await;
    w.target.fail_next(
        FakeOp::Verify,
        FakeFailure::Fail(TargetErrorKind::Unavailable),
    );
    let r = w.rotator("p", false);
    assert!(
        r.rotate(&w.target, &w.id, &counter(), RotationMethod::AdminReset)
            .await
            .is_err()
    );
    assert!(matches!(
        r.recover(&w.target, &w.id).await.unwrap(),
        RecoverOutcome::RolledForward { .. }
    ));
    w.assert_consistent("verify unavailable").await;

    // Verify says no although the target acknowledged: reconcile needed, then fixed.
    let w = World::new(|t| t).await;
    w.target.fail_next(FakeOp::Verify, FakeFailure::SayNo);
    let r = w.rotator("p", false);
    let src = counter();
    let out = r
        .rotate(&w.target, &w.id, &src, RotationMethod::AdminReset)
        .await
        .unwrap();
    assert_eq!(out, RotationOutcome::NeedsReconcile);
    assert!(w.base.get_record(&w.id).await.unwrap().pending.is_some());
    let out = r.reconcile(&w.target, &w.id, &src).await.unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }));
    w.assert_consistent("reconciled").await;
}

#[tokio::test]
async fn recover_detects_out_of_band_change() {
    // The pending password never reached the target, but someone else changed it
    // and the old one still verifies (grace period): neither is trustworthy.
    let w = World::new(|t| t.accepting_previous()).await;
    w.gate.arm(3, false); // points: 0 claim, 1 read, 2 write pending, 3 apply
    assert!(
        w.rotator("p", true)
            .rotate(&w.target, &w.id, &counter(), RotationMethod::AdminReset)
            .now_or_never()
            .is_none()
    );
    w.gate.disarm();
    w.clock.advance(1000);
    w.target.set_out_of_band("Someone-Else-1");
    w.clock.advance(200_000);
    let r = w.rotator("q", false);
    assert_eq!(
        r.recover(&w.target, &w.id).await.unwrap(),
        RecoverOutcome::NeedsReconcile
    );
    let rec = w.base.get_record(&w.id).await.unwrap();
    assert!(rec.pending.is_some());
    assert!(rec.last_error.as_deref().unwrap().contains("reconcile"));
    // Reconcile pushes the stored pending password with an admin reset.
    let out = r.reconcile(&w.target, &w.id, &counter()).await.unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }));
    w.assert_consistent("reconcile after out-of-band change")
        .await;
}

#[tokio::test]
async fn claims_exclude_concurrent_rotations_and_fence_stale_holders() {
    let w = World::new(|t| t).await;
    // A holds the claim (crashed before touching anything).
    w.gate.arm(1, false);
    assert!(
        w.rotator("a", true)
            .rotate(&w.target, &w.id, &counter(), RotationMethod::AdminReset)
            .now_or_never()
            .is_none()
    );
    w.gate.disarm();
    let err = w
        .rotator("b", false)
        .rotate(&w.target, &w.id, &counter(), RotationMethod::AdminReset)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StateError::Conflict(crate::ConflictReason::ClaimHeld)
    ));
    w.clock.advance(120_001);
    let out = w
        .rotator("b", false)
        .rotate(&w.target, &w.id, &counter(), RotationMethod::AdminReset)
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }));
    w.assert_consistent("after takeover").await;
}

#[tokio::test]
async fn store_only_sees_ciphertext_and_seals_are_bound() {
    let w = World::new(|t| t).await;
    let r = w.rotator("p", false);
    r.rotate(&w.target, &w.id, &counter(), RotationMethod::AdminReset)
        .await
        .unwrap();
    let rec = w.base.get_record(&w.id).await.unwrap();
    let dump = format!("{rec:?}");
    assert!(!dump.contains("Generated") && !dump.contains("Initial"));
    for s in [rec.current.as_ref().unwrap(), rec.last.as_ref().unwrap()] {
        assert!(
            !s.as_bytes()
                .windows(9)
                .any(|x| x == b"Generated" || x == b"Initial-P")
        );
    }
    // Swapping current and last in the store is detected.
    let mut swapped = rec.clone();
    std::mem::swap(&mut swapped.current, &mut swapped.last);
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
            .open(&w.id, Field::Last, swapped.last.as_ref().unwrap())
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
async fn policy_is_a_password_source() {
    let w = World::new(|t| t).await;
    let policy = credwheel_policy::Policy::vault_default();
    let r = w.rotator("p", false);
    let out = r
        .rotate(&w.target, &w.id, &policy, RotationMethod::AdminReset)
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }));
    let cur = w.stored_current().await;
    assert_eq!(cur.expose_secret().chars().count(), policy.length());
    assert_ne!(cur.expose_secret(), INITIAL);
    w.assert_consistent("policy source").await;
}

#[tokio::test]
async fn rotate_finishes_an_interrupted_rotation_instead_of_starting_another() {
    let w = World::new(|t| t).await;
    // Crash right after the target took the new password.
    w.gate.arm(3, true);
    let src = counter();
    assert!(
        w.rotator("a", true)
            .rotate(&w.target, &w.id, &src, RotationMethod::SelfChange)
            .now_or_never()
            .is_none()
    );
    w.gate.disarm();
    w.clock.advance(120_001);
    let out = w
        .rotator("b", false)
        .rotate(&w.target, &w.id, &src, RotationMethod::SelfChange)
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
