//! Plain data types shared by stores, sealing and the protocol.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::error::{Result, StateError};

/// Unix time in milliseconds. Every timestamp the crate stores uses this unit.
pub type Millis = i64;

/// Longest kind, scope or account name accepted (bytes).
pub const MAX_ID_PART: usize = 1024;

/// The identity of one managed account: which kind of target (`"ad"`, `"sam"`, ...),
/// where (a domain or a host) and which account.
///
/// Comparison is exact (byte-wise): callers that manage case-insensitive directories
/// normalise names (e.g. lower-case the sAMAccountName) before building an id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId {
    kind: String,
    scope: String,
    account: String,
}

impl TargetId {
    /// A new id. Each part must be non-empty, at most [`MAX_ID_PART`] bytes and free
    /// of control characters.
    pub fn new(
        kind: impl Into<String>,
        scope: impl Into<String>,
        account: impl Into<String>,
    ) -> Result<Self> {
        let id = Self {
            kind: kind.into(),
            scope: scope.into(),
            account: account.into(),
        };
        for (what, part) in [
            ("kind", &id.kind),
            ("scope", &id.scope),
            ("account", &id.account),
        ] {
            if part.is_empty() || part.len() > MAX_ID_PART || part.chars().any(char::is_control) {
                return Err(StateError::Invalid(format!(
                    "target id {what} must be 1..={MAX_ID_PART} bytes without control characters"
                )));
            }
        }
        Ok(id)
    }

    /// The target kind, e.g. `"ad"` or `"sam"`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The scope: a domain or a host.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The account name.
    pub fn account(&self) -> &str {
        &self.account
    }
}

impl fmt::Debug for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetId({self})")
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.kind, self.scope, self.account)
    }
}

/// A sealed (encrypted and authenticated) password, as stores keep it.
///
/// The bytes are `version(1) || key-id length(1) || key id || nonce(24) ||
/// ciphertext+tag`. Only a [`Sealer`](crate::Sealer) holding the key can open it,
/// and only for the record and field it was sealed for.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(Vec<u8>);

impl Sealed {
    /// Wraps bytes read from a store. Checked when opened.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The raw bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The id of the key that sealed this value, if the header is well-formed.
    pub fn key_id(&self) -> Option<&str> {
        let len = usize::from(*self.0.get(1)?);
        let id = self.0.get(2..2 + len)?;
        std::str::from_utf8(id).ok()
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id())
            .field("len", &self.0.len())
            .finish_non_exhaustive()
    }
}

/// The write-ahead record of a rotation in flight: the new password, sealed, stored
/// durably *before* the target is touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Unique id of this attempt (a UUID in text form).
    pub attempt: String,
    /// The new password, sealed for field [`Field::Pending`](crate::Field::Pending).
    pub sealed: Sealed,
    /// When the pending record was written.
    pub created_at: Millis,
}

/// Everything the crate keeps about one managed account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Which account.
    pub id: TargetId,
    /// Bumped by every successful write; compare-and-swap is on this.
    pub version: u64,
    /// The password the target has (sealed for field `Current`).
    pub current: Option<Sealed>,
    /// The password before it (sealed for field `Last`).
    pub last: Option<Sealed>,
    /// A rotation in flight, if any.
    pub pending: Option<Pending>,
    /// When the current password was committed.
    pub last_rotated: Option<Millis>,
    /// When the next rotation is due.
    pub next_due: Option<Millis>,
    /// The last rotation error (secret-free text), cleared by a successful rotation.
    pub last_error: Option<String>,
}

impl Record {
    /// An empty record for `id` (version 0: not yet stored).
    pub fn new(id: TargetId) -> Self {
        Self {
            id,
            version: 0,
            current: None,
            last: None,
            pending: None,
            last_rotated: None,
            next_due: None,
            last_error: None,
        }
    }
}

/// A rotation claim: proof that the holder is the only one rotating an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The claimed account.
    pub id: TargetId,
    /// Who holds it.
    pub holder: String,
    /// Fencing token: strictly increasing per account across all claims ever granted.
    pub token: u64,
    /// When the claim lapses unless renewed.
    pub expires_at: Millis,
}

/// Proof of a held claim passed to writes that must be fenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence(pub u64);

impl Claim {
    /// The fence for writes made under this claim.
    pub fn fence(&self) -> Fence {
        Fence(self.token)
    }
}

/// A check-out lease of one account of a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Unique lease id (a UUID in text form).
    pub lease_id: String,
    /// The set it was taken from.
    pub set: String,
    /// The lent account.
    pub account: TargetId,
    /// Who borrowed it.
    pub borrower: String,
    /// When it was taken.
    pub issued_at: Millis,
    /// When it expires unless renewed.
    pub expires_at: Millis,
    /// The latest `expires_at` renewals may reach.
    pub max_expires_at: Millis,
}

/// Durations requested for a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTerms {
    /// Time to live from now, in milliseconds (> 0).
    pub ttl_ms: i64,
    /// Maximum total lifetime from issue, in milliseconds (>= `ttl_ms`).
    pub max_ttl_ms: i64,
}

impl LeaseTerms {
    pub(crate) fn check(&self) -> Result<()> {
        if self.ttl_ms <= 0 || self.max_ttl_ms < self.ttl_ms {
            return Err(StateError::Invalid(
                "lease ttl must be > 0 and <= max ttl".into(),
            ));
        }
        Ok(())
    }
}

/// One account of a set and its lease, if lent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetMember {
    /// The account.
    pub account: TargetId,
    /// Its lease, if lent (possibly expired and waiting for a check-in).
    pub lease: Option<Lease>,
}

/// A source of the current time, so tests can control it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in Unix milliseconds.
    fn now(&self) -> Millis;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to (for tests).
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Millis) -> Self {
        Self(Arc::new(AtomicI64::new(start)))
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, now: Millis) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// Every store validates a claim or lease ttl the same way.
pub(crate) fn check_ttl(ttl_ms: i64, what: &'static str) -> Result<()> {
    if ttl_ms <= 0 {
        return Err(StateError::Invalid(format!("{what} ttl must be > 0")));
    }
    Ok(())
}

/// Versions and fencing tokens are `u64` in the API and `i64` in SQL stores.
pub(crate) fn to_sql_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StateError::Invalid("value out of range".into()))
}

pub(crate) fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
