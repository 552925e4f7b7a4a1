//! The embedded durable store: one SQLite file, safe for several processes.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{ConflictReason, Result, StateError};
use crate::store::StateStore;
use crate::types::{
    Claim, Fence, Lease, LeaseTerms, Millis, Pending, Record, Sealed, SetMember, TargetId, new_uuid,
};

/// Settings of a [`SqliteStore`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// How long a write waits for another process's transaction (default 10 s);
    /// after that the call fails with [`StateError::Unavailable`].
    pub busy_timeout: Duration,
    /// At most this many operations share one durable commit (default 512).
    pub max_batch: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(10),
            max_batch: 512,
        }
    }
}

type Reply = Box<dyn FnOnce(Result<()>) + Send>;
/// Runs inside the batch transaction (`Some`) or is told the batch failed (`None`);
/// returns whether the operation succeeded (else its savepoint is rolled back) and
/// how to answer the caller once the commit's outcome is known.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Reply) + Send>;

/// The embedded durable store: a SQLite database file in WAL mode with
/// `synchronous=FULL`.
///
/// Group commit: operations are queued, and whoever commits takes every queued
/// operation into one `BEGIN IMMEDIATE` transaction (each in its own savepoint, so
/// one failing operation does not undo the others), answering each caller only
/// after that transaction committed, i.e. after the fsync. On a multi-threaded
/// tokio runtime the caller that finds the connection free leads the commit itself
/// inside `block_in_place` (no thread hand-off, which costs about as much as an
/// fsync on a VM); it serves at most two batches and hands any remaining queue to
/// the store's background committer thread, which also serves callers on
/// current-thread runtimes. Other processes opening the same file are serialised
/// by SQLite's write lock (`BEGIN IMMEDIATE` plus a busy timeout).
pub struct SqliteStore {
    shared: Arc<Shared>,
    path: PathBuf,
}

/// What callers and the background committer share.
struct Shared {
    conn: Mutex<Connection>,
    queue: Mutex<VecDeque<Job>>,
    /// Signals the background committer (paired with `queue`).
    wake: Condvar,
    closed: AtomicBool,
    max_batch: usize,
    stats: Stats,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let _q = lock(&self.shared.queue);
        self.shared.wake.notify_all();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct Stats {
    operations: AtomicU64,
    commits: AtomicU64,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn db_err(e: rusqlite::Error) -> StateError {
    StateError::Unavailable(format!("sqlite: {e}"))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cw_records (
    kind TEXT NOT NULL, scope TEXT NOT NULL, account TEXT NOT NULL,
    version INTEGER NOT NULL,
    cur BLOB, last BLOB,
    pending_attempt TEXT, pending BLOB, pending_created INTEGER,
    last_rotated INTEGER, next_due INTEGER, last_error TEXT,
    PRIMARY KEY (kind, scope, account)) WITHOUT ROWID;
-- no index on next_due: list_due scans (rare), every commit stays one page smaller
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
-- Indexes only on columns a lease does not change (set_name), besides the lease
-- id lookup: every take and release then writes two pages, not four.
-- list_expired_leases scans (rare).
CREATE INDEX IF NOT EXISTS cw_members_by_set ON cw_members (set_name);
";

impl SqliteStore {
    /// Opens (creating if needed, with mode 0600 on Unix) the database at `path`.
    /// Blocks briefly; call it from `spawn_blocking` in latency-sensitive code.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            // Create the file owner-only; it holds ciphertext, but still.
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
        }
        let conn = Connection::open(&path).map_err(db_err)?;
        conn.busy_timeout(options.busy_timeout).map_err(db_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(db_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StateError::Unavailable(format!(
                "sqlite: could not enable WAL (journal mode {mode})"
            )));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;")
            .map_err(db_err)?;
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))
            .map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                db_err(e)
            })?;
        let shared = Arc::new(Shared {
            conn: Mutex::new(conn),
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            max_batch: options.max_batch.max(1),
            stats: Stats::default(),
        });
        let bg = shared.clone();
        std::thread::Builder::new()
            .name("credwheel-sqlite".into())
            .spawn(move || background(&bg))
            .map_err(|e| StateError::Unavailable(format!("cannot start committer thread: {e}")))?;
        Ok(Self { shared, path })
    }

    /// Operations run so far and the transactions that committed them: with
    /// concurrent callers, fewer commits than operations (group commit).
    pub fn commit_stats(&self) -> (u64, u64) {
        (
            self.shared.stats.operations.load(Ordering::Relaxed),
            self.shared.stats.commits.load(Ordering::Relaxed),
        )
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn: Option<&Connection>| -> (bool, Reply) {
            let out = conn.map(f);
            let ok = matches!(out, Some(Ok(_)));
            (
                ok,
                Box::new(move |commit: Result<()>| {
                    let res = match (commit, out) {
                        (Err(e), _) => Err(e),
                        (Ok(()), Some(r)) => r,
                        (Ok(()), None) => {
                            Err(StateError::Unavailable("sqlite: batch failed".into()))
                        }
                    };
                    let _ = tx.send(res);
                }),
            )
        });
        lock(&self.shared.queue).push_back(job);
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            // Lead the commit on this thread if nobody else is committing: no thread
            // hand-off for an uncontended caller. `block_in_place` lets the runtime
            // move this worker's other tasks elsewhere meanwhile.
            tokio::task::block_in_place(|| drain(&self.shared, false));
        } else {
            let _q = lock(&self.shared.queue);
            self.shared.wake.notify_one();
        }
        rx.await
            .map_err(|_| StateError::Unavailable("sqlite committer stopped".into()))?
    }
}

fn exec_cached(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut st| st.execute([]))
        .map(|_| ())
        .map_err(db_err)
}

/// A leader serves at most this many batches before handing the rest of the queue
/// to the background committer, so that its own task is not held up for long.
const LEADER_ROUNDS: usize = 2;

/// Commits queued operations in batches. A caller (`background == false`) only
/// leads if the connection is free; whoever holds it serves the queue, and after
/// releasing it re-checks the queue, so a job queued before a failed `try_lock` is
/// never left behind.
fn drain(shared: &Shared, background: bool) {
    loop {
        let conn = if background {
            lock(&shared.conn)
        } else {
            match shared.conn.try_lock() {
                Ok(g) => g,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            }
        };
        let mut rounds = 0;
        loop {
            let batch: Vec<Job> = {
                let mut q = lock(&shared.queue);
                let n = q.len().min(shared.max_batch);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                break;
            }
            run_batch(&conn, batch, &shared.stats);
            rounds += 1;
            if !background && rounds >= LEADER_ROUNDS {
                drop(conn);
                let q = lock(&shared.queue);
                if !q.is_empty() {
                    shared.wake.notify_one();
                }
                return;
            }
        }
        drop(conn);
        if lock(&shared.queue).is_empty() {
            return;
        }
    }
}

/// The background committer: serves the queue when callers cannot lead (a
/// current-thread runtime) or hand it over.
fn background(shared: &Shared) {
    loop {
        {
            let mut q = lock(&shared.queue);
            while q.is_empty() && !shared.closed.load(Ordering::SeqCst) {
                q = shared
                    .wake
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if q.is_empty() {
                return; // closed and nothing left
            }
        }
        drain(shared, true);
    }
}

fn run_batch(conn: &Connection, jobs: Vec<Job>, stats: &Stats) {
    if let Err(e) = exec_cached(conn, "BEGIN IMMEDIATE") {
        for j in jobs {
            j(None).1(Err(e.clone()));
        }
        return;
    }
    let single = jobs.len() == 1;
    let mut replies = Vec::with_capacity(jobs.len());
    let mut broken = None;
    let mut any_ok = false;
    for j in jobs {
        if broken.is_some() {
            replies.push(j(None).1);
            continue;
        }
        if single {
            // One operation: the transaction is its savepoint.
            let (ok, reply) = j(Some(conn));
            any_ok = ok;
            replies.push(reply);
            continue;
        }
        if let Err(e) = exec_cached(conn, "SAVEPOINT op") {
            broken = Some(e);
            replies.push(j(None).1);
            continue;
        }
        let (ok, reply) = j(Some(conn));
        any_ok |= ok;
        // A failed operation's partial writes (if any) are undone; the batch goes on.
        let end = if ok {
            exec_cached(conn, "RELEASE op")
        } else {
            exec_cached(conn, "ROLLBACK TO op").and_then(|()| exec_cached(conn, "RELEASE op"))
        };
        if let Err(e) = end {
            broken = Some(e);
        }
        replies.push(reply);
    }
    let commit = match broken {
        Some(e) => {
            let _ = exec_cached(conn, "ROLLBACK");
            Err(e)
        }
        // Nothing succeeded: nothing to keep (and no fsync to pay).
        None if !any_ok => exec_cached(conn, "ROLLBACK"),
        None => exec_cached(conn, "COMMIT")
            .inspect(|()| {
                stats.commits.fetch_add(1, Ordering::Relaxed);
            })
            .inspect_err(|_| {
                let _ = exec_cached(conn, "ROLLBACK");
            }),
    };
    stats
        .operations
        .fetch_add(replies.len() as u64, Ordering::Relaxed);
    for r in replies {
        r(commit.clone());
    }
}

fn record_from_row(id: &TargetId, r: &Row<'_>) -> rusqlite::Result<Record> {
    let version: i64 = r.get(0)?;
    let pending = match (
        r.get::<_, Option<String>>(3)?,
        r.get::<_, Option<Vec<u8>>>(4)?,
        r.get::<_, Option<i64>>(5)?,
    ) {
        (Some(attempt), Some(sealed), Some(created_at)) => Some(Pending {
            attempt,
            sealed: Sealed::from_bytes(sealed),
            created_at,
        }),
        _ => None,
    };
    Ok(Record {
        id: id.clone(),
        version: u64::try_from(version).unwrap_or(0),
        current: r.get::<_, Option<Vec<u8>>>(1)?.map(Sealed::from_bytes),
        last: r.get::<_, Option<Vec<u8>>>(2)?.map(Sealed::from_bytes),
        pending,
        last_rotated: r.get(6)?,
        next_due: r.get(7)?,
        last_error: r.get(8)?,
    })
}

fn id_from_row(
    r: &Row<'_>,
    at: usize,
) -> rusqlite::Result<std::result::Result<TargetId, StateError>> {
    Ok(TargetId::new(
        r.get::<_, String>(at)?,
        r.get::<_, String>(at + 1)?,
        r.get::<_, String>(at + 2)?,
    ))
}

fn lease_from_row(r: &Row<'_>) -> rusqlite::Result<std::result::Result<Lease, StateError>> {
    // columns: kind, scope, account, set_name, lease_id, borrower, issued, expires, max
    let id = id_from_row(r, 0)?;
    let set: String = r.get(3)?;
    let lease_id: String = r.get(4)?;
    let borrower: String = r.get(5)?;
    let (issued_at, expires_at, max_expires_at): (i64, i64, i64) =
        (r.get(6)?, r.get(7)?, r.get(8)?);
    Ok(id.map(|account| Lease {
        lease_id,
        set,
        account,
        borrower,
        issued_at,
        expires_at,
        max_expires_at,
    }))
}

const LEASE_COLS: &str =
    "kind, scope, account, set_name, lease_id, borrower, issued_at, expires_at, max_expires_at";

fn get_lease(c: &Connection, lease_id: &str) -> Result<Lease> {
    c.prepare_cached(&format!(
        "SELECT {LEASE_COLS} FROM cw_members WHERE lease_id = ?1"
    ))
    .map_err(db_err)?
    .query_row(params![lease_id], lease_from_row)
    .optional()
    .map_err(db_err)?
    .ok_or(StateError::NotFound("lease"))?
}

fn insert_record(c: &Connection, rec: &Record) -> Result<usize> {
    let version = 1i64;
    let sql = {
        "INSERT INTO cw_records (kind, scope, account, version, cur, last, pending_attempt, \
         pending, pending_created, last_rotated, next_due, last_error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    };
    let p = rec.pending.as_ref();
    c.prepare_cached(sql)
        .map_err(db_err)?
        .execute(params![
            rec.id.kind(),
            rec.id.scope(),
            rec.id.account(),
            version,
            rec.current.as_ref().map(Sealed::as_bytes),
            rec.last.as_ref().map(Sealed::as_bytes),
            p.map(|p| p.attempt.as_str()),
            p.map(|p| p.sealed.as_bytes()),
            p.map(|p| p.created_at),
            rec.last_rotated,
            rec.next_due,
            rec.last_error,
        ])
        .map_err(db_err)
}

fn current_version(c: &Connection, id: &TargetId) -> Result<Option<i64>> {
    c.prepare_cached("SELECT version FROM cw_records WHERE kind=?1 AND scope=?2 AND account=?3")
        .map_err(db_err)?
        .query_row(params![id.kind(), id.scope(), id.account()], |r| r.get(0))
        .optional()
        .map_err(db_err)
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn create_record(&self, record: &Record) -> Result<u64> {
        let rec = record.clone();
        self.run(move |c| {
            if current_version(c, &rec.id)?.is_some() {
                return Err(StateError::Conflict(ConflictReason::AlreadyExists));
            }
            insert_record(c, &rec)?;
            Ok(1)
        })
        .await
    }

    async fn get_record(&self, id: &TargetId) -> Result<Record> {
        let id = id.clone();
        self.run(move |c| {
            c.prepare_cached(
                "SELECT version, cur, last, pending_attempt, pending, pending_created, \
                 last_rotated, next_due, last_error FROM cw_records \
                 WHERE kind=?1 AND scope=?2 AND account=?3",
            )
            .map_err(db_err)?
            .query_row(params![id.kind(), id.scope(), id.account()], |r| {
                record_from_row(&id, r)
            })
            .optional()
            .map_err(db_err)?
            .ok_or(StateError::NotFound("record"))
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        record: &Record,
        expected_version: u64,
        fence: Option<Fence>,
    ) -> Result<u64> {
        let rec = record.clone();
        self.run(move |c| {
            let expected = crate::types::to_sql_i64(expected_version)?;
            let fence_token = fence.map(|f| crate::types::to_sql_i64(f.0)).transpose()?;
            let p = rec.pending.as_ref();
            let n = c
                .prepare_cached(
                    "UPDATE cw_records SET version=?4+1, cur=?5, last=?6, pending_attempt=?7, \
                     pending=?8, pending_created=?9, last_rotated=?10, next_due=?11, \
                     last_error=?12 WHERE kind=?1 AND scope=?2 AND account=?3 AND version=?4 \
                     AND (?13 IS NULL OR EXISTS (SELECT 1 FROM cw_claims WHERE kind=?1 \
                     AND scope=?2 AND account=?3 AND token=?13 AND holder IS NOT NULL))",
                )
                .map_err(db_err)?
                .execute(params![
                    rec.id.kind(),
                    rec.id.scope(),
                    rec.id.account(),
                    expected,
                    rec.current.as_ref().map(Sealed::as_bytes),
                    rec.last.as_ref().map(Sealed::as_bytes),
                    p.map(|p| p.attempt.as_str()),
                    p.map(|p| p.sealed.as_bytes()),
                    p.map(|p| p.created_at),
                    rec.last_rotated,
                    rec.next_due,
                    rec.last_error,
                    fence_token,
                ])
                .map_err(db_err)?;
            if n == 1 {
                return Ok(expected_version + 1);
            }
            Err(match current_version(c, &rec.id)? {
                None => StateError::NotFound("record"),
                Some(v) if v != expected => StateError::Conflict(ConflictReason::Version),
                Some(_) => StateError::Conflict(ConflictReason::Fenced),
            })
        })
        .await
    }

    async fn delete_record(&self, id: &TargetId, expected_version: u64) -> Result<()> {
        let id = id.clone();
        self.run(move |c| {
            match current_version(c, &id)? {
                None => return Err(StateError::NotFound("record")),
                Some(v) if v != crate::types::to_sql_i64(expected_version)? => {
                    return Err(StateError::Conflict(ConflictReason::Version));
                }
                Some(_) => {}
            }
            c.prepare_cached("DELETE FROM cw_records WHERE kind=?1 AND scope=?2 AND account=?3")
                .map_err(db_err)?
                .execute(params![id.kind(), id.scope(), id.account()])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn list_due(&self, now: Millis, limit: usize) -> Result<Vec<TargetId>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT kind, scope, account FROM cw_records \
                     WHERE next_due <= ?1 OR pending IS NOT NULL \
                     ORDER BY kind, scope, account LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = st
                .query_map(params![now, limit], |r| id_from_row(r, 0))
                .map_err(db_err)?;
            let mut out = Vec::new();
            for r in rows {
                out.push(r.map_err(db_err)??);
            }
            Ok(out)
        })
        .await
    }

    async fn claim(&self, id: &TargetId, holder: &str, now: Millis, ttl_ms: i64) -> Result<Claim> {
        crate::types::check_ttl(ttl_ms, "claim")?;
        let (id, holder) = (id.clone(), holder.to_owned());
        self.run(move |c| {
            let row: Option<(i64, Option<String>, i64)> = c
                .prepare_cached(
                    "SELECT token, holder, expires_at FROM cw_claims \
                     WHERE kind=?1 AND scope=?2 AND account=?3",
                )
                .map_err(db_err)?
                .query_row(params![id.kind(), id.scope(), id.account()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
                .map_err(db_err)?;
            if let Some((_, Some(_), exp)) = &row
                && *exp > now
            {
                return Err(StateError::Conflict(ConflictReason::ClaimHeld));
            }
            let token = row.map_or(0, |r| r.0) + 1;
            let expires_at = now.saturating_add(ttl_ms);
            c.prepare_cached(
                "INSERT INTO cw_claims (kind, scope, account, token, holder, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (kind, scope, account) DO UPDATE \
                 SET token=excluded.token, holder=excluded.holder, expires_at=excluded.expires_at",
            )
            .map_err(db_err)?
            .execute(params![
                id.kind(),
                id.scope(),
                id.account(),
                token,
                holder,
                expires_at
            ])
            .map_err(db_err)?;
            Ok(Claim {
                id,
                holder,
                token: u64::try_from(token).unwrap_or(0),
                expires_at,
            })
        })
        .await
    }

    async fn renew_claim(&self, claim: &Claim, now: Millis, ttl_ms: i64) -> Result<Claim> {
        crate::types::check_ttl(ttl_ms, "claim")?;
        let claim = claim.clone();
        self.run(move |c| {
            let expires_at = now.saturating_add(ttl_ms);
            let n = c
                .prepare_cached(
                    "UPDATE cw_claims SET expires_at=?5 WHERE kind=?1 AND scope=?2 AND \
                     account=?3 AND token=?4 AND holder IS NOT NULL",
                )
                .map_err(db_err)?
                .execute(params![
                    claim.id.kind(),
                    claim.id.scope(),
                    claim.id.account(),
                    crate::types::to_sql_i64(claim.token)?,
                    expires_at
                ])
                .map_err(db_err)?;
            if n == 0 {
                return Err(StateError::Conflict(ConflictReason::Fenced));
            }
            Ok(Claim {
                expires_at,
                ..claim
            })
        })
        .await
    }

    async fn release_claim(&self, claim: &Claim) -> Result<()> {
        let claim = claim.clone();
        self.run(move |c| {
            c.prepare_cached(
                "UPDATE cw_claims SET holder=NULL, expires_at=0 WHERE kind=?1 AND scope=?2 \
                 AND account=?3 AND token=?4",
            )
            .map_err(db_err)?
            .execute(params![
                claim.id.kind(),
                claim.id.scope(),
                claim.id.account(),
                crate::types::to_sql_i64(claim.token)?
            ])
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn add_to_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        let (set, accounts) = (set.to_owned(), accounts.to_vec());
        self.run(move |c| {
            let mut member_of = c
                .prepare_cached(
                    "SELECT set_name FROM cw_members WHERE kind=?1 AND scope=?2 AND account=?3",
                )
                .map_err(db_err)?;
            for a in &accounts {
                let s: Option<String> = member_of
                    .query_row(params![a.kind(), a.scope(), a.account()], |r| r.get(0))
                    .optional()
                    .map_err(db_err)?;
                if s.is_some_and(|s| s != set) {
                    return Err(StateError::Conflict(ConflictReason::OtherSet));
                }
            }
            c.prepare_cached("INSERT OR IGNORE INTO cw_sets (name) VALUES (?1)")
                .map_err(db_err)?
                .execute(params![set])
                .map_err(db_err)?;
            let mut ins = c
                .prepare_cached(
                    "INSERT OR IGNORE INTO cw_members (kind, scope, account, set_name) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db_err)?;
            for a in &accounts {
                ins.execute(params![a.kind(), a.scope(), a.account(), set])
                    .map_err(db_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn remove_from_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        let (set, accounts) = (set.to_owned(), accounts.to_vec());
        self.run(move |c| {
            if !set_exists(c, &set)? {
                return Err(StateError::NotFound("set"));
            }
            let mut leased = c
                .prepare_cached(
                    "SELECT lease_id IS NOT NULL FROM cw_members WHERE kind=?1 AND scope=?2 \
                     AND account=?3 AND set_name=?4",
                )
                .map_err(db_err)?;
            for a in &accounts {
                let l: Option<bool> = leased
                    .query_row(params![a.kind(), a.scope(), a.account(), set], |r| r.get(0))
                    .optional()
                    .map_err(db_err)?;
                if l == Some(true) {
                    return Err(StateError::Conflict(ConflictReason::Leased));
                }
            }
            let mut del = c
                .prepare_cached(
                    "DELETE FROM cw_members WHERE kind=?1 AND scope=?2 AND account=?3 \
                     AND set_name=?4",
                )
                .map_err(db_err)?;
            for a in &accounts {
                del.execute(params![a.kind(), a.scope(), a.account(), set])
                    .map_err(db_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn set_members(&self, set: &str) -> Result<Vec<SetMember>> {
        let set = set.to_owned();
        self.run(move |c| {
            if !set_exists(c, &set)? {
                return Err(StateError::NotFound("set"));
            }
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {LEASE_COLS} FROM cw_members WHERE set_name=?1 \
                     ORDER BY kind, scope, account"
                ))
                .map_err(db_err)?;
            let rows = st
                .query_map(params![set], |r| {
                    let account = id_from_row(r, 0)?;
                    let lease = match r.get::<_, Option<String>>(4)? {
                        Some(_) => Some(lease_from_row(r)?),
                        None => None,
                    };
                    Ok((account, lease))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (account, lease) = row.map_err(db_err)?;
                out.push(SetMember {
                    account: account?,
                    lease: lease.transpose()?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn take_lease(
        &self,
        set: &str,
        borrower: &str,
        now: Millis,
        terms: LeaseTerms,
    ) -> Result<Lease> {
        terms.check()?;
        let (set, borrower) = (set.to_owned(), borrower.to_owned());
        self.run(move |c| {
            let (lease_id, issued_at) = (new_uuid(), now);
            let expires_at = now.saturating_add(terms.ttl_ms);
            let max_expires_at = now.saturating_add(terms.max_ttl_ms);
            let taken = c
                .prepare_cached(
                    "UPDATE cw_members SET lease_id=?2, borrower=?3, issued_at=?4, \
                     expires_at=?5, max_expires_at=?6 WHERE (kind, scope, account) = \
                     (SELECT kind, scope, account FROM cw_members \
                      WHERE set_name=?1 AND lease_id IS NULL \
                      ORDER BY kind, scope, account LIMIT 1) \
                     RETURNING kind, scope, account",
                )
                .map_err(db_err)?
                .query_row(
                    params![
                        set,
                        lease_id,
                        borrower,
                        issued_at,
                        expires_at,
                        max_expires_at
                    ],
                    |r| id_from_row(r, 0),
                )
                .optional()
                .map_err(db_err)?;
            let Some(account) = taken else {
                return Err(if set_exists(c, &set)? {
                    StateError::NoneAvailable
                } else {
                    StateError::NotFound("set")
                });
            };
            Ok(Lease {
                lease_id,
                set,
                account: account?,
                borrower,
                issued_at,
                expires_at,
                max_expires_at,
            })
        })
        .await
    }

    async fn renew_lease(
        &self,
        lease_id: &str,
        borrower: Option<&str>,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<Lease> {
        crate::types::check_ttl(ttl_ms, "lease")?;
        let (lease_id, borrower) = (lease_id.to_owned(), borrower.map(str::to_owned));
        self.run(move |c| {
            let mut lease = get_lease(c, &lease_id)?;
            if borrower.is_some_and(|b| b != lease.borrower) {
                return Err(StateError::NotBorrower);
            }
            if lease.expires_at <= now {
                return Err(StateError::Expired);
            }
            lease.expires_at = now.saturating_add(ttl_ms).min(lease.max_expires_at);
            c.prepare_cached("UPDATE cw_members SET expires_at=?2 WHERE lease_id=?1")
                .map_err(db_err)?
                .execute(params![lease_id, lease.expires_at])
                .map_err(db_err)?;
            Ok(lease)
        })
        .await
    }

    async fn release_lease(&self, lease_id: &str, borrower: Option<&str>) -> Result<Lease> {
        let (lease_id, borrower) = (lease_id.to_owned(), borrower.map(str::to_owned));
        self.run(move |c| {
            let lease = get_lease(c, &lease_id)?;
            if borrower.is_some_and(|b| b != lease.borrower) {
                return Err(StateError::NotBorrower);
            }
            c.prepare_cached(
                "UPDATE cw_members SET lease_id=NULL, borrower=NULL, issued_at=NULL, \
                 expires_at=NULL, max_expires_at=NULL WHERE lease_id=?1",
            )
            .map_err(db_err)?
            .execute(params![lease_id])
            .map_err(db_err)?;
            Ok(lease)
        })
        .await
    }

    async fn list_expired_leases(&self, now: Millis, limit: usize) -> Result<Vec<Lease>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {LEASE_COLS} FROM cw_members WHERE lease_id IS NOT NULL \
                     AND expires_at <= ?1 ORDER BY expires_at, lease_id LIMIT ?2"
                ))
                .map_err(db_err)?;
            let rows = st
                .query_map(params![now, limit], lease_from_row)
                .map_err(db_err)?;
            let mut out = Vec::new();
            for r in rows {
                out.push(r.map_err(db_err)??);
            }
            Ok(out)
        })
        .await
    }
}

fn set_exists(c: &Connection, set: &str) -> Result<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM cw_sets WHERE name=?1")
        .map_err(db_err)?
        .query_row(params![set], |_| Ok(()))
        .optional()
        .map_err(db_err)?
        .is_some())
}
