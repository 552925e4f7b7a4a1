//! The crate's error type: LDAP result codes and Active Directory's extended error
//! data mapped to typed, actionable errors.

use std::borrow::Cow;
use std::fmt;

use credwheel_state::{TargetError, TargetErrorKind};

/// What went wrong, as far as a caller can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid (bad URL, unreadable certificate, a password
    /// policy the domain would reject, ...). Nothing was sent to a directory.
    Config,
    /// The TLS handshake failed: an untrusted or mismatched certificate, or no
    /// common protocol version.
    Tls,
    /// No domain controller could be reached (connection refused, DNS, reset).
    Connect,
    /// A connect or an operation took longer than its configured timeout. For a
    /// write, it is unknown whether the directory applied it.
    Timeout,
    /// Password changes need an encrypted connection: refused by this crate before
    /// sending, or by the server (LDAP result 53 unwillingToPerform, 8
    /// strongerAuthRequired, 13 confidentialityRequired).
    EncryptionRequired,
    /// The password was refused (LDAP result 49, AD data `52e`, or `56` for a wrong
    /// current password in a self change).
    InvalidCredentials,
    /// The account is locked out (AD data `775`). More attempts make it worse: wait
    /// for the lockout to expire or unlock it.
    AccountLocked,
    /// The account is disabled (AD data `533`).
    AccountDisabled,
    /// The account has expired (`accountExpires` passed, AD data `701`).
    AccountExpired,
    /// The account's password has expired (AD data `532`).
    PasswordExpired,
    /// The account must change its password before logging on (AD data `773`).
    MustChangePassword,
    /// Logon is not permitted at this time (AD data `530`) or from this workstation
    /// (`531`).
    LogonRestricted,
    /// The new password violates the domain's password policy (LDAP result 19,
    /// AD `0000052D`): see [`Error::policy_violation`] for which rule when the
    /// server says.
    PasswordPolicy,
    /// The bind account may not do this to this account (LDAP result 50, AD
    /// `00000005`): typically no Reset Password right on the account's OU.
    InsufficientAccess,
    /// No such account (LDAP result 32, AD data `525`, or a search that found
    /// nothing).
    NoSuchAccount,
    /// A search by name matched more than one entry.
    AmbiguousAccount,
    /// The server is busy or unavailable (LDAP results 51, 52); nothing was applied.
    Busy,
    /// An unexpected answer from the server (malformed attribute, protocol error).
    Protocol,
    /// Anything else the server reported.
    Other,
    /// A role, set, lease or other named thing does not exist.
    NotFound,
    /// A role or set of that name exists already, or the account is managed
    /// elsewhere (another role or set).
    AlreadyExists,
    /// No account of the check-out set is available.
    NoAccountsAvailable,
    /// The lease belongs to another borrower (check-in enforcement), or several
    /// are out and none was named.
    NotBorrower,
    /// The lease expired.
    LeaseExpired,
    /// The account needs an operator (reconcile or adopt) before automatic work
    /// resumes: changed elsewhere, locked, too many failures.
    NeedsOperator,
    /// Another process changed the same thing at the same time (retry).
    Conflict,
    /// The state store failed or is unreachable.
    Store,
}

/// Which password rule the server said a new password violated (LDAP result 19).
///
/// Windows domain controllers do not say which rule failed (only `0000052D`);
/// Samba does, in its diagnostic text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// The current password is younger than the minimum password age.
    TooYoung,
    /// Shorter than the minimum length.
    TooShort,
    /// Found in the password history.
    History,
    /// Does not meet the complexity requirements.
    Complexity,
    /// The server did not say which rule.
    Unspecified,
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooYoung => "the current password is too young to change (minimum password age)",
            Self::TooShort => "too short",
            Self::History => "found in the password history",
            Self::Complexity => "does not meet the complexity requirements",
            Self::Unspecified => "too young / too short / history / complexity",
        })
    }
}

/// An error of this crate.
///
/// Carries the kind, the LDAP result code and AD's extended error code when the
/// server sent them, the server's diagnostic text (which never contains a password)
/// and what we were doing. Never contains a password.
///
/// ```
/// use credwheel_ad::{Error, ErrorKind};
/// let e = Error::from_ldap_result(
///     49,
///     "80090308: LdapErr: DSID-0C09042F, comment: AcceptSecurityContext error, data 775, v4563",
///     "binding as the account",
/// );
/// assert_eq!(e.kind(), ErrorKind::AccountLocked);
/// assert_eq!(e.ad_code(), Some(0x775));
/// assert_eq!(e.result_code(), Some(49));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    violation: Option<PolicyViolation>,
    rc: Option<u32>,
    ad_code: Option<u32>,
    diagnostic: Option<String>,
    context: Cow<'static, str>,
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(kind: ErrorKind, context: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            violation: None,
            rc: None,
            ad_code: None,
            diagnostic: None,
            context: context.into(),
        }
    }

    pub(crate) fn config(context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Config, context)
    }

    pub(crate) fn protocol(context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Protocol, context)
    }

    pub(crate) fn with_context(mut self, context: impl Into<Cow<'static, str>>) -> Self {
        self.context = context.into();
        self
    }

    pub(crate) fn with_diagnostic(mut self, text: impl Into<String>) -> Self {
        let text = text.into();
        if !text.is_empty() {
            self.diagnostic = Some(text);
        }
        self
    }

    /// Classifies an LDAP result code and its diagnostic text (public so the
    /// mapping can be shown and tested; the crate uses it for every LDAP answer).
    pub fn from_ldap_result(rc: u32, text: &str, context: impl Into<Cow<'static, str>>) -> Self {
        let ad_code = parse_ad_code(text);
        let mut violation = None;
        let kind = match (ad_code, rc) {
            (Some(0x52e), _) => ErrorKind::InvalidCredentials,
            (Some(0x56), _) => ErrorKind::InvalidCredentials,
            (Some(0x525), _) => ErrorKind::NoSuchAccount,
            (Some(0x530 | 0x531), _) => ErrorKind::LogonRestricted,
            (Some(0x532), _) => ErrorKind::PasswordExpired,
            (Some(0x533), _) => ErrorKind::AccountDisabled,
            (Some(0x701), _) => ErrorKind::AccountExpired,
            (Some(0x773), _) => ErrorKind::MustChangePassword,
            (Some(0x775), _) => ErrorKind::AccountLocked,
            (Some(0x52d), _) | (_, 19) => {
                violation = Some(parse_violation(text));
                ErrorKind::PasswordPolicy
            }
            (_, 8 | 13 | 53) => ErrorKind::EncryptionRequired,
            (Some(0x5), _) | (_, 50) => ErrorKind::InsufficientAccess,
            (_, 32) => ErrorKind::NoSuchAccount,
            (_, 49) => ErrorKind::InvalidCredentials,
            (_, 51 | 52) => ErrorKind::Busy,
            (_, 2 | 12 | 17 | 21 | 34) => ErrorKind::Protocol,
            _ => ErrorKind::Other,
        };
        let mut e = Self::new(kind, context).with_diagnostic(text.trim());
        e.rc = Some(rc);
        e.ad_code = ad_code;
        e.violation = violation;
        e
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// For [`ErrorKind::PasswordPolicy`]: which rule, as far as the server said.
    pub fn policy_violation(&self) -> Option<PolicyViolation> {
        self.violation
    }

    /// The LDAP result code, when the error came from an LDAP result.
    pub fn result_code(&self) -> Option<u32> {
        self.rc
    }

    /// AD's extended error code (the Win32 error in the diagnostic text: `0x52e`,
    /// `0x775`, `0x52d`, ...), when the server sent one.
    pub fn ad_code(&self) -> Option<u32> {
        self.ad_code
    }

    /// The server's diagnostic text, if any. Directories never put passwords there.
    pub fn diagnostic(&self) -> Option<&str> {
        self.diagnostic.as_deref()
    }

    /// What this crate was doing.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The classification for the rotation protocol (`credwheel-state`). A kind
    /// that is "certainly not applied" is returned only for answers after which
    /// the directory certainly did not change the password: refusals the server
    /// sent, and refusals of this crate before anything was sent. Timeouts and lost
    /// connections are [`TargetErrorKind::Unavailable`] (maybe applied).
    pub fn target_kind(&self) -> TargetErrorKind {
        match self.kind {
            ErrorKind::PasswordPolicy => TargetErrorKind::Rejected,
            ErrorKind::InvalidCredentials => TargetErrorKind::BadCredentials,
            ErrorKind::InsufficientAccess
            | ErrorKind::EncryptionRequired
            | ErrorKind::LogonRestricted => TargetErrorKind::Denied,
            ErrorKind::NoSuchAccount | ErrorKind::AmbiguousAccount => {
                TargetErrorKind::NoSuchAccount
            }
            ErrorKind::AccountLocked => TargetErrorKind::AccountLocked,
            ErrorKind::AccountDisabled | ErrorKind::AccountExpired => {
                TargetErrorKind::AccountDisabled
            }
            ErrorKind::PasswordExpired | ErrorKind::MustChangePassword => {
                TargetErrorKind::PasswordExpired
            }
            ErrorKind::Tls | ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Busy => {
                TargetErrorKind::Unavailable
            }
            ErrorKind::Config
            | ErrorKind::Protocol
            | ErrorKind::Other
            | ErrorKind::NotFound
            | ErrorKind::AlreadyExists
            | ErrorKind::NoAccountsAvailable
            | ErrorKind::NotBorrower
            | ErrorKind::LeaseExpired
            | ErrorKind::NeedsOperator
            | ErrorKind::Conflict
            | ErrorKind::Store => TargetErrorKind::Other,
        }
    }

    /// Whether trying the next domain controller may help.
    pub(crate) fn is_dc_failure(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Connect | ErrorKind::Tls | ErrorKind::Timeout | ErrorKind::Busy
        )
    }

    /// A short metric label for the kind.
    pub(crate) fn label(&self) -> &'static str {
        match self.kind {
            ErrorKind::Config => "config",
            ErrorKind::Tls => "tls",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::EncryptionRequired => "encryption_required",
            ErrorKind::InvalidCredentials => "invalid_credentials",
            ErrorKind::AccountLocked => "account_locked",
            ErrorKind::AccountDisabled => "account_disabled",
            ErrorKind::AccountExpired => "account_expired",
            ErrorKind::PasswordExpired => "password_expired",
            ErrorKind::MustChangePassword => "must_change_password",
            ErrorKind::LogonRestricted => "logon_restricted",
            ErrorKind::PasswordPolicy => "password_policy",
            ErrorKind::InsufficientAccess => "insufficient_access",
            ErrorKind::NoSuchAccount => "no_such_account",
            ErrorKind::AmbiguousAccount => "ambiguous_account",
            ErrorKind::Busy => "busy",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Other => "other",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::NoAccountsAvailable => "no_accounts_available",
            ErrorKind::NotBorrower => "not_borrower",
            ErrorKind::LeaseExpired => "lease_expired",
            ErrorKind::NeedsOperator => "needs_operator",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Store => "store",
        }
    }

    fn summary(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self.kind {
            ErrorKind::Config => "invalid configuration",
            ErrorKind::Tls => "TLS handshake failed (is the CA certificate right?)",
            ErrorKind::Connect => "no domain controller could be reached",
            ErrorKind::Timeout => "timed out",
            ErrorKind::EncryptionRequired => {
                "password changes need an encrypted connection (use ldaps:// or StartTLS)"
            }
            ErrorKind::InvalidCredentials => "invalid credentials (wrong password)",
            ErrorKind::AccountLocked => "account locked out",
            ErrorKind::AccountDisabled => "account disabled",
            ErrorKind::AccountExpired => "account expired",
            ErrorKind::PasswordExpired => "the account's password has expired",
            ErrorKind::MustChangePassword => "the account must change its password at next logon",
            ErrorKind::LogonRestricted => {
                "logon not permitted at this time or from this workstation"
            }
            ErrorKind::PasswordPolicy => {
                return Cow::Owned(format!(
                    "the new password violates the domain's policy: {}",
                    self.violation.unwrap_or(PolicyViolation::Unspecified)
                ));
            }
            ErrorKind::InsufficientAccess => {
                "the bind account may not reset this account (insufficient access rights)"
            }
            ErrorKind::NoSuchAccount => "no such account",
            ErrorKind::AmbiguousAccount => "the name matches more than one account",
            ErrorKind::Busy => "the domain controller is busy or unavailable",
            ErrorKind::Protocol => "unexpected answer from the directory",
            ErrorKind::Other => "the directory refused the operation",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::NoAccountsAvailable => "no service accounts available for check-out",
            ErrorKind::NotBorrower => "the lease belongs to another borrower",
            ErrorKind::LeaseExpired => "the lease has expired",
            ErrorKind::NeedsOperator => {
                "the account needs an operator (reconcile or adopt) before automatic rotation resumes"
            }
            ErrorKind::Conflict => "changed concurrently; retry",
            ErrorKind::Store => "the state store failed",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.summary())?;
        if !self.context.is_empty() {
            write!(f, " ({})", self.context)?;
        }
        match (self.rc, self.ad_code) {
            (Some(rc), Some(code)) => write!(f, " [LDAP result {rc}, AD code {code:#x}]")?,
            (Some(rc), None) => write!(f, " [LDAP result {rc}]")?,
            _ => {}
        }
        if let Some(d) = &self.diagnostic {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("violation", &self.violation)
            .field("rc", &self.rc)
            .field("ad_code", &self.ad_code.map(|c| format!("{c:#x}")))
            .field("diagnostic", &self.diagnostic)
            .field("context", &self.context)
            .finish()
    }
}

impl std::error::Error for Error {}

impl From<Error> for TargetError {
    fn from(e: Error) -> Self {
        TargetError::new(e.target_kind(), e.to_string())
    }
}

impl From<credwheel_dn::DnError> for Error {
    fn from(e: credwheel_dn::DnError) -> Self {
        Error::config(format!("invalid DN or filter: {e}"))
    }
}

impl From<credwheel_state::StateError> for Error {
    fn from(e: credwheel_state::StateError) -> Self {
        use credwheel_state::{ConflictReason as C, StateError as S};
        let kind = match &e {
            S::Target(t) => return Error::from_target(t),
            S::NotFound(_) => ErrorKind::NotFound,
            S::Conflict(C::AlreadyExists | C::OtherSet) => ErrorKind::AlreadyExists,
            S::Conflict(_) | S::InFlight { .. } | S::ClaimTooShort { .. } => ErrorKind::Conflict,
            S::NoneAvailable => ErrorKind::NoAccountsAvailable,
            S::NotBorrower => ErrorKind::NotBorrower,
            S::Expired => ErrorKind::LeaseExpired,
            S::Invalid(_) | S::Generate(_) | S::Key(_) | S::UnknownKey(_) => ErrorKind::Config,
            _ => ErrorKind::Store,
        };
        Error::new(kind, "state store").with_diagnostic(e.to_string())
    }
}

impl Error {
    /// An error from a rotation target's (secret-free) error.
    pub(crate) fn from_target(t: &credwheel_state::TargetError) -> Self {
        use credwheel_state::TargetErrorKind as T;
        let kind = match t.kind() {
            T::Rejected => ErrorKind::PasswordPolicy,
            T::BadCredentials => ErrorKind::InvalidCredentials,
            T::Denied => ErrorKind::InsufficientAccess,
            T::NoSuchAccount => ErrorKind::NoSuchAccount,
            T::AccountLocked => ErrorKind::AccountLocked,
            T::AccountDisabled => ErrorKind::AccountDisabled,
            T::PasswordExpired => ErrorKind::PasswordExpired,
            T::Unavailable => ErrorKind::Connect,
            _ => ErrorKind::Other,
        };
        Error::new(kind, "rotation").with_diagnostic(t.message())
    }
}

/// Classifies an `ldap3` error. `written` tells whether a write may have reached
/// the server (then a lost connection is a timeout-like unknown).
pub(crate) fn from_ldap3(e: ldap3::LdapError, context: &'static str) -> Error {
    use ldap3::LdapError as L;
    match e {
        L::LdapResult { result } => Error::from_ldap_result(result.rc, &result.text, context),
        L::Timeout { .. } => Error::new(ErrorKind::Timeout, context),
        L::Io { source } => classify_io(&source, context),
        L::Rustls { source } => {
            Error::new(ErrorKind::Tls, context).with_diagnostic(source.to_string())
        }
        L::DNSName { source } => {
            Error::new(ErrorKind::Config, context).with_diagnostic(source.to_string())
        }
        L::UrlParsing { source } => {
            Error::new(ErrorKind::Config, context).with_diagnostic(source.to_string())
        }
        L::UnknownScheme(s) => {
            Error::new(ErrorKind::Config, context).with_diagnostic(format!("unknown scheme {s}"))
        }
        L::OpSend { .. }
        | L::ResultRecv { .. }
        | L::IdScrubSend { .. }
        | L::MiscSend { .. }
        | L::EndOfStream => Error::new(ErrorKind::Connect, context)
            .with_diagnostic("the connection to the domain controller was lost"),
        other => Error::new(ErrorKind::Other, context).with_diagnostic(other.to_string()),
    }
}

fn classify_io(e: &std::io::Error, context: &'static str) -> Error {
    // rustls handshake failures surface from tokio-rustls as I/O errors wrapping a
    // rustls::Error.
    if let Some(inner) = e.get_ref()
        && inner.downcast_ref::<rustls::Error>().is_some()
    {
        return Error::new(ErrorKind::Tls, context).with_diagnostic(inner.to_string());
    }
    if e.kind() == std::io::ErrorKind::TimedOut {
        return Error::new(ErrorKind::Timeout, context);
    }
    Error::new(ErrorKind::Connect, context).with_diagnostic(e.to_string())
}

/// AD's Win32 error code in a diagnostic text: the `data XXX` of a bind error
/// (`80090308: LdapErr: ..., data 52e, v4563`), or the leading 8-hex-digit code of
/// other errors (`0000052D: Constraint violation ...`).
pub(crate) fn parse_ad_code(text: &str) -> Option<u32> {
    let text = text.trim_start();
    if let Some(head) = text.get(..9) {
        let (code, colon) = head.split_at(8);
        if colon == ":" && code.chars().all(|c| c.is_ascii_hexdigit()) {
            let v = u32::from_str_radix(code, 16).ok()?;
            // 80090308 is the SSPI status of a failed bind: the Win32 error is in
            // its `data` field.
            if v != 0x8009_0308 {
                return Some(v);
            }
        }
    }
    let i = text.find(", data ")?;
    let hex: String = text[i + 7..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    u32::from_str_radix(&hex, 16).ok()
}

fn parse_violation(text: &str) -> PolicyViolation {
    let t = text.to_ascii_lowercase();
    if t.contains("too young") {
        PolicyViolation::TooYoung
    } else if t.contains("too short") {
        PolicyViolation::TooShort
    } else if t.contains("history") || t.contains("already used") {
        PolicyViolation::History
    } else if t.contains("complexity") {
        PolicyViolation::Complexity
    } else {
        PolicyViolation::Unspecified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_data_codes() {
        let t = |code: &str| {
            Error::from_ldap_result(
                49,
                &format!(
                    "80090308: LdapErr: DSID-0C09042F, comment: AcceptSecurityContext error, data {code}, v4563"
                ),
                "bind",
            )
        };
        assert_eq!(t("52e").kind(), ErrorKind::InvalidCredentials);
        assert_eq!(t("525").kind(), ErrorKind::NoSuchAccount);
        assert_eq!(t("530").kind(), ErrorKind::LogonRestricted);
        assert_eq!(t("531").kind(), ErrorKind::LogonRestricted);
        assert_eq!(t("532").kind(), ErrorKind::PasswordExpired);
        assert_eq!(t("533").kind(), ErrorKind::AccountDisabled);
        assert_eq!(t("701").kind(), ErrorKind::AccountExpired);
        assert_eq!(t("773").kind(), ErrorKind::MustChangePassword);
        assert_eq!(t("775").kind(), ErrorKind::AccountLocked);
        assert_eq!(t("775").ad_code(), Some(0x775));
        assert_eq!(
            Error::from_ldap_result(49, "", "bind").kind(),
            ErrorKind::InvalidCredentials
        );
    }

    #[test]
    fn operation_codes() {
        let e = Error::from_ldap_result(
            19,
            "0000052D: Constraint violation - check_password_restrictions: password is too young to change!",
            "self change",
        );
        assert_eq!(e.kind(), ErrorKind::PasswordPolicy);
        assert_eq!(e.ad_code(), Some(0x52d));
        assert_eq!(e.policy_violation(), Some(PolicyViolation::TooYoung));
        assert_eq!(e.target_kind(), TargetErrorKind::Rejected);
        assert!(e.to_string().contains("violates the domain's policy"));

        let e = Error::from_ldap_result(
            19,
            "0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be equal or longer than 7 characters!",
            "reset",
        );
        assert_eq!(e.policy_violation(), Some(PolicyViolation::TooShort));
        let e = Error::from_ldap_result(
            19,
            "0000052D: Constraint violation - check_password_restrictions: the password was already used (in history)!",
            "reset",
        );
        assert_eq!(e.policy_violation(), Some(PolicyViolation::History));
        let e = Error::from_ldap_result(
            19,
            "0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0",
            "reset",
        );
        assert_eq!(e.kind(), ErrorKind::PasswordPolicy);
        assert_eq!(e.policy_violation(), Some(PolicyViolation::Unspecified));

        let e = Error::from_ldap_result(
            50,
            "00000005: SecErr: DSID-03152E29, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0",
            "reset",
        );
        assert_eq!(e.kind(), ErrorKind::InsufficientAccess);
        assert_eq!(e.target_kind(), TargetErrorKind::Denied);
        assert!(e.target_kind().certainly_not_applied());

        let e = Error::from_ldap_result(
            53,
            "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0",
            "reset",
        );
        assert_eq!(e.kind(), ErrorKind::EncryptionRequired);
        assert_eq!(
            Error::from_ldap_result(32, "0000208D: NameErr", "x").kind(),
            ErrorKind::NoSuchAccount
        );
        assert_eq!(
            Error::from_ldap_result(51, "", "x").target_kind(),
            TargetErrorKind::Unavailable
        );
        assert_eq!(
            Error::from_ldap_result(8, "", "x").kind(),
            ErrorKind::EncryptionRequired
        );
    }

    #[test]
    fn uncertain_kinds_are_not_certain() {
        for k in [
            ErrorKind::Timeout,
            ErrorKind::Connect,
            ErrorKind::Other,
            ErrorKind::Protocol,
        ] {
            assert!(
                !Error::new(k, "x").target_kind().certainly_not_applied(),
                "{k:?}"
            );
        }
    }

    #[test]
    fn ad_code_parsing() {
        assert_eq!(parse_ad_code("0000052D: x"), Some(0x52d));
        assert_eq!(parse_ad_code("80090308: LdapErr: x"), None);
        assert_eq!(parse_ad_code("nothing"), None);
        assert_eq!(parse_ad_code(""), None);
        assert_eq!(parse_ad_code("ä"), None);
        assert_eq!(parse_ad_code("x, data 775, v1"), Some(0x775));
    }
}
