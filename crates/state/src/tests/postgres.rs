use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::worker;
use crate::testing::FakeTarget;
use crate::{
    Key, PgOptions, PgStore, RotationMethod, Rotator, RotatorConfig, Sealer, StateStore, TargetId,
};

struct Pg {
    url: String,
    schema: String,
    store: Arc<dyn StateStore>,
}

async fn fresh() -> Option<Pg> {
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
        let (c, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c
    }

    async fn drop_schema(self) {
        self.raw()
            .await
            .batch_execute(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_conformance() {
    let Some(pg) = fresh().await else { return };
    crate::conformance::run_all(pg.store.clone()).await;
    pg.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_rows_hold_only_ciphertext() {
    let Some(pg) = fresh().await else { return };
    let id = TargetId::new("ad", "example.com", "svc-pg").unwrap();
    let sealer = Arc::new(Sealer::new("k1", Key::from_bytes(&[8; 32]).unwrap()).unwrap());
    let r = Rotator::new(pg.store.clone(), sealer, RotatorConfig::default());
    r.enroll(&id, &SecretString::from("Plaintext-Initial-PG"), None)
        .await
        .unwrap();
    let target = FakeTarget::new(&id, "Plaintext-Initial-PG");
    let src = |_: &TargetId| Ok(SecretString::from("Plaintext-Rotated-PG"));
    r.rotate(&target, &id, &src, RotationMethod::AdminReset)
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
