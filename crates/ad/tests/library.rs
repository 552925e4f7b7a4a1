//! Live tests of the check-out library against the lab's Samba AD DC, with outside
//! witnesses (`ldapsearch` bound as the account; the directory's count of password
//! writes).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use credwheel_ad::{AccountRef, AdTarget, ErrorKind, Library, SetOptions};
use credwheel_policy::AdComplexity;
use credwheel_state::{Key, MemoryStore, Rotator, RotatorConfig, Sealer};
use secrecy::ExposeSecret;

fn library(lab: &credwheel_testlab::AdLab) -> Arc<Library> {
    let rotator = Arc::new(Rotator::new(
        Arc::new(MemoryStore::new()),
        Arc::new(Sealer::new("k1", Key::generate().unwrap()).unwrap()),
        RotatorConfig::with_holder("library-test"),
    ));
    Arc::new(Library::new(
        Arc::new(AdTarget::new(admin(lab))),
        rotator,
        AdComplexity::new(20).build().unwrap(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn borrowers_never_share_an_account_and_none_left_is_typed() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _a = lock("svc-app1").await;
    let _b = lock("svc-app2").await;
    let _c = lock("svc-app3").await;
    let names = ["svc-app1", "svc-app2", "svc-app3"];
    let before: Vec<u32> = names
        .iter()
        .map(|n| {
            reset(&lab, n);
            witness_password_writes(&lab, &dn_of(&lab, n))
        })
        .collect();
    let counters = install_counters();
    let lib = library(&lab);
    let accounts: Vec<AccountRef> = names.iter().map(|n| AccountRef::sam(*n)).collect();
    let status = lib
        .create_set("pool", &accounts, &SetOptions::new("1h", "2h").unwrap())
        .await
        .unwrap();
    assert_eq!(status.len(), 3);
    assert!(status.iter().all(|s| s.available), "{status:?}");
    // Creating the set checked every account in: each was rotated once.
    for (n, b) in names.iter().zip(&before) {
        assert_eq!(witness_password_writes(&lab, &dn_of(&lab, n)), b + 1, "{n}");
    }

    let mut tasks = Vec::new();
    for i in 0..10 {
        let lib = lib.clone();
        tasks.push(tokio::spawn(async move {
            lib.check_out("pool", &format!("borrower-{i}"), None).await
        }));
    }
    let mut lent = HashSet::new();
    let mut unavailable = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(c) => {
                assert!(witness_binds(
                    &lab,
                    &dn_of(&lab, &c.account),
                    c.password.expose_secret()
                ));
                assert!(lent.insert(c.account.clone()), "{} lent twice", c.account);
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NoAccountsAvailable, "{e}");
                assert!(e.to_string().contains("no service accounts available"));
                unavailable += 1;
            }
        }
    }
    assert_eq!(lent.len(), 3);
    assert_eq!(unavailable, 7);
    let counted = counters.0.lock().unwrap().clone();
    assert_eq!(
        counted
            .iter()
            .filter(|c| *c == "credwheel_ad_checkout_unavailable_total{set=pool}")
            .count(),
        7
    );
    let status = lib.status("pool").await.unwrap();
    assert!(status.iter().all(|s| !s.available && s.borrower.is_some()));
    let n = lib.force_check_in("pool", &[]).await.unwrap();
    assert_eq!(n.len(), 3);
    assert!(n.iter().all(|c| c.available));
    for (n, b) in names.iter().zip(&before) {
        assert_eq!(witness_password_writes(&lab, &dn_of(&lab, n)), b + 2, "{n}");
        reset(&lab, n);
    }
}

#[tokio::test]
async fn expiry_enforcement_and_forced_check_in() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _a = lock("svc-app5").await;
    let _b = lock("svc-app6").await;
    for n in ["svc-app5", "svc-app6"] {
        reset(&lab, n);
    }
    let lib = library(&lab);
    let accounts = [AccountRef::sam("svc-app5"), AccountRef::sam("svc-app6")];
    lib.create_set("enf", &accounts, &SetOptions::new("1h", "1h").unwrap())
        .await
        .unwrap();

    // A shorter ttl is honoured; a longer one is capped at the set's.
    let a = lib
        .check_out("enf", "alice", Some(Duration::from_secs(2)))
        .await
        .unwrap();
    assert!(a.expires_at - chrono_now() <= 2_500);
    let a_dn = dn_of(&lab, &a.account);
    let writes = witness_password_writes(&lab, &a_dn);
    // Only the borrower may check in: mallory has nothing to check in, and may
    // not check in alice's account.
    assert!(
        lib.check_in("enf", "mallory", &[])
            .await
            .unwrap()
            .is_empty()
    );
    let e = lib
        .check_in("enf", "mallory", &[AccountRef::sam(&a.account)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotBorrower, "{e}");
    // Renew up to max_ttl only.
    let renewed = lib
        .renew(&a.lease_id, "alice", Some(Duration::from_secs(7_200)))
        .await
        .unwrap();
    assert!(renewed <= a.max_expires_at);

    // Alice takes the other one too: checking in without names is ambiguous.
    let b = lib
        .check_out("enf", "alice", Some(Duration::from_secs(2)))
        .await
        .unwrap();
    assert_ne!(a.account, b.account);
    let e = lib.check_in("enf", "alice", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotBorrower, "{e}");
    let done = lib
        .check_in("enf", "alice", &[AccountRef::sam(&a.account)])
        .await
        .unwrap();
    assert!(done[0].available);
    assert_eq!(witness_password_writes(&lab, &a_dn), writes + 1);

    // b expires: a status read checks it in and rotates it.
    let b_dn = dn_of(&lab, &b.account);
    let b_writes = witness_password_writes(&lab, &b_dn);
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let status = lib.status("enf").await.unwrap();
    assert!(status.iter().all(|s| s.available), "{status:?}");
    assert_eq!(witness_password_writes(&lab, &b_dn), b_writes + 1);

    // Enforcement off: anyone may check in; forced check-in always works.
    lib.update_set(
        "enf",
        &SetOptions::new("1h", "1h")
            .unwrap()
            .disable_check_in_enforcement(true),
    )
    .await
    .unwrap();
    let c = lib.check_out("enf", "carol", None).await.unwrap();
    let done = lib
        .check_in("enf", "dave", &[AccountRef::sam(&c.account)])
        .await
        .unwrap();
    assert!(done[0].available);
    let d = lib.check_out("enf", "erin", None).await.unwrap();
    let forced = lib
        .force_check_in("enf", &[AccountRef::sam(&d.account)])
        .await
        .unwrap();
    assert_eq!(forced.len(), 1);
    assert!(forced[0].available);
    for n in ["svc-app5", "svc-app6"] {
        reset(&lab, n);
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn a_failed_check_in_rotation_never_lends_the_old_password() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app3").await;
    reset(&lab, "svc-app3");
    let dn = dn_of(&lab, "svc-app3");
    let lib = library(&lab);
    lib.create_set(
        "fail",
        &[AccountRef::sam("svc-app3")],
        &SetOptions::default(),
    )
    .await
    .unwrap();
    let lent = lib.check_out("fail", "alice", None).await.unwrap();
    // While lent, the account gets disabled: the check-in's reset lands but the
    // verification bind as the account fails, so the rotation does not complete.
    samba_tool(&lab, &["user", "disable", "svc-app3"]);
    let r = lib.check_in("fail", "alice", &[]).await;
    samba_tool(&lab, &["user", "enable", "svc-app3"]);
    let r = r.unwrap();
    assert!(!r[0].available, "{r:?}");
    let status = lib.status("fail").await.unwrap();
    assert!(!status[0].available, "{status:?}");
    assert_eq!(status[0].state, "returning");
    let e = lib.check_out("fail", "bob", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoAccountsAvailable, "{e}");
    let _ = lent.password.expose_secret();

    // Automatic retries back off (or wait for an operator): still not lent.
    lib.reap().await.unwrap();
    assert!(!lib.status("fail").await.unwrap()[0].available);
    // Once the account works again, an operator's reconcile makes it available,
    // with a password that binds.
    assert!(
        lib.reconcile("fail", &AccountRef::sam("svc-app3"))
            .await
            .unwrap()
    );
    let again = lib.check_out("fail", "bob", None).await.unwrap();
    assert!(witness_binds(&lab, &dn, again.password.expose_secret()));
    reset(&lab, "svc-app3");
}

#[tokio::test]
async fn the_reaper_task_checks_expired_leases_in() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app1").await;
    reset(&lab, "svc-app1");
    let dn = dn_of(&lab, "svc-app1");
    let rotator = Arc::new(Rotator::new(
        Arc::new(MemoryStore::new()),
        Arc::new(Sealer::new("k1", Key::generate().unwrap()).unwrap()),
        RotatorConfig::with_holder("reaper-test"),
    ));
    let lib = Arc::new(Library::new(
        Arc::new(AdTarget::new(admin(&lab))),
        rotator.clone(),
        AdComplexity::new(20).build().unwrap(),
    ));
    lib.create_set(
        "reaped",
        &[AccountRef::sam("svc-app1")],
        &SetOptions::default(),
    )
    .await
    .unwrap();
    let reaper = lib.spawn_reaper(Duration::from_millis(200));
    let lent = lib
        .check_out("reaped", "alice", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    let writes = witness_password_writes(&lab, &dn);
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    // Read the store directly: no lazy check-in by the library here.
    let members = rotator.store().set_members("reaped").await.unwrap();
    reaper.abort();
    assert_eq!(members[0].state, credwheel_state::MemberState::Available);
    assert_eq!(witness_password_writes(&lab, &dn), writes + 1);
    let creds = rotator.credentials(&members[0].account).await.unwrap();
    assert_ne!(
        creds.current().expose_secret(),
        lent.password.expose_secret()
    );
    assert!(witness_binds(&lab, &dn, creds.current().expose_secret()));
    reset(&lab, "svc-app1");
}

#[tokio::test]
async fn a_set_can_have_its_own_password_policy() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app2").await;
    reset(&lab, "svc-app2");
    let lib = library(&lab);
    let hcl = r#"
        length = 32
        rule "charset" { charset = "abcdefghijklmnopqrstuvwxyz" min-chars = 1 }
        rule "charset" { charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" min-chars = 1 }
        rule "charset" { charset = "0123456789" min-chars = 1 }
    "#;
    // A policy the domain would refuse is a configuration error up front.
    let e = lib
        .create_set(
            "weak",
            &[AccountRef::sam("svc-app2")],
            &SetOptions::default().policy_hcl(
                r#"length = 30
                rule "charset" { charset = "abcdefghijklmnopqrstuvwxyz" min-chars = 1 }"#,
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    lib.create_set(
        "long",
        &[AccountRef::sam("svc-app2")],
        &SetOptions::default().policy_hcl(hcl),
    )
    .await
    .unwrap();
    let c = lib.check_out("long", "alice", None).await.unwrap();
    assert_eq!(c.password.expose_secret().chars().count(), 32);
    assert!(witness_binds(
        &lab,
        &dn_of(&lab, "svc-app2"),
        c.password.expose_secret()
    ));
    lib.check_in("long", "alice", &[]).await.unwrap();
    let c = lib.check_out("long", "bob", None).await.unwrap();
    assert_eq!(c.password.expose_secret().chars().count(), 32);
    reset(&lab, "svc-app2");
}

/// A member whose fine-grained password policy (svc-app4: `cw-restricted`, minimum
/// length 10) would refuse the set's passwords is a configuration error naming the
/// account, before the set exists; the domain's rules alone (minimum 7) would pass.
#[tokio::test]
async fn a_members_fine_grained_policy_is_checked_when_it_joins() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let lib = library(&lab);
    let short = r#"
        length = 8
        rule "charset" { charset = "abcdefghijklmnopqrstuvwxyz" min-chars = 1 }
        rule "charset" { charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" min-chars = 1 }
        rule "charset" { charset = "0123456789" min-chars = 1 }
    "#;
    let e = lib
        .create_set(
            "pso-short",
            &[AccountRef::sam("svc-app4")],
            &SetOptions::default().policy_hcl(short),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let text = e.to_string();
    assert!(text.contains("svc-app4"), "{text}");
    assert!(text.contains("cw-restricted"), "{text}");
    assert!(text.contains("minimum length 10"), "{text}");
    assert!(
        lib.status("pso-short").await.is_err(),
        "the set was not created"
    );
    // Joining an existing set is checked the same way.
    let _g = lock("svc-app5").await;
    lib.create_set(
        "pso-join",
        &[AccountRef::sam("svc-app5")],
        &SetOptions::default().policy_hcl(short),
    )
    .await
    .unwrap();
    let e = lib
        .add_accounts("pso-join", &[AccountRef::sam("svc-app4")])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("svc-app4"), "{e}");
    let members = lib.status("pso-join").await.unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    reset(&lab, "svc-app5");
}
