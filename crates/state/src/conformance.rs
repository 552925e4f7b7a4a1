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

use crate::error::{ConflictReason, StateError};
use crate::store::StateStore;
use crate::types::{LeaseTerms, Pending, Record, Sealed, TargetId, new_uuid};

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
    r.last = Some(Sealed::from_bytes(vec![9; 70]));
    r.pending = Some(Pending {
        attempt: new_uuid(),
        sealed: Sealed::from_bytes(vec![4, 5, 6]),
        created_at: 1_700_000_000_123,
    });
    r.last_rotated = Some(1_700_000_000_001);
    r.next_due = Some(1_800_000_000_002);
    r.last_error = Some("some error ünïcode".into());
    r
}

/// Runs every check below, sequentially.
pub async fn run_all(store: Arc<dyn StateStore>) {
    records(&store).await;
    claims(&store).await;
    fencing(&store).await;
    due(&store).await;
    sets_and_leases(&store).await;
    race_cas(&store, 32, 5).await;
    race_leases(&store, 64, 10).await;
    race_claims(&store, 32).await;
}

/// Create, read, compare-and-swap, delete, and exact round trip of every field.
pub async fn records(store: &Arc<dyn StateStore>) {
    let id = unique_id("ad");
    assert_eq!(
        store.get_record(&id).await,
        Err(StateError::NotFound("record"))
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
    next.last = None;
    next.last_error = None;
    next.next_due = None;
    next.last_rotated = None;
    next.current = Some(Sealed::from_bytes(vec![]));
    assert_eq!(store.compare_and_swap(&next, 1, None).await.unwrap(), 2);
    next.version = 2;
    assert_eq!(
        store.get_record(&id).await.unwrap(),
        next,
        "None fields stored"
    );
    assert_eq!(
        store.compare_and_swap(&next, 1, None).await,
        Err(StateError::Conflict(ConflictReason::Version))
    );
    let other = unique_id("ad");
    assert_eq!(
        store
            .compare_and_swap(&Record::new(other.clone()), 1, None)
            .await,
        Err(StateError::NotFound("record"))
    );
    assert_eq!(
        store.delete_record(&id, 1).await,
        Err(StateError::Conflict(ConflictReason::Version))
    );
    store.delete_record(&id, 2).await.unwrap();
    assert_eq!(
        store.get_record(&id).await,
        Err(StateError::NotFound("record"))
    );
    assert_eq!(
        store.delete_record(&id, 2).await,
        Err(StateError::NotFound("record"))
    );
}

/// One holder at a time, lapsed claims taken over, tokens strictly increasing.
pub async fn claims(store: &Arc<dyn StateStore>) {
    let id = unique_id("sam");
    let now = 1_000_000;
    let a = store.claim(&id, "a", now, 1000).await.unwrap();
    assert_eq!(a.holder, "a");
    assert_eq!(a.expires_at, now + 1000);
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
    assert_eq!(a2.expires_at, now + 1500);
    assert_eq!(a2.token, a.token);
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

/// `list_due` returns due and pending records only.
pub async fn due(store: &Arc<dyn StateStore>) {
    let kind = format!("due{}", &new_uuid()[..8]);
    let (a, b, c) = (unique_id(&kind), unique_id(&kind), unique_id(&kind));
    let mut ra = Record::new(a.clone());
    ra.next_due = Some(-5_000_000_000_000); // due long ago, before any other test's
    let mut rb = Record::new(b.clone());
    rb.next_due = Some(i64::MAX - 1);
    let mut rc = Record::new(c.clone());
    rc.next_due = None;
    for r in [&ra, &rb, &rc] {
        store.create_record(r).await.unwrap();
    }
    let got = store.list_due(-4_000_000_000_000, 10_000).await.unwrap();
    assert!(got.contains(&a));
    assert!(!got.contains(&b) && !got.contains(&c));
    rc.pending = Some(Pending {
        attempt: new_uuid(),
        sealed: Sealed::from_bytes(vec![1]),
        created_at: 0,
    });
    store.compare_and_swap(&rc, 1, None).await.unwrap();
    let got = store.list_due(-4_000_000_000_000, 10_000).await.unwrap();
    assert!(got.contains(&c), "a pending record is due");
    assert!(store.list_due(0, 0).await.unwrap().is_empty());
}

/// Sets, membership and the whole lease life cycle.
pub async fn sets_and_leases(store: &Arc<dyn StateStore>) {
    let set = format!("set-{}", new_uuid());
    let other = format!("set-{}", new_uuid());
    let accts: Vec<TargetId> = (0..3).map(|_| unique_id("ad")).collect();
    let terms = LeaseTerms {
        ttl_ms: 1000,
        max_ttl_ms: 3000,
    };
    assert_eq!(
        store.take_lease(&set, "x", 0, terms).await,
        Err(StateError::NotFound("set"))
    );
    assert!(store.set_members(&set).await.is_err());
    store.add_to_set(&set, &accts[..2]).await.unwrap();
    store.add_to_set(&set, &accts[..2]).await.unwrap(); // idempotent
    assert_eq!(
        store
            .add_to_set(&other, &[accts[2].clone(), accts[0].clone()])
            .await,
        Err(StateError::Conflict(ConflictReason::OtherSet))
    );
    assert!(
        store.set_members(&other).await.is_err(),
        "a refused add changes nothing"
    );
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
    let l3 = store.take_lease(&set, "carol", now, terms).await.unwrap();
    assert_eq!(l3.account, accts[2]);
    assert!(
        LeaseTerms {
            ttl_ms: 0,
            max_ttl_ms: 0
        }
        .check()
        .is_err()
            && store
                .take_lease(
                    &set,
                    "d",
                    now,
                    LeaseTerms {
                        ttl_ms: 5,
                        max_ttl_ms: 1
                    }
                )
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

    // Release: borrower enforced, then available again.
    assert_eq!(
        store.release_lease(&l2.lease_id, Some("mallory")).await,
        Err(StateError::NotBorrower)
    );
    assert_eq!(
        store
            .remove_from_set(&set, std::slice::from_ref(&l2.account))
            .await,
        Err(StateError::Conflict(ConflictReason::Leased))
    );
    let ended = store
        .release_lease(&l2.lease_id, Some("bob"))
        .await
        .unwrap();
    assert_eq!(ended.lease_id, l2.lease_id);
    assert_eq!(
        store.release_lease(&l2.lease_id, None).await,
        Err(StateError::NotFound("lease"))
    );
    assert_eq!(
        store.renew_lease(&l2.lease_id, None, now, 100).await,
        Err(StateError::NotFound("lease"))
    );
    let l4 = store
        .take_lease(&set, "erin", now + 5000, terms)
        .await
        .unwrap();
    assert_eq!(l4.account, l2.account);
    store.release_lease(&l4.lease_id, None).await.unwrap();
    store
        .remove_from_set(&set, std::slice::from_ref(&l2.account))
        .await
        .unwrap();
    assert_eq!(store.set_members(&set).await.unwrap().len(), 2);
    store
        .add_to_set(&other, std::slice::from_ref(&l2.account))
        .await
        .unwrap();
    assert_eq!(store.set_members(&other).await.unwrap().len(), 1);
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
    store.add_to_set(&set, &accts).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(borrowers));
    let terms = LeaseTerms {
        ttl_ms: 60_000,
        max_ttl_ms: 60_000,
    };
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
