//! Acceptance tests of the facade against the lab's real servers (Samba AD DC,
//! standalone Samba host, PostgreSQL). Each test first puts its account back to the
//! lab's seeded password with an outside tool, and checks results with an outside
//! witness (`smbclient`, `ldapsearch`). Accounts: `cwfacade1..3` on the
//! host and `svc-facade1..4` in AD (seeded by `tools/lab` for these tests).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly.

use std::sync::Arc;
use std::time::Duration;

use credwheel::state::{Key, ManualClock, MemoryStore, Sealer, StateStore};
use credwheel::{Config, Credwheel, RotationState};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

/// Tests sharing an account run one at a time.
static CWFACADE1: Mutex<()> = Mutex::const_new(());
static CWFACADE2: Mutex<()> = Mutex::const_new(());
static SVC_FACADE1: Mutex<()> = Mutex::const_new(());

fn smbpasswd(sam: &credwheel_testlab::SamLab, user: &str, pw: &str) {
    sam.set_password(user, pw).unwrap();
}

fn smb_accepts(sam: &credwheel_testlab::SamLab, user: &str, pw: &str) -> bool {
    sam.accepts(user, pw).unwrap()
}

fn samba_tool_setpassword(ad: &credwheel_testlab::AdLab, user: &str, pw: &str) {
    ad.set_password(user, pw).unwrap();
}

fn ad_accepts(ad: &credwheel_testlab::AdLab, user: &str, pw: &str) -> bool {
    ad.accepts(user, pw).unwrap()
}

fn config(ad: &credwheel_testlab::AdLab, sam: &credwheel_testlab::SamLab, rest: &str) -> Config {
    let text = format!(
        r#"
[key_ring]
active = "k1"
keys = [{{ id = "k1", env = "UNUSED_KEYS_ARE_INJECTED" }}]

[scheduler]
jitter = 0
heartbeat_interval = "1h"

[connections.ad.lab]
urls = ["{url}"]
bind_dn = "{bind}"
bind_password = {{ env = "CREDWHEEL_AD_DELEGATE_PASSWORD" }}
user_dn = "{ou}"
ca_file = "{ca}"

[connections.windows.winhost]
address = "{host}"
port = {port}
admin_user = "{admin}"
admin_password = {{ env = "CREDWHEEL_SAM_ADMIN_PASSWORD" }}
{rest}
"#,
        url = ad.url,
        bind = ad.delegate_dn,
        ou = ad.service_ou,
        ca = ad.ca_pem.display(),
        host = sam.host,
        port = sam.port,
        admin = sam.admin,
    );
    Config::from_toml_str(&text).unwrap()
}

fn sealer() -> Arc<Sealer> {
    Arc::new(Sealer::new("k1", Key::generate().unwrap()).unwrap())
}

async fn build(
    config: Config,
    store: Arc<dyn StateStore>,
    clock: Option<ManualClock>,
) -> Credwheel {
    let mut b = Credwheel::builder(config).store(store).sealer(sealer());
    if let Some(c) = clock {
        b = b.clock(Arc::new(c));
    }
    b.build().await.unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn a_windows_local_account_is_rotated_as_root_and_smbclient_agrees() {
    let (Some(ad), Some(sam)) = (credwheel_testlab::ad(), credwheel_testlab::sam()) else {
        return;
    };
    let _g = CWFACADE1.lock().await;
    let seeded = sam.account_password.expose_secret().to_owned();
    smbpasswd(&sam, "cwfacade1", &seeded);
    let cfg = config(
        &ad,
        &sam,
        r#"
[[rotations]]
name = "local"
target = { windows = { host = "winhost", user = "cwfacade1" } }
method = "root"
policy = { infisical = { length = 24 } }
secrets = { username = "U", password = "P" }
schedule = { interval_days = 30 }
"#,
    );
    let cw = build(cfg, Arc::new(MemoryStore::new()), None).await;
    let r = cw.tick().await.unwrap();
    assert_eq!(r.rotations, 1);
    let creds = cw.creds("local").await.unwrap();
    assert!(smb_accepts(
        &sam,
        "cwfacade1",
        creds.current.expose_secret()
    ));
    assert!(!smb_accepts(&sam, "cwfacade1", &seeded));
    // A manual rotation: the new one works, the previous one no longer does.
    cw.rotate_now("local").await.unwrap();
    let again = cw.creds("local").await.unwrap();
    assert_eq!(
        again.last.as_ref().unwrap().expose_secret(),
        creds.current.expose_secret()
    );
    assert!(smb_accepts(
        &sam,
        "cwfacade1",
        again.current.expose_secret()
    ));
    assert!(!smb_accepts(
        &sam,
        "cwfacade1",
        creds.current.expose_secret()
    ));
    assert_eq!(
        cw.status_of("local").await.unwrap().state,
        RotationState::Ok
    );
    smbpasswd(&sam, "cwfacade1", &seeded);
}

#[tokio::test]
async fn heartbeat_detects_an_smbpasswd_change_and_reconciles_it() {
    let (Some(ad), Some(sam)) = (credwheel_testlab::ad(), credwheel_testlab::sam()) else {
        return;
    };
    let _g = CWFACADE2.lock().await;
    let seeded = sam.account_password.expose_secret().to_owned();
    smbpasswd(&sam, "cwfacade2", &seeded);
    let cfg = config(
        &ad,
        &sam,
        r#"
[[rotations]]
name = "watched"
target = { windows = { host = "winhost", user = "cwfacade2" } }
secrets = { username = "U", password = "P" }
schedule = { interval_days = 30 }
reconcile_on_drift = true
"#,
    );
    let clock = ManualClock::new(now_ms());
    let cw = build(cfg, Arc::new(MemoryStore::new()), Some(clock.clone())).await;
    assert_eq!(cw.tick().await.unwrap().rotations, 1);
    let before = cw.creds("watched").await.unwrap();
    // Heartbeat, nothing changed.
    clock.advance(3_600_000 + 1_000);
    assert_eq!(cw.tick().await.unwrap().heartbeats, 1);
    let st = cw.status_of("watched").await.unwrap();
    assert_eq!(st.heartbeat.unwrap().1, "ok");
    // Out of band, with an outside tool.
    smbpasswd(&sam, "cwfacade2", "Changed-By-Hand-9!");
    clock.advance(3_600_000 + 1_000);
    assert_eq!(cw.tick().await.unwrap().heartbeats, 1);
    let st = cw.status_of("watched").await.unwrap();
    assert_eq!(
        st.heartbeat.as_ref().unwrap().1,
        "drifted; reconciled",
        "{st:?}"
    );
    assert_eq!(st.state, RotationState::Ok);
    let after = cw.creds("watched").await.unwrap();
    assert_ne!(
        after.current.expose_secret(),
        before.current.expose_secret()
    );
    assert!(smb_accepts(
        &sam,
        "cwfacade2",
        after.current.expose_secret()
    ));
    assert!(!smb_accepts(&sam, "cwfacade2", "Changed-By-Hand-9!"));
    smbpasswd(&sam, "cwfacade2", &seeded);
}

#[tokio::test]
async fn heartbeat_detects_a_samba_tool_change_in_ad_without_a_logon() {
    let (Some(ad), Some(sam)) = (credwheel_testlab::ad(), credwheel_testlab::sam()) else {
        return;
    };
    let _g = SVC_FACADE1.lock().await;
    let seeded = ad.account_password.expose_secret().to_owned();
    samba_tool_setpassword(&ad, "svc-facade1", &seeded);
    let cfg = config(
        &ad,
        &sam,
        r#"
[[rotations]]
name = "role"
target = { ad = { connection = "lab", sam_account_name = "svc-facade1" } }
policy = { ad_complexity = { length = 20 } }
secrets = { username = "U", password = "P" }
schedule = { ttl = "24h" }
"#,
    );
    let clock = ManualClock::new(now_ms());
    let cw = build(cfg, Arc::new(MemoryStore::new()), Some(clock.clone())).await;
    let creds = cw.creds("role").await.unwrap();
    assert!(creds.rotated, "first read sets the password");
    assert!(ad_accepts(
        &ad,
        "svc-facade1",
        creds.current.expose_secret()
    ));
    // AD keeps accepting the previous password for an hour, so a logon cannot tell;
    // pwdLastSet can. Wait past the tolerance, then change it behind our back.
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    samba_tool_setpassword(&ad, "svc-facade1", "Changed-By-Hand-9!x");
    clock.advance(3_600_000 + 1_000);
    assert_eq!(cw.tick().await.unwrap().heartbeats, 1);
    let st = cw.status_of("role").await.unwrap();
    assert_eq!(st.state, RotationState::Drifted, "{st:?}");
    assert!(st.last_error.unwrap().contains("out of band"));
    // The operator reconciles; the stored password works again.
    cw.reconcile("role").await.unwrap();
    let fixed = cw.creds("role").await.unwrap();
    assert!(ad_accepts(
        &ad,
        "svc-facade1",
        fixed.current.expose_secret()
    ));
    assert_eq!(cw.status_of("role").await.unwrap().state, RotationState::Ok);
    samba_tool_setpassword(&ad, "svc-facade1", &seeded);
}

#[tokio::test]
async fn a_check_out_cycle_against_ad() {
    let (Some(ad), Some(sam)) = (credwheel_testlab::ad(), credwheel_testlab::sam()) else {
        return;
    };
    let cfg = config(
        &ad,
        &sam,
        r#"
[[libraries]]
name = "ops"
connection = "lab"
accounts = ["svc-facade2", "svc-facade3"]
ttl = "10m"
"#,
    );
    let cw = build(cfg, Arc::new(MemoryStore::new()), None).await;
    let a = cw.check_out("ops", "alice", None).await.unwrap();
    assert!(ad_accepts(&ad, &a.account, a.password.expose_secret()));
    let b = cw.check_out("ops", "bob", None).await.unwrap();
    assert_ne!(a.account, b.account);
    assert!(cw.check_out("ops", "carol", None).await.is_err());
    assert!(
        cw.check_in("ops", "bob", Some(&a.account), false)
            .await
            .is_err()
    );
    cw.check_in("ops", "alice", None, false).await.unwrap();
    cw.check_in("ops", "bob", None, false).await.unwrap();
    let st = cw.library_status("ops").await.unwrap();
    assert!(st.members.iter().all(|m| m.available), "{st:?}");
    // Lent again, the account has a new password that AD accepts.
    let c = cw.check_out("ops", "carol", None).await.unwrap();
    let old = if c.account == a.account { &a } else { &b };
    assert_ne!(c.password.expose_secret(), old.password.expose_secret());
    assert!(ad_accepts(&ad, &c.account, c.password.expose_secret()));
    cw.check_in("ops", "carol", None, false).await.unwrap();
}

#[tokio::test]
async fn a_due_rotation_runs_once_across_three_instances_sharing_postgresql() {
    let (Some(ad), Some(sam), Some(pg)) = (
        credwheel_testlab::ad(),
        credwheel_testlab::sam(),
        credwheel_testlab::pg(),
    ) else {
        return;
    };
    let _g = CWFACADE1.lock().await;
    let seeded = sam.account_password.expose_secret().to_owned();
    smbpasswd(&sam, "cwfacade1", &seeded);
    let cfg = config(
        &ad,
        &sam,
        r#"
[[rotations]]
name = "shared"
target = { windows = { host = "winhost", user = "cwfacade1" } }
secrets = { username = "U", password = "P" }
schedule = { interval_days = 1 }
"#,
    );
    let schema = format!("cw_facade_{}", std::process::id());
    let sealer = sealer();
    let mut instances = Vec::new();
    for i in 0..3 {
        let store = match credwheel::state::PgStore::connect(
            pg.url.expose_secret(),
            credwheel::state::PgOptions::with_schema(&schema),
        )
        .await
        {
            Ok(s) => Arc::new(s) as Arc<dyn StateStore>,
            Err(e) => panic!("PostgreSQL: {e}"),
        };
        match Credwheel::builder(cfg.clone())
            .store(store)
            .sealer(sealer.clone())
            .holder(format!("instance-{i}"))
            .build()
            .await
        {
            Ok(cw) => instances.push(cw),
            Err(credwheel::Error::State(credwheel::state::StateError::Unavailable(m))) => {
                eprintln!("skipping: the PostgreSQL store cannot run this yet ({m})");
                return;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let (a, b, c) = tokio::join!(
        instances[0].tick(),
        instances[1].tick(),
        instances[2].tick()
    );
    let total = a.unwrap().rotations + b.unwrap().rotations + c.unwrap().rotations;
    assert_eq!(total, 1, "exactly one instance rotates");
    let creds = instances[1].creds("shared").await.unwrap();
    assert!(smb_accepts(
        &sam,
        "cwfacade1",
        creds.current.expose_secret()
    ));
    let (a, b, c) = tokio::join!(
        instances[0].tick(),
        instances[1].tick(),
        instances[2].tick()
    );
    assert_eq!(
        a.unwrap().rotations + b.unwrap().rotations + c.unwrap().rotations,
        0
    );
    smbpasswd(&sam, "cwfacade1", &seeded);
    let _ = SecretString::from(String::new());
}

/// Method `target` (the account changes its own password with the current one):
/// the imported password is the starting point, each rotation is a self change,
/// and the outside witnesses accept what credwheel stored.
#[tokio::test]
async fn self_change_rotations_start_from_the_imported_password() {
    let (Some(ad), Some(sam)) = (credwheel_testlab::ad(), credwheel_testlab::sam()) else {
        return;
    };
    let seeded_host = sam.account_password.expose_secret().to_owned();
    let seeded_ad = ad.account_password.expose_secret().to_owned();
    smbpasswd(&sam, "cwfacade3", &seeded_host);
    samba_tool_setpassword(&ad, "svc-facade4", &seeded_ad);
    let cfg = config(
        &ad,
        &sam,
        &format!(
            r#"
[[rotations]]
name = "win-self"
target = {{ windows = {{ host = "winhost", user = "cwfacade3" }} }}
method = "target"
initial_password = {{ value = "{seeded_host}" }}
policy = {{ infisical = {{ length = 24 }} }}
secrets = {{ username = "WU", password = "WP" }}
schedule = {{ interval_days = 30 }}

[[rotations]]
name = "ad-self"
target = {{ ad = {{ connection = "lab", sam_account_name = "svc-facade4" }} }}
method = "target"
initial_password = {{ value = "{seeded_ad}" }}
policy = {{ ad_complexity = {{ length = 20 }} }}
secrets = {{ username = "AU", password = "AP" }}
schedule = {{ interval_days = 30 }}
"#
        ),
    );
    let cw = build(cfg, Arc::new(MemoryStore::new()), None).await;
    // Before any rotation the imported passwords are served, and an imported
    // password is not due before its schedule says so.
    let before = cw.creds("win-self").await.unwrap();
    assert_eq!(before.current.expose_secret(), seeded_host);
    assert_eq!(cw.tick().await.unwrap().rotations, 0);
    cw.rotate_now("win-self").await.unwrap();
    cw.rotate_now("ad-self").await.unwrap();
    let win = cw.creds("win-self").await.unwrap();
    assert_ne!(win.current.expose_secret(), seeded_host);
    assert_eq!(win.last.as_ref().unwrap().expose_secret(), seeded_host);
    assert!(smb_accepts(&sam, "cwfacade3", win.current.expose_secret()));
    assert!(!smb_accepts(&sam, "cwfacade3", &seeded_host));
    let adc = cw.creds("ad-self").await.unwrap();
    assert_ne!(adc.current.expose_secret(), seeded_ad);
    assert!(ad_accepts(&ad, "svc-facade4", adc.current.expose_secret()));
    // A second self change proves the stored password was the real one.
    cw.rotate_now("win-self").await.unwrap();
    cw.rotate_now("ad-self").await.unwrap();
    let win2 = cw.creds("win-self").await.unwrap();
    assert!(smb_accepts(&sam, "cwfacade3", win2.current.expose_secret()));
    assert!(!smb_accepts(&sam, "cwfacade3", win.current.expose_secret()));
    let ad2 = cw.creds("ad-self").await.unwrap();
    assert_ne!(ad2.current.expose_secret(), adc.current.expose_secret());
    assert!(ad_accepts(&ad, "svc-facade4", ad2.current.expose_secret()));
    for name in ["win-self", "ad-self"] {
        assert_eq!(cw.status_of(name).await.unwrap().state, RotationState::Ok);
    }
    smbpasswd(&sam, "cwfacade3", &seeded_host);
    samba_tool_setpassword(&ad, "svc-facade4", &seeded_ad);
}

/// `[store] postgres` with `ca_file`: the facade reaches a TLS-only PostgreSQL whose
/// certificate comes from a private CA; without the CA it refuses to start, saying
/// why.
#[tokio::test]
async fn a_postgresql_store_over_tls_with_a_private_ca() {
    let (Some(pg), Some(tls)) = (credwheel_testlab::pg(), credwheel_testlab::pg_tls()) else {
        return;
    };
    let schema = format!("cw_tls_{}", std::process::id());
    let text = |ca: &str| {
        format!(
            r#"
[store]
postgres = "host=127.0.0.1 port={port} user={user} dbname={db}"
password = {{ env = "CREDWHEEL_PG_PASSWORD" }}
schema = "{schema}"
{ca}

[key_ring]
active = "k1"
keys = [{{ id = "k1", env = "UNUSED_KEYS_ARE_INJECTED" }}]
"#,
            port = tls.port,
            user = pg.user,
            db = pg.dbname,
        )
    };
    let with_ca =
        Config::from_toml_str(&text(&format!("ca_file = \"{}\"", tls.ca_pem.display()))).unwrap();
    let cw = Credwheel::builder(with_ca)
        .sealer(sealer())
        .build()
        .await
        .unwrap();
    assert!(cw.status().await.unwrap().is_empty());
    let without = Config::from_toml_str(&text("")).unwrap();
    let err = Credwheel::builder(without)
        .sealer(sealer())
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert!(!err.contains(pg.password.expose_secret()), "{err}");
    // A CA file that cannot be read is named in the error.
    let missing = Config::from_toml_str(&text("ca_file = \"/nonexistent/ca.pem\"")).unwrap();
    let err = Credwheel::builder(missing)
        .sealer(sealer())
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("store.ca_file"), "{err}");
}
