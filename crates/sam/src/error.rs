//! The crate's error type.
//!
//! One `#[non_exhaustive]` enum for the whole crate. Status codes from the server
//! (NT_STATUS, RPC fault codes) are carried as data ([`NtStatus`], [`Call`]); no
//! variant ever holds a password, a hash, a key or an encrypted buffer.

use std::fmt;
use std::time::Duration;

use crate::status::NtStatus;

/// The step of the conversation with the host at which a status code was returned.
///
/// The same NT_STATUS means different things at different steps (e.g.
/// `STATUS_WRONG_PASSWORD` from a change call means the old password was wrong, from
/// a reset it means the server could not decrypt the password buffer), so the step is
/// kept with the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Call {
    /// SMB negotiate.
    Negotiate,
    /// SMB session setup (authentication).
    SessionSetup,
    /// SMB tree connect (to `IPC$`).
    TreeConnect,
    /// Opening the `\PIPE\samr` named pipe.
    OpenPipe,
    /// Any other SMB request on the pipe (transceive, read, write, close).
    Pipe,
    /// The DCE/RPC bind.
    Bind,
    /// A SAMR call, by opnum.
    Samr(u16),
}

impl Call {
    /// The SAMR method name for an opnum this crate uses, if known.
    pub fn samr_name(opnum: u16) -> Option<&'static str> {
        Some(match opnum {
            1 => "SamrCloseHandle",
            5 => "SamrLookupDomainInSamServer",
            6 => "SamrEnumerateDomainsInSamServer",
            7 => "SamrOpenDomain",
            8 => "SamrQueryInformationDomain",
            17 => "SamrLookupNamesInDomain",
            34 => "SamrOpenUser",
            44 => "SamrGetUserDomainPasswordInformation",
            47 => "SamrQueryInformationUser2",
            55 => "SamrUnicodeChangePasswordUser2",
            58 => "SamrSetInformationUser2",
            64 => "SamrConnect5",
            73 => "SamrUnicodeChangePasswordUser4",
            _ => return None,
        })
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Negotiate => f.write_str("SMB negotiate"),
            Self::SessionSetup => f.write_str("SMB session setup"),
            Self::TreeConnect => f.write_str("SMB tree connect"),
            Self::OpenPipe => f.write_str("opening the samr pipe"),
            Self::Pipe => f.write_str("SMB request on the samr pipe"),
            Self::Bind => f.write_str("DCE/RPC bind"),
            Self::Samr(op) => match Self::samr_name(*op) {
                Some(name) => write!(f, "{name} (opnum {op})"),
                None => write!(f, "SAMR opnum {op}"),
            },
        }
    }
}

/// Why NDR data could not be decoded. Never carries the data itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NdrError {
    /// The data ended before the value at this offset (relative to the stub start).
    Truncated {
        /// Offset at which more bytes were needed.
        offset: usize,
    },
    /// Bytes were left over after the last value.
    TrailingData {
        /// Number of bytes left.
        len: usize,
    },
    /// An array's counts are inconsistent (offset not 0, actual count larger than
    /// the maximum count, a length field larger than its maximum, an odd byte length
    /// for UTF-16 text, or a count over this decoder's limit).
    BadCount {
        /// Offset of the array header.
        offset: usize,
    },
    /// A pointer that must be non-NULL was NULL.
    NullPointer {
        /// Offset of the pointer.
        offset: usize,
    },
    /// A union switch value that this decoder does not handle.
    UnexpectedSwitch {
        /// The switch value received.
        value: u32,
    },
    /// A field holds a value that its type does not allow (e.g. a SID with a
    /// sub-authority count over 15, or revision other than 1).
    BadValue {
        /// Offset of the field.
        offset: usize,
    },
    /// UTF-16 text was not valid (unpaired surrogate).
    BadUtf16 {
        /// Offset of the text.
        offset: usize,
    },
}

impl fmt::Display for NdrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { offset } => write!(f, "data ends early (at byte {offset})"),
            Self::TrailingData { len } => write!(f, "{len} unexpected bytes after the data"),
            Self::BadCount { offset } => write!(f, "inconsistent array counts at byte {offset}"),
            Self::NullPointer { offset } => write!(f, "unexpected NULL pointer at byte {offset}"),
            Self::UnexpectedSwitch { value } => write!(f, "unexpected union switch {value}"),
            Self::BadValue { offset } => write!(f, "invalid value at byte {offset}"),
            Self::BadUtf16 { offset } => write!(f, "invalid UTF-16 text at byte {offset}"),
        }
    }
}

impl std::error::Error for NdrError {}

/// Errors of this crate. No variant ever carries a password, a hash, a key or an
/// encrypted buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host answered a request with an error status. See [`NtStatus::advice`] for
    /// what an operator can do about it.
    #[error("{call} failed: {status}")]
    Status {
        /// The request that failed.
        call: Call,
        /// The status the host returned.
        status: NtStatus,
    },
    /// The host answered a DCE/RPC request or bind with a fault PDU.
    #[error("{call}: RPC fault {}", crate::status::fault_text(*.code))]
    Fault {
        /// The request that failed.
        call: Call,
        /// The fault's status code (e.g. `0x1c010002`, opnum not served).
        code: u32,
    },
    /// The host rejected the DCE/RPC bind (bind_nak) or accepted no offered syntax.
    #[error("DCE/RPC bind rejected (reason {reason})")]
    BindRejected {
        /// The reject reason or the provider reason code from the bind answer.
        reason: u16,
    },
    /// A response's NDR data could not be decoded.
    #[error("malformed response to {call}: {source}")]
    Ndr {
        /// The request whose response was malformed.
        call: Call,
        /// What was wrong.
        source: NdrError,
    },
    /// The host broke the DCE/RPC or SMB protocol (wrong call id, unexpected PDU
    /// type, oversized fragment, ...).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The TCP connection could not be established (refused, unreachable, DNS).
    #[error("cannot connect to {host}:{port}: {reason}")]
    Connect {
        /// The host as configured.
        host: String,
        /// The TCP port.
        port: u16,
        /// Why (operating-system error text).
        reason: String,
    },
    /// An operation did not finish in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out ("connect", "SMB request", ...).
        what: &'static str,
        /// The configured limit.
        after: Duration,
    },
    /// The SMB layer failed (message from the SMB library, without secrets).
    #[error("SMB: {0}")]
    Smb(String),
    /// The host is a domain controller: its accounts are domain accounts, which this
    /// crate does not rotate (use credwheel-ad).
    #[error(
        "the host is a domain controller; its accounts are domain accounts: rotate them with credwheel-ad (LDAP), not as local accounts"
    )]
    DomainController,
    /// The host does not serve the AES password calls and the configuration forbids
    /// the RC4 fallback.
    #[error(
        "the host does not support the AES password calls ({call}) and the configuration is AES-only; allow the RC4 fallback or update the host"
    )]
    AesUnsupported {
        /// The AES call the host refused.
        call: Call,
    },
    /// The host refuses remote password changes of local accounts (e.g. Windows
    /// Server 2025 member hosts, by the "Configure SAM change password RPC methods
    /// policy"), and a reset through this session is not possible.
    #[error(
        "the host refuses remote password changes for local accounts (host policy, e.g. Windows Server 2025 \"Configure SAM change password RPC methods policy\"); use login as root (an administrator resets the password)"
    )]
    ChangeRefusedByHost,
    /// The account was not found on the host.
    #[error("no local account named {0:?} on the host")]
    NoSuchUser(String),
    /// The caller's input is invalid (user name, configuration, password length).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The new password would be rejected by the host's password policy.
    #[error("the host's password policy would reject the new password: {0}")]
    HostPolicy(String),
    /// A cryptographic operation failed (e.g. a MAC mismatch when decrypting).
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
}

impl Error {
    /// The NT_STATUS the host returned, if this error is one.
    pub fn nt_status(&self) -> Option<NtStatus> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A decode error for the response to `call`.
    pub(crate) fn ndr(call: Call, source: NdrError) -> Self {
        Self::Ndr { call, source }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
