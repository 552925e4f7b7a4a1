//! Live tests of roles (lazy TTL rotation) against the lab's Samba AD DC, with
//! outside witnesses: OpenLDAP's `ldapsearch` bound as the account, and the
//! directory's own count of password writes (the `unicodePwd` version in
//! `replPropertyMetaData`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use credwheel_ad::{
    AccountRef, AdClient, AdTarget, ErrorKind, Import, RoleSpec, Roles, RolesConfig,
};
use credwheel_state::{Key, MemoryStore, Rotator, RotatorConfig, Sealer, StateStore};
use secrecy::ExposeSecret;

fn rotator(store: Arc<dyn StateStore>) -> Arc<Rotator> {
    Arc::new(Rotator::new(
        store,
        Arc::new(Sealer::new("k1", Key::from_bytes(&[9; 32]).unwrap()).unwrap()),
        RotatorConfig::with_holder(format!("roles-{}", std::process::id())),
    ))
}

async fn roles(client: AdClient, config: RolesConfig) -> Roles {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    Roles::open(Arc::new(AdTarget::new(client)), rotator(store), config)
        .await
        .unwrap()
}

fn quick() -> RolesConfig {
    let mut c = RolesConfig::default();
    c.drift_check_interval = Duration::ZERO;
    c.drift_tolerance = Duration::from_secs(1);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_readers_of_an_expired_role_cause_one_write() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app2").await;
    reset(&lab, "svc-app2");
    let dn = dn_of(&lab, "svc-app2");
    let roles = Arc::new(roles(admin(&lab), RolesConfig::default()).await);
    let spec = RoleSpec::new("lazy", AccountRef::sam("svc-app2"), "2s")
        .unwrap()
        .import(Import::Keep(lab.account_password.clone()));
    roles.create_role(spec).await.unwrap();
    // Served until the first rotation.
    let first = roles.creds("lazy").await.unwrap();
    assert_eq!(
        first.current.expose_secret(),
        lab.account_password.expose_secret()
    );
    assert_eq!(first.username, "svc-app2@example.com");
    tokio::time::sleep(Duration::from_millis(2_200)).await;

    let writes_before = witness_password_writes(&lab, &dn);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let roles = roles.clone();
        tasks.push(tokio::spawn(async move { roles.creds("lazy").await }));
    }
    let mut passwords = std::collections::HashSet::new();
    for t in tasks {
        let c = t.await.unwrap().unwrap();
        passwords.insert(c.current.expose_secret().to_owned());
        assert_eq!(
            c.last.as_ref().map(|p| p.expose_secret().to_owned()),
            Some(lab.account_password.expose_secret().to_owned())
        );
    }
    assert_eq!(passwords.len(), 1, "all callers get the same new password");
    let new = passwords.into_iter().next().unwrap();
    assert_ne!(new, lab.account_password.expose_secret());
    assert_eq!(
        witness_password_writes(&lab, &dn),
        writes_before + 1,
        "exactly one password write in the directory"
    );
    assert!(witness_binds(&lab, &dn, &new));
    reset(&lab, "svc-app2");
}

#[tokio::test]
async fn import_rotates_by_default_and_rotate_role_keeps_the_last_password() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app3").await;
    reset(&lab, "svc-app3");
    let dn = dn_of(&lab, "svc-app3");
    let writes = witness_password_writes(&lab, &dn);
    let roles = roles(admin(&lab), RolesConfig::default()).await;
    let role = roles
        .create_role(RoleSpec::new("svc3", AccountRef::upn("svc-app3@example.com"), "10h").unwrap())
        .await
        .unwrap();
    assert_eq!(role.username(), "svc-app3@example.com");
    assert_eq!(witness_password_writes(&lab, &dn), writes + 1);
    let c1 = roles.creds("svc3").await.unwrap();
    assert!(
        c1.last.is_none(),
        "nothing was known before the import rotation"
    );
    assert!(witness_binds(&lab, &dn, c1.current.expose_secret()));
    let expires = c1.expires_at.unwrap() - c1.set_at.unwrap();
    assert!((expires - 10 * 3_600_000).abs() < 10_000, "{expires}");
    // Not expired: reading again does not rotate.
    let c2 = roles.creds("svc3").await.unwrap();
    assert_eq!(c1.version, c2.version);
    assert_eq!(witness_password_writes(&lab, &dn), writes + 1);

    roles.rotate_role("svc3").await.unwrap();
    let c3 = roles.creds("svc3").await.unwrap();
    assert_eq!(
        c3.last.as_ref().unwrap().expose_secret(),
        c1.current.expose_secret()
    );
    assert!(witness_binds(&lab, &dn, c3.current.expose_secret()));
    assert_eq!(witness_password_writes(&lab, &dn), writes + 2);
    assert!(roles.health("svc3").await.unwrap().is_ok());
    roles.unlock("svc3").await.unwrap();
    // Changed behind our back (later than the tolerance): the stored password
    // still binds on Samba for a while, but the health check says what happened.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    reset(&lab, "svc-app3");
    assert_eq!(
        roles.health("svc3").await.unwrap().status(),
        credwheel_ad::HealthStatus::ChangedElsewhere
    );
    assert_eq!(roles.list_roles().await.unwrap(), vec!["svc3".to_owned()]);
    let e = roles.creds("nope").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    roles.delete_role("svc3").await.unwrap();
    assert!(roles.list_roles().await.unwrap().is_empty());
    reset(&lab, "svc-app3");
}

#[tokio::test]
async fn out_of_band_reset_is_healed_and_a_burst_after_our_rotation_is_not() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app5").await;
    reset(&lab, "svc-app5");
    let dn = dn_of(&lab, "svc-app5");
    let roles = roles(admin(&lab), quick()).await;
    roles
        .create_role(RoleSpec::new("oob", AccountRef::sam("svc-app5"), "1h").unwrap())
        .await
        .unwrap();
    let ours = roles.creds("oob").await.unwrap();
    let writes = witness_password_writes(&lab, &dn);
    // A burst of reads right after our rotation (every read asks AD): no rotation.
    for _ in 0..20 {
        let c = roles.creds("oob").await.unwrap();
        assert_eq!(c.version, ours.version);
    }
    assert_eq!(witness_password_writes(&lab, &dn), writes);

    // Someone resets it outside credwheel, later than our baseline + tolerance.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    reset(&lab, "svc-app5");
    assert_eq!(witness_password_writes(&lab, &dn), writes + 1);
    let healed = roles.creds("oob").await.unwrap();
    assert_ne!(healed.version, ours.version);
    assert_ne!(
        healed.current.expose_secret(),
        lab.account_password.expose_secret()
    );
    assert!(witness_binds(&lab, &dn, healed.current.expose_secret()));
    assert_eq!(witness_password_writes(&lab, &dn), writes + 2);
    // And the heal is not detected as another out-of-band change.
    for _ in 0..5 {
        assert_eq!(roles.creds("oob").await.unwrap().version, healed.version);
    }
    assert_eq!(witness_password_writes(&lab, &dn), writes + 2);
    reset(&lab, "svc-app5");
}

#[tokio::test]
async fn self_managed_role_rotates_with_its_own_password() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app6").await;
    reset(&lab, "svc-app6");
    let dn = dn_of(&lab, "svc-app6");
    // No admin rights at all: the client binds as the account itself.
    let client = AdClient::new(
        base(&lab)
            .bind(&dn, lab.account_password.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    let roles = roles(client, quick()).await;
    let spec = RoleSpec::new("selfie", AccountRef::sam("svc-app6"), "1h")
        .unwrap()
        .self_managed(true);
    let e = roles.create_role(spec.clone()).await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Config,
        "needs the current password: {e}"
    );
    roles
        .create_role(spec.import(Import::Rotate {
            current: Some(lab.account_password.clone()),
        }))
        .await
        .unwrap();
    let c = roles.creds("selfie").await.unwrap();
    assert!(witness_binds(&lab, &dn, c.current.expose_secret()));
    roles.rotate_role("selfie").await.unwrap();
    let c2 = roles.creds("selfie").await.unwrap();
    assert_ne!(c.current.expose_secret(), c2.current.expose_secret());
    assert!(witness_binds(&lab, &dn, c2.current.expose_secret()));

    // Reset elsewhere: a self-managed role cannot heal itself; it says so.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    reset(&lab, "svc-app6");
    let e = roles.creds("selfie").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NeedsOperator, "{e}");
    reset(&lab, "svc-app6");
}

#[tokio::test]
async fn rotate_root_changes_the_bind_password_and_keeps_binding() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let _g = lock("svc-app1").await;
    reset(&lab, "svc-app1");
    let dn = dn_of(&lab, "svc-app1");
    // svc-app1 stands in for the bind account (the lab's shared admin accounts
    // must keep their passwords).
    let client = AdClient::new(
        base(&lab)
            .bind(&dn, lab.account_password.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let target = Arc::new(AdTarget::new(client.clone()));
    let roles = Roles::open(
        target.clone(),
        rotator(store.clone()),
        RolesConfig::default(),
    )
    .await
    .unwrap();
    client.check_bind().await.unwrap();
    roles.rotate_root().await.unwrap();
    let root = roles
        .rotator()
        .credentials(&target.id(&AccountRef::dn(&dn).unwrap()).unwrap())
        .await
        .unwrap();
    assert_ne!(
        root.current().expose_secret(),
        lab.account_password.expose_secret()
    );
    assert!(witness_binds(&lab, &dn, root.current().expose_secret()));
    assert!(client.bind_health().await.unwrap().is_ok());
    // A fresh client with the old password, opened on the same store, picks the
    // new one up.
    let other = AdClient::new(
        base(&lab)
            .bind(&dn, lab.account_password.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    let other_roles = Roles::open(
        Arc::new(AdTarget::new(other.clone())),
        rotator(store),
        RolesConfig::default(),
    )
    .await
    .unwrap();
    drop(other_roles);
    assert!(other.bind_health().await.unwrap().is_ok());
    reset(&lab, "svc-app1");
}

const PG_SCHEMA: &str = "cw_ad_roles_test";
const PG_ROLE: &str = "pg-lazy";

/// Roles over the lab's PostgreSQL (a schema of their own), or `None` to skip.
async fn pg_roles(lab: &credwheel_testlab::AdLab) -> Option<Roles> {
    let pg = credwheel_testlab::pg()?;
    let mut opts = credwheel_state::PgOptions::default();
    opts.schema = PG_SCHEMA.into();
    let store = match credwheel_state::PgStore::connect(pg.url.expose_secret(), opts).await {
        Ok(s) => s,
        Err(e) => panic!("PgStore: {e}"),
    };
    let store: Arc<dyn StateStore> = Arc::new(store);
    match Roles::open(
        Arc::new(AdTarget::new(admin(lab))),
        rotator(store),
        RolesConfig::default(),
    )
    .await
    {
        Ok(r) => Some(r),
        Err(e) => panic!("{e}"),
    }
}
/// Child half of `four_processes_on_postgres_cause_one_write`: 50 concurrent
/// readers once the parent says go; writes the record version they all saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run only as a child process of four_processes_on_postgres_cause_one_write"]
async fn pg_child() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var("CW_PG_DIR").unwrap());
    let me = std::env::var("CW_PG_CHILD").unwrap();
    let roles = Arc::new(pg_roles(&lab).await.unwrap());
    roles.role(PG_ROLE).await.unwrap();
    std::fs::write(dir.join(format!("ready-{me}")), b"").unwrap();
    while !dir.join("go").exists() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let roles = roles.clone();
            tokio::spawn(async move { roles.creds(PG_ROLE).await.unwrap() })
        })
        .collect();
    let mut versions = std::collections::HashSet::new();
    let mut passwords = std::collections::HashSet::new();
    for t in tasks {
        let c = t.await.unwrap();
        versions.insert(c.version);
        passwords.insert(c.current.expose_secret().to_owned());
    }
    assert_eq!(versions.len(), 1);
    assert_eq!(passwords.len(), 1);
    let v = versions.into_iter().next().unwrap();
    std::fs::write(dir.join(format!("version-{me}")), v.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_on_postgres_cause_one_write() {
    let Some(lab) = credwheel_testlab::ad() else {
        return;
    };
    let Some(roles) = pg_roles(&lab).await else {
        return;
    };
    let _g = lock("svc-app2").await;
    reset(&lab, "svc-app2");
    let dn = dn_of(&lab, "svc-app2");
    // Leftovers of an earlier run.
    if roles.role(PG_ROLE).await.is_ok() {
        roles.delete_role(PG_ROLE).await.unwrap();
    }
    let id = roles.target().id(&AccountRef::sam("svc-app2")).unwrap();
    if let Ok(rec) = roles.rotator().store().get_record(&id).await {
        roles
            .rotator()
            .store()
            .delete_record(&id, rec.version)
            .await
            .unwrap();
    }
    roles
        .create_role(
            RoleSpec::new(PG_ROLE, AccountRef::sam("svc-app2"), "3s")
                .unwrap()
                .import(Import::Keep(lab.account_password.clone())),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "pg_child", "--ignored", "--nocapture"])
                .env("CW_PG_DIR", dir.path())
                .env("CW_PG_CHILD", i.to_string())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let t0 = std::time::Instant::now();
    while (0..4).any(|i| !dir.path().join(format!("ready-{i}")).exists()) {
        assert!(t0.elapsed() < Duration::from_secs(60), "children not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the TTL, then all 200 readers at once.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let writes = witness_password_writes(&lab, &dn);
    std::fs::write(dir.path().join("go"), b"").unwrap();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let versions: std::collections::HashSet<String> = (0..4)
        .map(|i| std::fs::read_to_string(dir.path().join(format!("version-{i}"))).unwrap())
        .collect();
    assert_eq!(
        versions.len(),
        1,
        "all 200 readers in 4 processes saw one version"
    );
    assert_eq!(
        witness_password_writes(&lab, &dn),
        writes + 1,
        "exactly one password write in the directory"
    );
    let c = roles.creds(PG_ROLE).await.unwrap();
    assert_eq!(c.version.to_string(), *versions.iter().next().unwrap());
    assert!(witness_binds(&lab, &dn, c.current.expose_secret()));
    roles.delete_role(PG_ROLE).await.unwrap();
    reset(&lab, "svc-app2");
}
