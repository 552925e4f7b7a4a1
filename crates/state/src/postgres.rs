//! The PostgreSQL store: many service instances sharing one database.

#![allow(dead_code, unused_imports, unused_macros)] // until the new schema lands

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Semaphore;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Socket, Statement};

use crate::error::{ConflictReason, Result, StateError};
use crate::store::StateStore;
use crate::types::{
    Claim, ConfigDoc, Fence, Lease, LeaseTerms, Millis, Record, SetConfig, SetInfo, SetMember,
    TargetId,
};

/// Settings of a [`PgStore`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PgOptions {
    /// The PostgreSQL schema holding the store's tables (created if missing;
    /// default `credwheel`). Lower-case letters, digits and `_`, not starting with
    /// a digit, at most 63 bytes.
    pub schema: String,
    /// Number of pooled connections (default 8).
    pub pool_size: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            schema: "credwheel".into(),
            pool_size: 8,
        }
    }
}

impl PgOptions {
    /// Defaults with another schema.
    pub fn with_schema(schema: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            ..Self::default()
        }
    }
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Connector = Arc<dyn Fn() -> BoxFut<Result<Client>> + Send + Sync>;

/// A [`StateStore`] on PostgreSQL.
///
/// Every operation is one statement in autocommit mode, or one short transaction,
/// and each connection runs with `synchronous_commit = on`, so a call returns only
/// after its commit is flushed to the server's WAL. Concurrency control:
/// compare-and-swap is `UPDATE ... WHERE version = $n`; a fenced write takes a share
/// lock on the claim row in the same statement; claims are an
/// `INSERT ... ON CONFLICT DO UPDATE ... WHERE expired`; leases are taken with
/// `FOR UPDATE SKIP LOCKED`. Concurrent commits from the pool's connections share
/// WAL flushes (PostgreSQL's own group commit).
///
/// Connections use the TLS connector given to [`PgStore::connect_with_tls`];
/// [`PgStore::connect`] uses none (loopback or a Unix socket only).
pub struct PgStore {
    pool: Vec<Arc<tokio::sync::Mutex<Option<Conn>>>>,
    free: Mutex<Vec<usize>>,
    permits: Semaphore,
    connector: Connector,
    schema: String,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool.len())
            .finish_non_exhaustive()
    }
}

fn pg_err(e: tokio_postgres::Error) -> StateError {
    // tokio-postgres errors carry the server's message and SQLSTATE, never our
    // parameters (which are ciphertext anyway).
    StateError::Unavailable(format!("postgres: {e}"))
}

fn check_schema(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(StateError::Invalid(
            "schema: lower-case letters, digits and _, not starting with a digit".into(),
        ))
    }
}

const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS cw_records (
    kind TEXT NOT NULL, scope TEXT NOT NULL, account TEXT NOT NULL,
    version BIGINT NOT NULL,
    cur BYTEA, last BYTEA,
    pending_attempt TEXT, pending BYTEA, pending_created BIGINT,
    last_rotated BIGINT, next_due BIGINT, last_error TEXT,
    PRIMARY KEY (kind, scope, account));
CREATE INDEX IF NOT EXISTS cw_records_due ON cw_records (next_due);
CREATE TABLE IF NOT EXISTS cw_claims (
    kind TEXT NOT NULL, scope TEXT NOT NULL, account TEXT NOT NULL,
    token BIGINT NOT NULL, holder TEXT, expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, scope, account));
CREATE TABLE IF NOT EXISTS cw_sets (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS cw_members (
    kind TEXT NOT NULL, scope TEXT NOT NULL, account TEXT NOT NULL,
    set_name TEXT NOT NULL,
    lease_id TEXT UNIQUE, borrower TEXT,
    issued_at BIGINT, expires_at BIGINT, max_expires_at BIGINT,
    PRIMARY KEY (kind, scope, account));
CREATE INDEX IF NOT EXISTS cw_members_set ON cw_members (set_name) WHERE lease_id IS NULL;
CREATE INDEX IF NOT EXISTS cw_members_expiry ON cw_members (expires_at) WHERE lease_id IS NOT NULL;
";

macro_rules! rec_cols {
    () => {
        "version, cur, last, pending_attempt, pending, pending_created, last_rotated, \
         next_due, last_error"
    };
}
macro_rules! lease_cols {
    () => {
        "kind, scope, account, set_name, lease_id, borrower, issued_at, expires_at, \
         max_expires_at"
    };
}

/// A pooled connection with its prepared statements.
struct Conn {
    client: Client,
    stmts: HashMap<&'static str, Statement>,
}

impl Conn {
    async fn prep(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(st) = self.stmts.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql).await.map_err(pg_err)?;
        self.stmts.insert(sql, st.clone());
        Ok(st)
    }

    async fn execute(&mut self, sql: &'static str, p: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let st = self.prep(sql).await?;
        self.client.execute(&st, p).await.map_err(pg_err)
    }

    async fn query_opt(
        &mut self,
        sql: &'static str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let st = self.prep(sql).await?;
        self.client.query_opt(&st, p).await.map_err(pg_err)
    }

    async fn query(&mut self, sql: &'static str, p: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let st = self.prep(sql).await?;
        self.client.query(&st, p).await.map_err(pg_err)
    }
}

impl PgStore {
    /// Connects without TLS (for loopback or Unix-socket servers) with a
    /// `postgres://` URL or a key=value connection string.
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self> {
        Self::connect_with_tls(url, NoTls, options).await
    }

    /// Connects with a TLS connector (e.g. `postgres-native-tls` or
    /// `tokio-postgres-rustls`).
    pub async fn connect_with_tls<T>(url: &str, tls: T, options: PgOptions) -> Result<Self>
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        check_schema(&options.schema)?;
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StateError::Invalid("malformed PostgreSQL connection string".into()))?;
        let schema = options.schema.clone();
        let connector: Connector = Arc::new(move || {
            let (config, tls, schema) = (config.clone(), tls.clone(), schema.clone());
            Box::pin(async move {
                let (client, conn) = config.connect(tls).await.map_err(pg_err)?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::warn!(error = %e, "postgres connection ended");
                    }
                });
                client
                    .batch_execute(&format!(
                        "SET synchronous_commit = on; SET search_path TO \"{schema}\""
                    ))
                    .await
                    .map_err(pg_err)?;
                Ok(client)
            })
        });
        let size = options.pool_size.max(1);
        let first = connector().await?;
        // Create the schema once, serialised across processes by an advisory lock.
        first
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock(7436529170); \
                 CREATE SCHEMA IF NOT EXISTS \"{s}\"; SET LOCAL search_path TO \"{s}\"; \
                 {SCHEMA_SQL} COMMIT;",
                s = options.schema
            ))
            .await
            .map_err(pg_err)?;
        let mut pool = vec![Arc::new(tokio::sync::Mutex::new(Some(Conn {
            client: first,
            stmts: HashMap::new(),
        })))];
        for _ in 1..size {
            pool.push(Arc::new(tokio::sync::Mutex::new(None)));
        }
        Ok(Self {
            pool,
            free: Mutex::new((0..size).collect()),
            permits: Semaphore::new(size),
            connector,
            schema: options.schema,
        })
    }

    /// The schema in use.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Runs `f` with a pooled connection (reconnecting a broken one).
    async fn with<T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut Conn) -> BoxFut2<'c, Result<T>>,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StateError::Unavailable("pool closed".into()))?;
        let idx = {
            let mut free = self
                .free
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            free.pop()
                .ok_or_else(|| StateError::Unavailable("pool bookkeeping".into()))?
        };
        // Returns the slot to the free list even if this future is dropped.
        let _slot_guard = SlotGuard {
            free: &self.free,
            idx,
        };
        let slot = self.pool[idx].clone();
        let mut guard = slot.lock().await;
        if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
            *guard = Some(Conn {
                client: (self.connector)().await?,
                stmts: HashMap::new(),
            });
        }
        match guard.as_mut() {
            Some(c) => f(c).await,
            None => Err(StateError::Unavailable("no connection".into())),
        }
    }
}

struct SlotGuard<'a> {
    free: &'a Mutex<Vec<usize>>,
    idx: usize,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(self.idx);
    }
}

type BoxFut2<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

#[async_trait]
impl StateStore for PgStore {
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
