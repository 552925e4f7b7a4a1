//! Roles: named service accounts whose passwords rotate lazily past a TTL, as
//! Vault's AD secrets engine serves them, with the state in a shared store.

use crate::source::PolicyGen;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use credwheel_policy::Policy;
use credwheel_state::{
    Millis, Precondition, Record, RecordState, RotateOptions, RotationMethod, RotationOutcome,
    Rotator, Schedule, StateError, TargetId,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::account::AccountRef;
use crate::error::{Error, ErrorKind, Result};
use crate::target::AdTarget;

/// The kind under which roles are stored as configuration documents.
pub const ROLE_KIND: &str = "ad.role";

/// Longest role name.
pub const MAX_ROLE_NAME: usize = 64;

fn check_slug(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ROLE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "role name {name:?}: 1..={MAX_ROLE_NAME} characters of a-z, 0-9, '-' and '_', \
             starting with a letter or digit"
        )))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ms(d: Duration) -> Result<i64> {
    i64::try_from(d.as_millis())
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| Error::config("durations must be between 1 ms and i64::MAX ms"))
}

/// How a new role starts.
#[derive(Clone)]
#[non_exhaustive]
pub enum Import {
    /// Set a fresh password at once (the default): an admin reset, or for a
    /// self-managed role a self change from the given current password.
    Rotate {
        /// The account's current password; required for self-managed roles.
        current: Option<SecretString>,
    },
    /// Serve this known current password until the first rotation (after the TTL,
    /// or a manual rotation). Checked with a bind first.
    Keep(SecretString),
}

impl Default for Import {
    fn default() -> Self {
        Self::Rotate { current: None }
    }
}

impl fmt::Debug for Import {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rotate { current } => f
                .debug_struct("Rotate")
                .field("current", &current.as_ref().map(|_| "[REDACTED]"))
                .finish(),
            Self::Keep(_) => f.write_str("Keep([REDACTED])"),
        }
    }
}

/// What to create: [`Roles::create_role`].
///
/// ```
/// use credwheel_ad::{AccountRef, RoleSpec};
/// let spec = RoleSpec::new("web", AccountRef::upn("svc-web@example.com"), "10h")?;
/// assert_eq!(spec.ttl().as_secs(), 36_000);
/// assert!(RoleSpec::new("Bad Name", AccountRef::sam("x"), "1h").is_err());
/// assert!(RoleSpec::new("web", AccountRef::sam("x"), "soon").is_err());
/// # Ok::<(), credwheel_ad::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RoleSpec {
    name: String,
    account: AccountRef,
    ttl: Duration,
    policy_hcl: Option<String>,
    self_managed: bool,
    import: Import,
}

impl RoleSpec {
    /// A role `name` (a slug) for `account` whose password lives `ttl` (humantime,
    /// e.g. `"10h"`, `"30m"`, `"7days"`).
    pub fn new(name: &str, account: AccountRef, ttl: &str) -> Result<Self> {
        check_slug(name)?;
        let ttl = humantime::parse_duration(ttl)
            .map_err(|e| Error::config(format!("role ttl {ttl:?}: {e}")))?;
        ms(ttl)?;
        Ok(Self {
            name: name.to_owned(),
            account,
            ttl,
            policy_hcl: None,
            self_managed: false,
            import: Import::default(),
        })
    }

    /// A password policy in Vault's HCL (default: Vault's default policy, 20
    /// characters of lower, upper, digits and `-`, which meets AD complexity).
    pub fn policy_hcl(mut self, hcl: impl Into<String>) -> Self {
        self.policy_hcl = Some(hcl.into());
        self
    }

    /// The account rotates itself with its current password (self change); no
    /// admin rights are used. Needs the current password at import.
    pub fn self_managed(mut self, on: bool) -> Self {
        self.self_managed = on;
        self
    }

    /// How the role starts (default: rotate at import).
    pub fn import(mut self, import: Import) -> Self {
        self.import = import;
        self
    }

    /// The TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[derive(Serialize, Deserialize)]
struct RoleDoc {
    account: String,
    username: String,
    ttl: String,
    ttl_ms: i64,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    self_managed: bool,
}

/// A stored role.
#[derive(Clone)]
pub struct Role {
    name: String,
    account: AccountRef,
    username: String,
    ttl: Duration,
    policy_hcl: Option<String>,
    policy: Arc<Policy>,
    self_managed: bool,
    version: u64,
}

impl fmt::Debug for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Role")
            .field("name", &self.name)
            .field("account", &self.account.to_string())
            .field("username", &self.username)
            .field("ttl", &self.ttl)
            .field("self_managed", &self.self_managed)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Role {
    /// The role's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The account.
    pub fn account(&self) -> &AccountRef {
        &self.account
    }
    /// The user name served with the credentials.
    pub fn username(&self) -> &str {
        &self.username
    }
    /// The password's time to live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
    /// The password policy (Vault HCL), if not the default.
    pub fn policy_hcl(&self) -> Option<&str> {
        self.policy_hcl.as_deref()
    }
    /// Whether the account rotates itself.
    pub fn is_self_managed(&self) -> bool {
        self.self_managed
    }
    /// The stored document's version.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn method(&self) -> RotationMethod {
        if self.self_managed {
            RotationMethod::SelfChange
        } else {
            RotationMethod::AdminReset
        }
    }
}

/// A role's credentials, as `creds(role)` returns them.
#[derive(Clone)]
#[non_exhaustive]
pub struct RoleCreds {
    /// The account's user name (UPN, else `sAMAccountName`).
    pub username: String,
    /// The current password.
    pub current: SecretString,
    /// The previous password (still accepted by AD for a while after a change).
    pub last: Option<SecretString>,
    /// When the current password was set (Unix ms).
    pub set_at: Option<Millis>,
    /// When it expires and the next read rotates it (Unix ms).
    pub expires_at: Option<Millis>,
    /// The state record's version.
    pub version: u64,
    /// Whether the record is healthy (`false`: the last rotation attempt failed
    /// or an operator must act; the password served is the last one known good).
    pub healthy: bool,
}

impl fmt::Debug for RoleCreds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleCreds")
            .field("username", &self.username)
            .field("set_at", &self.set_at)
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .field("healthy", &self.healthy)
            .finish_non_exhaustive()
    }
}

/// Settings of [`Roles`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RolesConfig {
    /// How long a reader waits for another reader's rotation (default 60 s).
    pub wait: Duration,
    /// A `pwdLastSet` later than our last rotation's baseline by more than this is
    /// an out-of-band change (default 5 s, as Vault).
    pub drift_tolerance: Duration,
    /// How often one process asks AD for `pwdLastSet` per role on reads (default
    /// 5 s; zero: on every read).
    pub drift_check_interval: Duration,
    /// How long a process trusts its copy of a role's stored document (default
    /// 2 s).
    pub role_cache_ttl: Duration,
    /// Password policy for roles without one, and for the bind account (default:
    /// Vault's default policy).
    pub default_policy: Policy,
}

impl Default for RolesConfig {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(60),
            drift_tolerance: Duration::from_secs(5),
            drift_check_interval: Duration::from_secs(5),
            role_cache_ttl: Duration::from_secs(2),
            default_policy: Policy::vault_default(),
        }
    }
}

/// Roles over one domain and one state store: Vault AD engine semantics (`creds`,
/// lazy rotation past the TTL, last password, manual `rotate-role` and
/// `rotate-root`), with the crash-safe protocol of `credwheel-state`.
///
/// Roles are stored in the store's configuration documents ([`ROLE_KIND`]), so
/// every process sharing the store sees the same roles; the passwords are sealed
/// records. Of many concurrent readers of an expired password, in one process or
/// many, exactly one rotates and the others wait for and receive its result.
///
/// **Out-of-band changes.** On reads (at most every
/// [`RolesConfig::drift_check_interval`] per role and process) the account's
/// `pwdLastSet` is compared with the one observed right after our last rotation,
/// on the same domain controller. Later by more than the tolerance: someone else
/// set the password, and the role heals with an admin reset (a self-managed role
/// cannot, and is marked as needing an operator). Since both values come from the
/// directory, clock skew between hosts cannot cause a rotation loop.
pub struct Roles {
    target: Arc<AdTarget>,
    rotator: Arc<Rotator>,
    config: RolesConfig,
    cache: Mutex<HashMap<String, (Arc<Role>, Instant)>>,
    checked: Mutex<HashMap<TargetId, Instant>>,
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Roles")
            .field("target", &self.target)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn policy_of(hcl: Option<&str>, default: &Policy) -> Result<Policy> {
    match hcl {
        None => Ok(default.clone()),
        Some(h) => Policy::from_vault_hcl(h)
            .map_err(|e| Error::config(format!("role password policy: {e}"))),
    }
}

impl Roles {
    /// Roles over `target` and `rotator` (whose store holds roles and passwords).
    /// If the bind account's password was rotated by [`Roles::rotate_root`] (in
    /// any process sharing the store), the client is switched to it.
    pub async fn open(
        target: Arc<AdTarget>,
        rotator: Arc<Rotator>,
        config: RolesConfig,
    ) -> Result<Self> {
        let roles = Self {
            target,
            rotator,
            config,
            cache: Mutex::new(HashMap::new()),
            checked: Mutex::new(HashMap::new()),
        };
        roles.sync_bind_password().await?;
        Ok(roles)
    }

    /// The target.
    pub fn target(&self) -> &Arc<AdTarget> {
        &self.target
    }

    /// The rotator.
    pub fn rotator(&self) -> &Arc<Rotator> {
        &self.rotator
    }

    fn id(&self, account: &AccountRef) -> Result<TargetId> {
        self.target.id(account)
    }

    /// Creates a role: checks the name, finds the account, validates the password
    /// policy against the rules AD applies to the account, stores the role and
    /// starts managing the password ([`Import`]).
    pub async fn create_role(&self, spec: RoleSpec) -> Result<Role> {
        let span =
            tracing::info_span!("ad.create_role", role = %spec.name, account = %spec.account);
        async {
            let client = self.target.client();
            let account = client.find_account(&spec.account).await?;
            let policy = policy_of(spec.policy_hcl.as_deref(), &self.config.default_policy)?;
            client.validate_policy(&policy, Some(&spec.account)).await?;
            if spec.self_managed && matches!(spec.import, Import::Rotate { current: None }) {
                return Err(Error::config(
                    "a self-managed role needs the account's current password at import",
                ));
            }
            let id = self.id(&spec.account)?;
            match self.rotator.store().get_record(&id).await {
                Ok(_) => {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        "the account is already managed (by another role or set)",
                    ));
                }
                Err(StateError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            let doc = RoleDoc {
                account: spec.account.to_string(),
                username: account.username(),
                ttl: humantime::format_duration(spec.ttl).to_string(),
                ttl_ms: ms(spec.ttl)?,
                policy: spec.policy_hcl.clone(),
                self_managed: spec.self_managed,
            };
            let body = serde_json::to_vec(&doc)
                .map_err(|e| Error::config(format!("role document: {e}")))?;
            let version = self
                .rotator
                .store()
                .put_config(ROLE_KIND, &spec.name, &body, 0)
                .await
                .map_err(|e| match e {
                    StateError::Conflict(_) => {
                        Error::new(ErrorKind::AlreadyExists, "a role of this name exists")
                    }
                    e => e.into(),
                })?;
            let role = Role {
                name: spec.name.clone(),
                account: spec.account.clone(),
                username: doc.username,
                ttl: spec.ttl,
                policy_hcl: spec.policy_hcl.clone(),
                policy: Arc::new(policy),
                self_managed: spec.self_managed,
                version,
            };
            let schedule = Schedule::Ttl { ttl_ms: doc.ttl_ms };
            match &spec.import {
                Import::Keep(password) => {
                    self.rotator
                        .enroll_verified(&*self.target, &id, password, schedule)
                        .await?;
                }
                Import::Rotate {
                    current: Some(password),
                } => {
                    self.rotator
                        .enroll_verified(&*self.target, &id, password, schedule)
                        .await?;
                    self.rotate(&role, &id, Precondition::Always).await?;
                }
                Import::Rotate { current: None } => {
                    // Nothing known to serve: a record without a current password,
                    // then an admin reset through the full protocol.
                    let mut rec = Record::new(id.clone());
                    rec.schedule = schedule;
                    self.rotator.store().create_record(&rec).await?;
                    self.rotate(&role, &id, Precondition::Always).await?;
                }
            }
            metrics::counter!("credwheel_ad_roles_created_total").increment(1);
            lock(&self.cache).insert(spec.name.clone(), (Arc::new(role.clone()), Instant::now()));
            Ok(role)
        }
        .instrument(span)
        .await
    }

    /// A role, from this process's short-lived cache or the store.
    pub async fn role(&self, name: &str) -> Result<Arc<Role>> {
        if let Some((r, at)) = lock(&self.cache).get(name)
            && at.elapsed() < self.config.role_cache_ttl
        {
            return Ok(r.clone());
        }
        check_slug(name)?;
        let doc = match self.rotator.store().get_config(ROLE_KIND, name).await {
            Ok(d) => d,
            Err(StateError::NotFound(_)) => {
                lock(&self.cache).remove(name);
                return Err(Error::new(ErrorKind::NotFound, "no such role"));
            }
            Err(e) => return Err(e.into()),
        };
        let role = Arc::new(self.parse(name, doc.version, &doc.body)?);
        lock(&self.cache).insert(name.to_owned(), (role.clone(), Instant::now()));
        Ok(role)
    }

    fn parse(&self, name: &str, version: u64, body: &[u8]) -> Result<Role> {
        let d: RoleDoc = serde_json::from_slice(body).map_err(|e| {
            Error::new(ErrorKind::Store, "malformed role document").with_diagnostic(e.to_string())
        })?;
        let ttl_ms = u64::try_from(d.ttl_ms)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| Error::new(ErrorKind::Store, "malformed role document: ttl"))?;
        Ok(Role {
            name: name.to_owned(),
            account: AccountRef::parse(&d.account)?,
            username: d.username,
            ttl: Duration::from_millis(ttl_ms),
            policy: Arc::new(policy_of(d.policy.as_deref(), &self.config.default_policy)?),
            policy_hcl: d.policy,
            self_managed: d.self_managed,
            version,
        })
    }

    /// Role names, in order.
    pub async fn list_roles(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .rotator
                .store()
                .list_configs(ROLE_KIND, after.as_deref(), 256)
                .await?;
            let n = page.len();
            out.extend(page.into_iter().map(|d| d.name));
            if n < 256 {
                return Ok(out);
            }
            after = out.last().cloned();
        }
    }

    /// Deletes a role and stops managing its account (its password stays as it
    /// is in AD).
    pub async fn delete_role(&self, name: &str) -> Result<()> {
        let role = self.role(name).await?;
        let id = self.id(&role.account)?;
        let doc = self.rotator.store().get_config(ROLE_KIND, name).await?;
        self.rotator
            .store()
            .delete_config(ROLE_KIND, name, doc.version)
            .await?;
        if let Ok(rec) = self.rotator.store().get_record(&id).await {
            self.rotator.store().delete_record(&id, rec.version).await?;
        }
        lock(&self.cache).remove(name);
        Ok(())
    }

    async fn rotate(&self, role: &Role, id: &TargetId, p: Precondition) -> Result<u64> {
        let opts = RotateOptions::new(role.method())
            .precondition(p)
            .wait(self.config.wait);
        let outcome = self
            .rotator
            .rotate(&*self.target, id, &PolicyGen(&role.policy), opts)
            .await?;
        outcome_version(outcome)
    }

    /// The role's credentials. Rotates first if the password is past its TTL
    /// (or a rotation is in doubt, or AD says it was changed out of band); of
    /// concurrent readers exactly one rotates, the others wait for its result.
    pub async fn creds(&self, name: &str) -> Result<RoleCreds> {
        let span = tracing::info_span!("ad.creds", role = %name);
        async {
            let role = self.role(name).await?;
            let id = self.id(&role.account)?;
            self.check_drift(&role, &id).await?;
            let c = self
                .rotator
                .fresh_credentials(
                    &*self.target,
                    &id,
                    &PolicyGen(&role.policy),
                    role.method(),
                    self.config.wait,
                )
                .await?;
            if c.state().needs_operator() {
                tracing::warn!(role = %name, state = c.state().label(), "serving credentials of a record that needs an operator");
            }
            Ok(RoleCreds {
                username: role.username.clone(),
                current: c.current().clone(),
                last: c.last().cloned(),
                set_at: c.set_at(),
                expires_at: c.due_at(),
                version: c.version(),
                healthy: *c.state() == RecordState::Ok && !c.in_flight(),
            })
        }
        .instrument(span)
        .await
    }

    /// Compares AD's `pwdLastSet` with the baseline of our last rotation; heals
    /// an out-of-band change.
    async fn check_drift(&self, role: &Role, id: &TargetId) -> Result<()> {
        {
            let mut checked = lock(&self.checked);
            if let Some(at) = checked.get(id)
                && at.elapsed() < self.config.drift_check_interval
                && !self.config.drift_check_interval.is_zero()
            {
                return Ok(());
            }
            checked.insert(id.clone(), Instant::now());
        }
        let rec = self.rotator.store().get_record(id).await?;
        if rec.pending.is_some() || rec.state != RecordState::Ok {
            return Ok(());
        }
        let Some(base) = rec.target_set_at else {
            return Ok(());
        };
        let Some(now_set) = self.target.last_set(id).await? else {
            return Ok(());
        };
        let tolerance = i64::try_from(self.config.drift_tolerance.as_millis()).unwrap_or(i64::MAX);
        if now_set <= base.saturating_add(tolerance) {
            return Ok(());
        }
        metrics::counter!("credwheel_ad_out_of_band_changes_total").increment(1);
        tracing::warn!(
            role = %role.name,
            baseline = base,
            pwd_last_set = now_set,
            "the password was changed outside credwheel; healing"
        );
        if role.self_managed {
            self.rotator
                .mark_needs_reconcile(
                    id,
                    "the password was changed outside credwheel; a self-managed role cannot reset it",
                )
                .await?;
            return Err(Error::new(
                ErrorKind::NeedsOperator,
                "the password was changed outside credwheel (self-managed role: adopt or reconcile)",
            ));
        }
        let opts = RotateOptions::new(RotationMethod::AdminReset)
            .precondition(Precondition::IfVersion(rec.version))
            .wait(self.config.wait);
        let outcome = self
            .rotator
            .rotate(&*self.target, id, &PolicyGen(&role.policy), opts)
            .await?;
        if matches!(outcome, RotationOutcome::Rotated { .. }) {
            metrics::counter!("credwheel_ad_heals_total").increment(1);
        }
        outcome_version(outcome).map(|_| ())
    }

    /// Rotates a role's password now (Vault's `rotate-role`); waits for a
    /// rotation in flight. Returns the record version.
    pub async fn rotate_role(&self, name: &str) -> Result<u64> {
        let span = tracing::info_span!("ad.rotate_role", role = %name);
        async {
            let role = self.role(name).await?;
            let id = self.id(&role.account)?;
            self.rotate(&role, &id, Precondition::Always).await
        }
        .instrument(span)
        .await
    }

    /// Health of the role's stored password: does it bind, and if not, why
    /// (wrong, locked, disabled, expired); and whether the directory's password
    /// was changed after our last rotation (then the stored one may only bind
    /// because AD accepts the previous password for a while). Never rotates.
    pub async fn health(&self, name: &str) -> Result<crate::Health> {
        let role = self.role(name).await?;
        let id = self.id(&role.account)?;
        let rec = self.rotator.store().get_record(&id).await?;
        let creds = self.rotator.credentials(&id).await?;
        let health = self
            .target
            .client()
            .health(&role.account, creds.current())
            .await?;
        // A bind alone cannot tell: the previous password keeps binding for a while.
        let tolerance = i64::try_from(self.config.drift_tolerance.as_millis()).unwrap_or(i64::MAX);
        if health.is_ok()
            && let (Some(base), Some(now_set)) =
                (rec.target_set_at, self.target.last_set(&id).await?)
            && now_set > base.saturating_add(tolerance)
        {
            return Ok(health.with_status(crate::HealthStatus::ChangedElsewhere));
        }
        Ok(health)
    }

    /// Unlocks the role's account (clears `lockoutTime`), as Vault's `unlock`.
    pub async fn unlock(&self, name: &str) -> Result<()> {
        let role = self.role(name).await?;
        self.target.client().unlock(&role.account).await
    }

    fn root_id(&self) -> Result<TargetId> {
        let dn = self.target.client().config().bind_dn().clone();
        self.id(&AccountRef::Dn(dn))
    }

    /// Rotates the bind account's own password (Vault's `rotate-root`) by a self
    /// change, through the rotation protocol (the bind account's record lives in
    /// the store, sealed, so other processes pick the new password up with
    /// [`Roles::sync_bind_password`] or [`Roles::open`]). New connections bind
    /// with the new password and fall back to the previous one while it
    /// propagates.
    pub async fn rotate_root(&self) -> Result<u64> {
        let span = tracing::info_span!("ad.rotate_root");
        async {
            let id = self.root_id()?;
            let client = self.target.client();
            match self.rotator.store().get_record(&id).await {
                Ok(_) => {}
                Err(StateError::NotFound(_)) => {
                    self.rotator
                        .enroll_verified(
                            &*self.target,
                            &id,
                            &client.bind_password(),
                            Schedule::None,
                        )
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
            let opts = RotateOptions::new(RotationMethod::SelfChange).wait(self.config.wait);
            let outcome = self
                .rotator
                .rotate(
                    &*self.target,
                    &id,
                    &PolicyGen(&self.config.default_policy),
                    opts,
                )
                .await?;
            let version = outcome_version(outcome)?;
            let creds = self.rotator.credentials(&id).await?;
            client.set_bind_password(creds.current().clone());
            metrics::counter!("credwheel_ad_root_rotations_total").increment(1);
            Ok(version)
        }
        .instrument(span)
        .await
    }

    /// Switches the client to the bind password stored by the last
    /// [`Roles::rotate_root`] (of any process), if there is one.
    pub async fn sync_bind_password(&self) -> Result<()> {
        let id = self.root_id()?;
        match self.rotator.credentials(&id).await {
            Ok(c) => {
                use secrecy::ExposeSecret;
                let client = self.target.client();
                if c.current().expose_secret() != client.bind_password().expose_secret() {
                    client.set_bind_password(c.current().clone());
                }
                Ok(())
            }
            Err(StateError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn outcome_version(outcome: RotationOutcome) -> Result<u64> {
    match outcome {
        RotationOutcome::Rotated { version } | RotationOutcome::Skipped { version, .. } => {
            Ok(version)
        }
        RotationOutcome::Failed { error, .. } => Err(Error::from_target(&error)),
        RotationOutcome::NeedsReconcile { why } => Err(Error::new(
            ErrorKind::NeedsOperator,
            "rotation",
        )
        .with_diagnostic(format!("{}: {}", why.kind.as_str(), why.message))),
        other => {
            Err(Error::new(ErrorKind::Other, "rotation").with_diagnostic(format!("{other:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["a", "web-1", "svc_app", "0x"] {
            assert!(check_slug(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "a b", "é", &"a".repeat(65)] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn import_debug_is_redacted() {
        let i = Import::Keep(SecretString::from("Sup3r-Secret"));
        assert!(!format!("{i:?}").contains("Sup3r"));
        let i = Import::Rotate {
            current: Some(SecretString::from("Sup3r-Secret")),
        };
        assert!(!format!("{i:?}").contains("Sup3r"));
    }
}
