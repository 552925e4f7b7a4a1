//! A lazy-rotation service against the lab's AD: a role whose password lives three
//! seconds; every read past that rotates it first (once, however many readers).
//! Prints only non-secret metadata (user name, versions, times), never a password.
//!
//! Run it with `bash tools/lab run -- cargo run -p credwheel-examples --bin ad_lazy`.
//! It leaves `svc-app2` with a random password (the tests reset it before use).

#![allow(clippy::print_stdout)] // a demo prints what it does; it never prints a secret.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use credwheel::ad::{AccountRef, AdClient, AdTarget, Config, RoleSpec, Roles, RolesConfig};
use credwheel::state::{Key, MemoryStore, Rotator, RotatorConfig, Sealer};

fn time(ms: Option<i64>) -> String {
    ms.map_or("-".into(), |t| {
        let d = std::time::UNIX_EPOCH + Duration::from_millis(t.unsigned_abs());
        humantime::format_rfc3339_millis(d).to_string()
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let Some(lab) = credwheel_testlab::ad() else {
        return Ok(());
    };
    // The delegated account: may reset passwords in the service OU only.
    let config = Config::builder()
        .url(&lab.url)
        .ca_pem_file(&lab.ca_pem)
        .bind(&lab.delegate_dn, lab.delegate_password.clone())
        .base_dn(&lab.base_dn)
        .build()?;
    let target = Arc::new(AdTarget::new(AdClient::new(config)?));
    let rotator = Arc::new(Rotator::new(
        Arc::new(MemoryStore::new()),
        Arc::new(Sealer::new("demo", Key::generate()?)?),
        RotatorConfig::with_holder("ad_lazy"),
    ));
    let roles = Arc::new(Roles::open(target, rotator, RolesConfig::default()).await?);
    let role = roles
        .create_role(RoleSpec::new("web", AccountRef::sam("svc-app2"), "3s")?)
        .await?;
    println!(
        "role {:?}: account {}, ttl {}, rotated at import",
        role.name(),
        role.username(),
        humantime::format_duration(role.ttl())
    );
    let mut last_version = 0;
    for round in 0..4 {
        // Fifty concurrent readers, as a busy service would have.
        let reads: Vec<_> = (0..50)
            .map(|_| {
                let roles = roles.clone();
                tokio::spawn(async move { roles.creds("web").await })
            })
            .collect();
        let mut versions = std::collections::BTreeSet::new();
        let mut creds = None;
        for r in reads {
            let c = r.await??;
            versions.insert(c.version);
            creds = Some(c);
        }
        let c = creds.ok_or("no reads")?;
        println!(
            "round {round}: 50 reads saw versions {versions:?} ({}), user {}, set {}, expires {}, last password known: {}",
            if c.version != last_version {
                "rotated"
            } else {
                "unchanged"
            },
            c.username,
            time(c.set_at),
            time(c.expires_at),
            c.last.is_some()
        );
        last_version = c.version;
        tokio::time::sleep(Duration::from_millis(1_700)).await;
    }
    Ok(())
}
