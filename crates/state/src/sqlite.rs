//! The embedded durable store: one SQLite file, safe for several processes.

#![allow(dead_code, unused_imports, unused_macros)] // until the new schema lands

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
    Claim, ConfigDoc, Fence, Lease, LeaseTerms, Millis, Record, SetConfig, SetInfo, SetMember,
    TargetId,
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

#[async_trait]
impl StateStore for SqliteStore {
    async fn create_record(&self, _record: &Record) -> Result<u64> {
        Err(pending_impl())
    }
    async fn get_record(&self, _id: &TargetId) -> Result<Record> {
        Err(pending_impl())
    }
    async fn compare_and_swap(
        &self,
        _record: &Record,
        _expected_version: u64,
        _fence: Option<Fence>,
    ) -> Result<u64> {
        Err(pending_impl())
    }
    async fn delete_record(&self, _id: &TargetId, _expected_version: u64) -> Result<()> {
        Err(pending_impl())
    }
    async fn list_due(
        &self,
        _now: Millis,
        _after: Option<&TargetId>,
        _limit: usize,
    ) -> Result<Vec<TargetId>> {
        Err(pending_impl())
    }
    async fn list_records(&self, _after: Option<&TargetId>, _limit: usize) -> Result<Vec<Record>> {
        Err(pending_impl())
    }
    async fn list_needing_operator(
        &self,
        _after: Option<&TargetId>,
        _limit: usize,
    ) -> Result<Vec<Record>> {
        Err(pending_impl())
    }
    async fn claim(
        &self,
        _id: &TargetId,
        _holder: &str,
        _now: Millis,
        _ttl_ms: i64,
    ) -> Result<Claim> {
        Err(pending_impl())
    }
    async fn renew_claim(&self, _claim: &Claim, _now: Millis, _ttl_ms: i64) -> Result<Claim> {
        Err(pending_impl())
    }
    async fn release_claim(&self, _claim: &Claim) -> Result<()> {
        Err(pending_impl())
    }
    async fn get_claim(&self, _id: &TargetId) -> Result<Option<Claim>> {
        Err(pending_impl())
    }
    async fn put_set(
        &self,
        _name: &str,
        _config: &SetConfig,
        _expected_version: u64,
    ) -> Result<u64> {
        Err(pending_impl())
    }
    async fn get_set(&self, _name: &str) -> Result<SetInfo> {
        Err(pending_impl())
    }
    async fn list_sets(&self, _after: Option<&str>, _limit: usize) -> Result<Vec<SetInfo>> {
        Err(pending_impl())
    }
    async fn delete_set(&self, _name: &str, _expected_version: u64) -> Result<()> {
        Err(pending_impl())
    }
    async fn add_to_set(&self, _set: &str, _accounts: &[TargetId]) -> Result<()> {
        Err(pending_impl())
    }
    async fn remove_from_set(&self, _set: &str, _accounts: &[TargetId]) -> Result<()> {
        Err(pending_impl())
    }
    async fn set_members(&self, _set: &str) -> Result<Vec<SetMember>> {
        Err(pending_impl())
    }
    async fn take_lease(
        &self,
        _set: &str,
        _borrower: &str,
        _now: Millis,
        _terms: LeaseTerms,
    ) -> Result<Lease> {
        Err(pending_impl())
    }
    async fn get_lease(&self, _lease_id: &str) -> Result<Lease> {
        Err(pending_impl())
    }
    async fn renew_lease(
        &self,
        _lease_id: &str,
        _borrower: Option<&str>,
        _now: Millis,
        _ttl_ms: i64,
    ) -> Result<Lease> {
        Err(pending_impl())
    }
    async fn begin_return(
        &self,
        _lease_id: &str,
        _borrower: Option<&str>,
    ) -> Result<(SetMember, Lease)> {
        Err(pending_impl())
    }
    async fn finish_return(&self, _account: &TargetId, _generation: u64) -> Result<SetMember> {
        Err(pending_impl())
    }
    async fn list_expired_leases(&self, _now: Millis, _limit: usize) -> Result<Vec<Lease>> {
        Err(pending_impl())
    }
    async fn put_config(
        &self,
        _kind: &str,
        _name: &str,
        _body: &[u8],
        _expected_version: u64,
    ) -> Result<u64> {
        Err(pending_impl())
    }
    async fn get_config(&self, _kind: &str, _name: &str) -> Result<ConfigDoc> {
        Err(pending_impl())
    }
    async fn list_configs(
        &self,
        _kind: &str,
        _after: Option<&str>,
        _limit: usize,
    ) -> Result<Vec<ConfigDoc>> {
        Err(pending_impl())
    }
    async fn delete_config(&self, _kind: &str, _name: &str, _expected_version: u64) -> Result<()> {
        Err(pending_impl())
    }
}

fn pending_impl() -> StateError {
    StateError::Unavailable("this store does not implement the new schema yet".into())
}
