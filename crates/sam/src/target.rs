//! [`SamTarget`]: a Windows host's local SAM as a credwheel rotation target.

use std::future::Future;
use std::sync::Mutex;

use async_trait::async_trait;
use credwheel_state::{Millis, RotationMethod, RotationTarget, TargetError, TargetId};
use secrecy::{ExposeSecret, SecretString};

use crate::api::{ChangeOp, DomainSid, Handle, HostPasswordPolicy, ResetLevel, SamrApi, access};
use crate::client::{self, Endpoint, SmbSession};
use crate::config::{
    AccountName, ChangeCall, LoginMethod, PasswordEncryption, SamConfig, check_user_name,
};
use crate::error::{Call, Error};
use crate::status::NtStatus;

/// Opens sessions; the real one speaks SMB, unit tests use a fake.
pub(crate) trait Connector: Send + Sync {
    type Session: SamrApi;
    /// An authenticated session with SAMR bound.
    fn open(
        &self,
        user: &AccountName,
        password: &SecretString,
    ) -> impl Future<Output = Result<Self::Session, Error>> + Send;
    /// Only a logon (session setup) with these credentials.
    fn logon(
        &self,
        user: &AccountName,
        password: &SecretString,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Ends a session (best effort), closing `handles` first; in the background when
    /// `background` is set and a runtime is available.
    fn close(
        &self,
        session: Self::Session,
        handles: Vec<Handle>,
        background: bool,
    ) -> impl Future<Output = ()> + Send;
}

/// The real connector.
pub(crate) struct SmbConnector {
    pub(crate) ep: Endpoint,
}

impl Connector for SmbConnector {
    type Session = SmbSession;

    async fn open(&self, user: &AccountName, password: &SecretString) -> Result<SmbSession, Error> {
        SmbSession::open(&self.ep, user, password).await
    }

    async fn logon(&self, user: &AccountName, password: &SecretString) -> Result<(), Error> {
        client::logon(&self.ep, user, password).await
    }

    /// In the background, the caller's operation is complete and need not wait for the
    /// handles, the pipe and the logoff.
    async fn close(&self, mut session: SmbSession, handles: Vec<Handle>, background: bool) {
        let work = async move {
            for h in handles {
                let _ = SamrApi::close(&mut session, h).await;
            }
            session.close().await;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if background => {
                rt.spawn(work);
            }
            _ => work.await,
        }
    }
}

/// How long a pooled session trusts the password policy it read.
const POLICY_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// A session with the account domain open.
pub(crate) struct DomainSession<S> {
    s: S,
    server: Handle,
    domain: Handle,
    policy: HostPasswordPolicy,
    policy_read: std::time::Instant,
    /// RIDs looked up on this session (RIDs never change; a stale one fails to open).
    rids: std::collections::HashMap<String, u32>,
    /// User handles kept open for resets (by lower-case account name).
    users: std::collections::HashMap<String, Handle>,
}

impl<S: SamrApi> DomainSession<S> {
    async fn fresh_policy(&mut self) -> Result<HostPasswordPolicy, Error> {
        if self.policy_read.elapsed() > POLICY_TTL {
            self.policy = self.s.password_policy(&self.domain).await?;
            self.policy_read = std::time::Instant::now();
        }
        Ok(self.policy)
    }
}

/// Whether an error means the session itself is gone (so a retry on a fresh session
/// is the right answer).
fn session_broken(e: &Error) -> bool {
    match e {
        Error::Smb(_) => true,
        Error::Status { call, status } => {
            *call == Call::Pipe || *status == NtStatus::INVALID_HANDLE
        }
        _ => false,
    }
}

/// The categories of a character for Windows complexity: upper, lower, digit, other.
fn category(c: char) -> usize {
    if c.is_uppercase() {
        0
    } else if c.is_lowercase() {
        1
    } else if c.is_ascii_digit() {
        2
    } else {
        3
    }
}

/// Checks a concrete new password against the host's policy.
pub(crate) fn check_password(
    policy: &HostPasswordPolicy,
    account: &str,
    password: &str,
) -> Result<(), Error> {
    let n = password.chars().count();
    if n < usize::from(policy.min_length) {
        return Err(Error::HostPolicy(format!(
            "the new password has {n} characters and the host requires at least {}: raise the policy's length",
            policy.min_length
        )));
    }
    if policy.complexity {
        let mut seen = [false; 4];
        for c in password.chars() {
            seen[category(c)] = true;
        }
        if seen.iter().filter(|s| **s).count() < 3 {
            return Err(Error::HostPolicy(
                "the host requires complex passwords (3 of upper case, lower case, digits, symbols): add character classes to the policy".into(),
            ));
        }
        if account.chars().count() >= 3 && password.to_lowercase().contains(&account.to_lowercase())
        {
            return Err(Error::HostPolicy(
                "the host requires complex passwords, which may not contain the account name"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// How many distinct complexity categories every password of `policy` is certain to
/// contain.
fn guaranteed_categories(policy: &credwheel_policy::Policy) -> usize {
    let single = |charset: &str| {
        let mut cats = charset.chars().map(category);
        let first = cats.next()?;
        cats.all(|c| c == first).then_some(first)
    };
    let mut certain = [false; 4];
    let mut best_count = 0;
    for rule in policy.rules() {
        let classes: Vec<_> = rule
            .classes()
            .iter()
            .filter(|c| c.min_chars() > 0)
            .collect();
        let cats: Vec<Option<usize>> = classes.iter().map(|c| single(c.charset())).collect();
        if rule.at_least() >= rule.classes().len() {
            for c in cats.iter().flatten() {
                certain[*c] = true;
            }
        } else if cats.iter().all(Option::is_some) {
            let mut distinct: Vec<usize> = cats.iter().flatten().copied().collect();
            distinct.sort_unstable();
            distinct.dedup();
            if distinct.len() == cats.len() {
                best_count = best_count.max(rule.at_least());
            }
        }
    }
    best_count.max(certain.iter().filter(|c| **c).count())
}

/// Checks that every password `policy` generates meets the host's policy.
pub fn check_policy_against_host(
    policy: &credwheel_policy::Policy,
    host: &HostPasswordPolicy,
) -> Result<(), Error> {
    if policy.length() < usize::from(host.min_length) {
        return Err(Error::HostPolicy(format!(
            "the policy generates {} characters and the host requires at least {}: raise the policy's length",
            policy.length(),
            host.min_length
        )));
    }
    if host.complexity && guaranteed_categories(policy) < 3 {
        return Err(Error::HostPolicy(
            "the host requires complex passwords: the policy must guarantee 3 of upper case, lower case, digits and symbols".into(),
        ));
    }
    Ok(())
}

/// The rotation logic over any [`Connector`].
pub(crate) struct Engine<C: Connector> {
    pub(crate) connector: C,
    pub(crate) config: SamConfig,
    pool: Mutex<Vec<DomainSession<C::Session>>>,
}

impl<C: Connector> Engine<C> {
    pub(crate) fn new(connector: C, config: SamConfig) -> Self {
        Self {
            connector,
            config,
            pool: Mutex::new(Vec::new()),
        }
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Vec<DomainSession<C::Session>>> {
        self.pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_account(&self, account: &str) -> Result<(), Error> {
        check_user_name(account, self.config.names)?;
        if let Some((admin, _)) = &self.config.admin
            && admin.user.eq_ignore_ascii_case(account)
        {
            return Err(Error::InvalidInput(
                "the target account is the administrator this target logs in with; it cannot rotate itself".into(),
            ));
        }
        Ok(())
    }

    fn admin(&self) -> Result<&(AccountName, SecretString), Error> {
        self.config.admin.as_ref().ok_or_else(|| {
            Error::InvalidInput(
                "this operation needs an administrator (login as root); configure SamConfigBuilder::admin".into(),
            )
        })
    }

    /// Opens a session, refuses domain controllers, opens the account domain and reads
    /// its password policy.
    async fn open_domain(
        &self,
        user: &AccountName,
        password: &SecretString,
    ) -> Result<DomainSession<C::Session>, Error> {
        let mut s = self.connector.open(user, password).await?;
        match Self::domain_on(&mut s).await {
            Ok((server, domain, policy)) => Ok(DomainSession {
                s,
                server,
                domain,
                policy,
                policy_read: std::time::Instant::now(),
                rids: std::collections::HashMap::new(),
                users: std::collections::HashMap::new(),
            }),
            Err(e) => {
                self.connector.close(s, Vec::new(), true).await;
                Err(e)
            }
        }
    }

    async fn domain_on(s: &mut C::Session) -> Result<(Handle, Handle, HostPasswordPolicy), Error> {
        let server = s.connect().await?;
        let sid = Self::account_domain(s, &server).await?;
        let domain = s.open_domain(&server, &sid, access::DOMAIN).await?;
        let policy = s.password_policy(&domain).await?;
        Ok((server, domain, policy))
    }

    /// The SID of the host's own account domain, or [`Error::DomainController`] when the
    /// SAM holds the domain named in the NTLM challenge instead of the computer.
    async fn account_domain(s: &mut C::Session, server: &Handle) -> Result<DomainSid, Error> {
        let names = s.host_names().clone();
        let computer = names.computer.ok_or_else(|| {
            Error::Protocol("the host did not send its NetBIOS name in the NTLM challenge".into())
        })?;
        match s.lookup_domain(server, &computer).await {
            Ok(sid) => Ok(sid),
            Err(e) if e.nt_status() == Some(NtStatus::NO_SUCH_DOMAIN) => {
                if let Some(domain) = names.domain.filter(|d| !d.eq_ignore_ascii_case(&computer))
                    && s.lookup_domain(server, &domain).await.is_ok()
                {
                    return Err(Error::DomainController);
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// A pooled admin session (reused = true) or a fresh one.
    async fn admin_session(&self) -> Result<(DomainSession<C::Session>, bool), Error> {
        if let Some(ds) = self.pool().pop() {
            return Ok((ds, true));
        }
        let (user, pw) = self.admin()?;
        Ok((self.open_domain(user, pw).await?, false))
    }

    /// Closes the user, domain and server handles, then the session (best effort), in
    /// the background.
    async fn discard(&self, ds: DomainSession<C::Session>) {
        self.discard_with(ds, true).await;
    }

    async fn discard_with(&self, ds: DomainSession<C::Session>, background: bool) {
        let mut handles: Vec<Handle> = ds.users.into_values().collect();
        handles.extend([ds.domain, ds.server]);
        self.connector.close(ds.s, handles, background).await;
    }

    async fn give_back(&self, ds: DomainSession<C::Session>) {
        let extra = {
            let mut pool = self.pool();
            if pool.len() < self.config.max_idle_sessions {
                pool.push(ds);
                None
            } else {
                Some(ds)
            }
        };
        if let Some(ds) = extra {
            self.discard(ds).await;
        }
    }

    /// Runs `op` on an admin session; a pooled session that turns out to be dropped is
    /// replaced by a fresh one and `op` runs again (every `op` here is idempotent).
    async fn with_admin<T, F>(&self, op: F) -> Result<T, Error>
    where
        F: AsyncFnOnceClone<C::Session, T>,
    {
        let (mut ds, reused) = self.admin_session().await?;
        let res = op.clone().call(&mut ds).await;
        match res {
            Err(e) if reused && session_broken(&e) => {
                tracing::debug!("pooled SMB session was dropped; opening a fresh one");
                self.connector.close(ds.s, Vec::new(), true).await;
                let (user, pw) = self.admin()?;
                let mut ds = self.open_domain(user, pw).await?;
                let res = op.call(&mut ds).await;
                self.finish(ds, &res).await;
                res
            }
            res => {
                self.finish(ds, &res).await;
                res
            }
        }
    }

    async fn finish<T>(&self, ds: DomainSession<C::Session>, res: &Result<T, Error>) {
        match res {
            Err(e)
                if session_broken(e) || matches!(e, Error::Timeout { .. } | Error::Protocol(_)) =>
            {
                // The session is unusable; closing handles would only wait.
                self.connector.close(ds.s, Vec::new(), true).await;
            }
            _ => self.give_back(ds).await,
        }
    }

    /// The host's password policy.
    pub(crate) async fn host_policy(&self) -> Result<HostPasswordPolicy, Error> {
        self.with_admin(PolicyOp).await
    }

    /// Admin reset of `account`'s password.
    pub(crate) async fn reset(&self, account: &str, new: &SecretString) -> Result<(), Error> {
        self.check_account(account)?;
        self.with_admin(ResetOp {
            account: account.to_owned(),
            new: new.clone(),
            encryption: self.config.encryption,
        })
        .await
    }

    /// Self change with the account's own session.
    pub(crate) async fn change(
        &self,
        account: &str,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<(), Error> {
        self.check_account(account)?;
        let me = AccountName::parse(account)?;
        let mut ds = self.open_domain(&me, current).await?;
        let res = self.change_on(&mut ds, account, current, new).await;
        self.discard(ds).await;
        res
    }

    async fn change_on(
        &self,
        ds: &mut DomainSession<C::Session>,
        account: &str,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<(), Error> {
        check_password(&ds.policy, account, new.expose_secret())?;
        let server_name = self.config.host.clone();
        let ops: &[ChangeOp] = match self.config.change_call {
            ChangeCall::Aes73ThenRc4 => &[ChangeOp::Aes73, ChangeOp::Rc4_55],
            ChangeCall::TestingOnly55 => &[ChangeOp::Rc4_55],
            ChangeCall::TestingOnly73 => &[ChangeOp::Aes73],
        };
        let mut last = None;
        for op in ops {
            match ds
                .s
                .change_password(*op, &server_name, account, current, new)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if e.is_unsupported() => last = Some(e),
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        let e = last.unwrap_or_else(|| Error::Protocol("no change call tried".into()));
        if e.nt_status() != Some(NtStatus::ACCESS_DENIED) && !e.is_unsupported() {
            return Err(e);
        }
        // The host refuses remote changes (e.g. Windows Server 2025 member hosts): a
        // reset through the account's own session works if it is an administrator.
        match reset_on(ds, account, new, self.config.encryption).await {
            Ok(()) => Ok(()),
            Err(r) if r.nt_status() == Some(NtStatus::ACCESS_DENIED) => {
                Err(Error::ChangeRefusedByHost)
            }
            Err(r) => Err(r),
        }
    }

    /// Whether `password` logs `account` on now.
    pub(crate) async fn verify(
        &self,
        account: &str,
        password: &SecretString,
    ) -> Result<bool, Error> {
        check_user_name(account, self.config.names)?;
        let me = AccountName::parse(account)?;
        match self.connector.logon(&me, password).await {
            Ok(()) => Ok(true),
            Err(e)
                if matches!(
                    e.nt_status(),
                    Some(NtStatus::LOGON_FAILURE | NtStatus::WRONG_PASSWORD)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// PasswordLastSet of `account` in Unix milliseconds (needs an administrator).
    pub(crate) async fn password_last_set(&self, account: &str) -> Result<Option<Millis>, Error> {
        self.check_account(account)?;
        if self.config.admin.is_none() {
            return Ok(None);
        }
        self.with_admin(LastSetOp {
            account: account.to_owned(),
        })
        .await
    }

    /// Closes every idle session.
    pub(crate) async fn close_idle(&self) {
        let idle: Vec<_> = std::mem::take(&mut *self.pool());
        for ds in idle {
            self.discard_with(ds, false).await;
        }
    }

    /// Number of idle pooled sessions.
    pub(crate) fn idle(&self) -> usize {
        self.pool().len()
    }
}

/// An operation on an admin domain session that can be run again.
pub(crate) trait AsyncFnOnceClone<S: SamrApi, T>: Clone + Send {
    fn call(self, ds: &mut DomainSession<S>) -> impl Future<Output = Result<T, Error>> + Send;
}

#[derive(Clone)]
struct PolicyOp;

impl<S: SamrApi> AsyncFnOnceClone<S, HostPasswordPolicy> for PolicyOp {
    async fn call(self, ds: &mut DomainSession<S>) -> Result<HostPasswordPolicy, Error> {
        // Read it again: the host's policy may have changed since the session opened.
        let p = ds.s.password_policy(&ds.domain).await?;
        ds.policy = p;
        ds.policy_read = std::time::Instant::now();
        Ok(p)
    }
}

#[derive(Clone)]
struct ResetOp {
    account: String,
    new: SecretString,
    encryption: PasswordEncryption,
}

impl<S: SamrApi> AsyncFnOnceClone<S, ()> for ResetOp {
    async fn call(self, ds: &mut DomainSession<S>) -> Result<(), Error> {
        ds.fresh_policy().await?;
        reset_on(ds, &self.account, &self.new, self.encryption).await
    }
}

#[derive(Clone)]
struct LastSetOp {
    account: String,
}

impl<S: SamrApi> AsyncFnOnceClone<S, Option<Millis>> for LastSetOp {
    async fn call(self, ds: &mut DomainSession<S>) -> Result<Option<Millis>, Error> {
        let user = open_account(ds, &self.account, access::USER_READ).await?;
        let facts = ds.s.query_user(&user).await;
        let _ = ds.s.close(user).await;
        let ft = facts?.password_last_set;
        if ft <= 0 {
            return Ok(None);
        }
        // FILETIME (100 ns since 1601-01-01) to Unix milliseconds.
        Ok(Some(ft / 10_000 - 11_644_473_600_000))
    }
}

async fn lookup<S: SamrApi>(ds: &mut DomainSession<S>, account: &str) -> Result<u32, Error> {
    let key = account.to_lowercase();
    if let Some(rid) = ds.rids.get(&key) {
        return Ok(*rid);
    }
    match ds.s.lookup_name(&ds.domain, account).await {
        Err(e)
            if matches!(
                e.nt_status(),
                Some(NtStatus::NONE_MAPPED | NtStatus::NO_SUCH_USER)
            ) =>
        {
            Err(Error::NoSuchUser(account.to_owned()))
        }
        Ok(rid) => {
            ds.rids.insert(key, rid);
            Ok(rid)
        }
        r => r,
    }
}

/// Opens the account with `access`; a cached RID that no longer opens is looked up
/// again once (the account may have been deleted and recreated).
async fn open_account<S: SamrApi>(
    ds: &mut DomainSession<S>,
    account: &str,
    access: u32,
) -> Result<Handle, Error> {
    let key = account.to_lowercase();
    let cached = ds.rids.contains_key(&key);
    let rid = lookup(ds, account).await?;
    match ds.s.open_user(&ds.domain, rid, access).await {
        Err(e) if cached && e.nt_status() == Some(NtStatus::NO_SUCH_USER) => {
            ds.rids.remove(&key);
            let rid = lookup(ds, account).await?;
            ds.s.open_user(&ds.domain, rid, access).await
        }
        r => r,
    }
}

/// Resets `account` on an open domain session: checks the host's policy, refuses
/// disabled or locked accounts, sets the password (AES first), closes the user handle.
async fn reset_on<S: SamrApi>(
    ds: &mut DomainSession<S>,
    account: &str,
    new: &SecretString,
    encryption: PasswordEncryption,
) -> Result<(), Error> {
    check_password(&ds.policy, account, new.expose_secret())?;
    let key = account.to_lowercase();
    // A user handle kept open on a pooled session saves an open and a close per
    // rotation; it is closed with the session, or at once after any error.
    let (user, cached) = match ds.users.get(&key) {
        Some(h) => (*h, true),
        None => (open_account(ds, account, access::USER_RESET).await?, false),
    };
    let mut res = reset_with(ds, &user, new, encryption).await;
    if cached
        && matches!(
            res.as_ref().err().and_then(Error::nt_status),
            Some(NtStatus::INVALID_HANDLE | NtStatus::NO_SUCH_USER)
        )
    {
        // The cached handle went stale (e.g. the account was recreated): once more
        // with a fresh handle.
        ds.users.remove(&key);
        let _ = ds.s.close(user).await;
        let fresh = open_account(ds, account, access::USER_RESET).await?;
        res = reset_with(ds, &fresh, new, encryption).await;
        return keep_or_close(ds, key, fresh, res).await;
    }
    keep_or_close(ds, key, user, res).await
}

/// Keeps the user handle for reuse after success; closes it after an error.
async fn keep_or_close<S: SamrApi>(
    ds: &mut DomainSession<S>,
    key: String,
    user: Handle,
    res: Result<(), Error>,
) -> Result<(), Error> {
    if res.is_ok() {
        ds.users.insert(key, user);
    } else {
        ds.users.remove(&key);
        let _ = ds.s.close(user).await;
    }
    res
}

/// Refuses disabled or locked accounts, then sets the password.
async fn reset_with<S: SamrApi>(
    ds: &mut DomainSession<S>,
    user: &Handle,
    new: &SecretString,
    encryption: PasswordEncryption,
) -> Result<(), Error> {
    let facts = ds.s.query_user_flags(user).await?;
    let refuse = |status| Error::Status {
        call: Call::Samr(36),
        status,
    };
    if facts.disabled {
        return Err(refuse(NtStatus::ACCOUNT_DISABLED));
    }
    if facts.locked {
        return Err(refuse(NtStatus::ACCOUNT_LOCKED_OUT));
    }
    set_with_fallback(&mut ds.s, user, new, encryption).await
}

async fn set_with_fallback<S: SamrApi>(
    s: &mut S,
    user: &Handle,
    new: &SecretString,
    encryption: PasswordEncryption,
) -> Result<(), Error> {
    let levels: &[ResetLevel] = match encryption {
        PasswordEncryption::AesWithRc4Fallback => &[
            ResetLevel::Aes31,
            ResetLevel::Rc4Salted25,
            ResetLevel::Rc4Plain23,
        ],
        PasswordEncryption::AesOnly => &[ResetLevel::Aes31],
        PasswordEncryption::TestingRc4Only => &[ResetLevel::Rc4Salted25],
        PasswordEncryption::TestingRc4Level23 => &[ResetLevel::Rc4Plain23],
    };
    let mut last = None;
    for level in levels {
        match s.set_password(user, *level, new).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_unsupported() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    match (encryption, last) {
        (PasswordEncryption::AesOnly, Some(_)) => Err(Error::AesUnsupported {
            call: Call::Samr(58),
        }),
        (_, Some(e)) => Err(e),
        (_, None) => Err(Error::Protocol("no reset level tried".into())),
    }
}

/// A Windows host's local accounts (its SAM) as a credwheel
/// [`RotationTarget`], over SMB 3 and SAMR.
///
/// - [`set_password_as_admin`](RotationTarget::set_password_as_admin): the configured
///   administrator resets the password (SamrSetInformationUser2, AES level 31; RC4
///   levels 25/23 only if the host does not know level 31, unless AES-only). The
///   account is never left with "must change password at next logon".
/// - [`change_password`](RotationTarget::change_password): the account's own session
///   changes it (SamrUnicodeChangePasswordUser4, opnum 73, then opnum 55); where the
///   host refuses remote changes, a reset through that session if the account is an
///   administrator, else [`Error::ChangeRefusedByHost`].
/// - [`verify`](RotationTarget::verify): a fresh SMB session as the account.
///
/// Domain controllers are refused before anything is changed. Administrator sessions
/// are kept for reuse (up to [`SamConfigBuilder::max_idle_sessions`](crate::SamConfigBuilder::max_idle_sessions));
/// a dropped one is replaced transparently.
pub struct SamTarget {
    engine: Engine<SmbConnector>,
}

impl std::fmt::Debug for SamTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamTarget")
            .field("config", &self.engine.config)
            .finish_non_exhaustive()
    }
}

impl SamTarget {
    /// A target for the host in `config`. Nothing is contacted until the first call.
    pub fn new(config: SamConfig) -> Self {
        let ep = Endpoint {
            host: config.host.clone(),
            port: config.port,
            security: config.security,
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
        };
        Self {
            engine: Engine::new(SmbConnector { ep }, config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SamConfig {
        &self.engine.config
    }

    /// The rotation method matching the configured [`LoginMethod`]: an admin reset for
    /// login as root, a self change for login as target.
    pub fn rotation_method(&self) -> RotationMethod {
        match self.engine.config.method {
            LoginMethod::AsTarget => RotationMethod::SelfChange,
            _ => RotationMethod::AdminReset,
        }
    }

    /// A [`TargetId`] for a local account of this host (kind `"sam"`, scope
    /// `host:port`).
    pub fn target_id(&self, account: &str) -> Result<TargetId, Error> {
        check_user_name(account, self.engine.config.names)?;
        TargetId::new(
            "sam",
            format!("{}:{}", self.engine.config.host, self.engine.config.port),
            account,
        )
        .map_err(|e| Error::InvalidInput(e.to_string()))
    }

    /// The host's password policy (minimum length, history, complexity), read with the
    /// administrator's session.
    pub async fn host_password_policy(&self) -> Result<HostPasswordPolicy, Error> {
        self.engine.host_policy().await
    }

    /// Checks up front that every password `policy` generates is acceptable to the
    /// host; a mismatch is [`Error::HostPolicy`].
    pub async fn check_policy(
        &self,
        policy: &credwheel_policy::Policy,
    ) -> Result<HostPasswordPolicy, Error> {
        let host = self.engine.host_policy().await?;
        check_policy_against_host(policy, &host)?;
        Ok(host)
    }

    /// Admin reset, with this crate's error type.
    pub async fn reset_password(&self, account: &str, new: &SecretString) -> Result<(), Error> {
        self.engine.reset(account, new).await
    }

    /// Self change, with this crate's error type.
    pub async fn change_password_as_account(
        &self,
        account: &str,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<(), Error> {
        self.engine.change(account, current, new).await
    }

    /// Whether `password` logs `account` on, with this crate's error type.
    pub async fn check_password(
        &self,
        account: &str,
        password: &SecretString,
    ) -> Result<bool, Error> {
        self.engine.verify(account, password).await
    }

    /// Closes the idle administrator sessions.
    pub async fn close(&self) {
        self.engine.close_idle().await;
    }

    /// Number of idle administrator sessions kept for reuse.
    pub fn idle_sessions(&self) -> usize {
        self.engine.idle()
    }

    /// Breaks the connections of idle sessions without removing them from the pool, as
    /// a network drop would (tests of the transparent reconnect).
    #[doc(hidden)]
    pub async fn testing_drop_idle_connections(&self) {
        let idle: Vec<_> = std::mem::take(&mut *self.engine.pool());
        let mut broken = Vec::new();
        for ds in idle {
            ds.s.testing_disconnect().await;
            broken.push(ds);
        }
        self.engine.pool().extend(broken);
    }
}

fn target_err(e: Error) -> TargetError {
    TargetError::from(&e)
}

impl SamTarget {
    /// The account of `id`, refusing ids that [`SamTarget::target_id`] made for another
    /// host.
    fn account<'a>(&self, id: &'a TargetId) -> Result<&'a str, TargetError> {
        let ours = format!("{}:{}", self.engine.config.host, self.engine.config.port);
        if id.kind() == "sam" && id.scope() != ours {
            return Err(target_err(Error::InvalidInput(format!(
                "{id} belongs to another host than this target ({ours})"
            ))));
        }
        Ok(id.account())
    }
}

#[async_trait]
impl RotationTarget for SamTarget {
    async fn set_password_as_admin(
        &self,
        account: &TargetId,
        new_password: &SecretString,
    ) -> Result<(), TargetError> {
        self.engine
            .reset(self.account(account)?, new_password)
            .await
            .map_err(target_err)
    }

    async fn change_password(
        &self,
        account: &TargetId,
        current_password: &SecretString,
        new_password: &SecretString,
    ) -> Result<(), TargetError> {
        self.engine
            .change(self.account(account)?, current_password, new_password)
            .await
            .map_err(target_err)
    }

    async fn verify(
        &self,
        account: &TargetId,
        password: &SecretString,
    ) -> Result<bool, TargetError> {
        self.engine
            .verify(self.account(account)?, password)
            .await
            .map_err(target_err)
    }

    async fn password_last_set(&self, account: &TargetId) -> Result<Option<Millis>, TargetError> {
        self.engine
            .password_last_set(self.account(account)?)
            .await
            .map_err(target_err)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::api::UserFacts;
    use crate::client::HostNames;
    use crate::config::NameRules;

    fn sv(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn status(call: Call, s: NtStatus) -> Error {
        Error::Status { call, status: s }
    }

    #[derive(Default)]
    struct Sam {
        users: HashMap<String, (String, bool, bool)>,
        admins: Vec<String>,
        dc: bool,
        policy: HostPasswordPolicy,
        no_level_31: bool,
        no_73: bool,
        refuse_changes: bool,
        opens: usize,
        levels: Vec<ResetLevel>,
        changes: Vec<ChangeOp>,
        broken: bool,
        stale_once: bool,
        user_opens: usize,
        closed: usize,
    }

    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<Sam>>);

    impl Fake {
        fn sam(&self) -> std::sync::MutexGuard<'_, Sam> {
            self.0.lock().unwrap()
        }
    }

    struct FakeSession {
        sam: Fake,
        who: String,
        names: HostNames,
        broken: bool,
        looked_up: String,
    }

    impl FakeSession {
        fn alive(&self) -> Result<(), Error> {
            if self.broken || self.sam.sam().broken {
                return Err(Error::Smb("connection stopped".into()));
            }
            Ok(())
        }
    }

    const H: Handle = Handle([7; 20]);

    impl SamrApi for FakeSession {
        async fn connect(&mut self) -> Result<Handle, Error> {
            self.alive()?;
            Ok(H)
        }
        async fn lookup_domain(&mut self, _s: &Handle, name: &str) -> Result<DomainSid, Error> {
            let dc = self.sam.sam().dc;
            match (dc, name) {
                (false, "HOST") | (true, "CORP") | (_, "Builtin") => {
                    Ok(DomainSid::new(5, &[21, 1, 2, 3]).unwrap())
                }
                _ => Err(status(Call::Samr(5), NtStatus::NO_SUCH_DOMAIN)),
            }
        }
        async fn open_domain(
            &mut self,
            _s: &Handle,
            _d: &DomainSid,
            _a: u32,
        ) -> Result<Handle, Error> {
            Ok(H)
        }
        async fn lookup_name(&mut self, _d: &Handle, name: &str) -> Result<u32, Error> {
            if self.sam.sam().users.contains_key(name) {
                self.looked_up = name.to_owned();
                Ok(1000)
            } else {
                Err(status(Call::Samr(17), NtStatus::NONE_MAPPED))
            }
        }
        async fn open_user(&mut self, _d: &Handle, _r: u32, _a: u32) -> Result<Handle, Error> {
            self.sam.sam().user_opens += 1;
            Ok(Handle([9; 20]))
        }
        async fn query_user(&mut self, _u: &Handle) -> Result<UserFacts, Error> {
            let sam = self.sam.sam();
            let (_, disabled, locked) = sam.users[&self.looked_up].clone();
            Ok(UserFacts {
                disabled,
                locked,
                password_last_set: 134_000_000_000_000_000,
            })
        }
        async fn query_user_flags(&mut self, u: &Handle) -> Result<UserFacts, Error> {
            if std::mem::take(&mut self.sam.sam().stale_once) {
                return Err(status(Call::Samr(47), NtStatus::INVALID_HANDLE));
            }
            let mut f = self.query_user(u).await?;
            f.password_last_set = 0;
            Ok(f)
        }
        async fn password_policy(&mut self, _d: &Handle) -> Result<HostPasswordPolicy, Error> {
            self.alive()?;
            Ok(self.sam.sam().policy)
        }
        async fn set_password(
            &mut self,
            _u: &Handle,
            level: ResetLevel,
            new: &SecretString,
        ) -> Result<(), Error> {
            self.alive()?;
            let mut sam = self.sam.sam();
            if !sam.admins.contains(&self.who) {
                return Err(status(Call::Samr(58), NtStatus::ACCESS_DENIED));
            }
            if level == ResetLevel::Aes31 && sam.no_level_31 {
                return Err(status(Call::Samr(58), NtStatus::INVALID_INFO_CLASS));
            }
            sam.levels.push(level);
            let target = self.looked_up.clone();
            sam.users.get_mut(&target).unwrap().0 = new.expose_secret().to_owned();
            Ok(())
        }
        async fn change_password(
            &mut self,
            op: ChangeOp,
            _server: &str,
            user: &str,
            old: &SecretString,
            new: &SecretString,
        ) -> Result<(), Error> {
            let mut sam = self.sam.sam();
            if op == ChangeOp::Aes73 && sam.no_73 {
                return Err(Error::Fault {
                    call: Call::Samr(73),
                    code: crate::status::NCA_S_OP_RNG_ERROR,
                });
            }
            if sam.refuse_changes {
                return Err(status(Call::Samr(73), NtStatus::ACCESS_DENIED));
            }
            sam.changes.push(op);
            let u = sam.users.get_mut(user).unwrap();
            if u.0 != old.expose_secret() {
                return Err(status(Call::Samr(55), NtStatus::WRONG_PASSWORD));
            }
            u.0 = new.expose_secret().to_owned();
            Ok(())
        }
        async fn close(&mut self, _h: Handle) -> Result<(), Error> {
            Ok(())
        }
        fn host_names(&self) -> &HostNames {
            &self.names
        }
    }

    impl Connector for Fake {
        type Session = FakeSession;
        async fn open(&self, user: &AccountName, pw: &SecretString) -> Result<FakeSession, Error> {
            self.logon(user, pw).await?;
            let mut sam = self.sam();
            sam.opens += 1;
            let dc = sam.dc;
            Ok(FakeSession {
                sam: self.clone(),
                who: user.user.clone(),
                names: HostNames {
                    computer: Some(if dc { "DC1" } else { "HOST" }.into()),
                    domain: Some(if dc { "CORP" } else { "HOST" }.into()),
                },
                broken: false,
                looked_up: String::new(),
            })
        }
        async fn logon(&self, user: &AccountName, pw: &SecretString) -> Result<(), Error> {
            let sam = self.sam();
            match sam.users.get(&user.user) {
                Some((p, _, true)) if p == pw.expose_secret() => {
                    Err(status(Call::SessionSetup, NtStatus::ACCOUNT_LOCKED_OUT))
                }
                Some((p, true, _)) if p == pw.expose_secret() => {
                    Err(status(Call::SessionSetup, NtStatus::ACCOUNT_DISABLED))
                }
                Some((p, _, _)) if p == pw.expose_secret() => Ok(()),
                _ => Err(status(Call::SessionSetup, NtStatus::LOGON_FAILURE)),
            }
        }
        async fn close(&self, _s: FakeSession, h: Vec<Handle>, _background: bool) {
            self.sam().closed += h.len();
        }
    }

    fn engine(
        f: impl FnOnce(crate::SamConfigBuilder) -> crate::SamConfigBuilder,
    ) -> (Engine<Fake>, Fake) {
        let fake = Fake::default();
        {
            let mut sam = fake.sam();
            sam.users
                .insert("root".into(), ("Root-Pass-1!".into(), false, false));
            sam.users
                .insert("svc1".into(), ("Old-Pass-1!".into(), false, false));
            sam.admins.push("root".into());
            sam.policy = HostPasswordPolicy {
                min_length: 8,
                history_length: 0,
                complexity: true,
            };
        }
        let config = f(SamConfig::builder("host").admin("root", sv("Root-Pass-1!")))
            .build()
            .unwrap();
        (Engine::new(fake.clone(), config), fake)
    }

    #[tokio::test]
    async fn reset_prefers_aes_and_falls_back_only_when_unknown() {
        let (e, fake) = engine(|b| b);
        e.reset("svc1", &sv("New-Pass-22!")).await.unwrap();
        assert_eq!(fake.sam().levels, vec![ResetLevel::Aes31]);
        fake.sam().no_level_31 = true;
        e.reset("svc1", &sv("New-Pass-23!")).await.unwrap();
        assert_eq!(fake.sam().levels[1], ResetLevel::Rc4Salted25);
        let (e, fake) = engine(|b| b.password_encryption(PasswordEncryption::AesOnly));
        fake.sam().no_level_31 = true;
        let err = e.reset("svc1", &sv("New-Pass-24!")).await.unwrap_err();
        assert!(matches!(err, Error::AesUnsupported { .. }), "{err}");
        assert!(fake.sam().levels.is_empty());
        let (e, fake) = engine(|b| b.password_encryption(PasswordEncryption::TestingRc4Only));
        e.reset("svc1", &sv("New-Pass-25!")).await.unwrap();
        assert_eq!(fake.sam().levels, vec![ResetLevel::Rc4Salted25]);
    }

    #[tokio::test]
    async fn sessions_are_reused_and_a_dropped_one_is_replaced() {
        let (e, fake) = engine(|b| b);
        e.reset("svc1", &sv("New-Pass-22!")).await.unwrap();
        e.reset("svc1", &sv("New-Pass-23!")).await.unwrap();
        assert_eq!(fake.sam().opens, 1);
        assert_eq!(e.idle(), 1);
        // Break the pooled session only.
        e.pool()[0].s.broken = true;
        e.reset("svc1", &sv("New-Pass-24!")).await.unwrap();
        assert_eq!(fake.sam().opens, 2);
        assert_eq!(e.idle(), 1);
        let (e, fake) = engine(|b| b.max_idle_sessions(0));
        e.reset("svc1", &sv("New-Pass-22!")).await.unwrap();
        e.reset("svc1", &sv("New-Pass-23!")).await.unwrap();
        assert_eq!((fake.sam().opens, e.idle()), (2, 0));
    }

    #[tokio::test]
    async fn user_handles_are_kept_and_a_stale_one_is_replaced() {
        let (e, fake) = engine(|b| b);
        e.reset("svc1", &sv("New-Pass-22!")).await.unwrap();
        e.reset("svc1", &sv("New-Pass-23!")).await.unwrap();
        assert_eq!(fake.sam().user_opens, 1);
        fake.sam().stale_once = true;
        e.reset("svc1", &sv("New-Pass-24!")).await.unwrap();
        assert_eq!(fake.sam().user_opens, 2);
        assert_eq!(fake.sam().levels.len(), 3);
        // Closing the pool closes the kept user handle, the domain and the server.
        e.close_idle().await;
        assert_eq!(fake.sam().closed, 3);
    }

    #[tokio::test]
    async fn domain_controllers_are_refused_before_any_change() {
        let (e, fake) = engine(|b| b);
        fake.sam().dc = true;
        let err = e.reset("svc1", &sv("New-Pass-22!")).await.unwrap_err();
        assert_eq!(err, Error::DomainController);
        assert!(fake.sam().levels.is_empty());
        let err = e
            .change("svc1", &sv("Old-Pass-1!"), &sv("New-Pass-22!"))
            .await
            .unwrap_err();
        assert_eq!(err, Error::DomainController);
        assert!(fake.sam().changes.is_empty());
        assert_eq!(
            TargetError::from(&err).kind(),
            credwheel_state::TargetErrorKind::Denied
        );
    }

    #[tokio::test]
    async fn host_policy_and_account_state_are_checked_before_setting() {
        let (e, fake) = engine(|b| b);
        let err = e.reset("svc1", &sv("short")).await.unwrap_err();
        assert!(matches!(err, Error::HostPolicy(_)), "{err}");
        let err = e.reset("svc1", &sv("alllowercase")).await.unwrap_err();
        assert!(matches!(err, Error::HostPolicy(_)), "{err}");
        let err = e.reset("svc1", &sv("xSvc1-pass-9")).await.unwrap_err();
        assert!(matches!(err, Error::HostPolicy(_)), "{err}");
        assert!(!err.to_string().contains("xSvc1-pass-9"));
        let err = e.reset("nobody", &sv("New-Pass-22!")).await.unwrap_err();
        assert_eq!(
            TargetError::from(&err).kind(),
            credwheel_state::TargetErrorKind::NoSuchAccount
        );
        assert!(fake.sam().levels.is_empty());
        // The administrator itself is never a target.
        assert!(matches!(
            e.reset("ROOT", &sv("New-Pass-22!")).await,
            Err(Error::InvalidInput(_))
        ));
    }

    #[tokio::test]
    async fn disabled_or_locked_accounts_are_refused_before_setting() {
        let (e, fake) = engine(|b| b);
        fake.sam().users.get_mut("svc1").unwrap().1 = true;
        let err = e.reset("svc1", &sv("New-Pass-22!")).await.unwrap_err();
        assert_eq!(
            TargetError::from(&err).kind(),
            credwheel_state::TargetErrorKind::AccountDisabled
        );
        fake.sam().users.get_mut("svc1").unwrap().1 = false;
        fake.sam().users.get_mut("svc1").unwrap().2 = true;
        let err = e.reset("svc1", &sv("New-Pass-22!")).await.unwrap_err();
        assert_eq!(
            TargetError::from(&err).kind(),
            credwheel_state::TargetErrorKind::AccountLocked
        );
        assert!(fake.sam().levels.is_empty());
    }

    #[tokio::test]
    async fn change_uses_73_then_55_then_a_reset_through_its_own_session() {
        let (e, fake) = engine(|b| b);
        e.change("svc1", &sv("Old-Pass-1!"), &sv("New-Pass-22!"))
            .await
            .unwrap();
        assert_eq!(fake.sam().changes, vec![ChangeOp::Aes73]);
        fake.sam().no_73 = true;
        e.change("svc1", &sv("New-Pass-22!"), &sv("New-Pass-23!"))
            .await
            .unwrap();
        assert_eq!(fake.sam().changes[1], ChangeOp::Rc4_55);
        // Host refuses changes; svc1 is no administrator.
        fake.sam().refuse_changes = true;
        let err = e
            .change("svc1", &sv("New-Pass-23!"), &sv("New-Pass-24!"))
            .await
            .unwrap_err();
        assert_eq!(err, Error::ChangeRefusedByHost);
        assert!(err.to_string().contains("login as root"));
        // ... but an administrator target resets itself.
        fake.sam().admins.push("svc1".into());
        e.change("svc1", &sv("New-Pass-23!"), &sv("New-Pass-24!"))
            .await
            .unwrap();
        assert_eq!(fake.sam().levels, vec![ResetLevel::Aes31]);
        // Wrong current password: the logon fails, nothing changes.
        let err = e
            .change("svc1", &sv("nope"), &sv("New-Pass-25!"))
            .await
            .unwrap_err();
        assert_eq!(
            TargetError::from(&err).kind(),
            credwheel_state::TargetErrorKind::BadCredentials
        );
    }

    #[tokio::test]
    async fn verify_is_false_only_for_a_definite_logon_failure() {
        let (e, fake) = engine(|b| b);
        assert!(e.verify("svc1", &sv("Old-Pass-1!")).await.unwrap());
        assert!(!e.verify("svc1", &sv("wrong")).await.unwrap());
        fake.sam().users.get_mut("svc1").unwrap().2 = true;
        let err = e.verify("svc1", &sv("Old-Pass-1!")).await.unwrap_err();
        assert_eq!(
            TargetError::from(&err).kind(),
            credwheel_state::TargetErrorKind::AccountLocked
        );
        fake.sam().users.get_mut("svc1").unwrap().2 = false;
        fake.sam().users.get_mut("svc1").unwrap().1 = true;
        let err = e.verify("svc1", &sv("Old-Pass-1!")).await.unwrap_err();
        assert_eq!(
            TargetError::from(&err).kind(),
            credwheel_state::TargetErrorKind::AccountDisabled
        );
        assert!(matches!(
            e.verify("a/b", &sv("x")).await,
            Err(Error::InvalidInput(_))
        ));
    }

    #[tokio::test]
    async fn password_last_set_is_unix_millis() {
        let (e, _fake) = engine(|b| b);
        let t = e.password_last_set("svc1").await.unwrap().unwrap();
        // 134e15 * 100 ns since 1601 is in 2025.
        assert!(t > 1_700_000_000_000 && t < 1_800_000_000_000, "{t}");
        let e2 = Engine::new(
            Fake::default(),
            SamConfig::builder("h")
                .method(LoginMethod::AsTarget)
                .build()
                .unwrap(),
        );
        assert_eq!(e2.password_last_set("svc1").await.unwrap(), None);
    }

    #[test]
    fn policy_guarantees_are_checked_against_the_host() {
        let host = HostPasswordPolicy {
            min_length: 14,
            history_length: 24,
            complexity: true,
        };
        check_policy_against_host(&credwheel_policy::Policy::vault_default(), &host).unwrap();
        let host30 = HostPasswordPolicy {
            min_length: 30,
            ..host
        };
        assert!(matches!(
            check_policy_against_host(&credwheel_policy::Policy::vault_default(), &host30),
            Err(Error::HostPolicy(_))
        ));
        let lower = credwheel_policy::Policy::builder(20)
            .charset("lower", "abcdefghijklmnopqrstuvwxyz", 1)
            .build()
            .unwrap();
        assert!(matches!(
            check_policy_against_host(&lower, &host),
            Err(Error::HostPolicy(_))
        ));
        let no_cx = HostPasswordPolicy {
            complexity: false,
            ..host
        };
        check_policy_against_host(&lower, &no_cx).unwrap();
        let _ = NameRules::Strict;
    }
}
