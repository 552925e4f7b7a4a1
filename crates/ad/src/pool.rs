//! Pooled LDAP connections (deadpool), one pool per domain controller and purpose.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{DcUrl, Transport};
use crate::error::{Error, ErrorKind, Result, from_ldap3};

/// The bind account's credentials; binds fall back to the last password while a
/// new one propagates (after a root rotation).
pub(crate) struct BindCreds {
    pub(crate) dn: String,
    passwords: RwLock<(SecretString, Option<SecretString>)>,
}

impl BindCreds {
    pub(crate) fn new(dn: String, password: SecretString) -> Self {
        Self {
            dn,
            passwords: RwLock::new((password, None)),
        }
    }

    fn get(&self) -> (SecretString, Option<SecretString>) {
        match self.passwords.read() {
            Ok(g) => (g.0.clone(), g.1.clone()),
            Err(p) => {
                let g = p.into_inner();
                (g.0.clone(), g.1.clone())
            }
        }
    }

    /// Makes `new` the current password, the previous current one the fallback.
    pub(crate) fn rotate(&self, new: SecretString) {
        let mut g = match self.passwords.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let old = std::mem::replace(&mut g.0, new);
        g.1 = Some(old);
    }

    /// The current bind password.
    pub(crate) fn current(&self) -> SecretString {
        self.get().0
    }
}

/// One pooled connection.
pub(crate) struct Conn {
    pub(crate) ldap: Ldap,
}

/// Creates and checks connections to one domain controller. With `bind`, every new
/// connection binds as the bind account; without, users bind per use.
pub(crate) struct ConnManager {
    pub(crate) dc: DcUrl,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) bind: Option<Arc<BindCreds>>,
}

/// A connection idle longer than this is probed (a root DSE read) before reuse.
const PROBE_AFTER: Duration = Duration::from_secs(30);

impl ConnManager {
    pub(crate) async fn open(&self) -> Result<Ldap> {
        let context = "connecting to the domain controller";
        let timed_out = || Error::new(ErrorKind::Timeout, context);
        let started = tokio::time::Instant::now();
        // Our own TCP connect, so that Nagle's algorithm is off: an LDAP request is
        // one small write answered by the server, and delayed ACKs must not hold it.
        let tcp = tokio::net::TcpStream::connect((self.dc.host(), self.dc.port()));
        let tcp = tokio::time::timeout(self.connect_timeout, tcp)
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| Error::new(ErrorKind::Connect, context).with_diagnostic(e.to_string()))?;
        let std = tcp
            .set_nodelay(true)
            .and_then(|()| tcp.into_std())
            .map_err(|e| Error::new(ErrorKind::Connect, context).with_diagnostic(e.to_string()))?;
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.connect_timeout)
            .set_config(self.tls.clone())
            .set_std_stream(ldap3::StdStream::Tcp(std));
        if self.dc.transport() == Transport::StartTls {
            settings = settings.set_starttls(true);
        }
        let connect = LdapConnAsync::with_settings(settings, self.dc.url());
        let left = self.connect_timeout.saturating_sub(started.elapsed());
        let (conn, ldap) = match tokio::time::timeout(left, connect).await {
            Ok(r) => r.map_err(|e| from_ldap3(e, "connecting to the domain controller"))?,
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "connecting to the domain controller",
                ));
            }
        };
        let url = self.dc.url().to_owned();
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(dc = %url, error = %e, "LDAP connection ended");
            }
        });
        metrics::counter!("credwheel_ad_connections_opened_total").increment(1);
        Ok(ldap)
    }

    async fn bind_admin(&self, ldap: &mut Ldap, creds: &BindCreds) -> Result<()> {
        let (current, last) = creds.get();
        match simple_bind(ldap, &creds.dn, &current, self.request_timeout).await {
            Err(e) if e.kind() == ErrorKind::InvalidCredentials => {
                let Some(last) = last else { return Err(e) };
                tracing::info!("bind with the current bind password refused; trying the last one");
                simple_bind(ldap, &creds.dn, &last, self.request_timeout)
                    .await
                    .map_err(|_| e)
            }
            other => other,
        }
    }
}

/// A simple bind. An empty password is refused here: LDAP treats it as an
/// unauthenticated bind that "succeeds" without checking anything.
pub(crate) async fn simple_bind(
    ldap: &mut Ldap,
    dn: &str,
    password: &SecretString,
    timeout: Duration,
) -> Result<()> {
    if password.expose_secret().is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidCredentials,
            "an empty password is never sent (LDAP would treat it as an anonymous bind)",
        ));
    }
    ldap.with_timeout(timeout);
    let res = ldap
        .simple_bind(dn, password.expose_secret())
        .await
        .map_err(|e| from_ldap3(e, "binding"))?;
    if res.rc == 0 {
        Ok(())
    } else {
        Err(Error::from_ldap_result(res.rc, &res.text, "binding"))
    }
}

impl managed::Manager for ConnManager {
    type Type = Conn;
    type Error = Error;

    async fn create(&self) -> Result<Conn> {
        if self.bind.is_some() && !self.dc.transport().is_encrypted() {
            tracing::warn!(dc = %self.dc, "binding over an unencrypted connection (danger_ option)");
        }
        let mut ldap = self.open().await?;
        if let Some(creds) = &self.bind {
            self.bind_admin(&mut ldap, creds)
                .await
                .map_err(|e| e.with_context("binding as the bind account"))?;
        }
        Ok(Conn { ldap })
    }

    async fn recycle(&self, conn: &mut Conn, metrics: &Metrics) -> RecycleResult<Error> {
        if conn.ldap.is_closed() {
            return Err(RecycleError::message("connection closed"));
        }
        if metrics.last_used() > PROBE_AFTER {
            conn.ldap.with_timeout(self.connect_timeout);
            // A root DSE read: every directory answers it (Samba lacks WhoAmI).
            match conn
                .ldap
                .search("", ldap3::Scope::Base, "(objectClass=*)", vec!["1.1"])
                .await
            {
                Ok(r) if r.1.rc == 0 => {}
                _ => return Err(RecycleError::message("connection failed a liveness probe")),
            }
        }
        Ok(())
    }
}

pub(crate) type Pool = managed::Pool<ConnManager>;
pub(crate) type Object = managed::Object<ConnManager>;

pub(crate) fn build_pool(manager: ConnManager, size: usize, wait: Duration) -> Result<Pool> {
    managed::Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(wait))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| Error::config(format!("connection pool: {e}")))
}

pub(crate) fn pool_error(e: managed::PoolError<Error>) -> Error {
    match e {
        managed::PoolError::Backend(e) => e,
        managed::PoolError::Timeout(_) => Error::new(
            ErrorKind::Timeout,
            "waiting for a pooled connection to the domain controller",
        ),
        managed::PoolError::Closed => {
            Error::new(ErrorKind::Connect, "the connection pool is closed")
        }
        other => Error::new(ErrorKind::Other, "connection pool").with_diagnostic(other.to_string()),
    }
}
