//! Live tests against the lab's Samba AD DC. Each test resets the accounts it uses
//! to the lab password with `samba-tool` first and checks results with outside
//! witnesses (OpenLDAP's `ldapsearch` bound as the account, and as Administrator), not only our code.
//!
//! Accounts: svc-app1..6 (owned by these tests), jsmith2 (restored after use),
//! cw-outside (outside the delegated OU, never changed), svc-app4 has the
//! fine-grained policy `cw-restricted` (lockout after 3, length 10, age 1 day).
//!
//! Skips when the lab is not configured (fails under CI); run with
//! `bash tools/lab run -- cargo test -p credwheel-ad`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use credwheel_ad::{
    AccountRef, AdClient, AdTarget, Config, ErrorKind, HealthStatus, PolicyViolation, RulesSource,
};
use credwheel_policy::AdComplexity;
use credwheel_state::{
    Key, MemoryStore, RotateOptions, RotationMethod, RotationOutcome, RotationTarget, Rotator,
    RotatorConfig, Schedule, Sealer, TargetErrorKind,
};
use credwheel_testlab::AdLab;
use secrecy::{ExposeSecret, SecretString};

mod common;

use common::*;

fn rotator() -> Rotator {
    Rotator::new(
        Arc::new(MemoryStore::new()),
        Arc::new(Sealer::new("k1", Key::generate().unwrap()).unwrap()),
        RotatorConfig::with_holder("ad-live"),
    )
}

#[tokio::test]
async fn rotation_through_the_protocol_binds_with_the_new_password() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app1").await;
    reset(&lab, "svc-app1");
    let dn = dn_of(&lab, "svc-app1");
    let before = witness_pwd_last_set(&lab, &dn);

    let target = AdTarget::new(admin(&lab));
    let id = target.id(&AccountRef::upn("svc-app1@example.com")).unwrap();
    let rotator = rotator();
    rotator
        .enroll(&id, &lab.account_password, Schedule::None)
        .await
        .unwrap();
    let policy = AdComplexity::new(24).build().unwrap();

    let out = rotator
        .rotate(
            &target,
            &id,
            &|_: &credwheel_state::TargetId| Ok(policy.generate()),
            RotateOptions::new(RotationMethod::AdminReset),
        )
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }), "{out:?}");
    let (current, _) = rotator.current_password(&id).await.unwrap();
    assert!(witness_binds(&lab, &dn, current.expose_secret()));
    let after = witness_pwd_last_set(&lab, &dn);
    assert_ne!(before, after, "pwdLastSet must change");
    assert_eq!(target.pinned_dc(&id).as_deref(), Some(lab.url.as_str()));
    let ours = target.password_last_set(&id).await.unwrap().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (now - ours).abs() < 120_000,
        "pwdLastSet {ours} vs now {now}"
    );

    // Self change with the stored current password.
    let out = rotator
        .rotate(
            &target,
            &id,
            &|_: &credwheel_state::TargetId| Ok(policy.generate()),
            RotateOptions::new(RotationMethod::SelfChange),
        )
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }), "{out:?}");
    let (current2, _) = rotator.current_password(&id).await.unwrap();
    assert_ne!(current.expose_secret(), current2.expose_secret());
    assert!(witness_binds(&lab, &dn, current2.expose_secret()));
    assert!(target.verify(&id, &current2).await.unwrap());
    reset(&lab, "svc-app1");
}

#[tokio::test]
async fn starttls_with_failover_past_a_dead_controller() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app2").await;
    reset(&lab, "svc-app2");
    let starttls = lab.starttls_url.replace("127.0.0.1", "localhost");
    let config = Config::builder()
        .url("ldaps://127.0.0.1:1")
        .url(&starttls)
        .ca_pem_file(&lab.ca_pem)
        .base_dn(&lab.base_dn)
        .bind(&lab.admin_dn, lab.admin_password.clone())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let target = AdTarget::new(AdClient::new(config).unwrap());
    let id = target.id(&AccountRef::sam("svc-app2")).unwrap();
    let pw = new_password();
    target.reset(&id, &pw).await.unwrap();
    assert_eq!(target.pinned_dc(&id).as_deref(), Some(starttls.as_str()));
    assert!(witness_binds(
        &lab,
        &dn_of(&lab, "svc-app2"),
        pw.expose_secret()
    ));
    assert!(target.check(&id, &pw).await.unwrap());
    reset(&lab, "svc-app2");
}

#[tokio::test]
async fn reusing_the_current_password_is_a_typed_policy_error() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app2").await;
    reset(&lab, "svc-app2");
    let dn = dn_of(&lab, "svc-app2");
    let before = witness_pwd_last_set(&lab, &dn);
    let client = admin(&lab);
    let r = AccountRef::sam("svc-app2");
    let e = client
        .change_password(&r, &lab.account_password, &lab.account_password)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PasswordPolicy, "{e}");
    assert_eq!(e.result_code(), Some(19));
    assert_eq!(e.target_kind(), TargetErrorKind::Rejected);
    assert!(!e.to_string().contains(lab.account_password.expose_secret()));
    assert_eq!(before, witness_pwd_last_set(&lab, &dn));
}

/// Restores jsmith2's lab password even when the test fails.
struct RestoreOnDrop<'a>(&'a AdLab, &'a str);
impl Drop for RestoreOnDrop<'_> {
    fn drop(&mut self) {
        reset(self.0, self.1);
    }
}

#[tokio::test]
async fn account_whose_cn_needs_escaping_is_found_and_rotates() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("jsmith2").await;
    let client = admin(&lab);
    let by_sam = client
        .find_account(&AccountRef::sam(&lab.escaped_sam))
        .await
        .unwrap();
    let ou = credwheel_dn::Dn::parse(&lab.service_ou).unwrap();
    let dn = ou
        .child(credwheel_dn::Rdn::new("CN", &lab.escaped_cn).unwrap())
        .unwrap();
    assert_eq!(by_sam.dn(), &dn);
    let by_dn = client
        .find_account(&AccountRef::Dn(dn.clone()))
        .await
        .unwrap();
    assert_eq!(by_dn.sam_account_name(), Some(lab.escaped_sam.as_str()));

    let _restore = RestoreOnDrop(&lab, "jsmith2");
    let target = AdTarget::new(client);
    let id = target.id(&AccountRef::Dn(dn.clone())).unwrap();
    let pw = new_password();
    target.reset(&id, &pw).await.unwrap();
    assert!(witness_binds(&lab, &dn.to_string(), pw.expose_secret()));
    drop(_restore);
    assert!(witness_binds(
        &lab,
        &dn.to_string(),
        lab.account_password.expose_secret()
    ));
}

#[tokio::test]
async fn delegate_rotates_in_its_ou_and_is_refused_outside() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app3").await;
    let _o = lock("cw-outside").await;
    reset(&lab, "svc-app3");
    let client = delegate(&lab);
    let pw = new_password();
    client
        .reset_password(&AccountRef::sam("svc-app3"), &pw)
        .await
        .unwrap();
    assert!(witness_binds(
        &lab,
        &dn_of(&lab, "svc-app3"),
        pw.expose_secret()
    ));

    let before = witness_pwd_last_set(&lab, OUTSIDE_DN);
    let target = AdTarget::new(client);
    let id = target.id(&AccountRef::sam("cw-outside")).unwrap();
    let e = target.reset(&id, &new_password()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InsufficientAccess, "{e}");
    assert_eq!(e.result_code(), Some(50));
    assert!(e.to_string().contains("may not reset"));
    let te = target
        .set_password_as_admin(&id, &new_password())
        .await
        .unwrap_err();
    assert_eq!(te.kind(), TargetErrorKind::Denied);
    assert!(te.kind().certainly_not_applied());
    assert_eq!(before, witness_pwd_last_set(&lab, OUTSIDE_DN));
    assert!(witness_binds(
        &lab,
        OUTSIDE_DN,
        lab.account_password.expose_secret()
    ));
    reset(&lab, "svc-app3");
}

#[tokio::test]
async fn plain_ldap_is_refused_before_anything_is_sent() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app5").await;
    reset(&lab, "svc-app5");
    let dn = dn_of(&lab, "svc-app5");
    let before = witness_pwd_last_set(&lab, &dn);
    let config = Config::builder()
        .url(&lab.starttls_url)
        .danger_allow_plaintext_ldap()
        .base_dn(&lab.base_dn)
        .bind(&lab.admin_dn, lab.admin_password.clone())
        .build()
        .unwrap();
    let client = AdClient::new(config).unwrap();
    let e = client
        .reset_password(
            &AccountRef::Dn(credwheel_dn::Dn::parse(&dn).unwrap()),
            &new_password(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::EncryptionRequired, "{e}");
    assert_eq!(e.result_code(), None, "refused by us, not the server");
    assert!(e.to_string().contains("encrypted connection"));
    // The server refuses a plain simple bind too (strongerAuthRequired).
    let e = client.check_bind().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::EncryptionRequired, "{e}");
    assert_eq!(e.result_code(), Some(8));
    assert_eq!(before, witness_pwd_last_set(&lab, &dn));
}

#[tokio::test]
async fn untrusted_ca_is_a_tls_error() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app5").await;
    reset(&lab, "svc-app5");
    let dn = dn_of(&lab, "svc-app5");
    let before = witness_pwd_last_set(&lab, &dn);
    // No CA given: the system roots, which do not include the lab CA.
    let config = Config::builder()
        .url(&lab.url)
        .base_dn(&lab.base_dn)
        .bind(&lab.admin_dn, lab.admin_password.clone())
        .build()
        .unwrap();
    let client = AdClient::new(config).unwrap();
    let e = client.check_bind().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    let e = client
        .reset_password(&AccountRef::sam("svc-app5"), &new_password())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert_eq!(e.target_kind(), TargetErrorKind::Unavailable);
    assert_eq!(before, witness_pwd_last_set(&lab, &dn));

    // Only the explicitly dangerous option connects without verification.
    let insecure = Config::builder()
        .url(&lab.url)
        .base_dn(&lab.base_dn)
        .bind(&lab.admin_dn, lab.admin_password.clone())
        .danger_disable_certificate_verification()
        .build()
        .unwrap();
    assert!(!insecure.verifies_certificates());
    AdClient::new(insecure).unwrap().check_bind().await.unwrap();
}

#[tokio::test]
async fn wrong_bind_password_is_a_typed_error() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app5").await;
    reset(&lab, "svc-app5");
    let dn = dn_of(&lab, "svc-app5");
    let before = witness_pwd_last_set(&lab, &dn);
    let wrong = "Not-The-Bind-Pass-9!";
    let client = AdClient::new(
        base(&lab)
            .bind(&lab.delegate_dn, SecretString::from(wrong))
            .build()
            .unwrap(),
    )
    .unwrap();
    let e = client.check_bind().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidCredentials, "{e}");
    assert_eq!(e.ad_code(), Some(0x52e));
    assert!(!e.to_string().contains(wrong));
    assert!(!format!("{e:?}").contains(wrong));
    let e = client
        .reset_password(&AccountRef::sam("svc-app5"), &new_password())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidCredentials, "{e}");
    assert_eq!(e.target_kind(), TargetErrorKind::BadCredentials);
    assert_eq!(
        client.bind_health().await.unwrap().status(),
        HealthStatus::WrongPassword
    );
    assert_eq!(before, witness_pwd_last_set(&lab, &dn));
    // The right one is healthy.
    assert!(delegate(&lab).bind_health().await.unwrap().is_ok());
}

#[tokio::test]
async fn locked_out_account_is_typed_and_unlock_clears_it() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app4").await;
    reset(&lab, "svc-app4");
    let dn = dn_of(&lab, "svc-app4");
    let client = admin(&lab);
    let r = AccountRef::sam("svc-app4");
    let wrong = SecretString::from("Wrong-Pass-123!");
    // cw-restricted locks after 3 bad passwords.
    for _ in 0..3 {
        assert!(!client.verify_password(&r, &wrong).await.unwrap());
    }
    let e = client
        .verify_password(&r, &lab.account_password)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AccountLocked, "{e}");
    assert_eq!(e.ad_code(), Some(0x775));
    assert_eq!(
        client
            .health(&r, &lab.account_password)
            .await
            .unwrap()
            .status(),
        HealthStatus::Locked
    );
    assert!(client.find_account(&r).await.unwrap().is_locked());

    let before = witness_pwd_last_set(&lab, &dn);
    let target = AdTarget::new(client.clone());
    let id = target.id(&r).unwrap();
    let te = target
        .change_password(&id, &lab.account_password, &new_password())
        .await
        .unwrap_err();
    assert_eq!(te.kind(), TargetErrorKind::AccountLocked);
    assert!(!witness_binds(
        &lab,
        &dn,
        lab.account_password.expose_secret()
    ));
    assert_eq!(before, witness_pwd_last_set(&lab, &dn));

    client.unlock(&r).await.unwrap();
    assert!(
        client
            .verify_password(&r, &lab.account_password)
            .await
            .unwrap()
    );
    assert!(witness_binds(
        &lab,
        &dn,
        lab.account_password.expose_secret()
    ));
    assert!(!client.find_account(&r).await.unwrap().is_locked());
    reset(&lab, "svc-app4");
}

#[tokio::test]
async fn self_change_too_soon_is_too_young() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app4").await;
    reset(&lab, "svc-app4");
    let dn = dn_of(&lab, "svc-app4");
    let before = witness_pwd_last_set(&lab, &dn);
    let client = admin(&lab);
    let e = client
        .change_password(
            &AccountRef::sam("svc-app4"),
            &lab.account_password,
            &new_password(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PasswordPolicy, "{e}");
    assert_eq!(e.policy_violation(), Some(PolicyViolation::TooYoung), "{e}");
    assert_eq!(e.ad_code(), Some(0x52d));
    assert_eq!(before, witness_pwd_last_set(&lab, &dn));
    assert!(witness_binds(
        &lab,
        &dn,
        lab.account_password.expose_secret()
    ));
}

#[tokio::test]
async fn password_rules_from_the_domain_and_the_accounts_pso() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let client = admin(&lab);
    let domain = client.domain_password_rules().await.unwrap();
    assert_eq!(domain.source, RulesSource::Domain);
    assert!(domain.complexity);
    assert_eq!(domain.min_length, 7);
    assert_eq!(domain.history_length, 24);
    let pso = client
        .password_rules_for(&AccountRef::sam("svc-app4"))
        .await
        .unwrap();
    assert!(matches!(pso.source, RulesSource::Pso(_)), "{pso:?}");
    assert_eq!(pso.min_length, 10);
    assert_eq!(pso.min_age, Duration::from_secs(86_400));
    let other = client
        .password_rules_for(&AccountRef::sam("svc-app5"))
        .await
        .unwrap();
    assert_eq!(other.source, RulesSource::Domain);

    let eight = AdComplexity::new(8).build().unwrap();
    client.validate_policy(&eight, None).await.unwrap();
    let e = client
        .validate_policy(&eight, Some(&AccountRef::sam("svc-app4")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("minimum length 10"), "{e}");
    let lower = credwheel_policy::Policy::builder(30)
        .charset("lower", credwheel_policy::LOWERCASE, 1)
        .build()
        .unwrap();
    let e = client.validate_policy(&lower, None).await.unwrap_err();
    assert!(e.to_string().contains("complexity"), "{e}");
}

#[tokio::test]
async fn health_tells_wrong_disabled_and_must_change_apart() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app6").await;
    reset(&lab, "svc-app6");
    let client = admin(&lab);
    let r = AccountRef::sam("svc-app6");
    assert!(
        client
            .health(&r, &lab.account_password)
            .await
            .unwrap()
            .is_ok()
    );
    assert_eq!(
        client
            .health(&r, &SecretString::from("Wrong-Pass-123!"))
            .await
            .unwrap()
            .status(),
        HealthStatus::WrongPassword
    );

    samba_tool(&lab, &["user", "disable", "svc-app6"]);
    let h = client.health(&r, &lab.account_password).await;
    samba_tool(&lab, &["user", "enable", "svc-app6"]);
    let h = h.unwrap();
    assert_eq!(h.status(), HealthStatus::Disabled, "{h:?}");
    assert_eq!(h.disabled(), Some(true));

    let pw = format!("--newpassword={}", lab.account_password.expose_secret());
    samba_tool(
        &lab,
        &[
            "user",
            "setpassword",
            "svc-app6",
            &pw,
            "--must-change-at-next-login",
        ],
    );
    let h = client.health(&r, &lab.account_password).await.unwrap();
    assert_eq!(h.status(), HealthStatus::MustChangePassword, "{h:?}");
    reset(&lab, "svc-app6");

    // accountExpires in the past (1970): data 701. Restored to "never" with the
    // same tool (samba-tool's --noexpiry would also set "password never expires").
    let set_expiry = |value: &str| {
        let ldif = format!(
            "dn: {}\nchangetype: modify\nreplace: accountExpires\naccountExpires: {value}\n",
            dn_of(&lab, "svc-app6")
        );
        let mut child = Command::new("ldapmodify")
            .env("LDAPTLS_CACERT", &lab.ca_pem)
            .args(["-H", "ldaps://127.0.0.1", "-x", "-D", &lab.admin_dn, "-w"])
            .arg(lab.admin_password.expose_secret())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    };
    set_expiry("116444736000000000");
    let h = client.health(&r, &lab.account_password).await;
    set_expiry("9223372036854775807");
    assert_eq!(h.unwrap().status(), HealthStatus::AccountExpired);
    assert!(
        client
            .health(&r, &lab.account_password)
            .await
            .unwrap()
            .is_ok()
    );
}

#[tokio::test]
async fn unknown_accounts_are_no_such_account() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let client = admin(&lab);
    let e = client
        .find_account(&AccountRef::sam("no-such-user-x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSuchAccount);
    // An explicit DN is used as given: a missing one is the server's result 32.
    let dn = format!("CN=no-such-user-x,{}", lab.service_ou);
    let e = client
        .reset_password(&AccountRef::dn(&dn).unwrap(), &new_password())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSuchAccount, "{e}");
    assert_eq!(e.result_code(), Some(32));
    assert_eq!(e.target_kind(), TargetErrorKind::NoSuchAccount);
}

/// A target that stops right after the directory took the new password (marker
/// file, then a long sleep): the parent SIGKILLs the process there.
struct StopAfterWrite {
    inner: AdTarget,
    marker: std::path::PathBuf,
}

#[async_trait::async_trait]
impl RotationTarget for StopAfterWrite {
    async fn set_password_as_admin(
        &self,
        account: &credwheel_state::TargetId,
        new_password: &SecretString,
    ) -> Result<(), credwheel_state::TargetError> {
        self.inner
            .set_password_as_admin(account, new_password)
            .await?;
        std::fs::write(&self.marker, b"applied").unwrap();
        tokio::time::sleep(Duration::from_secs(120)).await;
        Ok(())
    }
    async fn change_password(
        &self,
        account: &credwheel_state::TargetId,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<(), credwheel_state::TargetError> {
        self.inner.change_password(account, current, new).await
    }
    async fn verify(
        &self,
        account: &credwheel_state::TargetId,
        password: &SecretString,
    ) -> Result<bool, credwheel_state::TargetError> {
        self.inner.verify(account, password).await
    }
    async fn password_last_set(
        &self,
        account: &credwheel_state::TargetId,
    ) -> Result<Option<credwheel_state::Millis>, credwheel_state::TargetError> {
        self.inner.password_last_set(account).await
    }
}

const CRASH_KEY: [u8; 32] = [7; 32];

fn crash_store(dir: &std::path::Path) -> Arc<credwheel_state::SqliteStore> {
    Arc::new(credwheel_state::SqliteStore::open(dir.join("state.db"), Default::default()).unwrap())
}

/// Child half of `sigkill_mid_rotation_recovers`: rotates and is killed inside.
#[tokio::test]
#[ignore = "run only as a child process of sigkill_mid_rotation_recovers"]
async fn crash_child() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var("CW_CRASH_DIR").unwrap());
    let store = crash_store(&dir);
    let mut config = RotatorConfig::with_holder("crash-child");
    config.claim_ttl_ms = 12_000;
    config.target_margin_ms = 5_000;
    let rotator = Rotator::new(
        store,
        Arc::new(Sealer::new("k1", Key::from_bytes(&CRASH_KEY).unwrap()).unwrap()),
        config,
    );
    let target = StopAfterWrite {
        inner: AdTarget::new(admin(&lab)),
        marker: dir.join("applied"),
    };
    let id = target.inner.id(&AccountRef::sam("svc-app1")).unwrap();
    let policy = AdComplexity::new(24).build().unwrap();
    let _ = rotator
        .rotate(
            &target,
            &id,
            &|_: &credwheel_state::TargetId| Ok(policy.generate()),
            RotateOptions::new(RotationMethod::AdminReset),
        )
        .await;
    panic!("the parent should have killed this process");
}

#[tokio::test]
async fn sigkill_mid_rotation_recovers() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app1").await;
    reset(&lab, "svc-app1");
    let dn = dn_of(&lab, "svc-app1");
    let dir = tempfile::tempdir().unwrap();
    let sealer = Arc::new(Sealer::new("k1", Key::from_bytes(&CRASH_KEY).unwrap()).unwrap());
    let target = AdTarget::new(admin(&lab));
    let id = target.id(&AccountRef::sam("svc-app1")).unwrap();
    {
        let rotator = Rotator::new(
            crash_store(dir.path()),
            sealer.clone(),
            RotatorConfig::with_holder("crash-parent"),
        );
        rotator
            .enroll(&id, &lab.account_password, Schedule::None)
            .await
            .unwrap();
    }

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--ignored", "--nocapture"])
        .env("CW_CRASH_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = dir.path().join("applied");
    let t0 = std::time::Instant::now();
    while !marker.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "child never reached the target write"
        );
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The directory has a password only the store's pending record knows.
    assert!(!witness_binds(&lab, &dn, "definitely-not-it"));

    let rotator = Rotator::new(
        crash_store(dir.path()),
        sealer,
        RotatorConfig::with_holder("crash-parent"),
    );
    let outcome = loop {
        match rotator.recover(&target, &id).await {
            Err(
                credwheel_state::StateError::Conflict(_)
                | credwheel_state::StateError::InFlight { .. },
            ) => {
                // The dead child's claim lapses after its 12 s ttl.
                assert!(t0.elapsed() < Duration::from_secs(90), "claim never lapsed");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => break other.unwrap(),
        }
    };
    assert!(
        matches!(
            outcome,
            credwheel_state::RecoverOutcome::RolledForward { .. }
        ),
        "{outcome:?}"
    );
    let (current, _) = rotator.current_password(&id).await.unwrap();
    assert_ne!(
        current.expose_secret(),
        lab.account_password.expose_secret()
    );
    assert!(witness_binds(&lab, &dn, current.expose_secret()));
    reset(&lab, "svc-app1");
}

/// Records every span field and event of the thread as text.
#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<String>>);

struct Fields<'a>(&'a mut String);
impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut s = self.0.lock().unwrap();
        s.push_str("\nspan ");
        s.push_str(span.metadata().name());
        span.record(&mut Fields(&mut s));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut s = self.0.lock().unwrap();
        s.push_str("\nevent");
        event.record(&mut Fields(&mut s));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn spans_logs_and_metrics_never_carry_passwords() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app5").await;
    reset(&lab, "svc-app5");
    let counters = install_counters();
    let capture = Capture::default();
    let guard = tracing::subscriber::set_default(capture.clone());

    let client = admin(&lab);
    let r = AccountRef::sam("svc-app5");
    let pw = new_password();
    client.reset_password(&r, &pw).await.unwrap();
    assert!(client.verify_password(&r, &pw).await.unwrap());
    let wrong = SecretString::from("Wrong-Pass-For-Logs-1!");
    assert!(!client.verify_password(&r, &wrong).await.unwrap());
    let _ = client
        .change_password(&r, &wrong, &new_password())
        .await
        .unwrap_err();
    let _ = client.health(&r, &wrong).await.unwrap();
    drop(guard);

    let logs = capture.0.lock().unwrap().clone();
    assert!(logs.contains("ad.reset_password"), "capture works: {logs}");
    assert!(logs.contains("svc-app5"));
    for secret in [
        pw.expose_secret(),
        wrong.expose_secret(),
        lab.admin_password.expose_secret(),
        lab.account_password.expose_secret(),
    ] {
        assert!(!logs.contains(secret), "a password reached the logs");
    }
    let counted = counters.0.lock().unwrap().join("\n");
    assert!(
        counted.contains("credwheel_ad_operations_total{op=reset_password,outcome=ok}"),
        "{counted}"
    );
    assert!(
        counted
            .contains("credwheel_ad_failures_total{op=change_password,kind=invalid_credentials}"),
        "{counted}"
    );
    reset(&lab, "svc-app5");
}

#[tokio::test]
async fn unlock_after_rotation_clears_a_lockout() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app4").await;
    reset(&lab, "svc-app4");
    let dn = dn_of(&lab, "svc-app4");
    let client = AdClient::new(
        base(&lab)
            .bind(&lab.admin_dn, lab.admin_password.clone())
            .unlock_after_rotation(true)
            .build()
            .unwrap(),
    )
    .unwrap();
    let r = AccountRef::sam("svc-app4");
    let wrong = SecretString::from("Wrong-Pass-123!");
    for _ in 0..3 {
        assert!(!client.verify_password(&r, &wrong).await.unwrap());
    }
    assert!(client.find_account(&r).await.unwrap().is_locked());
    let target = AdTarget::new(client.clone());
    let id = target.id(&r).unwrap();
    let pw = new_password();
    target.reset(&id, &pw).await.unwrap();
    assert!(!client.find_account(&r).await.unwrap().is_locked());
    assert!(witness_binds(&lab, &dn, pw.expose_secret()));
    reset(&lab, "svc-app4");
}

#[tokio::test]
async fn binds_fall_back_to_the_last_bind_password() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app1").await;
    reset(&lab, "svc-app1");
    let client = AdClient::new(
        base(&lab)
            .bind(dn_of(&lab, "svc-app1"), lab.account_password.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    // As if the bind password had just been changed on another DC: the new one is
    // not known here yet, the previous (configured) one still works.
    client.set_bind_password(SecretString::from("Not-Yet-Replicated-1!"));
    client.check_bind().await.unwrap();
    // Without a working fallback the bind fails with a typed error.
    let fresh = AdClient::new(
        base(&lab)
            .bind(
                dn_of(&lab, "svc-app1"),
                SecretString::from("Wrong-Again-2!"),
            )
            .build()
            .unwrap(),
    )
    .unwrap();
    let e = fresh.check_bind().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidCredentials);
}

#[tokio::test]
async fn an_account_stays_on_its_pinned_controller() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app3").await;
    reset(&lab, "svc-app3");
    // Two names of the one lab DC stand for two controllers.
    let first = "ldaps://localhost:636";
    let client = AdClient::new(
        Config::builder()
            .url(first)
            .url(&lab.url)
            .ca_pem_file(&lab.ca_pem)
            .base_dn(&lab.base_dn)
            .bind(&lab.admin_dn, lab.admin_password.clone())
            .dc_pin_ttl(Duration::from_millis(1_500))
            .build()
            .unwrap(),
    )
    .unwrap();
    let target = AdTarget::new(client);
    let id = target.id(&AccountRef::sam("svc-app3")).unwrap();
    assert_eq!(target.pinned_dc(&id), None);
    let pw = new_password();
    target.reset(&id, &pw).await.unwrap();
    assert_eq!(target.pinned_dc(&id).as_deref(), Some(first));
    assert!(target.check(&id, &pw).await.unwrap());
    assert!(target.last_set(&id).await.unwrap().is_some());
    assert_eq!(target.pinned_dc(&id).as_deref(), Some(first));
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    assert_eq!(target.pinned_dc(&id), None, "the pin lapses");
    reset(&lab, "svc-app3");
}

/// A TCP relay to the DC that counts connections and can cut them all.
struct Relay {
    port: u16,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let conns = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (a, c) = (accepted.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let (mut down, _) = listener.accept().await.unwrap();
                a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let h = tokio::spawn(async move {
                    let mut up = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                });
                c.lock().unwrap().push(h.abort_handle());
            }
        });
        Self {
            port,
            accepted,
            conns,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Cuts every relayed connection (both sockets are dropped).
    fn cut(&self) {
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_is_bounded_and_broken_connections_are_replaced() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app5").await;
    reset(&lab, "svc-app5");
    let relay = Relay::start(636).await;
    // Same CA and SAN (localhost), through the relay.
    let client = AdClient::new(
        Config::builder()
            .url(format!("ldaps://localhost:{}", relay.port))
            .ca_pem_file(&lab.ca_pem)
            .base_dn(&lab.base_dn)
            .bind(&lab.admin_dn, lab.admin_password.clone())
            .pool_size(2)
            .build()
            .unwrap(),
    )
    .unwrap();
    let r = AccountRef::sam("svc-app5");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (client, r, pw) = (client.clone(), r.clone(), lab.account_password.clone());
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                assert!(client.verify_password(&r, &pw).await.unwrap());
            } else {
                client.find_account(&r).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let opened = relay.accepted();
    assert!(
        (2..=4).contains(&opened),
        "2 pools of at most 2 connections, {opened} opened"
    );

    // Cut every connection under the pool's feet: the next operations reconnect.
    relay.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.find_account(&r).await.unwrap();
    assert!(
        client
            .verify_password(&r, &lab.account_password)
            .await
            .unwrap()
    );
    let pw = new_password();
    client.reset_password(&r, &pw).await.unwrap();
    assert!(witness_binds(
        &lab,
        &dn_of(&lab, "svc-app5"),
        pw.expose_secret()
    ));
    assert!(
        relay.accepted() > opened,
        "new connections replaced the cut ones"
    );
    reset(&lab, "svc-app5");
}

#[tokio::test]
async fn minimum_tls_version_is_enforced() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    // The lab DC speaks TLS 1.3: a 1.3 minimum works.
    let client = AdClient::new(
        base(&lab)
            .bind(&lab.admin_dn, lab.admin_password.clone())
            .min_tls_version(credwheel_ad::TlsVersion::Tls13)
            .build()
            .unwrap(),
    )
    .unwrap();
    client.check_bind().await.unwrap();

    // A TLS 1.2-only server with the lab's certificate is refused at the handshake.
    let tls_dir = lab.ca_pem.parent().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-tls1_2", "-accept"])
        .arg(port.to_string())
        .arg("-cert")
        .arg(tls_dir.join("server.pem"))
        .arg("-key")
        .arg(tls_dir.join("server.key"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "s_server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let client = AdClient::new(
        Config::builder()
            .url(format!("ldaps://localhost:{port}"))
            .ca_pem_file(&lab.ca_pem)
            .base_dn(&lab.base_dn)
            .bind(&lab.admin_dn, lab.admin_password.clone())
            .min_tls_version(credwheel_ad::TlsVersion::Tls13)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
    )
    .unwrap();
    let e = client.check_bind().await.unwrap_err();
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
}

#[tokio::test]
async fn a_client_certificate_is_loaded_and_offered() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=credwheel test client"])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "openssl req");
    let cert = std::fs::read(dir.path().join("cert.pem")).unwrap();
    let key = std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
    let config = base(&lab)
        .bind(&lab.admin_dn, lab.admin_password.clone())
        .client_cert(cert.clone(), SecretString::from(key))
        .build()
        .unwrap();
    // The DC does not ask for one, so the bind works as without.
    AdClient::new(config).unwrap().check_bind().await.unwrap();
    // A key that is not a key is a configuration error.
    let e = base(&lab)
        .bind(&lab.admin_dn, lab.admin_password.clone())
        .client_cert(cert, SecretString::from("not a key"))
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(!e.to_string().contains("not a key"));
}
