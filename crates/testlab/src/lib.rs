//! Test support (never published): finds the lab started by `tools/lab` through the
//! environment variables that `tools/lab env` prints.
//!
//! Each accessor returns `None` (and says so on stderr) when its variables are not
//! set, so `cargo test` on a machine without the lab skips live tests. When the `CI`
//! environment variable is set, a missing lab is a failure: the accessor panics with a
//! message saying how to start the lab. Tests use it like this:
//!
//! ```no_run
//! let Some(ad) = credwheel_testlab::ad() else { return };
//! assert!(ad.url.starts_with("ldaps://"));
//! ```

#![allow(clippy::panic)] // panicking on a missing lab in CI is this crate's purpose.
#![allow(clippy::print_stderr)] // telling the test log that a live test skips is too.

use std::path::PathBuf;
use std::sync::Arc;

pub mod witness;
pub use witness::WitnessError;

use secrecy::SecretString;

/// The Samba AD domain controller of the lab (realm `EXAMPLE.COM`).
#[derive(Debug, Clone)]
pub struct AdLab {
    /// `ldaps://127.0.0.1:636`.
    pub url: String,
    /// `ldap://127.0.0.1:389`, for StartTLS.
    pub starttls_url: String,
    /// PEM file of the CA that signed the DC's certificate (SAN 127.0.0.1, ::1, localhost).
    pub ca_pem: PathBuf,
    /// `DC=example,DC=com`.
    pub base_dn: String,
    /// The OU holding the seeded service accounts.
    pub service_ou: String,
    /// Administrator's DN.
    pub admin_dn: String,
    /// Administrator's password.
    pub admin_password: SecretString,
    /// The delegated bind account that may reset passwords in `service_ou` only.
    pub delegate_dn: String,
    /// Its password.
    pub delegate_password: SecretString,
    /// sAMAccountNames of the seeded service accounts in `service_ou`.
    pub accounts: Vec<String>,
    /// The password every seeded account gets from `tools/lab up`.
    pub account_password: SecretString,
    /// The CN of the seeded account whose name needs DN escaping (`Smith, John #2`).
    pub escaped_cn: String,
    /// That account's sAMAccountName.
    pub escaped_sam: String,
    /// The lab's Samba config of the DC (for `samba-tool -s`).
    pub smb_conf: PathBuf,
}

impl AdLab {
    /// A rustls client configuration that trusts only the lab CA (ring provider,
    /// TLS 1.2 and 1.3), for `ldap3::LdapConnSettings::set_config`. Panics when the
    /// CA file cannot be read or parsed: a broken lab is a test failure.
    pub fn rustls_config(&self) -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca_pem)
            .unwrap_or_else(|e| panic!("lab CA {}: {e}", self.ca_pem.display()))
        {
            let cert = cert.unwrap_or_else(|e| panic!("lab CA {}: {e}", self.ca_pem.display()));
            roots
                .add(cert)
                .unwrap_or_else(|e| panic!("lab CA {}: {e}", self.ca_pem.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|e| panic!("rustls protocol versions: {e}"))
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// The standalone Samba server standing in for a Windows host with a local SAM.
#[derive(Debug, Clone)]
pub struct SamLab {
    /// `127.0.0.1`.
    pub host: String,
    /// SMB port (4445).
    pub port: u16,
    /// NetBIOS name of the host (`WINHOST`).
    pub netbios_name: String,
    /// The local administrator (member of BUILTIN\Administrators).
    pub admin: String,
    /// Its password.
    pub admin_password: SecretString,
    /// Local accounts to rotate.
    pub accounts: Vec<String>,
    /// The password every account in `accounts` gets from `tools/lab up`.
    pub account_password: SecretString,
    /// The lab's smb.conf of the standalone server.
    pub smb_conf: PathBuf,
}

/// The lab's PostgreSQL server.
#[derive(Debug, Clone)]
pub struct PgLab {
    /// A `postgres://` URL with the (throwaway) password in it.
    pub url: SecretString,
    /// Host (`127.0.0.1`).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Role name.
    pub user: String,
    /// Role password.
    pub password: SecretString,
    /// Database name.
    pub dbname: String,
}

/// The lab's second PostgreSQL cluster, which accepts TLS connections only, with a
/// certificate from the lab CA (SAN 127.0.0.1, ::1, localhost).
#[derive(Debug, Clone)]
pub struct PgTlsLab {
    /// A `postgres://` URL (no `sslmode`) with the (throwaway) password in it.
    pub url: SecretString,
    /// PEM file of the lab CA.
    pub ca_pem: PathBuf,
    /// Its port on 127.0.0.1 (role, password and database as [`PgLab`]'s).
    pub port: u16,
}

/// Whether we run under CI, where a missing lab is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn missing(what: &str, var: &str) {
    let msg = format!(
        "lab {what} not configured ({var} is not set); start it with \
         `bash tools/lab run -- cargo test --workspace` or `eval \"$(bash tools/lab env)\"`"
    );
    if in_ci() {
        panic!("{msg} (CI is set, so a missing lab is a failure)");
    }
    eprintln!("skipping: {msg}");
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn req(name: &str) -> String {
    var(name).unwrap_or_else(|| panic!("lab variable {name} is not set"))
}

fn secret(name: &str) -> SecretString {
    SecretString::from(req(name))
}

fn list(name: &str) -> Vec<String> {
    req(name)
        .split(';')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn port(name: &str) -> u16 {
    req(name)
        .parse()
        .unwrap_or_else(|_| panic!("lab variable {name} is not a port"))
}

/// The AD domain controller, or `None` when the lab is not configured (outside CI).
pub fn ad() -> Option<AdLab> {
    if var("CREDWHEEL_AD_URL").is_none() {
        missing("AD DC", "CREDWHEEL_AD_URL");
        return None;
    }
    Some(AdLab {
        url: req("CREDWHEEL_AD_URL"),
        starttls_url: req("CREDWHEEL_AD_STARTTLS_URL"),
        ca_pem: req("CREDWHEEL_AD_CA").into(),
        base_dn: req("CREDWHEEL_AD_BASE_DN"),
        service_ou: req("CREDWHEEL_AD_SERVICE_OU"),
        admin_dn: req("CREDWHEEL_AD_ADMIN_DN"),
        admin_password: secret("CREDWHEEL_AD_ADMIN_PASSWORD"),
        delegate_dn: req("CREDWHEEL_AD_DELEGATE_DN"),
        delegate_password: secret("CREDWHEEL_AD_DELEGATE_PASSWORD"),
        accounts: list("CREDWHEEL_AD_ACCOUNTS"),
        account_password: secret("CREDWHEEL_AD_ACCOUNT_PASSWORD"),
        escaped_cn: req("CREDWHEEL_AD_ESCAPED_CN"),
        escaped_sam: req("CREDWHEEL_AD_ESCAPED_SAM"),
        smb_conf: req("CREDWHEEL_AD_SMB_CONF").into(),
    })
}

/// The standalone SMB host, or `None` when the lab is not configured (outside CI).
pub fn sam() -> Option<SamLab> {
    if var("CREDWHEEL_SAM_HOST").is_none() {
        missing("standalone SMB host", "CREDWHEEL_SAM_HOST");
        return None;
    }
    Some(SamLab {
        host: req("CREDWHEEL_SAM_HOST"),
        port: port("CREDWHEEL_SAM_PORT"),
        netbios_name: req("CREDWHEEL_SAM_NETBIOS_NAME"),
        admin: req("CREDWHEEL_SAM_ADMIN"),
        admin_password: secret("CREDWHEEL_SAM_ADMIN_PASSWORD"),
        accounts: list("CREDWHEEL_SAM_ACCOUNTS"),
        account_password: secret("CREDWHEEL_SAM_ACCOUNT_PASSWORD"),
        smb_conf: req("CREDWHEEL_SAM_SMB_CONF").into(),
    })
}

/// The TLS-only PostgreSQL cluster, or `None` when the lab is not configured
/// (outside CI).
pub fn pg_tls() -> Option<PgTlsLab> {
    if var("CREDWHEEL_PG_TLS_URL").is_none() {
        missing("PostgreSQL (TLS)", "CREDWHEEL_PG_TLS_URL");
        return None;
    }
    Some(PgTlsLab {
        url: secret("CREDWHEEL_PG_TLS_URL"),
        ca_pem: req("CREDWHEEL_PG_TLS_CA").into(),
        port: port("CREDWHEEL_PG_TLS_PORT"),
    })
}

/// PostgreSQL, or `None` when the lab is not configured (outside CI).
pub fn pg() -> Option<PgLab> {
    if var("CREDWHEEL_PG_URL").is_none() {
        missing("PostgreSQL", "CREDWHEEL_PG_URL");
        return None;
    }
    Some(PgLab {
        url: secret("CREDWHEEL_PG_URL"),
        host: req("CREDWHEEL_PG_HOST"),
        port: port("CREDWHEEL_PG_PORT"),
        user: req("CREDWHEEL_PG_USER"),
        password: secret("CREDWHEEL_PG_PASSWORD"),
        dbname: req("CREDWHEEL_PG_DB"),
    })
}
