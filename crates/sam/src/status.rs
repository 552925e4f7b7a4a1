//! NT_STATUS and DCE/RPC fault codes: names, operator advice, and the mapping of
//! [`Error`] into credwheel-state's [`TargetError`].

use std::fmt;

use credwheel_state::{TargetError, TargetErrorKind};

use crate::error::{Call, Error};

/// An NT_STATUS value as returned by the host ([MS-ERREF] 2.3).
///
/// Known values have a name and advice; any other value is kept as-is and shown in
/// hexadecimal.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NtStatus(u32);

macro_rules! statuses {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $advice:literal; )*) => {
        impl NtStatus {
            $( $(#[$doc])* pub const $name: Self = Self($code); )*

            /// The symbolic name (`STATUS_...`) of a known status.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $code => Some(concat!("STATUS_", stringify!($name))), )*
                    _ => None,
                }
            }

            /// What an operator can do about this status, for known statuses.
            pub fn advice(self) -> Option<&'static str> {
                match self.0 {
                    $( $code => Some($advice).filter(|a| !a.is_empty()), )*
                    _ => None,
                }
            }
        }
    };
}

statuses! {
    /// The call succeeded.
    SUCCESS = 0x0000_0000, "";
    /// Enumeration: more entries are available.
    MORE_ENTRIES = 0x0000_0105, "";
    /// Some of the names looked up were not found.
    SOME_NOT_MAPPED = 0x0000_0107, "";
    /// The request is not implemented by the server.
    NOT_IMPLEMENTED = 0xC000_0002, "the host does not implement this call";
    /// The information class (level) is not supported.
    INVALID_INFO_CLASS = 0xC000_0003, "the host does not support this information level";
    /// A handle is invalid (closed or from another connection).
    INVALID_HANDLE = 0xC000_0008, "an RPC handle was no longer valid; retry on a fresh connection";
    /// A parameter is invalid.
    INVALID_PARAMETER = 0xC000_000D, "the host refused a request parameter";
    /// The caller lacks the access right.
    ACCESS_DENIED = 0xC000_0022, "the connecting account lacks the right to do this: use a local administrator (with remote UAC token filtering not applying to it) or login as root";
    /// A buffer was too small.
    BUFFER_TOO_SMALL = 0xC000_0023, "";
    /// The user does not exist.
    NO_SUCH_USER = 0xC000_0064, "no such local account on the host: check the user name";
    /// The old password given to a change call is wrong (or, for a reset, the host
    /// could not decrypt the password buffer).
    WRONG_PASSWORD = 0xC000_006A, "the current password is wrong (for a change), or the host could not decrypt the new password (for a reset)";
    /// The new password is not well-formed.
    ILL_FORMED_PASSWORD = 0xC000_006B, "the host refused the new password as ill-formed: check the password policy's alphabet";
    /// The new password does not meet the host's password policy.
    PASSWORD_RESTRICTION = 0xC000_006C, "the host's password policy rejected the new password (length, complexity, history or minimum age): raise the policy";
    /// Logon failure: unknown user name or bad password.
    LOGON_FAILURE = 0xC000_006D, "logon failed: unknown user name or wrong password";
    /// An account restriction prevents the logon (e.g. blank password, logon hours).
    ACCOUNT_RESTRICTION = 0xC000_006E, "an account restriction on the host prevents this logon";
    /// The account may not log on at this time.
    INVALID_LOGON_HOURS = 0xC000_006F, "the account may not log on at this time (logon hours)";
    /// The account may not log on from this workstation.
    INVALID_WORKSTATION = 0xC000_0070, "the account may not log on from this workstation";
    /// The account's password has expired.
    PASSWORD_EXPIRED = 0xC000_0071, "the account's password has expired: reset it with login as root";
    /// The account is disabled.
    ACCOUNT_DISABLED = 0xC000_0072, "the account is disabled on the host: enable it first";
    /// None of the names could be mapped (name lookup).
    NONE_MAPPED = 0xC000_0073, "no such local account on the host: check the user name";
    /// Network access is denied.
    NETWORK_ACCESS_DENIED = 0xC000_00CA, "the host denied network access to this account";
    /// The request is not supported.
    NOT_SUPPORTED = 0xC000_00BB, "the host does not support this request";
    /// The domain does not exist.
    NO_SUCH_DOMAIN = 0xC000_00DF, "the host's SAM has no such domain";
    /// The account has expired.
    ACCOUNT_EXPIRED = 0xC000_0193, "the account has expired on the host: extend or remove its expiry";
    /// The account's password must be changed before logging on.
    PASSWORD_MUST_CHANGE = 0xC000_0224, "the account's password must be changed at next logon: reset it with login as root";
    /// The account is locked out.
    ACCOUNT_LOCKED_OUT = 0xC000_0234, "the account is locked out after failed logons: unlock it on the host; further attempts make it worse";
    /// The account is managed by a policy (Windows LAPS automatic account management).
    POLICY_CONTROLLED_ACCOUNT = 0xC000_A08B, "the account is managed by Windows LAPS (automatic account management); let LAPS rotate it or remove it from LAPS management";
}

impl NtStatus {
    /// A status from its numeric value.
    pub const fn new(code: u32) -> Self {
        Self(code)
    }

    /// The numeric value.
    pub const fn code(self) -> u32 {
        self.0
    }

    /// Whether this is an error-severity status (top two bits `11`).
    pub const fn is_error(self) -> bool {
        self.0 >> 30 == 0b11
    }

    /// `Ok(())` for `STATUS_SUCCESS`, else [`Error::Status`] for `call`.
    pub(crate) fn check(self, call: Call) -> Result<(), Error> {
        if self == Self::SUCCESS {
            Ok(())
        } else {
            Err(Error::Status { call, status: self })
        }
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "NtStatus({:#010x})", self.0),
        }
    }
}

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({:#010X})", self.0)?,
            None => write!(f, "NT_STATUS {:#010X}", self.0)?,
        }
        if let Some(a) = self.advice() {
            write!(f, ": {a}")?;
        }
        Ok(())
    }
}

/// DCE/RPC fault: the requested operation number is out of range (the host does not
/// serve this opnum). [MS-RPCE] `nca_s_op_rng_error`.
pub(crate) const NCA_S_OP_RNG_ERROR: u32 = 0x1C01_0002;
/// DCE/RPC fault: unknown interface.
pub(crate) const NCA_S_UNK_IF: u32 = 0x1C01_0003;
/// DCE/RPC fault: protocol error.
pub(crate) const NCA_S_PROTO_ERROR: u32 = 0x1C01_000B;
/// Windows RPC status: procedure number out of range (`RPC_S_PROCNUM_OUT_OF_RANGE`),
/// which some servers return instead of `nca_s_op_rng_error`.
pub(crate) const RPC_S_PROCNUM_OUT_OF_RANGE: u32 = 0x0000_06D1;
/// Windows RPC status: access denied.
pub(crate) const RPC_S_ACCESS_DENIED: u32 = 0x0000_0005;
/// Windows RPC status: the stub received bad data (`RPC_X_BAD_STUB_DATA`).
pub(crate) const RPC_X_BAD_STUB_DATA: u32 = 0x0000_06F7;
/// Windows RPC status: invalid union tag (`RPC_S_INVALID_TAG`).
pub(crate) const RPC_S_INVALID_TAG: u32 = 0x0000_06C5;
/// DCE/RPC fault: invalid union tag (`nca_s_fault_invalid_tag`).
pub(crate) const NCA_S_FAULT_INVALID_TAG: u32 = 0x1C00_0006;

/// Whether a fault code means "the server does not serve this opnum".
pub(crate) fn fault_is_unknown_opnum(code: u32) -> bool {
    matches!(code, NCA_S_OP_RNG_ERROR | RPC_S_PROCNUM_OUT_OF_RANGE)
}

/// Whether a fault code means "the server could not unmarshal the request", which
/// for a union arm it does not know (an information level newer than the server)
/// is how a server without that level answers.
pub(crate) fn fault_is_unknown_arm(code: u32) -> bool {
    matches!(
        code,
        RPC_X_BAD_STUB_DATA | RPC_S_INVALID_TAG | NCA_S_FAULT_INVALID_TAG
    )
}

/// A fault code with its name and meaning, for messages.
pub(crate) fn fault_text(code: u32) -> String {
    let what = match code {
        NCA_S_OP_RNG_ERROR | RPC_S_PROCNUM_OUT_OF_RANGE => " (operation not served by this host)",
        NCA_S_UNK_IF => " (interface unknown to this host)",
        NCA_S_PROTO_ERROR => " (protocol error)",
        RPC_S_ACCESS_DENIED => " (access denied)",
        RPC_X_BAD_STUB_DATA => " (the host could not decode the request)",
        RPC_S_INVALID_TAG | NCA_S_FAULT_INVALID_TAG => {
            " (the host does not know this information level)"
        }
        _ => "",
    };
    format!("{code:#010x}{what}")
}

impl Error {
    /// Whether the host answered that it does not serve the called opnum (an RPC fault
    /// `nca_s_op_rng_error`) or does not know the information level
    /// (`STATUS_INVALID_INFO_CLASS`, `STATUS_NOT_SUPPORTED`, `STATUS_NOT_IMPLEMENTED`,
    /// or a fault saying it could not unmarshal the level's union arm): the signal
    /// to fall back to an older call or level. None of these answers changed
    /// anything on the host.
    pub fn is_unsupported(&self) -> bool {
        match self {
            Self::Fault { code, .. } => {
                fault_is_unknown_opnum(*code) || fault_is_unknown_arm(*code)
            }
            Self::Status { status, .. } => matches!(
                *status,
                NtStatus::INVALID_INFO_CLASS | NtStatus::NOT_SUPPORTED | NtStatus::NOT_IMPLEMENTED
            ),
            _ => false,
        }
    }

    /// The credwheel-state classification of this error.
    ///
    /// A kind for which [`TargetErrorKind::certainly_not_applied`] holds is returned
    /// only when the password certainly did not change: a definite refusal by the host
    /// (an error status in a SAMR response, a failed logon) or a check made before
    /// anything was sent. Malformed answers, dropped connections and timeouts, and
    /// statuses whose meaning is unclear, are [`TargetErrorKind::Unavailable`] or
    /// [`TargetErrorKind::Other`].
    pub fn target_kind(&self) -> TargetErrorKind {
        use TargetErrorKind as K;
        match self {
            Self::Status { call, status } => status_kind(*call, *status),
            Self::Fault { code, .. } if *code == RPC_S_ACCESS_DENIED => K::Denied,
            Self::Fault { .. }
            | Self::BindRejected { .. }
            | Self::Ndr { .. }
            | Self::Protocol(_)
            | Self::Crypto(_) => K::Other,
            Self::Connect { .. } | Self::Timeout { .. } | Self::Smb(_) => K::Unavailable,
            Self::DomainController | Self::AesUnsupported { .. } | Self::ChangeRefusedByHost => {
                K::Denied
            }
            Self::NoSuchUser(_) => K::NoSuchAccount,
            Self::HostPolicy(_) => K::Rejected,
            Self::InvalidInput(_) => K::Denied,
        }
    }
}

fn status_kind(call: Call, status: NtStatus) -> TargetErrorKind {
    use TargetErrorKind as K;
    match status {
        NtStatus::LOGON_FAILURE => K::BadCredentials,
        // From a change call: the old password was wrong. From a reset: the host could
        // not decrypt the buffer (a session-key problem), which is ours, not the
        // operator's credentials; not applied, but the state kinds have no better fit.
        NtStatus::WRONG_PASSWORD => match call {
            Call::Samr(58) => K::Other,
            _ => K::BadCredentials,
        },
        NtStatus::ACCESS_DENIED
        | NtStatus::NETWORK_ACCESS_DENIED
        | NtStatus::POLICY_CONTROLLED_ACCOUNT
        | NtStatus::ACCOUNT_RESTRICTION
        | NtStatus::INVALID_LOGON_HOURS
        | NtStatus::INVALID_WORKSTATION
        | NtStatus::ACCOUNT_EXPIRED => K::Denied,
        NtStatus::PASSWORD_RESTRICTION | NtStatus::ILL_FORMED_PASSWORD => K::Rejected,
        NtStatus::NO_SUCH_USER | NtStatus::NONE_MAPPED => K::NoSuchAccount,
        NtStatus::ACCOUNT_LOCKED_OUT => K::AccountLocked,
        NtStatus::ACCOUNT_DISABLED => K::AccountDisabled,
        NtStatus::PASSWORD_EXPIRED | NtStatus::PASSWORD_MUST_CHANGE => K::PasswordExpired,
        // An SMB-level status on the pipe (e.g. the pipe broke mid-request): the
        // request may have been executed.
        _ if call == Call::Pipe => K::Unavailable,
        _ => K::Other,
    }
}

impl From<&Error> for TargetError {
    fn from(e: &Error) -> Self {
        TargetError::new(e.target_kind(), e.to_string())
    }
}

impl From<Error> for TargetError {
    fn from(e: Error) -> Self {
        Self::from(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_status_display_has_name_code_and_advice() {
        let s = NtStatus::PASSWORD_RESTRICTION.to_string();
        assert!(
            s.starts_with("STATUS_PASSWORD_RESTRICTION (0xC000006C): "),
            "{s}"
        );
        assert!(s.contains("raise the policy"), "{s}");
        let s = NtStatus::POLICY_CONTROLLED_ACCOUNT.to_string();
        assert!(s.contains("Windows LAPS"), "{s}");
        assert_eq!(
            NtStatus::new(0xC000_A08B),
            NtStatus::POLICY_CONTROLLED_ACCOUNT
        );
    }

    #[test]
    fn unknown_status_is_shown_in_hex() {
        let s = NtStatus::new(0xC0DE_0001);
        assert_eq!(s.name(), None);
        assert_eq!(s.to_string(), "NT_STATUS 0xC0DE0001");
        assert_eq!(format!("{s:?}"), "NtStatus(0xc0de0001)");
        assert!(s.is_error());
        assert!(!NtStatus::MORE_ENTRIES.is_error());
    }

    #[test]
    fn codes_match_ms_erref() {
        // Values from [MS-ERREF] 2.3.1.
        for (s, c) in [
            (NtStatus::LOGON_FAILURE, 0xC000_006D),
            (NtStatus::ACCESS_DENIED, 0xC000_0022),
            (NtStatus::PASSWORD_RESTRICTION, 0xC000_006C),
            (NtStatus::NO_SUCH_USER, 0xC000_0064),
            (NtStatus::NONE_MAPPED, 0xC000_0073),
            (NtStatus::ACCOUNT_LOCKED_OUT, 0xC000_0234),
            (NtStatus::ACCOUNT_DISABLED, 0xC000_0072),
            (NtStatus::PASSWORD_EXPIRED, 0xC000_0071),
            (NtStatus::PASSWORD_MUST_CHANGE, 0xC000_0224),
            (NtStatus::WRONG_PASSWORD, 0xC000_006A),
            (NtStatus::INVALID_INFO_CLASS, 0xC000_0003),
            (NtStatus::POLICY_CONTROLLED_ACCOUNT, 0xC000_A08B),
        ] {
            assert_eq!(s.code(), c, "{s:?}");
        }
    }

    fn kind(call: Call, s: NtStatus) -> TargetErrorKind {
        Error::Status { call, status: s }.target_kind()
    }

    #[test]
    fn classification() {
        use TargetErrorKind as K;
        assert_eq!(
            kind(Call::SessionSetup, NtStatus::LOGON_FAILURE),
            K::BadCredentials
        );
        assert_eq!(
            kind(Call::Samr(55), NtStatus::WRONG_PASSWORD),
            K::BadCredentials
        );
        assert_eq!(
            kind(Call::Samr(73), NtStatus::WRONG_PASSWORD),
            K::BadCredentials
        );
        assert_eq!(kind(Call::Samr(58), NtStatus::WRONG_PASSWORD), K::Other);
        assert_eq!(
            kind(Call::Samr(58), NtStatus::PASSWORD_RESTRICTION),
            K::Rejected
        );
        assert_eq!(kind(Call::Samr(58), NtStatus::ACCESS_DENIED), K::Denied);
        assert_eq!(
            kind(Call::Samr(58), NtStatus::POLICY_CONTROLLED_ACCOUNT),
            K::Denied
        );
        assert_eq!(
            kind(Call::Samr(17), NtStatus::NONE_MAPPED),
            K::NoSuchAccount
        );
        assert_eq!(
            kind(Call::SessionSetup, NtStatus::ACCOUNT_LOCKED_OUT),
            K::AccountLocked
        );
        assert_eq!(
            kind(Call::SessionSetup, NtStatus::ACCOUNT_DISABLED),
            K::AccountDisabled
        );
        assert_eq!(
            kind(Call::SessionSetup, NtStatus::PASSWORD_MUST_CHANGE),
            K::PasswordExpired
        );
        assert_eq!(kind(Call::Samr(58), NtStatus::new(0xC000_0001)), K::Other);
        assert_eq!(kind(Call::Pipe, NtStatus::new(0xC000_00B0)), K::Unavailable);
        assert!(!kind(Call::Samr(58), NtStatus::INVALID_INFO_CLASS).certainly_not_applied());
        let f = Error::Fault {
            call: Call::Samr(73),
            code: NCA_S_OP_RNG_ERROR,
        };
        assert!(f.is_unsupported());
        assert!(!f.target_kind().certainly_not_applied());
        assert!(f.to_string().contains("not served"), "{f}");
        let t = Error::Timeout {
            what: "SMB request",
            after: std::time::Duration::from_secs(5),
        };
        assert_eq!(t.target_kind(), K::Unavailable);
        assert_eq!(Error::DomainController.target_kind(), K::Denied);
    }

    #[test]
    fn target_error_keeps_the_message() {
        let e = Error::Status {
            call: Call::Samr(58),
            status: NtStatus::PASSWORD_RESTRICTION,
        };
        let t = TargetError::from(&e);
        assert_eq!(t.kind(), TargetErrorKind::Rejected);
        assert!(
            t.message().contains("SamrSetInformationUser2 (opnum 58)"),
            "{}",
            t.message()
        );
        assert!(t.message().contains("raise the policy"), "{}", t.message());
    }
}
