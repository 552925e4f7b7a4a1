//! The main job: credwheel end to end against the lab, with the embedded store.
//!
//! 1. rotates a Windows local account as the host's administrator ("login as root");
//! 2. serves an AD role lazily (rotated on the first read after its TTL);
//! 3. lends an AD account from a check-out library and rotates it on check-in;
//!
//! then prints a status table. Every change is confirmed by an outside witness
//! (`smbclient`, `ldapsearch`). No password is printed.
//!
//! Run it with `bash tools/lab run -- cargo run -p credwheel-examples --bin quickstart`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a demo prints; never a secret.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use credwheel::schedule::format_instant;
use credwheel::{Config, Credwheel, RotationStatus};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

type Res<T> = Result<T, Box<dyn Error>>;

fn first(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .and_then(|v| v.split(';').next().map(str::to_owned))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn nth(var: &str, n: usize, default: &str) -> String {
    std::env::var(var)
        .ok()
        .and_then(|v| v.split(';').nth(n).map(str::to_owned))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// `smbclient -L` as `user`: does the Windows host accept `pw`?
fn smb_accepts(sam: &credwheel_testlab::SamLab, user: &str, pw: &SecretString) -> Res<bool> {
    Ok(sam.accepts_secret(user, pw)?)
}

/// `ldapsearch` bound as `user@example.com`: does AD accept `pw`?
fn ad_accepts(ad: &credwheel_testlab::AdLab, user: &str, pw: &SecretString) -> Res<bool> {
    Ok(ad.accepts_secret(user, pw)?)
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn print_status(rows: &[RotationStatus]) {
    println!(
        "  {:<16} {:<10} {:<28} {:<21} {:<8} NEXT",
        "ROTATION", "STATE", "TARGET", "LAST SUCCESS", "VERSION"
    );
    for s in rows {
        let next = match (s.next_due, s.expires_at) {
            (Some(t), _) => format_instant(t),
            (None, Some(e)) => format!("on read after {}", format_instant(e)),
            _ => "manual".into(),
        };
        println!(
            "  {:<16} {:<10} {:<28} {:<21} {:<8} {}",
            s.name,
            s.state.as_str(),
            s.target,
            s.last_success.map_or_else(|| "-".into(), format_instant),
            s.version,
            next
        );
    }
}

fn config(
    dir: &Path,
    ad: &credwheel_testlab::AdLab,
    sam: &credwheel_testlab::SamLab,
) -> Res<Config> {
    let local = first("CREDWHEEL_FACADE_SAM_ACCOUNTS", "cwfacade1");
    let role = first("CREDWHEEL_FACADE_AD_ACCOUNTS", "svc-facade1");
    let lib_a = nth("CREDWHEEL_FACADE_AD_ACCOUNTS", 1, "svc-facade2");
    let lib_b = nth("CREDWHEEL_FACADE_AD_ACCOUNTS", 2, "svc-facade3");
    let q = |p: &Path| {
        p.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    };
    let text = format!(
        r#"
[store]
sqlite = "{store}"

[key_ring]
active = "k1"
keys = [{{ id = "k1", file = "{key}" }}]

[connections.ad.lab]
urls = ["{ad_url}"]
bind_dn = "{bind_dn}"
bind_password = {{ env = "CREDWHEEL_AD_DELEGATE_PASSWORD" }}
user_dn = "{ou}"
ca_file = "{ca}"

[connections.windows.winhost]
address = "{host}"
port = {port}
admin_user = "{admin}"
admin_password = {{ env = "CREDWHEEL_SAM_ADMIN_PASSWORD" }}

[[sinks]]
file = {{ dir = "{secrets}" }}

[[rotations]]
name = "winhost-local"
description = "a Windows local account, reset by the host's administrator"
target = {{ windows = {{ host = "winhost", user = "{local}" }} }}
method = "root"
policy = {{ infisical = {{ length = 24 }} }}
secrets = {{ username = "WINHOST_USER", password = "WINHOST_PASSWORD" }}
schedule = {{ interval_days = 30, rotate_at = "02:30", time_zone = "Europe/Paris" }}

[[rotations]]
name = "web-role"
description = "an AD role rotated lazily, when read after its TTL"
target = {{ ad = {{ connection = "lab", sam_account_name = "{role}" }} }}
policy = {{ ad_complexity = {{ length = 20 }} }}
secrets = {{ username = "WEB_USER", password = "WEB_PASSWORD" }}
schedule = {{ ttl = "3s" }}

[[libraries]]
name = "ops"
connection = "lab"
accounts = ["{lib_a}", "{lib_b}"]
ttl = "10m"
max_ttl = "1h"
"#,
        store = q(&dir.join("state.db")),
        key = q(&dir.join("k1.key")),
        secrets = q(&dir.join("secrets")),
        ad_url = ad.url,
        bind_dn = ad.delegate_dn,
        ou = ad.service_ou,
        ca = q(&ad.ca_pem),
        host = sam.host,
        port = sam.port,
        admin = sam.admin,
    );
    Ok(Config::from_toml_str(&text)?)
}

#[tokio::main]
async fn main() -> Res<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,smb=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let (Some(ad), Some(sam)) = (credwheel_testlab::ad(), credwheel_testlab::sam()) else {
        eprintln!(
            "the lab is not running: bash tools/lab run -- cargo run -p credwheel-examples --bin quickstart"
        );
        std::process::exit(2);
    };

    // A fresh embedded store and a fresh sealing key, in a private directory.
    let dir: PathBuf =
        std::env::temp_dir().join(format!("credwheel-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&dir.join("k1.key"), &hex)?;

    let config = config(&dir, &ad, &sam)?;
    println!(
        "credwheel quickstart (store: {})",
        dir.join("state.db").display()
    );
    println!(
        "configuration: {} rotations, {} library",
        config.rotations.len(),
        config.libraries.len()
    );
    let cw = Credwheel::builder(config).build().await?;
    let local_user = cw.config().rotations[0].target.username().to_owned();
    let role_user = cw.config().rotations[1].target.username().to_owned();

    // 1. The scheduler's first pass sets every password nobody knows yet.
    println!("\n1. first scheduler pass (passwords never set by credwheel are set now)");
    let t = std::time::Instant::now();
    let report = cw.tick().await?;
    println!(
        "   rotations run: {} in {:.0} ms",
        report.rotations,
        t.elapsed().as_secs_f64() * 1e3
    );
    let local = cw.creds("winhost-local").await?;
    println!(
        "   windows {local_user}: admin reset, version {}; smbclient accepts the new password: {}; the lab's seeded one: {}",
        local.version,
        yes(smb_accepts(&sam, &local_user, &local.current)?),
        yes(smb_accepts(&sam, &local_user, &sam.account_password)?),
    );
    let file = dir.join("secrets").join("WINHOST_PASSWORD");
    let on_disk = std::fs::read_to_string(&file)?;
    println!(
        "   file sink {}: matches the store: {}",
        file.display(),
        yes(on_disk == local.current.expose_secret())
    );

    // 2. The lazy AD role.
    println!("\n2. AD role {role_user}, ttl 3 s (Vault's lazy creds/ROLE)");
    let a = cw.creds("web-role").await?;
    println!(
        "   read 1: version {}, rotated by this read: {}; ldapsearch binds with it: {}",
        a.version,
        yes(a.rotated),
        yes(ad_accepts(&ad, &role_user, &a.current)?)
    );
    let b = cw.creds("web-role").await?;
    println!(
        "   read 2 (within the ttl): version {}, rotated: {}",
        b.version,
        yes(b.rotated)
    );
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let c = cw.creds("web-role").await?;
    println!(
        "   read 3 (after the ttl): version {}, rotated: {}; last password = read 2's: {}; ldapsearch binds with the new one: {}",
        c.version,
        yes(c.rotated),
        yes(c
            .last
            .as_ref()
            .is_some_and(|l| l.expose_secret() == b.current.expose_secret())),
        yes(ad_accepts(&ad, &role_user, &c.current)?)
    );

    // 3. A check-out cycle.
    println!("\n3. check-out library \"ops\"");
    let out = cw.check_out("ops", "quickstart", None).await?;
    println!(
        "   checked out {} until {}; ldapsearch binds with the lent password: {}",
        out.account,
        format_instant(out.expires_at),
        yes(ad_accepts(&ad, &out.account, &out.password)?)
    );
    for m in cw.library_status("ops").await?.members {
        println!(
            "   {:<14} available: {:<3} borrower: {}",
            m.account,
            yes(m.available),
            m.borrower.as_deref().unwrap_or("-")
        );
    }
    let name = cw.check_in("ops", "quickstart", None, false).await?;
    let again = cw.check_out("ops", "quickstart", None).await?;
    let same = again.account == name;
    println!(
        "   checked in {name}: rotated; {}",
        if same {
            format!(
                "next check-out of it has a new password: {}",
                yes(again.password.expose_secret() != out.password.expose_secret())
            )
        } else {
            "the next check-out lent the other account".to_owned()
        }
    );
    cw.check_in("ops", "quickstart", None, false).await?;

    println!("\nstatus");
    print_status(&cw.status().await?);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Res<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(text.as_bytes())?;
    Ok(())
}
