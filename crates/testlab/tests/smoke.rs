//! Smoke tests proving the lab is made of real servers: LDAPS with a verified CA (and a
//! refused handshake without it), an encrypted SMB 3 session to the standalone host, a
//! PostgreSQL round trip. With `CI` set, a missing lab fails these tests.

#![allow(clippy::expect_used)] // test helpers outside #[test] fns fail loudly by design.

use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use secrecy::ExposeSecret;

fn tls_with_lab_ca(ad: &credwheel_testlab::AdLab) -> std::sync::Arc<rustls::ClientConfig> {
    ad.rustls_config()
}

#[tokio::test]
async fn ldaps_bind_verifies_the_lab_ca() {
    let Some(ad) = credwheel_testlab::ad() else {
        return;
    };
    let settings = LdapConnSettings::new()
        .set_conn_timeout(Duration::from_secs(10))
        .set_config(tls_with_lab_ca(&ad));
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &ad.url)
        .await
        .expect("LDAPS connection with the lab CA");
    ldap3::drive!(conn);
    let res = ldap
        .simple_bind(&ad.admin_dn, ad.admin_password.expose_secret())
        .await
        .expect("bind request");
    assert_eq!(res.rc, 0, "Administrator bind: {}", res.text);

    // The seeded service accounts really exist in the service OU.
    let (entries, _) = ldap
        .search(
            &ad.service_ou,
            Scope::OneLevel,
            "(objectClass=user)",
            vec!["sAMAccountName"],
        )
        .await
        .expect("search")
        .success()
        .expect("search result");
    let names: Vec<String> = entries
        .into_iter()
        .filter_map(|e| {
            SearchEntry::construct(e)
                .attrs
                .get("sAMAccountName")
                .and_then(|v| v.first().cloned())
        })
        .collect();
    for account in ad.accounts.iter().chain([&ad.escaped_sam]) {
        assert!(names.contains(account), "{account} missing from {names:?}");
    }

    // A wrong password is refused (rc 49, invalidCredentials).
    let res = ldap
        .simple_bind(&ad.admin_dn, "not-the-password")
        .await
        .expect("bind request");
    assert_eq!(res.rc, 49);
    ldap.unbind().await.expect("unbind");
}

#[tokio::test]
async fn ldaps_without_the_lab_ca_is_refused() {
    let Some(ad) = credwheel_testlab::ad() else {
        return;
    };
    // The system trust store does not know the lab CA: the handshake must fail.
    let settings = LdapConnSettings::new().set_conn_timeout(Duration::from_secs(10));
    let err = match LdapConnAsync::with_settings(settings, &ad.url).await {
        Ok(_) => panic!("TLS to the lab DC succeeded without trusting the lab CA"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("certificate verify failed") || err.contains("certificate"),
        "unexpected error: {err}"
    );
}

#[tokio::test]
async fn starttls_verifies_and_plain_ldap_bind_is_refused() {
    let Some(ad) = credwheel_testlab::ad() else {
        return;
    };
    // StartTLS on 389 with the lab CA, addressed by name: the SAN covers localhost.
    let url = ad.starttls_url.replace("127.0.0.1", "localhost");
    let settings = LdapConnSettings::new()
        .set_conn_timeout(Duration::from_secs(10))
        .set_starttls(true)
        .set_config(tls_with_lab_ca(&ad));
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &url)
        .await
        .expect("StartTLS with the lab CA");
    ldap3::drive!(conn);
    let res = ldap
        .simple_bind(&ad.admin_dn, ad.admin_password.expose_secret())
        .await
        .expect("bind request");
    assert_eq!(res.rc, 0, "bind over StartTLS: {}", res.text);
    ldap.unbind().await.expect("unbind");

    // Without TLS, the DC refuses simple binds (rc 8, strongerAuthRequired).
    let (conn, mut ldap) = LdapConnAsync::new(&ad.starttls_url)
        .await
        .expect("plain LDAP connection");
    ldap3::drive!(conn);
    let res = ldap
        .simple_bind(&ad.admin_dn, ad.admin_password.expose_secret())
        .await
        .expect("bind request");
    assert_eq!(res.rc, 8, "plain bind: {}", res.text);
}

fn smb_config(lab: &credwheel_testlab::SamLab) -> smb::ClientConfig {
    let mut config = smb::ClientConfig {
        dfs: false,
        ..Default::default()
    };
    config.connection.port = Some(lab.port);
    config.connection.min_dialect = Some(smb::Dialect::Smb0311);
    config.connection.max_dialect = Some(smb::Dialect::Smb0311);
    config.connection.encryption_mode = smb::connection::EncryptionMode::Required;
    config.connection.smb2_only_negotiate = true;
    config.connection.auth_methods.ntlm = true;
    config.connection.auth_methods.kerberos = false;
    config
}

#[tokio::test]
async fn smb3_encrypted_session_to_the_standalone_host() {
    let Some(lab) = credwheel_testlab::sam() else {
        return;
    };
    let client = smb::Client::new(smb_config(&lab));
    client
        .ipc_connect(
            &lab.host,
            &lab.admin,
            lab.admin_password.expose_secret().to_owned(),
        )
        .await
        .expect("encrypted SMB 3 session as the host's admin");
    let conn = client
        .get_connection(&lab.host)
        .await
        .expect("the connection");
    let info = conn.conn_info().expect("negotiated connection");
    assert_eq!(info.negotiation.dialect_rev, smb::Dialect::Smb0311);
    assert!(
        info.negotiation.encryption_cipher.is_some(),
        "no encryption cipher negotiated"
    );
    // The named pipe that SAMR runs over opens.
    let pipe = client
        .open_pipe(&lab.host, "samr")
        .await
        .expect("samr pipe");
    drop(pipe);
    client.close().await.expect("close");

    // A wrong password is refused.
    let client = smb::Client::new(smb_config(&lab));
    let res = client
        .ipc_connect(&lab.host, &lab.admin, "not-the-password".to_owned())
        .await;
    assert!(res.is_err(), "logon with a wrong password succeeded");
}

#[tokio::test]
async fn postgres_round_trip() {
    let Some(pg) = credwheel_testlab::pg() else {
        return;
    };
    let (client, conn) = tokio_postgres::connect(pg.url.expose_secret(), tokio_postgres::NoTls)
        .await
        .expect("connect to the lab PostgreSQL");
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TEMP TABLE smoke (id int PRIMARY KEY, v text NOT NULL);
             INSERT INTO smoke VALUES (1, 'credwheel');",
        )
        .await
        .expect("create and insert");
    let row = client
        .query_one("SELECT v FROM smoke WHERE id = $1", &[&1i32])
        .await
        .expect("select");
    assert_eq!(row.get::<_, String>(0), "credwheel");
    let sync: String = client
        .query_one("SHOW synchronous_commit", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(sync, "on", "the lab must commit durably");
}

/// Run by `missing_lab_fails_under_ci` in a child process with the lab variables removed.
#[test]
#[ignore = "run only as a child process of missing_lab_fails_under_ci"]
fn probe_missing_lab() {
    let _ = credwheel_testlab::ad();
    let _ = credwheel_testlab::sam();
    let _ = credwheel_testlab::pg();
}

fn run_probe(ci: Option<&str>) -> std::process::Output {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", "probe_missing_lab", "--ignored", "--nocapture"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("CREDWHEEL_") || k == "CI" {
            cmd.env_remove(k);
        }
    }
    if let Some(ci) = ci {
        cmd.env("CI", ci);
    }
    cmd.output().expect("run the probe")
}

#[test]
fn missing_lab_fails_under_ci_and_skips_otherwise() {
    let under_ci = run_probe(Some("true"));
    assert!(!under_ci.status.success(), "a missing lab passed under CI");
    let out = String::from_utf8_lossy(&under_ci.stdout).into_owned()
        + &String::from_utf8_lossy(&under_ci.stderr);
    assert!(
        out.contains("CI is set, so a missing lab is a failure"),
        "{out}"
    );

    let outside = run_probe(None);
    assert!(
        outside.status.success(),
        "outside CI a missing lab must skip"
    );
    let err = String::from_utf8_lossy(&outside.stderr);
    assert!(err.contains("skipping: lab AD DC not configured"), "{err}");
}

/// The outside witnesses tell a right password from a wrong one, on both servers.
#[test]
fn witnesses_tell_right_from_wrong() {
    use secrecy::ExposeSecret;
    if let Some(sam) = credwheel_testlab::sam() {
        let admin_pw = sam.admin_password.expose_secret();
        assert!(sam.accepts(&sam.admin, admin_pw).expect("smbclient"));
        assert!(
            !sam.accepts(&sam.admin, "Wr0ng-Password!")
                .expect("smbclient")
        );
    }
    if let Some(ad) = credwheel_testlab::ad() {
        let pw = ad.delegate_password.expose_secret();
        assert!(ad.accepts("cw-delegate", pw).expect("ldapsearch"));
        assert!(
            !ad.accepts("cw-delegate", "Wr0ng-Password!")
                .expect("ldapsearch")
        );
    }
}
