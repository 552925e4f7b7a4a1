use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::worker;
use crate::testing::FakeTarget;
use crate::{
    Key, MemberState, PgOptions, PgStore, RecordState, RotateOptions, RotationMethod, Rotator,
    RotatorConfig, Schedule, Sealer, StateStore, TargetId,
};

pub(super) struct Pg {
    pub(super) url: String,
    pub(super) schema: String,
    pub(super) store: Arc<dyn StateStore>,
}

/// A store in a fresh schema of the lab's PostgreSQL, or `None` without the lab
/// (with `CI` set, a missing lab fails).
pub(super) async fn fresh() -> Option<Pg> {
    let lab = credwheel_testlab::pg()?;
    let url = lab.url.expose_secret().to_owned();
    let schema = format!("cwt_{}", uuid::Uuid::new_v4().simple());
    let store = PgStore::connect(&url, PgOptions::with_schema(&schema))
        .await
        .unwrap();
    Some(Pg {
        url,
        schema,
        store: Arc::new(store),
    })
}

impl Pg {
    async fn raw(&self) -> tokio_postgres::Client {
        raw(&self.url).await
    }

    pub(super) async fn drop_schema(self) {
        self.raw()
            .await
            .batch_execute(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema))
            .await
            .unwrap();
    }
}

async fn raw(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_conformance() {
    let Some(pg) = fresh().await else { return };
    crate::conformance::run_all(pg.store.clone()).await;
    pg.drop_schema().await;
}

/// `list_due` can be answered from the `due_at` index (migration V3), and the
/// generated column follows writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_list_due_can_use_the_due_at_index() {
    let Some(pg) = fresh().await else { return };
    let raw = pg.raw().await;
    // A scheduler's table: many records, none due for a long time.
    let plan = raw
        .simple_query(&format!(
            "SET search_path TO \"{}\"; \
             INSERT INTO cw_records (kind, scope, account, version, next_due) \
             SELECT 'bulk', 's', g::text, 1, 9000000000000000 FROM generate_series(1, 5000) g; \
             ANALYZE cw_records; \
             EXPLAIN SELECT kind FROM cw_records WHERE ({}) \
             ORDER BY kind, scope, account LIMIT 10",
            pg.schema,
            crate::postgres::DUE_FOR_TESTS.replace("$1", "0")
        ))
        .await
        .unwrap();
    let text: Vec<String> = plan
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect();
    assert!(
        text.iter().any(|l| l.contains("cw_records_due_at")),
        "plan: {text:?}"
    );
    let id = TargetId::new("sam", "h", "u").unwrap();
    let mut r = crate::Record::new(id.clone());
    r.next_due = Some(100);
    pg.store.create_record(&r).await.unwrap();
    assert!(pg.store.list_due(99, None, 10).await.unwrap().is_empty());
    assert_eq!(
        pg.store.list_due(100, None, 10).await.unwrap(),
        vec![id.clone()]
    );
    let mut r = pg.store.get_record(&id).await.unwrap();
    r.retry_at = Some(200);
    pg.store
        .compare_and_swap(&r, r.version, None)
        .await
        .unwrap();
    assert!(pg.store.list_due(150, None, 10).await.unwrap().is_empty());
    assert_eq!(pg.store.list_due(200, None, 10).await.unwrap(), vec![id]);
    pg.drop_schema().await;
}

/// Against the lab's TLS-only cluster: TLS with the server's certificate checked
/// against the CA given in the options (the system roots do not know the lab CA),
/// for `sslmode=require` and the default `prefer`; an untrusted certificate and
/// clear text are refused with an error that says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_tls_verifies_the_server_certificate() {
    let Some(lab) = credwheel_testlab::pg_tls() else {
        return;
    };
    let url = lab.url.expose_secret().to_owned();
    let ca = std::fs::read(&lab.ca_pem).unwrap();
    let schema = format!("cwt_{}", uuid::Uuid::new_v4().simple());
    let opts = |ca: Option<&Vec<u8>>| {
        let mut o = PgOptions::with_schema(&schema);
        o.ca_pem = ca.cloned();
        o
    };
    // Untrusted certificate: refused, and the error names the cause.
    let err = PgStore::connect(&format!("{url}?sslmode=require"), opts(None))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, crate::StateError::Unavailable(_)), "{err:?}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(!text.contains("pg-lab-pass"), "{text}");
    // Clear text: the server refuses it.
    assert!(
        PgStore::connect(&format!("{url}?sslmode=disable"), opts(Some(&ca)))
            .await
            .is_err()
    );
    // The lab CA: TLS, verified, works (for require, prefer, and by host name).
    for u in [
        format!("{url}?sslmode=require"),
        url.clone(),
        url.replace("127.0.0.1", "localhost"),
    ] {
        let store = PgStore::connect(&u, opts(Some(&ca))).await.unwrap();
        let id = crate::conformance::unique_id("tls");
        store
            .create_record(&crate::Record::new(id.clone()))
            .await
            .unwrap();
        assert_eq!(store.get_record(&id).await.unwrap().version, 1);
    }
}

/// A claim released by one store instance (another process, as far as PostgreSQL
/// knows) wakes a caller waiting in another at once, through `NOTIFY`: the wait
/// ends long before its timeout, and a release of another account does not end it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_release_wakes_waiters_in_other_processes() {
    let Some(pg) = fresh().await else { return };
    let other: Arc<dyn StateStore> = Arc::new(
        PgStore::connect(&pg.url, PgOptions::with_schema(&pg.schema))
            .await
            .unwrap(),
    );
    let id = TargetId::new("ad", "notify", "svc-a").unwrap();
    let unrelated = TargetId::new("ad", "notify", "svc-b").unwrap();
    let held = pg.store.claim(&id, "holder", 1, 600_000).await.unwrap();
    let held_b = pg
        .store
        .claim(&unrelated, "holder", 1, 600_000)
        .await
        .unwrap();
    // Give the other instance's LISTEN connection time to start.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let waiter = {
        let (other, id) = (other.clone(), id.clone());
        tokio::spawn(async move {
            let t = std::time::Instant::now();
            other
                .wait_for_release(&id, std::time::Duration::from_secs(60))
                .await;
            t.elapsed()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    pg.store.release_claim(&held_b).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "another account's release is not ours"
    );
    pg.store.release_claim(&held).await.unwrap();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(20), waiter)
        .await
        .expect("woken by NOTIFY, not by the 60 s timeout")
        .unwrap();
    assert!(waited < std::time::Duration::from_secs(20));
    // The waiter can take the claim now.
    other.claim(&id, "next", 2, 600_000).await.unwrap();
    pg.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_rows_hold_only_ciphertext() {
    let Some(pg) = fresh().await else { return };
    let id = TargetId::new("ad", "example.com", "svc-pg").unwrap();
    let sealer = Arc::new(Sealer::new("k1", Key::from_bytes(&[8; 32]).unwrap()).unwrap());
    let r = Rotator::new(pg.store.clone(), sealer, RotatorConfig::default());
    r.enroll(
        &id,
        &SecretString::from("Plaintext-Initial-PG"),
        Schedule::None,
    )
    .await
    .unwrap();
    let target = FakeTarget::new(&id, "Plaintext-Initial-PG");
    let src = |_: &TargetId| Ok(SecretString::from("Plaintext-Rotated-PG"));
    r.rotate(
        &target,
        &id,
        &src,
        RotateOptions::new(RotationMethod::AdminReset),
    )
    .await
    .unwrap();
    let (cur, _) = r.current_password(&id).await.unwrap();
    assert!(target.accepts(&cur));
    // A second store instance (another "process") sees the same state.
    let other = PgStore::connect(&pg.url, PgOptions::with_schema(&pg.schema))
        .await
        .unwrap();
    assert_eq!(other.get_record(&id).await.unwrap().version, 3);
    let raw = pg.raw().await;
    let rows = raw
        .query(
            &format!(
                "SELECT cur, last, pending, last_error FROM \"{}\".cw_records",
                pg.schema
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let cur_b: Vec<u8> = rows[0].get(0);
    let last_b: Vec<u8> = rows[0].get(1);
    let pend: Option<Vec<u8>> = rows[0].get(2);
    assert!(pend.is_none());
    for b in [&cur_b, &last_b] {
        assert!(!b.windows(9).any(|w| w == b"Plaintext"));
    }
    pg.drop_schema().await;
}

#[tokio::test]
async fn pg_bad_input_and_unreachable_server() {
    assert!(matches!(
        PgStore::connect(
            "postgres://u@127.0.0.1:1/db",
            PgOptions::with_schema("Bad-Name")
        )
        .await,
        Err(crate::StateError::Invalid(_))
    ));
    // Port 1 on loopback: nothing listens; a typed error, and no password in it.
    let err = PgStore::connect(
        "postgres://u:hunter2secret@127.0.0.1:1/db",
        PgOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, crate::StateError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2secret"));
}

/// `sslmode` decides: `require` against a server without TLS fails (no silent
/// clear text), `disable` connects in clear; a bad CA is refused up front.
#[tokio::test]
async fn pg_tls_follows_sslmode() {
    let Some(lab) = credwheel_testlab::pg() else {
        return;
    };
    let url = lab.url.expose_secret().to_owned();
    let sep = if url.contains('?') { '&' } else { '?' };
    let schema = format!("cwt_{}", uuid::Uuid::new_v4().simple());
    let err = PgStore::connect(
        &format!("{url}{sep}sslmode=require"),
        PgOptions::with_schema(&schema),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, crate::StateError::Unavailable(_)), "{err:?}");
    let store = PgStore::connect(
        &format!("{url}{sep}sslmode=disable"),
        PgOptions::with_schema(&schema),
    )
    .await
    .unwrap();
    assert!(store.list_sets(None, 1).await.unwrap().is_empty());
    let mut opts = PgOptions::with_schema(&schema);
    opts.ca_pem = Some(b"not a certificate".to_vec());
    assert!(matches!(
        PgStore::connect(&format!("{url}{sep}sslmode=require"), opts).await,
        Err(crate::StateError::Invalid(_))
    ));
    raw(&url)
        .await
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cross_process_races() {
    let Some(pg) = fresh().await else { return };
    let spec = worker::prepare(&pg.store).await;
    worker::run_children(
        "postgres",
        &format!("{}\t{}", pg.url, pg.schema),
        &spec,
        &pg.store,
    )
    .await;
    pg.drop_schema().await;
}

/// 200 concurrent lazy readers of an expired password: one target write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_lazy_readers() {
    let Some(pg) = fresh().await else { return };
    super::protocol::lazy_readers_on(pg.store.clone(), 200).await;
    pg.drop_schema().await;
}

/// Crash at every await point on PostgreSQL; a second store handle recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_crash_matrix() {
    let Some(pg) = fresh().await else { return };
    let (url, schema) = (pg.url.clone(), pg.schema.clone());
    let second: Arc<dyn StateStore> = Arc::new(
        PgStore::connect(&url, PgOptions::with_schema(&schema))
            .await
            .unwrap(),
    );
    let base = pg.store.clone();
    super::protocol::crash_matrix_on(move || second.clone(), move || base.clone()).await;
    pg.drop_schema().await;
}

/// A schema created by the previous code (no migration history) upgrades in
/// place and keeps its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_upgrades_a_store_from_before_migrations() {
    let Some(lab) = credwheel_testlab::pg() else {
        return;
    };
    let url = lab.url.expose_secret().to_owned();
    let schema = format!("cwt_{}", uuid::Uuid::new_v4().simple());
    let c = raw(&url).await;
    c.batch_execute(&format!(
        "CREATE SCHEMA \"{schema}\"; SET search_path TO \"{schema}\"; {OLD_SCHEMA}
         INSERT INTO cw_records VALUES ('ad','example.com','svc-a',7,'\\x0102','\\x0304',
            NULL,NULL,NULL,1700000000000,1800000000000,'old error');
         INSERT INTO cw_records VALUES ('ad','example.com','svc-b',3,'\\x05',NULL,
            'attempt-1','\\x06',1700000000500,NULL,NULL,NULL);
         INSERT INTO cw_claims VALUES ('ad','example.com','svc-b',4,'dead',1700000100000);
         INSERT INTO cw_sets VALUES ('pool');
         INSERT INTO cw_members VALUES ('sam','h','u1','pool','lease-1','bob',1,2,3);
         INSERT INTO cw_members VALUES ('sam','h','u2','pool',NULL,NULL,NULL,NULL,NULL);"
    ))
    .await
    .unwrap();
    let store: Arc<dyn StateStore> = Arc::new(
        PgStore::connect(&url, PgOptions::with_schema(&schema))
            .await
            .unwrap(),
    );
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
    let b_id = TargetId::new("ad", "example.com", "svc-b").unwrap();
    let b = store.get_record(&b_id).await.unwrap();
    assert_eq!(b.state, RecordState::InDoubt);
    assert_eq!(b.pending.unwrap().deadline, 1_700_000_600_500);
    assert_eq!(store.get_claim(&b_id).await.unwrap().unwrap().token, 4);
    let members = store.set_members("pool").await.unwrap();
    assert_eq!(members[0].state, MemberState::Lent);
    assert_eq!(members[1].state, MemberState::Available);
    assert_eq!(store.get_set("pool").await.unwrap().version, 1);
    // Connecting again is a no-op; the migrated schema passes the suite.
    let again: Arc<dyn StateStore> = Arc::new(
        PgStore::connect(&url, PgOptions::with_schema(&schema))
            .await
            .unwrap(),
    );
    crate::conformance::run_all(again).await;
    c.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

/// The schema the store created before versioned migrations existed.
const OLD_SCHEMA: &str = "
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

/// Writes carry the statement timeout in their transaction: a write blocked by
/// another session's row lock fails after it instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_statement_timeout_bounds_a_blocked_write() {
    let Some(pg) = fresh().await else { return };
    let mut opts = PgOptions::with_schema(&pg.schema);
    opts.statement_timeout = std::time::Duration::from_millis(300);
    let store = PgStore::connect(&pg.url, opts).await.unwrap();
    let id = crate::conformance::unique_id("ad");
    store
        .create_record(&crate::Record::new(id.clone()))
        .await
        .unwrap();
    let raw = pg.raw().await;
    raw.batch_execute(&format!(
        "BEGIN; SELECT 1 FROM \"{}\".cw_records WHERE account = '{}' FOR UPDATE",
        pg.schema,
        id.account()
    ))
    .await
    .unwrap();
    let rec = store.get_record(&id).await.unwrap();
    let t = std::time::Instant::now();
    let err = store.compare_and_swap(&rec, 1, None).await.unwrap_err();
    assert!(
        matches!(&err, crate::StateError::Unavailable(m) if m.contains("57014")),
        "{err:?}"
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    raw.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(store.compare_and_swap(&rec, 1, None).await.unwrap(), 2);
    drop(raw);
    pg.drop_schema().await;
}
