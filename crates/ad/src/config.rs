//! Connection configuration: [`Config`] and its [`Builder`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use credwheel_dn::Dn;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use secrecy::SecretString;

use crate::error::{Error, Result};

/// Lowest TLS version to accept. rustls implements TLS 1.2 and 1.3 only, so older
/// versions can never be negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 (default; what current Windows domain controllers offer).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// How a connection to one domain controller is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://` upgraded with the StartTLS extended operation before anything else.
    StartTls,
    /// `ldap://` without encryption. Only with
    /// [`Builder::danger_allow_plaintext_ldap`]; password operations are refused.
    Plaintext,
}

impl Transport {
    /// Whether traffic is encrypted.
    pub fn is_encrypted(self) -> bool {
        !matches!(self, Self::Plaintext)
    }
}

/// One domain controller endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcUrl {
    url: String,
    transport: Transport,
    host: String,
    port: u16,
}

impl DcUrl {
    /// The URL as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How the connection is secured.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The host (without brackets for IPv6).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (636 for `ldaps://`, 389 for `ldap://` unless given).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for DcUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// Settings of an [`AdClient`](crate::AdClient). Build one with [`Config::builder`].
///
/// Defaults: TLS certificate verification on (against the given CA certificates,
/// or the system's roots when none are given), TLS 1.2 minimum, connect timeout
/// 30 s, request timeout 90 s (Vault's defaults), 8 pooled connections per domain
/// controller and pool, domain controller pinning for 15 minutes.
#[derive(Clone)]
pub struct Config {
    pub(crate) urls: Vec<DcUrl>,
    pub(crate) bind_dn: Dn,
    pub(crate) bind_password: SecretString,
    pub(crate) base_dn: Dn,
    pub(crate) domain: String,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) tls_verification: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) pool_size: usize,
    pub(crate) pin_ttl: Duration,
    pub(crate) unlock_after_rotation: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("urls", &self.urls)
            .field("bind_dn", &self.bind_dn.to_string())
            .field("base_dn", &self.base_dn.to_string())
            .field("domain", &self.domain)
            .field("tls_verification", &self.tls_verification)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("pool_size", &self.pool_size)
            .field("pin_ttl", &self.pin_ttl)
            .field("unlock_after_rotation", &self.unlock_after_rotation)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A builder.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The domain controllers, in failover order.
    pub fn urls(&self) -> &[DcUrl] {
        &self.urls
    }

    /// The bind account's DN.
    pub fn bind_dn(&self) -> &Dn {
        &self.bind_dn
    }

    /// The base DN of account searches.
    pub fn base_dn(&self) -> &Dn {
        &self.base_dn
    }

    /// The domain name used as the scope of [`TargetId`](credwheel_state::TargetId)s
    /// (from the base DN's `DC=` components unless set).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Whether server certificates are verified (false only after
    /// [`Builder::danger_disable_certificate_verification`]).
    pub fn verifies_certificates(&self) -> bool {
        self.tls_verification
    }
}

/// Builds a [`Config`].
///
/// ```
/// use credwheel_ad::{Config, TlsVersion};
/// use secrecy::SecretString;
/// let config = Config::builder()
///     .url("ldaps://dc1.example.com")
///     .url("ldaps://dc2.example.com:636")
///     .bind("CN=svc-rotator,OU=Service,DC=example,DC=com", SecretString::from("..."))
///     .base_dn("DC=example,DC=com")
///     .min_tls_version(TlsVersion::Tls12)
///     .build()?;
/// assert_eq!(config.domain(), "example.com");
/// assert_eq!(config.urls().len(), 2);
/// # Ok::<(), credwheel_ad::Error>(())
/// ```
#[derive(Default)]
#[must_use]
pub struct Builder {
    urls: Vec<String>,
    bind_dn: Option<String>,
    bind_password: Option<SecretString>,
    base_dn: Option<String>,
    domain: Option<String>,
    ca_pems: Vec<Vec<u8>>,
    ca_errors: Vec<String>,
    client_cert: Option<(Vec<u8>, SecretString)>,
    min_tls: TlsVersion,
    no_verify: bool,
    allow_plaintext: bool,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    pool_size: Option<usize>,
    pin_ttl: Option<Duration>,
    unlock_after_rotation: bool,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("urls", &self.urls)
            .field("bind_dn", &self.bind_dn)
            .field("base_dn", &self.base_dn)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Adds a domain controller URL: `ldaps://host[:port]` or `ldap://host[:port]`
    /// (StartTLS). URLs are tried in the order added.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.urls.push(url.into());
        self
    }

    /// Adds several URLs, or a comma-separated list as Vault takes it.
    pub fn urls<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for u in urls {
            for part in u.as_ref().split(',') {
                let part = part.trim();
                if !part.is_empty() {
                    self.urls.push(part.to_owned());
                }
            }
        }
        self
    }

    /// The bind (administrative) account's DN and password.
    pub fn bind(mut self, dn: impl Into<String>, password: SecretString) -> Self {
        self.bind_dn = Some(dn.into());
        self.bind_password = Some(password);
        self
    }

    /// Where account searches start (e.g. `DC=example,DC=com`).
    pub fn base_dn(mut self, dn: impl Into<String>) -> Self {
        self.base_dn = Some(dn.into());
        self
    }

    /// The domain name for target ids (default: the base DN's `DC=` parts joined
    /// with dots).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Trusts the CA certificates in this PEM (one or more certificates). When any
    /// CA is given, only the given CAs are trusted; otherwise the system's roots.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pems.push(pem.into());
        self
    }

    /// Like [`ca_pem`](Self::ca_pem), reading a file.
    pub fn ca_pem_file(mut self, path: impl AsRef<Path>) -> Self {
        match std::fs::read(path.as_ref()) {
            Ok(pem) => self.ca_pems.push(pem),
            Err(e) => self
                .ca_errors
                .push(format!("reading CA file {}: {e}", path.as_ref().display())),
        }
        self
    }

    /// A client certificate (PEM chain) and its private key (PEM) for TLS client
    /// authentication.
    pub fn client_cert(mut self, chain_pem: impl Into<Vec<u8>>, key_pem: SecretString) -> Self {
        self.client_cert = Some((chain_pem.into(), key_pem));
        self
    }

    /// The lowest TLS version to negotiate (default TLS 1.2).
    pub fn min_tls_version(mut self, v: TlsVersion) -> Self {
        self.min_tls = v;
        self
    }

    /// Connect timeout (TCP and TLS handshake, default 30 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = Some(t);
        self
    }

    /// Timeout of each LDAP request (default 90 s).
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = Some(t);
        self
    }

    /// Most pooled connections per domain controller and kind (administrative,
    /// account binds); default 8.
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = Some(n);
        self
    }

    /// How long the steps for one account stay on the domain controller that took
    /// its last password write (default 15 minutes). See
    /// [`AdTarget`](crate::AdTarget).
    pub fn dc_pin_ttl(mut self, t: Duration) -> Self {
        self.pin_ttl = Some(t);
        self
    }

    /// Clear `lockoutTime` after each successful rotation (default off).
    pub fn unlock_after_rotation(mut self, on: bool) -> Self {
        self.unlock_after_rotation = on;
        self
    }

    /// **Dangerous:** accept any server certificate. Anyone on the network path can
    /// then impersonate the domain controller and read every password this crate
    /// sets. Only for throwaway test directories; never in production. A
    /// `tracing` warning is logged for every connection made this way.
    pub fn danger_disable_certificate_verification(mut self) -> Self {
        self.no_verify = true;
        self
    }

    /// **Dangerous:** allow `ldap://` URLs *without* StartTLS. The bind password
    /// then crosses the network in clear text (Active Directory and Samba normally
    /// refuse such binds). Password operations over such a connection are always
    /// refused by this crate before anything is sent, whatever this setting. Only
    /// for diagnosing connectivity.
    pub fn danger_allow_plaintext_ldap(mut self) -> Self {
        self.allow_plaintext = true;
        self
    }

    /// Validates everything and builds the configuration.
    pub fn build(self) -> Result<Config> {
        if self.urls.is_empty() {
            return Err(Error::config(
                "at least one domain controller URL is required",
            ));
        }
        let mut urls = Vec::with_capacity(self.urls.len());
        for u in &self.urls {
            urls.push(parse_url(u, self.allow_plaintext)?);
        }
        let bind_dn = self
            .bind_dn
            .as_deref()
            .ok_or_else(|| Error::config("a bind DN and password are required"))?;
        let bind_dn =
            Dn::parse(bind_dn).map_err(|e| Error::config(format!("invalid bind DN: {e}")))?;
        let bind_password = self
            .bind_password
            .ok_or_else(|| Error::config("a bind DN and password are required"))?;
        let base_dn = self
            .base_dn
            .as_deref()
            .ok_or_else(|| Error::config("a base DN is required"))?;
        let base_dn =
            Dn::parse(base_dn).map_err(|e| Error::config(format!("invalid base DN: {e}")))?;
        let domain = match self.domain {
            Some(d) if !d.is_empty() => d,
            _ => domain_of(&base_dn).ok_or_else(|| {
                Error::config("the base DN has no DC= components: set the domain explicitly")
            })?,
        };
        if let Some(e) = self.ca_errors.first() {
            return Err(Error::config(e.clone()));
        }
        let tls = tls_config(
            &self.ca_pems,
            self.client_cert.as_ref(),
            self.min_tls,
            self.no_verify,
        )?;
        let pool_size = self.pool_size.unwrap_or(8);
        if pool_size == 0 {
            return Err(Error::config("the pool size must be at least 1"));
        }
        Ok(Config {
            urls,
            bind_dn,
            bind_password,
            base_dn,
            domain,
            tls,
            tls_verification: !self.no_verify,
            connect_timeout: self.connect_timeout.unwrap_or(Duration::from_secs(30)),
            request_timeout: self.request_timeout.unwrap_or(Duration::from_secs(90)),
            pool_size,
            pin_ttl: self.pin_ttl.unwrap_or(Duration::from_secs(15 * 60)),
            unlock_after_rotation: self.unlock_after_rotation,
        })
    }
}

fn parse_url(u: &str, allow_plaintext: bool) -> Result<DcUrl> {
    let lower = u.to_ascii_lowercase();
    let (transport, rest) = if let Some(rest) = lower.strip_prefix("ldaps://") {
        (Transport::Ldaps, rest)
    } else if let Some(rest) = lower.strip_prefix("ldap://") {
        (
            if allow_plaintext {
                Transport::Plaintext
            } else {
                Transport::StartTls
            },
            rest,
        )
    } else {
        return Err(Error::config(format!(
            "URL {u:?}: only ldaps:// and ldap:// (StartTLS) are supported"
        )));
    };
    let scheme_len = u.len() - rest.len();
    let host = u[scheme_len..].trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '@', ' ']) {
        return Err(Error::config(format!(
            "URL {u:?}: expected scheme://host[:port] with nothing after the host"
        )));
    }
    let default_port = if transport == Transport::Ldaps {
        636
    } else {
        389
    };
    let bad_port = || Error::config(format!("URL {u:?}: invalid port"));
    let (h, port) = if let Some(rest) = host.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| Error::config(format!("URL {u:?}: unterminated IPv6 address")))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad_port())?,
            None if after.is_empty() => default_port,
            None => return Err(bad_port()),
        };
        (h.to_owned(), port)
    } else {
        match host.split_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad_port())?),
            None => (host.to_owned(), default_port),
        }
    };
    if h.is_empty() || port == 0 {
        return Err(bad_port());
    }
    Ok(DcUrl {
        url: format!("{}{host}", &lower[..scheme_len]),
        transport,
        host: h,
        port,
    })
}

fn domain_of(base: &Dn) -> Option<String> {
    let mut parts = Vec::new();
    for rdn in base.rdns() {
        if let Some(v) = rdn.value_of("DC").and_then(|v| v.as_text()) {
            parts.push(v.to_ascii_lowercase());
        }
    }
    (!parts.is_empty()).then(|| parts.join("."))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(
    ca_pems: &[Vec<u8>],
    client_cert: Option<&(Vec<u8>, SecretString)>,
    min: TlsVersion,
    no_verify: bool,
) -> Result<Arc<rustls::ClientConfig>> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match min {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| Error::config(format!("TLS versions: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    if ca_pems.is_empty() {
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // Unparseable system roots are skipped, as browsers do.
            let _ = roots.add(cert);
        }
    } else {
        for pem in ca_pems {
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| Error::config(format!("CA certificate PEM: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::config(format!("CA certificate: {e}")))?;
                n += 1;
            }
            if n == 0 {
                return Err(Error::config("CA certificate PEM holds no certificate"));
            }
        }
    }
    let builder = builder.with_root_certificates(roots);
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            use secrecy::ExposeSecret;
            let chain = CertificateDer::pem_slice_iter(chain)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::config(format!("client certificate PEM: {e}")))?;
            if chain.is_empty() {
                return Err(Error::config("client certificate PEM holds no certificate"));
            }
            let key = PrivateKeyDer::from_pem_slice(key.expose_secret().as_bytes())
                .map_err(|_| Error::config("client key PEM: no usable private key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::config(format!("client certificate: {e}")))?
        }
    };
    if no_verify {
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(NoVerification(provider())));
    }
    Ok(Arc::new(config))
}

/// Accepts any certificate but still checks handshake signatures (so the peer at
/// least holds the key of the certificate it sent).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        tracing::warn!("TLS certificate verification is disabled (danger_ option)");
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Builder {
        Config::builder()
            .bind("CN=a,DC=example,DC=com", SecretString::from("x"))
            .base_dn("DC=example,DC=com")
    }

    #[test]
    fn urls_and_transports() {
        let c = base()
            .urls(["ldaps://dc1:636, ldap://dc2"])
            .build()
            .unwrap();
        assert_eq!(c.urls()[0].transport(), Transport::Ldaps);
        assert_eq!(c.urls()[1].transport(), Transport::StartTls);
        assert_eq!(c.urls()[1].url(), "ldap://dc2");
        assert_eq!((c.urls()[0].host(), c.urls()[0].port()), ("dc1", 636));
        assert_eq!(c.urls()[1].port(), 389);
        let c = base().url("ldaps://[::1]:1636").build().unwrap();
        assert_eq!((c.urls()[0].host(), c.urls()[0].port()), ("::1", 1636));
        assert!(base().url("ldaps://dc1:x").build().is_err());
        assert!(base().url("ldaps://[::1").build().is_err());
        assert_eq!(c.domain(), "example.com");
        let c = base()
            .url("LDAP://dc2/")
            .danger_allow_plaintext_ldap()
            .build()
            .unwrap();
        assert_eq!(c.urls()[0].transport(), Transport::Plaintext);
        assert_eq!(c.urls()[0].url(), "ldap://dc2");
    }

    #[test]
    fn bad_config_is_an_error() {
        assert!(base().build().is_err());
        assert!(base().url("http://dc1").build().is_err());
        assert!(base().url("ldaps://dc1/dc=x?cn").build().is_err());
        assert!(
            base()
                .url("ldaps://dc1")
                .ca_pem("not a pem")
                .build()
                .is_err()
        );
        assert!(
            base()
                .url("ldaps://dc1")
                .ca_pem_file("/nonexistent/ca.pem")
                .build()
                .is_err()
        );
        assert!(base().url("ldaps://dc1").pool_size(0).build().is_err());
        assert!(
            Config::builder()
                .url("ldaps://dc1")
                .bind("not a dn", SecretString::from("x"))
                .base_dn("DC=example,DC=com")
                .build()
                .is_err()
        );
    }

    #[test]
    fn debug_has_no_password() {
        let c = Config::builder()
            .url("ldaps://dc1")
            .bind(
                "CN=a,DC=example,DC=com",
                SecretString::from("Sup3r-Secret!"),
            )
            .base_dn("DC=example,DC=com")
            .build()
            .unwrap();
        assert!(!format!("{c:?}").contains("Sup3r"));
    }
}
