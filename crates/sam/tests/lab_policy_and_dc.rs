//! Live tests that change host-wide settings (the host's minimum password length) or
//! use the AD DC; in their own test binary so they never overlap the rotations of
//! `lab_rotation.rs` (cargo runs test binaries one after another).

mod common;

use common::*;
use credwheel_sam::{Error, SamConfig, SamTarget};
use credwheel_state::{
    RotateOptions, RotationMethod, RotationOutcome, RotationTarget, TargetErrorKind,
};
use secrecy::SecretString;

#[tokio::test]
async fn a_password_the_host_policy_refuses_is_rejected_up_front() {
    let Some(l) = lab() else { return };
    let user = "cwlocal2";
    set_by_hand(&l, user, &known(user));
    let before = account_policy(&l, "min password length");
    // The policy generates 20 characters; the host now wants 30.
    set_account_policy(&l, "min password length", 30);
    let t = target(&l);
    let rot = rotator();
    let id = t.target_id(user).unwrap();
    rot.enroll(&id, &known(user), credwheel_state::Schedule::None)
        .await
        .unwrap();
    let checked = t.check_policy(&policy()).await;
    let out = rot
        .rotate(
            &t,
            &id,
            &|_: &credwheel_state::TargetId| Ok(policy().generate()),
            RotateOptions::new(RotationMethod::AdminReset),
        )
        .await;
    set_account_policy(&l, "min password length", before);
    assert!(matches!(checked, Err(Error::HostPolicy(_))), "{checked:?}");
    assert!(
        matches!(
            &out,
            Ok(RotationOutcome::Failed { error, in_doubt: false, .. })
                if error.kind() == TargetErrorKind::Rejected
        ),
        "{out:?}"
    );
    let (cur, _) = rot.current_password(&id).await.unwrap();
    assert_eq!(smbclient(&l, user, &cur), Witness::Accepted);
    t.close().await;
}

/// Needs SMB on the lab's DC: its smbd reaches its winbindd only at libwbclient's
/// compiled-in path, which `tools/lab` bind-mounts (see docs/lab.md); without it every
/// session setup on the DC answers NT_STATUS_INTERNAL_ERROR.
#[tokio::test]
async fn the_ad_domain_controller_is_refused_before_any_change() {
    let (Some(_l), Some(ad)) = (lab(), credwheel_testlab::ad()) else {
        return;
    };
    let t = SamTarget::new(
        SamConfig::builder("127.0.0.1")
            .port(445)
            .admin("EXAMPLE\\Administrator", ad.admin_password.clone())
            .build()
            .unwrap(),
    );
    // jsmith2 keeps its seeded password in the lab (the AD tests rotate svc-app*).
    let user = &ad.escaped_sam;
    let id = t.target_id(user).unwrap();
    // The DC's smbd authenticates through its winbindd; right after heavy use of
    // the DC (the AD tests) it has been seen to answer a session setup with
    // NT_STATUS_INTERNAL_ERROR for a moment. That is the lab's, not ours: retry.
    let mut tries = 0;
    let e = loop {
        let e = t
            .reset_password(user, &SecretString::from("Never-Applied-1!x".to_owned()))
            .await;
        match &e {
            Err(Error::Status { status, .. }) if status.code() == 0xC000_00E5 && tries < 20 => {
                tries += 1;
                eprintln!("the DC's SMB answered INTERNAL_ERROR; retrying ({tries})");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            _ => break e,
        }
    };
    assert!(matches!(e, Err(Error::DomainController)), "{e:?}");
    let e = t
        .set_password_as_admin(&id, &SecretString::from("Never-Applied-1!x".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), TargetErrorKind::Denied);
    assert!(e.to_string().contains("domain controller"));
    // The account still has the seeded password (checked over LDAP by the AD crate's
    // tests; here: an SMB logon as the account still works).
    let v = t.verify(&id, &ad.account_password).await;
    assert!(matches!(v, Ok(true)), "{v:?}");
}
