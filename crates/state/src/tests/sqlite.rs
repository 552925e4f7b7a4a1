use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::worker;
use crate::testing::FakeTarget;
use crate::{
    Key, RotationMethod, RotationOutcome, Rotator, RotatorConfig, Sealer, SqliteOptions,
    SqliteStore, StateStore, TargetId,
};

fn open(path: &std::path::Path) -> Arc<dyn StateStore> {
    Arc::new(SqliteStore::open(path, SqliteOptions::default()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_conformance() {
    let dir = tempfile::tempdir().unwrap();
    crate::conformance::run_all(open(&dir.path().join("s.db"))).await;
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
        r.enroll(&id, &SecretString::from("Plaintext-Initial-XYZ"), None)
            .await
            .unwrap();
        let src = |_: &TargetId| Ok(SecretString::from("Plaintext-Rotated-QRS"));
        let out = r
            .rotate(&target, &id, &src, RotationMethod::SelfChange)
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
    assert_eq!(ops, 32 * 21);
    assert!(commits < ops / 2, "{commits} commits for {ops} operations");
}
