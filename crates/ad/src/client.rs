//! The directory client: pooled connections with failover, account lookup,
//! password operations, health checks and unlock.

use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use ldap3::{Mod, Scope, SearchEntry};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;
use zeroize::Zeroizing;

use crate::account::{ACCOUNT_ATTRS, Account, AccountRef};
use crate::config::{Config, DcUrl};
use crate::error::{Error, ErrorKind, Result, from_ldap3};
use crate::pool::{self, BindCreds, ConnManager, Object, Pool, pool_error, simple_bind};

/// Bytes sent as an attribute value: zeroized when dropped. (ldap3 encodes them
/// into its own buffers, which are not zeroized; see the crate's security notes.)
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Bytes(Zeroizing<Vec<u8>>);

impl Hash for Bytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_slice().hash(state);
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Bytes {
    fn text(s: &str) -> Self {
        Self(Zeroizing::new(s.as_bytes().to_vec()))
    }
}

/// The `unicodePwd` value: the password in double quotes, UTF-16LE.
pub(crate) fn unicode_pwd(password: &SecretString) -> Bytes {
    let pw = password.expose_secret();
    let mut out = Zeroizing::new(Vec::with_capacity((pw.len() + 2) * 2));
    for unit in std::iter::once(u16::from(b'"'))
        .chain(pw.encode_utf16())
        .chain(std::iter::once(u16::from(b'"')))
    {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    Bytes(out)
}

fn one(v: Bytes) -> HashSet<Bytes> {
    let mut s = HashSet::with_capacity(1);
    s.insert(v);
    s
}

pub(crate) struct Dc {
    pub(crate) url: DcUrl,
    admin: Pool,
    user: Pool,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) dcs: Vec<Dc>,
    pub(crate) bind: Arc<BindCreds>,
}

/// A client for one Active Directory domain: pooled, bounded connections to one or
/// more domain controllers tried in order.
///
/// Two pools per domain controller: one bound as the bind account (searches,
/// resets, unlock), one for binding as managed accounts (verification, self
/// changes); each holds at most [`Builder::pool_size`](crate::Builder::pool_size)
/// connections. A connection found closed (or failing a liveness probe after 30 s
/// idle) is replaced transparently; a read that fails because its connection broke
/// is retried once on a new connection.
///
/// Cheap to clone (shared state).
#[derive(Clone)]
pub struct AdClient {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for AdClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Which domain controller to use: any (failover in order) or a pinned one.
pub(crate) type DcChoice = Option<usize>;

fn record<T>(op: &'static str, start: Instant, r: &Result<T>) {
    let ms = start.elapsed().as_secs_f64() * 1e3;
    match r {
        Ok(_) => {
            metrics::counter!("credwheel_ad_operations_total", "op" => op, "outcome" => "ok")
                .increment(1);
        }
        Err(e) => {
            metrics::counter!("credwheel_ad_operations_total", "op" => op, "outcome" => "error")
                .increment(1);
            metrics::counter!("credwheel_ad_failures_total", "op" => op, "kind" => e.label())
                .increment(1);
            tracing::debug!(op, error = %e, "operation failed");
        }
    }
    metrics::histogram!("credwheel_ad_operation_ms", "op" => op).record(ms);
}

impl AdClient {
    /// A client for `config`. Connects lazily: the first operation opens the first
    /// connection (use [`AdClient::check_bind`] to fail fast).
    pub fn new(config: Config) -> Result<Self> {
        let bind = Arc::new(BindCreds::new(
            config.bind_dn.to_string(),
            config.bind_password.clone(),
        ));
        let wait = config.connect_timeout + config.request_timeout;
        let mut dcs = Vec::with_capacity(config.urls.len());
        for url in &config.urls {
            let manager = |bind: Option<Arc<BindCreds>>| ConnManager {
                dc: url.clone(),
                tls: config.tls.clone(),
                connect_timeout: config.connect_timeout,
                request_timeout: config.request_timeout,
                bind,
            };
            dcs.push(Dc {
                url: url.clone(),
                admin: pool::build_pool(manager(Some(bind.clone())), config.pool_size, wait)?,
                user: pool::build_pool(manager(None), config.pool_size, wait)?,
            });
        }
        Ok(Self {
            inner: Arc::new(Inner { config, dcs, bind }),
        })
    }

    /// Replaces the bind account's password (after it was changed elsewhere, or by
    /// a root rotation). New connections bind with it and fall back to the previous
    /// one while the change propagates; pooled connections stay bound.
    pub fn set_bind_password(&self, password: SecretString) {
        self.inner.bind.rotate(password);
    }

    /// The bind password new connections use first.
    pub(crate) fn bind_password(&self) -> SecretString {
        self.inner.bind.current()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The domain controller at `index` in failover order.
    pub(crate) fn dc_url(&self, index: usize) -> &str {
        self.inner.dcs.get(index).map_or("?", |d| d.url.url())
    }

    /// An administrative connection: the pinned DC only, or the first that works.
    async fn admin_conn(&self, choice: DcChoice) -> Result<(usize, Object)> {
        if let Some(i) = choice {
            let dc = self
                .inner
                .dcs
                .get(i)
                .ok_or_else(|| Error::config("no such domain controller index"))?;
            return Ok((i, dc.admin.get().await.map_err(pool_error)?));
        }
        let mut last = None;
        for (i, dc) in self.inner.dcs.iter().enumerate() {
            match dc.admin.get().await.map_err(pool_error) {
                Ok(c) => return Ok((i, c)),
                Err(e) if e.is_dc_failure() => {
                    tracing::warn!(dc = %dc.url, error = %e, "domain controller failed; trying the next");
                    metrics::counter!("credwheel_ad_failovers_total").increment(1);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::config("no domain controller configured")))
    }

    async fn user_conn(&self, dc: usize) -> Result<Object> {
        let d = self
            .inner
            .dcs
            .get(dc)
            .ok_or_else(|| Error::config("no such domain controller index"))?;
        d.user.get().await.map_err(pool_error)
    }

    fn timeout(&self) -> std::time::Duration {
        self.inner.config.request_timeout
    }

    /// A search as the bind account; retried once on a fresh connection when the
    /// connection turns out to be broken.
    pub(crate) async fn search(
        &self,
        choice: DcChoice,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        context: &'static str,
    ) -> Result<(usize, Vec<SearchEntry>)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (dc, mut conn) = self.admin_conn(choice).await?;
            conn.ldap.with_timeout(self.timeout());
            let res = conn.ldap.search(base, scope, filter, attrs.to_vec()).await;
            match res {
                Ok(r) => {
                    let (entries, result) = (r.0, r.1);
                    if result.rc != 0 {
                        return Err(Error::from_ldap_result(result.rc, &result.text, context));
                    }
                    return Ok((
                        dc,
                        entries.into_iter().map(SearchEntry::construct).collect(),
                    ));
                }
                Err(e) => {
                    let err = from_ldap3(e, context);
                    drop(Object::take(conn));
                    if attempt < 2 && err.kind() == ErrorKind::Connect {
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }

    /// A modify as the bind account on one domain controller. Retried only when
    /// the request certainly never left (the connection was already closed).
    async fn admin_modify(
        &self,
        dc: usize,
        dn: &str,
        mods: Vec<Mod<Bytes>>,
        context: &'static str,
    ) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (_, mut conn) = self.admin_conn(Some(dc)).await?;
            if conn.ldap.is_closed() {
                drop(Object::take(conn));
                if attempt < 3 {
                    continue;
                }
                return Err(Error::new(ErrorKind::Connect, context));
            }
            conn.ldap.with_timeout(self.timeout());
            match conn.ldap.modify(dn, mods.clone()).await {
                Ok(r) if r.rc == 0 => return Ok(()),
                Ok(r) => return Err(Error::from_ldap_result(r.rc, &r.text, context)),
                Err(e) => {
                    let unsent = matches!(e, ldap3::LdapError::OpSend { .. });
                    let err = from_ldap3(e, context);
                    drop(Object::take(conn));
                    if unsent && attempt < 3 {
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }

    fn ensure_encrypted(&self, dc: usize) -> Result<()> {
        match self.inner.dcs.get(dc) {
            Some(d) if d.url.transport().is_encrypted() => Ok(()),
            Some(_) => Err(Error::new(
                ErrorKind::EncryptionRequired,
                "refused before sending: this connection is not encrypted",
            )),
            None => Err(Error::config("no such domain controller index")),
        }
    }

    fn first_encrypted(&self, choice: DcChoice) -> Result<()> {
        match choice {
            Some(dc) => self.ensure_encrypted(dc),
            None if self
                .inner
                .dcs
                .iter()
                .all(|d| !d.url.transport().is_encrypted()) =>
            {
                Err(Error::new(
                    ErrorKind::EncryptionRequired,
                    "refused before sending: no domain controller URL is encrypted",
                ))
            }
            None => Ok(()),
        }
    }

    /// Finds the account and reads its attributes: a subtree search under the base
    /// DN by UPN or `sAMAccountName` (more than one match is an error), or a read
    /// of the explicit DN itself.
    pub(crate) async fn find_on(
        &self,
        choice: DcChoice,
        r: &AccountRef,
    ) -> Result<(usize, Account)> {
        let (base, scope, filter) = match r {
            AccountRef::Dn(dn) => (dn.to_string(), Scope::Base, "(objectClass=*)".to_owned()),
            _ => {
                let f = r
                    .filter()?
                    .ok_or_else(|| Error::config("account reference without a filter"))?;
                (
                    self.inner.config.base_dn.to_string(),
                    Scope::Subtree,
                    f.to_string(),
                )
            }
        };
        let (dc, entries) = self
            .search(
                choice,
                &base,
                scope,
                &filter,
                ACCOUNT_ATTRS,
                "looking up the account",
            )
            .await?;
        let mut it = entries.into_iter();
        let Some(e) = it.next() else {
            return Err(Error::new(
                ErrorKind::NoSuchAccount,
                "looking up the account",
            ));
        };
        if it.next().is_some() {
            return Err(Error::new(
                ErrorKind::AmbiguousAccount,
                "looking up the account: more than one entry matches",
            ));
        }
        Ok((dc, Account::from_entry(&e.dn, &e.attrs)?))
    }

    /// The DN to write to: explicit DNs as given, names resolved by a search.
    pub(crate) async fn dn_on(&self, choice: DcChoice, r: &AccountRef) -> Result<(usize, String)> {
        match r {
            AccountRef::Dn(dn) => {
                let dc = match choice {
                    Some(dc) => dc,
                    None => self.admin_conn(None).await?.0,
                };
                Ok((dc, dn.to_string()))
            }
            _ => {
                let (dc, a) = self.find_on(choice, r).await?;
                Ok((dc, a.dn().to_string()))
            }
        }
    }

    /// Looks an account up.
    pub async fn find_account(&self, account: &AccountRef) -> Result<Account> {
        let span = tracing::info_span!("ad.find_account", account = %account);
        let start = Instant::now();
        let r = self
            .find_on(None, account)
            .instrument(span)
            .await
            .map(|x| x.1);
        record("find_account", start, &r);
        r
    }

    pub(crate) async fn reset_on(&self, dc: usize, dn: &str, new: &SecretString) -> Result<()> {
        self.ensure_encrypted(dc)?;
        let mods = vec![Mod::Replace(
            Bytes::text("unicodePwd"),
            one(unicode_pwd(new)),
        )];
        self.admin_modify(dc, dn, mods, "resetting the password")
            .await
    }

    /// Sets the account's password with the bind account's rights (`unicodePwd`
    /// *replace*), on the first working domain controller.
    pub async fn reset_password(&self, account: &AccountRef, new: &SecretString) -> Result<()> {
        let span = tracing::info_span!("ad.reset_password", account = %account, dc = tracing::field::Empty);
        let start = Instant::now();
        let r = async {
            self.first_encrypted(None)?;
            let (dc, dn) = self.dn_on(None, account).await?;
            tracing::Span::current().record("dc", self.dc_url(dc));
            self.reset_on(dc, &dn, new).await
        }
        .instrument(span)
        .await;
        record("reset_password", start, &r);
        r
    }

    /// Binds as `dn` on one domain controller: `Ok(())`, or the server's refusal.
    pub(crate) async fn bind_on(
        &self,
        dc: usize,
        dn: &str,
        password: &SecretString,
    ) -> Result<Object> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.user_conn(dc).await?;
            match simple_bind(&mut conn.ldap, dn, password, self.timeout()).await {
                Ok(()) => return Ok(conn),
                Err(e) if e.kind() == ErrorKind::Connect && attempt < 2 => {
                    drop(Object::take(conn));
                }
                Err(e) => {
                    if e.result_code().is_none() {
                        drop(Object::take(conn));
                    }
                    return Err(e);
                }
            }
        }
    }

    pub(crate) async fn verify_on(
        &self,
        dc: usize,
        dn: &str,
        password: &SecretString,
    ) -> Result<bool> {
        match self.bind_on(dc, dn, password).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::InvalidCredentials && e.result_code().is_some() => {
                Ok(false)
            }
            Err(e) => Err(e.with_context("binding as the account")),
        }
    }

    /// Whether the directory accepts `password` for the account now (a simple bind
    /// as the account). `Ok(false)` only when the server refused the password as
    /// wrong; a locked, disabled or expired account is an error of that kind.
    ///
    /// Active Directory (and Samba) keep accepting the previous password for a
    /// while after a change (`OldPasswordAllowedPeriod`, 60 minutes by default).
    pub async fn verify_password(
        &self,
        account: &AccountRef,
        password: &SecretString,
    ) -> Result<bool> {
        let span = tracing::info_span!("ad.verify_password", account = %account);
        let start = Instant::now();
        let r = async {
            let (dc, dn) = self.dn_on(None, account).await?;
            self.verify_on(dc, &dn, password).await
        }
        .instrument(span)
        .await;
        record("verify_password", start, &r);
        r
    }

    pub(crate) async fn change_on(
        &self,
        dc: usize,
        dn: &str,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<()> {
        self.ensure_encrypted(dc)?;
        let mut conn = self
            .bind_on(dc, dn, current)
            .await
            .map_err(|e| e.with_context("binding as the account with its current password"))?;
        let mods = vec![
            Mod::Delete(Bytes::text("unicodePwd"), one(unicode_pwd(current))),
            Mod::Add(Bytes::text("unicodePwd"), one(unicode_pwd(new))),
        ];
        conn.ldap.with_timeout(self.timeout());
        let context = "changing the password as the account";
        match conn.ldap.modify(dn, mods).await {
            Ok(r) if r.rc == 0 => Ok(()),
            Ok(r) => Err(Error::from_ldap_result(r.rc, &r.text, context)),
            Err(e) => {
                drop(Object::take(conn));
                Err(from_ldap3(e, context))
            }
        }
    }

    /// Changes the password as the account itself, proving the current one
    /// (`unicodePwd` *delete* old + *add* new, bound as the account). Subject to the
    /// domain's minimum age and history.
    pub async fn change_password(
        &self,
        account: &AccountRef,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<()> {
        let span = tracing::info_span!("ad.change_password", account = %account);
        let start = Instant::now();
        let r = async {
            self.first_encrypted(None)?;
            let (dc, dn) = self.dn_on(None, account).await?;
            self.change_on(dc, &dn, current, new).await
        }
        .instrument(span)
        .await;
        record("change_password", start, &r);
        r
    }

    pub(crate) async fn pwd_last_set_on(&self, dc: usize, dn: &str) -> Result<Option<i64>> {
        let (_, entries) = self
            .search(
                Some(dc),
                dn,
                Scope::Base,
                "(objectClass=*)",
                &["pwdLastSet"],
                "reading pwdLastSet",
            )
            .await?;
        let e = entries
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(ErrorKind::NoSuchAccount, "reading pwdLastSet"))?;
        let raw: Option<i64> = crate::account::int_attr(&e.attrs, "pwdLastSet")?;
        Ok(raw.and_then(crate::account::filetime_to_unix_ms))
    }

    /// `pwdLastSet` in Unix milliseconds (`None` when never set or "must change").
    pub async fn password_last_set(&self, account: &AccountRef) -> Result<Option<i64>> {
        let span = tracing::info_span!("ad.password_last_set", account = %account);
        let start = Instant::now();
        let r = async {
            let (dc, dn) = self.dn_on(None, account).await?;
            self.pwd_last_set_on(dc, &dn).await
        }
        .instrument(span)
        .await;
        record("password_last_set", start, &r);
        r
    }

    pub(crate) async fn unlock_on(&self, dc: usize, dn: &str) -> Result<()> {
        let mods = vec![Mod::Replace(
            Bytes::text("lockoutTime"),
            one(Bytes::text("0")),
        )];
        self.admin_modify(dc, dn, mods, "unlocking the account")
            .await
    }

    /// Unlocks the account (sets `lockoutTime` to 0). Needs the right to write
    /// `lockoutTime` on the account.
    pub async fn unlock(&self, account: &AccountRef) -> Result<()> {
        let span = tracing::info_span!("ad.unlock", account = %account);
        let start = Instant::now();
        let r = async {
            let (dc, dn) = self.dn_on(None, account).await?;
            self.unlock_on(dc, &dn).await
        }
        .instrument(span)
        .await;
        record("unlock", start, &r);
        r
    }

    /// Checks that the bind account can bind (on the first working domain
    /// controller).
    pub async fn check_bind(&self) -> Result<()> {
        let span = tracing::info_span!("ad.check_bind");
        let start = Instant::now();
        let r = self.admin_conn(None).instrument(span).await.map(|_| ());
        record("check_bind", start, &r);
        r
    }

    /// Health of a stored password for an account: does it bind, and if not, why
    /// (wrong, locked, disabled, expired, ...). Binding with a wrong password
    /// counts as a failed logon (it can add to a lockout).
    pub async fn health(&self, account: &AccountRef, password: &SecretString) -> Result<Health> {
        let span = tracing::info_span!("ad.health", account = %account);
        let start = Instant::now();
        let r = async {
            let (dc, a) = self.find_on(None, account).await?;
            let bind = self
                .bind_on(dc, &a.dn().to_string(), password)
                .await
                .map(|_| ());
            Health::from_bind(bind, Some(&a))
        }
        .instrument(span)
        .await;
        record("health", start, &r);
        r
    }

    /// Health of the bind account's own password (a fresh bind as the bind account,
    /// not a pooled connection).
    pub async fn bind_health(&self) -> Result<Health> {
        let span = tracing::info_span!("ad.bind_health");
        let start = Instant::now();
        let r = async {
            let dn = self.inner.bind.dn.clone();
            let password = self.inner.bind.current();
            let mut last = None;
            for (i, _) in self.inner.dcs.iter().enumerate() {
                match self.bind_on(i, &dn, &password).await {
                    Ok(_) => return Health::from_bind(Ok(()), None),
                    Err(e) if e.is_dc_failure() => last = Some(e),
                    Err(e) => return Health::from_bind(Err(e), None),
                }
            }
            Err(last.unwrap_or_else(|| Error::config("no domain controller configured")))
        }
        .instrument(span)
        .await;
        record("bind_health", start, &r);
        r
    }
}

/// What a health check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HealthStatus {
    /// The password binds.
    Ok,
    /// The directory refused the password as wrong.
    WrongPassword,
    /// The account is locked out.
    Locked,
    /// The account is disabled.
    Disabled,
    /// The account has expired.
    AccountExpired,
    /// The password has expired.
    PasswordExpired,
    /// The password must be changed before logging on.
    MustChangePassword,
    /// Logon not permitted now or from here.
    LogonRestricted,
    /// The stored password still binds, but the directory's password was changed
    /// after our last rotation: AD (and Samba) accept the previous password for a
    /// while, so it will stop working ([`Roles::health`](crate::Roles::health)).
    ChangedElsewhere,
}

/// A health check's result. No secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    status: HealthStatus,
    locked: Option<bool>,
    disabled: Option<bool>,
    password_last_set: Option<i64>,
}

impl Health {
    fn from_bind(bind: Result<()>, account: Option<&Account>) -> Result<Self> {
        let status = match bind {
            Ok(()) => HealthStatus::Ok,
            Err(e) => match e.kind() {
                ErrorKind::InvalidCredentials if e.result_code().is_some() => {
                    HealthStatus::WrongPassword
                }
                ErrorKind::AccountLocked => HealthStatus::Locked,
                ErrorKind::AccountDisabled => HealthStatus::Disabled,
                ErrorKind::AccountExpired => HealthStatus::AccountExpired,
                ErrorKind::PasswordExpired => HealthStatus::PasswordExpired,
                ErrorKind::MustChangePassword => HealthStatus::MustChangePassword,
                ErrorKind::LogonRestricted => HealthStatus::LogonRestricted,
                _ => return Err(e),
            },
        };
        // A directory that answers "wrong password" for a locked or disabled
        // account (some do, to avoid revealing state) is corrected from the
        // account's attributes.
        let status = match (status, account) {
            (HealthStatus::WrongPassword, Some(a)) if a.is_locked() => HealthStatus::Locked,
            (HealthStatus::WrongPassword, Some(a)) if a.is_disabled() => HealthStatus::Disabled,
            (s, _) => s,
        };
        Ok(Self {
            status,
            locked: account.map(Account::is_locked),
            disabled: account.map(Account::is_disabled),
            password_last_set: account.and_then(Account::password_last_set),
        })
    }

    pub(crate) fn with_status(mut self, status: HealthStatus) -> Self {
        self.status = status;
        self
    }

    /// The verdict.
    pub fn status(&self) -> HealthStatus {
        self.status
    }

    /// Whether the password works.
    pub fn is_ok(&self) -> bool {
        self.status == HealthStatus::Ok
    }

    /// The account's lockout flag, when it was read.
    pub fn locked(&self) -> Option<bool> {
        self.locked
    }

    /// The account's disabled flag, when it was read.
    pub fn disabled(&self) -> Option<bool> {
        self.disabled
    }

    /// `pwdLastSet` in Unix milliseconds, when read.
    pub fn password_last_set(&self) -> Option<i64> {
        self.password_last_set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_pwd_encoding() {
        let b = unicode_pwd(&SecretString::from("Ab1!é"));
        let expected: Vec<u8> = "\"Ab1!é\""
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(b.as_ref(), expected.as_slice());
        assert_eq!(&b.as_ref()[..2], &[0x22, 0x00]);
    }

    #[test]
    fn health_mapping() {
        let h = Health::from_bind(
            Err(Error::from_ldap_result(
                49,
                "80090308: LdapErr: x, data 775, v1",
                "b",
            )),
            None,
        )
        .unwrap();
        assert_eq!(h.status(), HealthStatus::Locked);
        let h = Health::from_bind(Err(Error::from_ldap_result(49, "", "b")), None).unwrap();
        assert_eq!(h.status(), HealthStatus::WrongPassword);
        assert!(Health::from_bind(Err(Error::new(ErrorKind::Timeout, "b")), None).is_err());
    }
}
