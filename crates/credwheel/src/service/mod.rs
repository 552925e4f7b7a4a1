//! The composed service: a [`Credwheel`] built from a [`Config`] runs rotations
//! (scheduled, lazy, manual), heartbeats, reconciles and check-out libraries over
//! one store.

mod check;
mod library;
pub(crate) mod meta;
mod scheduler;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::ad::{AccountRef, AdClient, AdTarget};
use crate::config::{
    AdAccount, AdConnection, Config, KeyRingConfig, Method, Rotation, SecretRef, SinkConfig,
    StoreConfig, Target, WindowsHost,
};
use crate::error::Error;
use crate::sam::{SamConfig, SamTarget};
use crate::schedule::NextDue;
use crate::sink::{FileSink, SecretEntry, SecretSink, SecretUpdate, StoreSink};
use crate::source::PolicySource;
use crate::state::{
    Clock, Key, Millis, PgOptions, PgStore, Record, RotationMethod, RotationOutcome,
    RotationTarget, Rotator, RotatorConfig, Sealer, SqliteOptions, SqliteStore, StateError,
    StateStore, SystemClock, TargetErrorKind, TargetId,
};

pub use check::{PolicyCheck, PolicyVerdict};
pub use library::{CheckedOut, LibraryMember, LibraryStatus, Renewed};
use meta::Meta;
pub use meta::RotationState;
pub use scheduler::{RunHandle, TickReport};

/// How long a process owns a rotation it started; renewed every third of it while
/// the work runs, so a crashed process frees its rotations within this time.
const RUN_LEASE_MS: i64 = 30_000;

/// The credential claim's length (renewed by the protocol while a target call
/// runs): a claim left by a crashed process lapses within this time.
const CLAIM_TTL_MS: i64 = 60_000;

/// The status of one rotation, for operators (`credwheel status`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationStatus {
    /// The rotation's name.
    pub name: String,
    /// `ad:CONNECTION/ACCOUNT` or `windows:HOST/USER`.
    pub target: String,
    /// The state.
    pub state: RotationState,
    /// Automation paused by an operator.
    pub paused: bool,
    /// Last successful rotation (Unix ms).
    pub last_success: Option<Millis>,
    /// When the scheduler will next rotate it, if it will.
    pub next_due: Option<Millis>,
    /// For lazy (TTL) rotations: when the password expires (rotated on the next
    /// read after that).
    pub expires_at: Option<Millis>,
    /// The last error, in operator-readable words.
    pub last_error: Option<String>,
    /// Failures in the current cycle and failed cycles.
    pub failures: (u32, u32),
    /// Last heartbeat (Unix ms) and what it found.
    pub heartbeat: Option<(Millis, String)>,
    /// The credential record's version (bumped by every rotation).
    pub version: u64,
}

/// A rotation's current credentials (`credwheel creds ROLE`).
#[non_exhaustive]
pub struct Creds {
    /// The account's user name.
    pub username: String,
    /// The current password.
    pub current: SecretString,
    /// The password before it, if any.
    pub last: Option<SecretString>,
    /// When the current password was set (Unix ms).
    pub last_rotated: Option<Millis>,
    /// Whether this read rotated the password (lazy TTL expiry).
    pub rotated: bool,
    /// The credential record's version.
    pub version: u64,
}

impl fmt::Debug for Creds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Creds")
            .field("username", &self.username)
            .field("last_rotated", &self.last_rotated)
            .field("rotated", &self.rotated)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What a manual operation did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The password was changed; the new record version.
    Rotated {
        /// The credential record's version.
        version: u64,
    },
    /// Nothing to do.
    Unchanged,
}

pub(crate) struct Managed {
    pub(crate) def: Rotation,
    pub(crate) id: TargetId,
    pub(crate) meta_id: TargetId,
    pub(crate) target: Arc<dyn RotationTarget>,
    pub(crate) source: PolicySource,
    pub(crate) method: RotationMethod,
    /// Asks the target for its password rules (targets built from the config).
    pub(crate) checker: Option<check::Checker>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) rotator: Rotator,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) holder: String,
    pub(crate) rotations: Vec<Managed>,
    pub(crate) by_name: HashMap<String, usize>,
    pub(crate) by_cred: HashMap<TargetId, usize>,
    pub(crate) libraries: HashMap<String, library::ManagedLibrary>,
    pub(crate) lib_by_cred: HashMap<TargetId, String>,
    pub(crate) sinks: Vec<Arc<dyn SecretSink>>,
    pub(crate) store_sink: StoreSink,
    pub(crate) namespace: String,
    /// Wakes this process's scheduler early (a local rotate request).
    pub(crate) wake: tokio::sync::Notify,
}

/// credwheel composed: store, key ring, connections, rotations, libraries and the
/// scheduler. Cheap to clone (shared).
#[derive(Clone)]
pub struct Credwheel {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Credwheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credwheel")
            .field("holder", &self.inner.holder)
            .field("rotations", &self.inner.rotations.len())
            .field("libraries", &self.inner.libraries.len())
            .finish_non_exhaustive()
    }
}

/// How to compute account ids for a connection.
#[derive(Clone)]
enum Ids {
    Sam(Arc<SamTarget>),
    Ad(Arc<AdTarget>),
    Generic { kind: &'static str, scope: String },
}

impl Ids {
    fn checker(&self, id: &TargetId) -> Option<check::Checker> {
        match self {
            Ids::Sam(t) => Some(check::Checker::Sam(t.clone())),
            Ids::Ad(t) => Some(check::Checker::Ad(t.clone(), id.clone())),
            Ids::Generic { .. } => None,
        }
    }

    fn windows(&self, user: &str) -> Result<TargetId, Error> {
        match self {
            Ids::Sam(t) => t.target_id(user).map_err(|e| Error::Connection {
                what: "windows account".into(),
                message: e.to_string(),
            }),
            Ids::Generic { kind, scope } => Ok(TargetId::new(*kind, scope, user.to_lowercase())?),
            Ids::Ad(_) => Err(Error::Connection {
                what: "windows account".into(),
                message: "an AD target was given for a Windows host".into(),
            }),
        }
    }

    fn ad(&self, account: &AdAccount) -> Result<TargetId, Error> {
        match self {
            Ids::Ad(t) => {
                let r = match account {
                    AdAccount::SamAccountName(s) => AccountRef::sam(s.clone()),
                    AdAccount::Upn(u) => AccountRef::upn(u.clone()),
                    AdAccount::Dn(d) => AccountRef::dn(d).map_err(|e| Error::Connection {
                        what: "ad account".into(),
                        message: e.to_string(),
                    })?,
                };
                t.id(&r).map_err(|e| Error::Connection {
                    what: "ad account".into(),
                    message: e.to_string(),
                })
            }
            Ids::Generic { kind, scope } => {
                let prefix = match account {
                    AdAccount::SamAccountName(_) => "sam:",
                    AdAccount::Upn(_) => "upn:",
                    _ => "dn:",
                };
                Ok(TargetId::new(
                    *kind,
                    scope,
                    format!("{prefix}{}", account.as_str().to_lowercase()),
                )?)
            }
            Ids::Sam(_) => Err(Error::Connection {
                what: "ad account".into(),
                message: "a Windows target was given for an AD connection".into(),
            }),
        }
    }
}

/// Builds a [`Credwheel`] from a [`Config`]; every part can be replaced (a store
/// shared with other code, a fake target in tests, extra sinks).
#[must_use]
pub struct Builder {
    config: Config,
    store: Option<Arc<dyn StateStore>>,
    sealer: Option<Arc<Sealer>>,
    clock: Option<Arc<dyn Clock>>,
    holder: Option<String>,
    windows: HashMap<String, Arc<dyn RotationTarget>>,
    ad: HashMap<String, Arc<dyn RotationTarget>>,
    sinks: Vec<Arc<dyn SecretSink>>,
    namespace: String,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Uses this store instead of the configured one.
    pub fn store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses this key ring instead of the configured one.
    pub fn sealer(mut self, sealer: Arc<Sealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// Uses this clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Names this process in claims and status (default: a random id).
    pub fn holder(mut self, holder: impl Into<String>) -> Self {
        self.holder = Some(holder.into());
        self
    }

    /// Uses `target` for the Windows host named `host` in the configuration.
    pub fn windows_target(
        mut self,
        host: impl Into<String>,
        target: Arc<dyn RotationTarget>,
    ) -> Self {
        self.windows.insert(host.into(), target);
        self
    }

    /// Uses `target` for the AD connection named `connection`.
    pub fn ad_target(
        mut self,
        connection: impl Into<String>,
        target: Arc<dyn RotationTarget>,
    ) -> Self {
        self.ad.insert(connection.into(), target);
        self
    }

    /// Adds a sink (after the configured ones).
    pub fn sink(mut self, sink: Arc<dyn SecretSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Keeps this configuration's state apart from others in a shared store
    /// (default `"default"`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Opens the store, loads the keys, sets up the connections (without contacting
    /// them) and records every rotation in the store (without touching a target).
    pub async fn build(self) -> Result<Credwheel, Error> {
        let Builder {
            config,
            store,
            sealer,
            clock,
            holder,
            mut windows,
            mut ad,
            sinks: extra_sinks,
            namespace,
        } = self;
        let store = match store {
            Some(s) => s,
            None => open_store(&config.store).await?,
        };
        let sealer = match sealer {
            Some(s) => s,
            None => Arc::new(load_key_ring(&config.key_ring)?),
        };
        let clock: Arc<dyn Clock> = clock.unwrap_or_else(|| Arc::new(SystemClock));
        let holder = holder.unwrap_or_else(|| {
            format!(
                "{}-{}",
                std::process::id(),
                jiff::Timestamp::now().as_millisecond()
            )
        });
        let mut rc = RotatorConfig::with_holder(holder.clone());
        // The scheduler keeps retry times and cycles itself (in its metadata
        // records); the credential records' own backoff stays short.
        // (Library accounts use the records' backoff: the same settings.)
        rc.max_failures = u32::MAX;
        rc.backoff_base_ms = ms(config.scheduler.backoff_initial).max(1);
        rc.backoff_max_ms = ms(config.scheduler.backoff_max).max(rc.backoff_base_ms);
        rc.claim_ttl_ms = CLAIM_TTL_MS;
        let rotator = Rotator::with_clock(store.clone(), sealer.clone(), clock.clone(), rc);

        // Connections.
        let mut ids: HashMap<(bool, String), Ids> = HashMap::new();
        for (name, host) in &config.windows_hosts {
            if let Some(t) = windows.remove(name) {
                windows.insert(name.clone(), t);
                ids.insert(
                    (true, name.clone()),
                    Ids::Generic {
                        kind: "sam",
                        scope: format!("{}:{}", host.address, host.port),
                    },
                );
                continue;
            }
            let t = Arc::new(sam_target(name, host)?);
            windows.insert(name.clone(), t.clone());
            ids.insert((true, name.clone()), Ids::Sam(t));
        }
        for (name, conn) in &config.ad_connections {
            if ad.contains_key(name) {
                ids.insert(
                    (false, name.clone()),
                    Ids::Generic {
                        kind: "ad",
                        scope: name.clone(),
                    },
                );
                continue;
            }
            let t = Arc::new(ad_target(name, conn)?);
            ad.insert(name.clone(), t.clone());
            ids.insert((false, name.clone()), Ids::Ad(t));
        }

        // Rotations.
        let mut rotations = Vec::new();
        let mut by_name = HashMap::new();
        let mut by_cred = HashMap::new();
        for def in &config.rotations {
            let (target, id) = match &def.target {
                Target::Windows { host, user } => {
                    let t = windows.get(host).cloned();
                    let i = ids.get(&(true, host.clone()));
                    match (t, i) {
                        (Some(t), Some(i)) => (t, i.windows(user)?),
                        _ => return Err(unknown_connection(host)),
                    }
                }
                Target::Ad {
                    connection,
                    account,
                } => {
                    let t = ad.get(connection).cloned();
                    let i = ids.get(&(false, connection.clone()));
                    match (t, i) {
                        (Some(t), Some(i)) => (t, i.ad(account)?),
                        _ => return Err(unknown_connection(connection)),
                    }
                }
            };
            let host_or_connection = match &def.target {
                Target::Windows { host, .. } => (true, host.clone()),
                Target::Ad { connection, .. } => (false, connection.clone()),
            };
            let checker = ids.get(&host_or_connection).and_then(|i| i.checker(&id));
            let method = match def.method {
                Method::Target => RotationMethod::SelfChange,
                _ => RotationMethod::AdminReset,
            };
            by_name.insert(def.name.clone(), rotations.len());
            by_cred.insert(id.clone(), rotations.len());
            rotations.push(Managed {
                def: def.clone(),
                meta_id: meta::meta_id(&namespace, &def.name)?,
                id,
                target,
                source: PolicySource::new(def.policy.clone()),
                method,
                checker,
            });
        }

        // Libraries.
        let mut libraries = HashMap::new();
        let mut lib_by_cred = HashMap::new();
        for def in &config.libraries {
            let (Some(t), Some(i)) = (
                ad.get(&def.connection).cloned(),
                ids.get(&(false, def.connection.clone())),
            ) else {
                return Err(unknown_connection(&def.connection));
            };
            let mut accounts = Vec::new();
            let mut checkers = Vec::new();
            for a in &def.accounts {
                let id = i.ad(&AdAccount::SamAccountName(a.clone()))?;
                lib_by_cred.insert(id.clone(), def.name.clone());
                if let Some(c) = i.checker(&id) {
                    checkers.push((a.clone(), c));
                }
                accounts.push((a.clone(), id));
            }
            let mut lib = library::ManagedLibrary::new(def, t, accounts);
            lib.checkers = checkers;
            libraries.insert(def.name.clone(), lib);
        }

        // Sinks: the store first, then the configured ones, then extra ones.
        let store_sink = StoreSink::new(store.clone(), sealer.clone()).with_namespace(&namespace);
        let mut sinks: Vec<Arc<dyn SecretSink>> = vec![Arc::new(store_sink.clone())];
        for s in &config.sinks {
            let SinkConfig::File { dir } = s;
            sinks.push(Arc::new(FileSink::new(dir)));
        }
        sinks.extend(extra_sinks);

        let cw = Credwheel {
            inner: Arc::new(Inner {
                config,
                store,
                sealer,
                rotator,
                clock,
                holder,
                rotations,
                by_name,
                by_cred,
                libraries,
                lib_by_cred,
                sinks,
                store_sink,
                namespace,
                wake: tokio::sync::Notify::new(),
            }),
        };
        cw.enroll_all().await?;
        Ok(cw)
    }
}

fn unknown_connection(name: &str) -> Error {
    Error::Connection {
        what: name.to_owned(),
        message: "no such connection".into(),
    }
}

async fn open_store(store: &StoreConfig) -> Result<Arc<dyn StateStore>, Error> {
    match store {
        StoreConfig::Sqlite { path } => {
            if let Some(parent) = path.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| Error::Connection {
                    what: "store.sqlite".into(),
                    message: format!("cannot create {}: {e}", parent.display()),
                })?;
            }
            let path = path.clone();
            let s = tokio::task::spawn_blocking(move || {
                SqliteStore::open(&path, SqliteOptions::default())
            })
            .await
            .map_err(|e| Error::Connection {
                what: "store.sqlite".into(),
                message: e.to_string(),
            })??;
            Ok(Arc::new(s))
        }
        StoreConfig::Postgres {
            params,
            password,
            schema,
            ca_file,
        } => {
            let url = match password {
                Some(p) => {
                    let pw = p.resolve()?;
                    postgres_with_password(params, &pw)
                }
                None => SecretString::from(params.clone()),
            };
            let mut options = match schema {
                Some(s) => PgOptions::with_schema(s.clone()),
                None => PgOptions::default(),
            };
            if let Some(path) = ca_file {
                let pem = std::fs::read(path).map_err(|e| Error::Connection {
                    what: "store.ca_file".into(),
                    message: format!("reading {}: {e}", path.display()),
                })?;
                options.ca_pem = Some(pem);
            }
            let s = PgStore::connect(url.expose_secret(), options).await?;
            Ok(Arc::new(s))
        }
    }
}

/// Adds a password to PostgreSQL connection parameters.
fn postgres_with_password(params: &str, password: &SecretString) -> SecretString {
    let lower = params.to_ascii_lowercase();
    let pw = password.expose_secret();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        let sep = if params.contains('?') { '&' } else { '?' };
        let enc: String = pw
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        SecretString::from(format!("{params}{sep}password={enc}"))
    } else {
        let quoted = pw.replace('\\', "\\\\").replace('\'', "\\'");
        SecretString::from(format!("{params} password='{quoted}'"))
    }
}

/// Loads the configured key ring.
pub fn load_key_ring(ring: &KeyRingConfig) -> Result<Sealer, Error> {
    let load = |source: &SecretRef| -> Result<Key, Error> {
        let k = match source {
            SecretRef::Env(v) => Key::from_env(v),
            SecretRef::File(p) => Key::from_file(p),
        };
        k.map_err(|e| Error::Connection {
            what: format!("key_ring key ({})", source.describe()),
            message: e.to_string(),
        })
    };
    let active = ring
        .keys
        .iter()
        .find(|k| k.id == ring.active)
        .ok_or_else(|| Error::Connection {
            what: "key_ring.active".into(),
            message: "not in key_ring.keys".into(),
        })?;
    let mut sealer = Sealer::new(&active.id, load(&active.source)?)?;
    for k in ring.keys.iter().filter(|k| k.id != ring.active) {
        sealer.add_key(&k.id, load(&k.source)?)?;
    }
    Ok(sealer)
}

fn sam_target(name: &str, host: &WindowsHost) -> Result<SamTarget, Error> {
    let pw = host.admin_password.resolve()?;
    let admin = match &host.domain {
        Some(d) => format!("{d}\\{}", host.admin_user),
        None => host.admin_user.clone(),
    };
    let cfg = SamConfig::builder(host.address.clone())
        .port(host.port)
        .admin(admin, pw)
        .connect_timeout(host.connect_timeout)
        .build()
        .map_err(|e| Error::Connection {
            what: format!("connections.windows.{name}"),
            message: e.to_string(),
        })?;
    Ok(SamTarget::new(cfg))
}

fn ad_target(name: &str, c: &AdConnection) -> Result<AdTarget, Error> {
    let pw = c.bind_password.resolve()?;
    let base = match &c.user_dn {
        Some(u) => u.clone(),
        None => domain_part(&c.bind_dn),
    };
    let mut b = crate::ad::Config::builder()
        .urls(c.urls.iter().cloned())
        .bind(c.bind_dn.clone(), pw)
        .base_dn(base)
        .connect_timeout(c.connect_timeout)
        .request_timeout(c.request_timeout);
    if let Some(ca) = &c.ca_file {
        b = b.ca_pem_file(ca);
    }
    if c.danger_accept_invalid_certs {
        b = b.danger_disable_certificate_verification();
    }
    let what = format!("connections.ad.{name}");
    let cfg = b.build().map_err(|e| Error::Connection {
        what: what.clone(),
        message: e.to_string(),
    })?;
    let client = AdClient::new(cfg).map_err(|e| Error::Connection {
        what,
        message: e.to_string(),
    })?;
    Ok(AdTarget::new(client))
}

/// The `DC=...` suffix of a DN (the domain's naming context).
fn domain_part(dn: &str) -> String {
    let lower = dn.to_ascii_lowercase();
    if lower.starts_with("dc=") {
        return dn.to_owned();
    }
    match lower.find(",dc=") {
        Some(i) => dn[i + 1..].to_owned(),
        None => dn.to_owned(),
    }
}

impl Credwheel {
    /// A builder over `config`.
    pub fn builder(config: Config) -> Builder {
        Builder {
            config,
            store: None,
            sealer: None,
            clock: None,
            holder: None,
            windows: HashMap::new(),
            ad: HashMap::new(),
            sinks: Vec::new(),
            namespace: "default".into(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.inner.store
    }

    /// The store sink (mapped secrets by name).
    pub fn secrets(&self) -> &StoreSink {
        &self.inner.store_sink
    }

    /// The credential record id of a rotation.
    pub fn target_id(&self, rotation: &str) -> Result<&TargetId, Error> {
        Ok(&self.managed(rotation)?.id)
    }

    pub(crate) fn managed(&self, name: &str) -> Result<&Managed, Error> {
        self.inner
            .by_name
            .get(name)
            .map(|&i| &self.inner.rotations[i])
            .ok_or_else(|| Error::UnknownRotation(name.to_owned()))
    }

    pub(crate) fn now(&self) -> Millis {
        self.inner.clock.now()
    }

    /// Records every rotation in the store: a metadata record, and a credential
    /// record (with the imported password, or empty: the first rotation is due).
    async fn enroll_all(&self) -> Result<(), Error> {
        use futures::StreamExt;
        let now = self.now();
        // Concurrently, so the store can share durable commits between enrolments.
        let mut results = futures::stream::iter(self.inner.rotations.iter())
            .map(|m| self.enroll_one(m, now))
            .buffer_unordered(64);
        while let Some(r) = results.next().await {
            r?;
        }
        drop(results);
        for lib in self.inner.libraries.values() {
            lib.ensure(self).await?;
        }
        Ok(())
    }

    async fn enroll_one(&self, m: &Managed, now: Millis) -> Result<(), Error> {
        let store = &*self.inner.store;
        let existing = match store.get_record(&m.id).await {
            Ok(r) => Some(r),
            Err(StateError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let mut enrolled = existing.as_ref().is_some_and(|r| r.current.is_some());
        if existing.is_none() {
            match &m.def.initial_password {
                Some(p) => {
                    let pw = p.resolve()?;
                    match self
                        .inner
                        .rotator
                        .enroll(&m.id, &pw, crate::state::Schedule::None)
                        .await
                    {
                        Ok(_) => enrolled = true,
                        Err(StateError::Conflict(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                None => match store.create_record(&Record::new(m.id.clone())).await {
                    Ok(_) | Err(StateError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                },
            }
        }
        if meta::load(store, &self.inner.sealer, &m.meta_id)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let mut meta = Meta {
            anchor: now,
            ..Meta::default()
        };
        if !enrolled {
            meta.state = crate::service::RotationState::NotEnrolled;
            meta.next_attempt = Some(now);
        }
        if m.def.heartbeat {
            meta.next_heartbeat =
                Some(now.saturating_add(ms(self.inner.config.scheduler.heartbeat_interval)));
        }
        let due = self.wake_time(m, &meta, now);
        meta::create(store, &self.inner.sealer, &m.meta_id, &meta, due).await?;
        Ok(())
    }

    /// The next time the scheduler must look at a rotation with this metadata.
    pub(crate) fn wake_time(&self, m: &Managed, meta: &Meta, now: Millis) -> Option<Millis> {
        let mut wake: Option<Millis> = None;
        let mut consider = |t: Option<Millis>| {
            if let Some(t) = t {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
        };
        if let Some(r) = meta.running_until
            && r > now
        {
            return Some(r);
        }
        let automatic = !meta.paused && meta.state != RotationState::NeedsOperator;
        if automatic {
            if meta.next_attempt.is_some() {
                consider(meta.next_attempt);
            } else if let Some(s) = &m.def.schedule
                && s.is_automatic()
                && let NextDue::Scheduled(d) = s.next_due(meta.anchor, meta.last_success, now)
            {
                consider(Some(d.slot));
            }
        }
        if m.def.heartbeat && !meta.heartbeat_suspended && !meta.paused {
            consider(meta.next_heartbeat);
        }
        wake
    }

    /// The status of every rotation, in configuration order.
    pub async fn status(&self) -> Result<Vec<RotationStatus>, Error> {
        let mut out = Vec::with_capacity(self.inner.rotations.len());
        for m in &self.inner.rotations {
            out.push(self.status_of_managed(m).await?);
        }
        Ok(out)
    }

    /// The status of one rotation.
    pub async fn status_of(&self, name: &str) -> Result<RotationStatus, Error> {
        let m = self.managed(name)?;
        self.status_of_managed(m).await
    }

    /// Rotations that need an operator (automation stopped for them).
    pub async fn needs_operator(&self) -> Result<Vec<RotationStatus>, Error> {
        Ok(self
            .status()
            .await?
            .into_iter()
            .filter(|s| s.state == RotationState::NeedsOperator)
            .collect())
    }

    async fn status_of_managed(&self, m: &Managed) -> Result<RotationStatus, Error> {
        let now = self.now();
        let rec = match self.inner.store.get_record(&m.id).await {
            Ok(r) => Some(r),
            Err(StateError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let loaded = meta::load(&*self.inner.store, &self.inner.sealer, &m.meta_id).await?;
        let meta = loaded.map(|l| l.meta).unwrap_or_default();
        let automatic = !meta.paused && meta.state != RotationState::NeedsOperator;
        let next_due = if !automatic {
            None
        } else if meta.next_attempt.is_some() {
            meta.next_attempt
        } else {
            match m
                .def
                .schedule
                .as_ref()
                .map(|s| s.next_due(meta.anchor, meta.last_success, now))
            {
                Some(NextDue::Scheduled(d)) => Some(d.slot),
                _ => None,
            }
        };
        let last_rotated = rec.as_ref().and_then(|r| r.set_at);
        let expires_at = m
            .def
            .schedule
            .as_ref()
            .and_then(|s| s.lazy_ttl())
            .and_then(|ttl| last_rotated.map(|t| t.saturating_add(ms(ttl))));
        let last_error = meta
            .last_error
            .clone()
            .or_else(|| rec.as_ref().and_then(|r| r.last_error.clone()));
        Ok(RotationStatus {
            name: m.def.name.clone(),
            target: m.def.target.describe(),
            state: meta.state,
            paused: meta.paused,
            last_success: meta.last_success.or(last_rotated),
            next_due,
            expires_at,
            last_error,
            failures: (meta.retries, meta.failed_cycles),
            heartbeat: meta.last_heartbeat.zip(meta.heartbeat.clone()),
            version: rec.map_or(0, |r| r.version),
        })
    }

    /// Rotates now ("rotate-now"). Does not move the schedule. Allowed in every state,
    /// including "needs operator" (a success clears it).
    pub async fn rotate_now(&self, name: &str) -> Result<Outcome, Error> {
        let idx = self
            .inner
            .by_name
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownRotation(name.to_owned()))?;
        self.run_exclusive(idx, scheduler::Job::Manual)
            .await?
            .ok_or_else(|| Error::Busy(name.to_owned()))?
    }

    /// Resets the password with the admin connection and re-syncs the store (also
    /// settles an interrupted rotation). Clears drift, lock and "needs operator".
    pub async fn reconcile(&self, name: &str) -> Result<Outcome, Error> {
        let idx = self
            .inner
            .by_name
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownRotation(name.to_owned()))?;
        self.run_exclusive(idx, scheduler::Job::Reconcile)
            .await?
            .ok_or_else(|| Error::Busy(name.to_owned()))?
    }

    /// Asks the scheduler (in this or any process sharing the store) to rotate now:
    /// the rotation becomes due at once and is picked up on the next tick. Does not
    /// move the schedule.
    pub async fn schedule_now(&self, name: &str) -> Result<(), Error> {
        let now = self.now();
        self.update_meta(name, |meta| meta.next_attempt = Some(now))
            .await?;
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Re-seals every record of the store under the key ring's active key (after a
    /// new key was made active). Returns (records read, records re-sealed). Safe to
    /// run while other instances work: each record is rewritten with a
    /// compare-and-swap and retried if it changed meanwhile.
    pub async fn reseal(&self) -> Result<(usize, usize), Error> {
        let store = &self.inner.store;
        let (mut read, mut resealed) = (0, 0);
        let mut after: Option<TargetId> = None;
        loop {
            let page = store.list_records(after.as_ref(), 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for mut rec in page {
                read += 1;
                for _ in 0..8 {
                    if !self.inner.sealer.reseal_record(&mut rec)? {
                        break;
                    }
                    match store.compare_and_swap(&rec, rec.version, None).await {
                        Ok(_) => {
                            resealed += 1;
                            break;
                        }
                        Err(StateError::Conflict(crate::state::ConflictReason::Version)) => {
                            rec = store.get_record(&rec.id).await?;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok((read, resealed))
    }

    /// Stops automatic rotation and heartbeats of a rotation until [`resume`](Self::resume).
    pub async fn pause(&self, name: &str) -> Result<(), Error> {
        self.update_meta(name, |meta| meta.paused = true).await
    }

    /// Resumes automation; clears "needs operator" and suspended heartbeats.
    pub async fn resume(&self, name: &str) -> Result<(), Error> {
        self.update_meta(name, |meta| {
            meta.paused = false;
            if meta.state == RotationState::NeedsOperator {
                meta.state = RotationState::Ok;
            }
            meta.retries = 0;
            meta.failed_cycles = 0;
            meta.heartbeat_suspended = false;
        })
        .await
    }

    async fn update_meta(&self, name: &str, f: impl Fn(&mut Meta)) -> Result<(), Error> {
        let m = self.managed(name)?;
        for _ in 0..16 {
            let now = self.now();
            let loaded = meta::load(&*self.inner.store, &self.inner.sealer, &m.meta_id)
                .await?
                .ok_or(StateError::NotFound(crate::state::Missing::Record))?;
            let mut meta = loaded.meta.clone();
            f(&mut meta);
            let due = self.wake_time(m, &meta, now);
            if meta::swap(&*self.inner.store, &self.inner.sealer, &loaded, &meta, due)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(Error::Busy(name.to_owned()))
    }

    /// The current and last password of a rotation, as Vault's `creds/ROLE`: a lazy
    /// (TTL) rotation past its TTL, or one whose password was never set, is rotated
    /// first. While another process runs the rotation this waits for it, up to 35 s
    /// (long enough for the lease of a crashed process to lapse and the interrupted
    /// rotation to be settled here), then answers [`Error::Busy`].
    pub async fn creds(&self, name: &str) -> Result<Creds, Error> {
        let m = self.managed(name)?;
        let idx = self.inner.by_name[name];
        let mut rotated = false;
        // Long enough for a run lease left by a crashed process to lapse.
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis((RUN_LEASE_MS + 5_000).unsigned_abs());
        while tokio::time::Instant::now() < deadline {
            let now = self.now();
            let rec = self.inner.store.get_record(&m.id).await?;
            let expired = match (
                m.def.schedule.as_ref().and_then(|s| s.lazy_ttl()),
                rec.set_at,
            ) {
                (Some(ttl), Some(t)) => now >= t.saturating_add(ms(ttl)),
                (Some(_), None) => true,
                _ => false,
            };
            let unset = rec.current.is_none();
            if (expired || unset || rec.pending.is_some()) && !rotated {
                match self.run_exclusive(idx, scheduler::Job::Lazy).await? {
                    Some(Ok(Outcome::Rotated { .. })) => {
                        rotated = true;
                        continue;
                    }
                    Some(Ok(Outcome::Unchanged)) => {}
                    Some(Err(e)) => {
                        if unset {
                            return Err(e);
                        }
                        tracing::warn!(rotation = name, error = %e, "lazy rotation failed; serving the current password");
                    }
                    None => {
                        // Someone else is rotating it: wait for them.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            }
            let (current, version) = self.inner.rotator.current_password(&m.id).await?;
            let last = self.inner.rotator.last_password(&m.id).await?;
            return Ok(Creds {
                username: m.def.target.username().to_owned(),
                current,
                last,
                last_rotated: rec.set_at,
                rotated,
                version,
            });
        }
        Err(Error::Busy(name.to_owned()))
    }

    /// Writes a rotation's mapped secrets to every sink. Errors are collected; the
    /// first one is returned after all sinks were tried.
    pub(crate) async fn publish(&self, m: &Managed, version: u64) -> Result<(), Error> {
        let (current, _) = self.inner.rotator.current_password(&m.id).await?;
        let update = SecretUpdate::new(
            m.def.name.clone(),
            version,
            vec![
                SecretEntry::new(
                    m.def.secrets.username.clone(),
                    SecretString::from(m.def.target.username()),
                ),
                SecretEntry::new(m.def.secrets.password.clone(), current),
            ],
        );
        let mut first = None;
        for s in &self.inner.sinks {
            if let Err(e) = s.write(&update).await {
                tracing::warn!(rotation = %m.def.name, sink = %s.name(), error = %e, "writing mapped secrets failed");
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    pub(crate) fn rotation_result(
        name: &str,
        r: Result<RotationOutcome, StateError>,
    ) -> Result<Outcome, Error> {
        match r {
            Ok(RotationOutcome::Rotated { version }) => Ok(Outcome::Rotated { version }),
            Ok(RotationOutcome::Skipped { .. }) => Ok(Outcome::Unchanged),
            Ok(RotationOutcome::Failed {
                error, in_doubt, ..
            }) => Err(Error::Rotation {
                rotation: name.to_owned(),
                message: if error.kind() == TargetErrorKind::Rejected {
                    format!("the target rejected the new password: {error}")
                } else if in_doubt {
                    format!(
                        "{error} (the target may have the new password; it is kept pending and settled by the next attempt)"
                    )
                } else {
                    error.to_string()
                },
            }),
            Ok(RotationOutcome::NeedsReconcile { why }) => Err(Error::Rotation {
                rotation: name.to_owned(),
                message: format!("{}; run reconcile", why.message),
            }),
            Ok(_) => Err(Error::Rotation {
                rotation: name.to_owned(),
                message: "unexpected outcome".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Whether a heartbeat or logon error says the account is locked or disabled.
pub(crate) fn lock_state(kind: TargetErrorKind) -> Option<RotationState> {
    match kind {
        TargetErrorKind::AccountLocked => Some(RotationState::Locked),
        TargetErrorKind::AccountDisabled => Some(RotationState::Disabled),
        _ => None,
    }
}
