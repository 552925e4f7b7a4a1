//! The check-out library: sets of service accounts lent to one borrower at a
//! time, with a fresh password at every check-in (Vault's AD library).

use crate::source::PolicyGen;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use credwheel_policy::Policy;
use credwheel_state::{
    MemberState, Millis, Precondition, Record, RotationMethod, RotationOutcome, Rotator, SetConfig,
    SetMember, StateError, TargetId,
};
use secrecy::SecretString;
use tracing::Instrument;

use crate::account::AccountRef;
use crate::error::{Error, ErrorKind, Result};
use crate::target::AdTarget;

fn ms(d: Duration) -> Result<i64> {
    i64::try_from(d.as_millis())
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| Error::config("durations must be between 1 ms and i64::MAX ms"))
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "set name {name:?}: 1..=64 characters of a-z, 0-9, '-' and '_'"
        )))
    }
}

/// Settings of a set (Vault's library defaults: 24 h, 24 h, enforcement on).
///
/// ```
/// use credwheel_ad::SetOptions;
/// let o = SetOptions::new("1h", "8h")?.disable_check_in_enforcement(true);
/// assert_eq!(o.ttl().as_secs(), 3600);
/// assert!(SetOptions::new("8h", "1h").is_err());
/// # Ok::<(), credwheel_ad::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct SetOptions {
    ttl: Duration,
    max_ttl: Duration,
    disable_enforcement: bool,
    policy_hcl: Option<String>,
}

impl Default for SetOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(86_400),
            max_ttl: Duration::from_secs(86_400),
            disable_enforcement: false,
            policy_hcl: None,
        }
    }
}

impl SetOptions {
    /// Lease ttl and maximum ttl (humantime, e.g. `"1h"`); `max_ttl >= ttl`.
    pub fn new(ttl: &str, max_ttl: &str) -> Result<Self> {
        let p = |s: &str| {
            humantime::parse_duration(s).map_err(|e| Error::config(format!("duration {s:?}: {e}")))
        };
        Self::from_durations(p(ttl)?, p(max_ttl)?)
    }

    /// From durations.
    pub fn from_durations(ttl: Duration, max_ttl: Duration) -> Result<Self> {
        ms(ttl)?;
        ms(max_ttl)?;
        if max_ttl < ttl {
            return Err(Error::config("max_ttl must be at least ttl"));
        }
        Ok(Self {
            ttl,
            max_ttl,
            disable_enforcement: false,
            policy_hcl: None,
        })
    }

    /// Let anyone check an account in, not only its borrower.
    pub fn disable_check_in_enforcement(mut self, on: bool) -> Self {
        self.disable_enforcement = on;
        self
    }

    /// The set's own password policy (Vault HCL); default: the library's.
    pub fn policy_hcl(mut self, hcl: impl Into<String>) -> Self {
        self.policy_hcl = Some(hcl.into());
        self
    }

    /// Default lease ttl.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Maximum lease lifetime.
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }

    fn to_config(&self) -> Result<SetConfig> {
        let mut c = SetConfig::new(ms(self.ttl)?, ms(self.max_ttl)?);
        c.enforce_check_in = !self.disable_enforcement;
        Ok(c)
    }
}

/// One account of a set, as [`Library::status`] reports it. No secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountStatus {
    /// The service account name as configured.
    pub account: String,
    /// Whether it can be checked out now.
    pub available: bool,
    /// `available`, `lent` or `returning` (checked in, waiting for its rotation).
    pub state: &'static str,
    /// The borrower, when lent.
    pub borrower: Option<String>,
    /// When the lease expires, when lent.
    pub expires_at: Option<Millis>,
}

/// A checked-out account: lease and password. Check it in when done.
#[must_use = "a checked-out account should be checked in when no longer needed"]
#[non_exhaustive]
pub struct CheckedOut {
    /// The lease id (for renew and check-in).
    pub lease_id: String,
    /// The service account name as configured.
    pub account: String,
    /// The account's current password.
    pub password: SecretString,
    /// When the lease expires unless renewed.
    pub expires_at: Millis,
    /// The latest renewals may reach.
    pub max_expires_at: Millis,
}

impl fmt::Debug for CheckedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedOut")
            .field("lease_id", &self.lease_id)
            .field("account", &self.account)
            .field("expires_at", &self.expires_at)
            .field("max_expires_at", &self.max_expires_at)
            .finish_non_exhaustive()
    }
}

/// What a check-in did to one account.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckedIn {
    /// The service account name as configured.
    pub account: String,
    /// Whether its password was rotated and it is available again. `false`: the
    /// rotation failed; the account is *not* lent again until a later rotation
    /// succeeds ([`Library::reap`] retries).
    pub available: bool,
}

/// Check-out sets over one domain and one state store.
///
/// Sets and their members live in the store (shared by all processes). An account
/// belongs to at most one set. Creating or growing a set checks the new accounts
/// in, which rotates them before they can be lent. Every check-in rotates; a
/// check-in whose rotation fails leaves the account *returning*, never lent with
/// its old password, until a retry ([`Library::reap`]) rotates it. Expired leases
/// are checked in by [`Library::reap`] (run it with [`Library::spawn_reaper`]) and
/// lazily by [`Library::check_out`] and [`Library::status`].
///
/// Metrics: `credwheel_ad_checkouts_total{set}`,
/// `credwheel_ad_checkout_unavailable_total{set}`,
/// `credwheel_ad_checkins_total{set,outcome}`.
pub struct Library {
    target: Arc<AdTarget>,
    rotator: Arc<Rotator>,
    policy: Arc<Policy>,
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Library")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

const METHOD: RotationMethod = RotationMethod::AdminReset;

/// The kind under which a set's own password policy is stored as a configuration
/// document (`{"policy": "<Vault HCL>"}`).
pub const SET_POLICY_KIND: &str = "ad.set-policy";

#[derive(serde::Serialize, serde::Deserialize)]
struct SetPolicyDoc {
    policy: String,
}

impl Library {
    /// A library over `target` and `rotator`, generating passwords with `policy`
    /// (checked against the domain's rules when a set is created).
    pub fn new(target: Arc<AdTarget>, rotator: Arc<Rotator>, policy: Policy) -> Self {
        Self {
            target,
            rotator,
            policy: Arc::new(policy),
        }
    }

    fn now(&self) -> Millis {
        self.rotator.clock().now()
    }

    /// The password policy of a set: its own (stored) or the library's.
    async fn policy_for(&self, name: &str) -> Result<Arc<Policy>> {
        match self.rotator.store().get_config(SET_POLICY_KIND, name).await {
            Ok(doc) => {
                let d: SetPolicyDoc = serde_json::from_slice(&doc.body).map_err(|e| {
                    Error::new(ErrorKind::Store, "malformed set policy document")
                        .with_diagnostic(e.to_string())
                })?;
                Ok(Arc::new(Policy::from_vault_hcl(&d.policy).map_err(
                    |e| Error::config(format!("stored set policy: {e}")),
                )?))
            }
            Err(StateError::NotFound(_)) => Ok(self.policy.clone()),
            Err(e) => Err(e.into()),
        }
    }

    /// Validates and stores (or removes) a set's own policy.
    async fn store_policy(&self, name: &str, hcl: Option<&str>) -> Result<()> {
        let store = self.rotator.store();
        let existing = match store.get_config(SET_POLICY_KIND, name).await {
            Ok(d) => Some(d.version),
            Err(StateError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        match hcl {
            Some(h) => {
                let policy = Policy::from_vault_hcl(h)
                    .map_err(|e| Error::config(format!("set password policy: {e}")))?;
                self.target.client().validate_policy(&policy, None).await?;
                let body = serde_json::to_vec(&SetPolicyDoc {
                    policy: h.to_owned(),
                })
                .map_err(|e| Error::config(format!("set policy document: {e}")))?;
                store
                    .put_config(SET_POLICY_KIND, name, &body, existing.unwrap_or(0))
                    .await?;
            }
            None => {
                if let Some(v) = existing {
                    store.delete_config(SET_POLICY_KIND, name, v).await?;
                }
            }
        }
        Ok(())
    }

    fn name_of(&self, id: &TargetId) -> String {
        match self.target.account_of(id) {
            Ok(AccountRef::Upn(v) | AccountRef::Sam(v)) => v,
            Ok(AccountRef::Dn(d)) => d.to_string(),
            _ => id.account().to_owned(),
        }
    }

    /// The accounts' ids, after checking that each exists and that `policy` meets
    /// the password rules that apply to it: its fine-grained policy (PSO) when it
    /// has one, else the domain's. A member whose PSO would refuse the set's
    /// passwords would otherwise fail its first check-in rotation and stay
    /// unavailable; this makes it a configuration error naming the account.
    async fn ids(&self, accounts: &[AccountRef], policy: &Policy) -> Result<Vec<TargetId>> {
        let mut ids = Vec::with_capacity(accounts.len());
        for a in accounts {
            // The account must exist before it is lent.
            self.target.client().find_account(a).await?;
            self.target
                .client()
                .validate_policy(policy, Some(a))
                .await
                .map_err(|e| {
                    if e.kind() == ErrorKind::Config {
                        let context = format!("account {a}: {}", e.context());
                        e.with_context(context)
                    } else {
                        e
                    }
                })?;
            ids.push(self.target.id(a)?);
        }
        Ok(ids)
    }

    /// Creates a set, then checks its accounts in (each is rotated before it can
    /// be lent). Accounts whose first rotation fails stay unavailable (see
    /// [`Library::status`]).
    pub async fn create_set(
        &self,
        name: &str,
        accounts: &[AccountRef],
        options: &SetOptions,
    ) -> Result<Vec<AccountStatus>> {
        let span = tracing::info_span!("ad.create_set", set = %name);
        async {
            check_name(name)?;
            if options.policy_hcl.is_none() {
                self.target
                    .client()
                    .validate_policy(&self.policy, None)
                    .await?;
            }
            let policy = match options.policy_hcl.as_deref() {
                Some(h) => Arc::new(
                    Policy::from_vault_hcl(h)
                        .map_err(|e| Error::config(format!("set password policy: {e}")))?,
                ),
                None => self.policy.clone(),
            };
            let ids = self.ids(accounts, &policy).await?;
            match self.rotator.store().get_set(name).await {
                Ok(_) => {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        "a set of this name exists",
                    ));
                }
                // A new set: its policy document (if any) belongs to it.
                Err(StateError::NotFound(_)) => {
                    self.store_policy(name, options.policy_hcl.as_deref())
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
            self.rotator
                .store()
                .put_set(name, &options.to_config()?, 0)
                .await
                .map_err(|e| match e {
                    StateError::Conflict(_) => {
                        Error::new(ErrorKind::AlreadyExists, "a set of this name exists")
                    }
                    e => e.into(),
                })?;
            self.add(name, &ids).await?;
            self.status(name).await
        }
        .instrument(span)
        .await
    }

    /// Adds accounts to a set and checks them in (rotating them).
    pub async fn add_accounts(
        &self,
        name: &str,
        accounts: &[AccountRef],
    ) -> Result<Vec<AccountStatus>> {
        self.rotator.store().get_set(name).await?;
        let policy = self.policy_for(name).await?;
        let ids = self.ids(accounts, &policy).await?;
        self.add(name, &ids).await?;
        self.status(name).await
    }

    async fn add(&self, name: &str, ids: &[TargetId]) -> Result<()> {
        for id in ids {
            match self.rotator.store().get_record(id).await {
                Ok(_) => {}
                Err(StateError::NotFound(_)) => {
                    self.rotator
                        .store()
                        .create_record(&Record::new(id.clone()))
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.rotator
            .store()
            .add_to_set(name, ids)
            .await
            .map_err(|e| match e {
                StateError::Conflict(_) => Error::new(
                    ErrorKind::AlreadyExists,
                    "an account belongs to another set",
                ),
                e => e.into(),
            })?;
        self.settle_returning(name, Precondition::Always).await?;
        Ok(())
    }

    /// Removes accounts from a set (refused while one of them is lent).
    pub async fn remove_accounts(&self, name: &str, accounts: &[AccountRef]) -> Result<()> {
        let ids: Vec<TargetId> = accounts
            .iter()
            .map(|a| self.target.id(a))
            .collect::<Result<_>>()?;
        self.rotator
            .store()
            .remove_from_set(name, &ids)
            .await
            .map_err(Into::into)
    }

    /// Changes a set's settings.
    pub async fn update_set(&self, name: &str, options: &SetOptions) -> Result<()> {
        let info = self.rotator.store().get_set(name).await?;
        self.store_policy(name, options.policy_hcl.as_deref())
            .await?;
        self.rotator
            .store()
            .put_set(name, &options.to_config()?, info.version)
            .await?;
        Ok(())
    }

    /// Deletes a set (refused while an account is lent).
    pub async fn delete_set(&self, name: &str) -> Result<()> {
        let info = self.rotator.store().get_set(name).await?;
        self.rotator.store().delete_set(name, info.version).await?;
        self.store_policy(name, None).await
    }

    /// Rotates members waiting in `returning` (new, or a failed check-in).
    async fn settle_returning(&self, name: &str, p: Precondition) -> Result<usize> {
        let mut n = 0;
        let policy = self.policy_for(name).await?;
        for m in self.rotator.store().set_members(name).await? {
            if m.state != MemberState::Returning {
                continue;
            }
            match self
                .rotator
                .complete_return(&*self.target, &m, &PolicyGen(&policy), METHOD, p)
                .await
            {
                Ok(c) if c.member.state == MemberState::Available => n += 1,
                Ok(c) => {
                    tracing::warn!(set = %name, account = %m.account, outcome = ?c.rotation, "rotation of a returning account failed; it stays unavailable");
                }
                Err(e) => {
                    tracing::warn!(set = %name, account = %m.account, error = %e, "rotation of a returning account failed; it stays unavailable");
                }
            }
        }
        Ok(n)
    }

    /// The accounts of a set: available or not, and who has them. Checks in
    /// expired leases of the set first.
    pub async fn status(&self, name: &str) -> Result<Vec<AccountStatus>> {
        self.reap_set(Some(name)).await?;
        let now = self.now();
        Ok(self
            .rotator
            .store()
            .set_members(name)
            .await?
            .into_iter()
            .map(|m| self.describe(&m, now))
            .collect())
    }

    fn describe(&self, m: &SetMember, _now: Millis) -> AccountStatus {
        AccountStatus {
            account: self.name_of(&m.account),
            available: m.state == MemberState::Available,
            state: m.state.as_str(),
            borrower: m.lease.as_ref().map(|l| l.borrower.clone()),
            expires_at: m.lease.as_ref().map(|l| l.expires_at),
        }
    }

    /// Lends an available account of the set to `borrower`, for the set's ttl or
    /// a shorter `ttl`. [`ErrorKind::NoAccountsAvailable`] when none is free.
    pub async fn check_out(
        &self,
        name: &str,
        borrower: &str,
        ttl: Option<Duration>,
    ) -> Result<CheckedOut> {
        let span = tracing::info_span!("ad.check_out", set = %name, borrower = %borrower);
        async {
            if borrower.is_empty() {
                return Err(Error::config("a borrower must be named"));
            }
            self.reap_set(Some(name)).await?;
            let info = self.rotator.store().get_set(name).await?;
            let ttl_ms = match ttl {
                Some(t) => Some(ms(t)?.min(info.config.ttl_ms)),
                None => None,
            };
            let lease = match self.rotator.check_out(name, borrower, ttl_ms).await {
                Ok(l) => l,
                Err(StateError::NoneAvailable) => {
                    metrics::counter!("credwheel_ad_checkout_unavailable_total", "set" => name.to_owned())
                        .increment(1);
                    return Err(Error::new(
                        ErrorKind::NoAccountsAvailable,
                        format!("set {name}"),
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            let creds = self.rotator.credentials(&lease.account).await?;
            metrics::counter!("credwheel_ad_checkouts_total", "set" => name.to_owned()).increment(1);
            Ok(CheckedOut {
                account: self.name_of(&lease.account),
                lease_id: lease.lease_id,
                password: creds.current().clone(),
                expires_at: lease.expires_at,
                max_expires_at: lease.max_expires_at,
            })
        }
        .instrument(span)
        .await
    }

    /// Extends a lease by `ttl` (default: the set's ttl), never beyond the set's
    /// maximum. Returns the new expiry.
    pub async fn renew(
        &self,
        lease_id: &str,
        borrower: &str,
        ttl: Option<Duration>,
    ) -> Result<Millis> {
        let ttl_ms = ttl.map(ms).transpose()?;
        let lease = self.rotator.renew(lease_id, borrower, ttl_ms).await?;
        Ok(lease.expires_at)
    }

    async fn lent_to(&self, name: &str, borrower: Option<&str>) -> Result<Vec<SetMember>> {
        Ok(self
            .rotator
            .store()
            .set_members(name)
            .await?
            .into_iter()
            .filter(|m| m.state == MemberState::Lent)
            .filter(|m| match (borrower, &m.lease) {
                (Some(b), Some(l)) => l.borrower == b,
                (None, _) => true,
                _ => false,
            })
            .collect())
    }

    async fn check_in_members(
        &self,
        name: &str,
        members: Vec<SetMember>,
        borrower: Option<&str>,
    ) -> Result<Vec<CheckedIn>> {
        let mut out = Vec::with_capacity(members.len());
        let policy = self.policy_for(name).await?;
        for m in members {
            let Some(lease) = &m.lease else { continue };
            let r = self
                .rotator
                .check_in(
                    &*self.target,
                    &lease.lease_id,
                    borrower,
                    &PolicyGen(&policy),
                    METHOD,
                )
                .await?;
            let available = matches!(r.rotation, RotationOutcome::Rotated { .. })
                && r.member.state == MemberState::Available;
            let outcome = if available {
                "rotated"
            } else {
                "rotation_failed"
            };
            metrics::counter!("credwheel_ad_checkins_total", "set" => name.to_owned(), "outcome" => outcome)
                .increment(1);
            if !available {
                tracing::warn!(set = %name, account = %m.account, outcome = ?r.rotation, "check-in rotation failed; the account stays unavailable");
            }
            out.push(CheckedIn {
                account: self.name_of(&m.account),
                available,
            });
        }
        Ok(out)
    }

    fn select(&self, lent: Vec<SetMember>, accounts: &[AccountRef]) -> Result<Vec<SetMember>> {
        if accounts.is_empty() {
            if lent.len() > 1 {
                return Err(Error::new(
                    ErrorKind::NotBorrower,
                    "several accounts are checked out: name the ones to check in",
                ));
            }
            return Ok(lent);
        }
        let mut picked = Vec::with_capacity(accounts.len());
        for a in accounts {
            let id = self.target.id(a)?;
            match lent.iter().find(|m| m.account == id) {
                Some(m) => picked.push(m.clone()),
                None => {
                    return Err(Error::new(
                        ErrorKind::NotBorrower,
                        format!("{a} is not checked out to this borrower"),
                    ));
                }
            }
        }
        Ok(picked)
    }

    /// Checks accounts in as `borrower` and rotates them. With `accounts` empty,
    /// the one account the borrower has (an error if it has several). With
    /// check-in enforcement off, any lent account may be checked in.
    pub async fn check_in(
        &self,
        name: &str,
        borrower: &str,
        accounts: &[AccountRef],
    ) -> Result<Vec<CheckedIn>> {
        let span = tracing::info_span!("ad.check_in", set = %name, borrower = %borrower);
        async {
            let info = self.rotator.store().get_set(name).await?;
            let enforce = info.config.enforce_check_in;
            let lent = self.lent_to(name, enforce.then_some(borrower)).await?;
            let picked = self.select(lent, accounts)?;
            self.check_in_members(name, picked, Some(borrower)).await
        }
        .instrument(span)
        .await
    }

    /// Checks accounts in whoever borrowed them (Vault's privileged "manage"
    /// check-in); all lent accounts of the set with `accounts` empty.
    pub async fn force_check_in(
        &self,
        name: &str,
        accounts: &[AccountRef],
    ) -> Result<Vec<CheckedIn>> {
        let span = tracing::info_span!("ad.force_check_in", set = %name);
        async {
            let lent = self.lent_to(name, None).await?;
            let picked = if accounts.is_empty() {
                lent
            } else {
                let mut v = Vec::new();
                for a in accounts {
                    let id = self.target.id(a)?;
                    if let Some(m) = lent.iter().find(|m| m.account == id) {
                        v.push(m.clone());
                    }
                }
                v
            };
            self.check_in_members(name, picked, None).await
        }
        .instrument(span)
        .await
    }

    /// Operator action for an account left unavailable by a failed check-in (for
    /// example one that needs an operator after its verification failed): an
    /// admin reset through the full protocol; on success the account is
    /// available again. Returns whether it is.
    pub async fn reconcile(&self, name: &str, account: &AccountRef) -> Result<bool> {
        let span = tracing::info_span!("ad.library_reconcile", set = %name, account = %account);
        async {
            let id = self.target.id(account)?;
            let member = self
                .rotator
                .store()
                .set_members(name)
                .await?
                .into_iter()
                .find(|m| m.account == id)
                .ok_or_else(|| Error::new(ErrorKind::NotFound, "the account is not in this set"))?;
            if member.state != MemberState::Returning {
                return Ok(member.state == MemberState::Available);
            }
            let policy = self.policy_for(name).await?;
            let outcome = self
                .rotator
                .reconcile(
                    &*self.target,
                    &id,
                    &PolicyGen(&policy),
                    credwheel_state::ReconcileMethod::AdminReset,
                )
                .await?;
            if !matches!(outcome, RotationOutcome::Rotated { .. }) {
                tracing::warn!(outcome = ?outcome, "reconcile did not rotate");
                return Ok(false);
            }
            let m = self
                .rotator
                .store()
                .finish_return(&id, member.generation)
                .await?;
            Ok(m.state == MemberState::Available)
        }
        .instrument(span)
        .await
    }

    async fn reap_set(&self, only: Option<&str>) -> Result<usize> {
        let now = self.now();
        let mut n = 0;
        for lease in self.rotator.store().list_expired_leases(now, 256).await? {
            if only.is_some_and(|s| s != lease.set) {
                continue;
            }
            let policy = self.policy_for(&lease.set).await?;
            match self
                .rotator
                .check_in(
                    &*self.target,
                    &lease.lease_id,
                    None,
                    &PolicyGen(&policy),
                    METHOD,
                )
                .await
            {
                Ok(r) => {
                    n += 1;
                    let ok = matches!(r.rotation, RotationOutcome::Rotated { .. });
                    tracing::info!(set = %lease.set, account = %lease.account, rotated = ok, "expired lease checked in");
                    metrics::counter!("credwheel_ad_expired_checkins_total", "set" => lease.set.clone())
                        .increment(1);
                }
                // Another process checked it in first.
                Err(StateError::NotFound(_) | StateError::InFlight { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// Checks in every expired lease (all sets) and retries the rotation of
    /// accounts left unavailable by a failed check-in (respecting their backoff).
    /// Returns how many accounts were handled.
    pub async fn reap(&self) -> Result<usize> {
        let mut n = self.reap_set(None).await?;
        let mut after: Option<String> = None;
        loop {
            let sets = self.rotator.store().list_sets(after.as_deref(), 64).await?;
            let len = sets.len();
            for s in &sets {
                n += self
                    .settle_returning(&s.name, Precondition::UnlessBackingOff(self.now()))
                    .await?;
            }
            if len < 64 {
                return Ok(n);
            }
            after = sets.last().map(|s| s.name.clone());
        }
    }

    /// Runs [`Library::reap`] every `every` on the current tokio runtime until the
    /// returned handle is aborted.
    pub fn spawn_reaper(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = me.reap().await {
                    tracing::warn!(error = %e, "check-out reaper pass failed");
                }
            }
        })
    }
}
