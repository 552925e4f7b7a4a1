//! Rotates a local account of the lab's Windows stand-in (the standalone Samba host
//! WINHOST) with credwheel-sam, keeping the state in the embedded SQLite store.
//!
//! It enrolls `cwlocal1` with its seeded password, rotates it by an administrator's
//! AES reset through the crash-safe protocol, checks the new password with a fresh
//! SMB logon, and prints only non-secret metadata (versions, timings, the host's
//! password policy). Run it with
//! `bash tools/lab run -- cargo run -p credwheel-examples --bin sam_rotate`.

#![allow(clippy::print_stdout)] // an example prints what it does; it never prints a secret.

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use credwheel::sam::{SamConfig, SamTarget};
use credwheel::state::{
    Key, RotationOutcome, RotationTarget, Rotator, RotatorConfig, Sealer, SqliteOptions,
    SqliteStore,
};

type Res<T> = Result<T, Box<dyn Error>>;

#[tokio::main]
async fn main() -> Res<()> {
    let Some(lab) = credwheel_testlab::sam() else {
        return Err("the lab is not configured: run `bash tools/lab run -- cargo run -p credwheel-examples --bin sam_rotate`".into());
    };
    let account = lab
        .accounts
        .first()
        .ok_or("the lab lists no local accounts")?;

    let target = SamTarget::new(
        SamConfig::builder(lab.host.clone())
            .port(lab.port)
            .admin(lab.admin.clone(), lab.admin_password.clone())
            .build()?,
    );
    let policy = credwheel::policy::Policy::vault_default();
    let host_policy = target.check_policy(&policy).await?;
    println!(
        "host {}:{} ({}): minimum length {}, history {}, complexity {}",
        lab.host,
        lab.port,
        lab.netbios_name,
        host_policy.min_length,
        host_policy.history_length,
        host_policy.complexity
    );

    let dir = std::env::temp_dir().join(format!("credwheel-sam-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = SqliteStore::open(dir.join("state.db"), SqliteOptions::default())?;
    let sealer = Sealer::new("example", Key::generate()?)?;
    let rotator = Rotator::new(Arc::new(store), Arc::new(sealer), RotatorConfig::default());

    let id = target.target_id(account)?;
    // The seeded password, as an operator would enroll a known account. Put it back
    // first in case an earlier run rotated it.
    target
        .reset_password(account, &lab.account_password)
        .await?;
    let rec = rotator
        .enroll(&id, &lab.account_password, credwheel::state::Schedule::None)
        .await?;
    println!("enrolled {id} (record version {})", rec.version);

    let t = Instant::now();
    let out = rotator
        .rotate(
            &target,
            &id,
            &credwheel::PolicySource::new(policy),
            credwheel::state::RotateOptions::new(target.rotation_method()),
        )
        .await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    match out {
        RotationOutcome::Rotated { version } => {
            println!("rotated {id} by AES admin reset in {ms:.1} ms (record version {version})")
        }
        other => return Err(format!("rotation did not complete: {other:?}").into()),
    }

    let (current, _) = rotator.current_password(&id).await?;
    let ok = target.verify(&id, &current).await?;
    println!(
        "a fresh SMB logon with the stored password: {}",
        if ok { "accepted" } else { "refused" }
    );
    let old_ok = target.verify(&id, &lab.account_password).await?;
    println!(
        "the previous password: {}",
        if old_ok { "accepted" } else { "refused" }
    );

    // Leave the lab as seeded.
    target
        .reset_password(account, &lab.account_password)
        .await?;
    target.close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
