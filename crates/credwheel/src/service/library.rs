//! Check-out libraries (Vault's service-account library): lend an account with its
//! password, rotate it on every check-in and when a lease expires.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::{Credwheel, ms};
use crate::config::Library;
use crate::error::Error;
use crate::source::PolicySource;
use crate::state::{
    ConflictReason, MemberState, Millis, Precondition, Record, RotationMethod, RotationOutcome,
    RotationTarget, SetConfig, StateError, TargetId,
};

pub(crate) struct ManagedLibrary {
    pub(crate) def: Library,
    pub(crate) target: Arc<dyn RotationTarget>,
    pub(crate) accounts: Vec<(String, TargetId)>,
    pub(crate) source: PolicySource,
    /// Per account, how to ask AD for its password rules.
    pub(crate) checkers: Vec<(String, super::check::Checker)>,
}

impl ManagedLibrary {
    pub(crate) fn new(
        def: &Library,
        target: Arc<dyn RotationTarget>,
        accounts: Vec<(String, TargetId)>,
    ) -> Self {
        ManagedLibrary {
            def: def.clone(),
            target,
            accounts,
            source: PolicySource::new(def.policy.clone()),
            checkers: Vec::new(),
        }
    }

    fn username(&self, id: &TargetId) -> String {
        self.accounts
            .iter()
            .find(|(_, i)| i == id)
            .map_or_else(|| id.account().to_owned(), |(n, _)| n.clone())
    }

    /// Creates the set and an (empty) credential record per account; the first
    /// check-out of an account sets its password.
    pub(crate) async fn ensure(&self, cw: &Credwheel) -> Result<(), Error> {
        let ids: Vec<TargetId> = self.accounts.iter().map(|(_, i)| i.clone()).collect();
        let mut cfg = SetConfig::new(ms(self.def.ttl), ms(self.def.max_ttl));
        cfg.enforce_check_in = !self.def.disable_check_in_enforcement;
        match cw.inner.store.put_set(&self.def.name, &cfg, 0).await {
            Ok(_) | Err(StateError::Conflict(ConflictReason::AlreadyExists)) => {}
            Err(e) => return Err(e.into()),
        }
        cw.inner.store.add_to_set(&self.def.name, &ids).await?;
        for id in ids {
            match cw.inner.store.create_record(&Record::new(id)).await {
                Ok(_) | Err(StateError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn err(&self, message: impl Into<String>) -> Error {
        Error::Library {
            library: self.def.name.clone(),
            message: message.into(),
        }
    }

    /// Rotates every member waiting for its rotation (newly added, or whose
    /// check-in rotation failed) and makes it available. Returns how many are
    /// available again.
    pub(crate) async fn complete_returns(
        &self,
        cw: &Credwheel,
        now: Millis,
    ) -> Result<usize, Error> {
        let members = cw.inner.store.set_members(&self.def.name).await?;
        let mut n = 0;
        for m in members
            .into_iter()
            .filter(|m| m.state == MemberState::Returning)
        {
            let r = cw
                .inner
                .rotator
                .complete_return(
                    &*self.target,
                    &m,
                    &self.source,
                    RotationMethod::AdminReset,
                    Precondition::UnlessBackingOff(now),
                )
                .await;
            match r {
                Ok(c) if matches!(c.rotation, RotationOutcome::Rotated { .. }) => n += 1,
                Ok(c) if matches!(c.rotation, RotationOutcome::Skipped { .. }) => {}
                Ok(c) => {
                    let why = Credwheel::rotation_result(&self.def.name, Ok(c.rotation))
                        .err()
                        .map_or_else(String::new, |e| e.to_string());
                    tracing::warn!(library = %self.def.name, account = %self.username(&m.account), error = %why, "rotating a returned account did not commit; it is not lent");
                }
                Err(StateError::InFlight { .. } | StateError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }
}

/// An account lent by [`Credwheel::check_out`].
#[must_use = "the lease must be checked in (or it is rotated when it expires)"]
#[non_exhaustive]
pub struct CheckedOut {
    /// The account (`sAMAccountName`).
    pub account: String,
    /// Its password, valid until check-in.
    pub password: SecretString,
    /// The lease id (renew or check in with it).
    pub lease_id: String,
    /// When the lease expires and the account is rotated (Unix ms).
    pub expires_at: Millis,
}

impl fmt::Debug for CheckedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedOut")
            .field("account", &self.account)
            .field("lease_id", &self.lease_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A lease extended by [`Credwheel::renew`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Renewed {
    /// The account (`sAMAccountName`).
    pub account: String,
    /// The lease id.
    pub lease_id: String,
    /// When the lease now expires (Unix ms).
    pub expires_at: Millis,
    /// The latest it can ever expire (check-out time + the library's `max_ttl`).
    pub max_expires_at: Millis,
}

/// One account of a library.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LibraryMember {
    /// The account (`sAMAccountName`).
    pub account: String,
    /// Free to check out.
    pub available: bool,
    /// Who has it.
    pub borrower: Option<String>,
    /// When its lease expires.
    pub expires_at: Option<Millis>,
}

/// A library's accounts (`credwheel library status SET`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LibraryStatus {
    /// The library.
    pub name: String,
    /// Its accounts.
    pub members: Vec<LibraryMember>,
}

impl Credwheel {
    fn library(&self, name: &str) -> Result<&ManagedLibrary, Error> {
        self.inner
            .libraries
            .get(name)
            .ok_or_else(|| Error::UnknownLibrary(name.to_owned()))
    }

    /// Lends a free account of library `set` to `borrower` for `ttl` (at most the
    /// library's). An account whose password was never set is rotated first.
    pub async fn check_out(
        &self,
        set: &str,
        borrower: &str,
        ttl: Option<Duration>,
    ) -> Result<CheckedOut, Error> {
        let lib = self.library(set)?;
        let ttl = ttl.unwrap_or(lib.def.ttl).min(lib.def.ttl);
        if ttl.is_zero() {
            return Err(lib.err("the ttl must be greater than 0"));
        }
        let mut tries = 0;
        let lease = loop {
            match self
                .inner
                .rotator
                .check_out(set, borrower, Some(ms(ttl)))
                .await
            {
                Ok(l) => break l,
                Err(StateError::NoneAvailable) if tries == 0 => {
                    // Members never rotated yet (or whose check-in rotation failed)
                    // are rotated now, then lent.
                    tries += 1;
                    lib.complete_returns(self, self.now()).await?;
                }
                Err(StateError::NoneAvailable) => {
                    tracing::warn!(
                        library = set,
                        counter = "check-out.unavailable",
                        "no accounts available for check-out"
                    );
                    return Err(lib.err("no service accounts available for check-out"));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let (password, _) = self.inner.rotator.current_password(&lease.account).await?;
        let account = lib.username(&lease.account);
        tracing::info!(library = set, account = %account, borrower, "checked out");
        Ok(CheckedOut {
            account,
            password,
            lease_id: lease.lease_id,
            expires_at: lease.expires_at,
        })
    }

    /// Checks an account back in and rotates its password. Without `account`, the
    /// borrower's only lease is used (several: an error). `force` checks in on
    /// behalf of anyone (an operator's override; also the library's
    /// `disable_check_in_enforcement`).
    pub async fn check_in(
        &self,
        set: &str,
        borrower: &str,
        account: Option<&str>,
        force: bool,
    ) -> Result<String, Error> {
        let lib = self.library(set)?;
        let any = force || lib.def.disable_check_in_enforcement;
        let lease = self
            .find_lease(lib, borrower, account, any, "check in")
            .await?;
        let who = (!any).then_some(borrower);
        let done = self
            .inner
            .rotator
            .check_in(
                &*lib.target,
                &lease.lease_id,
                who,
                &lib.source,
                RotationMethod::AdminReset,
            )
            .await?;
        if !matches!(done.rotation, RotationOutcome::Rotated { .. }) {
            let r = Credwheel::rotation_result(set, Ok(done.rotation));
            let why = r
                .err()
                .map_or_else(|| "not rotated".to_owned(), |e| e.to_string());
            return Err(lib.err(format!(
                "checked in, but the rotation did not commit ({why}); the account is not lent again until it does"
            )));
        }
        let name = lib.username(&lease.account);
        tracing::info!(library = set, account = %name, "checked in and rotated");
        Ok(name)
    }

    /// Extends the lease `borrower` holds on an account of library `set` by `ttl`
    /// (default and at most: the library's ttl), never beyond the lease's
    /// `max_ttl` from check-out. Without `account`, the borrower's only lease is
    /// used. With `disable_check_in_enforcement`, anyone may renew any lease.
    /// Returns the new expiry (Unix ms); at `max_ttl` it no longer moves.
    pub async fn renew(
        &self,
        set: &str,
        borrower: &str,
        account: Option<&str>,
        ttl: Option<Duration>,
    ) -> Result<Renewed, Error> {
        let lib = self.library(set)?;
        let ttl = ttl.unwrap_or(lib.def.ttl).min(lib.def.ttl);
        if ttl.is_zero() {
            return Err(lib.err("the ttl must be greater than 0"));
        }
        let any = lib.def.disable_check_in_enforcement;
        let lease = self
            .find_lease(lib, borrower, account, any, "renew")
            .await?;
        let renewed = match self
            .inner
            .rotator
            .renew(&lease.lease_id, &lease.borrower, Some(ms(ttl)))
            .await
        {
            Ok(l) => l,
            Err(StateError::NotFound(_)) => {
                return Err(
                    lib.err("the lease ended (checked in or expired) before it was renewed")
                );
            }
            Err(e) => return Err(e.into()),
        };
        let account = lib.username(&renewed.account);
        tracing::info!(library = set, account = %account, expires_at = renewed.expires_at, "lease renewed");
        Ok(Renewed {
            account,
            lease_id: renewed.lease_id,
            expires_at: renewed.expires_at,
            max_expires_at: renewed.max_expires_at,
        })
    }

    /// The one lease of library `lib` that `borrower` (anyone's, with `any`) holds
    /// on `account` (any account when `None`).
    async fn find_lease(
        &self,
        lib: &ManagedLibrary,
        borrower: &str,
        account: Option<&str>,
        any: bool,
        what: &str,
    ) -> Result<crate::state::Lease, Error> {
        let members = self.inner.store.set_members(&lib.def.name).await?;
        let mut leases: Vec<_> = members
            .into_iter()
            .filter_map(|m| m.lease)
            .filter(|l| any || l.borrower == borrower)
            .filter(|l| account.is_none_or(|a| lib.username(&l.account).eq_ignore_ascii_case(a)))
            .collect();
        match leases.len() {
            0 => Err(lib.err(format!("nothing to {what} for this borrower"))),
            1 => Ok(leases.remove(0)),
            _ => Err(lib.err(format!(
                "several accounts are checked out: name the one to {what}"
            ))),
        }
    }

    /// Which accounts of library `set` are available and who has the others.
    pub async fn library_status(&self, set: &str) -> Result<LibraryStatus, Error> {
        let lib = self.library(set)?;
        let members = self.inner.store.set_members(set).await?;
        Ok(LibraryStatus {
            name: set.to_owned(),
            members: members
                .into_iter()
                .map(|m| LibraryMember {
                    account: lib.username(&m.account),
                    available: m.state == MemberState::Available,
                    borrower: m.lease.as_ref().map(|l| l.borrower.clone()),
                    expires_at: m.lease.as_ref().map(|l| l.expires_at),
                })
                .collect(),
        })
    }

    /// Checks in (rotating) every expired lease of this configuration's libraries.
    pub(crate) async fn expire_leases(&self, now: Millis) -> Result<usize, Error> {
        if self.inner.libraries.is_empty() {
            return Ok(0);
        }
        let expired = self.inner.store.list_expired_leases(now, 64).await?;
        let mut n = 0;
        for lease in expired {
            let Some(lib) = self.inner.libraries.get(&lease.set) else {
                continue;
            };
            match self
                .inner
                .rotator
                .check_in(
                    &*lib.target,
                    &lease.lease_id,
                    None,
                    &lib.source,
                    RotationMethod::AdminReset,
                )
                .await
            {
                Ok(c) if matches!(c.rotation, RotationOutcome::Rotated { .. }) => {
                    tracing::info!(library = %lease.set, account = %lib.username(&lease.account), "lease expired: checked in and rotated");
                    n += 1;
                }
                Ok(c) => {
                    tracing::warn!(library = %lease.set, outcome = ?c.rotation, "expired lease checked in; rotation did not commit");
                }
                Err(
                    StateError::InFlight { .. } | StateError::Conflict(_) | StateError::NotFound(_),
                ) => {}
                Err(e) => {
                    tracing::warn!(library = %lease.set, error = %e, "checking in an expired lease failed");
                }
            }
        }
        for lib in self.inner.libraries.values() {
            if let Err(e) = lib.complete_returns(self, now).await {
                tracing::warn!(library = %lib.def.name, error = %e, "rotating returned accounts failed");
            }
        }
        Ok(n)
    }

    pub(crate) async fn recover_library_account(
        &self,
        set: &str,
        id: &TargetId,
    ) -> Result<(), Error> {
        let lib = self.library(set)?;
        match self.inner.rotator.recover(&*lib.target, id).await {
            Ok(_) | Err(StateError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
