//! Password generation throughput (credwheel-policy).
//!
//! Run: `cargo bench -p credwheel-benches --bench policy`
//!
//! Groups: Vault's default policy (length 20; lower, upper, digit, `-` at least one
//! each), a 64-character four-class policy, and a restrictive one (length 8, at least
//! two of each of four classes). Each group also measures a naive baseline in the
//! same run: Vault's algorithm (rejection of whole candidates, a fresh `Vec<char>` per
//! candidate, one `random_range` per character, rules checked by scanning charsets).
//!
//! A second set of groups, `policy_cpu/...`, measures `generate_into` and the naive
//! baseline by the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) instead of wall
//! time, so that other processes on a loaded machine do not count against it.
// Benches may unwrap: a policy that fails to build is a bench bug.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use credwheel::policy::{
    AdComplexity, DIGITS, LOWERCASE, PasswordBuffer, Policy, UPPERCASE, VAULT_SYMBOLS,
};
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::Rng;

/// Vault-style naive rejection: the baseline every figure is compared with.
fn naive_rejection(
    rng: &mut impl Rng,
    alphabet: &[char],
    rules: &[(Vec<char>, usize)],
    len: usize,
) -> String {
    loop {
        let candidate: Vec<char> = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        if rules
            .iter()
            .all(|(set, min)| candidate.iter().filter(|c| set.contains(c)).count() >= *min)
        {
            return candidate.into_iter().collect();
        }
    }
}

fn bench_policy(c: &mut Criterion, name: &str, policy: &Policy, baseline: bool) {
    let mut group = c.benchmark_group(format!("policy/{name}"));
    group.throughput(Throughput::Elements(1));
    let mut rng = rand::rng();
    let mut buf = PasswordBuffer::new();
    group.bench_function("generate_into", |b| {
        b.iter(|| {
            policy.generate_into(&mut rng, &mut buf);
            black_box(buf.expose_secret().len());
        })
    });
    group.bench_function("generate", |b| {
        b.iter(|| black_box(policy.generate_with(&mut rng)))
    });
    if !baseline {
        group.finish();
        return;
    }
    let alphabet = policy.alphabet().to_vec();
    let rules: Vec<(Vec<char>, usize)> = policy
        .rules()
        .iter()
        .map(|r| {
            let class = &r.classes()[0];
            (class.charset().chars().collect(), class.min_chars())
        })
        .collect();
    group.bench_function("naive_rejection_baseline", |b| {
        b.iter(|| {
            black_box(naive_rejection(
                &mut rng,
                &alphabet,
                &rules,
                policy.length(),
            ))
        })
    });
    group.finish();
}

fn four_class(length: usize, min: usize) -> Policy {
    Policy::builder(length)
        .charset("lower", LOWERCASE, min)
        .charset("upper", UPPERCASE, min)
        .charset("digits", DIGITS, min)
        .charset("symbols", VAULT_SYMBOLS, min)
        .build()
        .unwrap()
}

fn benches(c: &mut Criterion) {
    bench_policy(c, "vault_default_20", &Policy::vault_default(), true);
    bench_policy(c, "four_class_64", &four_class(64, 1), true);
    bench_policy(c, "restrictive_8_min2x4", &four_class(8, 2), true);
    // Three of four classes and the account-name automaton (no naive baseline: the
    // naive sampler cannot express either).
    let ad = AdComplexity::new(14)
        .account_name("jsmith")
        .display_name("John Smith")
        .build()
        .unwrap();
    bench_policy(c, "ad_14_with_names", &ad, false);
    c.bench_function("policy/construct/vault_default_20", |b| {
        b.iter(|| black_box(Policy::vault_default()))
    });
}

/// CPU time of the calling thread, in nanoseconds.
fn thread_cpu_ns() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
}

/// Criterion measurement by thread CPU time (criterion runs the routine on the
/// calling thread).
struct ThreadCpu;

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpu {
    type Intermediate = u128;
    type Value = Duration;

    fn start(&self) -> u128 {
        thread_cpu_ns()
    }

    fn end(&self, start: u128) -> Duration {
        Duration::from_nanos(u64::try_from(thread_cpu_ns() - start).unwrap_or(u64::MAX))
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

fn cpu_benches(c: &mut Criterion<ThreadCpu>) {
    let ad = AdComplexity::new(14)
        .account_name("jsmith")
        .display_name("John Smith")
        .build()
        .unwrap();
    for (name, policy, baseline) in [
        ("vault_default_20", Policy::vault_default(), true),
        ("four_class_64", four_class(64, 1), false),
        ("restrictive_8_min2x4", four_class(8, 2), false),
        ("ad_14_with_names", ad, false),
    ] {
        let mut group = c.benchmark_group(format!("policy_cpu/{name}"));
        group.throughput(Throughput::Elements(1));
        let mut rng = rand::rng();
        let mut buf = PasswordBuffer::new();
        group.bench_function("generate_into", |b| {
            b.iter(|| {
                policy.generate_into(&mut rng, &mut buf);
                black_box(buf.expose_secret().len());
            })
        });
        if baseline {
            let alphabet = policy.alphabet().to_vec();
            let rules: Vec<(Vec<char>, usize)> = policy
                .rules()
                .iter()
                .map(|r| {
                    let class = &r.classes()[0];
                    (class.charset().chars().collect(), class.min_chars())
                })
                .collect();
            group.bench_function("naive_rejection_baseline", |b| {
                b.iter(|| {
                    black_box(naive_rejection(
                        &mut rng,
                        &alphabet,
                        &rules,
                        policy.length(),
                    ))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(policy_benches, benches);
criterion_group! {
    name = policy_cpu_benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = cpu_benches
}
criterion_main!(policy_benches, policy_cpu_benches);
