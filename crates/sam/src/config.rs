//! Settings of a [`SamTarget`](crate::SamTarget) and the account-name rules.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

use crate::error::Error;

/// How the SMB session is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TransportSecurity {
    /// SMB 3.x with encryption required (the default): the password buffers and
    /// every other SAMR call travel encrypted.
    #[default]
    EncryptionRequired,
    /// Encryption if the host offers it, otherwise signing only. Only for hosts that
    /// cannot encrypt; set it with [`SamConfigBuilder::danger_allow_signing_only`].
    SigningOnly,
}

/// Whose session makes the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LoginMethod {
    /// An administrator's session resets the account's password (the default).
    #[default]
    AsRoot,
    /// The account's own session: a password change (opnum 73, then 55); where the
    /// host refuses remote changes, a reset through that session if the account is an
    /// administrator.
    AsTarget,
}

/// Which encryption an admin reset may use for the password buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PasswordEncryption {
    /// AES (level 31); RC4 (levels 25, then 23) only when the host answers that it
    /// does not know level 31 (the default).
    #[default]
    AesWithRc4Fallback,
    /// AES only: a host that does not know level 31 is an error.
    AesOnly,
    /// RC4 level 25 only. For tests that must exercise the RC4 path.
    #[doc(hidden)]
    TestingRc4Only,
    /// RC4 level 23 only. For tests.
    #[doc(hidden)]
    TestingRc4Level23,
}

/// Which self-change call login-as-target starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
#[doc(hidden)]
pub enum ChangeCall {
    /// SamrUnicodeChangePasswordUser4 (AES), falling back to opnum 55.
    #[default]
    Aes73ThenRc4,
    /// Only SamrUnicodeChangePasswordUser2 (opnum 55). For tests.
    TestingOnly55,
    /// Only SamrUnicodeChangePasswordUser4 (opnum 73), no fallback. For tests.
    TestingOnly73,
}

/// Account-name rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NameRules {
    /// Windows SAM rules: 1 to 20 characters, none of `"/\[]:;|=,+*?<>@`, no control
    /// characters, not only dots and spaces.
    #[default]
    Windows,
    /// The Windows rules plus Infisical's stricter ones: ASCII letters, digits, `.`,
    /// `_` and `-` only, and none of Windows' reserved names (`administrator`, `guest`,
    /// `defaultaccount`, `wdagutilityaccount`, `krbtgt`, `system`).
    Strict,
}

/// A user name as given: `DOMAIN\user`, `.\user` or `user`.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountName {
    /// The domain part; `None` for `.\user` and plain names (the host's own SAM).
    pub(crate) domain: Option<String>,
    /// The user part.
    pub(crate) user: String,
}

impl AccountName {
    /// Parses `DOMAIN\user`, `.\user` or `user`.
    pub fn parse(name: &str) -> Result<Self, Error> {
        let (domain, user) = match name.split_once('\\') {
            Some((".", u)) | Some(("", u)) => (None, u),
            Some((d, u)) => (Some(d.to_owned()), u),
            None => (None, name),
        };
        if user.is_empty() || user.contains('\\') {
            return Err(Error::InvalidInput(format!(
                "{name:?} is not a user name (use DOMAIN\\user, .\\user or user)"
            )));
        }
        Ok(Self {
            domain,
            user: user.to_owned(),
        })
    }

    /// The user part.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The domain part, if one was given (other than `.`).
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }
}

impl fmt::Debug for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountName({self})")
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.domain {
            Some(d) => write!(f, "{d}\\{}", self.user),
            None => f.write_str(&self.user),
        }
    }
}

const FORBIDDEN: &str = "\"/\\[]:;|=,+*?<>@";
const RESERVED: [&str; 6] = [
    "administrator",
    "guest",
    "defaultaccount",
    "wdagutilityaccount",
    "krbtgt",
    "system",
];

/// Checks a local account name against `rules`.
pub fn check_user_name(name: &str, rules: NameRules) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::InvalidInput(format!("account name {name:?} {why}")));
    let n = name.chars().count();
    if n == 0 || n > 20 {
        return bad("must have 1 to 20 characters");
    }
    if name.chars().any(|c| c.is_control()) {
        return bad("contains a control character");
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN.contains(*c)) {
        return bad(&format!("contains the forbidden character {c:?}"));
    }
    if name.chars().all(|c| c == '.' || c == ' ') {
        return bad("consists only of dots and spaces");
    }
    if rules == NameRules::Strict {
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return bad("may only contain ASCII letters, digits, '.', '_' and '-' (strict mode)");
        }
        if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
            return bad("is a reserved Windows account name (strict mode)");
        }
    }
    Ok(())
}

/// Settings of a [`SamTarget`](crate::SamTarget). Build with [`SamConfig::builder`].
#[derive(Clone)]
pub struct SamConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) admin: Option<(AccountName, SecretString)>,
    pub(crate) method: LoginMethod,
    pub(crate) security: TransportSecurity,
    pub(crate) encryption: PasswordEncryption,
    pub(crate) change_call: ChangeCall,
    pub(crate) names: NameRules,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_idle_sessions: usize,
}

impl fmt::Debug for SamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SamConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("admin", &self.admin.as_ref().map(|(n, _)| n))
            .field("method", &self.method)
            .field("security", &self.security)
            .field("encryption", &self.encryption)
            .field("names", &self.names)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_idle_sessions", &self.max_idle_sessions)
            .finish_non_exhaustive()
    }
}

impl SamConfig {
    /// A builder for the host `host` (a name or an IP address).
    pub fn builder(host: impl Into<String>) -> SamConfigBuilder {
        SamConfigBuilder {
            config: SamConfig {
                host: host.into(),
                port: 445,
                admin: None,
                method: LoginMethod::AsRoot,
                security: TransportSecurity::EncryptionRequired,
                encryption: PasswordEncryption::AesWithRc4Fallback,
                change_call: ChangeCall::Aes73ThenRc4,
                names: NameRules::Windows,
                connect_timeout: Duration::from_secs(10),
                request_timeout: Duration::from_secs(20),
                max_idle_sessions: 2,
            },
            admin: None,
        }
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The SMB port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The login method.
    pub fn method(&self) -> LoginMethod {
        self.method
    }
}

/// Builds a [`SamConfig`].
#[must_use]
pub struct SamConfigBuilder {
    config: SamConfig,
    admin: Option<(String, SecretString)>,
}

impl fmt::Debug for SamConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SamConfigBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SamConfigBuilder {
    /// The SMB port (default 445).
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }

    /// The administrator used by [`LoginMethod::AsRoot`] and by reconcile:
    /// `DOMAIN\user`, `.\user` or `user`.
    pub fn admin(mut self, user: impl Into<String>, password: SecretString) -> Self {
        self.admin = Some((user.into(), password));
        self
    }

    /// The login method (default [`LoginMethod::AsRoot`]).
    pub fn method(mut self, method: LoginMethod) -> Self {
        self.config.method = method;
        self
    }

    /// Accept a session that is only signed when the host cannot encrypt. The
    /// password buffers are still encrypted with the session key, but every other
    /// SAMR call (names, policy) travels in the clear.
    pub fn danger_allow_signing_only(mut self) -> Self {
        self.config.security = TransportSecurity::SigningOnly;
        self
    }

    /// Which password-buffer encryption a reset may use (default AES with RC4
    /// fallback).
    pub fn password_encryption(mut self, e: PasswordEncryption) -> Self {
        self.config.encryption = e;
        self
    }

    /// Which change call login-as-target uses (tests).
    #[doc(hidden)]
    pub fn change_call(mut self, c: ChangeCall) -> Self {
        self.config.change_call = c;
        self
    }

    /// Account-name rules (default [`NameRules::Windows`]).
    pub fn name_rules(mut self, rules: NameRules) -> Self {
        self.config.names = rules;
        self
    }

    /// TCP connect timeout (default 10 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.config.connect_timeout = t;
        self
    }

    /// Timeout of each SMB or RPC request (default 20 s).
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.config.request_timeout = t;
        self
    }

    /// How many idle administrator sessions to keep for reuse (default 2, 0 disables
    /// reuse).
    pub fn max_idle_sessions(mut self, n: usize) -> Self {
        self.config.max_idle_sessions = n;
        self
    }

    /// Checks and returns the configuration.
    pub fn build(mut self) -> Result<SamConfig, Error> {
        let c = &mut self.config;
        if c.host.is_empty() || c.host.chars().any(|ch| ch.is_control() || ch == '/') {
            return Err(Error::InvalidInput(
                "host must be a host name or an IP address".into(),
            ));
        }
        if c.port == 0 {
            return Err(Error::InvalidInput("port must not be 0".into()));
        }
        for (what, t) in [
            ("connect", c.connect_timeout),
            ("request", c.request_timeout),
        ] {
            if t.is_zero() || t > Duration::from_secs(600) {
                return Err(Error::InvalidInput(format!(
                    "{what} timeout must be between 0 and 600 s"
                )));
            }
        }
        if let Some((user, pw)) = self.admin.take() {
            let name = AccountName::parse(&user)?;
            check_user_name(&name.user, NameRules::Windows)?;
            c.admin = Some((name, pw));
        }
        if c.method == LoginMethod::AsRoot && c.admin.is_none() {
            return Err(Error::InvalidInput(
                "login as root needs an administrator (SamConfigBuilder::admin)".into(),
            ));
        }
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_parse() {
        let a = AccountName::parse("WINHOST\\cwadmin").unwrap();
        assert_eq!((a.domain(), a.user()), (Some("WINHOST"), "cwadmin"));
        let a = AccountName::parse(".\\cwadmin").unwrap();
        assert_eq!((a.domain(), a.user()), (None, "cwadmin"));
        let a = AccountName::parse("cwadmin").unwrap();
        assert_eq!((a.domain(), a.user()), (None, "cwadmin"));
        assert!(AccountName::parse("A\\").is_err());
        assert!(AccountName::parse("A\\b\\c").is_err());
    }

    #[test]
    fn windows_name_rules() {
        for ok in [
            "cwlocal1",
            "svc app",
            "a.b-c_d",
            "Ölaf",
            "x2345678901234567890",
        ] {
            check_user_name(ok, NameRules::Windows).unwrap();
        }
        for bad in [
            "",
            "x23456789012345678901",
            "a/b",
            "a\\b",
            "a[b",
            "a]b",
            "a:b",
            "a;b",
            "a|b",
            "a=b",
            "a,b",
            "a+b",
            "a*b",
            "a?b",
            "a<b",
            "a>b",
            "a@b",
            "a\"b",
            "a\u{7}b",
            "...",
            ". .",
        ] {
            assert!(check_user_name(bad, NameRules::Windows).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn strict_name_rules() {
        check_user_name("svc-app_1.x", NameRules::Strict).unwrap();
        assert!(check_user_name("Ölaf", NameRules::Strict).is_err());
        assert!(check_user_name("svc app", NameRules::Strict).is_err());
        assert!(check_user_name("Administrator", NameRules::Strict).is_err());
        check_user_name("Administrator", NameRules::Windows).unwrap();
    }

    #[test]
    fn build_checks() {
        let pw = SecretString::from("TopSecret-123".to_owned());
        assert!(SamConfig::builder("h").build().is_err()); // no admin for AsRoot
        let b = SamConfig::builder("h")
            .admin(".\\root", pw.clone())
            .port(4445);
        assert!(!format!("{b:?}").contains("TopSecret"));
        let c = b.build().unwrap();
        assert_eq!(c.port(), 4445);
        assert!(!format!("{c:?}").contains("TopSecret"));
        assert!(format!("{c:?}").contains("root"));
        assert!(
            SamConfig::builder("h")
                .admin("a", pw.clone())
                .port(0)
                .build()
                .is_err()
        );
        assert!(
            SamConfig::builder("h")
                .admin("a", pw.clone())
                .request_timeout(Duration::ZERO)
                .build()
                .is_err()
        );
        SamConfig::builder("h")
            .method(LoginMethod::AsTarget)
            .build()
            .unwrap();
    }
}
