//! Speed of escaping, parsing, display and comparison of typical AD names.
//! Run with `cargo bench -p credwheel-dn`.

// Benchmark setup unwraps: a failure there is a broken benchmark.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use credwheel_dn::{Dn, Filter, escape_filter, escape_value, escape_value_ad};
use criterion::{Criterion, criterion_group, criterion_main};

const CLEAN: &str = "svc-app1 Service Account";
const DIRTY: &str = "Smith, John #2 <ops>";
/// Clean but not ASCII: every byte of every character is looked at by the AD check
/// for C1 controls and bidirectional formatting characters.
const CLEAN_UNICODE: &str = "Müller-Lüdenscheidt Dienstkonto für Überweisungen";
const DN: &str = r"CN=Smith\, John \#2,OU=Service Accounts,OU=Tier 1,DC=corp,DC=example,DC=com";

fn escaping(c: &mut Criterion) {
    c.bench_function("escape_value/clean (borrows)", |b| {
        b.iter(|| escape_value(black_box(CLEAN)))
    });
    c.bench_function("escape_value/dirty", |b| {
        b.iter(|| escape_value(black_box(DIRTY)))
    });
    c.bench_function("escape_value_ad/clean (borrows)", |b| {
        b.iter(|| escape_value_ad(black_box(CLEAN)))
    });
    c.bench_function("escape_value_ad/clean non-ASCII (borrows)", |b| {
        b.iter(|| escape_value_ad(black_box(CLEAN_UNICODE)))
    });
    c.bench_function("escape_value_ad/dirty", |b| {
        b.iter(|| escape_value_ad(black_box(DIRTY)))
    });
    c.bench_function("escape_filter/hostile", |b| {
        b.iter(|| escape_filter(black_box("*)(cn=*")))
    });
}

fn dns(c: &mut Criterion) {
    c.bench_function("Dn::parse/7 RDNs", |b| {
        b.iter(|| Dn::parse(black_box(DN)).unwrap())
    });
    let dn = Dn::parse(DN).unwrap();
    let other = Dn::parse(&DN.to_lowercase()).unwrap();
    c.bench_function("Dn::to_string/7 RDNs", |b| {
        b.iter(|| black_box(&dn).to_string())
    });
    c.bench_function("Dn::eq/7 RDNs, case differs", |b| {
        b.iter(|| black_box(&dn) == black_box(&other))
    });
    let ou = dn.parent().unwrap().parent().unwrap();
    c.bench_function("Dn::is_descendant_of", |b| {
        b.iter(|| black_box(&dn).is_descendant_of(black_box(&ou)))
    });
}

fn filters(c: &mut Criterion) {
    c.bench_function("Filter/and(objectClass, cn)", |b| {
        b.iter(|| {
            Filter::and([
                Filter::eq("objectClass", "user").unwrap(),
                Filter::eq("cn", black_box(DIRTY)).unwrap(),
            ])
            .unwrap()
        })
    });
}

criterion_group!(benches, escaping, dns, filters);
criterion_main!(benches);
