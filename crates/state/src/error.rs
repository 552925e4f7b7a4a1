//! The crate's error type.

use std::fmt;

/// Why a conditional write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConflictReason {
    /// The record's version is not the one the caller read (someone else wrote first).
    Version,
    /// The thing being created already exists.
    AlreadyExists,
    /// Another holder has an unexpired rotation claim on this account.
    ClaimHeld,
    /// The caller's fencing token is no longer the account's current claim: the claim
    /// lapsed and was taken over.
    Fenced,
    /// The account already belongs to another set.
    OtherSet,
    /// The account is lent and cannot be removed from its set.
    Leased,
    /// The set member is not in the state the transition needs (e.g. a check-in
    /// of an account that is no longer lent under that lease).
    MemberState,
    /// The set still has members.
    NotEmpty,
}

impl fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Version => "version changed",
            Self::AlreadyExists => "already exists",
            Self::ClaimHeld => "claimed by another holder",
            Self::Fenced => "claim lost (fencing token superseded)",
            Self::OtherSet => "account belongs to another set",
            Self::Leased => "account is lent",
            Self::MemberState => "set member is not in the expected state",
            Self::NotEmpty => "set is not empty",
        })
    }
}

/// What was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Missing {
    /// The credential record.
    Record,
    /// The record has no current password.
    CurrentPassword,
    /// The check-out set.
    Set,
    /// The lease (never existed, or already ended).
    Lease,
    /// The account is not a member of the set.
    Member,
    /// The configuration document.
    Config,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Record => "record",
            Self::CurrentPassword => "current password",
            Self::Set => "set",
            Self::Lease => "lease",
            Self::Member => "set member",
            Self::Config => "configuration document",
        })
    }
}

/// How a [`RotationTarget`](crate::RotationTarget) operation failed.
///
/// The classification drives the rotation protocol: only [`TargetErrorKind::Unavailable`]
/// and [`TargetErrorKind::Other`] leave it unknown whether the target applied a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetErrorKind {
    /// The target refused the new password (complexity, history, length, minimum age).
    /// The current password stays valid; retrying with the same password is useless.
    Rejected,
    /// The credentials used to talk to the target (admin bind, or the current password
    /// for a self-change) were refused.
    BadCredentials,
    /// The caller lacks the right to do this (e.g. no Reset Password right).
    Denied,
    /// The account does not exist on the target.
    NoSuchAccount,
    /// The account is locked out (too many failed logons). More logon attempts make it
    /// worse: an operator or an explicit unlock must act.
    AccountLocked,
    /// The account is disabled on the target.
    AccountDisabled,
    /// The account's password has expired or must be changed at next logon.
    PasswordExpired,
    /// The target could not be reached or timed out; a write may or may not have landed.
    Unavailable,
    /// Anything else (protocol error, unexpected answer); a write may have landed.
    Other,
}

impl TargetErrorKind {
    /// Whether a write that failed with this kind certainly did *not* change the
    /// target's password.
    pub fn certainly_not_applied(self) -> bool {
        matches!(
            self,
            Self::Rejected
                | Self::BadCredentials
                | Self::Denied
                | Self::NoSuchAccount
                | Self::AccountLocked
                | Self::AccountDisabled
                | Self::PasswordExpired
        )
    }
}

/// An error reported by a [`RotationTarget`](crate::RotationTarget).
///
/// Implementors must never put a password (or anything derived from one) into the
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    kind: TargetErrorKind,
    message: String,
}

impl TargetError {
    /// A target error of `kind` with a human-readable, secret-free `message`.
    pub fn new(kind: TargetErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The classification.
    pub fn kind(&self) -> TargetErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for TargetError {}

/// Errors of stores, sealing and the rotation protocol. No variant ever carries a
/// password, a key or ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A conditional write lost (version, claim, set membership, ...).
    #[error("conflict: {0}")]
    Conflict(ConflictReason),
    /// The named thing does not exist.
    #[error("not found: {0}")]
    NotFound(Missing),
    /// Less than the rotator's target margin remains of the rotation claim (or of
    /// the attempt's deadline): the target was not touched.
    #[error("rotation claim too short: {remaining_ms} ms left, {needed_ms} ms needed")]
    ClaimTooShort {
        /// Milliseconds left.
        remaining_ms: i64,
        /// The margin required.
        needed_ms: i64,
    },
    /// Another holder is rotating the account and did not finish within the wait.
    #[error("rotation in flight by another holder (claim lapses at {expires_at}, holder {})",
        if *.holder_silent { "silent" } else { "active" })]
    InFlight {
        /// When the holder's claim lapses unless renewed.
        expires_at: crate::Millis,
        /// The holder has not renewed its claim for longer than a live holder
        /// would (it probably died; the claim lapses at `expires_at`).
        holder_silent: bool,
    },
    /// No account of the set is free to lend.
    #[error("no accounts available for check-out in this set")]
    NoneAvailable,
    /// The lease or claim has expired.
    #[error("expired")]
    Expired,
    /// The lease belongs to another borrower (check-in enforcement).
    #[error("lease belongs to another borrower")]
    NotBorrower,
    /// The backend failed or is unreachable (message from the backend, without secrets).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data is malformed.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A key could not be loaded or is malformed.
    #[error("key error: {0}")]
    Key(String),
    /// A sealed value failed to open: wrong key, wrong record or field, or tampering.
    #[error("sealed value failed to open (wrong key, record or field, or tampered)")]
    Unseal,
    /// The sealed value names a key id the key ring does not hold.
    #[error("unknown sealing key id {0:?}")]
    UnknownKey(String),
    /// Invalid argument.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The rotation target failed.
    #[error("target: {0}")]
    Target(TargetError),
    /// The password source failed to produce a password.
    #[error("password generation failed: {0}")]
    Generate(String),
}

/// Result alias.
pub type Result<T, E = StateError> = std::result::Result<T, E>;
