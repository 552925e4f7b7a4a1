//! Scheduler and service tests with an in-memory store, a manual clock and a fake
//! target (the lab tests are in `tests/`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::schedule::parse_instant;
use crate::state::{
    Key, ManualClock, MemoryStore, Millis, RotationTarget, Sealer, StateStore, TargetError,
    TargetErrorKind, TargetId,
};

#[derive(Default)]
struct Fake {
    pw: Mutex<HashMap<TargetId, String>>,
    reject: AtomicBool,
    locked: AtomicBool,
    writes: AtomicUsize,
    verifies: AtomicUsize,
    /// While set, password writes wait for `unblock` (after signalling `entered`).
    blocked: AtomicBool,
    entered: tokio::sync::Notify,
    unblock: tokio::sync::Notify,
}

impl Fake {
    fn password(&self, id: &TargetId) -> Option<String> {
        self.pw.lock().unwrap().get(id).cloned()
    }
    fn set_out_of_band(&self, id: &TargetId, pw: &str) {
        self.pw.lock().unwrap().insert(id.clone(), pw.to_owned());
    }
    fn accepts(&self, id: &TargetId, pw: &SecretString) -> bool {
        self.password(id).as_deref() == Some(pw.expose_secret())
    }
}

#[async_trait]
impl RotationTarget for Fake {
    async fn set_password_as_admin(
        &self,
        account: &TargetId,
        new_password: &SecretString,
    ) -> Result<(), TargetError> {
        if self.blocked.load(Ordering::SeqCst) {
            self.entered.notify_one();
            self.unblock.notified().await;
        }
        if self.reject.load(Ordering::SeqCst) {
            return Err(TargetError::new(
                TargetErrorKind::Rejected,
                "the password does not meet the host's policy",
            ));
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.set_out_of_band(account, new_password.expose_secret());
        Ok(())
    }

    async fn change_password(
        &self,
        account: &TargetId,
        current: &SecretString,
        new_password: &SecretString,
    ) -> Result<(), TargetError> {
        if !self.accepts(account, current) {
            return Err(TargetError::new(
                TargetErrorKind::BadCredentials,
                "wrong current password",
            ));
        }
        self.set_password_as_admin(account, new_password).await
    }

    async fn verify(
        &self,
        account: &TargetId,
        password: &SecretString,
    ) -> Result<bool, TargetError> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        if self.locked.load(Ordering::SeqCst) {
            return Err(TargetError::new(
                TargetErrorKind::AccountLocked,
                "the account is locked out",
            ));
        }
        Ok(self.accepts(account, password))
    }

    async fn password_last_set(&self, _: &TargetId) -> Result<Option<Millis>, TargetError> {
        Ok(None)
    }
}

const K1: [u8; 32] = [7; 32];

const HEAD: &str = r#"
[key_ring]
active = "k1"
keys = [{ id = "k1", env = "UNUSED_IN_TESTS" }]

[connections.windows.h1]
address = "127.0.0.9"
admin_user = "admin"
admin_password = { env = "UNUSED_IN_TESTS" }

[connections.ad.corp]
urls = ["ldaps://dc.example.invalid"]
bind_dn = "CN=rot,DC=example,DC=com"
bind_password = { env = "UNUSED_IN_TESTS" }
"#;

fn scheduler(extra: &str) -> String {
    format!(
        "[scheduler]\njitter = 0\nbackoff_initial = \"1s\"\nbackoff_max = \"4s\"\nheartbeat_interval = \"1h\"\n{extra}\n"
    )
}

struct World {
    store: Arc<dyn StateStore>,
    sealer: Arc<Sealer>,
    clock: ManualClock,
    fake: Arc<Fake>,
    config: Config,
}

impl World {
    fn new(sched: &str, rotations: &str, start: &str) -> World {
        let text = format!("{HEAD}\n{}\n{rotations}", scheduler(sched));
        World {
            store: Arc::new(MemoryStore::new()),
            sealer: Arc::new(Sealer::new("k1", Key::from_bytes(&K1).unwrap()).unwrap()),
            clock: ManualClock::new(parse_instant(start).unwrap()),
            fake: Arc::new(Fake::default()),
            config: Config::from_toml_str(&text).unwrap(),
        }
    }

    async fn instance(&self, holder: &str) -> Credwheel {
        Credwheel::builder(self.config.clone())
            .store(self.store.clone())
            .sealer(self.sealer.clone())
            .clock(Arc::new(self.clock.clone()))
            .holder(holder)
            .windows_target("h1", self.fake.clone())
            .ad_target("corp", self.fake.clone())
            .build()
            .await
            .unwrap()
    }

    fn set(&self, t: &str) {
        self.clock.set(parse_instant(t).unwrap());
    }

    fn writes(&self) -> usize {
        self.fake.writes.load(Ordering::SeqCst)
    }
}

fn rotation(name: &str, user: &str, schedule: &str, extra: &str) -> String {
    format!(
        r#"
[[rotations]]
name = "{name}"
target = {{ windows = {{ host = "h1", user = "{user}" }} }}
secrets = {{ username = "{name}-user", password = "{name}-password" }}
schedule = {schedule}
{extra}
"#
    )
}

const IMPORT: &str = "initial_password = { value = \"Imported-0ld-pass\" }";

#[tokio::test]
async fn first_rotation_sets_a_password_nobody_knew_and_publishes_it() {
    let w = World::new(
        "",
        &rotation("r1", "svc1", "{ interval_days = 30 }", ""),
        "2026-05-01T00:00:00Z",
    );
    let cw = w.instance("p1").await;
    assert_eq!(
        cw.status_of("r1").await.unwrap().state,
        RotationState::NotEnrolled
    );
    let report = cw.tick().await.unwrap();
    assert_eq!(report.rotations, 1);
    let st = cw.status_of("r1").await.unwrap();
    assert_eq!(st.state, RotationState::Ok, "{st:?}");
    let creds = cw.creds("r1").await.unwrap();
    assert!(!creds.rotated);
    let id = cw.target_id("r1").unwrap().clone();
    assert!(w.fake.accepts(&id, &creds.current));
    assert!(
        cw.config().rotations[0]
            .policy
            .is_valid(creds.current.expose_secret())
    );
    // The store sink has it by name.
    let stored = cw.secrets().read("r1-password").await.unwrap().unwrap();
    assert_eq!(
        stored.current.expose_secret(),
        creds.current.expose_secret()
    );
    assert_eq!(
        cw.secrets()
            .read("r1-user")
            .await
            .unwrap()
            .unwrap()
            .current
            .expose_secret(),
        "svc1"
    );
    // Nothing more is due.
    assert_eq!(cw.tick().await.unwrap(), TickReport::default());
    assert_eq!(w.writes(), 1);
}

#[tokio::test]
async fn a_due_rotation_runs_once_across_three_instances_sharing_a_store() {
    let w = World::new(
        "",
        &rotation(
            "r1",
            "svc1",
            "{ interval_days = 1, rotate_at = \"03:00\" }",
            IMPORT,
        ),
        "2026-05-01T12:00:00Z",
    );
    let a = w.instance("a").await;
    let b = w.instance("b").await;
    let c = w.instance("c").await;
    // Imported: nothing due before the slot.
    let (ra, rb, rc) = tokio::join!(a.tick(), b.tick(), c.tick());
    assert_eq!(
        ra.unwrap().rotations + rb.unwrap().rotations + rc.unwrap().rotations,
        0
    );
    w.set("2026-05-02T03:00:01Z");
    let (ra, rb, rc) = tokio::join!(a.tick(), b.tick(), c.tick());
    let total = ra.unwrap().rotations + rb.unwrap().rotations + rc.unwrap().rotations;
    assert_eq!(total, 1);
    assert_eq!(w.writes(), 1);
    // Still once after more ticks the same day; again the next day.
    let (ra, rb, rc) = tokio::join!(a.tick(), b.tick(), c.tick());
    assert_eq!(
        ra.unwrap().rotations + rb.unwrap().rotations + rc.unwrap().rotations,
        0
    );
    w.set("2026-05-03T03:00:01Z");
    let (ra, rb, rc) = tokio::join!(a.tick(), b.tick(), c.tick());
    assert_eq!(
        ra.unwrap().rotations + rb.unwrap().rotations + rc.unwrap().rotations,
        1
    );
    assert_eq!(w.writes(), 2);
}

#[tokio::test]
async fn with_auto_rotation_off_nothing_rotates() {
    let w = World::new(
        "",
        &rotation(
            "r1",
            "svc1",
            "{ interval_days = 1, auto_rotation = false }",
            IMPORT,
        ),
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    for day in 2..9 {
        w.set(&format!("2026-05-0{day}T12:00:00Z"));
        let r = cw.tick().await.unwrap();
        assert_eq!(r.rotations, 0);
    }
    assert_eq!(w.writes(), 0);
    assert_eq!(cw.status_of("r1").await.unwrap().next_due, None);
    // Manual rotation still works.
    assert!(matches!(
        cw.rotate_now("r1").await.unwrap(),
        Outcome::Rotated { .. }
    ));
    assert_eq!(w.writes(), 1);
}

#[tokio::test]
async fn a_rejecting_target_backs_off_and_ends_needing_an_operator() {
    let w = World::new(
        "max_retries_per_cycle = 1\nmax_retry_cycles = 2",
        &rotation(
            "r1",
            "svc1",
            "{ interval_days = 1, rotate_at = \"03:00\" }",
            IMPORT,
        ),
        "2026-05-01T12:00:00Z",
    );
    w.fake.reject.store(true, Ordering::SeqCst);
    let cw = w.instance("p").await;
    let start = parse_instant("2026-05-02T03:00:00Z").unwrap();
    let mut attempts = 0;
    let mut now = start;
    let mut seen = Vec::new();
    // Step through 30 s of time, one second at a time.
    for _ in 0..30 {
        w.clock.set(now);
        let r = cw.tick().await.unwrap();
        if r.rotations > 0 {
            attempts += r.rotations;
            let st = cw.status_of("r1").await.unwrap();
            seen.push((now - start, st.state, st.failures));
        }
        now += 1_000;
    }
    // Two cycles of (1 try + 1 retry) = 4 attempts, then automation stops.
    assert_eq!(attempts, 4, "{seen:?}");
    let st = cw.status_of("r1").await.unwrap();
    assert_eq!(st.state, RotationState::NeedsOperator, "{seen:?}");
    assert!(st.last_error.unwrap().contains("rejected"));
    assert_eq!(st.next_due, None);
    // Backoff: retry 1 s after the first failure, next cycle after backoff_max (4 s).
    assert_eq!(seen[0].0, 0);
    assert_eq!(seen[1].0, 1_000);
    assert_eq!(seen[2].0, 5_000);
    assert_eq!(seen[3].0, 6_000);
    assert_eq!(cw.needs_operator().await.unwrap().len(), 1);
    // Automation stays stopped, even on later slots.
    w.set("2026-05-05T03:00:01Z");
    assert_eq!(cw.tick().await.unwrap().rotations, 0);
    // The operator fixes the cause and rotates: back to normal.
    w.fake.reject.store(false, Ordering::SeqCst);
    cw.rotate_now("r1").await.unwrap();
    let st = cw.status_of("r1").await.unwrap();
    assert_eq!(st.state, RotationState::Ok);
    assert!(st.next_due.is_some());
}

#[tokio::test]
async fn a_manual_rotation_does_not_move_the_schedule() {
    let w = World::new(
        "",
        &rotation(
            "r1",
            "svc1",
            "{ interval_days = 7, rotate_at = \"03:00\" }",
            IMPORT,
        ),
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    let before = cw.status_of("r1").await.unwrap().next_due;
    assert_eq!(before, Some(parse_instant("2026-05-08T03:00:00Z").unwrap()));
    w.set("2026-05-03T12:00:00Z");
    cw.rotate_now("r1").await.unwrap();
    assert_eq!(cw.status_of("r1").await.unwrap().next_due, before);
    w.set("2026-05-08T03:00:01Z");
    assert_eq!(cw.tick().await.unwrap().rotations, 1);
}

#[tokio::test]
async fn a_missed_cron_window_waits_for_the_next_slot() {
    let w = World::new(
        "",
        &rotation(
            "r1",
            "svc1",
            "{ cron = \"0 3 * * *\", window = \"1h\" }",
            IMPORT,
        ),
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    // The process was down from before 03:00 until after 04:00.
    w.set("2026-05-02T04:30:00Z");
    assert_eq!(cw.tick().await.unwrap().rotations, 0);
    assert_eq!(
        cw.status_of("r1").await.unwrap().next_due,
        Some(parse_instant("2026-05-03T03:00:00Z").unwrap())
    );
    w.set("2026-05-03T03:10:00Z");
    assert_eq!(cw.tick().await.unwrap().rotations, 1);
}

#[tokio::test]
async fn heartbeat_reports_drift_and_reconciles_when_allowed() {
    let w = World::new(
        "",
        &format!(
            "{}{}",
            rotation("watch", "svc1", "{ interval_days = 30 }", IMPORT),
            rotation(
                "heal",
                "svc2",
                "{ interval_days = 30 }",
                &format!("{IMPORT}\nreconcile_on_drift = true")
            ),
        ),
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    let id1 = cw.target_id("watch").unwrap().clone();
    let id2 = cw.target_id("heal").unwrap().clone();
    w.fake.set_out_of_band(&id1, "Imported-0ld-pass");
    w.fake.set_out_of_band(&id2, "Imported-0ld-pass");
    // First heartbeat: both fine.
    w.set("2026-05-01T13:00:01Z");
    let r = cw.tick().await.unwrap();
    assert_eq!(r.heartbeats, 2);
    assert_eq!(
        cw.status_of("watch").await.unwrap().heartbeat.unwrap().1,
        "ok"
    );
    // Someone changes both passwords behind our back.
    w.fake.set_out_of_band(&id1, "Changed-by-hand-1");
    w.fake.set_out_of_band(&id2, "Changed-by-hand-2");
    w.set("2026-05-01T14:00:02Z");
    cw.tick().await.unwrap();
    let watch = cw.status_of("watch").await.unwrap();
    assert_eq!(watch.state, RotationState::Drifted);
    assert!(watch.last_error.unwrap().contains("out of band"));
    let heal = cw.status_of("heal").await.unwrap();
    assert_eq!(heal.state, RotationState::Ok);
    assert_eq!(heal.heartbeat.unwrap().1, "drifted; reconciled");
    let creds = cw.creds("heal").await.unwrap();
    assert!(w.fake.accepts(&id2, &creds.current));
    // An operator reconciles the other one.
    cw.reconcile("watch").await.unwrap();
    assert_eq!(
        cw.status_of("watch").await.unwrap().state,
        RotationState::Ok
    );
    let creds = cw.creds("watch").await.unwrap();
    assert!(w.fake.accepts(&id1, &creds.current));
}

#[tokio::test]
async fn a_locked_account_gets_no_more_logon_attempts() {
    let w = World::new(
        "",
        &rotation("r1", "svc1", "{ interval_days = 30 }", IMPORT),
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    w.fake.locked.store(true, Ordering::SeqCst);
    w.set("2026-05-01T13:00:01Z");
    cw.tick().await.unwrap();
    assert_eq!(w.fake.verifies.load(Ordering::SeqCst), 1);
    let st = cw.status_of("r1").await.unwrap();
    assert_eq!(st.state, RotationState::Locked);
    for h in 14..20 {
        w.set(&format!("2026-05-01T{h}:00:05Z"));
        cw.tick().await.unwrap();
    }
    assert_eq!(
        w.fake.verifies.load(Ordering::SeqCst),
        1,
        "no further logons"
    );
    // The operator unlocks it and resumes.
    w.fake.locked.store(false, Ordering::SeqCst);
    cw.resume("r1").await.unwrap();
    w.set("2026-05-01T21:00:05Z");
    cw.tick().await.unwrap();
    assert_eq!(w.fake.verifies.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn lazy_ttl_rotates_on_read_after_expiry_only() {
    let w = World::new(
        "",
        &rotation("role", "svc1", "{ ttl = \"1h\" }", "heartbeat = false"),
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    // The scheduler never rotates a lazy role by itself (except the first set).
    let first = cw.creds("role").await.unwrap();
    assert!(first.rotated, "never set: set on first read");
    w.set("2026-05-01T12:59:00Z");
    assert_eq!(cw.tick().await.unwrap().rotations, 0);
    let again = cw.creds("role").await.unwrap();
    assert!(!again.rotated);
    assert_eq!(again.current.expose_secret(), first.current.expose_secret());
    w.set("2026-05-01T13:00:01Z");
    assert_eq!(
        cw.tick().await.unwrap().rotations,
        0,
        "lazy: no read, no rotation"
    );
    let later = cw.creds("role").await.unwrap();
    assert!(later.rotated);
    assert_eq!(
        later.last.as_ref().unwrap().expose_secret(),
        first.current.expose_secret()
    );
    assert!(!format!("{later:?}").contains(later.current.expose_secret()));
}

#[tokio::test]
async fn pause_and_resume() {
    let w = World::new(
        "",
        &rotation("r1", "svc1", "{ interval_days = 1 }", IMPORT),
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    cw.pause("r1").await.unwrap();
    w.set("2026-05-03T00:00:01Z");
    assert_eq!(cw.tick().await.unwrap().rotations, 0);
    assert!(cw.status_of("r1").await.unwrap().paused);
    cw.resume("r1").await.unwrap();
    assert_eq!(cw.tick().await.unwrap().rotations, 1);
}

#[tokio::test]
async fn library_check_out_and_check_in_rotates() {
    let w = World::new(
        "",
        r#"
[[libraries]]
name = "ops"
connection = "corp"
accounts = ["svc-a", "svc-b"]
ttl = "1h"
"#,
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    let out = cw.check_out("ops", "alice", None).await.unwrap();
    let st = cw.library_status("ops").await.unwrap();
    assert_eq!(st.members.iter().filter(|m| m.available).count(), 1);
    let lent = st.members.iter().find(|m| !m.available).unwrap();
    assert_eq!(lent.borrower.as_deref(), Some("alice"));
    let id = TargetId::new("ad", "corp", format!("sam:{}", out.account)).unwrap();
    assert!(w.fake.accepts(&id, &out.password));
    // Only the borrower may check it in.
    assert!(cw.check_in("ops", "mallory", None, false).await.is_err());
    let b = cw.check_out("ops", "bob", None).await.unwrap();
    assert!(
        cw.check_out("ops", "carol", None).await.is_err(),
        "none left"
    );
    assert_eq!(
        cw.check_in("ops", "alice", None, false).await.unwrap(),
        out.account
    );
    assert!(!w.fake.accepts(&id, &out.password), "rotated on check-in");
    // Bob's lease expires: the scheduler checks it in and rotates.
    w.set("2026-05-01T13:00:01Z");
    let r = cw.tick().await.unwrap();
    assert_eq!(r.checked_in, 1);
    let id_b = TargetId::new("ad", "corp", format!("sam:{}", b.account)).unwrap();
    assert!(!w.fake.accepts(&id_b, &b.password));
    let st = cw.library_status("ops").await.unwrap();
    assert!(st.members.iter().all(|m| m.available));
}

/// A long rotation keeps its run lease (renewed while it runs), so another
/// instance cannot take the rotation over; a crashed one frees it within one lease
/// and its claim, so another instance recovers the rotation within about a minute.
#[tokio::test(start_paused = true)]
async fn the_run_lease_is_renewed_while_a_rotation_runs_and_lapses_after_a_crash() {
    let w = World::new(
        "",
        &rotation("r1", "svc1", "{ interval_days = 30 }", IMPORT),
        "2026-05-01T12:00:00Z",
    );
    let a = w.instance("a").await;
    let b = w.instance("b").await;
    w.fake.blocked.store(true, Ordering::SeqCst);
    let running = {
        let a = a.clone();
        tokio::spawn(async move { a.rotate_now("r1").await })
    };
    w.fake.entered.notified().await;
    // 40 s later (the lease is 30 s): renewed meanwhile, still A's.
    for _ in 0..4 {
        w.clock.advance(10_000);
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    assert!(
        matches!(b.rotate_now("r1").await, Err(Error::Busy(_))),
        "the lease of a running rotation was renewed"
    );
    w.fake.blocked.store(false, Ordering::SeqCst);
    w.fake.unblock.notify_one();
    assert!(matches!(
        running.await.unwrap(),
        Ok(Outcome::Rotated { .. })
    ));
    // A crash in the middle of the next one: nothing renews or releases anything.
    w.fake.blocked.store(true, Ordering::SeqCst);
    let crashed = {
        let a = a.clone();
        tokio::spawn(async move { a.rotate_now("r1").await })
    };
    w.fake.entered.notified().await;
    crashed.abort();
    std::mem::forget(a); // no drop-time cleanup either
    w.fake.blocked.store(false, Ordering::SeqCst);
    // Within the 60 s claim plus the 30 s lease, B rotates it.
    let mut recovered = false;
    for _ in 0..12 {
        w.clock.advance(10_000);
        tokio::time::sleep(Duration::from_secs(10)).await;
        if let Ok(Outcome::Rotated { .. }) = b.rotate_now("r1").await {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "another instance recovered the rotation");
    let id = b.target_id("r1").unwrap().clone();
    let creds = b.creds("r1").await.unwrap();
    assert!(w.fake.accepts(&id, &creds.current));
}

#[tokio::test]
async fn a_lease_is_renewed_by_its_borrower_up_to_max_ttl() {
    let w = World::new(
        "",
        r#"
[[libraries]]
name = "ops"
connection = "corp"
accounts = ["svc-a"]
ttl = "1h"
max_ttl = "3h"
"#,
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    let at = |t: &str| parse_instant(t).unwrap();
    let out = cw
        .check_out("ops", "alice", Some(Duration::from_secs(30 * 60)))
        .await
        .unwrap();
    assert_eq!(out.expires_at, at("2026-05-01T12:30:00Z"));
    w.set("2026-05-01T12:20:00Z");
    let e = cw.renew("ops", "mallory", None, None).await.unwrap_err();
    assert!(e.to_string().contains("nothing to renew"), "{e}");
    // Default: the library's ttl from now; a longer one is cut to it.
    let r = cw.renew("ops", "alice", None, None).await.unwrap();
    assert_eq!(r.account, out.account);
    assert_eq!(r.lease_id, out.lease_id);
    assert_eq!(r.expires_at, at("2026-05-01T13:20:00Z"));
    assert_eq!(r.max_expires_at, at("2026-05-01T15:00:00Z"));
    let r = cw
        .renew(
            "ops",
            "alice",
            Some("svc-A"),
            Some(Duration::from_secs(86_400)),
        )
        .await
        .unwrap();
    assert_eq!(r.expires_at, at("2026-05-01T13:20:00Z"));
    w.set("2026-05-01T13:10:00Z");
    let r = cw.renew("ops", "alice", None, None).await.unwrap();
    assert_eq!(r.expires_at, at("2026-05-01T14:10:00Z"));
    // Never beyond max_ttl from check-out.
    w.set("2026-05-01T14:05:00Z");
    let r = cw.renew("ops", "alice", None, None).await.unwrap();
    assert_eq!(r.expires_at, at("2026-05-01T15:00:00Z"));
    // An expired lease cannot be renewed, even before the reaper ran.
    w.set("2026-05-01T15:00:01Z");
    let e = cw.renew("ops", "alice", None, None).await.unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    // Renewing did not stop expiry: at max_ttl it is checked in and rotated.
    assert_eq!(cw.tick().await.unwrap().checked_in, 1);
    let id = TargetId::new("ad", "corp", "sam:svc-a").unwrap();
    assert!(!w.fake.accepts(&id, &out.password));
    let e = cw.renew("ops", "alice", None, None).await.unwrap_err();
    assert!(e.to_string().contains("nothing to renew"), "{e}");
}

#[tokio::test]
async fn the_scheduler_runs_in_the_background_and_stops_gracefully() {
    let w = World::new(
        "tick = \"10ms\"",
        &rotation("r1", "svc1", "{ interval_days = 30 }", ""),
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    let handle = cw.start();
    for _ in 0..200 {
        if w.writes() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.shutdown(Duration::from_secs(5)).await;
    assert_eq!(w.writes(), 1);
    assert_eq!(cw.status_of("r1").await.unwrap().state, RotationState::Ok);
}

#[tokio::test]
async fn status_and_errors_never_show_a_password() {
    let w = World::new(
        "",
        &rotation("r1", "svc1", "{ interval_days = 30 }", IMPORT),
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    let st = cw.status().await.unwrap();
    assert!(!format!("{st:?} {cw:?}").contains("Imported-0ld-pass"));
    let e = cw.creds("nope").await.unwrap_err();
    assert!(matches!(e, Error::UnknownRotation(_)));
}

#[tokio::test]
async fn a_rotation_removed_from_the_configuration_stops_being_listed() {
    let w = World::new(
        "",
        &format!(
            "{}{}",
            rotation("keep", "svc1", "{ interval_days = 1 }", IMPORT),
            rotation("gone", "svc2", "{ interval_days = 1 }", IMPORT)
        ),
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    drop(cw);
    // The next configuration has only "keep".
    let text = format!(
        "{HEAD}\n{}\n{}",
        scheduler(""),
        rotation("keep", "svc1", "{ interval_days = 1 }", IMPORT)
    );
    let w2 = World {
        config: Config::from_toml_str(&text).unwrap(),
        ..w
    };
    let cw = w2.instance("p").await;
    w2.set("2026-05-02T00:00:01Z");
    assert_eq!(cw.tick().await.unwrap().rotations, 1);
    let due = w2
        .store
        .list_due(parse_instant("2026-05-09T00:00:00Z").unwrap(), None, 100)
        .await
        .unwrap();
    assert!(due.iter().all(|id| id.account() != "gone"), "{due:?}");
}

#[tokio::test]
async fn reseal_moves_every_record_to_the_active_key() {
    let w = World::new(
        "",
        &rotation("r1", "svc1", "{ interval_days = 1 }", IMPORT),
        "2026-05-01T12:00:00Z",
    );
    let cw = w.instance("p").await;
    cw.rotate_now("r1").await.unwrap();
    let before = cw.creds("r1").await.unwrap();
    // A new active key; the old one stays in the ring to open old records.
    let mut ring2 = Sealer::new("k1", Key::from_bytes(&K1).unwrap()).unwrap();
    ring2.add_key("k2", Key::generate().unwrap()).unwrap();
    ring2.set_active("k2").unwrap();
    let cw2 = Credwheel::builder(w.config.clone())
        .store(w.store.clone())
        .sealer(Arc::new(ring2))
        .clock(Arc::new(w.clock.clone()))
        .windows_target("h1", w.fake.clone())
        .ad_target("corp", w.fake.clone())
        .build()
        .await
        .unwrap();
    let (read, resealed) = cw2.reseal().await.unwrap();
    assert!(read >= 2 && resealed >= 2, "{read} {resealed}");
    assert_eq!(cw2.reseal().await.unwrap().1, 0, "nothing left to re-seal");
    let id = cw2.target_id("r1").unwrap().clone();
    let rec = w.store.get_record(&id).await.unwrap();
    assert_eq!(rec.current.unwrap().key_id(), Some("k2"));
    let after = cw2.creds("r1").await.unwrap();
    assert_eq!(
        after.current.expose_secret(),
        before.current.expose_secret()
    );
}
