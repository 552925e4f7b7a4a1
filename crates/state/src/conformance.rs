//! The store conformance suite (feature `conformance`): every [`StateStore`] must
//! pass it. Third-party stores run it from a test:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! async fn conformance() {
//!     let store: Arc<dyn StateStore> = Arc::new(MyStore::open(...).await?);
//!     credwheel_state::conformance::run_all(store).await;
//! }
//! ```
//!
//! Every check uses fresh, random ids and set names, so the suite can run against a
//! store that already holds data (or concurrently with another run). Failures panic
//! with a message, like assertions in a test.

// This module is test code for stores: it asserts by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::{ConflictReason, Missing, StateError};
use crate::store::StateStore;
use crate::types::{
    LeaseTerms, MAX_CONFIG_BODY, MemberState, Millis, Pending, ReconcileKind, Record, RecordState,
    Schedule, Sealed, SetConfig, TargetId, Why, new_uuid,
};

/// A fresh id unique to this run.
pub fn unique_id(kind: &str) -> TargetId {
    TargetId::new(
        kind,
        format!("scope-{}", new_uuid()),
        format!("acct-{}", new_uuid()),
    )
    .expect("valid id")
}

fn full_record(id: &TargetId) -> Record {
    let mut r = Record::new(id.clone());
    r.current = Some(Sealed::from_bytes(vec![1, 2, 3, 0, 255, 7]));
    r.history = vec![
        Sealed::from_bytes(vec![9; 70]),
        Sealed::from_bytes(vec![8; 3]),
    ];
    r.pending = Some(Pending::new(
        new_uuid(),
        Sealed::from_bytes(vec![4, 5, 6]),
        1_700_000_000_123,
        1_700_000_600_123,
    ));
    r.set_at = Some(1_700_000_000_001);
    r.target_set_at = Some(1_699_999_999_999);
    r.schedule = Schedule::External {
        spec: "0 3 * * * Europe/Paris ünï".into(),
    };
    r.next_due = Some(1_800_000_000_002);
    r.state = RecordState::NeedsReconcile {
        since: 1_700_000_000_500,
        why: Why::new(ReconcileKind::ChangedElsewhere, "changed ünïcode"),
    };
    r.failures = 3;
    r.retry_at = Some(1_700_000_100_000);
    r.last_error = Some("some error ünïcode".into());
    r
}

/// Runs every check below, sequentially.
pub async fn run_all(store: Arc<dyn StateStore>) {
    records(&store).await;
    long_ids(&store).await;
    claims(&store).await;
    fencing(&store).await;
    due(&store).await;
    due_matches_is_due(&store).await;
    paging(&store).await;
    sets_and_leases(&store).await;
    set_settings(&store).await;
    configs(&store).await;
    race_cas(&store, 32, 5).await;
    race_leases(&store, 64, 10).await;
    race_claims(&store, 32).await;
}

/// Create, read, compare-and-swap, delete, and exact round trip of every field.
pub async fn records(store: &Arc<dyn StateStore>) {
    let id = unique_id("ad");
    assert_eq!(
        store.get_record(&id).await,
        Err(StateError::NotFound(Missing::Record))
    );
    let mut r = full_record(&id);
    r.version = 42; // ignored by create
    assert_eq!(store.create_record(&r).await.unwrap(), 1);
    assert_eq!(
        store.create_record(&r).await,
        Err(StateError::Conflict(ConflictReason::AlreadyExists))
    );
    let got = store.get_record(&id).await.unwrap();
    r.version = 1;
    assert_eq!(got, r, "every field round-trips");

    let mut next = got.clone();
    next.pending = None;
    next.history = Vec::new();
    next.last_error = None;
    next.next_due = None;
    next.set_at = None;
    next.target_set_at = None;
    next.schedule = Schedule::Every { interval_ms: 5 };
    next.state = RecordState::InDoubt;
    next.failures = 0;
    next.retry_at = None;
    next.current = Some(Sealed::from_bytes(vec![]));
    assert_eq!(store.compare_and_swap(&next, 1, None).await.unwrap(), 2);
    next.version = 2;
    assert_eq!(
        store.get_record(&id).await.unwrap(),
        next,
        "None fields stored"
    );
    for (sched, state) in [
        (Schedule::Ttl { ttl_ms: 7 }, RecordState::Ok),
        (Schedule::None, RecordState::Ok),
    ] {
        next.schedule = sched;
        next.state = state;
        next.version = store
            .compare_and_swap(&next, next.version, None)
            .await
            .unwrap();
        assert_eq!(store.get_record(&id).await.unwrap(), next);
    }
    let v = next.version;
    assert_eq!(
        store.compare_and_swap(&next, 1, None).await,
        Err(StateError::Conflict(ConflictReason::Version))
    );
    let other = unique_id("ad");
    assert_eq!(
        store
            .compare_and_swap(&Record::new(other.clone()), 1, None)
            .await,
        Err(StateError::NotFound(Missing::Record))
    );
    assert_eq!(
        store.delete_record(&id, 1).await,
        Err(StateError::Conflict(ConflictReason::Version))
    );
    store.delete_record(&id, v).await.unwrap();
    assert_eq!(
        store.get_record(&id).await,
        Err(StateError::NotFound(Missing::Record))
    );
    assert_eq!(
        store.delete_record(&id, v).await,
        Err(StateError::NotFound(Missing::Record))
    );
}

/// The longest ids the API accepts fit every store (PostgreSQL: one btree entry).
pub async fn long_ids(store: &Arc<dyn StateStore>) {
    let tag = new_uuid();
    let big = TargetId::new(
        format!("{tag}{}", "k".repeat(512 - tag.len())),
        "s".repeat(512),
        "ä".repeat(256),
    )
    .unwrap();
    store
        .create_record(&Record::new(big.clone()))
        .await
        .unwrap();
    assert_eq!(store.get_record(&big).await.unwrap().id, big);
    let c = store.claim(&big, "h", 0, 10).await.unwrap();
    store.release_claim(&c).await.unwrap();
    assert!(TargetId::new("k".repeat(513), "s", "a").is_err());
    assert!(TargetId::new("k", "s", "a".repeat(1025)).is_err());
    assert!(TargetId::new("k".repeat(512), "s".repeat(512), "a".repeat(513)).is_err());
}

/// One holder at a time, lapsed claims taken over, tokens strictly increasing.
pub async fn claims(store: &Arc<dyn StateStore>) {
    let id = unique_id("sam");
    let now = 1_000_000;
    assert_eq!(store.get_claim(&id).await.unwrap(), None);
    let a = store.claim(&id, "a", now, 1000).await.unwrap();
    assert_eq!(a.holder, "a");
    assert_eq!((a.renewed_at, a.expires_at), (now, now + 1000));
    assert_eq!(store.get_claim(&id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.claim(&id, "b", now + 999, 1000).await,
        Err(StateError::Conflict(ConflictReason::ClaimHeld))
    );
    // The same holder name does not re-enter either.
    assert_eq!(
        store.claim(&id, "a", now + 10, 1000).await,
        Err(StateError::Conflict(ConflictReason::ClaimHeld))
    );
    let a2 = store.renew_claim(&a, now + 500, 1000).await.unwrap();
    assert_eq!((a2.renewed_at, a2.expires_at), (now + 500, now + 1500));
    assert_eq!(a2.token, a.token);
    assert_eq!(store.get_claim(&id).await.unwrap(), Some(a2.clone()));
    assert!(store.claim(&id, "b", now + 1499, 1000).await.is_err());
    let b = store.claim(&id, "b", now + 1500, 1000).await.unwrap();
    assert!(b.token > a.token, "fencing token increases on takeover");
    assert_eq!(
        store.renew_claim(&a2, now + 1600, 1000).await,
        Err(StateError::Conflict(ConflictReason::Fenced))
    );
    store.release_claim(&a2).await.unwrap(); // no-op: b holds it
    assert!(store.claim(&id, "c", now + 1600, 1000).await.is_err());
    store.release_claim(&b).await.unwrap();
    assert_eq!(store.get_claim(&id).await.unwrap(), None, "released");
    let c = store.claim(&id, "c", now + 1601, 1000).await.unwrap();
    assert!(c.token > b.token, "fencing token increases after release");
    assert!(
        store.claim(&id, "x", now, 0).await.is_err(),
        "ttl 0 refused"
    );
    // A lapsed claim that nobody took over can still be renewed by its holder.
    let c2 = store.renew_claim(&c, now + 5000, 1000).await.unwrap();
    assert_eq!(c2.expires_at, now + 6000);
}

/// Writes under a fence fail once the claim was taken over.
pub async fn fencing(store: &Arc<dyn StateStore>) {
    let id = unique_id("ad");
    store.create_record(&Record::new(id.clone())).await.unwrap();
    let a = store.claim(&id, "a", 0, 100).await.unwrap();
    let mut r = store.get_record(&id).await.unwrap();
    r.last_error = Some("a".into());
    let v = store
        .compare_and_swap(&r, r.version, Some(a.fence()))
        .await
        .unwrap();
    let b = store.claim(&id, "b", 100, 100).await.unwrap();
    assert_eq!(
        store.compare_and_swap(&r, v, Some(a.fence())).await,
        Err(StateError::Conflict(ConflictReason::Fenced))
    );
    assert_eq!(
        store.get_record(&id).await.unwrap().version,
        v,
        "fenced write had no effect"
    );
    let v2 = store
        .compare_and_swap(&r, v, Some(b.fence()))
        .await
        .unwrap();
    assert_eq!(v2, v + 1);
    store.release_claim(&b).await.unwrap();
    assert_eq!(
        store.compare_and_swap(&r, v2, Some(b.fence())).await,
        Err(StateError::Conflict(ConflictReason::Fenced)),
        "a released claim no longer fences"
    );
    // Unfenced writes are not subject to claims.
    store.compare_and_swap(&r, v2, None).await.unwrap();
}

async fn all_due(store: &Arc<dyn StateStore>, now: Millis, kind: &str) -> Vec<TargetId> {
    let mut out = Vec::new();
    let mut after: Option<TargetId> = None;
    loop {
        let page = store.list_due(now, after.as_ref(), 7).await.unwrap();
        assert!(page.len() <= 7);
        if page.is_empty() {
            return out
                .into_iter()
                .filter(|i: &TargetId| i.kind() == kind)
                .collect();
        }
        assert!(page.windows(2).all(|w| w[0] < w[1]), "id order");
        if let Some(a) = &after {
            assert!(page[0] > *a, "strictly after the cursor");
        }
        after = page.last().cloned();
        out.extend(page);
    }
}

/// `list_due` lists exactly the records whose [`Record::is_due`] holds, for every
/// combination of health, pending rotation, schedule time and backoff around `now`
/// (stores may answer it from an index rather than from `is_due` itself).
pub async fn due_matches_is_due(store: &Arc<dyn StateStore>) {
    let kind = format!("dm{}", &new_uuid()[..8]);
    let now = -3_000_000_000_000;
    let times = [
        None,
        Some(i64::MIN),
        Some(now - 1),
        Some(now),
        Some(now + 1),
    ];
    let mut want = HashSet::new();
    let mut all = Vec::new();
    for state in 0..3 {
        for pending in [false, true] {
            for next_due in times {
                for retry_at in times {
                    let mut r = Record::new(unique_id(&kind));
                    r.state = match state {
                        0 => RecordState::Ok,
                        1 => RecordState::InDoubt,
                        _ => RecordState::NeedsReconcile {
                            since: 0,
                            why: Why::new(ReconcileKind::Unknown, "x"),
                        },
                    };
                    if pending {
                        r.pending =
                            Some(Pending::new(new_uuid(), Sealed::from_bytes(vec![1]), 0, 1));
                    }
                    r.next_due = next_due;
                    r.retry_at = retry_at;
                    store.create_record(&r).await.unwrap();
                    if r.is_due(now) {
                        want.insert(r.id.clone());
                    }
                    all.push(r.id);
                }
            }
        }
    }
    assert!(!want.is_empty() && want.len() < all.len());
    let got: HashSet<_> = all_due(store, now, &kind).await.into_iter().collect();
    assert_eq!(got, want, "list_due agrees with Record::is_due");
    for id in all {
        store.delete_record(&id, 1).await.unwrap();
    }
}

/// `list_due`: schedule due, in doubt, backing off, needing an operator; paging.
pub async fn due(store: &Arc<dyn StateStore>) {
    let kind = format!("due{}", &new_uuid()[..8]);
    let now = -4_000_000_000_000;
    let mk = |f: &dyn Fn(&mut Record)| {
        let mut r = Record::new(unique_id(&kind));
        f(&mut r);
        r
    };
    let due_sched = mk(&|r| r.next_due = Some(now - 1));
    let due_exact = mk(&|r| r.next_due = Some(now));
    let later = mk(&|r| r.next_due = Some(i64::MAX - 1));
    let never = mk(&|_| {});
    let pending = mk(&|r| {
        r.pending = Some(Pending::new(new_uuid(), Sealed::from_bytes(vec![1]), 0, 1));
        r.state = RecordState::InDoubt;
    });
    let backing_off = mk(&|r| {
        r.next_due = Some(now - 1);
        r.retry_at = Some(now + 1);
    });
    let backoff_over = mk(&|r| {
        r.next_due = Some(now - 1);
        r.retry_at = Some(now);
    });
    let operator = mk(&|r| {
        r.next_due = Some(now - 1);
        r.pending = Some(Pending::new(new_uuid(), Sealed::from_bytes(vec![1]), 0, 1));
        r.state = RecordState::NeedsReconcile {
            since: 0,
            why: Why::new(ReconcileKind::Unknown, "x"),
        };
    });
    let all = [
        &due_sched,
        &due_exact,
        &later,
        &never,
        &pending,
        &backing_off,
        &backoff_over,
        &operator,
    ];
    for r in all {
        store.create_record(r).await.unwrap();
    }
    let got: HashSet<_> = all_due(store, now, &kind).await.into_iter().collect();
    let want: HashSet<_> = [&due_sched, &due_exact, &pending, &backoff_over]
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(got, want, "exactly the due records");
    for r in all {
        let stored = store.get_record(&r.id).await.unwrap();
        assert_eq!(stored.is_due(now), want.contains(&r.id), "is_due agrees");
    }
    assert!(store.list_due(now, None, 0).await.unwrap().is_empty());
    let ops = store
        .list_needing_operator(None, usize::MAX >> 1)
        .await
        .unwrap();
    assert!(ops.iter().any(|r| r.id == operator.id));
    assert!(ops.iter().all(|r| r.state.needs_operator()));
}

/// `list_records` reaches every record exactly once, page by page.
pub async fn paging(store: &Arc<dyn StateStore>) {
    let kind = format!("page{}", &new_uuid()[..8]);
    let mut ids: Vec<TargetId> = (0..23).map(|_| unique_id(&kind)).collect();
    // Byte order: an upper-case letter sorts before a lower-case one, 'é' after 'z'.
    ids.push(TargetId::new(&kind, "Zed", "a").unwrap());
    ids.push(TargetId::new(&kind, "zed", "a").unwrap());
    ids.push(TargetId::new(&kind, "éd", "a").unwrap());
    for id in &ids {
        store.create_record(&Record::new(id.clone())).await.unwrap();
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut after: Option<TargetId> = None;
    loop {
        let page = store.list_records(after.as_ref(), 5).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 5);
        after = page.last().map(|r| r.id.clone());
        seen.extend(page.into_iter().map(|r| r.id).filter(|i| i.kind() == kind));
    }
    assert_eq!(seen, ids, "every record once, in byte order");
}

async fn make_available(store: &Arc<dyn StateStore>, set: &str) {
    for m in store.set_members(set).await.unwrap() {
        if m.state == MemberState::Returning {
            if store.get_record(&m.account).await.is_err() {
                store
                    .create_record(&Record::new(m.account.clone()))
                    .await
                    .unwrap();
            }
            store.finish_return(&m.account, m.generation).await.unwrap();
        }
    }
}

/// Sets, membership and the whole lease life cycle.
pub async fn sets_and_leases(store: &Arc<dyn StateStore>) {
    let set = format!("set-{}", new_uuid());
    let other = format!("set-{}", new_uuid());
    let accts: Vec<TargetId> = (0..3).map(|_| unique_id("ad")).collect();
    let terms = LeaseTerms::new(1000, 3000);
    assert_eq!(
        store.take_lease(&set, "x", 0, terms).await,
        Err(StateError::NotFound(Missing::Set))
    );
    assert_eq!(
        store.add_to_set(&set, &accts).await,
        Err(StateError::NotFound(Missing::Set))
    );
    assert!(store.set_members(&set).await.is_err());
    let cfg = SetConfig::new(1000, 3000);
    store.put_set(&set, &cfg, 0).await.unwrap();
    store.put_set(&other, &cfg, 0).await.unwrap();
    store.add_to_set(&set, &accts[..2]).await.unwrap();
    store.add_to_set(&set, &accts[..2]).await.unwrap(); // idempotent
    assert_eq!(
        store
            .add_to_set(&other, &[accts[2].clone(), accts[0].clone()])
            .await,
        Err(StateError::Conflict(ConflictReason::OtherSet))
    );
    assert!(
        store.set_members(&other).await.unwrap().is_empty(),
        "a refused add changes nothing"
    );
    // New members are Returning: nothing to lend until their first rotation.
    let members = store.set_members(&set).await.unwrap();
    assert!(members.iter().all(|m| m.state == MemberState::Returning));
    assert_eq!(
        store.take_lease(&set, "x", 0, terms).await,
        Err(StateError::NoneAvailable)
    );
    // finish_return is fenced on the generation.
    let m0 = &members[0];
    assert_eq!(
        store.finish_return(&m0.account, m0.generation + 7).await,
        Err(StateError::Conflict(ConflictReason::MemberState))
    );
    // Available but without a record, or with a record in doubt: not lent.
    let done = store
        .finish_return(&m0.account, m0.generation)
        .await
        .unwrap();
    assert_eq!(done.state, MemberState::Available);
    assert!(done.generation > m0.generation);
    assert_eq!(
        store.finish_return(&m0.account, m0.generation).await,
        Err(StateError::Conflict(ConflictReason::MemberState)),
        "a second finish with the old generation is refused"
    );
    assert_eq!(
        store.take_lease(&set, "x", 0, terms).await,
        Err(StateError::NoneAvailable),
        "no record: not lent"
    );
    let mut doubt = Record::new(m0.account.clone());
    doubt.state = RecordState::InDoubt;
    store.create_record(&doubt).await.unwrap();
    assert_eq!(
        store.take_lease(&set, "x", 0, terms).await,
        Err(StateError::NoneAvailable),
        "in doubt: not lent"
    );
    doubt.state = RecordState::Ok;
    doubt.pending = Some(Pending::new(new_uuid(), Sealed::from_bytes(vec![1]), 0, 1));
    store.compare_and_swap(&doubt, 1, None).await.unwrap();
    assert_eq!(
        store.take_lease(&set, "x", 0, terms).await,
        Err(StateError::NoneAvailable),
        "pending: not lent"
    );
    doubt.pending = None;
    store.compare_and_swap(&doubt, 2, None).await.unwrap();
    make_available(store, &set).await;

    let now = 10_000;
    let l1 = store.take_lease(&set, "alice", now, terms).await.unwrap();
    assert_eq!(
        (l1.set.as_str(), l1.borrower.as_str()),
        (set.as_str(), "alice")
    );
    assert_eq!(
        (l1.issued_at, l1.expires_at, l1.max_expires_at),
        (now, now + 1000, now + 3000)
    );
    assert_eq!(store.get_lease(&l1.lease_id).await.unwrap(), l1);
    let l2 = store.take_lease(&set, "bob", now, terms).await.unwrap();
    assert_ne!(l1.account, l2.account);
    assert_ne!(l1.lease_id, l2.lease_id);
    assert_eq!(
        store.take_lease(&set, "carol", now, terms).await,
        Err(StateError::NoneAvailable)
    );
    // Adding accounts keeps existing leases.
    store.add_to_set(&set, &accts).await.unwrap();
    let members = store.set_members(&set).await.unwrap();
    assert_eq!(members.len(), 3);
    assert!(members.windows(2).all(|w| w[0].account < w[1].account));
    let lent: Vec<_> = members.iter().filter_map(|m| m.lease.clone()).collect();
    assert_eq!(lent.len(), 2);
    assert!(lent.contains(&l1) && lent.contains(&l2));
    assert!(
        members
            .iter()
            .all(|m| (m.state == MemberState::Lent) == m.lease.is_some())
    );
    make_available(store, &set).await;
    let l3 = store.take_lease(&set, "carol", now, terms).await.unwrap();
    assert_eq!(l3.account, accts[2]);
    assert!(
        LeaseTerms::new(0, 0).check().is_err()
            && store
                .take_lease(&set, "d", now, LeaseTerms::new(5, 1))
                .await
                .is_err()
    );

    // Renew: capped at max, borrower enforced, not after expiry.
    let r = store
        .renew_lease(&l1.lease_id, Some("alice"), now + 900, 1000)
        .await
        .unwrap();
    assert_eq!(r.expires_at, now + 1900);
    let r = store
        .renew_lease(&l1.lease_id, None, now + 1800, 5000)
        .await
        .unwrap();
    assert_eq!(r.expires_at, now + 3000, "capped at max expiry");
    assert_eq!(
        store
            .renew_lease(&l1.lease_id, Some("mallory"), now + 1800, 100)
            .await,
        Err(StateError::NotBorrower)
    );
    assert_eq!(
        store
            .renew_lease(&l2.lease_id, Some("bob"), now + 1000, 100)
            .await,
        Err(StateError::Expired)
    );
    // Expired leases are listed and their accounts stay unavailable.
    let expired = store.list_expired_leases(now + 1000, 10_000).await.unwrap();
    let ours: Vec<_> = expired.iter().filter(|l| l.set == set).collect();
    assert_eq!(ours.len(), 2, "l2 and l3 expired at now+1000");
    assert!(ours.iter().all(|l| l.lease_id != l1.lease_id));
    assert!(
        store
            .take_lease(&set, "dave", now + 5000, terms)
            .await
            .is_err()
    );

    // Check-in: borrower enforced, Lent -> Returning, fenced on the lease id.
    assert_eq!(
        store.begin_return(&l2.lease_id, Some("mallory")).await,
        Err(StateError::NotBorrower)
    );
    assert_eq!(
        store
            .remove_from_set(&set, std::slice::from_ref(&l2.account))
            .await,
        Err(StateError::Conflict(ConflictReason::Leased))
    );
    let (m, ended) = store.begin_return(&l2.lease_id, Some("bob")).await.unwrap();
    assert_eq!(ended, l2);
    assert_eq!((m.state, m.lease.as_ref()), (MemberState::Returning, None));
    assert_eq!(
        store.begin_return(&l2.lease_id, None).await,
        Err(StateError::NotFound(Missing::Lease)),
        "a stale check-in does nothing"
    );
    assert_eq!(
        store.renew_lease(&l2.lease_id, None, now, 100).await,
        Err(StateError::NotFound(Missing::Lease))
    );
    assert_eq!(
        store.get_lease(&l2.lease_id).await,
        Err(StateError::NotFound(Missing::Lease))
    );
    assert!(
        store
            .take_lease(&set, "erin", now + 5000, terms)
            .await
            .is_err(),
        "Returning is never lent"
    );
    store.finish_return(&m.account, m.generation).await.unwrap();
    let l4 = store
        .take_lease(&set, "erin", now + 5000, terms)
        .await
        .unwrap();
    assert_eq!(l4.account, l2.account);
    // A reaper holding the old lease id cannot touch the account lent again.
    assert_eq!(
        store.begin_return(&l2.lease_id, None).await,
        Err(StateError::NotFound(Missing::Lease))
    );
    let (m4, _) = store.begin_return(&l4.lease_id, None).await.unwrap();
    assert_eq!(
        store.finish_return(&m.account, m.generation).await,
        Err(StateError::Conflict(ConflictReason::MemberState)),
        "an old generation cannot finish a newer return"
    );
    store
        .remove_from_set(&set, std::slice::from_ref(&m4.account))
        .await
        .unwrap();
    assert_eq!(store.set_members(&set).await.unwrap().len(), 2);
    store
        .add_to_set(&other, std::slice::from_ref(&l2.account))
        .await
        .unwrap();
    assert_eq!(store.set_members(&other).await.unwrap().len(), 1);
}

/// Set settings: create, compare-and-swap, list in order, delete.
pub async fn set_settings(store: &Arc<dyn StateStore>) {
    let prefix = format!("cfg-{}", &new_uuid()[..8]);
    let names: Vec<String> = ["b", "a", "C", "é"]
        .iter()
        .map(|s| format!("{prefix}-{s}"))
        .collect();
    let cfg = SetConfig::new(1000, 2000);
    for n in &names {
        assert_eq!(store.put_set(n, &cfg, 0).await.unwrap(), 1);
    }
    assert_eq!(
        store.put_set(&names[0], &cfg, 0).await,
        Err(StateError::Conflict(ConflictReason::AlreadyExists))
    );
    assert_eq!(
        store.put_set(&format!("{prefix}-none"), &cfg, 1).await,
        Err(StateError::NotFound(Missing::Set))
    );
    assert!(
        store
            .put_set("bad", &SetConfig::new(0, 1), 0)
            .await
            .is_err()
    );
    let mut cfg2 = SetConfig::new(5, 10);
    cfg2.enforce_check_in = false;
    assert_eq!(store.put_set(&names[0], &cfg2, 1).await.unwrap(), 2);
    assert_eq!(
        store.put_set(&names[0], &cfg2, 1).await,
        Err(StateError::Conflict(ConflictReason::Version))
    );
    let got = store.get_set(&names[0]).await.unwrap();
    assert_eq!((got.config, got.version), (cfg2.clone(), 2));
    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_sets(after.as_deref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|s| s.name.clone());
        listed.extend(
            page.into_iter()
                .map(|s| s.name)
                .filter(|n| n.starts_with(&prefix)),
        );
    }
    let mut want = names.clone();
    want.sort();
    assert_eq!(listed, want, "byte order, every set once");
    // Delete: version checked, refused while an account is lent.
    let acct = unique_id("ad");
    store
        .create_record(&Record::new(acct.clone()))
        .await
        .unwrap();
    store
        .add_to_set(&names[1], std::slice::from_ref(&acct))
        .await
        .unwrap();
    make_available(store, &names[1]).await;
    let l = store
        .take_lease(&names[1], "x", 0, LeaseTerms::new(10, 10))
        .await
        .unwrap();
    assert_eq!(
        store.delete_set(&names[1], 1).await,
        Err(StateError::Conflict(ConflictReason::Leased))
    );
    assert_eq!(
        store.delete_set(&names[1], 9).await,
        Err(StateError::Conflict(ConflictReason::Version))
    );
    store.begin_return(&l.lease_id, None).await.unwrap();
    store.delete_set(&names[1], 1).await.unwrap();
    assert_eq!(
        store.get_set(&names[1]).await,
        Err(StateError::NotFound(Missing::Set))
    );
    // Its members are free to join another set.
    store
        .add_to_set(&names[2], std::slice::from_ref(&acct))
        .await
        .unwrap();
}

/// Configuration documents: create, compare-and-swap, list by kind, delete.
pub async fn configs(store: &Arc<dyn StateStore>) {
    let kind = format!("kind-{}", &new_uuid()[..8]);
    let other = format!("{kind}x");
    assert_eq!(
        store.get_config(&kind, "a").await,
        Err(StateError::NotFound(Missing::Config))
    );
    assert_eq!(store.put_config(&kind, "b", b"{}", 0).await.unwrap(), 1);
    assert_eq!(
        store.put_config(&kind, "a", b"\x00\xff", 0).await.unwrap(),
        1
    );
    assert_eq!(store.put_config(&other, "a", b"o", 0).await.unwrap(), 1);
    assert_eq!(
        store.put_config(&kind, "a", b"x", 0).await,
        Err(StateError::Conflict(ConflictReason::AlreadyExists))
    );
    assert_eq!(
        store.put_config(&kind, "zz", b"x", 3).await,
        Err(StateError::NotFound(Missing::Config))
    );
    assert_eq!(store.put_config(&kind, "a", b"v2", 1).await.unwrap(), 2);
    assert_eq!(
        store.put_config(&kind, "a", b"v3", 1).await,
        Err(StateError::Conflict(ConflictReason::Version))
    );
    let a = store.get_config(&kind, "a").await.unwrap();
    assert_eq!((a.version, a.body.as_slice()), (2, &b"v2"[..]));
    let all = store.list_configs(&kind, None, 10).await.unwrap();
    let names: Vec<_> = all.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "only this kind, name order");
    let page = store.list_configs(&kind, Some("a"), 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].body, b"{}");
    assert!(
        store
            .put_config(&kind, "big", &vec![0; MAX_CONFIG_BODY + 1], 0)
            .await
            .is_err()
    );
    assert_eq!(
        store.delete_config(&kind, "a", 1).await,
        Err(StateError::Conflict(ConflictReason::Version))
    );
    store.delete_config(&kind, "a", 2).await.unwrap();
    assert_eq!(store.list_configs(&kind, None, 10).await.unwrap().len(), 1);
    assert_eq!(store.get_config(&other, "a").await.unwrap().body, b"o");
}

/// `tasks` tasks race a compare-and-swap on one record, `rounds` times: exactly one
/// winner per version.
pub async fn race_cas(store: &Arc<dyn StateStore>, tasks: usize, rounds: usize) {
    let id = unique_id("ad");
    store.create_record(&Record::new(id.clone())).await.unwrap();
    for round in 0..rounds {
        let base = store.get_record(&id).await.unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(tasks));
        let mut handles = Vec::new();
        for t in 0..tasks {
            let (store, barrier, mut rec) = (store.clone(), barrier.clone(), base.clone());
            handles.push(tokio::spawn(async move {
                rec.last_error = Some(format!("task {t}"));
                barrier.wait().await;
                match store.compare_and_swap(&rec, rec.version, None).await {
                    Ok(v) => Some((t, v)),
                    Err(StateError::Conflict(ConflictReason::Version)) => None,
                    Err(e) => panic!("unexpected error in CAS race: {e}"),
                }
            }));
        }
        let mut winners = Vec::new();
        for h in handles {
            if let Some(w) = h.await.unwrap() {
                winners.push(w);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one CAS winner");
        let (t, v) = winners[0];
        assert_eq!(v, base.version + 1);
        let now = store.get_record(&id).await.unwrap();
        assert_eq!(now.version, v);
        assert_eq!(
            now.last_error,
            Some(format!("task {t}")),
            "the winner's write is stored"
        );
    }
}

/// `borrowers` tasks race for a set of `accounts` accounts: every account is lent
/// once, never twice.
pub async fn race_leases(store: &Arc<dyn StateStore>, borrowers: usize, accounts: usize) {
    let set = format!("race-{}", new_uuid());
    let accts: Vec<TargetId> = (0..accounts).map(|_| unique_id("sam")).collect();
    store
        .put_set(&set, &SetConfig::new(60_000, 60_000), 0)
        .await
        .unwrap();
    store.add_to_set(&set, &accts).await.unwrap();
    make_available(store, &set).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(borrowers));
    let terms = LeaseTerms::new(60_000, 60_000);
    let mut handles = Vec::new();
    for b in 0..borrowers {
        let (store, barrier, set) = (store.clone(), barrier.clone(), set.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            match store.take_lease(&set, &format!("b{b}"), 0, terms).await {
                Ok(l) => Some(l),
                Err(StateError::NoneAvailable) => None,
                Err(e) => panic!("unexpected error in lease race: {e}"),
            }
        }));
    }
    let mut got = Vec::new();
    for h in handles {
        got.extend(h.await.unwrap());
    }
    assert_eq!(
        got.len(),
        accounts.min(borrowers),
        "every free account is lent"
    );
    let distinct: HashSet<_> = got.iter().map(|l| l.account.clone()).collect();
    assert_eq!(distinct.len(), got.len(), "no account lent twice");
    let members = store.set_members(&set).await.unwrap();
    for l in &got {
        let m = members.iter().find(|m| m.account == l.account).unwrap();
        assert_eq!(m.lease.as_ref(), Some(l), "stored lease is the winner's");
    }
}

/// `tasks` tasks race to claim one account: exactly one holder.
pub async fn race_claims(store: &Arc<dyn StateStore>, tasks: usize) {
    let id = unique_id("ad");
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks));
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (store, barrier, id) = (store.clone(), barrier.clone(), id.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            match store.claim(&id, &format!("h{t}"), 0, 60_000).await {
                Ok(c) => Some(c),
                Err(StateError::Conflict(ConflictReason::ClaimHeld)) => None,
                Err(e) => panic!("unexpected error in claim race: {e}"),
            }
        }));
    }
    let mut holders = Vec::new();
    for h in handles {
        holders.extend(h.await.unwrap());
    }
    assert_eq!(holders.len(), 1, "exactly one claim holder");
}
