//! The rotation target trait and the crash-safe rotation protocol.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::error::{Result, StateError, TargetError, TargetErrorKind};
use crate::seal::{Field, Sealer};
use crate::store::StateStore;
use crate::types::{Claim, Clock, Millis, Pending, Record, SystemClock, TargetId, new_uuid};

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

/// Produces new passwords (e.g. a `credwheel_policy` policy with a CSPRNG).
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

/// A `credwheel_policy` policy generates uniformly random passwords with the
/// thread-local CSPRNG.
impl PasswordSource for credwheel_policy::Policy {
    fn generate(&self, _account: &TargetId) -> Result<SecretString> {
        Ok(credwheel_policy::Policy::generate(self))
    }
}

/// Settings of a [`Rotator`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RotatorConfig {
    /// Identifies this process or instance in claims (default: a random UUID).
    pub holder: String,
    /// Claim length (default 120 s). Must exceed a whole rotation, target timeouts
    /// included.
    pub claim_ttl_ms: i64,
    /// The target is not touched when less than this remains of the claim
    /// (default 30 s).
    pub target_margin_ms: i64,
    /// After a successful rotation, `next_due = now + interval` (default: none).
    pub interval_ms: Option<i64>,
    /// After the target rejected a new password, `next_due = now + this`
    /// (default 1 h), so that a refused password is not retried in a loop.
    pub retry_after_rejection_ms: i64,
    /// Tolerance when comparing the target's "password last set" with our clock
    /// (default 5 s).
    pub clock_skew_ms: i64,
}

impl Default for RotatorConfig {
    fn default() -> Self {
        Self {
            holder: new_uuid(),
            claim_ttl_ms: 120_000,
            target_margin_ms: 30_000,
            interval_ms: None,
            retry_after_rejection_ms: 3_600_000,
            clock_skew_ms: 5_000,
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
}

/// What [`Rotator::rotate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationOutcome {
    /// The target has the new password and the store says so (record version).
    Rotated {
        /// Version of the committed record.
        version: u64,
    },
    /// The target refused the new password. The error is recorded, the current
    /// password is still valid, `next_due` was pushed back.
    Rejected {
        /// The target's (secret-free) message.
        message: String,
    },
    /// The target's password could not be determined; an admin reset is needed
    /// ([`Rotator::reconcile`]). The pending record is kept.
    NeedsReconcile,
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
    /// Neither password verifies, or the target changed its password after the
    /// pending one was written while the old one still verifies: an admin reset
    /// ([`Rotator::reconcile`]) is needed. The pending record is kept.
    NeedsReconcile,
}

/// Runs the rotation protocol for any [`RotationTarget`] over any [`StateStore`].
///
/// See the crate documentation for the protocol and its crash analysis.
pub struct Rotator {
    store: Arc<dyn StateStore>,
    sealer: Arc<Sealer>,
    clock: Arc<dyn Clock>,
    config: RotatorConfig,
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

struct Guard<'a> {
    store: &'a dyn StateStore,
    claim: Claim,
}

impl Rotator {
    /// A rotator with the system clock.
    pub fn new(store: Arc<dyn StateStore>, sealer: Arc<Sealer>, config: RotatorConfig) -> Self {
        Self::with_clock(store, sealer, Arc::new(SystemClock), config)
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
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// Starts managing an account whose password is known: stores a record with
    /// `password` sealed as current.
    pub async fn enroll(
        &self,
        id: &TargetId,
        password: &SecretString,
        next_due: Option<Millis>,
    ) -> Result<Record> {
        let mut rec = Record::new(id.clone());
        rec.current = Some(self.sealer.seal(id, Field::Current, password)?);
        rec.next_due = next_due;
        rec.version = self.store.create_record(&rec).await?;
        Ok(rec)
    }

    /// The current password of an account and the record version it comes from.
    pub async fn current_password(&self, id: &TargetId) -> Result<(SecretString, u64)> {
        let rec = self.store.get_record(id).await?;
        let sealed = rec
            .current
            .as_ref()
            .ok_or(StateError::NotFound("current password"))?;
        Ok((self.sealer.open(id, Field::Current, sealed)?, rec.version))
    }

    /// The previous password of an account, if any.
    pub async fn last_password(&self, id: &TargetId) -> Result<Option<SecretString>> {
        let rec = self.store.get_record(id).await?;
        rec.last
            .as_ref()
            .map(|s| self.sealer.open(id, Field::Last, s))
            .transpose()
    }

    async fn acquire(&self, id: &TargetId) -> Result<Guard<'_>> {
        let claim = self
            .store
            .claim(
                id,
                &self.config.holder,
                self.clock.now(),
                self.config.claim_ttl_ms,
            )
            .await?;
        Ok(Guard {
            store: &*self.store,
            claim,
        })
    }

    async fn release(&self, g: Guard<'_>) {
        // Best effort: an unreleased claim simply lapses.
        if let Err(e) = g.store.release_claim(&g.claim).await {
            tracing::warn!(error = %e, "releasing a rotation claim failed; it will lapse");
        }
    }

    /// Rotates one account: claim → generate → write pending → apply → verify →
    /// commit → release. A rotation left pending by a crash is settled first; if it
    /// rolls forward, that completed rotation is the result.
    ///
    /// Errors: [`StateError::Conflict`] when another holder has the claim;
    /// [`StateError::Target`] when the target failed (recorded as `last_error`; if
    /// it is unknown whether the target applied the password, the pending record is
    /// kept for [`Rotator::recover`]); store errors.
    pub async fn rotate(
        &self,
        target: &dyn RotationTarget,
        id: &TargetId,
        source: &dyn PasswordSource,
        method: RotationMethod,
    ) -> Result<RotationOutcome> {
        let g = self.acquire(id).await?;
        let res = self
            .rotate_claimed(target, id, source, method, &g.claim)
            .await;
        self.release(g).await;
        res
    }

    /// Finishes or undoes a rotation left pending by a crash (no-op if none).
    pub async fn recover(
        &self,
        target: &dyn RotationTarget,
        id: &TargetId,
    ) -> Result<RecoverOutcome> {
        let g = self.acquire(id).await?;
        let res = async {
            let mut rec = self.store.get_record(id).await?;
            if rec.pending.is_none() {
                return Ok(RecoverOutcome::Clean);
            }
            self.settle(target, &mut rec, &g.claim).await
        }
        .await;
        self.release(g).await;
        res
    }

    /// Re-synchronises an account whose state is unknown, with an admin reset: the
    /// pending password if one is stored (it is already durable), otherwise a fresh
    /// one from `source` through the full protocol.
    pub async fn reconcile(
        &self,
        target: &dyn RotationTarget,
        id: &TargetId,
        source: &dyn PasswordSource,
    ) -> Result<RotationOutcome> {
        let g = self.acquire(id).await?;
        let res = async {
            let mut rec = self.store.get_record(id).await?;
            let Some(pending) = rec.pending.clone() else {
                return self
                    .rotate_claimed(target, id, source, RotationMethod::AdminReset, &g.claim)
                    .await;
            };
            let new_pw = self.sealer.open(id, Field::Pending, &pending.sealed)?;
            self.check_time(&g.claim)?;
            if let Err(e) = target.set_password_as_admin(id, &new_pw).await {
                return self.after_apply_error(&mut rec, &g.claim, e, false).await;
            }
            self.after_apply_ok(target, &mut rec, &g.claim, &new_pw)
                .await
        }
        .await;
        self.release(g).await;
        res
    }

    fn check_time(&self, claim: &Claim) -> Result<()> {
        if claim.expires_at - self.clock.now() < self.config.target_margin_ms {
            return Err(StateError::Expired);
        }
        Ok(())
    }

    async fn rotate_claimed(
        &self,
        target: &dyn RotationTarget,
        id: &TargetId,
        source: &dyn PasswordSource,
        method: RotationMethod,
        claim: &Claim,
    ) -> Result<RotationOutcome> {
        let mut rec = self.store.get_record(id).await?;
        if rec.pending.is_some() {
            match self.settle(target, &mut rec, claim).await? {
                RecoverOutcome::NeedsReconcile => return Ok(RotationOutcome::NeedsReconcile),
                // The interrupted rotation completed: the account has a fresh
                // password (another change now could also hit a minimum age).
                RecoverOutcome::RolledForward { version } => {
                    return Ok(RotationOutcome::Rotated { version });
                }
                RecoverOutcome::Clean | RecoverOutcome::RolledBack { .. } => {}
            }
        }
        let current = rec
            .current
            .as_ref()
            .map(|s| self.sealer.open(id, Field::Current, s))
            .transpose()?;
        if method == RotationMethod::SelfChange && current.is_none() {
            return Err(StateError::Invalid(
                "a self-change needs a stored current password".into(),
            ));
        }
        let new_pw = source.generate(id)?;
        rec.pending = Some(Pending {
            attempt: new_uuid(),
            sealed: self.sealer.seal(id, Field::Pending, &new_pw)?,
            created_at: self.clock.now(),
        });
        // Write-ahead: the new password is durable before the target sees it.
        rec.version = self
            .store
            .compare_and_swap(&rec, rec.version, Some(claim.fence()))
            .await?;
        self.check_time(claim)?;
        let applied = match (method, &current) {
            (RotationMethod::SelfChange, Some(cur)) => {
                target.change_password(id, cur, &new_pw).await
            }
            _ => target.set_password_as_admin(id, &new_pw).await,
        };
        match applied {
            Ok(()) => self.after_apply_ok(target, &mut rec, claim, &new_pw).await,
            Err(e) => self.after_apply_error(&mut rec, claim, e, true).await,
        }
    }

    async fn after_apply_ok(
        &self,
        target: &dyn RotationTarget,
        rec: &mut Record,
        claim: &Claim,
        new_pw: &SecretString,
    ) -> Result<RotationOutcome> {
        match target.verify(&rec.id, new_pw).await {
            Ok(true) => {
                let version = self.commit(rec, claim, new_pw).await?;
                Ok(RotationOutcome::Rotated { version })
            }
            Ok(false) => {
                // The target acknowledged the write but refuses the password: we
                // cannot tell which password it has. Keep the pending record.
                self.record_error(
                    rec,
                    claim,
                    "target acknowledged the new password but did not accept it on verification"
                        .into(),
                    None,
                )
                .await?;
                Ok(RotationOutcome::NeedsReconcile)
            }
            // Pending stays; recover() will find out.
            Err(e) => Err(StateError::Target(e)),
        }
    }

    async fn after_apply_error(
        &self,
        rec: &mut Record,
        claim: &Claim,
        e: TargetError,
        may_drop_pending: bool,
    ) -> Result<RotationOutcome> {
        if !e.kind().certainly_not_applied() {
            // Unknown whether the target changed: keep pending for recover().
            return Err(StateError::Target(e));
        }
        if may_drop_pending {
            rec.pending = None;
        }
        let next_due = (e.kind() == TargetErrorKind::Rejected).then(|| {
            self.clock
                .now()
                .saturating_add(self.config.retry_after_rejection_ms)
        });
        self.record_error(rec, claim, e.to_string(), next_due)
            .await?;
        if e.kind() == TargetErrorKind::Rejected {
            Ok(RotationOutcome::Rejected {
                message: e.message().to_owned(),
            })
        } else {
            Err(StateError::Target(e))
        }
    }

    async fn record_error(
        &self,
        rec: &mut Record,
        claim: &Claim,
        message: String,
        next_due: Option<Millis>,
    ) -> Result<()> {
        rec.last_error = Some(message);
        if next_due.is_some() {
            rec.next_due = next_due;
        }
        rec.version = self
            .store
            .compare_and_swap(rec, rec.version, Some(claim.fence()))
            .await?;
        Ok(())
    }

    /// Current becomes last, pending becomes current, version + 1.
    async fn commit(&self, rec: &mut Record, claim: &Claim, new_pw: &SecretString) -> Result<u64> {
        let id = rec.id.clone();
        let mut next = rec.clone();
        next.last = match &rec.current {
            Some(s) => {
                let old = self.sealer.open(&id, Field::Current, s)?;
                Some(self.sealer.seal(&id, Field::Last, &old)?)
            }
            None => rec.last.clone(),
        };
        next.current = Some(self.sealer.seal(&id, Field::Current, new_pw)?);
        next.pending = None;
        let now = self.clock.now();
        next.last_rotated = Some(now);
        next.next_due = self.config.interval_ms.map(|i| now.saturating_add(i));
        next.last_error = None;
        next.version = self
            .store
            .compare_and_swap(&next, rec.version, Some(claim.fence()))
            .await?;
        *rec = next;
        Ok(rec.version)
    }

    /// Decides the fate of `rec.pending` by asking the target.
    async fn settle(
        &self,
        target: &dyn RotationTarget,
        rec: &mut Record,
        claim: &Claim,
    ) -> Result<RecoverOutcome> {
        let id = rec.id.clone();
        let Some(pending) = rec.pending.clone() else {
            return Ok(RecoverOutcome::Clean);
        };
        let pending_pw = self.sealer.open(&id, Field::Pending, &pending.sealed)?;
        if target
            .verify(&id, &pending_pw)
            .await
            .map_err(StateError::Target)?
        {
            let version = self.commit(rec, claim, &pending_pw).await?;
            return Ok(RecoverOutcome::RolledForward { version });
        }
        let current_ok = match &rec.current {
            Some(s) => {
                let cur = self.sealer.open(&id, Field::Current, s)?;
                target.verify(&id, &cur).await.map_err(StateError::Target)?
            }
            None => false,
        };
        if current_ok {
            // The old password may only be verifying because of the target's grace
            // period for previous passwords: if the target's password changed after
            // the pending record was written, someone set a password we do not know.
            let last_set = target
                .password_last_set(&id)
                .await
                .map_err(StateError::Target)?;
            let changed_since =
                last_set.is_some_and(|t| t >= pending.created_at - self.config.clock_skew_ms);
            if !changed_since {
                rec.pending = None;
                rec.last_error =
                    Some("rotation attempt abandoned; the target kept the current password".into());
                rec.version = self
                    .store
                    .compare_and_swap(rec, rec.version, Some(claim.fence()))
                    .await?;
                return Ok(RecoverOutcome::RolledBack {
                    version: rec.version,
                });
            }
        }
        self.record_error(
            rec,
            claim,
            "neither the pending nor the current password is known to be the target's; \
             an admin reset (reconcile) is needed"
                .into(),
            None,
        )
        .await?;
        Ok(RecoverOutcome::NeedsReconcile)
    }
}
