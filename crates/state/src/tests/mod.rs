//! Unit tests: sealing, the protocol (crash at every await point), the stores,
//! and real processes (cross-process races, SIGKILL, lazy readers).

mod kill;
mod postgres;
mod protocol;
mod seal;
mod sqlite;
mod worker;

use std::sync::Arc;

use crate::{MemoryStore, StateStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conformance() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    crate::conformance::run_all(store).await;
}

/// Opens a non-SQLite backend for a worker process.
async fn open_backend(backend: &str, location: &str) -> Arc<dyn StateStore> {
    assert_eq!(backend, "postgres", "unknown worker backend");
    let (url, schema) = location.split_once('\t').unwrap();
    Arc::new(
        crate::PgStore::connect(url, crate::PgOptions::with_schema(schema))
            .await
            .unwrap(),
    )
}
