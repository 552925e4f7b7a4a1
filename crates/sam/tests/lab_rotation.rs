//! Acceptance tests against the lab's standalone Samba host (WINHOST,
//! 127.0.0.1:4445). Each test owns one of cwlocal1..6, sets a known password on it with
//! `smbpasswd` first, and checks the result with `smbclient` and `pdbedit`.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use credwheel_sam::{
    ChangeCall, Error, LoginMethod, NtStatus, PasswordEncryption, SamConfig, SamTarget,
};
use credwheel_state::{
    RotateOptions, RotationMethod, RotationOutcome, RotationTarget, TargetErrorKind,
};
use secrecy::SecretString;

/// Rotates `user` through the crash-safe protocol and checks it with outside witnesses.
async fn rotate_and_witness(
    l: &credwheel_testlab::SamLab,
    target: &SamTarget,
    user: &str,
    method: RotationMethod,
) {
    let old = known(user);
    set_by_hand(l, user, &old);
    let rot = rotator();
    let id = target.target_id(user).unwrap();
    rot.enroll(&id, &old, credwheel_state::Schedule::None)
        .await
        .unwrap();
    let out = rot
        .rotate(target, &id, &source(), RotateOptions::new(method))
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }), "{out:?}");
    let (new, _) = rot.current_password(&id).await.unwrap();
    assert_eq!(smbclient(l, user, &new), Witness::Accepted);
    assert_eq!(smbclient(l, user, &old), Witness::LogonFailure);
    assert!(
        !must_change(l, user),
        "the reset left 'password must change'"
    );
}

#[tokio::test]
async fn login_as_root_resets_with_aes_and_reuses_the_session() {
    let Some(l) = lab() else { return };
    let t = target(&l);
    rotate_and_witness(&l, &t, "cwlocal1", RotationMethod::AdminReset).await;
    assert_eq!(t.idle_sessions(), 1, "the admin session is kept");
    // Reused session.
    rotate_and_witness(&l, &t, "cwlocal1", RotationMethod::AdminReset).await;
    assert_eq!(t.idle_sessions(), 1);
    // A dropped session is re-established transparently.
    t.testing_drop_idle_connections().await;
    rotate_and_witness(&l, &t, "cwlocal1", RotationMethod::AdminReset).await;
    // AES only works against a host that knows level 31.
    let t = SamTarget::new(
        builder(&l)
            .password_encryption(PasswordEncryption::AesOnly)
            .build()
            .unwrap(),
    );
    rotate_and_witness(&l, &t, "cwlocal1", RotationMethod::AdminReset).await;
    t.close().await;
}

#[tokio::test]
async fn login_as_root_resets_with_rc4_levels() {
    let Some(l) = lab() else { return };
    for enc in [
        PasswordEncryption::TestingRc4Only,
        PasswordEncryption::TestingRc4Level23,
    ] {
        let t = SamTarget::new(builder(&l).password_encryption(enc).build().unwrap());
        rotate_and_witness(&l, &t, "cwlocal2", RotationMethod::AdminReset).await;
        t.close().await;
    }
}

fn as_target(l: &credwheel_testlab::SamLab, call: ChangeCall) -> SamTarget {
    // No administrator at all: the account changes its own password.
    SamTarget::new(
        SamConfig::builder(l.host.clone())
            .port(l.port)
            .method(LoginMethod::AsTarget)
            .change_call(call)
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn non_admin_target_changes_itself_with_opnum_73() {
    let Some(l) = lab() else { return };
    // Opnum 73 only: no silent fallback to 55.
    let t = as_target(&l, ChangeCall::TestingOnly73);
    assert_eq!(t.rotation_method(), RotationMethod::SelfChange);
    rotate_and_witness(&l, &t, "cwlocal3", RotationMethod::SelfChange).await;
    // The default (73, falling back to 55) also works.
    let t = as_target(&l, ChangeCall::Aes73ThenRc4);
    rotate_and_witness(&l, &t, "cwlocal3", RotationMethod::SelfChange).await;
}

#[tokio::test]
async fn non_admin_target_changes_itself_with_opnum_55() {
    let Some(l) = lab() else { return };
    let t = as_target(&l, ChangeCall::TestingOnly55);
    rotate_and_witness(&l, &t, "cwlocal4", RotationMethod::SelfChange).await;
}

#[tokio::test]
async fn self_change_with_a_wrong_current_password_changes_nothing() {
    let Some(l) = lab() else { return };
    let user = "cwlocal4";
    let t = as_target(&l, ChangeCall::Aes73ThenRc4);
    // Shares cwlocal4 with the opnum-55 test only after it: set the account first.
    let _guard = common_lock().lock().await;
    set_by_hand(&l, user, &known(user));
    let e = t
        .change_password_as_account(
            user,
            &SecretString::from("Wrong-Pass-1!".to_owned()),
            &SecretString::from("Never-Applied-1!x".to_owned()),
        )
        .await
        .unwrap_err();
    assert_eq!(
        credwheel_state::TargetError::from(&e).kind(),
        TargetErrorKind::BadCredentials,
        "{e}"
    );
    assert_eq!(smbclient(&l, user, &known(user)), Witness::Accepted);
}

fn common_lock() -> &'static tokio::sync::Mutex<()> {
    static L: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    L.get_or_init(|| tokio::sync::Mutex::new(()))
}

#[tokio::test]
async fn reconcile_after_a_change_by_hand() {
    let Some(l) = lab() else { return };
    let user = "cwlocal5";
    let t = target(&l);
    let stored = known(user);
    set_by_hand(&l, user, &stored);
    let rot = rotator();
    let id = t.target_id(user).unwrap();
    rot.enroll(&id, &stored, credwheel_state::Schedule::None)
        .await
        .unwrap();
    // Someone changes it by hand: the stored password no longer works.
    let manual = SecretString::from("Manual-Change-7!".to_owned());
    set_by_hand(&l, user, &manual);
    assert!(!t.verify(&id, &stored).await.unwrap());
    let out = rot
        .reconcile(
            &t,
            &id,
            &source(),
            credwheel_state::ReconcileMethod::AdminReset,
        )
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }), "{out:?}");
    let (now, _) = rot.current_password(&id).await.unwrap();
    assert_eq!(smbclient(&l, user, &now), Witness::Accepted);
    assert_eq!(smbclient(&l, user, &manual), Witness::LogonFailure);
    assert!(!must_change(&l, user));
    t.close().await;
}

#[tokio::test]
async fn wrong_admin_password_is_bad_credentials_and_changes_nothing() {
    let Some(l) = lab() else { return };
    let user = "cwlocal6";
    let _guard = common_lock().lock().await;
    set_by_hand(&l, user, &known(user));
    let t = SamTarget::new(
        SamConfig::builder(l.host.clone())
            .port(l.port)
            .admin(
                l.admin.clone(),
                SecretString::from("not-the-password".to_owned()),
            )
            .build()
            .unwrap(),
    );
    let id = t.target_id(user).unwrap();
    let e = t
        .set_password_as_admin(&id, &SecretString::from("Never-Applied-1!x".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), TargetErrorKind::BadCredentials, "{e}");
    assert!(!e.to_string().contains("not-the-password"));
    assert_eq!(smbclient(&l, user, &known(user)), Witness::Accepted);
}

#[tokio::test]
async fn unknown_user_is_no_such_account() {
    let Some(l) = lab() else { return };
    let t = target(&l);
    let id = t.target_id("cwnosuchuser").unwrap();
    let e = t
        .set_password_as_admin(&id, &SecretString::from("Never-Applied-1!x".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), TargetErrorKind::NoSuchAccount, "{e}");
    t.close().await;
}

#[tokio::test]
async fn disabled_account_is_a_typed_error_and_changes_nothing() {
    let Some(l) = lab() else { return };
    let user = "cwlocal6";
    let _guard = common_lock().lock().await;
    set_by_hand(&l, user, &known(user));
    set_disabled(&l, user, true);
    let t = target(&l);
    let rot = rotator();
    let id = t.target_id(user).unwrap();
    rot.enroll(&id, &known(user), credwheel_state::Schedule::None)
        .await
        .unwrap();
    let res = rot
        .rotate(
            &t,
            &id,
            &source(),
            RotateOptions::new(RotationMethod::AdminReset),
        )
        .await;
    // Verify says why: the account is disabled, not a bad password.
    let v = t.verify(&id, &known(user)).await.unwrap_err();
    set_disabled(&l, user, false);
    match res {
        Ok(RotationOutcome::Failed {
            error,
            in_doubt: false,
            ..
        }) => assert_eq!(error.kind(), TargetErrorKind::AccountDisabled, "{error}"),
        Err(credwheel_state::StateError::Target(e)) => {
            assert_eq!(e.kind(), TargetErrorKind::AccountDisabled, "{e}")
        }
        other => panic!("expected a failure that changed nothing, got {other:?}"),
    }
    assert_eq!(v.kind(), TargetErrorKind::AccountDisabled, "{v}");
    let (cur, _) = rot.current_password(&id).await.unwrap();
    assert_eq!(smbclient(&l, user, &cur), Witness::Accepted);
    t.close().await;
}

#[tokio::test]
async fn the_administrator_is_never_a_target() {
    let Some(l) = lab() else { return };
    let t = target(&l);
    let e = t
        .reset_password(
            &l.admin,
            &SecretString::from("Never-Applied-1!x".to_owned()),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
}

#[tokio::test]
async fn verify_is_false_only_for_a_wrong_password() {
    let Some(l) = lab() else { return };
    let t = target(&l);
    let id = t.target_id("cwlocal1").unwrap();
    assert!(
        !t.verify(&id, &SecretString::from("definitely-wrong".to_owned()))
            .await
            .unwrap()
    );
    // Unreachable: an error, not false.
    let t = SamTarget::new(
        SamConfig::builder("127.0.0.1")
            .port(1)
            .admin("x", SecretString::from("y".to_owned()))
            .build()
            .unwrap(),
    );
    let id = t.target_id("cwlocal1").unwrap();
    let e = t.verify(&id, &known("cwlocal1")).await.unwrap_err();
    assert_eq!(e.kind(), TargetErrorKind::Unavailable, "{e}");
}

#[tokio::test]
async fn host_policy_is_read() {
    let Some(l) = lab() else { return };
    let t = target(&l);
    let p = t.host_password_policy().await.unwrap();
    assert_eq!(
        u32::from(p.min_length),
        account_policy(&l, "min password length")
    );
    t.check_policy(&policy()).await.unwrap();
    let short = credwheel_policy::Policy::builder(2)
        .charset("lower", "abcdefghijklmnopqrstuvwxyz", 1)
        .build()
        .unwrap();
    if p.min_length > 2 {
        assert!(matches!(
            t.check_policy(&short).await,
            Err(Error::HostPolicy(_))
        ));
    }
    t.close().await;
}

#[tokio::test]
async fn status_codes_are_named() {
    assert_eq!(NtStatus::LOGON_FAILURE.name(), Some("STATUS_LOGON_FAILURE"));
}

#[tokio::test]
async fn admin_name_forms_all_log_on() {
    let Some(l) = lab() else { return };
    for name in [
        l.admin.clone(),
        format!(".\\{}", l.admin),
        format!("{}\\{}", l.netbios_name, l.admin),
    ] {
        let t = SamTarget::new(
            SamConfig::builder(l.host.clone())
                .port(l.port)
                .admin(name.clone(), l.admin_password.clone())
                .build()
                .unwrap(),
        );
        // Reading the policy needs the whole chain: logon, application key, SAMR.
        let p = t.host_password_policy().await;
        assert!(p.is_ok(), "{name}: {p:?}");
        t.close().await;
    }
}

#[tokio::test]
async fn ids_of_another_host_are_refused() {
    let Some(l) = lab() else { return };
    let t = target(&l);
    let other = credwheel_state::TargetId::new("sam", "other-host:445", "cwlocal1").unwrap();
    let e = t
        .set_password_as_admin(&other, &SecretString::from("Never-Applied-1!x".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), TargetErrorKind::Denied, "{e}");
    assert!(e.message().contains("another host"));
}

/// New passwords from the test policy (credwheel-state knows no policy type).
fn source()
-> impl Fn(&credwheel_state::TargetId) -> credwheel_state::Result<secrecy::SecretString> + Send + Sync
{
    |_| Ok(policy().generate())
}
