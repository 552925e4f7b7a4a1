//! Active Directory (credwheel-ad) against the lab's Samba DC: password sets per
//! second on a pooled connection and on a new connection each time, a full
//! rotation through the protocol, and `creds()` reads per second of a fresh role
//! password. After the criterion groups, the raw sets are compared in the same run
//! with a plain python ldap3 `unicodePwd` replace loop (`benches/ad_python_baseline.py`,
//! needs `pip install ldap3`), in alternating rounds.
//!
//! Run: `eval "$(bash tools/lab env)"; cargo bench -p credwheel-benches --bench ad`
//! (skips without the lab). It sets random passwords on `svc-app6`; the tests
//! reset it before use.
// Benches may unwrap and print: a failing setup is a bench bug, the table is output.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use credwheel::ad::{AccountRef, AdClient, AdTarget, Config, RoleSpec, Roles, RolesConfig};
use credwheel::policy::{AdComplexity, Policy};
use credwheel::state::{
    Key, MemoryStore, RotateOptions, RotationMethod, Rotator, RotatorConfig, Schedule, Sealer,
};
use criterion::{Criterion, SamplingMode};
use secrecy::SecretString;

const ACCOUNT: &str = "svc-app6";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(lab: &credwheel_testlab::AdLab) -> Config {
    Config::builder()
        .url(&lab.url)
        .ca_pem_file(&lab.ca_pem)
        .bind(&lab.admin_dn, lab.admin_password.clone())
        .base_dn(&lab.base_dn)
        .build()
        .unwrap()
}

fn dn(lab: &credwheel_testlab::AdLab) -> String {
    format!("CN={ACCOUNT},{}", lab.service_ou)
}

fn policy() -> Policy {
    AdComplexity::new(20).build().unwrap()
}

/// `n` password sets on one pooled client; wall time.
async fn pooled(client: &AdClient, account: &AccountRef, p: &Policy, n: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        client.reset_password(account, &p.generate()).await.unwrap();
    }
    t.elapsed()
}

/// `n` times: a new client (new connection, TLS, bind), one password set.
async fn fresh(c: &Config, account: &AccountRef, p: &Policy, n: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        let client = AdClient::new(c.clone()).unwrap();
        client.reset_password(account, &p.generate()).await.unwrap();
    }
    t.elapsed()
}

/// Seconds per operation of the python baseline (its own timer).
fn python(mode: &str, n: u64, dn: &str) -> Option<f64> {
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/ad_python_baseline.py"
        ))
        .args([mode, &n.to_string(), dn])
        .output()
        .ok()?;
    if !out.status.success() {
        println!(
            "python baseline failed ({}); is `pip install ldap3` done?",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(v["seconds"].as_f64()? / n as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let rt = runtime();
    let cfg = config(&lab);
    let account = AccountRef::dn(&dn(&lab)).unwrap();
    let p = policy();
    let client = AdClient::new(cfg.clone()).unwrap();
    rt.block_on(client.check_bind()).unwrap();

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("ad");
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(8));
        g.bench_function("set_password/pooled", |b| {
            b.to_async(&rt)
                .iter_custom(|n| pooled(&client, &account, &p, n));
        });
        g.bench_function("set_password/new_connection", |b| {
            b.to_async(&rt)
                .iter_custom(|n| fresh(&cfg, &account, &p, n));
        });
        // The whole protocol: pending write, set, verify bind, pwdLastSet read, commit.
        let target = AdTarget::new(client.clone());
        let id = target.id(&account).unwrap();
        let rotator = Rotator::new(
            Arc::new(MemoryStore::new()),
            Arc::new(Sealer::new("bench", Key::generate().unwrap()).unwrap()),
            RotatorConfig::with_holder("bench"),
        );
        rt.block_on(rotator.enroll(&id, &SecretString::from("unknown"), Schedule::None))
            .unwrap();
        g.bench_function("rotation/protocol_pooled", |b| {
            b.to_async(&rt).iter_custom(|n| {
                let (rotator, target, id, p) = (&rotator, &target, &id, &p);
                async move {
                    let t = Instant::now();
                    for _ in 0..n {
                        rotator
                            .rotate(
                                target,
                                id,
                                &|_: &credwheel::state::TargetId| Ok(p.generate()),
                                RotateOptions::new(RotationMethod::AdminReset),
                            )
                            .await
                            .unwrap();
                    }
                    t.elapsed()
                }
            });
        });
        g.finish();
    }
    {
        // creds() of a role whose password is fresh: no directory write; AD is
        // asked for pwdLastSet at most every 5 s (the default drift check).
        let roles = rt.block_on(async {
            let rotator = Arc::new(Rotator::new(
                Arc::new(MemoryStore::new()),
                Arc::new(Sealer::new("bench", Key::generate().unwrap()).unwrap()),
                RotatorConfig::with_holder("bench-roles"),
            ));
            let roles = Roles::open(
                Arc::new(AdTarget::new(client.clone())),
                rotator,
                RolesConfig::default(),
            )
            .await
            .unwrap();
            roles
                .create_role(RoleSpec::new("bench", AccountRef::sam(ACCOUNT), "10h").unwrap())
                .await
                .unwrap();
            roles
        });
        let mut g = c.benchmark_group("ad_creds");
        g.throughput(criterion::Throughput::Elements(1));
        g.bench_function("creds/fresh", |b| {
            b.to_async(&rt)
                .iter(|| async { roles.creds("bench").await.unwrap() });
        });
        g.finish();
    }

    // Same-run comparison with python ldap3, in alternating rounds.
    let target_dn = dn(&lab);
    let (mut pooled_ratio, mut new_ratio) = (Vec::new(), Vec::new());
    let (mut ours_p, mut py_p, mut ours_n, mut py_n) = (vec![], vec![], vec![], vec![]);
    for _ in 0..5 {
        let o = rt.block_on(pooled(&client, &account, &p, 12)).as_secs_f64() / 12.0;
        let Some(py) = python("pooled", 12, &target_dn) else {
            return;
        };
        pooled_ratio.push(o / py);
        ours_p.push(o);
        py_p.push(py);
        let o = rt.block_on(fresh(&cfg, &account, &p, 6)).as_secs_f64() / 6.0;
        let Some(py) = python("new", 6, &target_dn) else {
            return;
        };
        new_ratio.push(o / py);
        ours_n.push(o);
        py_n.push(py);
    }
    println!(
        "\nAD password sets (unicodePwd replace), ms per set, median of 5 alternating rounds:"
    );
    println!(
        "{:<16} {:>10} {:>10} {:>22}",
        "connection", "credwheel", "python", "ratio (target)"
    );
    println!(
        "{:<16} {:>10.1} {:>10.1} {:>12.3}x (<= 1.05)",
        "pooled",
        median(ours_p) * 1e3,
        median(py_p) * 1e3,
        median(pooled_ratio)
    );
    println!(
        "{:<16} {:>10.1} {:>10.1} {:>12.3}x (<= 1.00)",
        "new each time",
        median(ours_n) * 1e3,
        median(py_n) * 1e3,
        median(new_ratio)
    );
}
