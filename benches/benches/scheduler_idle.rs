//! The scheduler with 10,000 rotations, none due: CPU used while idle (getrusage
//! over a few seconds of wall time) and the latency from "one becomes due" to the
//! target being called. Not a criterion loop: both figures are about wall time
//! with the scheduler running in the background.
//!
//! `cargo bench -p credwheel-benches --bench scheduler_idle`

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)] // a bench prints its figures.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use credwheel::state::{
    Key, MemoryStore, Millis, RotationTarget, Sealer, StateStore, TargetError, TargetId,
};
use credwheel::{Config, Credwheel};
use secrecy::SecretString;

const N: usize = 10_000;
const IDLE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct CountingTarget {
    writes: AtomicUsize,
}

#[async_trait]
impl RotationTarget for CountingTarget {
    async fn set_password_as_admin(
        &self,
        _: &TargetId,
        _: &SecretString,
    ) -> Result<(), TargetError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn change_password(
        &self,
        _: &TargetId,
        _: &SecretString,
        _: &SecretString,
    ) -> Result<(), TargetError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn verify(&self, _: &TargetId, _: &SecretString) -> Result<bool, TargetError> {
        Ok(true)
    }
    async fn password_last_set(&self, _: &TargetId) -> Result<Option<Millis>, TargetError> {
        Ok(None)
    }
}

/// User + system CPU time of this process so far, all threads
/// (`CLOCK_PROCESS_CPUTIME_ID`, the figure `getrusage(RUSAGE_SELF)` also gives).
fn cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

fn config() -> Config {
    let mut t = String::from(
        r#"
[key_ring]
active = "k1"
keys = [{ id = "k1", env = "UNUSED" }]
[scheduler]
jitter = 0
heartbeat_interval = "30d"
[connections.windows.h]
address = "127.0.0.10"
admin_user = "admin"
admin_password = { env = "UNUSED" }
"#,
    );
    for i in 0..N {
        write!(
            t,
            "[[rotations]]\nname = \"r{i}\"\ntarget = {{ windows = {{ host = \"h\", user = \"u{i}\" }} }}\n\
             secrets = {{ username = \"U{i}\", password = \"P{i}\" }}\n\
             initial_password = {{ value = \"Initial-Pa55\" }}\n\
             schedule = {{ interval_days = 30 }}\n"
        )
        .unwrap();
    }
    Config::from_toml_str(&t).unwrap()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for kind in ["memory", "sqlite", "postgres"] {
        let store: Arc<dyn StateStore> = match kind {
            "memory" => Arc::new(MemoryStore::new()),
            "sqlite" => Arc::new(
                credwheel::state::SqliteStore::open(
                    dir.path().join("state.db"),
                    credwheel::state::SqliteOptions::default(),
                )
                .unwrap(),
            ),
            _ => {
                // The lab's PostgreSQL, when `tools/lab env` was sourced.
                let Ok(url) = std::env::var("CREDWHEEL_PG_URL") else {
                    println!("--- postgres store: skipped (no lab)");
                    continue;
                };
                let schema = format!("cw_idle_{}", std::process::id());
                Arc::new(
                    rt.block_on(credwheel::state::PgStore::connect(
                        &url,
                        credwheel::state::PgOptions::with_schema(schema),
                    ))
                    .unwrap(),
                )
            }
        };
        println!("--- {kind} store");
        rt.block_on(run(store, kind));
    }
}

async fn run(store: Arc<dyn StateStore>, kind: &str) {
    {
        let t = Instant::now();
        let cfg = config();
        println!(
            "parsed and validated {N} definitions in {:.2} s",
            t.elapsed().as_secs_f64()
        );
        let target = Arc::new(CountingTarget::default());
        let sealer = Arc::new(Sealer::new("k1", Key::generate().unwrap()).unwrap());
        let t = Instant::now();
        let cw = Credwheel::builder(cfg.clone())
            .store(store.clone())
            .sealer(sealer.clone())
            .windows_target("h", target.clone())
            .build()
            .await
            .unwrap();
        // Another instance on the same store (as another process would be): a rotation
        // it makes due is found by the running scheduler's next store query.
        let other = Credwheel::builder(cfg)
            .store(store)
            .sealer(sealer)
            .windows_target("h", target.clone())
            .build()
            .await
            .unwrap();
        println!("built and enrolled in {:.2} s", t.elapsed().as_secs_f64());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let t = Instant::now();
        for _ in 0..20 {
            let due = cw.store().list_due(now, None, 4096).await.unwrap();
            assert!(due.is_empty());
        }
        println!(
            "one list_due over {} records: {:.2} ms",
            2 * N,
            t.elapsed().as_secs_f64() * 1e3 / 20.0
        );
        let handle = cw.start();
        // Let the first ticks settle, then measure.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let cpu0 = cpu_seconds();
        let wall0 = Instant::now();
        tokio::time::sleep(IDLE).await;
        let cpu = cpu_seconds() - cpu0;
        let wall = wall0.elapsed().as_secs_f64();
        println!(
            "idle: {:.3} s of CPU over {:.1} s of wall time = {:.2} % of one core ({} definitions, none due, default tick (750 ms), {kind} store)",
            cpu,
            wall,
            100.0 * cpu / wall,
            N
        );
        assert_eq!(target.writes.load(Ordering::SeqCst), 0, "nothing was due");
        for (how, via) in [
            ("made due by another instance", &other),
            ("made due in-process", &cw),
        ] {
            let mut worst = Duration::ZERO;
            for i in [17usize, 4242, 9999] {
                let before = target.writes.load(Ordering::SeqCst);
                let t = Instant::now();
                via.schedule_now(&format!("r{i}")).await.unwrap();
                while target.writes.load(Ordering::SeqCst) == before {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    assert!(t.elapsed() < Duration::from_secs(10), "not picked up");
                }
                worst = worst.max(t.elapsed());
                // Do not start the next one right after a tick.
                tokio::time::sleep(Duration::from_millis(137)).await;
            }
            println!(
                "pickup latency, {how}: worst of 3 = {:.0} ms (limit 1000 ms)",
                worst.as_secs_f64() * 1e3
            );
        }
        handle.shutdown(Duration::from_secs(5)).await;
    }
}
