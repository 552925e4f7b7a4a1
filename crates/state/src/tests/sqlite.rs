use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::worker;
use crate::testing::FakeTarget;
use crate::{
    Key, MemberState, RecordState, RotateOptions, RotationMethod, RotationOutcome, Rotator,
    RotatorConfig, Schedule, Sealer, SqliteOptions, SqliteStore, StateStore, TargetId,
};

fn open(path: &std::path::Path) -> Arc<dyn StateStore> {
    Arc::new(SqliteStore::open(path, SqliteOptions::default()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_conformance() {
    let dir = tempfile::tempdir().unwrap();
    crate::conformance::run_all(open(&dir.path().join("s.db"))).await;
}

/// A scheduler's `list_due` reads the `due_at` index (migration V3) rather than
/// scanning every record, and the index follows writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_list_due_uses_the_due_at_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db"), SqliteOptions::default()).unwrap();
    let plan: Vec<String> = store
        .run(|c| {
            let mut st = c
                .prepare(&format!(
                    "EXPLAIN QUERY PLAN SELECT kind FROM cw_records WHERE ({}) \
                     ORDER BY kind, scope, account LIMIT 10",
                    super::super::sqlite::DUE_FOR_TESTS
                ))
                .unwrap();
            let rows = st.query_map([0_i64], |r| r.get::<_, String>(3)).unwrap();
            Ok(rows.map(Result::unwrap).collect())
        })
        .await
        .unwrap();
    assert!(
        plan.iter().any(|l| l.contains("cw_records_by_due_at")),
        "query plan: {plan:?}"
    );
    let id = TargetId::new("sam", "h", "u").unwrap();
    let mut r = crate::Record::new(id.clone());
    r.next_due = Some(100);
    store.create_record(&r).await.unwrap();
    assert!(store.list_due(99, None, 10).await.unwrap().is_empty());
    assert_eq!(
        store.list_due(100, None, 10).await.unwrap(),
        vec![id.clone()]
    );
    let mut r = store.get_record(&id).await.unwrap();
    r.retry_at = Some(200);
    let v = store.compare_and_swap(&r, r.version, None).await.unwrap();
    assert!(store.list_due(150, None, 10).await.unwrap().is_empty());
    assert_eq!(
        store.list_due(200, None, 10).await.unwrap(),
        vec![id.clone()]
    );
    let mut r = store.get_record(&id).await.unwrap();
    assert_eq!(r.version, v);
    r.next_due = None;
    r.retry_at = None;
    store.compare_and_swap(&r, v, None).await.unwrap();
    assert!(store.list_due(i64::MAX, None, 10).await.unwrap().is_empty());
}

/// Two stores on one file (two connections, two writer threads) behave as one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_handles_race() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (a, b) = (open(&path), open(&path));
    let id = crate::conformance::unique_id("ad");
    a.create_record(&crate::Record::new(id.clone()))
        .await
        .unwrap();
    let mut hs = Vec::new();
    for s in [a.clone(), b.clone(), a.clone(), b.clone()] {
        let id = id.clone();
        hs.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            for _ in 0..50 {
                let r = s.get_record(&id).await.unwrap();
                if let Ok(v) = s.compare_and_swap(&r, r.version, None).await {
                    wins.push(v);
                }
            }
            wins
        }));
    }
    let mut all = Vec::new();
    for h in hs {
        all.extend(h.await.unwrap());
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "a version won twice");
    assert_eq!(b.get_record(&id).await.unwrap().version, 1 + n as u64);
}

#[tokio::test]
async fn sqlite_survives_reopen_and_holds_only_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let id = TargetId::new("sam", "WINHOST", "svc-backup").unwrap();
    let sealer = Arc::new(Sealer::new("k1", Key::from_bytes(&[5; 32]).unwrap()).unwrap());
    let target = FakeTarget::new(&id, "Plaintext-Initial-XYZ");
    {
        let r = Rotator::new(open(&path), sealer.clone(), RotatorConfig::default());
        r.enroll(
            &id,
            &SecretString::from("Plaintext-Initial-XYZ"),
            Schedule::None,
        )
        .await
        .unwrap();
        let src = |_: &TargetId| Ok(SecretString::from("Plaintext-Rotated-QRS"));
        let out = r
            .rotate(
                &target,
                &id,
                &src,
                RotateOptions::new(RotationMethod::SelfChange),
            )
            .await
            .unwrap();
        assert!(matches!(out, RotationOutcome::Rotated { .. }));
    }
    // Reopen: the state is there.
    let r = Rotator::new(open(&path), sealer, RotatorConfig::default());
    let (cur, v) = r.current_password(&id).await.unwrap();
    assert_eq!(cur.expose_secret(), "Plaintext-Rotated-QRS");
    assert_eq!(v, 3, "enroll, write pending, commit");
    assert!(target.accepts(&cur));
    // Raw rows: only ciphertext.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut st = conn
        .prepare("SELECT cur, last, pending FROM cw_records")
        .unwrap();
    type Blob = Option<Vec<u8>>;
    let rows: Vec<(Blob, Blob, Blob)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 1);
    let (cur_b, last_b, pend_b) = &rows[0];
    assert!(cur_b.is_some() && last_b.is_some() && pend_b.is_none());
    for blob in [cur_b, last_b].into_iter().flatten() {
        assert!(!contains(blob, b"Plaintext"));
    }
    // Nor anywhere in the files (database and WAL).
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!contains(&bytes, b"Plaintext-Rotated"));
        assert!(!contains(&bytes, b"Plaintext-Initial"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "database file is owner-only");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn sqlite_bad_path_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(
        dir.path().join("missing/dir/s.db"),
        SqliteOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, crate::StateError::Unavailable(_)));
}

#[tokio::test]
async fn sqlite_cross_process_races() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = open(&path);
    let spec = worker::prepare(&store).await;
    worker::run_children("sqlite", path.to_str().unwrap(), &spec, &store).await;
}

/// Crash at every await point with the SQLite store; a new handle recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_crash_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let current = Arc::new(std::sync::Mutex::new(dir.path().join("crash-0.db")));
    let n = std::sync::atomic::AtomicUsize::new(0);
    let (c1, c2) = (current.clone(), current);
    let base = dir.path().to_path_buf();
    super::protocol::crash_matrix_on(
        move || open(&c1.lock().unwrap()),
        move || {
            // A new database per scenario.
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path = base.join(format!("crash-{i}.db"));
            c2.lock().unwrap().clone_from(&path);
            open(&path)
        },
    )
    .await;
}

/// 32 concurrent callers share durable commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_commit_batches_concurrent_callers() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open(dir.path().join("g.db"), SqliteOptions::default()).unwrap());
    let ids: Vec<_> = (0..32)
        .map(|_| crate::conformance::unique_id("ad"))
        .collect();
    for id in &ids {
        store
            .create_record(&crate::Record::new(id.clone()))
            .await
            .unwrap();
    }
    let (ops0, commits0) = store.commit_stats();
    let mut hs = Vec::new();
    for id in ids {
        let store = store.clone();
        hs.push(tokio::spawn(async move {
            let mut r = store.get_record(&id).await.unwrap();
            for _ in 0..20 {
                r.version = store.compare_and_swap(&r, r.version, None).await.unwrap();
            }
            r.version
        }));
    }
    for h in hs {
        assert_eq!(h.await.unwrap(), 21);
    }
    let (ops, commits) = store.commit_stats();
    let (ops, commits) = (ops - ops0, commits - commits0);
    assert_eq!(ops, 32 * 20, "reads do not go through the write queue");
    assert!(commits < ops / 2, "{commits} commits for {ops} operations");
}

/// Reads use their own connections: a writer holding the write lock (another
/// process in a long transaction) does not delay them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_do_not_wait_for_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let opts = SqliteOptions {
        busy_timeout: std::time::Duration::from_millis(300),
        ..SqliteOptions::default()
    };
    let store = Arc::new(SqliteStore::open(&path, opts).unwrap());
    let id = crate::conformance::unique_id("ad");
    store
        .create_record(&crate::Record::new(id.clone()))
        .await
        .unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let t = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(store.get_record(&id).await.unwrap().version, 1);
    }
    assert!(store.list_records(None, 10).await.unwrap().len() == 1);
    assert!(
        t.elapsed() < std::time::Duration::from_millis(300),
        "reads waited for the writer"
    );
    // Writes do wait, and give up after the busy timeout.
    let r = store.get_record(&id).await.unwrap();
    assert!(matches!(
        store.compare_and_swap(&r, 1, None).await,
        Err(crate::StateError::Unavailable(_))
    ));
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(store.compare_and_swap(&r, 1, None).await.unwrap(), 2);
}

/// A panic inside a job rolls its work back and leaves no open transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_panic_in_a_job_leaves_no_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("p.db"), SqliteOptions::default()).unwrap();
    let id = crate::conformance::unique_id("ad");
    store
        .create_record(&crate::Record::new(id.clone()))
        .await
        .unwrap();
    let res: crate::Result<()> = store
        .run(|c| {
            c.execute_batch("UPDATE cw_records SET version = 99")
                .unwrap();
            panic!("job panics mid-transaction");
        })
        .await;
    assert!(res.is_err());
    assert_eq!(
        store.get_record(&id).await.unwrap().version,
        1,
        "rolled back"
    );
    let r = store.get_record(&id).await.unwrap();
    assert_eq!(store.compare_and_swap(&r, 1, None).await.unwrap(), 2);
    let auto = store.run(|c| Ok(c.is_autocommit())).await.unwrap();
    assert!(!auto, "inside the batch transaction");
    assert_eq!(store.get_record(&id).await.unwrap().version, 2);
}

/// A store created by the previous code (no migration history) upgrades in place
/// and keeps its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrades_a_store_from_before_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(OLD_SCHEMA).unwrap();
        c.execute_batch(
            "INSERT INTO cw_records VALUES ('ad','example.com','svc-a',7,x'0102',x'0304',
                NULL,NULL,NULL,1700000000000,1800000000000,'old error');
             INSERT INTO cw_records VALUES ('ad','example.com','svc-b',3,x'05',NULL,
                'attempt-1',x'06',1700000000500,NULL,NULL,NULL);
             INSERT INTO cw_claims VALUES ('ad','example.com','svc-b',4,'dead',1700000100000);
             INSERT INTO cw_sets VALUES ('pool');
             INSERT INTO cw_members VALUES ('sam','h','u1','pool','lease-1','bob',1,2,3);
             INSERT INTO cw_members VALUES ('sam','h','u2','pool',NULL,NULL,NULL,NULL,NULL);",
        )
        .unwrap();
    }
    let store = open(&path);
    let a = store
        .get_record(&TargetId::new("ad", "example.com", "svc-a").unwrap())
        .await
        .unwrap();
    assert_eq!(a.version, 7);
    assert_eq!(a.current.as_ref().unwrap().as_bytes(), [1, 2]);
    assert_eq!(a.history.len(), 1);
    assert_eq!(a.history[0].as_bytes(), [3, 4]);
    assert_eq!(
        (a.set_at, a.next_due),
        (Some(1_700_000_000_000), Some(1_800_000_000_000))
    );
    assert_eq!(a.state, RecordState::Ok);
    assert_eq!(a.schedule, Schedule::None);
    assert_eq!(a.last_error.as_deref(), Some("old error"));
    let b_id = TargetId::new("ad", "example.com", "svc-b").unwrap();
    let b = store.get_record(&b_id).await.unwrap();
    assert_eq!(
        b.state,
        RecordState::InDoubt,
        "a pending rotation is in doubt"
    );
    let p = b.pending.unwrap();
    assert_eq!(
        (p.attempt.as_str(), p.created_at),
        ("attempt-1", 1_700_000_000_500)
    );
    assert_eq!(p.deadline, 1_700_000_600_500);
    let claim = store.get_claim(&b_id).await.unwrap().unwrap();
    assert_eq!((claim.token, claim.expires_at), (4, 1_700_000_100_000));
    let next = store
        .claim(&b_id, "new", 1_800_000_000_000, 10)
        .await
        .unwrap();
    assert_eq!(next.token, 5, "fencing tokens keep increasing");
    let members = store.set_members("pool").await.unwrap();
    assert_eq!(members[0].state, MemberState::Lent);
    assert_eq!(members[0].lease.as_ref().unwrap().borrower, "bob");
    assert_eq!(members[1].state, MemberState::Available);
    let set = store.get_set("pool").await.unwrap();
    assert_eq!(set.version, 1);
    assert!(set.config.enforce_check_in);
    store.put_config("k", "n", b"{}", 0).await.unwrap();
    drop(store);
    // Reopening (already migrated) is a no-op; the store still passes the suite.
    let store = open(&path);
    assert_eq!(store.get_config("k", "n").await.unwrap().version, 1);
    crate::conformance::run_all(store).await;
}

/// The schema the store created before versioned migrations existed.
const OLD_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cw_records (
    kind TEXT NOT NULL, scope TEXT NOT NULL, account TEXT NOT NULL,
    version INTEGER NOT NULL,
    cur BLOB, last BLOB,
    pending_attempt TEXT, pending BLOB, pending_created INTEGER,
    last_rotated INTEGER, next_due INTEGER, last_error TEXT,
    PRIMARY KEY (kind, scope, account)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cw_claims (
    kind TEXT NOT NULL, scope TEXT NOT NULL, account TEXT NOT NULL,
    token INTEGER NOT NULL, holder TEXT, expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, scope, account)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cw_sets (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cw_members (
    kind TEXT NOT NULL, scope TEXT NOT NULL, account TEXT NOT NULL,
    set_name TEXT NOT NULL,
    lease_id TEXT UNIQUE, borrower TEXT,
    issued_at INTEGER, expires_at INTEGER, max_expires_at INTEGER,
    PRIMARY KEY (kind, scope, account)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cw_members_by_set ON cw_members (set_name);
";

/// 200 concurrent lazy readers of an expired password: one target write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_lazy_readers() {
    let dir = tempfile::tempdir().unwrap();
    super::protocol::lazy_readers_on(open(&dir.path().join("l.db")), 200).await;
}
