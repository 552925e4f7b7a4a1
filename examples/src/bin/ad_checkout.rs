//! The check-out library against the lab's AD: a set of two service accounts,
//! three borrowers, a check-in that rotates, an expiry the reaper checks in.
//! Prints only non-secret metadata, never a password.
//!
//! Run it with `bash tools/lab run -- cargo run -p credwheel-examples --bin ad_checkout`.
//! It leaves `svc-app5` and `svc-app6` with random passwords (the tests reset them).

#![allow(clippy::print_stdout)] // a demo prints what it does; it never prints a secret.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use credwheel::ad::{AccountRef, AdClient, AdTarget, Config, ErrorKind, Library, SetOptions};
use credwheel::policy::AdComplexity;
use credwheel::state::{Key, MemoryStore, Rotator, RotatorConfig, Sealer};

async fn show(lib: &Library, when: &str) -> Result<(), Box<dyn Error>> {
    println!("{when}:");
    for s in lib.status("demo").await? {
        println!(
            "  {:<9} {:<10} {}",
            s.account,
            s.state,
            s.borrower.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let Some(lab) = credwheel_testlab::ad() else {
        return Ok(());
    };
    let config = Config::builder()
        .url(&lab.url)
        .ca_pem_file(&lab.ca_pem)
        .bind(&lab.delegate_dn, lab.delegate_password.clone())
        .base_dn(&lab.base_dn)
        .build()?;
    let rotator = Arc::new(Rotator::new(
        Arc::new(MemoryStore::new()),
        Arc::new(Sealer::new("demo", Key::generate()?)?),
        RotatorConfig::with_holder("ad_checkout"),
    ));
    let lib = Arc::new(Library::new(
        Arc::new(AdTarget::new(AdClient::new(config)?)),
        rotator,
        AdComplexity::new(20).build()?,
    ));
    let reaper = lib.spawn_reaper(Duration::from_millis(500));

    lib.create_set(
        "demo",
        &[AccountRef::sam("svc-app5"), AccountRef::sam("svc-app6")],
        &SetOptions::new("1h", "4h")?,
    )
    .await?;
    show(
        &lib,
        "set created (each account rotated before it can be lent)",
    )
    .await?;

    let alice = lib.check_out("demo", "alice", None).await?;
    let bob = lib
        .check_out("demo", "bob", Some(Duration::from_secs(2)))
        .await?;
    println!(
        "alice has {} (lease {}), bob has {} for 2 s",
        alice.account, alice.lease_id, bob.account
    );
    match lib.check_out("demo", "carol", None).await {
        Err(e) if e.kind() == ErrorKind::NoAccountsAvailable => println!("carol: {e}"),
        Err(e) => return Err(e.into()),
        Ok(c) => println!("carol unexpectedly got {}", c.account),
    }
    show(&lib, "after three check-out requests").await?;

    let done = lib.check_in("demo", "alice", &[]).await?;
    println!(
        "alice checked in {} (rotated, available again: {})",
        done[0].account, done[0].available
    );
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    show(
        &lib,
        "after bob's lease expired (the reaper checked it in and rotated it)",
    )
    .await?;
    reaper.abort();
    Ok(())
}
