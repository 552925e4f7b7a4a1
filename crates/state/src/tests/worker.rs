//! Cross-process races: the test binary re-executes itself as worker processes.

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::{Field, Key, Record, Sealer, StateError, StateStore, TargetId};

const ENV_BACKEND: &str = "CREDWHEEL_STATE_WORKER_BACKEND";
const ENV_LOCATION: &str = "CREDWHEEL_STATE_WORKER_LOCATION";
const ENV_SPEC: &str = "CREDWHEEL_STATE_WORKER_SPEC";
const ENV_KEY: &str = "CREDWHEEL_STATE_WORKER_KEY";
const PROCS: usize = 4;
const LEASE_TASKS: usize = 16; // 4 processes x 16 = 64 borrowers
const ACCOUNTS: usize = 10;
const CAS_PER_TASK: usize = 25;
const KEY: [u8; 32] = [0x42; 32];

pub(super) struct Spec {
    record: TargetId,
    claim: TargetId,
    set: String,
}

impl Spec {
    fn encode(&self) -> String {
        let r = &self.record;
        let c = &self.claim;
        [
            r.kind(),
            r.scope(),
            r.account(),
            c.kind(),
            c.scope(),
            c.account(),
            &self.set,
        ]
        .join("\t")
    }

    fn decode(s: &str) -> Self {
        let p: Vec<&str> = s.split('\t').collect();
        Self {
            record: TargetId::new(p[0], p[1], p[2]).unwrap(),
            claim: TargetId::new(p[3], p[4], p[5]).unwrap(),
            set: p[6].to_owned(),
        }
    }
}

pub(super) async fn prepare(store: &Arc<dyn StateStore>) -> Spec {
    let spec = Spec {
        record: crate::conformance::unique_id("ad"),
        claim: crate::conformance::unique_id("ad"),
        set: format!("xproc-{}", crate::types::new_uuid()),
    };
    let sealer = Sealer::new("k", Key::from_bytes(&KEY).unwrap()).unwrap();
    let mut rec = Record::new(spec.record.clone());
    rec.current = Some(
        sealer
            .seal(
                &spec.record,
                Field::Current,
                &SecretString::from("shared-secret"),
            )
            .unwrap(),
    );
    store.create_record(&rec).await.unwrap();
    let accounts: Vec<_> = (0..ACCOUNTS)
        .map(|_| crate::conformance::unique_id("sam"))
        .collect();
    store
        .put_set(&spec.set, &crate::SetConfig::new(60_000, 60_000), 0)
        .await
        .unwrap();
    for a in &accounts {
        store.create_record(&Record::new(a.clone())).await.unwrap();
    }
    store.add_to_set(&spec.set, &accounts).await.unwrap();
    for m in store.set_members(&spec.set).await.unwrap() {
        store.finish_return(&m.account, m.generation).await.unwrap();
    }
    spec
}

/// Starts the workers, waits, and checks the combined results.
pub(super) async fn run_children(
    backend: &str,
    location: &str,
    spec: &Spec,
    store: &Arc<dyn StateStore>,
) {
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCS)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "tests::worker::worker_entry",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ENV_BACKEND, backend)
                .env(ENV_LOCATION, location)
                .env(ENV_SPEC, spec.encode())
                .env(ENV_KEY, hex::encode(KEY))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut cas_wins = Vec::new();
    let mut leases = Vec::new();
    let mut claims = 0;
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        assert!(out.status.success(), "worker failed: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut key_ok = false;
        for line in text
            .lines()
            .filter_map(|l| l.find("CWRESULT ").map(|i| &l[i + 9..]))
        {
            let mut it = line.split(' ');
            match (it.next(), it.next(), it.next()) {
                (Some("CAS"), Some(v), Some(who)) => {
                    cas_wins.push((v.parse::<u64>().unwrap(), who.to_owned()))
                }
                (Some("LEASE"), Some(id), Some(acct)) => {
                    leases.push((id.to_owned(), acct.to_owned()))
                }
                (Some("CLAIM"), _, _) => claims += 1,
                (Some("KEY"), Some("ok"), _) => key_ok = true,
                other => panic!("unexpected worker line {other:?}"),
            }
        }
        assert!(key_ok, "worker did not report its key check: {text}");
    }
    // CAS: no version won twice; the final version counts every win.
    let versions: HashSet<u64> = cas_wins.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        versions.len(),
        cas_wins.len(),
        "some version had two winners"
    );
    assert!(!cas_wins.is_empty());
    let rec = store.get_record(&spec.record).await.unwrap();
    assert_eq!(rec.version, 1 + cas_wins.len() as u64);
    let last = cas_wins.iter().max().unwrap();
    assert_eq!(
        rec.last_error.as_deref(),
        Some(last.1.as_str()),
        "the last winner's write is stored"
    );
    // Leases: exactly the 10 accounts, none twice.
    assert_eq!(leases.len(), ACCOUNTS, "{leases:?}");
    let accts: HashSet<_> = leases.iter().map(|l| &l.1).collect();
    assert_eq!(accts.len(), ACCOUNTS, "an account was lent twice");
    // Claims: one holder among all processes.
    assert_eq!(claims, 1, "claims across processes");
}

/// The worker side; run only by `run_children` (ignored in normal runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "worker process for the cross-process race tests"]
async fn worker_entry() {
    let (Ok(backend), Ok(location), Ok(spec)) = (
        std::env::var(ENV_BACKEND),
        std::env::var(ENV_LOCATION),
        std::env::var(ENV_SPEC),
    ) else {
        return;
    };
    let spec = Spec::decode(&spec);
    let store: Arc<dyn StateStore> = match backend.as_str() {
        "sqlite" => {
            Arc::new(crate::SqliteStore::open(&location, crate::SqliteOptions::default()).unwrap())
        }
        other => super::open_backend(other, &location).await,
    };
    // The key comes through the environment, as an operator would pass it.
    let sealer = Sealer::new("k", Key::from_env(ENV_KEY).unwrap()).unwrap();
    let rec = store.get_record(&spec.record).await.unwrap();
    let pw = sealer
        .open(&spec.record, Field::Current, rec.current.as_ref().unwrap())
        .unwrap();
    assert_eq!(pw.expose_secret(), "shared-secret");
    println!("CWRESULT KEY ok");

    let me = std::process::id();
    let mut hs = Vec::new();
    for t in 0..LEASE_TASKS {
        let (store, spec_set, spec_rec, spec_claim) = (
            store.clone(),
            spec.set.clone(),
            spec.record.clone(),
            spec.claim.clone(),
        );
        hs.push(tokio::spawn(async move {
            let mut lines = Vec::new();
            let terms = crate::LeaseTerms::new(60_000, 60_000);
            match store
                .take_lease(&spec_set, &format!("{me}-{t}"), 0, terms)
                .await
            {
                Ok(l) => lines.push(format!("LEASE {} {}", l.lease_id, l.account.account())),
                Err(StateError::NoneAvailable) => {}
                Err(e) => panic!("lease: {e}"),
            }
            match store
                .claim(&spec_claim, &format!("{me}-{t}"), 0, 600_000)
                .await
            {
                Ok(_) => lines.push("CLAIM ok".to_owned()),
                Err(StateError::Conflict(_)) => {}
                Err(e) => panic!("claim: {e}"),
            }
            for i in 0..CAS_PER_TASK {
                let mut r = store.get_record(&spec_rec).await.unwrap();
                let who = format!("{me}-{t}-{i}");
                r.last_error = Some(who.clone());
                match store.compare_and_swap(&r, r.version, None).await {
                    Ok(v) => lines.push(format!("CAS {v} {who}")),
                    Err(StateError::Conflict(_)) => {}
                    Err(e) => panic!("cas: {e}"),
                }
            }
            lines
        }));
    }
    for h in hs {
        for l in h.await.unwrap() {
            println!("CWRESULT {l}");
        }
    }
}
