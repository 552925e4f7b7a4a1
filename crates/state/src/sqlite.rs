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

use crate::codec;
use crate::error::{ConflictReason, Missing, Result, StateError};
use crate::store::StateStore;
use crate::types::{
    Claim, ConfigDoc, Fence, Lease, LeaseTerms, MemberState, Millis, Pending, Record, Schedule,
    Sealed, SetConfig, SetInfo, SetMember, TargetId, check_name, new_uuid, to_sql_i64,
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
    notes: crate::notes::ClaimNotes,
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
    /// Idle read-only connections: reads never queue behind writers.
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    busy_timeout: Duration,
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

/// Version 1: the schema before versioned migrations (created with `IF NOT EXISTS`,
/// so it is a no-op on a store created by that code).
const V1: &str = "
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

/// Version 2: record health, history, stored schedules, the target baseline,
/// claim renewal times, set settings, member states, configuration documents.
/// Records with a pending rotation become in doubt; unlent members available.
const V2: &str = "
ALTER TABLE cw_records ADD COLUMN history_rest BLOB;
ALTER TABLE cw_records ADD COLUMN pending_deadline INTEGER;
ALTER TABLE cw_records ADD COLUMN target_set_at INTEGER;
ALTER TABLE cw_records ADD COLUMN schedule TEXT NOT NULL DEFAULT 'none';
ALTER TABLE cw_records ADD COLUMN state TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE cw_records ADD COLUMN state_since INTEGER;
ALTER TABLE cw_records ADD COLUMN why_kind TEXT;
ALTER TABLE cw_records ADD COLUMN why_text TEXT;
ALTER TABLE cw_records ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cw_records ADD COLUMN retry_at INTEGER;
UPDATE cw_records SET state = 'in_doubt', pending_deadline = pending_created + 600000
    WHERE pending IS NOT NULL;
ALTER TABLE cw_claims ADD COLUMN renewed_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cw_sets ADD COLUMN ttl_ms INTEGER NOT NULL DEFAULT 3600000;
ALTER TABLE cw_sets ADD COLUMN max_ttl_ms INTEGER NOT NULL DEFAULT 86400000;
ALTER TABLE cw_sets ADD COLUMN enforce INTEGER NOT NULL DEFAULT 1;
ALTER TABLE cw_sets ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE cw_members ADD COLUMN state TEXT NOT NULL DEFAULT 'available';
ALTER TABLE cw_members ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
UPDATE cw_members SET state = 'lent' WHERE lease_id IS NOT NULL;
CREATE TABLE cw_configs (
    kind TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (kind, name)) WITHOUT ROWID;
";

/// Version 3: `due_at`, the time from which `Record::is_due` holds (NULL: never
/// by itself), as an indexed virtual column, so that a scheduler's `list_due` over
/// many records that are not due reads the index instead of scanning the table.
///
/// Due at `t` means: not waiting for an operator, not backing off at `t`
/// (`retry_at <= t`), and in doubt or pending, or scheduled at or before `t`.
const V3: &str = "
ALTER TABLE cw_records ADD COLUMN due_at INTEGER GENERATED ALWAYS AS (
    CASE
        WHEN state = 'needs_reconcile' THEN NULL
        WHEN pending IS NOT NULL OR state = 'in_doubt'
            THEN coalesce(retry_at, -9223372036854775808)
        WHEN next_due IS NULL THEN NULL
        ELSE max(next_due, coalesce(retry_at, next_due))
    END) VIRTUAL;
CREATE INDEX cw_records_by_due_at ON cw_records (due_at) WHERE due_at IS NOT NULL;
";

/// The schema's migrations, in order (run by `refinery`, history in
/// `cw_schema_history`).
pub(crate) fn migrations() -> Result<Vec<refinery_core::Migration>> {
    [
        ("V1__initial", V1),
        ("V2__health_schedules_checkout_config", V2),
        ("V3__due_at_index", V3),
    ]
    .iter()
    .map(|(n, sql)| {
        refinery_core::Migration::unapplied(n, sql)
            .map_err(|e| StateError::Unavailable(format!("migration {n}: {e}")))
    })
    .collect()
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let mut runner = refinery_core::Runner::new(&migrations()?);
    runner.set_migration_table_name("cw_schema_history");
    let runner = runner.set_grouped(true);
    // Several processes may open a new or old file at once: the loser of the race
    // fails (busy or a stale snapshot) and finds the work done on the next try.
    let mut last = None;
    for _ in 0..5 {
        match runner.run(conn) {
            Ok(_) => return Ok(()),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                last = Some(e.to_string());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    Err(StateError::Unavailable(format!(
        "sqlite: migrating the schema failed: {}",
        last.unwrap_or_default()
    )))
}

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
        let mut conn = conn;
        migrate(&mut conn)?;
        let shared = Arc::new(Shared {
            conn: Mutex::new(conn),
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            max_batch: options.max_batch.max(1),
            stats: Stats::default(),
            readers: Mutex::new(Vec::new()),
            path: path.clone(),
            busy_timeout: options.busy_timeout,
        });
        let bg = shared.clone();
        std::thread::Builder::new()
            .name("credwheel-sqlite".into())
            .spawn(move || background(&bg))
            .map_err(|e| StateError::Unavailable(format!("cannot start committer thread: {e}")))?;
        Ok(Self {
            shared,
            path,
            notes: crate::notes::ClaimNotes::new(),
        })
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

    /// Runs a read on a read-only connection of its own (WAL: it sees the last
    /// committed state and neither waits for nor blocks writers). Brief and
    /// blocking: inside `block_in_place` on a multi-threaded runtime.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T>,
    {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let go = || {
            let conn = match lock(&self.shared.readers).pop() {
                Some(c) => c,
                None => open_reader(&self.shared.path, self.shared.busy_timeout)?,
            };
            let out = f(&conn);
            if conn.is_autocommit() {
                lock(&self.shared.readers).push(conn);
            }
            out
        };
        if multi_thread {
            tokio::task::block_in_place(go)
        } else {
            go()
        }
    }

    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T>
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

/// Runs a job; a panic inside it counts as a failed operation (its savepoint is
/// rolled back) and its caller gets an error, the connection stays usable.
fn run_job(j: Job, conn: &Connection) -> (bool, Option<Reply>) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| j(Some(conn)))) {
        Ok((ok, reply)) => (ok, Some(reply)),
        Err(_) => (false, None),
    }
}

fn run_batch(conn: &Connection, jobs: Vec<Job>, stats: &Stats) {
    if !conn.is_autocommit() {
        // Never start a batch inside a transaction left open by an earlier failure.
        let _ = conn.execute_batch("ROLLBACK");
    }
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
            let (ok, reply) = run_job(j, conn);
            any_ok = ok;
            replies.extend(reply);
            continue;
        }
        if let Err(e) = exec_cached(conn, "SAVEPOINT op") {
            broken = Some(e);
            replies.push(j(None).1);
            continue;
        }
        let (ok, reply) = run_job(j, conn);
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
        replies.extend(reply);
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

fn open_reader(path: &Path, busy: Duration) -> Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    c.busy_timeout(busy).map_err(db_err)?;
    Ok(c)
}

const REC_COLS: &str = "kind, scope, account, version, cur, last, history_rest, pending_attempt, \
     pending, pending_created, pending_deadline, last_rotated, target_set_at, schedule, \
     next_due, state, state_since, why_kind, why_text, failures, retry_at, last_error";

type RowResult<T> = rusqlite::Result<Result<T>>;

fn record_from_row(r: &Row<'_>) -> RowResult<Record> {
    let id = match id_from_row(r, 0)? {
        Ok(id) => id,
        Err(e) => return Ok(Err(e)),
    };
    let version: i64 = r.get(3)?;
    let pending = match (
        r.get::<_, Option<String>>(7)?,
        r.get::<_, Option<Vec<u8>>>(8)?,
        r.get::<_, Option<i64>>(9)?,
    ) {
        (Some(attempt), Some(sealed), Some(created_at)) => {
            let deadline = r.get::<_, Option<i64>>(10)?.unwrap_or(created_at);
            Some(Pending::new(
                attempt,
                Sealed::from_bytes(sealed),
                created_at,
                deadline,
            ))
        }
        _ => None,
    };
    let history = codec::history_from(r.get(5)?, r.get(6)?);
    let schedule: String = r.get(13)?;
    let state: String = r.get(15)?;
    let state = codec::state_from(&state, r.get(16)?, r.get(17)?, r.get(18)?);
    let failures: i64 = r.get(19)?;
    Ok((|| {
        let mut rec = Record::new(id);
        rec.version = codec::u64_from(version)?;
        rec.current = r
            .get::<_, Option<Vec<u8>>>(4)
            .map_err(db_err)?
            .map(Sealed::from_bytes);
        rec.history = history?;
        rec.pending = pending;
        rec.set_at = r.get(11).map_err(db_err)?;
        rec.target_set_at = r.get(12).map_err(db_err)?;
        rec.schedule = Schedule::decode(&schedule)?;
        rec.next_due = r.get(14).map_err(db_err)?;
        rec.state = state?;
        rec.failures = codec::u32_from(failures)?;
        rec.retry_at = r.get(20).map_err(db_err)?;
        rec.last_error = r.get(21).map_err(db_err)?;
        Ok(rec)
    })())
}

fn id_from_row(r: &Row<'_>, at: usize) -> RowResult<TargetId> {
    Ok(TargetId::new(
        r.get::<_, String>(at)?,
        r.get::<_, String>(at + 1)?,
        r.get::<_, String>(at + 2)?,
    ))
}

const LEASE_COLS: &str =
    "kind, scope, account, set_name, lease_id, borrower, issued_at, expires_at, max_expires_at";
const MEMBER_COLS: &str = "kind, scope, account, set_name, lease_id, borrower, issued_at, \
     expires_at, max_expires_at, state, generation";

fn lease_from_row(r: &Row<'_>) -> RowResult<Lease> {
    let id = id_from_row(r, 0)?;
    let set: String = r.get(3)?;
    let lease_id: String = r.get(4)?;
    let borrower: String = r.get(5)?;
    let (issued_at, expires_at, max_expires_at): (i64, i64, i64) =
        (r.get(6)?, r.get(7)?, r.get(8)?);
    Ok(id.map(|account| {
        Lease::new(
            lease_id,
            set,
            account,
            borrower,
            issued_at,
            expires_at,
            max_expires_at,
        )
    }))
}

fn member_from_row(r: &Row<'_>) -> RowResult<SetMember> {
    let account = id_from_row(r, 0)?;
    let lease = match r.get::<_, Option<String>>(4)? {
        Some(_) => Some(lease_from_row(r)?),
        None => None,
    };
    let state: String = r.get(9)?;
    let generation: i64 = r.get(10)?;
    Ok((|| {
        Ok(SetMember::new(
            account?,
            MemberState::parse(&state)?,
            codec::u64_from(generation)?,
            lease.transpose()?,
        ))
    })())
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<Result<T>>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for r in rows {
        out.push(r.map_err(db_err)??);
    }
    Ok(out)
}

fn get_lease(c: &Connection, lease_id: &str) -> Result<Lease> {
    c.prepare_cached(&format!(
        "SELECT {LEASE_COLS} FROM cw_members WHERE lease_id = ?1"
    ))
    .map_err(db_err)?
    .query_row(params![lease_id], lease_from_row)
    .optional()
    .map_err(db_err)?
    .ok_or(StateError::NotFound(Missing::Lease))?
}

fn get_member(c: &Connection, account: &TargetId) -> Result<Option<SetMember>> {
    c.prepare_cached(&format!(
        "SELECT {MEMBER_COLS} FROM cw_members WHERE kind=?1 AND scope=?2 AND account=?3"
    ))
    .map_err(db_err)?
    .query_row(
        params![account.kind(), account.scope(), account.account()],
        member_from_row,
    )
    .optional()
    .map_err(db_err)?
    .transpose()
}

/// The record's columns after (kind, scope, account, version), as parameters 5..=22.
macro_rules! rec_params {
    ($rec:expr, $p:expr, $st:expr, $hist:expr, $sched:expr) => {
        (
            $rec.current.as_ref().map(Sealed::as_bytes),
            $rec.history.first().map(Sealed::as_bytes),
            $hist.as_deref(),
            $p.map(|p| p.attempt.as_str()),
            $p.map(|p| p.sealed.as_bytes()),
            $p.map(|p| p.created_at),
            $p.map(|p| p.deadline),
            $rec.set_at,
            $rec.target_set_at,
            $sched.as_str(),
            $rec.next_due,
            $st.0,
            $st.1,
            $st.2,
            $st.3,
            i64::from($rec.failures),
            $rec.retry_at,
            $rec.last_error.as_deref(),
        )
    };
}

fn write_record(
    c: &Connection,
    rec: &Record,
    sql: &str,
    version: i64,
    fence: Option<i64>,
) -> Result<usize> {
    let p = rec.pending.as_ref();
    let st = codec::state_cols(&rec.state);
    let hist = codec::history_rest(&rec.history);
    let sched = rec.schedule.encode();
    let v = rec_params!(rec, p, st, hist, sched);
    c.prepare_cached(sql)
        .map_err(db_err)?
        .execute(params![
            rec.id.kind(),
            rec.id.scope(),
            rec.id.account(),
            version,
            v.0,
            v.1,
            v.2,
            v.3,
            v.4,
            v.5,
            v.6,
            v.7,
            v.8,
            v.9,
            v.10,
            v.11,
            v.12,
            v.13,
            v.14,
            v.15,
            v.16,
            v.17,
            fence,
        ])
        .map_err(db_err)
}

const INSERT_RECORD: &str = "INSERT INTO cw_records (kind, scope, account, version, cur, last, \
     history_rest, pending_attempt, pending, pending_created, pending_deadline, last_rotated, \
     target_set_at, schedule, next_due, state, state_since, why_kind, why_text, failures, \
     retry_at, last_error) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
     ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22 WHERE ?23 IS NULL ON CONFLICT DO NOTHING";

const CAS_RECORD: &str = "UPDATE cw_records SET version=?4+1, cur=?5, last=?6, \
     history_rest=?7, pending_attempt=?8, pending=?9, pending_created=?10, \
     pending_deadline=?11, last_rotated=?12, target_set_at=?13, schedule=?14, next_due=?15, \
     state=?16, state_since=?17, why_kind=?18, why_text=?19, failures=?20, retry_at=?21, \
     last_error=?22 WHERE kind=?1 AND scope=?2 AND account=?3 AND version=?4 \
     AND (?23 IS NULL OR EXISTS (SELECT 1 FROM cw_claims WHERE kind=?1 \
     AND scope=?2 AND account=?3 AND token=?23 AND holder IS NOT NULL))";

fn current_version(c: &Connection, id: &TargetId) -> Result<Option<i64>> {
    c.prepare_cached("SELECT version FROM cw_records WHERE kind=?1 AND scope=?2 AND account=?3")
        .map_err(db_err)?
        .query_row(params![id.kind(), id.scope(), id.account()], |r| r.get(0))
        .optional()
        .map_err(db_err)
}

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// `SELECT cols FROM cw_records WHERE <cond> [AND id > cursor] ORDER BY id LIMIT`.
fn page_records(
    c: &Connection,
    cond: &str,
    now: Option<Millis>,
    after: Option<&TargetId>,
    limit: usize,
) -> Result<Vec<Record>> {
    let cursor = if after.is_some() {
        " AND (kind, scope, account) > (?2, ?3, ?4)"
    } else {
        " AND ?2 IS NULL AND ?3 IS NULL AND ?4 IS NULL"
    };
    let sql = format!(
        "SELECT {REC_COLS} FROM cw_records WHERE ({cond}){cursor} \
         ORDER BY kind, scope, account LIMIT ?5"
    );
    let mut st = c.prepare_cached(&sql).map_err(db_err)?;
    let rows = st
        .query_map(
            params![
                now,
                after.map(TargetId::kind),
                after.map(TargetId::scope),
                after.map(TargetId::account),
                limit_i64(limit)
            ],
            record_from_row,
        )
        .map_err(db_err)?;
    collect(rows)
}

/// [`Record::is_due`](crate::Record::is_due) in SQL: the indexed `due_at` column
/// (migration V3).
const DUE: &str = "due_at IS NOT NULL AND due_at <= ?1";
#[cfg(test)]
pub(crate) const DUE_FOR_TESTS: &str = DUE;

fn set_info(c: &Connection, name: &str) -> Result<Option<SetInfo>> {
    c.prepare_cached("SELECT ttl_ms, max_ttl_ms, enforce, version FROM cw_sets WHERE name=?1")
        .map_err(db_err)?
        .query_row(params![name], |r| {
            let mut cfg = SetConfig::new(r.get(0)?, r.get(1)?);
            cfg.enforce_check_in = r.get(2)?;
            Ok((cfg, r.get::<_, i64>(3)?))
        })
        .optional()
        .map_err(db_err)?
        .map(|(cfg, v)| Ok(SetInfo::new(name.to_owned(), cfg, codec::u64_from(v)?)))
        .transpose()
}

fn set_exists(c: &Connection, set: &str) -> Result<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM cw_sets WHERE name=?1")
        .map_err(db_err)?
        .query_row(params![set], |_| Ok(()))
        .optional()
        .map_err(db_err)?
        .is_some())
}

fn claim_from(id: &TargetId, r: &Row<'_>) -> rusqlite::Result<Result<Claim>> {
    let (token, holder, renewed, expires): (i64, String, i64, i64) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
    Ok(codec::u64_from(token).map(|t| Claim::granted(id.clone(), holder, t, renewed, expires)))
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn create_record(&self, record: &Record) -> Result<u64> {
        let rec = record.clone();
        self.run(move |c| {
            let n = write_record(c, &rec, INSERT_RECORD, 1, None)?;
            if n == 0 {
                return Err(StateError::Conflict(ConflictReason::AlreadyExists));
            }
            Ok(1)
        })
        .await
    }

    async fn get_record(&self, id: &TargetId) -> Result<Record> {
        let id = id.clone();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {REC_COLS} FROM cw_records WHERE kind=?1 AND scope=?2 AND account=?3"
            ))
            .map_err(db_err)?
            .query_row(
                params![id.kind(), id.scope(), id.account()],
                record_from_row,
            )
            .optional()
            .map_err(db_err)?
            .ok_or(StateError::NotFound(Missing::Record))?
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
            let expected = to_sql_i64(expected_version)?;
            let fence_token = fence.map(|f| to_sql_i64(f.token())).transpose()?;
            let n = write_record(c, &rec, CAS_RECORD, expected, fence_token)?;
            if n == 1 {
                return Ok(expected_version + 1);
            }
            Err(match current_version(c, &rec.id)? {
                None => StateError::NotFound(Missing::Record),
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
                None => return Err(StateError::NotFound(Missing::Record)),
                Some(v) if v != to_sql_i64(expected_version)? => {
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

    async fn list_due(
        &self,
        now: Millis,
        after: Option<&TargetId>,
        limit: usize,
    ) -> Result<Vec<TargetId>> {
        let after = after.cloned();
        self.read(move |c| {
            Ok(page_records(c, DUE, Some(now), after.as_ref(), limit)?
                .into_iter()
                .map(|r| r.id)
                .collect())
        })
        .await
    }

    async fn list_records(&self, after: Option<&TargetId>, limit: usize) -> Result<Vec<Record>> {
        let after = after.cloned();
        self.read(move |c| page_records(c, "?1 IS NULL", None, after.as_ref(), limit))
            .await
    }

    async fn list_needing_operator(
        &self,
        after: Option<&TargetId>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        let after = after.cloned();
        self.read(move |c| {
            page_records(
                c,
                "?1 IS NULL AND state = 'needs_reconcile'",
                None,
                after.as_ref(),
                limit,
            )
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
                "INSERT INTO cw_claims (kind, scope, account, token, holder, expires_at, \
                 renewed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (kind, scope, account) DO UPDATE SET token=excluded.token, \
                 holder=excluded.holder, expires_at=excluded.expires_at, \
                 renewed_at=excluded.renewed_at",
            )
            .map_err(db_err)?
            .execute(params![
                id.kind(),
                id.scope(),
                id.account(),
                token,
                holder,
                expires_at,
                now
            ])
            .map_err(db_err)?;
            Ok(Claim::granted(
                id,
                holder,
                codec::u64_from(token)?,
                now,
                expires_at,
            ))
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
                    "UPDATE cw_claims SET expires_at=?5, renewed_at=?6 WHERE kind=?1 \
                     AND scope=?2 AND account=?3 AND token=?4 AND holder IS NOT NULL",
                )
                .map_err(db_err)?
                .execute(params![
                    claim.id.kind(),
                    claim.id.scope(),
                    claim.id.account(),
                    to_sql_i64(claim.token)?,
                    expires_at,
                    now
                ])
                .map_err(db_err)?;
            if n == 0 {
                return Err(StateError::Conflict(ConflictReason::Fenced));
            }
            let mut out = claim;
            out.renewed_at = now;
            out.expires_at = expires_at;
            Ok(out)
        })
        .await
    }

    async fn release_claim(&self, claim: &Claim) -> Result<()> {
        let key = crate::notes::ClaimNotes::key(&claim.id);
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
                to_sql_i64(claim.token)?
            ])
            .map_err(db_err)?;
            Ok(())
        })
        .await?;
        self.notes.announce(&key);
        Ok(())
    }

    async fn wait_for_release(&self, id: &TargetId, timeout: Duration) {
        self.notes.wait(id, timeout).await;
    }

    async fn get_claim(&self, id: &TargetId) -> Result<Option<Claim>> {
        let id = id.clone();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT token, holder, renewed_at, expires_at FROM cw_claims \
                 WHERE kind=?1 AND scope=?2 AND account=?3 AND holder IS NOT NULL",
            )
            .map_err(db_err)?
            .query_row(params![id.kind(), id.scope(), id.account()], |r| {
                claim_from(&id, r)
            })
            .optional()
            .map_err(db_err)?
            .transpose()
        })
        .await
    }

    async fn put_set(&self, name: &str, config: &SetConfig, expected_version: u64) -> Result<u64> {
        check_name("set name", name)?;
        config.check()?;
        let (name, config) = (name.to_owned(), config.clone());
        self.run(move |c| {
            let cur = set_info(c, &name)?;
            match (cur, expected_version) {
                (None, 0) => {
                    c.prepare_cached(
                        "INSERT INTO cw_sets (name, ttl_ms, max_ttl_ms, enforce, version) \
                         VALUES (?1, ?2, ?3, ?4, 1)",
                    )
                    .map_err(db_err)?
                    .execute(params![
                        name,
                        config.ttl_ms,
                        config.max_ttl_ms,
                        config.enforce_check_in
                    ])
                    .map_err(db_err)?;
                    Ok(1)
                }
                (None, _) => Err(StateError::NotFound(Missing::Set)),
                (Some(_), 0) => Err(StateError::Conflict(ConflictReason::AlreadyExists)),
                (Some(s), v) if s.version != v => {
                    Err(StateError::Conflict(ConflictReason::Version))
                }
                (Some(_), v) => {
                    c.prepare_cached(
                        "UPDATE cw_sets SET ttl_ms=?2, max_ttl_ms=?3, enforce=?4, version=?5 \
                         WHERE name=?1",
                    )
                    .map_err(db_err)?
                    .execute(params![
                        name,
                        config.ttl_ms,
                        config.max_ttl_ms,
                        config.enforce_check_in,
                        to_sql_i64(v + 1)?
                    ])
                    .map_err(db_err)?;
                    Ok(v + 1)
                }
            }
        })
        .await
    }

    async fn get_set(&self, name: &str) -> Result<SetInfo> {
        let name = name.to_owned();
        self.read(move |c| set_info(c, &name)?.ok_or(StateError::NotFound(Missing::Set)))
            .await
    }

    async fn list_sets(&self, after: Option<&str>, limit: usize) -> Result<Vec<SetInfo>> {
        let after = after.map(str::to_owned);
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT name, ttl_ms, max_ttl_ms, enforce, version FROM cw_sets \
                     WHERE ?1 IS NULL OR name > ?1 ORDER BY name LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = st
                .query_map(params![after, limit_i64(limit)], |r| {
                    let mut cfg = SetConfig::new(r.get(1)?, r.get(2)?);
                    cfg.enforce_check_in = r.get(3)?;
                    let v: i64 = r.get(4)?;
                    Ok(codec::u64_from(v)
                        .map(|v| SetInfo::new(r.get(0).unwrap_or_default(), cfg, v)))
                })
                .map_err(db_err)?;
            collect(rows)
        })
        .await
    }

    async fn delete_set(&self, name: &str, expected_version: u64) -> Result<()> {
        let name = name.to_owned();
        self.run(move |c| {
            let s = set_info(c, &name)?.ok_or(StateError::NotFound(Missing::Set))?;
            if s.version != expected_version {
                return Err(StateError::Conflict(ConflictReason::Version));
            }
            let lent: bool = c
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM cw_members WHERE set_name=?1 AND state='lent')",
                )
                .map_err(db_err)?
                .query_row(params![name], |r| r.get(0))
                .map_err(db_err)?;
            if lent {
                return Err(StateError::Conflict(ConflictReason::Leased));
            }
            c.prepare_cached("DELETE FROM cw_members WHERE set_name=?1")
                .map_err(db_err)?
                .execute(params![name])
                .map_err(db_err)?;
            c.prepare_cached("DELETE FROM cw_sets WHERE name=?1")
                .map_err(db_err)?
                .execute(params![name])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn add_to_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        let (set, accounts) = (set.to_owned(), accounts.to_vec());
        self.run(move |c| {
            if !set_exists(c, &set)? {
                return Err(StateError::NotFound(Missing::Set));
            }
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
            let mut ins = c
                .prepare_cached(
                    "INSERT OR IGNORE INTO cw_members (kind, scope, account, set_name, state, \
                     generation) VALUES (?1, ?2, ?3, ?4, 'returning', 1)",
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
                return Err(StateError::NotFound(Missing::Set));
            }
            let mut leased = c
                .prepare_cached(
                    "SELECT state = 'lent' FROM cw_members WHERE kind=?1 AND scope=?2 \
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
        self.read(move |c| {
            if !set_exists(c, &set)? {
                return Err(StateError::NotFound(Missing::Set));
            }
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {MEMBER_COLS} FROM cw_members WHERE set_name=?1 \
                     ORDER BY kind, scope, account"
                ))
                .map_err(db_err)?;
            let rows = st
                .query_map(params![set], member_from_row)
                .map_err(db_err)?;
            collect(rows)
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
                     expires_at=?5, max_expires_at=?6, state='lent', generation=generation+1 \
                     WHERE (kind, scope, account) = \
                     (SELECT m.kind, m.scope, m.account FROM cw_members m \
                      JOIN cw_records r ON r.kind=m.kind AND r.scope=m.scope \
                      AND r.account=m.account \
                      WHERE m.set_name=?1 AND m.state='available' AND r.state='ok' \
                      AND r.pending IS NULL \
                      ORDER BY m.kind, m.scope, m.account LIMIT 1) \
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
                    StateError::NotFound(Missing::Set)
                });
            };
            Ok(Lease::new(
                lease_id,
                set,
                account?,
                borrower,
                issued_at,
                expires_at,
                max_expires_at,
            ))
        })
        .await
    }

    async fn get_lease(&self, lease_id: &str) -> Result<Lease> {
        let lease_id = lease_id.to_owned();
        self.read(move |c| get_lease(c, &lease_id)).await
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

    async fn begin_return(
        &self,
        lease_id: &str,
        borrower: Option<&str>,
    ) -> Result<(SetMember, Lease)> {
        let (lease_id, borrower) = (lease_id.to_owned(), borrower.map(str::to_owned));
        self.run(move |c| {
            let lease = get_lease(c, &lease_id)?;
            if borrower.is_some_and(|b| b != lease.borrower) {
                return Err(StateError::NotBorrower);
            }
            c.prepare_cached(
                "UPDATE cw_members SET lease_id=NULL, borrower=NULL, issued_at=NULL, \
                 expires_at=NULL, max_expires_at=NULL, state='returning', \
                 generation=generation+1 WHERE lease_id=?1",
            )
            .map_err(db_err)?
            .execute(params![lease_id])
            .map_err(db_err)?;
            let m = get_member(c, &lease.account)?.ok_or(StateError::NotFound(Missing::Member))?;
            Ok((m, lease))
        })
        .await
    }

    async fn finish_return(&self, account: &TargetId, generation: u64) -> Result<SetMember> {
        let account = account.clone();
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE cw_members SET state='available', generation=generation+1 \
                     WHERE kind=?1 AND scope=?2 AND account=?3 AND state='returning' \
                     AND generation=?4",
                )
                .map_err(db_err)?
                .execute(params![
                    account.kind(),
                    account.scope(),
                    account.account(),
                    to_sql_i64(generation)?
                ])
                .map_err(db_err)?;
            let m = get_member(c, &account)?.ok_or(StateError::NotFound(Missing::Member))?;
            if n == 0 {
                return Err(StateError::Conflict(ConflictReason::MemberState));
            }
            Ok(m)
        })
        .await
    }

    async fn list_expired_leases(&self, now: Millis, limit: usize) -> Result<Vec<Lease>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {LEASE_COLS} FROM cw_members WHERE lease_id IS NOT NULL \
                     AND expires_at <= ?1 ORDER BY expires_at, lease_id LIMIT ?2"
                ))
                .map_err(db_err)?;
            let rows = st
                .query_map(params![now, limit_i64(limit)], lease_from_row)
                .map_err(db_err)?;
            collect(rows)
        })
        .await
    }

    async fn put_config(
        &self,
        kind: &str,
        name: &str,
        body: &[u8],
        expected_version: u64,
    ) -> Result<u64> {
        crate::types::check_config_doc(kind, name, body)?;
        let (kind, name, body) = (kind.to_owned(), name.to_owned(), body.to_vec());
        self.run(move |c| {
            let cur: Option<i64> = c
                .prepare_cached("SELECT version FROM cw_configs WHERE kind=?1 AND name=?2")
                .map_err(db_err)?
                .query_row(params![kind, name], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            let expected = to_sql_i64(expected_version)?;
            match (cur, expected) {
                (None, 0) => {
                    c.prepare_cached(
                        "INSERT INTO cw_configs (kind, name, version, body) VALUES (?1, ?2, 1, ?3)",
                    )
                    .map_err(db_err)?
                    .execute(params![kind, name, body])
                    .map_err(db_err)?;
                    Ok(1)
                }
                (None, _) => Err(StateError::NotFound(Missing::Config)),
                (Some(_), 0) => Err(StateError::Conflict(ConflictReason::AlreadyExists)),
                (Some(v), e) if v != e => Err(StateError::Conflict(ConflictReason::Version)),
                (Some(_), e) => {
                    c.prepare_cached(
                        "UPDATE cw_configs SET version=?3, body=?4 WHERE kind=?1 AND name=?2",
                    )
                    .map_err(db_err)?
                    .execute(params![kind, name, e + 1, body])
                    .map_err(db_err)?;
                    Ok(expected_version + 1)
                }
            }
        })
        .await
    }

    async fn get_config(&self, kind: &str, name: &str) -> Result<ConfigDoc> {
        let (kind, name) = (kind.to_owned(), name.to_owned());
        self.read(move |c| {
            let (v, body): (i64, Vec<u8>) = c
                .prepare_cached("SELECT version, body FROM cw_configs WHERE kind=?1 AND name=?2")
                .map_err(db_err)?
                .query_row(params![kind, name], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(db_err)?
                .ok_or(StateError::NotFound(Missing::Config))?;
            Ok(ConfigDoc::new(kind, name, codec::u64_from(v)?, body))
        })
        .await
    }

    async fn list_configs(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConfigDoc>> {
        let (kind, after) = (kind.to_owned(), after.map(str::to_owned));
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT name, version, body FROM cw_configs WHERE kind=?1 \
                     AND (?2 IS NULL OR name > ?2) ORDER BY name LIMIT ?3",
                )
                .map_err(db_err)?;
            let rows = st
                .query_map(params![kind, after, limit_i64(limit)], |r| {
                    let (name, v, body): (String, i64, Vec<u8>) = (r.get(0)?, r.get(1)?, r.get(2)?);
                    Ok(codec::u64_from(v).map(|v| ConfigDoc::new(kind.clone(), name, v, body)))
                })
                .map_err(db_err)?;
            collect(rows)
        })
        .await
    }

    async fn delete_config(&self, kind: &str, name: &str, expected_version: u64) -> Result<()> {
        let (kind, name) = (kind.to_owned(), name.to_owned());
        self.run(move |c| {
            let cur: Option<i64> = c
                .prepare_cached("SELECT version FROM cw_configs WHERE kind=?1 AND name=?2")
                .map_err(db_err)?
                .query_row(params![kind, name], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            match cur {
                None => Err(StateError::NotFound(Missing::Config)),
                Some(v) if v != to_sql_i64(expected_version)? => {
                    Err(StateError::Conflict(ConflictReason::Version))
                }
                Some(_) => {
                    c.prepare_cached("DELETE FROM cw_configs WHERE kind=?1 AND name=?2")
                        .map_err(db_err)?
                        .execute(params![kind, name])
                        .map_err(db_err)?;
                    Ok(())
                }
            }
        })
        .await
    }
}
