//! [`AdTarget`]: Active Directory as a `credwheel_state::RotationTarget`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use credwheel_state::{Millis, RotationTarget, TargetError, TargetId};
use secrecy::SecretString;
use tracing::Instrument;

use crate::account::AccountRef;
use crate::client::AdClient;
use crate::error::{Error, ErrorKind, Result};

/// The target kind in [`TargetId`]s made by this crate.
pub const TARGET_KIND: &str = "ad";

#[derive(Clone)]
struct Pin {
    dc: usize,
    dn: String,
    until: Instant,
}

/// Active Directory as a rotation target for `credwheel_state::Rotator`.
///
/// Account ids are `TargetId::new("ad", domain, account)` where `account` is an
/// [`AccountRef`] in text form (use [`AdTarget::id`]).
///
/// **One domain controller per rotation.** The first operation on an account picks
/// a domain controller (the first that works) and *pins* the account to it: the
/// password write, the verification bind and the `pwdLastSet` read of the
/// rotation, and of a later recovery, all go to that controller, so replication lag
/// between controllers can never make verification or recovery guess wrong. A pin
/// lasts [`Builder::dc_pin_ttl`](crate::Builder::dc_pin_ttl) (15 minutes) after its
/// last use; while the pinned controller is down, operations on the account fail as
/// unavailable rather than move to another controller that may not have the write
/// yet. The resolved DN is pinned with it (an explicit DN is never resolved).
pub struct AdTarget {
    client: AdClient,
    pins: Mutex<HashMap<TargetId, Pin>>,
}

impl std::fmt::Debug for AdTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdTarget")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl AdTarget {
    /// A target over `client`.
    pub fn new(client: AdClient) -> Self {
        Self {
            client,
            pins: Mutex::new(HashMap::new()),
        }
    }

    /// The client.
    pub fn client(&self) -> &AdClient {
        &self.client
    }

    /// The [`TargetId`] of an account in this domain.
    pub fn id(&self, account: &AccountRef) -> Result<TargetId> {
        TargetId::new(
            TARGET_KIND,
            self.client.config().domain(),
            account.to_string(),
        )
        .map_err(|e| Error::config(format!("target id: {e}")))
    }

    /// The account an id names.
    pub fn account_of(&self, id: &TargetId) -> Result<AccountRef> {
        if id.kind() != TARGET_KIND {
            return Err(Error::config(format!(
                "target id kind {:?} is not {TARGET_KIND:?}",
                id.kind()
            )));
        }
        if !id
            .scope()
            .eq_ignore_ascii_case(self.client.config().domain())
        {
            return Err(Error::config(format!(
                "target id scope {:?} is not this client's domain {:?}",
                id.scope(),
                self.client.config().domain()
            )));
        }
        AccountRef::parse(id.account())
    }

    /// The domain controller (URL) an account is pinned to, if any.
    pub fn pinned_dc(&self, id: &TargetId) -> Option<String> {
        let pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        pins.get(id)
            .filter(|p| p.until > Instant::now())
            .map(|p| self.client.dc_url(p.dc).to_owned())
    }

    /// Drops an account's pin (the next operation picks a controller again).
    pub fn unpin(&self, id: &TargetId) {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        pins.remove(id);
    }

    fn ttl(&self) -> Duration {
        self.client.config().pin_ttl
    }

    /// The pinned controller and DN, or a fresh choice (then pinned).
    async fn locate(&self, id: &TargetId) -> Result<(usize, String)> {
        {
            let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(p) = pins.get_mut(id)
                && p.until > Instant::now()
            {
                p.until = Instant::now() + self.ttl();
                return Ok((p.dc, p.dn.clone()));
            }
        }
        let account = self.account_of(id)?;
        let (dc, dn) = self.client.dn_on(None, &account).await?;
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        pins.insert(
            id.clone(),
            Pin {
                dc,
                dn: dn.clone(),
                until: Instant::now() + self.ttl(),
            },
        );
        Ok((dc, dn))
    }

    /// After an error: a vanished account may have been renamed; drop its pin.
    fn after(&self, id: &TargetId, r: &Result<impl Sized>) {
        if let Err(e) = r
            && matches!(e.kind(), ErrorKind::NoSuchAccount)
        {
            self.unpin(id);
        }
    }

    fn count(op: &'static str, r: &Result<impl Sized>) {
        let outcome = if r.is_ok() { "ok" } else { "error" };
        metrics::counter!("credwheel_ad_target_calls_total", "op" => op, "outcome" => outcome)
            .increment(1);
        if matches!(op, "reset" | "change") {
            match r {
                Ok(_) => metrics::counter!("credwheel_ad_password_changes_total", "method" => op)
                    .increment(1),
                Err(e) => metrics::counter!(
                    "credwheel_ad_password_change_failures_total",
                    "method" => op,
                    "kind" => e.label()
                )
                .increment(1),
            }
        }
    }

    /// [`RotationTarget::set_password_as_admin`] with this crate's error type.
    pub async fn reset(&self, id: &TargetId, new: &SecretString) -> Result<()> {
        let span =
            tracing::info_span!("ad.target.reset", account = %id, dc = tracing::field::Empty);
        let r = async {
            let (dc, dn) = self.locate(id).await?;
            tracing::Span::current().record("dc", self.client.dc_url(dc));
            self.client.reset_on(dc, &dn, new).await?;
            if self.client.config().unlock_after_rotation
                && let Err(e) = self.client.unlock_on(dc, &dn).await
            {
                tracing::warn!(error = %e, "unlock after rotation failed");
            }
            Ok(())
        }
        .instrument(span)
        .await;
        self.after(id, &r);
        Self::count("reset", &r);
        r
    }

    /// [`RotationTarget::change_password`] with this crate's error type.
    pub async fn change(
        &self,
        id: &TargetId,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<()> {
        let span =
            tracing::info_span!("ad.target.change", account = %id, dc = tracing::field::Empty);
        let r = async {
            let (dc, dn) = self.locate(id).await?;
            tracing::Span::current().record("dc", self.client.dc_url(dc));
            self.client.change_on(dc, &dn, current, new).await
        }
        .instrument(span)
        .await;
        self.after(id, &r);
        Self::count("change", &r);
        r
    }

    /// [`RotationTarget::verify`] with this crate's error type.
    pub async fn check(&self, id: &TargetId, password: &SecretString) -> Result<bool> {
        let span =
            tracing::info_span!("ad.target.verify", account = %id, dc = tracing::field::Empty);
        let r = async {
            let (dc, dn) = self.locate(id).await?;
            tracing::Span::current().record("dc", self.client.dc_url(dc));
            self.client.verify_on(dc, &dn, password).await
        }
        .instrument(span)
        .await;
        self.after(id, &r);
        Self::count("verify", &r);
        r
    }

    /// [`RotationTarget::password_last_set`] with this crate's error type.
    pub async fn last_set(&self, id: &TargetId) -> Result<Option<Millis>> {
        let span = tracing::info_span!("ad.target.pwd_last_set", account = %id, dc = tracing::field::Empty);
        let r = async {
            let (dc, dn) = self.locate(id).await?;
            tracing::Span::current().record("dc", self.client.dc_url(dc));
            self.client.pwd_last_set_on(dc, &dn).await
        }
        .instrument(span)
        .await;
        self.after(id, &r);
        Self::count("pwd_last_set", &r);
        r
    }
}

#[async_trait]
impl RotationTarget for AdTarget {
    async fn set_password_as_admin(
        &self,
        account: &TargetId,
        new_password: &SecretString,
    ) -> std::result::Result<(), TargetError> {
        self.reset(account, new_password).await.map_err(Into::into)
    }

    async fn change_password(
        &self,
        account: &TargetId,
        current_password: &SecretString,
        new_password: &SecretString,
    ) -> std::result::Result<(), TargetError> {
        self.change(account, current_password, new_password)
            .await
            .map_err(Into::into)
    }

    async fn verify(
        &self,
        account: &TargetId,
        password: &SecretString,
    ) -> std::result::Result<bool, TargetError> {
        self.check(account, password).await.map_err(Into::into)
    }

    async fn password_last_set(
        &self,
        account: &TargetId,
    ) -> std::result::Result<Option<Millis>, TargetError> {
        self.last_set(account).await.map_err(Into::into)
    }
}
