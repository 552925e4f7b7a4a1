//! The rotation target trait and the crash-safe rotation protocol.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::error::{ConflictReason, Result, StateError, TargetError, TargetErrorKind};
use crate::seal::{Field, Sealer};
use crate::store::StateStore;
use crate::types::{
    Claim, Clock, Lease, LeaseTerms, Millis, Pending, ReconcileKind, Record, RecordState, Schedule,
    SetMember, SystemClock, TargetId, Why, new_uuid,
};

/// A directory or host whose account passwords can be set, changed and checked:
/// Active Directory over LDAPS, a Windows SAM over SMB/SAMR, or a fake in tests.
///
/// Implementations must:
/// - bound every call by a timeout shorter than the rotator's claim length minus
///   [`RotatorConfig::target_margin_ms`];
/// - classify failures with [`TargetErrorKind`] honestly: a kind for which
///   [`TargetErrorKind::certainly_not_applied`] is true must only be returned when
///   the target certainly did not change the password;
/// - from [`verify`](RotationTarget::verify), return `Ok(false)` only when the
///   target definitively refused the password as wrong, and an error for anything
///   else (unreachable, account locked out or disabled);
/// - never put a password into an error message or a log.
#[async_trait]
pub trait RotationTarget: Send + Sync {
    /// Sets the password with administrative rights, without knowing the current
    /// one (LDAP `unicodePwd` *replace*; SAMR `SamrSetInformationUser2`).
    async fn set_password_as_admin(
        &self,
        account: &TargetId,
        new_password: &SecretString,
    ) -> Result<(), TargetError>;

    /// Changes the password as the account itself, proving the current one (LDAP
    /// `unicodePwd` *delete old + add new*; SAMR `SamrUnicodeChangePasswordUser2`).
    /// Subject to the target's history and minimum-age rules.
    async fn change_password(
        &self,
        account: &TargetId,
        current_password: &SecretString,
        new_password: &SecretString,
    ) -> Result<(), TargetError>;

    /// Whether the target accepts `password` for the account now (an LDAP simple
    /// bind; an SMB session setup). Note that AD and Samba keep accepting the
    /// previous password for a while after a reset.
    async fn verify(
        &self,
        account: &TargetId,
        password: &SecretString,
    ) -> Result<bool, TargetError>;

    /// When the target last saw the password set (`pwdLastSet`; the SAM's
    /// `PasswordLastSet`), in Unix milliseconds, or `None` if it does not know.
    async fn password_last_set(&self, account: &TargetId) -> Result<Option<Millis>, TargetError>;
}

/// How the new password reaches the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RotationMethod {
    /// [`RotationTarget::set_password_as_admin`]: needs an administrative
    /// connection, ignores minimum age.
    AdminReset,
    /// [`RotationTarget::change_password`] with the stored current password.
    SelfChange,
}

/// Produces new passwords. This crate knows no password policy: the facade's
/// `credwheel::PolicySource` adapts a `credwheel_policy::Policy`, and any closure
/// `Fn(&TargetId) -> Result<SecretString>` works.
pub trait PasswordSource: Send + Sync {
    /// A fresh password for `account`.
    fn generate(&self, account: &TargetId) -> Result<SecretString>;
}

impl<F> PasswordSource for F
where
    F: Fn(&TargetId) -> Result<SecretString> + Send + Sync,
{
    fn generate(&self, account: &TargetId) -> Result<SecretString> {
        self(account)
    }
}

/// Computes due times for [`Schedule::External`] rules (cron lines, "every N days
/// at HH:MM in a time zone", ...). The embedder registers one with
/// [`Rotator::with_next_due`].
pub trait NextDue: Send + Sync {
    /// When an account rotated at `set_at` under rule `spec` is next due
    /// (`None`: never). An error refuses the rule (nothing is changed).
    fn next_due(&self, spec: &str, set_at: Millis) -> Result<Option<Millis>>;
}

impl<F> NextDue for F
where
    F: Fn(&str, Millis) -> Result<Option<Millis>> + Send + Sync,
{
    fn next_due(&self, spec: &str, set_at: Millis) -> Result<Option<Millis>> {
        self(spec, set_at)
    }
}

/// Settings of a [`Rotator`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RotatorConfig {
    /// Identifies this process or instance in claims (default: a random UUID).
    pub holder: String,
    /// Claim length (default 120 s). The claim is renewed every third of it while
    /// a target call runs.
    pub claim_ttl_ms: i64,
    /// No target call starts when less than this remains of the claim (after an
    /// attempt to renew it) or of the attempt's deadline (default 30 s). Target
    /// calls must time out well within it.
    pub target_margin_ms: i64,
    /// Longest time one rotation attempt may touch the target, from its pending
    /// write (default 10 min); the deadline is stored with the pending record.
    pub max_attempt_ms: i64,
    /// Tolerance when comparing the target's clock with ours (default 5 s).
    pub clock_skew_ms: i64,
    /// First backoff after a failed attempt (default 1 min); doubles with every
    /// further failure.
    pub backoff_base_ms: i64,
    /// Longest backoff (default 6 h).
    pub backoff_max_ms: i64,
    /// After this many failed cycles in a row the record needs an operator
    /// (default 5).
    pub max_failures: u32,
    /// Previous passwords kept per account (default 1; LAPS keeps up to 12).
    pub history: usize,
    /// Keep opened credentials in memory per (account, version), so repeated
    /// [`Rotator::credentials`] calls skip decryption (default true).
    pub cache_credentials: bool,
}

impl Default for RotatorConfig {
    fn default() -> Self {
        Self {
            holder: new_uuid(),
            claim_ttl_ms: 120_000,
            target_margin_ms: 30_000,
            max_attempt_ms: 600_000,
            clock_skew_ms: 5_000,
            backoff_base_ms: 60_000,
            backoff_max_ms: 6 * 3_600_000,
            max_failures: 5,
            history: 1,
            cache_credentials: true,
        }
    }
}

impl RotatorConfig {
    /// Defaults with the given holder name.
    pub fn with_holder(holder: impl Into<String>) -> Self {
        Self {
            holder: holder.into(),
            ..Self::default()
        }
    }

    fn check(&self) -> Result<()> {
        if self.claim_ttl_ms <= 0
            || self.target_margin_ms < 0
            || self.target_margin_ms >= self.claim_ttl_ms
            || self.max_attempt_ms <= self.target_margin_ms
            || self.backoff_base_ms <= 0
            || self.backoff_max_ms < self.backoff_base_ms
            || self.max_failures == 0
        {
            return Err(StateError::Invalid(
                "rotator config: need 0 <= margin < claim ttl, margin < max attempt, \
                 0 < backoff base <= backoff max, max failures >= 1"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// When a rotation should happen at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Precondition {
    /// Rotate now (a manual rotation), even while backing off. A record that needs
    /// an operator is still left alone.
    Always,
    /// Only if the stored version is still this one: of many callers that all saw
    /// version V (e.g. an expired password), one rotates, the others get
    /// [`RotationOutcome::Skipped`] with the fresh version.
    IfVersion(u64),
    /// Only if the record is due at this time ([`Record::is_due`]: by schedule or
    /// in doubt, and not backing off).
    IfDue(Millis),
    /// Unless the record is backing off at this time (retries of a check-in).
    UnlessBackingOff(Millis),
}

/// Options of one rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotateOptions {
    /// Admin reset or self-change.
    pub method: RotationMethod,
    /// When to rotate at all.
    pub precondition: Precondition,
    /// How long to wait for another holder's rotation in flight (`None`: fail at
    /// once with [`StateError::InFlight`]).
    pub wait: Option<Duration>,
    /// Keep the schedule's anchor: a rotation off schedule leaves a future
    /// `next_due` as it is instead of restarting the interval.
    pub keep_anchor: bool,
}

impl RotateOptions {
    /// Rotate now with `method`, no waiting, restarting the schedule.
    pub fn new(method: RotationMethod) -> Self {
        Self {
            method,
            precondition: Precondition::Always,
            wait: None,
            keep_anchor: false,
        }
    }

    /// With a precondition.
    #[must_use]
    pub fn precondition(mut self, p: Precondition) -> Self {
        self.precondition = p;
        self
    }

    /// Waiting up to `d` for a rotation in flight.
    #[must_use]
    pub fn wait(mut self, d: Duration) -> Self {
        self.wait = Some(d);
        self
    }

    /// Keeping the schedule's anchor.
    #[must_use]
    pub fn keep_anchor(mut self, keep: bool) -> Self {
        self.keep_anchor = keep;
        self
    }
}

/// Why a rotation was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The version changed (someone else rotated).
    VersionChanged,
    /// Not due.
    NotDue,
    /// Backing off after failures until this time.
    BackingOff {
        /// When attempts resume.
        until: Millis,
    },
}

/// What a rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationOutcome {
    /// The target has the new password and the store says so.
    Rotated {
        /// Version of the committed record.
        version: u64,
    },
    /// Nothing was done; the record is at `version`.
    Skipped {
        /// The record's current version.
        version: u64,
        /// Why.
        reason: SkipReason,
    },
    /// The target failed. The failure is recorded (backoff until `retry_at`).
    Failed {
        /// The target's (secret-free) error.
        error: TargetError,
        /// Whether the target may have applied the new password: the record keeps
        /// it pending ([`RecordState::InDoubt`]) for the next attempt or
        /// [`Rotator::recover`] to settle. `false`: the current password is still
        /// the target's.
        in_doubt: bool,
        /// No automatic attempt before this time.
        retry_at: Option<Millis>,
    },
    /// Automatic work stopped: an operator (or [`Rotator::reconcile`] /
    /// [`Rotator::adopt`]) must act. The target was not touched if the record was
    /// already in this state.
    NeedsReconcile {
        /// Why.
        why: Why,
    },
}

/// What [`Rotator::recover`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoverOutcome {
    /// No rotation was in flight.
    Clean,
    /// The target had the pending password: it is now the current one.
    RolledForward {
        /// Version of the committed record.
        version: u64,
    },
    /// The target still had the current password: the pending one was dropped.
    RolledBack {
        /// Version of the record.
        version: u64,
    },
    /// The target could not be asked (recorded with a backoff; still in doubt).
    Failed {
        /// The target's error.
        error: TargetError,
        /// No automatic attempt before this time.
        retry_at: Option<Millis>,
    },
    /// The target's password could not be determined; an operator must act.
    NeedsReconcile {
        /// Why.
        why: Why,
    },
}

/// How [`Rotator::reconcile`] re-synchronises an account.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ReconcileMethod {
    /// An admin reset to a fresh password (always fresh: a pending password the
    /// target rejected is never retried).
    AdminReset,
    /// A self-change to a fresh password, for accounts that can only change
    /// themselves. From `current` if the operator supplies the password the target
    /// has now; otherwise the stored pending and current passwords are tried with
    /// one verification each (at most two failed logons, on explicit request).
    SelfChange {
        /// The password the target has now, if the operator knows it.
        current: Option<SecretString>,
    },
}

/// Who holds a rotation in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InFlight {
    /// The holder.
    pub holder: String,
    /// When its claim lapses unless renewed.
    pub expires_at: Millis,
    /// The holder has not renewed its claim for longer than a live holder would
    /// (it renews every third of the claim length while it works): it probably
    /// died, and its claim lapses at `expires_at`.
    pub holder_silent: bool,
}

/// What a check-in did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckIn {
    /// The member after the check-in: [`Available`](crate::MemberState::Available)
    /// if the rotation committed, still [`Returning`](crate::MemberState::Returning)
    /// otherwise (retried later with [`Rotator::complete_return`]).
    pub member: SetMember,
    /// The rotation's outcome.
    pub rotation: RotationOutcome,
}

/// An account's credentials as of one record version, opened. Cheap to clone.
#[derive(Clone)]
pub struct Credentials(Arc<CredInner>);

struct CredInner {
    id: TargetId,
    current: SecretString,
    history: Vec<SecretString>,
    version: u64,
    set_at: Option<Millis>,
    due_at: Option<Millis>,
    state: RecordState,
    in_flight: bool,
    retry_at: Option<Millis>,
}

impl Credentials {
    /// The account.
    pub fn id(&self) -> &TargetId {
        &self.0.id
    }
    /// The current password.
    pub fn current(&self) -> &SecretString {
        &self.0.current
    }
    /// The previous password, if any.
    pub fn last(&self) -> Option<&SecretString> {
        self.0.history.first()
    }
    /// Previous passwords, newest first.
    pub fn history(&self) -> &[SecretString] {
        &self.0.history
    }
    /// The record version these come from.
    pub fn version(&self) -> u64 {
        self.0.version
    }
    /// When the current password was set (our clock).
    pub fn set_at(&self) -> Option<Millis> {
        self.0.set_at
    }
    /// When it is due for rotation by its schedule.
    pub fn due_at(&self) -> Option<Millis> {
        self.0.due_at
    }
    /// The record's health.
    pub fn state(&self) -> &RecordState {
        &self.0.state
    }
    /// Whether a rotation was pending (in flight or interrupted) at this version.
    pub fn in_flight(&self) -> bool {
        self.0.in_flight
    }
    /// Whether a lazy reader should rotate at `now`: due by schedule or in doubt,
    /// not backing off, not waiting for an operator.
    pub fn is_due(&self, now: Millis) -> bool {
        !self.0.state.needs_operator()
            && self.0.retry_at.is_none_or(|t| t <= now)
            && (self.0.in_flight
                || self.0.state == RecordState::InDoubt
                || self.0.due_at.is_some_and(|d| d <= now))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.0.id)
            .field("version", &self.0.version)
            .field("set_at", &self.0.set_at)
            .field("due_at", &self.0.due_at)
            .field("state", &self.0.state)
            .finish_non_exhaustive()
    }
}

/// A held rotation claim. Dropping it without [`ClaimGuard::release`] (e.g. when
/// the caller's timeout drops a rotation future) releases it in the background
/// on the current tokio runtime, so a cancelled rotation does not block the
/// account for the claim's full length.
#[must_use = "a claim guard releases its claim when dropped"]
pub struct ClaimGuard {
    store: Arc<dyn StateStore>,
    claim: Claim,
    released: bool,
}

impl fmt::Debug for ClaimGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimGuard")
            .field("claim", &self.claim)
            .finish_non_exhaustive()
    }
}

impl ClaimGuard {
    /// The claim (its expiry follows renewals).
    pub fn claim(&self) -> &Claim {
        &self.claim
    }

    /// Releases the claim now.
    pub async fn release(mut self) {
        self.released = true;
        if let Err(e) = self.store.release_claim(&self.claim).await {
            tracing::warn!(error = %e, "releasing a rotation claim failed; it will lapse");
        }
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            let claim = self.claim.clone();
            rt.spawn(async move {
                if let Err(e) = store.release_claim(&claim).await {
                    tracing::warn!(error = %e, "releasing a dropped rotation claim failed");
                }
            });
        }
    }
}

/// Runs the rotation protocol for any [`RotationTarget`] over any [`StateStore`],
/// and the check-out cycle on top of it.
///
/// See the crate documentation for the protocol and its crash analysis.
pub struct Rotator {
    store: Arc<dyn StateStore>,
    sealer: Arc<Sealer>,
    clock: Arc<dyn Clock>,
    config: RotatorConfig,
    next_due: Option<Arc<dyn NextDue>>,
    cache: Mutex<HashMap<TargetId, Credentials>>,
}

impl fmt::Debug for Rotator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotator")
            .field("sealer", &self.sealer)
            .field("clock", &self.clock)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How a password reaches the target in one attempt.
enum Apply {
    Admin,
    SelfChange(SecretString),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const POLL_MIN_MS: u64 = 10;
const POLL_MAX_MS: u64 = 500;

impl Rotator {
    /// A rotator with the system clock (see [`Rotator::try_new`] to check the
    /// config).
    pub fn new(store: Arc<dyn StateStore>, sealer: Arc<Sealer>, config: RotatorConfig) -> Self {
        Self::with_clock(store, sealer, Arc::new(SystemClock), config)
    }

    /// A rotator, refusing an inconsistent config.
    pub fn try_new(
        store: Arc<dyn StateStore>,
        sealer: Arc<Sealer>,
        config: RotatorConfig,
    ) -> Result<Self> {
        config.check()?;
        Ok(Self::new(store, sealer, config))
    }

    /// A rotator with an explicit clock (tests).
    pub fn with_clock(
        store: Arc<dyn StateStore>,
        sealer: Arc<Sealer>,
        clock: Arc<dyn Clock>,
        config: RotatorConfig,
    ) -> Self {
        Self {
            store,
            sealer,
            clock,
            config,
            next_due: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Registers the calculator for [`Schedule::External`] rules.
    #[must_use]
    pub fn with_next_due(mut self, next_due: Arc<dyn NextDue>) -> Self {
        self.next_due = Some(next_due);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The sealer.
    pub fn sealer(&self) -> &Arc<Sealer> {
        &self.sealer
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The config.
    pub fn config(&self) -> &RotatorConfig {
        &self.config
    }

    fn now(&self) -> Millis {
        self.clock.now()
    }

    /// When `schedule` next falls due after a rotation at `set_at`.
    pub fn due_after(&self, schedule: &Schedule, set_at: Millis) -> Result<Option<Millis>> {
        schedule.check()?;
        match schedule {
            Schedule::None => Ok(None),
            Schedule::Every { interval_ms: i } | Schedule::Ttl { ttl_ms: i } => {
                Ok(Some(set_at.saturating_add(*i)))
            }
            Schedule::External { spec } => match &self.next_due {
                Some(n) => n.next_due(spec, set_at),
                None => Err(StateError::Invalid(
                    "an external schedule needs a NextDue (Rotator::with_next_due)".into(),
                )),
            },
        }
    }

    /// Starts managing an account whose password is known: stores a record with
    /// `password` sealed as current and the account's schedule (first due one
    /// period from now). Without a target baseline: prefer
    /// [`Rotator::enroll_verified`] when the target can be asked.
    pub async fn enroll(
        &self,
        id: &TargetId,
        password: &SecretString,
        schedule: Schedule,
    ) -> Result<Record> {
        let now = self.now();
        let mut rec = Record::new(id.clone());
        rec.next_due = self.due_after(&schedule, now)?;
        rec.schedule = schedule;
        rec.current = Some(self.sealer.seal(id, Field::Current, password)?);
        rec.set_at = Some(now);
        rec.version = self.store.create_record(&rec).await?;
        Ok(rec)
    }

    /// [`Rotator::enroll`] after checking that the target accepts `password`, and
    /// recording the target's "password last set" as the baseline.
    pub async fn enroll_verified(
        &self,
        target: &dyn RotationTarget,
        id: &TargetId,
        password: &SecretString,
        schedule: Schedule,
    ) -> Result<Record> {
        if !target
            .verify(id, password)
            .await
            .map_err(StateError::Target)?
        {
            return Err(StateError::Target(TargetError::new(
                TargetErrorKind::BadCredentials,
                "the target refused the password given for enrolment",
            )));
        }
        let baseline = target
            .password_last_set(id)
            .await
            .map_err(StateError::Target)?;
        let now = self.now();
        let mut rec = Record::new(id.clone());
        rec.next_due = self.due_after(&schedule, now)?;
        rec.schedule = schedule;
        rec.current = Some(self.sealer.seal(id, Field::Current, password)?);
        rec.set_at = Some(now);
        rec.target_set_at = baseline;
        rec.version = self.store.create_record(&rec).await?;
        Ok(rec)
    }

    /// Replaces an account's schedule and recomputes `next_due` from the last
    /// rotation (or from now if never rotated). Returns the new version.
    pub async fn set_schedule(&self, id: &TargetId, schedule: Schedule) -> Result<u64> {
        loop {
            let mut rec = self.store.get_record(id).await?;
            let anchor = rec.set_at.unwrap_or_else(|| self.now());
            rec.next_due = self.due_after(&schedule, anchor)?;
            rec.schedule = schedule.clone();
            match self.store.compare_and_swap(&rec, rec.version, None).await {
                Err(StateError::Conflict(ConflictReason::Version)) => {}
                other => return other,
            }
        }
    }

    /// The account's credentials from one record read: current and previous
    /// passwords, version, when set, when due, health. Opened values are cached
    /// per (account, version) unless disabled in the config.
    pub async fn credentials(&self, id: &TargetId) -> Result<Credentials> {
        let rec = self.store.get_record(id).await?;
        if self.config.cache_credentials
            && let Some(c) = lock(&self.cache).get(id)
            && c.0.version == rec.version
        {
            return Ok(c.clone());
        }
        let sealed = rec
            .current
            .as_ref()
            .ok_or(StateError::NotFound(crate::Missing::CurrentPassword))?;
        let current = self.sealer.open(id, Field::Current, sealed)?;
        let history = rec
            .history
            .iter()
            .map(|s| self.sealer.open(id, Field::Last, s))
            .collect::<Result<Vec<_>>>()?;
        let creds = Credentials(Arc::new(CredInner {
            id: id.clone(),
            current,
            history,
            version: rec.version,
            set_at: rec.set_at,
            due_at: rec.next_due,
            state: rec.state.clone(),
            in_flight: rec.pending.is_some(),
            retry_at: rec.retry_at,
        }));
        if self.config.cache_credentials {
            lock(&self.cache).insert(id.clone(), creds.clone());
        }
        Ok(creds)
    }

    /// Drops cached credentials (all accounts).
    pub fn clear_cache(&self) {
        lock(&self.cache).clear();
    }

    /// The current password of an account and the record version it comes from.
    pub async fn current_password(&self, id: &TargetId) -> Result<(SecretString, u64)> {
        let c = self.credentials(id).await?;
        Ok((c.current().clone(), c.version()))
    }

    /// The previous password of an account, if any.
    pub async fn last_password(&self, id: &TargetId) -> Result<Option<SecretString>> {
        Ok(self.credentials(id).await?.last().cloned())
    }

    /// Credentials for a lazy reader: if the password is due at the rotator's
    /// clock (expired by its schedule or in doubt), rotates it first, conditional
    /// on the version read, waiting up to `wait` for a rotation in flight. Of many
    /// concurrent readers, one rotates and the others read its result. If the
    /// rotation fails, the stored credentials are returned as they are (see
    /// [`Credentials::state`]).
    pub async fn fresh_credentials(
        &self,
        target: &dyn RotationTarget,
        id: &TargetId,
        source: &dyn PasswordSource,
        method: RotationMethod,
        wait: Duration,
    ) -> Result<Credentials> {
        let started = std::time::Instant::now();
        loop {
            let c = self.credentials(id).await?;
            if !c.is_due(self.now()) {
                return Ok(c);
            }
            let Some(left) = wait.checked_sub(started.elapsed()) else {
                return Ok(c);
            };
            let opts = RotateOptions::new(method)
                .precondition(Precondition::IfVersion(c.version()))
                .wait(left);
            match self.rotate(target, id, source, opts).await {
                // Someone else wrote meanwhile (perhaps only the pending record of
                // a rotation still in flight): read again, wait for it if needed.
                Ok(RotationOutcome::Skipped {
                    reason: SkipReason::VersionChanged,
                    ..
                }) => {}
                Ok(_) => return self.credentials(id).await,
                Err(StateError::InFlight { .. }) => return Ok(c),
                Err(e) => return Err(e),
            }
        }
    }

    /// Who is rotating `id` right now, if anyone.
    pub async fn in_flight(&self, id: &TargetId) -> Result<Option<InFlight>> {
        let now = self.now();
        Ok(self
            .store
            .get_claim(id)
            .await?
            .filter(|c| c.expires_at > now)
            .map(|c| self.describe(&c, now)))
    }

    fn describe(&self, c: &Claim, now: Millis) -> InFlight {
        InFlight {
            holder: c.holder.clone(),
            expires_at: c.expires_at,
            holder_silent: now - c.renewed_at > self.config.claim_ttl_ms / 3 * 2,
        }
    }

    fn precondition_holds(&self, rec: &Record, p: Precondition) -> Option<SkipReason> {
        match p {
            Precondition::Always => None,
            Precondition::IfVersion(v) => (rec.version != v).then_some(SkipReason::VersionChanged),
            Precondition::IfDue(now) => {
                if let Some(until) = rec.retry_at.filter(|t| *t > now) {
                    Some(SkipReason::BackingOff { until })
                } else {
                    (!rec.is_due(now)).then_some(SkipReason::NotDue)
                }
            }
            Precondition::UnlessBackingOff(now) => rec
                .retry_at
                .filter(|t| *t > now)
                .map(|until| SkipReason::BackingOff { until }),
        }
    }

    /// Claims `id` for this rotator's holder, waiting up to `wait` for a holder in
    /// flight. [`StateError::InFlight`] if it is still held after the wait.
    pub async fn claim(&self, id: &TargetId, wait: Option<Duration>) -> Result<ClaimGuard> {
        self.claim_when(id, wait, |_| Ok(None))
            .await
            .and_then(|r| r.ok_or(StateError::NotFound(crate::Missing::Record)))
    }

    /// Claims `id`, waiting as needed; while waiting, `skip` is asked about the
    /// freshly read record and may end the wait with `Err(version, reason)`.
    async fn claim_when(
        &self,
        id: &TargetId,
        wait: Option<Duration>,
        mut skip: impl FnMut(&Record) -> Result<Option<SkipReason>>,
    ) -> Result<Option<ClaimGuard>> {
        let start = std::time::Instant::now();
        let mut delay = POLL_MIN_MS;
        loop {
            match self
                .store
                .claim(
                    id,
                    &self.config.holder,
                    self.now(),
                    self.config.claim_ttl_ms,
                )
                .await
            {
                Ok(claim) => {
                    return Ok(Some(ClaimGuard {
                        store: self.store.clone(),
                        claim,
                        released: false,
                    }));
                }
                Err(StateError::Conflict(ConflictReason::ClaimHeld)) => {}
                Err(e) => return Err(e),
            }
            let waited = start.elapsed();
            let Some(limit) = wait.filter(|w| waited < *w) else {
                let now = self.now();
                return Err(match self.store.get_claim(id).await? {
                    Some(c) => {
                        let f = self.describe(&c, now);
                        StateError::InFlight {
                            expires_at: f.expires_at,
                            holder_silent: f.holder_silent,
                        }
                    }
                    None => StateError::InFlight {
                        expires_at: now,
                        holder_silent: false,
                    },
                });
            };
            let d = Duration::from_millis(delay).min(limit - waited);
            self.store.wait_for_release(id, d).await;
            delay = (delay * 2).min(POLL_MAX_MS);
            let rec = self.store.get_record(id).await?;
            if skip(&rec)?.is_some() {
                return Ok(None);
            }
        }
    }

    /// Rotates one account: claim → check the precondition → settle an
    /// interrupted rotation → generate → write pending → apply → verify → commit →
    /// release. See the crate documentation.
    ///
    /// Errors: [`StateError::InFlight`] when another holder is rotating and did not
    /// finish within `opts.wait`; [`StateError::ClaimTooShort`]; store errors
    /// (including [`Conflict(Fenced)`](ConflictReason::Fenced) if the claim was
    /// lost). Target failures are outcomes ([`RotationOutcome::Failed`]).
    pub async fn rotate(
        &self,
        target: &dyn RotationTarget,
        id: &TargetId,
        source: &dyn PasswordSource,
        opts: RotateOptions,
    ) -> Result<RotationOutcome> {
        let rec = self.store.get_record(id).await?;
        if let Some(reason) = self.precondition_holds(&rec, opts.precondition) {
            return Ok(RotationOutcome::Skipped {
                version: rec.version,
                reason,
            });
        }
        let mut skipped = None;
        let guard = self
            .claim_when(id, opts.wait, |r| {
                let s = self.precondition_holds(r, opts.precondition);
                if let Some(reason) = s {
                    skipped = Some((r.version, reason));
                }
                Ok(s)
            })
            .await?;
        let Some(mut guard) = guard else {
            let (version, reason) = skipped.unwrap_or((rec.version, SkipReason::VersionChanged));
            return Ok(RotationOutcome::Skipped { version, reason });
        };
        let res = self.rotate_claimed(&mut guard, target, source, &opts).await;
        guard.release().await;
        res
    }

    /// [`Rotator::rotate`] under a claim the caller holds (from [`Rotator::claim`]),
    /// so that further steps can run under the same claim.
    pub async fn rotate_claimed(
        &self,
        guard: &mut ClaimGuard,
        target: &dyn RotationTarget,
        source: &dyn PasswordSource,
        opts: &RotateOptions,
    ) -> Result<RotationOutcome> {
        let id = guard.claim.id.clone();
        let mut rec = self.store.get_record(&id).await?;
        if let Some(reason) = self.precondition_holds(&rec, opts.precondition) {
            return Ok(RotationOutcome::Skipped {
                version: rec.version,
                reason,
            });
        }
        if let RecordState::NeedsReconcile { why, .. } = &rec.state {
            return Ok(RotationOutcome::NeedsReconcile { why: why.clone() });
        }
        if rec.pending.is_some() {
            match self.settle(target, &mut rec, guard).await? {
                RecoverOutcome::NeedsReconcile { why } => {
                    return Ok(RotationOutcome::NeedsReconcile { why });
                }
                // The interrupted rotation completed: the account has a fresh
                // password (another change now could also hit a minimum age).
                RecoverOutcome::RolledForward { version } => {
                    return Ok(RotationOutcome::Rotated { version });
                }
                RecoverOutcome::Failed { error, retry_at } => {
                    return Ok(RotationOutcome::Failed {
                        error,
                        in_doubt: true,
                        retry_at,
                    });
                }
                RecoverOutcome::Clean | RecoverOutcome::RolledBack { .. } => {}
            }
        }
        let apply = match opts.method {
            RotationMethod::AdminReset => Apply::Admin,
            RotationMethod::SelfChange => {
                let cur = rec
                    .current
                    .as_ref()
                    .ok_or(StateError::NotFound(crate::Missing::CurrentPassword))?;
                Apply::SelfChange(self.sealer.open(&id, Field::Current, cur)?)
            }
        };
        self.attempt(
            guard,
            target,
            source,
            &mut rec,
            apply,
            opts.keep_anchor,
            false,
        )
        .await
    }

    /// Makes sure at least the target margin remains of the claim, renewing it if
    /// needed, and that the attempt's deadline is not too close.
    async fn ensure_margin(&self, guard: &mut ClaimGuard, deadline: Option<Millis>) -> Result<()> {
        let margin = self.config.target_margin_ms;
        let now = self.now();
        if let Some(d) = deadline
            && d - now < margin
        {
            return Err(StateError::ClaimTooShort {
                remaining_ms: d - now,
                needed_ms: margin,
            });
        }
        if guard.claim.expires_at - now >= margin {
            return Ok(());
        }
        match self
            .store
            .renew_claim(&guard.claim, now, self.config.claim_ttl_ms)
            .await
        {
            Ok(c) => {
                guard.claim = c;
                Ok(())
            }
            Err(StateError::Conflict(ConflictReason::Fenced)) => {
                Err(StateError::Conflict(ConflictReason::Fenced))
            }
            Err(_) => Err(StateError::ClaimTooShort {
                remaining_ms: guard.claim.expires_at - now,
                needed_ms: margin,
            }),
        }
    }

    /// Runs a target call while renewing the claim every third of its length.
    async fn renewing<T>(&self, guard: &mut ClaimGuard, fut: impl Future<Output = T>) -> T {
        let every = u64::try_from((self.config.claim_ttl_ms / 3).max(1)).unwrap_or(1);
        let mut fut = std::pin::pin!(fut);
        let mut renew = true;
        loop {
            tokio::select! {
                out = &mut fut => return out,
                () = tokio::time::sleep(Duration::from_millis(every)), if renew => {
                    match self.store.renew_claim(&guard.claim, self.now(), self.config.claim_ttl_ms).await {
                        Ok(c) => guard.claim = c,
                        Err(e) => {
                            tracing::warn!(error = %e, "renewing a rotation claim failed");
                            renew = false;
                        }
                    }
                }
            }
        }
    }

    fn backoff(&self, failures: u32) -> i64 {
        let shift = failures.saturating_sub(1).min(40);
        self.config
            .backoff_base_ms
            .saturating_mul(1_i64 << shift)
            .min(self.config.backoff_max_ms)
    }

    async fn cas(&self, rec: &mut Record, guard: &ClaimGuard) -> Result<u64> {
        rec.version = self
            .store
            .compare_and_swap(rec, rec.version, Some(guard.claim.fence()))
            .await?;
        Ok(rec.version)
    }

    /// Records a failed cycle: error text, backoff, and NeedsReconcile after too
    /// many (or at once with `stop`).
    async fn record_failure(
        &self,
        rec: &mut Record,
        guard: &ClaimGuard,
        message: String,
        stop: Option<ReconcileKind>,
    ) -> Result<Option<Why>> {
        let now = self.now();
        rec.failures = rec.failures.saturating_add(1);
        rec.retry_at = Some(now.saturating_add(self.backoff(rec.failures)));
        rec.last_error = Some(message.clone());
        let stop = stop.or_else(|| {
            (rec.failures >= self.config.max_failures).then_some(ReconcileKind::TooManyFailures)
        });
        let why = if let Some(kind) = stop {
            let why = Why::new(kind, message);
            if !rec.state.needs_operator() {
                rec.state = RecordState::NeedsReconcile {
                    since: now,
                    why: why.clone(),
                };
            }
            Some(why)
        } else {
            if !rec.state.needs_operator() {
                rec.state = if rec.pending.is_some() {
                    RecordState::InDoubt
                } else {
                    RecordState::Ok
                };
            }
            None
        };
        self.cas(rec, guard).await?;
        Ok(why)
    }

    async fn needs_reconcile(
        &self,
        rec: &mut Record,
        guard: &ClaimGuard,
        kind: ReconcileKind,
        message: &str,
    ) -> Result<Why> {
        let why = Why::new(kind, message);
        rec.last_error = Some(message.to_owned());
        rec.state = RecordState::NeedsReconcile {
            since: self.now(),
            why: why.clone(),
        };
        self.cas(rec, guard).await?;
        Ok(why)
    }

    /// One attempt: generate, write pending, apply, verify, commit.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        guard: &mut ClaimGuard,
        target: &dyn RotationTarget,
        source: &dyn PasswordSource,
        rec: &mut Record,
        apply: Apply,
        keep_anchor: bool,
        reconciling: bool,
    ) -> Result<RotationOutcome> {
        let id = rec.id.clone();
        // Margin before anything is written: a rotation that cannot finish in time
        // leaves no pending record behind.
        self.ensure_margin(guard, None).await?;
        let now = self.now();
        let next_due = if keep_anchor && rec.next_due.is_some_and(|d| d > now) {
            rec.next_due
        } else {
            self.due_after(&rec.schedule, now)?
        };
        let new_pw = source.generate(&id)?;
        let deadline = now.saturating_add(self.config.max_attempt_ms);
        rec.pending = Some(Pending::new(
            new_uuid(),
            self.sealer.seal(&id, Field::Pending, &new_pw)?,
            now,
            deadline,
        ));
        if !rec.state.needs_operator() {
            rec.state = RecordState::InDoubt;
        }
        // Write-ahead: the new password is durable before the target sees it.
        self.cas(rec, guard).await?;
        self.ensure_margin(guard, Some(deadline)).await?;
        let applied = match &apply {
            Apply::SelfChange(cur) => {
                self.renewing(guard, target.change_password(&id, cur, &new_pw))
                    .await
            }
            Apply::Admin => {
                self.renewing(guard, target.set_password_as_admin(&id, &new_pw))
                    .await
            }
        };
        if let Err(e) = applied {
            return self
                .after_apply_error(rec, guard, e, &apply, reconciling)
                .await;
        }
        match self.renewing(guard, target.verify(&id, &new_pw)).await {
            Ok(true) => {
                let baseline = match self.renewing(guard, target.password_last_set(&id)).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the target's password-last-set failed");
                        None
                    }
                };
                let version = self
                    .commit(rec, guard, &new_pw, baseline, Some(next_due))
                    .await?;
                Ok(RotationOutcome::Rotated { version })
            }
            Ok(false) => {
                // The target acknowledged the write but refuses the password: we
                // cannot tell which password it has. Keep the pending record.
                let why = self
                    .needs_reconcile(
                        rec,
                        guard,
                        ReconcileKind::VerifyFailed,
                        "target acknowledged the new password but did not accept it on verification",
                    )
                    .await?;
                Ok(RotationOutcome::NeedsReconcile { why })
            }
            Err(e) => {
                // Pending stays; the next attempt or recover() settles it.
                let stop =
                    (e.kind() == TargetErrorKind::AccountLocked).then_some(ReconcileKind::Locked);
                let why = self.record_failure(rec, guard, e.to_string(), stop).await?;
                Ok(match why {
                    Some(why) if !reconciling => RotationOutcome::NeedsReconcile { why },
                    _ => RotationOutcome::Failed {
                        error: e,
                        in_doubt: true,
                        retry_at: rec.retry_at,
                    },
                })
            }
        }
    }

    async fn after_apply_error(
        &self,
        rec: &mut Record,
        guard: &ClaimGuard,
        e: TargetError,
        apply: &Apply,
        reconciling: bool,
    ) -> Result<RotationOutcome> {
        let in_doubt = !e.kind().certainly_not_applied();
        if !in_doubt {
            rec.pending = None;
        }
        let stop = match e.kind() {
            TargetErrorKind::AccountLocked => Some(ReconcileKind::Locked),
            TargetErrorKind::BadCredentials if matches!(apply, Apply::SelfChange(_)) => {
                Some(ReconcileKind::BadStoredPassword)
            }
            _ => None,
        };
        let why = self.record_failure(rec, guard, e.to_string(), stop).await?;
        Ok(match why {
            Some(why) if !reconciling => RotationOutcome::NeedsReconcile { why },
            _ => RotationOutcome::Failed {
                error: e,
                in_doubt,
                retry_at: rec.retry_at,
            },
        })
    }

    /// Current becomes the first history entry, pending becomes current, state Ok,
    /// failures cleared, baseline and schedule updated.
    async fn commit(
        &self,
        rec: &mut Record,
        guard: &ClaimGuard,
        new_pw: &SecretString,
        baseline: Option<Millis>,
        next_due: Option<Option<Millis>>,
    ) -> Result<u64> {
        let id = rec.id.clone();
        let mut next = rec.clone();
        if let Some(s) = &rec.current {
            let old = self.sealer.open(&id, Field::Current, s)?;
            next.history
                .insert(0, self.sealer.seal(&id, Field::Last, &old)?);
        }
        next.history.truncate(self.config.history);
        next.current = Some(self.sealer.seal(&id, Field::Current, new_pw)?);
        next.pending = None;
        let now = self.now();
        next.set_at = Some(now);
        next.target_set_at = baseline;
        next.next_due = match next_due {
            Some(d) => d,
            None => self.due_after(&rec.schedule, now).unwrap_or(rec.next_due),
        };
        next.state = RecordState::Ok;
        next.failures = 0;
        next.retry_at = None;
        next.last_error = None;
        self.cas(&mut next, guard).await?;
        *rec = next;
        Ok(rec.version)
    }

    /// Finishes or undoes a rotation left pending by a crash (no-op if none).
    /// Leaves a record that needs an operator alone.
    pub async fn recover(
        &self,
        target: &dyn RotationTarget,
        id: &TargetId,
    ) -> Result<RecoverOutcome> {
        let mut guard = self.claim(id, None).await?;
        let res = async {
            let mut rec = self.store.get_record(id).await?;
            if let RecordState::NeedsReconcile { why, .. } = &rec.state {
                return Ok(RecoverOutcome::NeedsReconcile { why: why.clone() });
            }
            if rec.pending.is_none() {
                return Ok(RecoverOutcome::Clean);
            }
            self.settle(target, &mut rec, &mut guard).await
        }
        .await;
        guard.release().await;
        res
    }

    /// Decides the fate of `rec.pending` by asking the target, using the target's
    /// own "password last set" against the baseline observed at our last commit.
    async fn settle(
        &self,
        target: &dyn RotationTarget,
        rec: &mut Record,
        guard: &mut ClaimGuard,
    ) -> Result<RecoverOutcome> {
        match self.settle_inner(target, rec, guard).await {
            Ok(o) => Ok(o),
            Err(SettleError::Store(e)) => Err(e),
            Err(SettleError::Target(e)) => {
                let stop =
                    (e.kind() == TargetErrorKind::AccountLocked).then_some(ReconcileKind::Locked);
                match self.record_failure(rec, guard, e.to_string(), stop).await? {
                    Some(why) => Ok(RecoverOutcome::NeedsReconcile { why }),
                    None => Ok(RecoverOutcome::Failed {
                        error: e,
                        retry_at: rec.retry_at,
                    }),
                }
            }
        }
    }

    async fn settle_inner(
        &self,
        target: &dyn RotationTarget,
        rec: &mut Record,
        guard: &mut ClaimGuard,
    ) -> Result<RecoverOutcome, SettleError> {
        let id = rec.id.clone();
        let Some(pending) = rec.pending.clone() else {
            return Ok(RecoverOutcome::Clean);
        };
        let skew = self.config.clock_skew_ms;
        let last_set = self
            .renewing(guard, target.password_last_set(&id))
            .await
            .map_err(SettleError::Target)?;
        // Did the target's password change since our last commit?
        let changed = match (last_set, rec.target_set_at) {
            (Some(now_set), Some(base)) => Some(now_set > base),
            // No baseline (never committed with one): fall back to our clock.
            (Some(now_set), None) => Some(now_set >= pending.created_at - skew),
            _ => None,
        };
        if changed == Some(false) {
            // Unchanged since our last commit: the pending password never landed,
            // unless the target keeps whole seconds and both changes fell in the
            // same second. Only then is the pending password verified (once).
            let coarse = rec.target_set_at.is_none_or(|b| b % 1000 == 0);
            if coarse {
                let pw = self
                    .sealer
                    .open(&id, Field::Pending, &pending.sealed)
                    .map_err(SettleError::Store)?;
                if self
                    .renewing(guard, target.verify(&id, &pw))
                    .await
                    .map_err(SettleError::Target)?
                {
                    let version = self.commit(rec, guard, &pw, last_set, None).await?;
                    return Ok(RecoverOutcome::RolledForward { version });
                }
            }
            return Ok(self.roll_back(rec, guard).await?);
        }
        // A change later than the attempt's deadline was not ours.
        let not_ours = last_set.is_some_and(|t| t > pending.deadline + skew);
        let pending_pw = self
            .sealer
            .open(&id, Field::Pending, &pending.sealed)
            .map_err(SettleError::Store)?;
        let pending_ok = self
            .renewing(guard, target.verify(&id, &pending_pw))
            .await
            .map_err(SettleError::Target)?;
        if pending_ok && !not_ours {
            let version = self.commit(rec, guard, &pending_pw, last_set, None).await?;
            return Ok(RecoverOutcome::RolledForward { version });
        }
        if changed.is_none() && !pending_ok {
            // The target cannot tell when it changed: decide by verification.
            let current_ok = match &rec.current {
                Some(s) => {
                    let cur = self
                        .sealer
                        .open(&id, Field::Current, s)
                        .map_err(SettleError::Store)?;
                    self.renewing(guard, target.verify(&id, &cur))
                        .await
                        .map_err(SettleError::Target)?
                }
                None => false,
            };
            if current_ok {
                return Ok(self.roll_back(rec, guard).await?);
            }
        }
        let (kind, msg) = if pending_ok || changed == Some(true) {
            (
                ReconcileKind::ChangedElsewhere,
                "the target's password was changed by someone else after our last rotation; \
                 reconcile or adopt the account",
            )
        } else {
            (
                ReconcileKind::Unknown,
                "neither the pending nor the current password is the target's; \
                 reconcile or adopt the account",
            )
        };
        let why = self.needs_reconcile(rec, guard, kind, msg).await?;
        Ok(RecoverOutcome::NeedsReconcile { why })
    }

    async fn roll_back(&self, rec: &mut Record, guard: &ClaimGuard) -> Result<RecoverOutcome> {
        rec.pending = None;
        if !rec.state.needs_operator() {
            rec.state = RecordState::Ok;
        }
        rec.last_error =
            Some("rotation attempt abandoned; the target kept the current password".into());
        let version = self.cas(rec, guard).await?;
        Ok(RecoverOutcome::RolledBack { version })
    }

    /// Re-synchronises an account (typically one that needs an operator) by
    /// setting a fresh password through the full protocol, with an admin reset or
    /// a self-change (see [`ReconcileMethod`]). On success the record is Ok again
    /// and automatic rotation resumes. On failure it stays as it was (a record that
    /// needed an operator still does).
    pub async fn reconcile(
        &self,
        target: &dyn RotationTarget,
        id: &TargetId,
        source: &dyn PasswordSource,
        how: ReconcileMethod,
    ) -> Result<RotationOutcome> {
        let mut guard = self.claim(id, None).await?;
        let res = async {
            let mut rec = self.store.get_record(id).await?;
            let apply = match how {
                ReconcileMethod::AdminReset => Apply::Admin,
                ReconcileMethod::SelfChange { current: Some(pw) } => Apply::SelfChange(pw),
                ReconcileMethod::SelfChange { current: None } => {
                    match self.find_target_password(target, &rec, &mut guard).await? {
                        Ok(pw) => Apply::SelfChange(pw),
                        Err(e) => {
                            return Ok(RotationOutcome::Failed {
                                error: e,
                                in_doubt: rec.pending.is_some(),
                                retry_at: rec.retry_at,
                            });
                        }
                    }
                }
            };
            rec.pending = None;
            self.attempt(&mut guard, target, source, &mut rec, apply, false, true)
                .await
        }
        .await;
        guard.release().await;
        res
    }

    /// Tries the stored pending and current passwords, one verification each.
    async fn find_target_password(
        &self,
        target: &dyn RotationTarget,
        rec: &Record,
        guard: &mut ClaimGuard,
    ) -> Result<Result<SecretString, TargetError>> {
        let id = &rec.id;
        let mut candidates = Vec::new();
        if let Some(p) = &rec.pending {
            candidates.push(self.sealer.open(id, Field::Pending, &p.sealed)?);
        }
        if let Some(c) = &rec.current {
            candidates.push(self.sealer.open(id, Field::Current, c)?);
        }
        for pw in candidates {
            match self.renewing(guard, target.verify(id, &pw)).await {
                Ok(true) => return Ok(Ok(pw)),
                Ok(false) => {}
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Err(TargetError::new(
            TargetErrorKind::BadCredentials,
            "neither stored password is the target's; supply the current password",
        )))
    }

    /// Records that the target has `password` (an operator set it by hand):
    /// verifies it on the target, stores it as current, drops any pending
    /// password and resumes automatic rotation. Returns the new version.
    pub async fn adopt(
        &self,
        target: &dyn RotationTarget,
        id: &TargetId,
        password: &SecretString,
    ) -> Result<u64> {
        let mut guard = self.claim(id, None).await?;
        let res = async {
            let mut rec = self.store.get_record(id).await?;
            if !self
                .renewing(&mut guard, target.verify(id, password))
                .await
                .map_err(StateError::Target)?
            {
                return Err(StateError::Target(TargetError::new(
                    TargetErrorKind::BadCredentials,
                    "the target refused the password to adopt",
                )));
            }
            let baseline = self
                .renewing(&mut guard, target.password_last_set(id))
                .await
                .unwrap_or(None);
            rec.pending = None;
            self.commit(&mut rec, &guard, password, baseline, None)
                .await
        }
        .await;
        guard.release().await;
        res
    }

    /// Stops automatic work on an account until an operator acts (e.g. a
    /// scheduler giving up). Returns the new version.
    pub async fn mark_needs_reconcile(&self, id: &TargetId, message: &str) -> Result<u64> {
        let guard = self.claim(id, None).await?;
        let res = async {
            let mut rec = self.store.get_record(id).await?;
            self.needs_reconcile(&mut rec, &guard, ReconcileKind::Operator, message)
                .await?;
            Ok(rec.version)
        }
        .await;
        guard.release().await;
        res
    }

    // ---- check-out ----

    /// Lends an account of `set` to `borrower` for `ttl_ms` (default: the set's
    /// ttl), capped by the set's maximum ttl.
    pub async fn check_out(&self, set: &str, borrower: &str, ttl_ms: Option<i64>) -> Result<Lease> {
        let info = self.store.get_set(set).await?;
        let ttl = ttl_ms
            .unwrap_or(info.config.ttl_ms)
            .min(info.config.max_ttl_ms);
        self.store
            .take_lease(
                set,
                borrower,
                self.now(),
                LeaseTerms::new(ttl, info.config.max_ttl_ms),
            )
            .await
    }

    /// Extends a lease by `ttl_ms` (default: the set's ttl), never beyond its
    /// maximum. With check-in enforcement, only `borrower` may renew.
    pub async fn renew(
        &self,
        lease_id: &str,
        borrower: &str,
        ttl_ms: Option<i64>,
    ) -> Result<Lease> {
        let lease = self.store.get_lease(lease_id).await?;
        let info = self.store.get_set(&lease.set).await?;
        let who = info.config.enforce_check_in.then_some(borrower);
        self.store
            .renew_lease(
                lease_id,
                who,
                self.now(),
                ttl_ms.unwrap_or(info.config.ttl_ms),
            )
            .await
    }

    /// Checks an account in: Lent → Returning (fenced on the lease), rotates its
    /// password, then Returning → Available (fenced on the member's generation).
    /// With `borrower` (and check-in enforcement on), only that borrower may check
    /// in; `None` is a forced check-in (an operator or the expiry reaper). A failed
    /// rotation leaves the account Returning with a backoff, never lent.
    pub async fn check_in(
        &self,
        target: &dyn RotationTarget,
        lease_id: &str,
        borrower: Option<&str>,
        source: &dyn PasswordSource,
        method: RotationMethod,
    ) -> Result<CheckIn> {
        let lease = self.store.get_lease(lease_id).await?;
        let info = self.store.get_set(&lease.set).await?;
        let who = borrower.filter(|_| info.config.enforce_check_in);
        let (member, _) = self.store.begin_return(lease_id, who).await?;
        self.complete_return(target, &member, source, method, Precondition::Always)
            .await
    }

    /// Rotates a [`Returning`](crate::MemberState::Returning) member (newly added,
    /// or whose check-in rotation failed) and makes it available. Use
    /// [`Precondition::UnlessBackingOff`] when retrying from a loop.
    pub async fn complete_return(
        &self,
        target: &dyn RotationTarget,
        member: &SetMember,
        source: &dyn PasswordSource,
        method: RotationMethod,
        precondition: Precondition,
    ) -> Result<CheckIn> {
        let mut guard = self.claim(&member.account, None).await?;
        let res = async {
            let opts = RotateOptions::new(method)
                .precondition(precondition)
                .keep_anchor(true);
            let rotation = self
                .rotate_claimed(&mut guard, target, source, &opts)
                .await?;
            let member = if matches!(rotation, RotationOutcome::Rotated { .. }) {
                self.store
                    .finish_return(&member.account, member.generation)
                    .await?
            } else {
                member.clone()
            };
            Ok(CheckIn { member, rotation })
        }
        .await;
        guard.release().await;
        res
    }
}

enum SettleError {
    Target(TargetError),
    Store(StateError),
}

impl From<StateError> for SettleError {
    fn from(e: StateError) -> Self {
        Self::Store(e)
    }
}
