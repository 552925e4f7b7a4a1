//! Plain data types shared by stores, sealing and the protocol.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::error::{Result, StateError};

/// Unix time in milliseconds. Every timestamp the crate stores uses this unit.
pub type Millis = i64;

/// Longest kind or scope accepted (bytes). Kind + scope + account together stay
/// under [`MAX_ID_TOTAL`] so that an id fits one PostgreSQL btree index entry.
pub const MAX_ID_PART: usize = 512;

/// Longest account name accepted (bytes).
pub const MAX_ACCOUNT: usize = 1024;

/// Longest kind + scope + account accepted (bytes).
pub const MAX_ID_TOTAL: usize = 1536;

/// Longest set name, configuration kind or configuration name accepted (bytes).
pub const MAX_NAME: usize = 512;

#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
struct IdParts {
    kind: String,
    scope: String,
    account: String,
}

/// The identity of one managed account: which kind of target (`"ad"`, `"sam"`, ...),
/// where (a domain or a host) and which account.
///
/// Comparison and ordering are exact (byte-wise, kind then scope then account):
/// callers that manage case-insensitive directories normalise names (e.g.
/// lower-case the sAMAccountName) before building an id. Cloning is cheap (shared).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId(Arc<IdParts>);

impl TargetId {
    /// A new id. Each part must be non-empty and free of control characters; kind
    /// and scope at most [`MAX_ID_PART`] bytes, the account at most [`MAX_ACCOUNT`],
    /// all three together at most [`MAX_ID_TOTAL`].
    pub fn new(
        kind: impl Into<String>,
        scope: impl Into<String>,
        account: impl Into<String>,
    ) -> Result<Self> {
        let p = IdParts {
            kind: kind.into(),
            scope: scope.into(),
            account: account.into(),
        };
        for (what, part, max) in [
            ("kind", &p.kind, MAX_ID_PART),
            ("scope", &p.scope, MAX_ID_PART),
            ("account", &p.account, MAX_ACCOUNT),
        ] {
            if part.is_empty() || part.len() > max || part.chars().any(char::is_control) {
                return Err(StateError::Invalid(format!(
                    "target id {what} must be 1..={max} bytes without control characters"
                )));
            }
        }
        if p.kind.len() + p.scope.len() + p.account.len() > MAX_ID_TOTAL {
            return Err(StateError::Invalid(format!(
                "target id must be at most {MAX_ID_TOTAL} bytes in total"
            )));
        }
        Ok(Self(Arc::new(p)))
    }

    /// The target kind, e.g. `"ad"` or `"sam"`.
    pub fn kind(&self) -> &str {
        &self.0.kind
    }

    /// The scope: a domain or a host.
    pub fn scope(&self) -> &str {
        &self.0.scope
    }

    /// The account name.
    pub fn account(&self) -> &str {
        &self.0.account
    }
}

impl fmt::Debug for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetId({self})")
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.kind(), self.scope(), self.account())
    }
}

/// Checks a set name, configuration kind or name.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(StateError::Invalid(format!(
            "{what} must be 1..={MAX_NAME} bytes without control characters"
        )));
    }
    Ok(())
}

/// A sealed (encrypted and authenticated) password, as stores keep it.
///
/// The bytes are `version(1) || key-id length(1) || key id || nonce(24) ||
/// ciphertext+tag`. Only a [`Sealer`](crate::Sealer) holding the key can open it,
/// and only for the record and field it was sealed for. Cloning is cheap (shared).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(Arc<[u8]>);

impl Sealed {
    /// Wraps bytes read from a store. Checked when opened.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes.into())
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
#[non_exhaustive]
pub struct Pending {
    /// Unique id of this attempt (a UUID in text form).
    pub attempt: String,
    /// The new password, sealed for field [`Field::Pending`](crate::Field::Pending).
    pub sealed: Sealed,
    /// When the pending record was written.
    pub created_at: Millis,
    /// The attempt never starts a target call after this time (minus the rotator's
    /// target margin), whatever claim renewals happen: a target change later than
    /// this (plus clock skew) was not made by this attempt.
    pub deadline: Millis,
}

impl Pending {
    /// A pending record (for stores reading rows and for tests).
    pub fn new(attempt: String, sealed: Sealed, created_at: Millis, deadline: Millis) -> Self {
        Self {
            attempt,
            sealed,
            created_at,
            deadline,
        }
    }
}

/// When an account is due for rotation. Stored with the account's record: a
/// rotation never changes it, only [`Rotator::set_schedule`](crate::Rotator::set_schedule)
/// (or an embedder writing the record) does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Schedule {
    /// Never due by itself (rotated only on request).
    #[default]
    None,
    /// Due `interval_ms` after the last rotation (a scheduler rotates it).
    Every {
        /// Interval in milliseconds (> 0).
        interval_ms: i64,
    },
    /// The password is valid for `ttl_ms` after it was set; after that it is due
    /// (typically rotated lazily by the next reader with
    /// [`Rotator::fresh_credentials`](crate::Rotator::fresh_credentials), as
    /// Vault's roles do). `list_due` lists an expired one like `Every`; a
    /// scheduler that wants lazy rotation only skips `Ttl` records.
    Ttl {
        /// Time to live in milliseconds (> 0).
        ttl_ms: i64,
    },
    /// An embedder-defined rule (a cron line, "every 30 days at 02:00 Europe/Paris",
    /// ...) computed by the [`NextDue`](crate::NextDue) the rotator was given.
    External {
        /// The rule, opaque to this crate (at most 1024 bytes).
        spec: String,
    },
}

impl Schedule {
    pub(crate) fn check(&self) -> Result<()> {
        match self {
            Self::None => Ok(()),
            Self::Every { interval_ms: v } | Self::Ttl { ttl_ms: v } if *v > 0 => Ok(()),
            Self::Every { .. } | Self::Ttl { .. } => {
                Err(StateError::Invalid("schedule interval must be > 0".into()))
            }
            Self::External { spec } if !spec.is_empty() && spec.len() <= 1024 => Ok(()),
            Self::External { .. } => Err(StateError::Invalid(
                "external schedule spec must be 1..=1024 bytes".into(),
            )),
        }
    }

    /// A compact text form used by SQL stores: `none`, `every:<ms>`, `ttl:<ms>`,
    /// `ext:<spec>`.
    pub fn encode(&self) -> String {
        match self {
            Self::None => "none".into(),
            Self::Every { interval_ms } => format!("every:{interval_ms}"),
            Self::Ttl { ttl_ms } => format!("ttl:{ttl_ms}"),
            Self::External { spec } => format!("ext:{spec}"),
        }
    }

    /// Parses [`Schedule::encode`]'s form.
    pub fn decode(s: &str) -> Result<Self> {
        let bad = || StateError::Corrupt("malformed stored schedule".into());
        let sched = match s.split_once(':') {
            None if s == "none" => Self::None,
            Some(("every", v)) => Self::Every {
                interval_ms: v.parse().map_err(|_| bad())?,
            },
            Some(("ttl", v)) => Self::Ttl {
                ttl_ms: v.parse().map_err(|_| bad())?,
            },
            Some(("ext", v)) => Self::External { spec: v.to_owned() },
            _ => return Err(bad()),
        };
        sched.check().map_err(|_| bad())?;
        Ok(sched)
    }
}

/// Why a record needs an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReconcileKind {
    /// The target's password cannot be determined (neither stored password is
    /// known to be the target's).
    Unknown,
    /// Someone else changed the password on the target after our last commit.
    ChangedElsewhere,
    /// The target acknowledged a write but refused the new password afterwards.
    VerifyFailed,
    /// Too many failed rotation cycles in a row.
    TooManyFailures,
    /// The account is locked out on the target; more logons would make it worse.
    Locked,
    /// The stored current password was refused for a self-change.
    BadStoredPassword,
    /// An operator marked it.
    Operator,
}

impl ReconcileKind {
    /// A stable lower-case name (stored by SQL stores).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::ChangedElsewhere => "changed_elsewhere",
            Self::VerifyFailed => "verify_failed",
            Self::TooManyFailures => "too_many_failures",
            Self::Locked => "locked",
            Self::BadStoredPassword => "bad_stored_password",
            Self::Operator => "operator",
        }
    }

    /// Parses [`ReconcileKind::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "unknown" => Self::Unknown,
            "changed_elsewhere" => Self::ChangedElsewhere,
            "verify_failed" => Self::VerifyFailed,
            "too_many_failures" => Self::TooManyFailures,
            "locked" => Self::Locked,
            "bad_stored_password" => Self::BadStoredPassword,
            "operator" => Self::Operator,
            _ => return Err(StateError::Corrupt("unknown reconcile kind".into())),
        })
    }
}

/// Secret-free explanation for an operator.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Why {
    /// Classification.
    pub kind: ReconcileKind,
    /// Human-readable text (never a password).
    pub message: String,
}

impl Why {
    /// A new explanation.
    pub fn new(kind: ReconcileKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// The health of a record.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecordState {
    /// The stored current password is the target's (as far as we know).
    #[default]
    Ok,
    /// A rotation is in flight or was interrupted: the record carries a pending
    /// password the target may or may not have. The next rotation or
    /// [`Rotator::recover`](crate::Rotator::recover) settles it automatically.
    InDoubt,
    /// Automatic work stopped: no rotation, recovery or verification touches the
    /// target until [`Rotator::reconcile`](crate::Rotator::reconcile) or
    /// [`Rotator::adopt`](crate::Rotator::adopt) runs.
    NeedsReconcile {
        /// Since when.
        since: Millis,
        /// Why.
        why: Why,
    },
}

impl RecordState {
    /// Whether automatic rotation is stopped.
    pub fn needs_operator(&self) -> bool {
        matches!(self, Self::NeedsReconcile { .. })
    }

    /// `ok`, `in_doubt` or `needs_reconcile` (stored by SQL stores).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::InDoubt => "in_doubt",
            Self::NeedsReconcile { .. } => "needs_reconcile",
        }
    }
}

/// Everything the crate keeps about one managed account.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// Which account.
    pub id: TargetId,
    /// Bumped by every successful write; compare-and-swap is on this.
    pub version: u64,
    /// The password the target has (sealed for field `Current`).
    pub current: Option<Sealed>,
    /// Previous passwords, newest first (sealed for field `Last`); the first is the
    /// "last password". At most the rotator's `history` entries.
    pub history: Vec<Sealed>,
    /// A rotation in flight, if any.
    pub pending: Option<Pending>,
    /// When the current password was committed (our clock).
    pub set_at: Option<Millis>,
    /// The target's own "password last set" as observed right after our last
    /// commit (target clock): the baseline that tells our changes from others'.
    pub target_set_at: Option<Millis>,
    /// The account's schedule.
    pub schedule: Schedule,
    /// When the next rotation is due by the schedule (`None`: never).
    pub next_due: Option<Millis>,
    /// Health.
    pub state: RecordState,
    /// Failed rotation cycles in a row (reset by a commit).
    pub failures: u32,
    /// No automatic attempt before this time (backoff after a failure).
    pub retry_at: Option<Millis>,
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
            history: Vec::new(),
            pending: None,
            set_at: None,
            target_set_at: None,
            schedule: Schedule::None,
            next_due: None,
            state: RecordState::Ok,
            failures: 0,
            retry_at: None,
            last_error: None,
        }
    }

    /// The previous password (first history entry).
    pub fn last(&self) -> Option<&Sealed> {
        self.history.first()
    }

    /// Whether [`StateStore::list_due`](crate::StateStore::list_due) lists this
    /// record at `now`: not waiting for an operator, not backing off, and either in
    /// doubt or due by its schedule.
    pub fn is_due(&self, now: Millis) -> bool {
        !self.state.needs_operator()
            && self.retry_at.is_none_or(|t| t <= now)
            && (self.pending.is_some()
                || self.state == RecordState::InDoubt
                || self.next_due.is_some_and(|d| d <= now))
    }
}

/// A rotation claim: proof that the holder is the only one rotating an account.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claim {
    /// The claimed account.
    pub id: TargetId,
    /// Who holds it.
    pub holder: String,
    /// Fencing token: strictly increasing per account across all claims ever granted.
    pub token: u64,
    /// When it was granted or last renewed.
    pub renewed_at: Millis,
    /// When the claim lapses unless renewed.
    pub expires_at: Millis,
}

impl Claim {
    /// A claim as granted by a store (store implementations only).
    pub fn granted(
        id: TargetId,
        holder: String,
        token: u64,
        renewed_at: Millis,
        expires_at: Millis,
    ) -> Self {
        Self {
            id,
            holder,
            token,
            renewed_at,
            expires_at,
        }
    }

    /// The fence for writes made under this claim.
    pub fn fence(&self) -> Fence {
        Fence(self.token)
    }
}

/// Proof of a held claim passed to writes that must be fenced. Obtained only from a
/// [`Claim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence(u64);

impl Fence {
    /// The fencing token (for stores).
    pub fn token(self) -> u64 {
        self.0
    }
}

/// A check-out lease of one account of a set.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

impl Lease {
    /// A lease (store implementations only).
    pub fn new(
        lease_id: String,
        set: String,
        account: TargetId,
        borrower: String,
        issued_at: Millis,
        expires_at: Millis,
        max_expires_at: Millis,
    ) -> Self {
        Self {
            lease_id,
            set,
            account,
            borrower,
            issued_at,
            expires_at,
            max_expires_at,
        }
    }
}

/// Durations requested for a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseTerms {
    /// Time to live from now, in milliseconds (> 0).
    pub ttl_ms: i64,
    /// Maximum total lifetime from issue, in milliseconds (>= `ttl_ms`).
    pub max_ttl_ms: i64,
}

impl LeaseTerms {
    /// Terms with the given ttl and maximum ttl.
    pub fn new(ttl_ms: i64, max_ttl_ms: i64) -> Self {
        Self { ttl_ms, max_ttl_ms }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.ttl_ms <= 0 || self.max_ttl_ms < self.ttl_ms {
            return Err(StateError::Invalid(
                "lease ttl must be > 0 and <= max ttl".into(),
            ));
        }
        Ok(())
    }
}

/// Where an account of a set stands in the check-out cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemberState {
    /// Rotated since its last loan: may be lent.
    Available,
    /// Lent (the lease may have expired; it stays lent until checked in).
    Lent,
    /// Checked in (or newly added) and waiting for its rotation to commit; never
    /// lent in this state.
    Returning,
}

impl MemberState {
    /// `available`, `lent` or `returning` (stored by SQL stores).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Lent => "lent",
            Self::Returning => "returning",
        }
    }

    /// Parses [`MemberState::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "available" => Self::Available,
            "lent" => Self::Lent,
            "returning" => Self::Returning,
            _ => return Err(StateError::Corrupt("unknown member state".into())),
        })
    }
}

/// One account of a set: its state and, if lent, its lease.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetMember {
    /// The account.
    pub account: TargetId,
    /// Where it stands.
    pub state: MemberState,
    /// Bumped by every state change; [`StateStore::finish_return`](crate::StateStore::finish_return)
    /// is fenced on it.
    pub generation: u64,
    /// Its lease, if lent (possibly expired and waiting for a check-in).
    pub lease: Option<Lease>,
}

impl SetMember {
    /// A member (store implementations only).
    pub fn new(
        account: TargetId,
        state: MemberState,
        generation: u64,
        lease: Option<Lease>,
    ) -> Self {
        Self {
            account,
            state,
            generation,
            lease,
        }
    }
}

/// Settings of a check-out set.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetConfig {
    /// Default lease ttl in milliseconds (> 0).
    pub ttl_ms: i64,
    /// Maximum lease lifetime in milliseconds (>= `ttl_ms`).
    pub max_ttl_ms: i64,
    /// Only the borrower may check an account in (forced check-in aside).
    pub enforce_check_in: bool,
}

impl SetConfig {
    /// Settings with check-in enforcement on.
    pub fn new(ttl_ms: i64, max_ttl_ms: i64) -> Self {
        Self {
            ttl_ms,
            max_ttl_ms,
            enforce_check_in: true,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        LeaseTerms::new(self.ttl_ms, self.max_ttl_ms).check()
    }
}

/// A set and its stored settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetInfo {
    /// The set's name.
    pub name: String,
    /// Its settings.
    pub config: SetConfig,
    /// Bumped by every settings change (compare-and-swap).
    pub version: u64,
}

impl SetInfo {
    /// A set (store implementations only).
    pub fn new(name: String, config: SetConfig, version: u64) -> Self {
        Self {
            name,
            config,
            version,
        }
    }
}

/// A stored configuration document (a role, a rotation definition, ...): opaque
/// bytes (typically JSON) under (kind, name), versioned for compare-and-swap.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigDoc {
    /// What it is (e.g. `"ad.role"`).
    pub kind: String,
    /// Its name within the kind.
    pub name: String,
    /// Version, starting at 1.
    pub version: u64,
    /// The document.
    pub body: Vec<u8>,
}

impl ConfigDoc {
    /// A document (store implementations only).
    pub fn new(kind: String, name: String, version: u64, body: Vec<u8>) -> Self {
        Self {
            kind,
            name,
            version,
            body,
        }
    }
}

impl fmt::Debug for ConfigDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigDoc")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("len", &self.body.len())
            .finish()
    }
}

/// Longest configuration document accepted (bytes).
pub const MAX_CONFIG_BODY: usize = 1 << 20;

/// Checks a configuration document's kind, name and size (every store's
/// `put_config`).
pub(crate) fn check_config_doc(kind: &str, name: &str, body: &[u8]) -> Result<()> {
    check_name("configuration kind", kind)?;
    check_name("configuration name", name)?;
    if body.len() > MAX_CONFIG_BODY {
        return Err(StateError::Invalid(format!(
            "configuration document larger than {MAX_CONFIG_BODY} bytes"
        )));
    }
    Ok(())
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
#[allow(dead_code)]
pub(crate) fn to_sql_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StateError::Invalid("value out of range".into()))
}

pub(crate) fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
