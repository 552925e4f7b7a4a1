//! Rotation state stores (credwheel-state): compare-and-swap updates/s, lease
//! cycles/s (take, begin_return, finish_return) for each store, one caller and 32
//! concurrent callers, with the durable-commit floor of each durable backend
//! measured in the same run, and `Rotator::credentials()` reads/s on one core.
//!
//! Run: `eval "$(bash tools/lab env)"; cargo bench -p credwheel-benches --bench state`
//! (without the lab's PostgreSQL, the PostgreSQL groups are skipped).
//!
//! The floor is a loop of single-row durable commits through the same engine with the
//! same settings: SQLite (WAL, `synchronous=FULL`) `UPDATE t SET v=v+1`, one
//! transaction each; PostgreSQL the same statement in autocommit on one connection
//! with `synchronous_commit=on`. After the criterion groups, a ratio table (each
//! figure divided by its floor, measured back to back) is printed.
// Benches may unwrap and print: a failing setup is a bench bug, the table is output.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use credwheel::state::{
    Key, LeaseTerms, MemoryStore, PgOptions, PgStore, Record, Rotator, RotatorConfig, Schedule,
    Sealer, SetConfig, SqliteOptions, SqliteStore, StateStore, TargetId,
};
use criterion::{Criterion, Throughput};
use secrecy::ExposeSecret;

const CONCURRENT: usize = 32;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn uid() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// One store under test with its records and set.
struct Subject {
    name: &'static str,
    store: Arc<dyn StateStore>,
    records: Vec<TargetId>,
    set: String,
    rotator: Arc<Rotator>,
    cred: TargetId,
}

impl Subject {
    async fn new(name: &'static str, store: Arc<dyn StateStore>) -> Self {
        let tag = uid();
        let mut records = Vec::new();
        for i in 0..CONCURRENT {
            let id = TargetId::new("bench", format!("s{tag}"), format!("r{i}")).unwrap();
            let mut r = Record::new(id.clone());
            r.last_error = Some("x".into());
            store.create_record(&r).await.unwrap();
            records.push(id);
        }
        let set = format!("set{tag}");
        let accounts: Vec<_> = (0..2 * CONCURRENT)
            .map(|i| TargetId::new("bench", format!("s{tag}"), format!("a{i}")).unwrap())
            .collect();
        store
            .put_set(&set, &SetConfig::new(60_000, 60_000), 0)
            .await
            .unwrap();
        for a in &accounts {
            store.create_record(&Record::new(a.clone())).await.unwrap();
        }
        store.add_to_set(&set, &accounts).await.unwrap();
        for m in store.set_members(&set).await.unwrap() {
            store.finish_return(&m.account, m.generation).await.unwrap();
        }
        let sealer = Arc::new(Sealer::new("k", Key::from_bytes(&[7; 32]).unwrap()).unwrap());
        let rotator = Arc::new(Rotator::new(
            store.clone(),
            sealer,
            RotatorConfig::with_holder("bench"),
        ));
        let cred = TargetId::new("bench", format!("s{tag}"), "cred").unwrap();
        rotator
            .enroll(
                &cred,
                &secrecy::SecretString::from("Bench-Password-123456"),
                Schedule::Ttl { ttl_ms: 86_400_000 },
            )
            .await
            .unwrap();
        Self {
            name,
            store,
            records,
            set,
            rotator,
            cred,
        }
    }

    /// `n` `credentials()` reads of a fresh password by one caller.
    async fn credentials(&self, n: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            let c = self.rotator.credentials(&self.cred).await.unwrap();
            std::hint::black_box(c.version());
        }
        start.elapsed()
    }

    /// `n` CAS updates spread over `callers` concurrent callers (own record each).
    async fn cas(&self, n: u64, callers: usize) -> Duration {
        let per = n.div_ceil(callers as u64);
        let start = Instant::now();
        let mut hs = Vec::new();
        for id in self.records.iter().take(callers) {
            let (store, id) = (self.store.clone(), id.clone());
            hs.push(tokio::spawn(async move {
                let mut rec = store.get_record(&id).await.unwrap();
                let t0 = Instant::now();
                for _ in 0..per {
                    rec.version = store
                        .compare_and_swap(&rec, rec.version, None)
                        .await
                        .unwrap();
                }
                t0.elapsed()
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        start.elapsed()
    }

    /// `n` lease cycles (take, begin_return, finish_return) spread over `callers` concurrent callers.
    async fn leases(&self, n: u64, callers: usize) -> Duration {
        let per = n.div_ceil(callers as u64);
        let terms = LeaseTerms::new(60_000, 60_000);
        let start = Instant::now();
        let mut hs = Vec::new();
        for c in 0..callers {
            let (store, set) = (self.store.clone(), self.set.clone());
            hs.push(tokio::spawn(async move {
                let who = format!("b{c}");
                for _ in 0..per {
                    let l = store.take_lease(&set, &who, 0, terms).await.unwrap();
                    let (m, _) = store.begin_return(&l.lease_id, Some(&who)).await.unwrap();
                    store.finish_return(&m.account, m.generation).await.unwrap();
                }
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        start.elapsed()
    }
}

/// The durable-commit floor of a backend: `n` single-row durable commits.
enum Floor {
    Sqlite(std::sync::Mutex<rusqlite::Connection>),
    Pg(tokio_postgres::Client, String),
}

impl Floor {
    fn sqlite(path: &std::path::Path) -> Self {
        let c = rusqlite::Connection::open(path).unwrap();
        let _: String = c
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        c.execute_batch(
            "PRAGMA synchronous=FULL; CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER); \
             INSERT INTO t VALUES (1, 0);",
        )
        .unwrap();
        Self::Sqlite(std::sync::Mutex::new(c))
    }

    async fn pg(url: &str) -> Self {
        let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let schema = format!("cwbench_floor_{}", uid());
        c.batch_execute(&format!(
            "SET synchronous_commit=on; CREATE SCHEMA {schema}; \
             CREATE TABLE {schema}.t (id INT PRIMARY KEY, v BIGINT); \
             INSERT INTO {schema}.t VALUES (1, 0);"
        ))
        .await
        .unwrap();
        Self::Pg(c, schema)
    }

    async fn run(&self, n: u64) -> Duration {
        let start = Instant::now();
        match self {
            Self::Sqlite(c) => {
                let c = c.lock().unwrap();
                let mut st = c.prepare("UPDATE t SET v=v+1 WHERE id=1").unwrap();
                for _ in 0..n {
                    st.execute([]).unwrap();
                }
            }
            Self::Pg(c, schema) => {
                let st = c
                    .prepare(&format!("UPDATE {schema}.t SET v=v+1 WHERE id=1"))
                    .await
                    .unwrap();
                for _ in 0..n {
                    c.execute(&st, &[]).await.unwrap();
                }
            }
        }
        start.elapsed()
    }
}

fn one_core() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn bench_subject(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    s: &Subject,
    floor: Option<&Floor>,
) {
    let mut g = c.benchmark_group(format!("state/{}", s.name));
    g.throughput(Throughput::Elements(1));
    let single = one_core();
    g.bench_function("credentials_1core", |b| {
        b.to_async(&single).iter_custom(|n| s.credentials(n));
    });
    if let Some(f) = floor {
        g.bench_function("floor_durable_commit", |b| {
            b.to_async(rt).iter_custom(|n| f.run(n));
        });
    }
    for callers in [1, CONCURRENT] {
        g.bench_function(format!("cas_{callers}"), |b| {
            b.to_async(rt).iter_custom(|n| s.cas(n, callers));
        });
        g.bench_function(format!("lease_pair_{callers}"), |b| {
            b.to_async(rt).iter_custom(|n| s.leases(n, callers));
        });
    }
    g.finish();
}

/// Operations per second of `f` over about `secs` seconds.
fn rate<F, Fut>(rt: &tokio::runtime::Runtime, secs: f64, f: &F) -> f64
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    // Calibrate with a short run, then measure.
    let probe = 32;
    let d = rt.block_on(f(probe)).as_secs_f64().max(1e-9);
    let n = ((secs * probe as f64 / d) as u64).clamp(probe, 50_000_000);
    let d = rt.block_on(f(n)).as_secs_f64();
    n as f64 / d
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Disk latency here drifts by an order of magnitude within minutes (other jobs
/// share the disk), so the floor and the subject are measured in alternating short
/// slices and the median of the per-round ratios is reported.
fn paired<F, Fut>(rt: &tokio::runtime::Runtime, floor: Option<&Floor>, f: F) -> (f64, Option<f64>)
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    const ROUNDS: usize = 7;
    let Some(floor) = floor else {
        return (rate(rt, 1.0, &f), None);
    };
    let (mut rates, mut ratios) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let fl = rate(rt, 0.25, &|n| floor.run(n));
        let r = rate(rt, 0.25, &f);
        rates.push(r);
        ratios.push(r / fl);
    }
    (median(rates), Some(median(ratios)))
}

fn ratio_table(rt: &tokio::runtime::Runtime, subjects: &[(Subject, Option<Floor>)]) {
    println!("\nstate stores: ops/s, and in parentheses the median ratio to the durable-commit");
    println!("floor measured in alternating slices of the same run");
    println!(
        "{:<8} {:>10} {:>18} {:>18} {:>18} {:>18} {:>16}",
        "store",
        "floor/s",
        "cas_1/s",
        "cas_32/s",
        "lease_1 cycles/s",
        "lease_32 cycles/s",
        "credentials/s"
    );
    let single = one_core();
    for (s, floor) in subjects {
        let fl = floor
            .as_ref()
            .map(|f| median((0..3).map(|_| rate(rt, 0.3, &|n| f.run(n))).collect()));
        let cell = |(r, x): (f64, Option<f64>)| match x {
            Some(x) => format!("{r:.0} ({x:.2}x)"),
            None => format!("{r:.0}"),
        };
        let c1 = cell(paired(rt, floor.as_ref(), |n| s.cas(n, 1)));
        let c32 = cell(paired(rt, floor.as_ref(), |n| s.cas(n, CONCURRENT)));
        let l1 = cell(paired(rt, floor.as_ref(), |n| s.leases(n, 1)));
        let l32 = cell(paired(rt, floor.as_ref(), |n| s.leases(n, CONCURRENT)));
        let cr = rate(&single, 1.0, &|n| s.credentials(n));
        println!(
            "{:<8} {:>10} {:>18} {:>18} {:>18} {:>18} {:>16.0}",
            s.name,
            fl.map_or("-".to_owned(), |f| format!("{f:.0}")),
            c1,
            c32,
            l1,
            l32,
            cr
        );
    }
    println!("(a lease cycle is three durable operations: take, begin_return, finish_return;");
    println!(" credentials/s: one caller on a current-thread runtime, i.e. one core)");
}

fn main() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut subjects: Vec<(Subject, Option<Floor>)> = Vec::new();
    // CREDWHEEL_BENCH_STORES=sqlite,postgres limits the stores measured.
    let wanted = |name: &str| {
        std::env::var("CREDWHEEL_BENCH_STORES")
            .map_or(true, |v| v.split(',').any(|w| w.trim() == name))
    };
    rt.block_on(async {
        if wanted("memory") {
            subjects.push((
                Subject::new("memory", Arc::new(MemoryStore::new())).await,
                None,
            ));
        }
        if wanted("sqlite") {
            let sqlite =
                SqliteStore::open(dir.path().join("state.db"), SqliteOptions::default()).unwrap();
            subjects.push((
                Subject::new("sqlite", Arc::new(sqlite)).await,
                Some(Floor::sqlite(&dir.path().join("floor.db"))),
            ));
        }
    });
    let pg_url = std::env::var("CREDWHEEL_PG_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| credwheel_testlab::pg().map(|l| l.url.expose_secret().to_owned()))
        .filter(|_| wanted("postgres"));
    let pg_schema = format!("cwbench_{}", uid());
    if let Some(url) = &pg_url {
        rt.block_on(async {
            let store = PgStore::connect(url, PgOptions::with_schema(&pg_schema))
                .await
                .unwrap();
            subjects.push((
                Subject::new("postgres", Arc::new(store)).await,
                Some(Floor::pg(url).await),
            ));
        });
    }

    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    for (s, f) in &subjects {
        bench_subject(&mut c, &rt, s, f.as_ref());
    }
    c.final_summary();

    // The ratio table only under `cargo bench` (not `cargo test --benches`).
    if std::env::args().any(|a| a == "--bench") {
        ratio_table(&rt, &subjects);
    }

    if let Some(url) = &pg_url {
        rt.block_on(async {
            let (cl, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let floors: Vec<String> = subjects
                .iter()
                .filter_map(|(_, f)| match f {
                    Some(Floor::Pg(_, s)) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            for s in floors.iter().chain(std::iter::once(&pg_schema)) {
                cl.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"))
                    .await
                    .unwrap();
            }
        });
    }
}
