//! credwheel-sam against the lab's standalone Samba host: one admin reset (the
//! rotation's write) on a fresh connection, one on a reused session, and the
//! Infisical anchor's way, an `rpcclient ... setuserinfo2 USER 23 'PASS'` process
//! against the same host, in the same run. After the criterion groups a ratio table
//! (each mean divided by the rpcclient mean) is printed.
//!
//! Run: `eval "$(bash tools/lab env)"; cargo bench -p credwheel-benches --bench sam`
//! (skipped without the lab). Uses the lab account cwlocal6 and leaves it with its
//! seeded password.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::process::Command;
use std::time::{Duration, Instant};

use credwheel::sam::{SamConfig, SamTarget};
use criterion::Criterion;
use secrecy::{ExposeSecret, SecretString};

const ACCOUNT: &str = "cwlocal6";

/// A current-thread runtime: the SMB connection's tasks run on the bench thread, so a
/// round trip does not also wait for a hop between runtime threads (which, on a
/// loaded 2-core machine, costs milliseconds).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn target(lab: &credwheel_testlab::SamLab, idle: usize) -> SamTarget {
    SamTarget::new(
        SamConfig::builder(lab.host.clone())
            .port(lab.port)
            .admin(lab.admin.clone(), lab.admin_password.clone())
            .max_idle_sessions(idle)
            .build()
            .unwrap(),
    )
}

/// Two passwords to alternate between (the host keeps no history on the lab).
fn passwords() -> [SecretString; 2] {
    [
        SecretString::from("Bench-Pass-A1!x".to_owned()),
        SecretString::from("Bench-Pass-B2!y".to_owned()),
    ]
}

fn rpcclient(lab: &credwheel_testlab::SamLab, pw: &SecretString) {
    let out = Command::new("rpcclient")
        .args(["-p", &lab.port.to_string(), &format!("//{}", lab.host)])
        .arg("-U")
        .arg(format!(
            "{}%{}",
            lab.admin,
            lab.admin_password.expose_secret()
        ))
        .args([
            "--option=client min protocol=SMB3",
            "--option=client smb encrypt=required",
            "-c",
        ])
        .arg(format!(
            "setuserinfo2 {ACCOUNT} 23 '{}'",
            pw.expose_secret()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "rpcclient failed");
}

fn bench(c: &mut Criterion) {
    let Some(lab) = credwheel_testlab::sam() else {
        return;
    };
    let rt = runtime();
    let pws = passwords();
    let mut means = Vec::new();
    let mut g = c.benchmark_group("sam_admin_reset");
    g.sample_size(30).measurement_time(Duration::from_secs(10));

    let mut i = 0usize;
    g.bench_function("fresh_connection", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                i += 1;
                let pw = &pws[i % 2];
                total += rt.block_on(async {
                    let t = target(&lab, 0);
                    let start = Instant::now();
                    t.reset_password(ACCOUNT, pw).await.unwrap();
                    start.elapsed()
                });
            }
            total
        })
    });

    let warm = target(&lab, 1);
    rt.block_on(warm.reset_password(ACCOUNT, &pws[0])).unwrap();
    g.bench_function("reused_session", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                i += 1;
                let pw = &pws[i % 2];
                let start = Instant::now();
                rt.block_on(warm.reset_password(ACCOUNT, pw)).unwrap();
                total += start.elapsed();
            }
            total
        })
    });

    g.bench_function("rpcclient_setuserinfo2_process", |b| {
        b.iter(|| {
            i += 1;
            rpcclient(&lab, &pws[i % 2]);
        })
    });
    g.finish();

    // One more measurement of each, back to back, for the ratio table.
    let n = 40;
    let time = |f: &mut dyn FnMut(usize)| {
        let start = Instant::now();
        for k in 0..n {
            f(k);
        }
        start.elapsed() / u32::try_from(n).unwrap()
    };
    let fresh = time(&mut |k| {
        rt.block_on(async {
            let t = target(&lab, 0);
            t.reset_password(ACCOUNT, &pws[k % 2]).await.unwrap();
        })
    });
    let reused = time(&mut |k| {
        rt.block_on(warm.reset_password(ACCOUNT, &pws[k % 2]))
            .unwrap()
    });
    let anchor = time(&mut |k| rpcclient(&lab, &pws[k % 2]));
    means.push(("fresh connection", fresh));
    means.push(("reused session", reused));
    means.push(("rpcclient setuserinfo2 process", anchor));
    println!("\n| way | mean of {n} | / rpcclient |\n|---|---|---|");
    for (name, m) in &means {
        println!(
            "| {name} | {:.2} ms | {:.3} |",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / anchor.as_secs_f64()
        );
    }
    rt.block_on(warm.reset_password(ACCOUNT, &lab.account_password))
        .unwrap();
    rt.block_on(warm.close());
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
