//! The PostgreSQL store: many service instances sharing one database.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row, Socket};

use crate::codec;
use crate::error::{ConflictReason, Missing, Result, StateError};
use crate::store::StateStore;
use crate::types::{
    Claim, ConfigDoc, Fence, Lease, LeaseTerms, MemberState, Millis, Pending, Record, Schedule,
    Sealed, SetConfig, SetInfo, SetMember, TargetId, check_name, new_uuid, to_sql_i64,
};

/// Settings of a [`PgStore`].
#[derive(Clone)]
#[non_exhaustive]
pub struct PgOptions {
    /// The PostgreSQL schema holding the store's tables (created if missing;
    /// default `credwheel`). Lower-case letters, digits and `_`, not starting with
    /// a digit, at most 63 bytes.
    pub schema: String,
    /// Maximum number of pooled connections (default 8).
    pub pool_size: usize,
    /// Server-side limit for each statement (default 10 s), set per transaction.
    pub statement_timeout: Duration,
    /// Extra trusted root certificates (PEM) for TLS, besides the system's.
    pub ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            schema: "credwheel".into(),
            pool_size: 8,
            statement_timeout: Duration::from_secs(10),
            ca_pem: None,
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

/// A [`StateStore`] on PostgreSQL.
///
/// Connections come from a `deadpool-postgres` pool. Every write is a
/// transaction that starts with `SET LOCAL synchronous_commit = on` and `SET LOCAL
/// statement_timeout`, so durability and the timeout hold per transaction even
/// behind a pooling proxy; single-statement writes pipeline `BEGIN`, the statement
/// and `COMMIT` in one round trip. Reads are single statements. Concurrency
/// control: compare-and-swap is `UPDATE ... WHERE version = $n` with the fence
/// checked in the same statement (share-locking the claim row); claims are one
/// `INSERT ... ON CONFLICT DO UPDATE ... WHERE expired`; leases are taken with
/// `FOR UPDATE SKIP LOCKED`. Identifiers are `COLLATE "C"` (byte order, as the API
/// documents) and length-checked to fit a btree entry.
///
/// TLS follows the URL's `sslmode`: `disable` connects in clear; `prefer` (the
/// default) and `require` use TLS with certificate and host name verification
/// (system roots plus [`PgOptions::ca_pem`]); `prefer` falls back to clear text
/// only when the server offers no TLS.
///
/// Callers waiting for a claim held elsewhere are woken by `NOTIFY` when it is
/// released (one extra connection per store `LISTEN`s); where notifications do not
/// arrive (a transaction-pooling proxy, a dropped listener) they poll, so waits
/// only get longer, never wrong.
pub struct PgStore {
    pool: Pool,
    schema: String,
    sql: Sql,
    /// Releases announced by `NOTIFY` (from any process) and by this one.
    notes: crate::notes::ClaimNotes,
    /// The `NOTIFY` channel of this schema.
    channel: String,
    /// Dropped with the store: stops the `LISTEN` task.
    _listener: tokio::sync::oneshot::Sender<()>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn pg_err(e: tokio_postgres::Error) -> StateError {
    // tokio-postgres errors carry the server's message and SQLSTATE, never our
    // parameters (which are ciphertext anyway) nor the connection string.
    match e.as_db_error() {
        Some(db) => StateError::Unavailable(format!(
            "postgres: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        )),
        None => {
            // The causes say what an operator can act on ("error performing TLS
            // handshake" alone does not: "certificate verify failed" does).
            let mut text = format!("postgres: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                let c = cause.to_string();
                if !text.contains(&c) {
                    text.push_str(": ");
                    text.push_str(&c);
                }
                source = cause.source();
            }
            StateError::Unavailable(text)
        }
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StateError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_err(e),
        other => StateError::Unavailable(format!("postgres pool: {other}")),
    }
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

/// Version 1: the schema before versioned migrations (`IF NOT EXISTS`: a no-op on
/// a store created by that code).
const V1: &str = "
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

/// Version 2: health, history, schedules, baseline, claim renewal, set settings,
/// member states, configuration documents; byte-order collation and id length
/// limits (checked for new rows only: `NOT VALID`).
const V2: &str = r#"
ALTER TABLE cw_records
    ADD COLUMN history_rest BYTEA, ADD COLUMN pending_deadline BIGINT,
    ADD COLUMN target_set_at BIGINT, ADD COLUMN schedule TEXT NOT NULL DEFAULT 'none',
    ADD COLUMN state TEXT NOT NULL DEFAULT 'ok', ADD COLUMN state_since BIGINT,
    ADD COLUMN why_kind TEXT, ADD COLUMN why_text TEXT,
    ADD COLUMN failures BIGINT NOT NULL DEFAULT 0, ADD COLUMN retry_at BIGINT,
    ALTER COLUMN kind TYPE TEXT COLLATE "C", ALTER COLUMN scope TYPE TEXT COLLATE "C",
    ALTER COLUMN account TYPE TEXT COLLATE "C";
UPDATE cw_records SET state = 'in_doubt', pending_deadline = pending_created + 600000
    WHERE pending IS NOT NULL;
ALTER TABLE cw_records ADD CONSTRAINT cw_records_id_len CHECK (octet_length(kind) <= 512
    AND octet_length(scope) <= 512 AND octet_length(account) <= 1024
    AND octet_length(kind) + octet_length(scope) + octet_length(account) <= 1536) NOT VALID;
CREATE INDEX cw_records_operator ON cw_records (kind, scope, account)
    WHERE state = 'needs_reconcile';
ALTER TABLE cw_claims ADD COLUMN renewed_at BIGINT NOT NULL DEFAULT 0,
    ALTER COLUMN kind TYPE TEXT COLLATE "C", ALTER COLUMN scope TYPE TEXT COLLATE "C",
    ALTER COLUMN account TYPE TEXT COLLATE "C";
ALTER TABLE cw_sets ADD COLUMN ttl_ms BIGINT NOT NULL DEFAULT 3600000,
    ADD COLUMN max_ttl_ms BIGINT NOT NULL DEFAULT 86400000,
    ADD COLUMN enforce BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN version BIGINT NOT NULL DEFAULT 1,
    ALTER COLUMN name TYPE TEXT COLLATE "C";
ALTER TABLE cw_sets ADD CONSTRAINT cw_sets_name_len CHECK (octet_length(name) <= 512) NOT VALID;
ALTER TABLE cw_members ADD COLUMN state TEXT NOT NULL DEFAULT 'available',
    ADD COLUMN generation BIGINT NOT NULL DEFAULT 1,
    ALTER COLUMN kind TYPE TEXT COLLATE "C", ALTER COLUMN scope TYPE TEXT COLLATE "C",
    ALTER COLUMN account TYPE TEXT COLLATE "C", ALTER COLUMN set_name TYPE TEXT COLLATE "C";
UPDATE cw_members SET state = 'lent' WHERE lease_id IS NOT NULL;
DROP INDEX IF EXISTS cw_members_set;
CREATE INDEX cw_members_available ON cw_members (set_name, kind, scope, account)
    WHERE state = 'available';
CREATE TABLE cw_configs (
    kind TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL, body BYTEA NOT NULL,
    PRIMARY KEY (kind, name),
    CHECK (octet_length(kind) <= 512 AND octet_length(name) <= 512));
"#;

/// Version 3: `due_at`, the time from which `Record::is_due` holds (NULL: never by
/// itself), a stored generated column with a partial index, so that a scheduler's
/// `list_due` over many records that are not due reads the index instead of
/// scanning the table. Replaces the `next_due` index, which no query used.
const V3: &str = "
ALTER TABLE cw_records ADD COLUMN due_at BIGINT GENERATED ALWAYS AS (
    CASE
        WHEN state = 'needs_reconcile' THEN NULL
        WHEN pending IS NOT NULL OR state = 'in_doubt'
            THEN COALESCE(retry_at, '-9223372036854775808'::BIGINT)
        WHEN next_due IS NULL THEN NULL
        ELSE GREATEST(next_due, retry_at)
    END) STORED;
CREATE INDEX cw_records_due_at ON cw_records (due_at) WHERE due_at IS NOT NULL;
DROP INDEX IF EXISTS cw_records_due;
";

async fn migrate(client: &mut tokio_postgres::Client, schema: &str) -> Result<()> {
    // Serialise concurrent first starts across processes.
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_lock(7436529170); CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        ))
        .await
        .map_err(pg_err)?;
    let res = async {
        let prefix = format!("SET LOCAL search_path TO \"{schema}\";\n");
        let migrations = [
            ("V1__initial", V1),
            ("V2__health_schedules_checkout_config", V2),
            ("V3__due_at_index", V3),
        ]
        .iter()
        .map(|(n, sql)| {
            refinery_core::Migration::unapplied(n, &format!("{prefix}{sql}"))
                .map_err(|e| StateError::Unavailable(format!("migration {n}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
        let mut runner = refinery_core::Runner::new(&migrations);
        runner.set_migration_table_name(format!("\"{schema}\".cw_schema_history"));
        runner
            .set_grouped(true)
            .run_async(client)
            .await
            .map_err(|e| {
                StateError::Unavailable(format!("postgres: migrating the schema failed: {e}"))
            })
    }
    .await;
    let unlock = client
        .batch_execute("SELECT pg_advisory_unlock(7436529170)")
        .await
        .map_err(pg_err);
    res?;
    unlock
}

/// The store's SQL, with the schema's name in every table reference.
struct Sql {
    begin: String,
    get_record: String,
    insert_record: String,
    cas: String,
    delete_record: String,
    page_all: String,
    page_all_after: String,
    page_due: String,
    page_due_after: String,
    page_op: String,
    page_op_after: String,
    claim: String,
    renew_claim: String,
    release_claim: String,
    get_claim: String,
    get_set: String,
    insert_set: String,
    update_set: String,
    list_sets: String,
    set_lent: String,
    delete_members: String,
    delete_set: String,
    set_exists: String,
    member_of: String,
    insert_member: String,
    members_lent: String,
    delete_member: String,
    set_members: String,
    take_lease: String,
    get_lease: String,
    renew_lease: String,
    begin_return: String,
    finish_return: String,
    member: String,
    expired_leases: String,
    insert_config: String,
    update_config: String,
    get_config: String,
    list_configs: String,
    delete_config: String,
}

const REC_COLS: &str = "kind, scope, account, version, cur, last, history_rest, pending_attempt, \
     pending, pending_created, pending_deadline, last_rotated, target_set_at, schedule, \
     next_due, state, state_since, why_kind, why_text, failures, retry_at, last_error";
const LEASE_COLS: &str =
    "kind, scope, account, set_name, lease_id, borrower, issued_at, expires_at, max_expires_at";
const MEMBER_COLS: &str = "kind, scope, account, set_name, lease_id, borrower, issued_at, \
     expires_at, max_expires_at, state, generation";
/// `Record::is_due` in SQL: the indexed `due_at` column (migration V3).
const DUE: &str = "due_at IS NOT NULL AND due_at <= $1";
#[cfg(test)]
pub(crate) const DUE_FOR_TESTS: &str = DUE;

impl Sql {
    fn new(schema: &str, timeout: Duration) -> Self {
        let t = |s: &str| s.replace("cw_", &format!("\"{schema}\".cw_"));
        let page = |cond: &str, after: bool| {
            let (c, l) = if after {
                (" AND (kind, scope, account) > ($2, $3, $4)", "$5")
            } else {
                ("", "$2")
            };
            t(&format!(
                "SELECT {REC_COLS} FROM cw_records WHERE ({cond}){c} \
                 ORDER BY kind, scope, account LIMIT {l}"
            ))
        };
        Self {
            begin: format!(
                "BEGIN; SET LOCAL synchronous_commit = on; SET LOCAL statement_timeout = {}",
                timeout.as_millis().max(1)
            ),
            get_record: t(&format!(
                "SELECT {REC_COLS} FROM cw_records WHERE kind=$1 AND scope=$2 AND account=$3"
            )),
            insert_record: t(
                "INSERT INTO cw_records (kind, scope, account, version, cur, last, \
                 history_rest, pending_attempt, pending, pending_created, pending_deadline, \
                 last_rotated, target_set_at, schedule, next_due, state, state_since, why_kind, \
                 why_text, failures, retry_at, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                 $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
                 ON CONFLICT DO NOTHING RETURNING 1",
            ),
            cas: t(
                "WITH upd AS (UPDATE cw_records r SET version=$4+1, cur=$5, last=$6, \
                 history_rest=$7, pending_attempt=$8, pending=$9, pending_created=$10, \
                 pending_deadline=$11, last_rotated=$12, target_set_at=$13, schedule=$14, \
                 next_due=$15, state=$16, state_since=$17, why_kind=$18, why_text=$19, \
                 failures=$20, retry_at=$21, last_error=$22 \
                 WHERE r.kind=$1 AND r.scope=$2 AND r.account=$3 AND r.version=$4 \
                 AND ($23::BIGINT IS NULL OR EXISTS (SELECT 1 FROM cw_claims cl \
                      WHERE cl.kind=$1 AND cl.scope=$2 AND cl.account=$3 \
                      AND cl.token=$23 AND cl.holder IS NOT NULL FOR SHARE)) RETURNING 1) \
                 SELECT (SELECT count(*) FROM upd), (SELECT version FROM cw_records \
                 WHERE kind=$1 AND scope=$2 AND account=$3), \
                 ($23::BIGINT IS NULL OR EXISTS (SELECT 1 FROM cw_claims \
                  WHERE kind=$1 AND scope=$2 AND account=$3 AND token=$23 \
                  AND holder IS NOT NULL))",
            ),
            delete_record: t(
                "WITH del AS (DELETE FROM cw_records WHERE kind=$1 AND scope=$2 \
                 AND account=$3 AND version=$4 RETURNING 1) SELECT (SELECT count(*) FROM del), \
                 (SELECT version FROM cw_records WHERE kind=$1 AND scope=$2 AND account=$3)",
            ),
            page_all: page("$1::BIGINT IS NULL", false),
            page_all_after: page("$1::BIGINT IS NULL", true),
            page_due: t(&format!(
                "SELECT {REC_COLS} FROM cw_records WHERE ({DUE}) \
                 ORDER BY kind, scope, account LIMIT $2"
            )),
            page_due_after: t(&format!(
                "SELECT {REC_COLS} FROM cw_records WHERE ({DUE}) \
                 AND (kind, scope, account) > ($2, $3, $4) \
                 ORDER BY kind, scope, account LIMIT $5"
            )),
            page_op: page("$1::BIGINT IS NULL AND state = 'needs_reconcile'", false),
            page_op_after: page("$1::BIGINT IS NULL AND state = 'needs_reconcile'", true),
            claim: t(
                "INSERT INTO cw_claims AS cl (kind, scope, account, token, holder, \
                 expires_at, renewed_at) VALUES ($1,$2,$3,1,$4,$5,$6) \
                 ON CONFLICT (kind, scope, account) DO UPDATE \
                 SET token=cl.token+1, holder=EXCLUDED.holder, \
                 expires_at=EXCLUDED.expires_at, renewed_at=EXCLUDED.renewed_at \
                 WHERE cl.holder IS NULL OR cl.expires_at <= $6 RETURNING cl.token",
            ),
            renew_claim: t(
                "UPDATE cw_claims SET expires_at=$5, renewed_at=$6 WHERE kind=$1 \
                 AND scope=$2 AND account=$3 AND token=$4 AND holder IS NOT NULL RETURNING 1",
            ),
            // Announces the release to waiters in every process (LISTEN), at commit.
            release_claim: t(
                "WITH u AS (UPDATE cw_claims SET holder=NULL, expires_at=0 WHERE kind=$1 AND \
                 scope=$2 AND account=$3 AND token=$4 RETURNING 1) \
                 SELECT pg_notify($5::text, $1::text || chr(31) || $2::text || chr(31) || \
                 $3::text) FROM u",
            ),
            get_claim: t(
                "SELECT token, holder, renewed_at, expires_at FROM cw_claims \
                 WHERE kind=$1 AND scope=$2 AND account=$3 AND holder IS NOT NULL",
            ),
            get_set: t("SELECT ttl_ms, max_ttl_ms, enforce, version FROM cw_sets WHERE name=$1"),
            insert_set: t(
                "INSERT INTO cw_sets (name, ttl_ms, max_ttl_ms, enforce, version) \
                 VALUES ($1, $2, $3, $4, 1) ON CONFLICT DO NOTHING RETURNING 1",
            ),
            update_set: t("WITH upd AS (UPDATE cw_sets SET ttl_ms=$2, max_ttl_ms=$3, \
                 enforce=$4, version=$5+1 WHERE name=$1 AND version=$5 RETURNING 1) \
                 SELECT (SELECT count(*) FROM upd), (SELECT version FROM cw_sets WHERE name=$1)"),
            list_sets: t(
                "SELECT name, ttl_ms, max_ttl_ms, enforce, version FROM cw_sets \
                 WHERE $1::TEXT IS NULL OR name > $1 ORDER BY name LIMIT $2",
            ),
            set_lent: t("SELECT version, EXISTS (SELECT 1 FROM cw_members \
                 WHERE set_name=$1 AND state='lent') FROM cw_sets WHERE name=$1 FOR UPDATE"),
            delete_members: t("DELETE FROM cw_members WHERE set_name=$1"),
            delete_set: t("DELETE FROM cw_sets WHERE name=$1"),
            set_exists: t("SELECT 1 FROM cw_sets WHERE name=$1"),
            member_of: t(
                "SELECT 1 FROM cw_members m JOIN unnest($1::TEXT[], $2::TEXT[], \
                 $3::TEXT[]) AS t(k, s, a) ON m.kind=t.k AND m.scope=t.s \
                 AND m.account=t.a WHERE m.set_name <> $4 LIMIT 1",
            ),
            insert_member: t(
                "INSERT INTO cw_members (kind, scope, account, set_name, state, \
                 generation) SELECT k, s, a, $4, 'returning', 1 FROM unnest($1::TEXT[], \
                 $2::TEXT[], $3::TEXT[]) AS t(k, s, a) ON CONFLICT DO NOTHING",
            ),
            members_lent: t("SELECT m.state = 'lent' FROM cw_members m JOIN \
                 unnest($1::TEXT[], $2::TEXT[], $3::TEXT[]) AS t(k, s, a) \
                 ON m.kind=t.k AND m.scope=t.s AND m.account=t.a \
                 WHERE m.set_name=$4 FOR UPDATE OF m"),
            delete_member: t(
                "DELETE FROM cw_members m USING unnest($1::TEXT[], $2::TEXT[], \
                 $3::TEXT[]) AS t(k, s, a) WHERE m.kind=t.k AND m.scope=t.s \
                 AND m.account=t.a AND m.set_name=$4",
            ),
            set_members: t(&format!(
                "SELECT {MEMBER_COLS} FROM cw_members WHERE set_name=$1 \
                 ORDER BY kind, scope, account"
            )),
            // A materialised CTE picks the row once (a subquery in FROM may be
            // rescanned and pick several).
            take_lease: t(
                "WITH f AS MATERIALIZED (SELECT mm.kind, mm.scope, mm.account \
                 FROM cw_members mm JOIN cw_records r ON r.kind=mm.kind \
                 AND r.scope=mm.scope AND r.account=mm.account \
                 WHERE mm.set_name=$1 AND mm.state='available' AND r.state='ok' \
                 AND r.pending IS NULL ORDER BY mm.kind, mm.scope, mm.account LIMIT 1 \
                 FOR UPDATE OF mm SKIP LOCKED) \
                 UPDATE cw_members m SET lease_id=$2, borrower=$3, issued_at=$4, \
                 expires_at=$5, max_expires_at=$6, state='lent', generation=m.generation+1 \
                 FROM f WHERE m.kind=f.kind AND m.scope=f.scope AND m.account=f.account \
                 AND m.state='available' RETURNING m.kind, m.scope, m.account",
            ),
            get_lease: t(&format!(
                "SELECT {LEASE_COLS} FROM cw_members WHERE lease_id=$1"
            )),
            renew_lease: t(&format!(
                "WITH old AS (SELECT {LEASE_COLS} FROM cw_members WHERE lease_id=$1 FOR UPDATE), \
                 upd AS (UPDATE cw_members m SET expires_at=LEAST($3, m.max_expires_at) \
                 FROM old WHERE m.lease_id=$1 AND old.expires_at > $2 \
                 AND ($4::TEXT IS NULL OR old.borrower = $4) RETURNING m.expires_at) \
                 SELECT old.*, (SELECT expires_at FROM upd) FROM old"
            )),
            begin_return: t(&format!(
                "WITH old AS (SELECT {LEASE_COLS} FROM cw_members WHERE lease_id=$1 FOR UPDATE), \
                 upd AS (UPDATE cw_members m SET lease_id=NULL, borrower=NULL, issued_at=NULL, \
                 expires_at=NULL, max_expires_at=NULL, state='returning', \
                 generation=m.generation+1 FROM old WHERE m.lease_id=$1 \
                 AND ($2::TEXT IS NULL OR old.borrower = $2) RETURNING m.generation) \
                 SELECT old.*, (SELECT generation FROM upd) FROM old"
            )),
            finish_return: t(&format!(
                "WITH upd AS (UPDATE cw_members SET state='available', generation=generation+1 \
                 WHERE kind=$1 AND scope=$2 AND account=$3 AND state='returning' \
                 AND generation=$4 RETURNING {MEMBER_COLS}) SELECT * FROM upd"
            )),
            member: t(&format!(
                "SELECT {MEMBER_COLS} FROM cw_members WHERE kind=$1 AND scope=$2 AND account=$3"
            )),
            expired_leases: t(&format!(
                "SELECT {LEASE_COLS} FROM cw_members WHERE lease_id IS NOT NULL \
                 AND expires_at <= $1 ORDER BY expires_at, lease_id LIMIT $2"
            )),
            insert_config: t("INSERT INTO cw_configs (kind, name, version, body) \
                 VALUES ($1, $2, 1, $3) ON CONFLICT DO NOTHING RETURNING 1"),
            update_config: t("WITH upd AS (UPDATE cw_configs SET version=$3+1, body=$4 \
                 WHERE kind=$1 AND name=$2 AND version=$3 RETURNING 1) \
                 SELECT (SELECT count(*) FROM upd), \
                 (SELECT version FROM cw_configs WHERE kind=$1 AND name=$2)"),
            get_config: t("SELECT version, body FROM cw_configs WHERE kind=$1 AND name=$2"),
            list_configs: t("SELECT name, version, body FROM cw_configs WHERE kind=$1 \
                 AND ($2::TEXT IS NULL OR name > $2) ORDER BY name LIMIT $3"),
            delete_config: t(
                "WITH del AS (DELETE FROM cw_configs WHERE kind=$1 AND name=$2 \
                 AND version=$3 RETURNING 1) SELECT (SELECT count(*) FROM del), \
                 (SELECT version FROM cw_configs WHERE kind=$1 AND name=$2)",
            ),
        }
    }
}

fn native_tls(options: &PgOptions) -> Result<postgres_native_tls::MakeTlsConnector> {
    let mut b = native_tls::TlsConnector::builder();
    if let Some(pem) = &options.ca_pem {
        let cert = native_tls::Certificate::from_pem(pem)
            .map_err(|e| StateError::Invalid(format!("PostgreSQL CA certificate: {e}")))?;
        b.add_root_certificate(cert);
    }
    let c = b
        .build()
        .map_err(|e| StateError::Unavailable(format!("TLS setup: {e}")))?;
    Ok(postgres_native_tls::MakeTlsConnector::new(c))
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

/// The `NOTIFY` channel announcing released claims of one schema (at most 63
/// bytes, PostgreSQL's identifier limit; schemas are ASCII).
fn notify_channel(schema: &str) -> String {
    let mut c = format!("cw_claims_{schema}");
    c.truncate(63);
    c
}

/// Keeps one connection `LISTEN`ing on `channel` and forwards each payload (an
/// account key) to waiters; reconnects with backoff; ends when the store is
/// dropped. Without it waiters poll, so failures are only logged.
async fn listen<T>(
    config: tokio_postgres::Config,
    tls: T,
    channel: String,
    tx: tokio::sync::broadcast::Sender<std::sync::Arc<str>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    use futures::StreamExt;
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = tokio::time::Instant::now();
        let session = async {
            let (client, mut conn) = config.connect(tls.clone()).await?;
            let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
            let listen_sql = format!("LISTEN \"{channel}\"");
            let listening = client.batch_execute(&listen_sql);
            tokio::pin!(listening);
            let mut listening_done = false;
            loop {
                tokio::select! {
                    r = &mut listening, if !listening_done => {
                        r?;
                        listening_done = true;
                    }
                    m = messages.next() => match m {
                        Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                            let _ = tx.send(std::sync::Arc::from(n.payload()));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e),
                        None => return Ok::<(), tokio_postgres::Error>(()),
                    },
                }
            }
        };
        tokio::select! {
            _ = &mut stopped => return,
            r = session => {
                if let Err(e) = r {
                    tracing::debug!(error = %pg_err(e), "postgres LISTEN connection ended; waiters poll until it is back");
                }
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(100);
        }
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

impl PgStore {
    /// Connects with a `postgres://` URL or a key=value connection string, with
    /// TLS as its `sslmode` asks (see the type's documentation), creates the schema
    /// if needed and migrates it to the current version.
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StateError::Invalid("malformed PostgreSQL connection string".into()))?;
        if config.get_ssl_mode() == SslMode::Disable {
            Self::connect_with_tls(url, NoTls, options).await
        } else {
            let tls = native_tls(&options)?;
            Self::connect_with_tls(url, tls, options).await
        }
    }

    /// Connects with an explicit TLS connector (e.g. `tokio-postgres-rustls`).
    pub async fn connect_with_tls<T>(url: &str, tls: T, options: PgOptions) -> Result<Self>
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Sync + Send,
        T::TlsConnect: Sync + Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        check_schema(&options.schema)?;
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StateError::Invalid("malformed PostgreSQL connection string".into()))?;
        // Migrate on a connection of its own.
        let (mut client, conn) = config.connect(tls.clone()).await.map_err(pg_err)?;
        let driver = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::warn!(error = %e, "postgres connection ended");
            }
        });
        let migrated = migrate(&mut client, &options.schema).await;
        drop(client);
        let _ = driver.await;
        migrated?;
        let notes = crate::notes::ClaimNotes::new();
        let channel = notify_channel(&options.schema);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(listen(
            config.clone(),
            tls.clone(),
            channel.clone(),
            notes.sender(),
            stopped,
        ));
        let mgr = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Reads are single statements outside a transaction: they get the
        // statement timeout as a session setting of each new connection (writes
        // set it per transaction, which survives a pooling proxy).
        let session = format!(
            "SET statement_timeout = {}",
            options.statement_timeout.as_millis().max(1)
        );
        let pool = Pool::builder(mgr)
            .max_size(options.pool_size.max(1))
            .post_create(deadpool_postgres::Hook::async_fn(move |client, _| {
                let session = session.clone();
                Box::pin(async move {
                    client
                        .batch_execute(&session)
                        .await
                        .map_err(deadpool_postgres::HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| StateError::Unavailable(format!("postgres pool: {e}")))?;
        Ok(Self {
            pool,
            sql: Sql::new(&options.schema, options.statement_timeout),
            schema: options.schema,
            notes,
            channel,
            _listener: stop,
        })
    }

    /// The schema in use.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_err)
    }

    /// One read statement.
    async fn read(&self, sql: &str, p: &Params<'_>) -> Result<Vec<Row>> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql).await.map_err(pg_err)?;
        c.query(&st, p).await.map_err(pg_err)
    }

    /// One write statement in its own transaction, pipelined with `BEGIN`, the
    /// per-transaction settings and `COMMIT` (one round trip). Once the first poll
    /// sent them, the server runs all of them even if this future is dropped.
    async fn write(&self, sql: &str, p: &Params<'_>) -> Result<Vec<Row>> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql).await.map_err(pg_err)?;
        let (begin, rows, commit) = tokio::join!(
            c.batch_execute(&self.sql.begin),
            c.query(&st, p),
            c.batch_execute("COMMIT")
        );
        begin.map_err(pg_err)?;
        let rows = rows.map_err(pg_err)?;
        commit.map_err(pg_err)?;
        Ok(rows)
    }
}

fn id_from_row(r: &Row, at: usize) -> Result<TargetId> {
    TargetId::new(
        r.try_get::<_, String>(at).map_err(pg_err)?,
        r.try_get::<_, String>(at + 1).map_err(pg_err)?,
        r.try_get::<_, String>(at + 2).map_err(pg_err)?,
    )
}

fn g<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> Result<T> {
    r.try_get(i).map_err(pg_err)
}

fn record_from_row(r: &Row) -> Result<Record> {
    let mut rec = Record::new(id_from_row(r, 0)?);
    rec.version = codec::u64_from(g(r, 3)?)?;
    rec.current = g::<Option<Vec<u8>>>(r, 4)?.map(Sealed::from_bytes);
    rec.history = codec::history_from(g(r, 5)?, g(r, 6)?)?;
    rec.pending = match (
        g::<Option<String>>(r, 7)?,
        g::<Option<Vec<u8>>>(r, 8)?,
        g::<Option<i64>>(r, 9)?,
    ) {
        (Some(attempt), Some(sealed), Some(created)) => Some(Pending::new(
            attempt,
            Sealed::from_bytes(sealed),
            created,
            g::<Option<i64>>(r, 10)?.unwrap_or(created),
        )),
        _ => None,
    };
    rec.set_at = g(r, 11)?;
    rec.target_set_at = g(r, 12)?;
    rec.schedule = Schedule::decode(g(r, 13)?)?;
    rec.next_due = g(r, 14)?;
    rec.state = codec::state_from(g(r, 15)?, g(r, 16)?, g(r, 17)?, g(r, 18)?)?;
    rec.failures = codec::u32_from(g(r, 19)?)?;
    rec.retry_at = g(r, 20)?;
    rec.last_error = g(r, 21)?;
    Ok(rec)
}

fn lease_from_row(r: &Row) -> Result<Lease> {
    Ok(Lease::new(
        g(r, 4)?,
        g(r, 3)?,
        id_from_row(r, 0)?,
        g(r, 5)?,
        g(r, 6)?,
        g(r, 7)?,
        g(r, 8)?,
    ))
}

fn member_from_row(r: &Row) -> Result<SetMember> {
    let lease = match g::<Option<String>>(r, 4)? {
        Some(_) => Some(lease_from_row(r)?),
        None => None,
    };
    Ok(SetMember::new(
        id_from_row(r, 0)?,
        MemberState::parse(g(r, 9)?)?,
        codec::u64_from(g(r, 10)?)?,
        lease,
    ))
}

fn id_arrays(ids: &[TargetId]) -> (Vec<String>, Vec<String>, Vec<String>) {
    (
        ids.iter().map(|i| i.kind().to_owned()).collect(),
        ids.iter().map(|i| i.scope().to_owned()).collect(),
        ids.iter().map(|i| i.account().to_owned()).collect(),
    )
}

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Decodes a `(count, current version)` answer of a conditional write.
fn cas_answer(rows: &[Row], expected: i64, missing: Missing) -> Result<()> {
    let r = rows
        .first()
        .ok_or_else(|| StateError::Unavailable("postgres: no answer".into()))?;
    let n: i64 = g(r, 0)?;
    let v: Option<i64> = g(r, 1)?;
    // The version and fence columns come from the statement's snapshot: a
    // concurrent commit the update waited for is not in them, so "version and
    // fence looked fine but nothing was updated" is a lost version race.
    let fence_ok = if r.len() > 2 { g::<bool>(r, 2)? } else { true };
    match (n, v) {
        (1, _) => Ok(()),
        (_, None) => Err(StateError::NotFound(missing)),
        (_, Some(v)) if v != expected => Err(StateError::Conflict(ConflictReason::Version)),
        _ if !fence_ok => Err(StateError::Conflict(ConflictReason::Fenced)),
        _ => Err(StateError::Conflict(ConflictReason::Version)),
    }
}

impl PgStore {
    async fn page(
        &self,
        first: &str,
        next: &str,
        now: Option<Millis>,
        after: Option<&TargetId>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        let limit = limit_i64(limit);
        let rows = match (now, after) {
            (Some(now), Some(a)) => {
                self.read(next, &[&now, &a.kind(), &a.scope(), &a.account(), &limit])
                    .await?
            }
            (Some(now), None) => self.read(first, &[&now, &limit]).await?,
            (None, Some(a)) => {
                // The all/operator pages use $2..$5 too: $1 is a placeholder.
                let none: Option<i64> = None;
                self.read(next, &[&none, &a.kind(), &a.scope(), &a.account(), &limit])
                    .await?
            }
            (None, None) => {
                let none: Option<i64> = None;
                self.read(first, &[&none, &limit]).await?
            }
        };
        rows.iter().map(record_from_row).collect()
    }

    async fn write_record(
        &self,
        sql: &str,
        rec: &Record,
        version: i64,
        fence: Option<i64>,
        with_fence: bool,
    ) -> Result<Vec<Row>> {
        let p = rec.pending.as_ref();
        let st = codec::state_cols(&rec.state);
        let hist = codec::history_rest(&rec.history);
        let sched = rec.schedule.encode();
        let failures = i64::from(rec.failures);
        let (kind, scope, account) = (rec.id.kind(), rec.id.scope(), rec.id.account());
        let cur = rec.current.as_ref().map(Sealed::as_bytes);
        let last = rec.history.first().map(Sealed::as_bytes);
        let hist = hist.as_deref();
        let attempt = p.map(|p| p.attempt.as_str());
        let pend = p.map(|p| p.sealed.as_bytes());
        let created = p.map(|p| p.created_at);
        let deadline = p.map(|p| p.deadline);
        let sched = sched.as_str();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &kind,
            &scope,
            &account,
            &version,
            &cur,
            &last,
            &hist,
            &attempt,
            &pend,
            &created,
            &deadline,
            &rec.set_at,
            &rec.target_set_at,
            &sched,
            &rec.next_due,
            &st.0,
            &st.1,
            &st.2,
            &st.3,
            &failures,
            &rec.retry_at,
            &rec.last_error,
        ];
        if with_fence {
            params.push(&fence);
        }
        self.write(sql, &params).await
    }
}

#[async_trait]
impl StateStore for PgStore {
    async fn create_record(&self, record: &Record) -> Result<u64> {
        let rows = self
            .write_record(&self.sql.insert_record, record, 1, None, false)
            .await?;
        if rows.is_empty() {
            return Err(StateError::Conflict(ConflictReason::AlreadyExists));
        }
        Ok(1)
    }

    async fn get_record(&self, id: &TargetId) -> Result<Record> {
        let rows = self
            .read(
                &self.sql.get_record,
                &[&id.kind(), &id.scope(), &id.account()],
            )
            .await?;
        rows.first()
            .map(record_from_row)
            .ok_or(StateError::NotFound(Missing::Record))?
    }

    async fn compare_and_swap(
        &self,
        record: &Record,
        expected_version: u64,
        fence: Option<Fence>,
    ) -> Result<u64> {
        let expected = to_sql_i64(expected_version)?;
        let fence = fence.map(|f| to_sql_i64(f.token())).transpose()?;
        let rows = self
            .write_record(&self.sql.cas, record, expected, fence, true)
            .await?;
        cas_answer(&rows, expected, Missing::Record)?;
        Ok(expected_version + 1)
    }

    async fn delete_record(&self, id: &TargetId, expected_version: u64) -> Result<()> {
        let expected = to_sql_i64(expected_version)?;
        let rows = self
            .write(
                &self.sql.delete_record,
                &[&id.kind(), &id.scope(), &id.account(), &expected],
            )
            .await?;
        cas_answer(&rows, expected, Missing::Record)
    }

    async fn list_due(
        &self,
        now: Millis,
        after: Option<&TargetId>,
        limit: usize,
    ) -> Result<Vec<TargetId>> {
        Ok(self
            .page(
                &self.sql.page_due,
                &self.sql.page_due_after,
                Some(now),
                after,
                limit,
            )
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect())
    }

    async fn list_records(&self, after: Option<&TargetId>, limit: usize) -> Result<Vec<Record>> {
        self.page(
            &self.sql.page_all,
            &self.sql.page_all_after,
            None,
            after,
            limit,
        )
        .await
    }

    async fn list_needing_operator(
        &self,
        after: Option<&TargetId>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        self.page(
            &self.sql.page_op,
            &self.sql.page_op_after,
            None,
            after,
            limit,
        )
        .await
    }

    async fn claim(&self, id: &TargetId, holder: &str, now: Millis, ttl_ms: i64) -> Result<Claim> {
        crate::types::check_ttl(ttl_ms, "claim")?;
        let expires_at = now.saturating_add(ttl_ms);
        let rows = self
            .write(
                &self.sql.claim,
                &[
                    &id.kind(),
                    &id.scope(),
                    &id.account(),
                    &holder,
                    &expires_at,
                    &now,
                ],
            )
            .await?;
        let r = rows
            .first()
            .ok_or(StateError::Conflict(ConflictReason::ClaimHeld))?;
        Ok(Claim::granted(
            id.clone(),
            holder.to_owned(),
            codec::u64_from(g(r, 0)?)?,
            now,
            expires_at,
        ))
    }

    async fn renew_claim(&self, claim: &Claim, now: Millis, ttl_ms: i64) -> Result<Claim> {
        crate::types::check_ttl(ttl_ms, "claim")?;
        let expires_at = now.saturating_add(ttl_ms);
        let token = to_sql_i64(claim.token)?;
        let rows = self
            .write(
                &self.sql.renew_claim,
                &[
                    &claim.id.kind(),
                    &claim.id.scope(),
                    &claim.id.account(),
                    &token,
                    &expires_at,
                    &now,
                ],
            )
            .await?;
        if rows.is_empty() {
            return Err(StateError::Conflict(ConflictReason::Fenced));
        }
        let mut c = claim.clone();
        c.renewed_at = now;
        c.expires_at = expires_at;
        Ok(c)
    }

    async fn release_claim(&self, claim: &Claim) -> Result<()> {
        let token = to_sql_i64(claim.token)?;
        self.write(
            &self.sql.release_claim,
            &[
                &claim.id.kind(),
                &claim.id.scope(),
                &claim.id.account(),
                &token,
                &self.channel,
            ],
        )
        .await?;
        // Waiters of this process need not wait for the round trip through the
        // server (the NOTIFY reaches them too; a second wake-up is harmless).
        self.notes
            .announce(&crate::notes::ClaimNotes::key(&claim.id));
        Ok(())
    }

    async fn wait_for_release(&self, id: &TargetId, timeout: Duration) {
        self.notes.wait(id, timeout).await;
    }

    async fn get_claim(&self, id: &TargetId) -> Result<Option<Claim>> {
        let rows = self
            .read(
                &self.sql.get_claim,
                &[&id.kind(), &id.scope(), &id.account()],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(Claim::granted(
                    id.clone(),
                    g(r, 1)?,
                    codec::u64_from(g(r, 0)?)?,
                    g(r, 2)?,
                    g(r, 3)?,
                ))
            })
            .transpose()
    }

    async fn put_set(&self, name: &str, config: &SetConfig, expected_version: u64) -> Result<u64> {
        check_name("set name", name)?;
        config.check()?;
        if expected_version == 0 {
            let rows = self
                .write(
                    &self.sql.insert_set,
                    &[
                        &name,
                        &config.ttl_ms,
                        &config.max_ttl_ms,
                        &config.enforce_check_in,
                    ],
                )
                .await?;
            if rows.is_empty() {
                return Err(StateError::Conflict(ConflictReason::AlreadyExists));
            }
            return Ok(1);
        }
        let expected = to_sql_i64(expected_version)?;
        let rows = self
            .write(
                &self.sql.update_set,
                &[
                    &name,
                    &config.ttl_ms,
                    &config.max_ttl_ms,
                    &config.enforce_check_in,
                    &expected,
                ],
            )
            .await?;
        cas_answer(&rows, expected, Missing::Set)?;
        Ok(expected_version + 1)
    }

    async fn get_set(&self, name: &str) -> Result<SetInfo> {
        let rows = self.read(&self.sql.get_set, &[&name]).await?;
        let r = rows.first().ok_or(StateError::NotFound(Missing::Set))?;
        let mut cfg = SetConfig::new(g(r, 0)?, g(r, 1)?);
        cfg.enforce_check_in = g(r, 2)?;
        Ok(SetInfo::new(
            name.to_owned(),
            cfg,
            codec::u64_from(g(r, 3)?)?,
        ))
    }

    async fn list_sets(&self, after: Option<&str>, limit: usize) -> Result<Vec<SetInfo>> {
        let rows = self
            .read(&self.sql.list_sets, &[&after, &limit_i64(limit)])
            .await?;
        rows.iter()
            .map(|r| {
                let mut cfg = SetConfig::new(g(r, 1)?, g(r, 2)?);
                cfg.enforce_check_in = g(r, 3)?;
                Ok(SetInfo::new(g(r, 0)?, cfg, codec::u64_from(g(r, 4)?)?))
            })
            .collect()
    }

    async fn delete_set(&self, name: &str, expected_version: u64) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        tx.batch_execute(self.sql.begin.trim_start_matches("BEGIN;"))
            .await
            .map_err(pg_err)?;
        let row = tx
            .query_opt(&self.sql.set_lent, &[&name])
            .await
            .map_err(pg_err)?
            .ok_or(StateError::NotFound(Missing::Set))?;
        if codec::u64_from(g(&row, 0)?)? != expected_version {
            return Err(StateError::Conflict(ConflictReason::Version));
        }
        if g::<bool>(&row, 1)? {
            return Err(StateError::Conflict(ConflictReason::Leased));
        }
        tx.execute(&self.sql.delete_members, &[&name])
            .await
            .map_err(pg_err)?;
        tx.execute(&self.sql.delete_set, &[&name])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn add_to_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        let (k, s, a) = id_arrays(accounts);
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        tx.batch_execute(self.sql.begin.trim_start_matches("BEGIN;"))
            .await
            .map_err(pg_err)?;
        if tx
            .query_opt(&format!("{} FOR SHARE", self.sql.set_exists), &[&set])
            .await
            .map_err(pg_err)?
            .is_none()
        {
            return Err(StateError::NotFound(Missing::Set));
        }
        tx.execute(&self.sql.insert_member, &[&k, &s, &a, &set])
            .await
            .map_err(pg_err)?;
        if tx
            .query_opt(&self.sql.member_of, &[&k, &s, &a, &set])
            .await
            .map_err(pg_err)?
            .is_some()
        {
            // Dropping the transaction rolls it back.
            return Err(StateError::Conflict(ConflictReason::OtherSet));
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn remove_from_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        let (k, s, a) = id_arrays(accounts);
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        tx.batch_execute(self.sql.begin.trim_start_matches("BEGIN;"))
            .await
            .map_err(pg_err)?;
        if tx
            .query_opt(&self.sql.set_exists, &[&set])
            .await
            .map_err(pg_err)?
            .is_none()
        {
            return Err(StateError::NotFound(Missing::Set));
        }
        let lent = tx
            .query(&self.sql.members_lent, &[&k, &s, &a, &set])
            .await
            .map_err(pg_err)?;
        if lent.iter().any(|r| r.get::<_, bool>(0)) {
            return Err(StateError::Conflict(ConflictReason::Leased));
        }
        tx.execute(&self.sql.delete_member, &[&k, &s, &a, &set])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn set_members(&self, set: &str) -> Result<Vec<SetMember>> {
        let rows = self.read(&self.sql.set_members, &[&set]).await?;
        if rows.is_empty() && self.read(&self.sql.set_exists, &[&set]).await?.is_empty() {
            return Err(StateError::NotFound(Missing::Set));
        }
        rows.iter().map(member_from_row).collect()
    }

    async fn take_lease(
        &self,
        set: &str,
        borrower: &str,
        now: Millis,
        terms: LeaseTerms,
    ) -> Result<Lease> {
        terms.check()?;
        let expires_at = now.saturating_add(terms.ttl_ms);
        let max_expires_at = now.saturating_add(terms.max_ttl_ms);
        // SKIP LOCKED can come back empty while others' takes are in flight; retry
        // while some account is still free.
        for _ in 0..64 {
            let lease_id = new_uuid();
            let rows = self
                .write(
                    &self.sql.take_lease,
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
            if let Some(r) = rows.first() {
                return Ok(Lease::new(
                    lease_id,
                    set.to_owned(),
                    id_from_row(r, 0)?,
                    borrower.to_owned(),
                    now,
                    expires_at,
                    max_expires_at,
                ));
            }
            let members = self.set_members(set).await?;
            let candidates = members
                .iter()
                .filter(|m| m.state == MemberState::Available)
                .count();
            if candidates == 0 {
                return Err(StateError::NoneAvailable);
            }
            // Available members exist: either locked by a concurrent take (retry)
            // or not lendable (record in doubt): check the records.
            let mut lendable = false;
            for m in members.iter().filter(|m| m.state == MemberState::Available) {
                if let Ok(r) = self.get_record(&m.account).await
                    && r.state == crate::RecordState::Ok
                    && r.pending.is_none()
                {
                    lendable = true;
                    break;
                }
            }
            if !lendable {
                return Err(StateError::NoneAvailable);
            }
            tokio::task::yield_now().await;
        }
        Err(StateError::NoneAvailable)
    }

    async fn get_lease(&self, lease_id: &str) -> Result<Lease> {
        let rows = self.read(&self.sql.get_lease, &[&lease_id]).await?;
        rows.first()
            .map(lease_from_row)
            .ok_or(StateError::NotFound(Missing::Lease))?
    }

    async fn renew_lease(
        &self,
        lease_id: &str,
        borrower: Option<&str>,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<Lease> {
        crate::types::check_ttl(ttl_ms, "lease")?;
        let until = now.saturating_add(ttl_ms);
        let rows = self
            .write(&self.sql.renew_lease, &[&lease_id, &now, &until, &borrower])
            .await?;
        let r = rows.first().ok_or(StateError::NotFound(Missing::Lease))?;
        let mut lease = lease_from_row(r)?;
        if borrower.is_some_and(|b| b != lease.borrower) {
            return Err(StateError::NotBorrower);
        }
        match g::<Option<i64>>(r, 9)? {
            Some(e) => {
                lease.expires_at = e;
                Ok(lease)
            }
            None => Err(StateError::Expired),
        }
    }

    async fn begin_return(
        &self,
        lease_id: &str,
        borrower: Option<&str>,
    ) -> Result<(SetMember, Lease)> {
        let rows = self
            .write(&self.sql.begin_return, &[&lease_id, &borrower])
            .await?;
        let r = rows.first().ok_or(StateError::NotFound(Missing::Lease))?;
        let lease = lease_from_row(r)?;
        let Some(generation) = g::<Option<i64>>(r, 9)? else {
            return Err(StateError::NotBorrower);
        };
        let m = SetMember::new(
            lease.account.clone(),
            MemberState::Returning,
            codec::u64_from(generation)?,
            None,
        );
        Ok((m, lease))
    }

    async fn finish_return(&self, account: &TargetId, generation: u64) -> Result<SetMember> {
        let gen_ = to_sql_i64(generation)?;
        let rows = self
            .write(
                &self.sql.finish_return,
                &[&account.kind(), &account.scope(), &account.account(), &gen_],
            )
            .await?;
        if let Some(r) = rows.first() {
            return member_from_row(r);
        }
        let exists = !self
            .read(
                &self.sql.member,
                &[&account.kind(), &account.scope(), &account.account()],
            )
            .await?
            .is_empty();
        Err(if exists {
            StateError::Conflict(ConflictReason::MemberState)
        } else {
            StateError::NotFound(Missing::Member)
        })
    }

    async fn list_expired_leases(&self, now: Millis, limit: usize) -> Result<Vec<Lease>> {
        let rows = self
            .read(&self.sql.expired_leases, &[&now, &limit_i64(limit)])
            .await?;
        rows.iter().map(lease_from_row).collect()
    }

    async fn put_config(
        &self,
        kind: &str,
        name: &str,
        body: &[u8],
        expected_version: u64,
    ) -> Result<u64> {
        crate::types::check_config_doc(kind, name, body)?;
        if expected_version == 0 {
            let rows = self
                .write(&self.sql.insert_config, &[&kind, &name, &body])
                .await?;
            if rows.is_empty() {
                return Err(StateError::Conflict(ConflictReason::AlreadyExists));
            }
            return Ok(1);
        }
        let expected = to_sql_i64(expected_version)?;
        let rows = self
            .write(&self.sql.update_config, &[&kind, &name, &expected, &body])
            .await?;
        cas_answer(&rows, expected, Missing::Config)?;
        Ok(expected_version + 1)
    }

    async fn get_config(&self, kind: &str, name: &str) -> Result<ConfigDoc> {
        let rows = self.read(&self.sql.get_config, &[&kind, &name]).await?;
        let r = rows.first().ok_or(StateError::NotFound(Missing::Config))?;
        Ok(ConfigDoc::new(
            kind.to_owned(),
            name.to_owned(),
            codec::u64_from(g(r, 0)?)?,
            g(r, 1)?,
        ))
    }

    async fn list_configs(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConfigDoc>> {
        let rows = self
            .read(&self.sql.list_configs, &[&kind, &after, &limit_i64(limit)])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ConfigDoc::new(
                    kind.to_owned(),
                    g(r, 0)?,
                    codec::u64_from(g(r, 1)?)?,
                    g(r, 2)?,
                ))
            })
            .collect()
    }

    async fn delete_config(&self, kind: &str, name: &str, expected_version: u64) -> Result<()> {
        let expected = to_sql_i64(expected_version)?;
        let rows = self
            .write(&self.sql.delete_config, &[&kind, &name, &expected])
            .await?;
        cas_answer(&rows, expected, Missing::Config)
    }
}
