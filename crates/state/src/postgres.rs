//! The PostgreSQL store: many service instances sharing one database.

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
    Claim, Fence, Lease, LeaseTerms, Millis, Pending, Record, Sealed, SetMember, TargetId, new_uuid,
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

fn record_from_row(id: &TargetId, r: &Row) -> Result<Record> {
    let g = |e: tokio_postgres::Error| StateError::Corrupt(format!("record row: {e}"));
    let version: i64 = r.try_get(0).map_err(g)?;
    let pending = match (
        r.try_get::<_, Option<String>>(3).map_err(g)?,
        r.try_get::<_, Option<Vec<u8>>>(4).map_err(g)?,
        r.try_get::<_, Option<i64>>(5).map_err(g)?,
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
        version: u64::try_from(version).map_err(|_| StateError::Corrupt("version".into()))?,
        current: r
            .try_get::<_, Option<Vec<u8>>>(1)
            .map_err(g)?
            .map(Sealed::from_bytes),
        last: r
            .try_get::<_, Option<Vec<u8>>>(2)
            .map_err(g)?
            .map(Sealed::from_bytes),
        pending,
        last_rotated: r.try_get(6).map_err(g)?,
        next_due: r.try_get(7).map_err(g)?,
        last_error: r.try_get(8).map_err(g)?,
    })
}

fn id_from_row(r: &Row, at: usize) -> Result<TargetId> {
    let g = |e: tokio_postgres::Error| StateError::Corrupt(format!("id row: {e}"));
    TargetId::new(
        r.try_get::<_, String>(at).map_err(g)?,
        r.try_get::<_, String>(at + 1).map_err(g)?,
        r.try_get::<_, String>(at + 2).map_err(g)?,
    )
}

fn lease_from_row(r: &Row) -> Result<Lease> {
    let g = |e: tokio_postgres::Error| StateError::Corrupt(format!("lease row: {e}"));
    Ok(Lease {
        account: id_from_row(r, 0)?,
        set: r.try_get(3).map_err(g)?,
        lease_id: r.try_get(4).map_err(g)?,
        borrower: r.try_get(5).map_err(g)?,
        issued_at: r.try_get(6).map_err(g)?,
        expires_at: r.try_get(7).map_err(g)?,
        max_expires_at: r.try_get(8).map_err(g)?,
    })
}

fn id_arrays(ids: &[TargetId]) -> (Vec<String>, Vec<String>, Vec<String>) {
    (
        ids.iter().map(|i| i.kind().to_owned()).collect(),
        ids.iter().map(|i| i.scope().to_owned()).collect(),
        ids.iter().map(|i| i.account().to_owned()).collect(),
    )
}

async fn record_version(c: &mut Conn, id: &TargetId) -> Result<Option<i64>> {
    let row = c
        .query_opt(
            "SELECT version FROM cw_records WHERE kind=$1 AND scope=$2 AND account=$3",
            &[&id.kind(), &id.scope(), &id.account()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

async fn lease_by_id(c: &mut Conn, lease_id: &str) -> Result<Option<Lease>> {
    c.query_opt(
        concat!(
            "SELECT ",
            lease_cols!(),
            " FROM cw_members WHERE lease_id=$1"
        ),
        &[&lease_id],
    )
    .await?
    .as_ref()
    .map(lease_from_row)
    .transpose()
}

async fn set_exists<C: tokio_postgres::GenericClient + Sync>(c: &C, set: &str) -> Result<bool> {
    Ok(c.query_opt("SELECT 1 FROM cw_sets WHERE name=$1", &[&set])
        .await
        .map_err(pg_err)?
        .is_some())
}

#[async_trait]
impl StateStore for PgStore {
    async fn create_record(&self, record: &Record) -> Result<u64> {
        let rec = record.clone();
        self.with(move |c| {
            Box::pin(async move {
                let p = rec.pending.as_ref();
                let n = c
                    .execute(
                        "INSERT INTO cw_records (kind, scope, account, version, cur, last, \
                         pending_attempt, pending, pending_created, last_rotated, next_due, \
                         last_error) VALUES ($1,$2,$3,1,$4,$5,$6,$7,$8,$9,$10,$11) \
                         ON CONFLICT DO NOTHING",
                        &[
                            &rec.id.kind(),
                            &rec.id.scope(),
                            &rec.id.account(),
                            &rec.current.as_ref().map(Sealed::as_bytes),
                            &rec.last.as_ref().map(Sealed::as_bytes),
                            &p.map(|p| p.attempt.as_str()),
                            &p.map(|p| p.sealed.as_bytes()),
                            &p.map(|p| p.created_at),
                            &rec.last_rotated,
                            &rec.next_due,
                            &rec.last_error,
                        ],
                    )
                    .await?;
                if n == 0 {
                    return Err(StateError::Conflict(ConflictReason::AlreadyExists));
                }
                Ok(1)
            })
        })
        .await
    }

    async fn get_record(&self, id: &TargetId) -> Result<Record> {
        let id = id.clone();
        self.with(move |c| {
            Box::pin(async move {
                let row = c
                    .query_opt(
                        concat!(
                            "SELECT ",
                            rec_cols!(),
                            " FROM cw_records \
                             WHERE kind=$1 AND scope=$2 AND account=$3"
                        ),
                        &[&id.kind(), &id.scope(), &id.account()],
                    )
                    .await?
                    .ok_or(StateError::NotFound("record"))?;
                record_from_row(&id, &row)
            })
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
        self.with(move |c| {
            Box::pin(async move {
                let expected = crate::types::to_sql_i64(expected_version)?;
                let fence = fence.map(|f| crate::types::to_sql_i64(f.0)).transpose()?;
                let p = rec.pending.as_ref();
                let params: [&(dyn ToSql + Sync); 13] = [
                    &rec.id.kind(),
                    &rec.id.scope(),
                    &rec.id.account(),
                    &expected,
                    &rec.current.as_ref().map(Sealed::as_bytes),
                    &rec.last.as_ref().map(Sealed::as_bytes),
                    &p.map(|p| p.attempt.as_str()),
                    &p.map(|p| p.sealed.as_bytes()),
                    &p.map(|p| p.created_at),
                    &rec.last_rotated,
                    &rec.next_due,
                    &rec.last_error,
                    &fence,
                ];
                let n = c
                    .execute(
                        "UPDATE cw_records r SET version=$4+1, cur=$5, last=$6, \
                         pending_attempt=$7, pending=$8, pending_created=$9, last_rotated=$10, \
                         next_due=$11, last_error=$12 \
                         WHERE r.kind=$1 AND r.scope=$2 AND r.account=$3 AND r.version=$4 \
                         AND ($13::BIGINT IS NULL OR EXISTS (SELECT 1 FROM cw_claims cl \
                              WHERE cl.kind=$1 AND cl.scope=$2 AND cl.account=$3 \
                              AND cl.token=$13 AND cl.holder IS NOT NULL FOR SHARE))",
                        &params,
                    )
                    .await?;
                if n == 1 {
                    return Ok(expected_version + 1);
                }
                Err(match record_version(c, &rec.id).await? {
                    None => StateError::NotFound("record"),
                    Some(v) if v != expected => StateError::Conflict(ConflictReason::Version),
                    Some(_) => StateError::Conflict(ConflictReason::Fenced),
                })
            })
        })
        .await
    }

    async fn delete_record(&self, id: &TargetId, expected_version: u64) -> Result<()> {
        let id = id.clone();
        self.with(move |c| {
            Box::pin(async move {
                let expected = crate::types::to_sql_i64(expected_version)?;
                let n = c
                    .execute(
                        "DELETE FROM cw_records WHERE kind=$1 AND scope=$2 AND account=$3 \
                         AND version=$4",
                        &[&id.kind(), &id.scope(), &id.account(), &expected],
                    )
                    .await?;
                if n == 1 {
                    return Ok(());
                }
                Err(match record_version(c, &id).await? {
                    None => StateError::NotFound("record"),
                    Some(_) => StateError::Conflict(ConflictReason::Version),
                })
            })
        })
        .await
    }

    async fn list_due(&self, now: Millis, limit: usize) -> Result<Vec<TargetId>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT kind, scope, account FROM cw_records \
                         WHERE next_due <= $1 OR pending IS NOT NULL \
                         ORDER BY kind, scope, account LIMIT $2",
                        &[&now, &limit],
                    )
                    .await?;
                rows.iter().map(|r| id_from_row(r, 0)).collect()
            })
        })
        .await
    }

    async fn claim(&self, id: &TargetId, holder: &str, now: Millis, ttl_ms: i64) -> Result<Claim> {
        crate::types::check_ttl(ttl_ms, "claim")?;
        let (id, holder) = (id.clone(), holder.to_owned());
        self.with(move |c| {
            Box::pin(async move {
                let expires_at = now.saturating_add(ttl_ms);
                let row = c
                    .query_opt(
                        "INSERT INTO cw_claims AS cl (kind, scope, account, token, holder, \
                         expires_at) VALUES ($1,$2,$3,1,$4,$5) \
                         ON CONFLICT (kind, scope, account) DO UPDATE \
                         SET token=cl.token+1, holder=EXCLUDED.holder, \
                         expires_at=EXCLUDED.expires_at \
                         WHERE cl.holder IS NULL OR cl.expires_at <= $6 RETURNING cl.token",
                        &[
                            &id.kind(),
                            &id.scope(),
                            &id.account(),
                            &holder,
                            &expires_at,
                            &now,
                        ],
                    )
                    .await?
                    .ok_or(StateError::Conflict(ConflictReason::ClaimHeld))?;
                let token: i64 = row.get(0);
                Ok(Claim {
                    id,
                    holder,
                    token: u64::try_from(token).map_err(|_| StateError::Corrupt("token".into()))?,
                    expires_at,
                })
            })
        })
        .await
    }

    async fn renew_claim(&self, claim: &Claim, now: Millis, ttl_ms: i64) -> Result<Claim> {
        crate::types::check_ttl(ttl_ms, "claim")?;
        let claim = claim.clone();
        self.with(move |c| {
            Box::pin(async move {
                let expires_at = now.saturating_add(ttl_ms);
                let token = crate::types::to_sql_i64(claim.token)?;
                let n = c
                    .execute(
                        "UPDATE cw_claims SET expires_at=$5 WHERE kind=$1 AND scope=$2 \
                         AND account=$3 AND token=$4 AND holder IS NOT NULL",
                        &[
                            &claim.id.kind(),
                            &claim.id.scope(),
                            &claim.id.account(),
                            &token,
                            &expires_at,
                        ],
                    )
                    .await?;
                if n == 0 {
                    return Err(StateError::Conflict(ConflictReason::Fenced));
                }
                Ok(Claim {
                    expires_at,
                    ..claim
                })
            })
        })
        .await
    }

    async fn release_claim(&self, claim: &Claim) -> Result<()> {
        let claim = claim.clone();
        self.with(move |c| {
            Box::pin(async move {
                let token = crate::types::to_sql_i64(claim.token)?;
                c.execute(
                    "UPDATE cw_claims SET holder=NULL, expires_at=0 WHERE kind=$1 AND \
                     scope=$2 AND account=$3 AND token=$4",
                    &[
                        &claim.id.kind(),
                        &claim.id.scope(),
                        &claim.id.account(),
                        &token,
                    ],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn add_to_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        let (set, accounts) = (set.to_owned(), accounts.to_vec());
        self.with(move |c| {
            Box::pin(async move {
                let (k, s, a) = id_arrays(&accounts);
                let tx = c.client.transaction().await.map_err(pg_err)?;
                tx.execute(
                    "INSERT INTO cw_sets (name) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&set],
                )
                .await
                .map_err(pg_err)?;
                tx.execute(
                    "INSERT INTO cw_members (kind, scope, account, set_name) \
                     SELECT k, s, a, $4 FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[]) \
                     AS t(k, s, a) ON CONFLICT DO NOTHING",
                    &[&k, &s, &a, &set],
                )
                .await
                .map_err(pg_err)?;
                let other = tx
                    .query_opt(
                        "SELECT 1 FROM cw_members m JOIN unnest($1::TEXT[], $2::TEXT[], \
                         $3::TEXT[]) AS t(k, s, a) ON m.kind=t.k AND m.scope=t.s \
                         AND m.account=t.a WHERE m.set_name <> $4 LIMIT 1",
                        &[&k, &s, &a, &set],
                    )
                    .await
                    .map_err(pg_err)?;
                if other.is_some() {
                    tx.rollback().await.map_err(pg_err)?;
                    return Err(StateError::Conflict(ConflictReason::OtherSet));
                }
                tx.commit().await.map_err(pg_err)
            })
        })
        .await
    }

    async fn remove_from_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        let (set, accounts) = (set.to_owned(), accounts.to_vec());
        self.with(move |c| {
            Box::pin(async move {
                let (k, s, a) = id_arrays(&accounts);
                let tx = c.client.transaction().await.map_err(pg_err)?;
                if !set_exists(&tx, &set).await? {
                    return Err(StateError::NotFound("set"));
                }
                let leased = tx
                    .query(
                        "SELECT m.lease_id IS NOT NULL FROM cw_members m JOIN \
                         unnest($1::TEXT[], $2::TEXT[], $3::TEXT[]) AS t(k, s, a) \
                         ON m.kind=t.k AND m.scope=t.s AND m.account=t.a \
                         WHERE m.set_name=$4 FOR UPDATE OF m",
                        &[&k, &s, &a, &set],
                    )
                    .await
                    .map_err(pg_err)?;
                if leased.iter().any(|r| r.get::<_, bool>(0)) {
                    return Err(StateError::Conflict(ConflictReason::Leased));
                }
                tx.execute(
                    "DELETE FROM cw_members m USING unnest($1::TEXT[], $2::TEXT[], \
                     $3::TEXT[]) AS t(k, s, a) WHERE m.kind=t.k AND m.scope=t.s \
                     AND m.account=t.a AND m.set_name=$4",
                    &[&k, &s, &a, &set],
                )
                .await
                .map_err(pg_err)?;
                tx.commit().await.map_err(pg_err)
            })
        })
        .await
    }

    async fn set_members(&self, set: &str) -> Result<Vec<SetMember>> {
        let set = set.to_owned();
        self.with(move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        concat!(
                            "SELECT ",
                            lease_cols!(),
                            " FROM cw_members WHERE set_name=$1 \
                             ORDER BY kind, scope, account"
                        ),
                        &[&set],
                    )
                    .await?;
                if rows.is_empty() && !set_exists(&c.client, &set).await? {
                    return Err(StateError::NotFound("set"));
                }
                rows.iter()
                    .map(|r| {
                        Ok(SetMember {
                            account: id_from_row(r, 0)?,
                            lease: match r.get::<_, Option<String>>(4) {
                                Some(_) => Some(lease_from_row(r)?),
                                None => None,
                            },
                        })
                    })
                    .collect()
            })
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
        self.with(move |c| {
            Box::pin(async move {
                let expires_at = now.saturating_add(terms.ttl_ms);
                let max_expires_at = now.saturating_add(terms.max_ttl_ms);
                // SKIP LOCKED can come back empty while others' takes are in flight;
                // retry while some account is still free.
                for _ in 0..64 {
                    let lease_id = new_uuid();
                    let row = c
                        .query_opt(
                            "UPDATE cw_members m SET lease_id=$2, borrower=$3, issued_at=$4, \
                             expires_at=$5, max_expires_at=$6 \
                             FROM (SELECT kind, scope, account FROM cw_members \
                                   WHERE set_name=$1 AND lease_id IS NULL \
                                   ORDER BY kind, scope, account LIMIT 1 \
                                   FOR UPDATE SKIP LOCKED) f \
                             WHERE m.kind=f.kind AND m.scope=f.scope AND m.account=f.account \
                             AND m.lease_id IS NULL RETURNING m.kind, m.scope, m.account",
                            &[
                                &set,
                                &lease_id,
                                &borrower,
                                &now,
                                &expires_at,
                                &max_expires_at,
                            ],
                        )
                        .await?;
                    if let Some(r) = row {
                        return Ok(Lease {
                            lease_id,
                            set,
                            account: id_from_row(&r, 0)?,
                            borrower,
                            issued_at: now,
                            expires_at,
                            max_expires_at,
                        });
                    }
                    let any_free = c
                        .query_opt(
                            "SELECT 1 FROM cw_members WHERE set_name=$1 AND lease_id IS NULL \
                             LIMIT 1",
                            &[&set],
                        )
                        .await?
                        .is_some();
                    if !any_free {
                        return Err(if set_exists(&c.client, &set).await? {
                            StateError::NoneAvailable
                        } else {
                            StateError::NotFound("set")
                        });
                    }
                    tokio::task::yield_now().await;
                }
                Err(StateError::Unavailable(
                    "postgres: lease contention did not settle".into(),
                ))
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
        self.with(move |c| {
            Box::pin(async move {
                let want = now.saturating_add(ttl_ms);
                let row = c
                    .query_opt(
                        concat!(
                            "UPDATE cw_members SET expires_at=LEAST($3, max_expires_at) \
                             WHERE lease_id=$1 AND ($2::TEXT IS NULL OR borrower=$2) \
                             AND expires_at > $4 RETURNING ",
                            lease_cols!(),
                            ""
                        ),
                        &[&lease_id, &borrower, &want, &now],
                    )
                    .await?;
                if let Some(r) = row {
                    return lease_from_row(&r);
                }
                Err(match lease_by_id(c, &lease_id).await? {
                    None => StateError::NotFound("lease"),
                    Some(l) if borrower.is_some_and(|b| b != l.borrower) => StateError::NotBorrower,
                    Some(_) => StateError::Expired,
                })
            })
        })
        .await
    }

    async fn release_lease(&self, lease_id: &str, borrower: Option<&str>) -> Result<Lease> {
        let (lease_id, borrower) = (lease_id.to_owned(), borrower.map(str::to_owned));
        self.with(move |c| {
            Box::pin(async move {
                let row = c
                    .query_opt(
                        "WITH old AS (SELECT kind, scope, account, set_name, lease_id, \
                         borrower, issued_at, expires_at, max_expires_at FROM cw_members \
                         WHERE lease_id=$1 FOR UPDATE) \
                         UPDATE cw_members m SET lease_id=NULL, borrower=NULL, issued_at=NULL, \
                         expires_at=NULL, max_expires_at=NULL FROM old \
                         WHERE m.kind=old.kind AND m.scope=old.scope AND m.account=old.account \
                         AND m.lease_id=$1 AND ($2::TEXT IS NULL OR old.borrower=$2) \
                         RETURNING old.kind, old.scope, old.account, old.set_name, \
                         old.lease_id, old.borrower, old.issued_at, old.expires_at, \
                         old.max_expires_at",
                        &[&lease_id, &borrower],
                    )
                    .await?;
                if let Some(r) = row {
                    return lease_from_row(&r);
                }
                Err(match lease_by_id(c, &lease_id).await? {
                    None => StateError::NotFound("lease"),
                    Some(_) => StateError::NotBorrower,
                })
            })
        })
        .await
    }

    async fn list_expired_leases(&self, now: Millis, limit: usize) -> Result<Vec<Lease>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        concat!(
                            "SELECT ",
                            lease_cols!(),
                            " FROM cw_members WHERE lease_id IS NOT NULL \
                             AND expires_at <= $1 ORDER BY expires_at, lease_id LIMIT $2"
                        ),
                        &[&now, &limit],
                    )
                    .await?;
                rows.iter().map(lease_from_row).collect()
            })
        })
        .await
    }
}
