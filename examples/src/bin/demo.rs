//! The main job, end to end against the lab: shows each real server answering the
//! way credwheel needs it (verified LDAPS bind and the service accounts in AD, an
//! encrypted SMB 3 session with the SAMR pipe on the Windows stand-in, a durable
//! PostgreSQL). Later issues make it rotate real passwords.
//!
//! Run it with `bash tools/lab run -- cargo run -p credwheel-examples --bin demo`.

#![allow(clippy::print_stdout)] // a demo prints what it does; it never prints a secret.

use std::error::Error;
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use secrecy::ExposeSecret;

type Res<T> = Result<T, Box<dyn Error>>;

async fn ad(lab: &credwheel_testlab::AdLab) -> Res<()> {
    let settings = LdapConnSettings::new()
        .set_conn_timeout(Duration::from_secs(10))
        .set_config(lab.rustls_config());
    let t = Instant::now();
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &lab.url).await?;
    ldap3::drive!(conn);
    ldap.simple_bind(&lab.delegate_dn, lab.delegate_password.expose_secret())
        .await?
        .success()?;
    println!(
        "AD    {}: verified TLS, bound as the delegated account in {:.1} ms",
        lab.url,
        t.elapsed().as_secs_f64() * 1e3
    );
    let (entries, _) = ldap
        .search(
            &lab.service_ou,
            Scope::OneLevel,
            "(objectClass=user)",
            vec!["sAMAccountName", "pwdLastSet"],
        )
        .await?
        .success()?;
    for e in entries {
        let e = SearchEntry::construct(e);
        let name = e.attrs.get("sAMAccountName").and_then(|v| v.first());
        println!("      {:<10} {}", name.map_or("?", String::as_str), e.dn);
    }
    ldap.unbind().await?;
    Ok(())
}

async fn sam(lab: &credwheel_testlab::SamLab) -> Res<()> {
    let mut config = smb::ClientConfig {
        dfs: false,
        ..Default::default()
    };
    config.connection.port = Some(lab.port);
    config.connection.min_dialect = Some(smb::Dialect::Smb0311);
    config.connection.encryption_mode = smb::connection::EncryptionMode::Required;
    config.connection.smb2_only_negotiate = true;
    let client = smb::Client::new(config);
    let t = Instant::now();
    client
        .ipc_connect(
            &lab.host,
            &lab.admin,
            lab.admin_password.expose_secret().to_owned(),
        )
        .await?;
    let _pipe = client.open_pipe(&lab.host, "samr").await?;
    let conn = client.get_connection(&lab.host).await?;
    let cipher = conn
        .conn_info()
        .and_then(|i| i.negotiation.encryption_cipher);
    println!(
        "SMB   {}:{} ({}): SMB 3.1.1 session as {}, cipher {:?}, \\PIPE\\samr open in {:.1} ms",
        lab.host,
        lab.port,
        lab.netbios_name,
        lab.admin,
        cipher,
        t.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "      local accounts to rotate: {}",
        lab.accounts.join(", ")
    );
    client.close().await?;
    Ok(())
}

async fn pg(lab: &credwheel_testlab::PgLab) -> Res<()> {
    let (client, conn) =
        tokio_postgres::connect(lab.url.expose_secret(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT version(), current_setting('synchronous_commit')",
            &[],
        )
        .await?;
    let version: String = row.get(0);
    let sync: String = row.get(1);
    println!(
        "PG    {}:{}/{}: {} (synchronous_commit={sync})",
        lab.host,
        lab.port,
        lab.dbname,
        version.split(" on ").next().unwrap_or(&version)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Res<()> {
    let (Some(a), Some(s), Some(p)) = (
        credwheel_testlab::ad(),
        credwheel_testlab::sam(),
        credwheel_testlab::pg(),
    ) else {
        return Err("the lab is not configured: run `bash tools/lab run -- cargo run -p credwheel-examples --bin demo`".into());
    };
    ad(&a).await?;
    sam(&s).await?;
    pg(&p).await?;
    Ok(())
}
