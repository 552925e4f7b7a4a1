//! Rotations as configuration: a TOML or JSON document describing connections,
//! the store, the key ring and the rotations, validated as a whole before anything
//! starts.
//!
//! Every problem is reported with the path of the field it is about
//! (`rotations[2].schedule.interval_days: must be >= 1`), unknown fields are refused
//! (a typo, or a setting from another system, is never silently ignored), policies
//! are built when the file is loaded (an impossible policy is a configuration error,
//! not a failed rotation at 3 a.m.), and secrets are only referenced (environment
//! variable or file) except an initial password to import.
//!
//! # The format
//!
//! ```toml
//! [store]
//! sqlite = "/var/lib/credwheel/state.db"      # or: postgres = "host=db user=cw dbname=credwheel"
//!                                              #     password = { env = "PGPASSWORD" }
//!                                              #     schema = "credwheel"   (optional)
//!                                              #     ca_file = "/etc/credwheel/pg-ca.pem" (a
//!                                              #       private CA; TLS per the sslmode, verified)
//! [key_ring]
//! active = "k2"
//! keys = [
//!   { id = "k2", file = "/etc/credwheel/k2.key" },  # 32 bytes, hex or base64
//!   { id = "k1", env = "CREDWHEEL_OLD_KEY" },       # still opens older records
//! ]
//!
//! [connections.ad.corp]
//! urls = ["ldaps://dc1.example.com", "ldaps://dc2.example.com"]   # tried in order
//! bind_dn = "CN=cw-delegate,OU=ServiceAccounts,DC=example,DC=com"
//! bind_password = { env = "CW_AD_PASSWORD" }                       # or { file = "..." }
//! user_dn = "OU=ServiceAccounts,DC=example,DC=com"                 # search base for names
//! ca_file = "/etc/credwheel/ad-ca.pem"
//! # starttls = true                       (with an ldap:// URL)
//! # danger_accept_invalid_certs = false   (never in production)
//! # connect_timeout = "30s", request_timeout = "90s"
//!
//! [connections.windows.app01]
//! address = "app01.example.com"
//! port = 445
//! admin_user = "cwadmin"
//! admin_password = { file = "/etc/credwheel/app01.pass" }
//! # domain = "APP01"
//!
//! [scheduler]   # all optional; defaults shown
//! concurrency = 4
//! jitter = "30s"
//! tick = "750ms"
//! heartbeat_interval = "1h"
//! max_retries_per_cycle = 3
//! max_retry_cycles = 3
//! backoff_initial = "10s"
//! backoff_max = "10m"
//!
//! [[sinks]]
//! file = { dir = "/run/credwheel/secrets" }   # one file per mapped secret, mode 0600
//!
//! [[rotations]]
//! name = "web-db-login"                      # a slug: a-z, 0-9 and single dashes
//! description = "svc-app1, used by the web tier"
//! target = { ad = { connection = "corp", sam_account_name = "svc-app1" } }
//! #        or { ad = { connection = "corp", upn = "svc-app1@example.com" } }
//! #        or { ad = { connection = "corp", dn = "CN=svc-app1,OU=...,DC=com" } }
//! #        or { windows = { host = "app01", user = "backup" } }
//! method = "root"                            # "root" (admin reset) or "target" (self change)
//! policy = { vault_hcl = '''length = 24
//!   rule "charset" { charset = "abcdefghijklmnopqrstuvwxyz" min-chars = 1 }
//!   rule "charset" { charset = "0123456789" min-chars = 1 }''' }
//! #        or { infisical = { length = 32, required = { digits = 2 }, allowedSymbols = "-_" } }
//! #        or { ad_complexity = { length = 20, display_name = "Web DB" } }
//! secrets = { username = "WEB_DB_USER", password = "WEB_DB_PASSWORD" }
//! # initial_password = { env = "WEB_DB_CURRENT" }   # or { file = ... } or { value = "..." }
//! schedule = { interval_days = 30, rotate_at = "02:30", time_zone = "Europe/Paris" }
//! #        or { cron = "0 3 * * SAT", window = "1h" }           (time_zone optional, UTC)
//! #        or { ttl = "24h" }                                    (lazy: rotate on read)
//! #        auto_rotation = false turns interval and cron schedules off (a password
//! #        never set, without initial_password, is still set once when first seen)
//! # heartbeat = true            (verify the stored password on the heartbeat interval)
//! # reconcile_on_drift = false  (reset a password changed behind our back)
//!
//! [[libraries]]                              # check-out sets (Vault's library)
//! name = "ops-breakglass"
//! connection = "corp"
//! accounts = ["svc-app5", "svc-app6"]        # sAMAccountNames; each in one set only
//! ttl = "1h"
//! max_ttl = "4h"
//! # disable_check_in_enforcement = false
//! ```
//!
//! JSON has the same structure. Relative paths are relative to the working
//! directory.

mod error;
mod raw;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

pub use error::{ConfigError, ConfigErrorKind, FieldError};

use crate::dn::Dn;
use crate::policy::{AdComplexity, InfisicalRequired, InfisicalRequirements, Policy};
use crate::schedule::{Schedule, parse_duration};
use raw::*;

/// Default SQLite path when the configuration has no `[store]` section.
pub const DEFAULT_SQLITE_PATH: &str = "credwheel.db";

/// A validated configuration. Built only by [`Config::from_toml_str`],
/// [`Config::from_json_str`] or [`Config::from_path`], so every value in it has
/// passed validation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where state lives.
    pub store: StoreConfig,
    /// The sealing keys.
    pub key_ring: KeyRingConfig,
    /// Active Directory connections by name.
    pub ad_connections: BTreeMap<String, AdConnection>,
    /// Windows hosts by name.
    pub windows_hosts: BTreeMap<String, WindowsHost>,
    /// Scheduler settings.
    pub scheduler: SchedulerSettings,
    /// Where mapped secrets go besides the store.
    pub sinks: Vec<SinkConfig>,
    /// The rotations, in file order.
    pub rotations: Vec<Rotation>,
    /// The check-out libraries, in file order.
    pub libraries: Vec<Library>,
}

/// A secret given by reference.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretRef {
    /// Read from this environment variable.
    Env(String),
    /// Read from this file (trailing newlines are removed).
    File(PathBuf),
}

impl SecretRef {
    /// Reads the secret. Errors name the variable or file, never the content.
    pub fn resolve(&self) -> Result<SecretString, ConfigError> {
        match self {
            SecretRef::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
                Ok(_) => Err(secret_err(format!("environment variable {var} is empty"))),
                Err(_) => Err(secret_err(format!(
                    "environment variable {var} is not set (or not UTF-8)"
                ))),
            },
            SecretRef::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    secret_err(format!("cannot read {}: {}", path.display(), e.kind()))
                })?;
                let mut text = zeroize::Zeroizing::new(text);
                let trimmed = text.trim_end_matches(['\r', '\n']).len();
                text.truncate(trimmed);
                if text.is_empty() {
                    return Err(secret_err(format!("{} is empty", path.display())));
                }
                Ok(SecretString::from(text.as_str()))
            }
        }
    }

    /// Where the secret comes from, for summaries (`env:NAME`, `file:PATH`).
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(v) => format!("env:{v}"),
            SecretRef::File(p) => format!("file:{}", p.display()),
        }
    }
}

fn secret_err(reason: String) -> ConfigError {
    ConfigError::one("", ConfigErrorKind::Secret { reason })
}

/// A secret given by reference or inline (only for initial passwords).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SecretInput {
    /// An environment variable or a file.
    Ref(SecretRef),
    /// Inline in the configuration (prefer a reference).
    Value(SecretString),
}

impl SecretInput {
    /// Reads the secret.
    pub fn resolve(&self) -> Result<SecretString, ConfigError> {
        match self {
            SecretInput::Ref(r) => r.resolve(),
            SecretInput::Value(v) => Ok(v.clone()),
        }
    }
}

/// The state store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreConfig {
    /// The embedded SQLite store in this file (the default: `credwheel.db`).
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database shared by several instances.
    Postgres {
        /// Connection parameters (`host=... user=... dbname=...` or a
        /// `postgresql://` URL) without a password.
        params: String,
        /// The password, by reference.
        password: Option<SecretRef>,
        /// The schema holding credwheel's tables (default: the store's default).
        schema: Option<String>,
        /// A PEM file of CA certificates trusted for the server's certificate, in
        /// addition to the system's (TLS follows the connection's `sslmode`).
        ca_file: Option<PathBuf>,
    },
}

/// The sealing key ring.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRingConfig {
    /// The id of the key that seals new values.
    pub active: String,
    /// Every key, by id (older ones still open older records).
    pub keys: Vec<KeyConfig>,
}

/// One sealing key: 32 bytes, as hex or base64 text, in a file or a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyConfig {
    /// The key id stored beside each sealed value.
    pub id: String,
    /// Where the key is.
    pub source: SecretRef,
}

/// An Active Directory connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdConnection {
    /// `ldaps://` (or `ldap://` with StartTLS) URLs, tried in order.
    pub urls: Vec<String>,
    /// The DN the connection binds as.
    pub bind_dn: String,
    /// Its password.
    pub bind_password: SecretRef,
    /// Search base for accounts named by sAMAccountName or UPN.
    pub user_dn: Option<String>,
    /// A PEM CA certificate to trust (otherwise the system's roots).
    pub ca_file: Option<PathBuf>,
    /// Upgrade `ldap://` URLs with StartTLS.
    pub starttls: bool,
    /// Accept any server certificate. Never in production.
    pub danger_accept_invalid_certs: bool,
    /// Connection timeout (default 30 s).
    pub connect_timeout: Duration,
    /// Per-request timeout (default 90 s).
    pub request_timeout: Duration,
}

/// A Windows host (member or standalone server) reached over SMB 3.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowsHost {
    /// Host name or IP address.
    pub address: String,
    /// SMB port (default 445).
    pub port: u16,
    /// The local administrator used for resets ("login as root").
    pub admin_user: String,
    /// Its password.
    pub admin_password: SecretRef,
    /// The account domain (default: the host's own).
    pub domain: Option<String>,
    /// Connection timeout (default 30 s).
    pub connect_timeout: Duration,
}

/// Scheduler settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchedulerSettings {
    /// Rotations running at once (default 4).
    pub concurrency: u32,
    /// Random delay added to each due rotation, up to this (default 30 s).
    pub jitter: Duration,
    /// How often the scheduler asks the store for due work (default 750 ms: a
    /// rotation that becomes due is picked up within that, also when another
    /// process made it due).
    pub tick: Duration,
    /// How often stored passwords are verified against their targets (default 1 h).
    pub heartbeat_interval: Duration,
    /// Attempts after the first failure within one cycle (default 3).
    pub max_retries_per_cycle: u32,
    /// Failed cycles after which the rotation needs an operator (default 3).
    pub max_retry_cycles: u32,
    /// First backoff delay, doubled after each failure (default 10 s).
    pub backoff_initial: Duration,
    /// Largest backoff delay (default 10 min).
    pub backoff_max: Duration,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            concurrency: 4,
            jitter: Duration::from_secs(30),
            tick: Duration::from_millis(750),
            heartbeat_interval: Duration::from_secs(3600),
            max_retries_per_cycle: 3,
            max_retry_cycles: 3,
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(600),
        }
    }
}

/// Where mapped secrets go after each rotation, besides the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SinkConfig {
    /// One file per secret name in this directory (see [`crate::sink::FileSink`]).
    File {
        /// The directory.
        dir: PathBuf,
    },
}

/// How a rotation reaches the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// "Login as root": the connection's administrator resets the password.
    Root,
    /// "Login as target": the account changes its own password.
    Target,
}

impl Method {
    /// `"root"` or `"target"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Root => "root",
            Method::Target => "target",
        }
    }
}

/// How an AD account is named.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdAccount {
    /// By `sAMAccountName` (searched under the connection's `user_dn`).
    SamAccountName(String),
    /// By `userPrincipalName`.
    Upn(String),
    /// By distinguished name, used as given (never re-resolved).
    Dn(String),
}

impl AdAccount {
    /// The name as configured.
    pub fn as_str(&self) -> &str {
        match self {
            AdAccount::SamAccountName(s) | AdAccount::Upn(s) | AdAccount::Dn(s) => s,
        }
    }
}

/// The account a rotation manages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// An Active Directory account.
    Ad {
        /// The name of the connection in `connections.ad`.
        connection: String,
        /// The account.
        account: AdAccount,
    },
    /// A Windows local account.
    Windows {
        /// The name of the host in `connections.windows`.
        host: String,
        /// The local user name.
        user: String,
    },
}

impl Target {
    /// The user name written to the `username` secret.
    pub fn username(&self) -> &str {
        match self {
            Target::Ad { account, .. } => account.as_str(),
            Target::Windows { user, .. } => user,
        }
    }

    /// `ad:CONNECTION/ACCOUNT` or `windows:HOST/USER`.
    pub fn describe(&self) -> String {
        match self {
            Target::Ad {
                connection,
                account,
            } => format!("ad:{connection}/{}", account.as_str()),
            Target::Windows { host, user } => format!("windows:{host}/{user}"),
        }
    }
}

/// Which format a policy was given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyFormat {
    /// None given: Vault's default (20 characters, lower, upper, digit, `-`).
    Default,
    /// Vault HCL.
    VaultHcl,
    /// Infisical's requirements object.
    Infisical,
    /// Active Directory complexity.
    AdComplexity,
}

/// Names of the secrets a rotation writes after each change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretMapping {
    /// Receives the account's user name.
    pub username: String,
    /// Receives the current password.
    pub password: String,
}

/// One validated rotation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rotation {
    /// A slug, unique in the file.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The account.
    pub target: Target,
    /// Admin reset or self change.
    pub method: Method,
    /// The password policy, built and checked satisfiable.
    pub policy: Arc<Policy>,
    /// The format it came in.
    pub policy_format: PolicyFormat,
    /// Secret names.
    pub secrets: SecretMapping,
    /// The current password to import (served until the first rotation).
    pub initial_password: Option<SecretInput>,
    /// `None`: manual rotations only.
    pub schedule: Option<Schedule>,
    /// Verify the stored password on the heartbeat interval (default true).
    pub heartbeat: bool,
    /// When the heartbeat finds a drifted password, reset it (default false:
    /// report only).
    pub reconcile_on_drift: bool,
}

/// A check-out library (Vault's service-account library).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Library {
    /// A slug, unique among libraries.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The AD connection.
    pub connection: String,
    /// The accounts' sAMAccountNames.
    pub accounts: Vec<String>,
    /// Default lending time (default 24 h).
    pub ttl: Duration,
    /// Longest lending time with renewals (default 24 h, >= ttl).
    pub max_ttl: Duration,
    /// Let anyone check an account in, not only the borrower.
    pub disable_check_in_enforcement: bool,
    /// Policy for the passwords set at each check-in.
    pub policy: Arc<Policy>,
}

impl Config {
    /// Parses and validates a TOML document.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, "", &e))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de)
            .map_err(|e| toml_error(text, &e.path().to_string(), e.inner()))?;
        validate(raw)
    }

    /// Parses and validates a JSON document.
    pub fn from_json_str(text: &str) -> Result<Config, ConfigError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let inner = e.inner();
            let msg = inner.to_string();
            let bare = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m)
                .to_owned();
            serde_error(
                &e.path().to_string(),
                &bare,
                Some((inner.line(), inner.column())),
            )
        })?;
        validate(raw)
    }

    /// Reads a file: JSON when its name ends in `.json`, TOML otherwise.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::one(
                "",
                ConfigErrorKind::Syntax {
                    message: format!("cannot read {}: {e}", path.display()),
                },
            )
        })?;
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Config::from_json_str(&text)
        } else {
            Config::from_toml_str(&text)
        }
    }

    /// The rotation with this name.
    pub fn rotation(&self, name: &str) -> Option<&Rotation> {
        self.rotations.iter().find(|r| r.name == name)
    }

    /// The library with this name.
    pub fn library(&self, name: &str) -> Option<&Library> {
        self.libraries.iter().find(|l| l.name == name)
    }
}

impl std::str::FromStr for Config {
    type Err = ConfigError;
    /// Parses TOML.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Config::from_toml_str(s)
    }
}

fn toml_error(text: &str, path: &str, e: &toml::de::Error) -> ConfigError {
    let pos = e.span().map(|span| line_col(text, span.start));
    serde_error(path, e.message(), pos)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Classifies a serde message: unknown and missing fields get their own kinds and
/// a path ending in the field's name.
fn serde_error(path: &str, message: &str, pos: Option<(usize, usize)>) -> ConfigError {
    let quoted = |prefix: &str| -> Option<String> {
        let rest = message.strip_prefix(prefix)?;
        let end = rest.find('`')?;
        Some(rest[..end].to_owned())
    };
    let join = |field: &str| -> String {
        let last = path.rsplit(['.', ']']).next().unwrap_or("");
        if last == field {
            path.to_owned()
        } else if path.is_empty() || path == "." {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    let path_clean = if path == "." { "" } else { path };
    if let Some(field) = quoted("unknown field `") {
        return ConfigError::one(join(&field), ConfigErrorKind::UnknownField { field });
    }
    if let Some(field) = quoted("missing field `") {
        return ConfigError::one(join(&field), ConfigErrorKind::MissingField { field });
    }
    let message = match pos {
        Some((l, c)) => format!("{} (line {l}, column {c})", message.trim_end()),
        None => message.trim_end().to_owned(),
    };
    ConfigError::one(path_clean, ConfigErrorKind::Syntax { message })
}

/// Collects problems while validating.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, kind: ConfigErrorKind) {
        self.0.push(FieldError::new(path, kind));
    }
    fn invalid(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.push(
            path,
            ConfigErrorKind::Invalid {
                reason: reason.into(),
            },
        );
    }
    fn contradiction(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.push(
            path,
            ConfigErrorKind::Contradiction {
                reason: reason.into(),
            },
        );
    }
    fn duration(&mut self, path: &str, raw: Option<&RawDuration>, default: Duration) -> Duration {
        match raw {
            None => default,
            Some(RawDuration::Seconds(s)) => Duration::from_secs(*s),
            Some(RawDuration::Text(t)) => match parse_duration(t) {
                Ok(d) => d,
                Err(e) => {
                    self.push(path, ConfigErrorKind::Schedule(e));
                    default
                }
            },
        }
    }
}

/// Is `s` a slug: lowercase letters, digits and single dashes, 1 to 64 characters,
/// neither starting nor ending with a dash.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Is `s` a valid secret name: 1 to 128 of `A-Z a-z 0-9 _ . -`, not starting with
/// a dot (names become file names in the file sink).
pub fn is_secret_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

const SLUG_RULE: &str =
    "must be a slug: 1-64 of a-z, 0-9 and single dashes, not starting or ending with a dash";

/// Windows local user names, with Infisical's rules: at most 20 characters of
/// `A-Za-z0-9_.-`, not starting with `-` or `.`, not ending with `.`, and not a
/// built-in account.
fn windows_user_problem(user: &str) -> Option<String> {
    if user.is_empty() || user.chars().count() > 20 {
        return Some("must be 1 to 20 characters".into());
    }
    if !user
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Some("may only contain A-Z, a-z, 0-9, '_', '.' and '-'".into());
    }
    if user.starts_with(['-', '.']) || user.ends_with('.') {
        return Some("must not start with '-' or '.' nor end with '.'".into());
    }
    let lower = user.to_ascii_lowercase();
    if [
        "administrator",
        "guest",
        "defaultaccount",
        "system",
        "krbtgt",
    ]
    .contains(&lower.as_str())
    {
        return Some(format!("{user:?} is a built-in account and is not rotated"));
    }
    None
}

/// sAMAccountName: 1 to 20 characters, none of `"/\[]:;|=,+*?<>` and no control
/// characters.
fn sam_account_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.chars().count() > 20 {
        return Some("must be 1 to 20 characters".into());
    }
    if name
        .chars()
        .any(|c| c.is_control() || "\"/\\[]:;|=,+*?<>".contains(c))
    {
        return Some("must not contain control characters or any of \"/\\[]:;|=,+*?<>".into());
    }
    if name.ends_with('.') {
        return Some("must not end with '.'".into());
    }
    None
}

fn secret_ref(r: RawSecretRef) -> SecretRef {
    match r {
        RawSecretRef::Env(v) => SecretRef::Env(v),
        RawSecretRef::File(p) => SecretRef::File(p),
    }
}

fn check_secret_ref(errs: &mut Errors, path: &str, r: &SecretRef) {
    match r {
        SecretRef::Env(v) if v.is_empty() || v.contains('=') || v.contains('\0') => {
            errs.invalid(
                format!("{path}.env"),
                "not a valid environment variable name",
            );
        }
        SecretRef::File(p) if p.as_os_str().is_empty() => {
            errs.invalid(format!("{path}.file"), "must not be empty");
        }
        _ => {}
    }
}

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let mut errs = Errors::default();

    // Store.
    let store = match raw.store {
        None => StoreConfig::Sqlite {
            path: PathBuf::from(DEFAULT_SQLITE_PATH),
        },
        Some(s) => match (s.sqlite, s.postgres) {
            (Some(_), Some(_)) => {
                errs.contradiction("store.postgres", "cannot be used with store.sqlite");
                StoreConfig::Sqlite {
                    path: PathBuf::from(DEFAULT_SQLITE_PATH),
                }
            }
            (None, None) => {
                errs.contradiction("store", "give exactly one of sqlite or postgres");
                StoreConfig::Sqlite {
                    path: PathBuf::from(DEFAULT_SQLITE_PATH),
                }
            }
            (Some(path), None) => {
                if s.password.is_some() {
                    errs.contradiction("store.password", "only with store.postgres");
                }
                if s.schema.is_some() {
                    errs.contradiction("store.schema", "only with store.postgres");
                }
                if s.ca_file.is_some() {
                    errs.contradiction("store.ca_file", "only with store.postgres");
                }
                if path.as_os_str().is_empty() {
                    errs.invalid("store.sqlite", "must not be empty");
                }
                StoreConfig::Sqlite { path }
            }
            (None, Some(params)) => {
                if postgres_has_password(&params) {
                    errs.invalid(
                        "store.postgres",
                        "must not contain a password: use store.password = { env = ... } or { file = ... }",
                    );
                }
                let password = s.password.map(secret_ref);
                if let Some(p) = &password {
                    check_secret_ref(&mut errs, "store.password", p);
                }
                if let Some(schema) = &s.schema
                    && (schema.is_empty()
                        || schema.len() > 63
                        || !schema
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                        || schema.starts_with(|c: char| c.is_ascii_digit()))
                {
                    errs.invalid(
                        "store.schema",
                        "must be 1-63 of a-z, 0-9 and _, not starting with a digit",
                    );
                }
                if s.ca_file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                    errs.invalid("store.ca_file", "must not be empty");
                }
                StoreConfig::Postgres {
                    params,
                    password,
                    schema: s.schema,
                    ca_file: s.ca_file,
                }
            }
        },
    };

    // Key ring.
    let key_ring = match raw.key_ring {
        None => {
            errs.push(
                "key_ring",
                ConfigErrorKind::MissingField {
                    field: "key_ring".into(),
                },
            );
            KeyRingConfig {
                active: String::new(),
                keys: Vec::new(),
            }
        }
        Some(k) => {
            let mut keys = Vec::new();
            let mut seen: HashMap<String, usize> = HashMap::new();
            if k.keys.is_empty() {
                errs.invalid("key_ring.keys", "must hold at least one key");
            }
            for (i, key) in k.keys.into_iter().enumerate() {
                let path = format!("key_ring.keys[{i}]");
                if key.id.is_empty()
                    || key.id.len() > 64
                    || !key.id.bytes().all(|b| b.is_ascii_graphic())
                {
                    errs.invalid(
                        format!("{path}.id"),
                        "must be 1-64 printable ASCII characters",
                    );
                }
                if let Some(first) = seen.insert(key.id.clone(), i) {
                    errs.push(
                        format!("{path}.id"),
                        ConfigErrorKind::Duplicate {
                            value: key.id.clone(),
                            first: format!("key_ring.keys[{first}].id"),
                        },
                    );
                }
                let source = match (key.file, key.env) {
                    (Some(f), None) => SecretRef::File(f),
                    (None, Some(e)) => SecretRef::Env(e),
                    (Some(_), Some(_)) => {
                        errs.contradiction(format!("{path}.env"), "cannot be used with file");
                        continue;
                    }
                    (None, None) => {
                        errs.contradiction(path, "give exactly one of file or env");
                        continue;
                    }
                };
                check_secret_ref(&mut errs, &path, &source);
                keys.push(KeyConfig { id: key.id, source });
            }
            if !k.active.is_empty() && !seen.contains_key(&k.active) {
                errs.push(
                    "key_ring.active",
                    ConfigErrorKind::UnknownReference {
                        section: "key_ring.keys",
                        name: k.active.clone(),
                    },
                );
            } else if k.active.is_empty() {
                errs.invalid("key_ring.active", "must name one of key_ring.keys");
            }
            KeyRingConfig {
                active: k.active,
                keys,
            }
        }
    };

    // Connections.
    let mut ad_connections = BTreeMap::new();
    for (name, c) in raw.connections.ad {
        let path = format!("connections.ad.{name}");
        if !is_slug(&name) {
            errs.invalid(&path, format!("the name {SLUG_RULE}"));
        }
        if c.urls.is_empty() {
            errs.invalid(format!("{path}.urls"), "must hold at least one URL");
        }
        for (i, url) in c.urls.iter().enumerate() {
            let upath = format!("{path}.urls[{i}]");
            let lower = url.to_ascii_lowercase();
            let host = if let Some(rest) = lower.strip_prefix("ldaps://") {
                if c.starttls {
                    errs.contradiction(&upath, "starttls is for ldap:// URLs, not ldaps://");
                }
                rest
            } else if let Some(rest) = lower.strip_prefix("ldap://") {
                if !c.starttls {
                    errs.contradiction(
                        &upath,
                        "ldap:// needs starttls = true (AD refuses password changes without TLS)",
                    );
                }
                rest
            } else {
                errs.invalid(
                    &upath,
                    "must start with ldaps:// (or ldap:// with starttls)",
                );
                continue;
            };
            let host = host.trim_end_matches('/');
            if host.is_empty() || host.contains('/') || host.contains('@') {
                errs.invalid(&upath, "must be scheme://host[:port] with nothing else");
            }
        }
        if let Err(e) = Dn::parse(&c.bind_dn) {
            errs.invalid(format!("{path}.bind_dn"), format!("not a DN: {e}"));
        }
        if let Some(u) = &c.user_dn
            && let Err(e) = Dn::parse(u)
        {
            errs.invalid(format!("{path}.user_dn"), format!("not a DN: {e}"));
        }
        let bind_password = secret_ref(c.bind_password);
        check_secret_ref(&mut errs, &format!("{path}.bind_password"), &bind_password);
        let connect_timeout = errs.duration(
            &format!("{path}.connect_timeout"),
            c.connect_timeout.as_ref(),
            Duration::from_secs(30),
        );
        let request_timeout = errs.duration(
            &format!("{path}.request_timeout"),
            c.request_timeout.as_ref(),
            Duration::from_secs(90),
        );
        for (field, d) in [
            ("connect_timeout", connect_timeout),
            ("request_timeout", request_timeout),
        ] {
            if d.is_zero() {
                errs.invalid(format!("{path}.{field}"), "must be greater than 0");
            }
        }
        ad_connections.insert(
            name,
            AdConnection {
                urls: c.urls,
                bind_dn: c.bind_dn,
                bind_password,
                user_dn: c.user_dn,
                ca_file: c.ca_file,
                starttls: c.starttls,
                danger_accept_invalid_certs: c.danger_accept_invalid_certs,
                connect_timeout,
                request_timeout,
            },
        );
    }

    let mut windows_hosts = BTreeMap::new();
    for (name, h) in raw.connections.windows {
        let path = format!("connections.windows.{name}");
        if !is_slug(&name) {
            errs.invalid(&path, format!("the name {SLUG_RULE}"));
        }
        if h.address.is_empty()
            || h.address
                .chars()
                .any(|c| c.is_whitespace() || c == '/' || c == '\\')
        {
            errs.invalid(
                format!("{path}.address"),
                "must be a host name or IP address",
            );
        }
        if h.port == Some(0) {
            errs.invalid(format!("{path}.port"), "must be 1 to 65535");
        }
        if h.admin_user.is_empty() {
            errs.invalid(format!("{path}.admin_user"), "must not be empty");
        }
        let admin_password = secret_ref(h.admin_password);
        check_secret_ref(
            &mut errs,
            &format!("{path}.admin_password"),
            &admin_password,
        );
        let connect_timeout = errs.duration(
            &format!("{path}.connect_timeout"),
            h.connect_timeout.as_ref(),
            Duration::from_secs(30),
        );
        windows_hosts.insert(
            name,
            WindowsHost {
                address: h.address,
                port: h.port.unwrap_or(445),
                admin_user: h.admin_user,
                admin_password,
                domain: h.domain,
                connect_timeout,
            },
        );
    }

    // Scheduler.
    let d = SchedulerSettings::default();
    let s = raw.scheduler;
    let scheduler = SchedulerSettings {
        concurrency: s.concurrency.unwrap_or(d.concurrency),
        jitter: errs.duration("scheduler.jitter", s.jitter.as_ref(), d.jitter),
        tick: errs.duration("scheduler.tick", s.tick.as_ref(), d.tick),
        heartbeat_interval: errs.duration(
            "scheduler.heartbeat_interval",
            s.heartbeat_interval.as_ref(),
            d.heartbeat_interval,
        ),
        max_retries_per_cycle: s.max_retries_per_cycle.unwrap_or(d.max_retries_per_cycle),
        max_retry_cycles: s.max_retry_cycles.unwrap_or(d.max_retry_cycles),
        backoff_initial: errs.duration(
            "scheduler.backoff_initial",
            s.backoff_initial.as_ref(),
            d.backoff_initial,
        ),
        backoff_max: errs.duration(
            "scheduler.backoff_max",
            s.backoff_max.as_ref(),
            d.backoff_max,
        ),
    };
    if scheduler.concurrency == 0 {
        errs.invalid("scheduler.concurrency", "must be >= 1");
    }
    if scheduler.max_retry_cycles == 0 {
        errs.invalid("scheduler.max_retry_cycles", "must be >= 1");
    }
    if scheduler.tick.is_zero() {
        errs.invalid("scheduler.tick", "must be greater than 0");
    }
    if scheduler.heartbeat_interval.is_zero() {
        errs.invalid("scheduler.heartbeat_interval", "must be greater than 0");
    }
    if scheduler.backoff_initial.is_zero() {
        errs.invalid("scheduler.backoff_initial", "must be greater than 0");
    }
    if scheduler.backoff_initial > scheduler.backoff_max {
        errs.contradiction(
            "scheduler.backoff_max",
            "must be >= scheduler.backoff_initial",
        );
    }

    // Sinks.
    let mut sinks = Vec::new();
    for (i, sink) in raw.sinks.into_iter().enumerate() {
        match sink {
            RawSink::File(f) => {
                if f.dir.as_os_str().is_empty() {
                    errs.invalid(format!("sinks[{i}].file.dir"), "must not be empty");
                }
                sinks.push(SinkConfig::File { dir: f.dir });
            }
        }
    }

    // Rotations.
    let mut rotations = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut secret_names: HashMap<String, String> = HashMap::new();
    let mut accounts: HashMap<String, String> = HashMap::new();
    for (i, r) in raw.rotations.into_iter().enumerate() {
        let path = format!("rotations[{i}]");
        if let Some(rot) = validate_rotation(
            &mut errs,
            &path,
            r,
            &ad_connections,
            &windows_hosts,
            &mut names,
            &mut secret_names,
            &mut accounts,
        ) {
            rotations.push(rot);
        }
    }

    // Libraries.
    let mut libraries = Vec::new();
    let mut lib_names: HashMap<String, String> = HashMap::new();
    for (i, l) in raw.libraries.into_iter().enumerate() {
        let path = format!("libraries[{i}]");
        if !is_slug(&l.name) {
            errs.invalid(format!("{path}.name"), SLUG_RULE);
        }
        if let Some(first) = lib_names.insert(l.name.clone(), format!("{path}.name")) {
            errs.push(
                format!("{path}.name"),
                ConfigErrorKind::Duplicate {
                    value: l.name.clone(),
                    first,
                },
            );
        }
        if !ad_connections.contains_key(&l.connection) {
            errs.push(
                format!("{path}.connection"),
                ConfigErrorKind::UnknownReference {
                    section: "connections.ad",
                    name: l.connection.clone(),
                },
            );
        }
        if l.accounts.is_empty() {
            errs.invalid(format!("{path}.accounts"), "must hold at least one account");
        }
        for (j, a) in l.accounts.iter().enumerate() {
            let apath = format!("{path}.accounts[{j}]");
            if let Some(p) = sam_account_name_problem(a) {
                errs.invalid(&apath, p);
            }
            let key = format!("ad:{}/{}", l.connection, a.to_lowercase());
            if let Some(first) = accounts.insert(key, apath.clone()) {
                errs.push(
                    apath,
                    ConfigErrorKind::Duplicate {
                        value: a.clone(),
                        first,
                    },
                );
            }
        }
        let ttl = errs.duration(
            &format!("{path}.ttl"),
            l.ttl.as_ref(),
            Duration::from_secs(86_400),
        );
        let max_ttl = errs.duration(
            &format!("{path}.max_ttl"),
            l.max_ttl.as_ref(),
            Duration::from_secs(86_400),
        );
        if ttl.is_zero() {
            errs.invalid(format!("{path}.ttl"), "must be greater than 0");
        }
        if max_ttl < ttl {
            errs.contradiction(format!("{path}.max_ttl"), "must be >= ttl");
        }
        let (policy, _) = build_policy(&mut errs, &format!("{path}.policy"), l.policy, None);
        libraries.push(Library {
            name: l.name,
            description: l.description,
            connection: l.connection,
            accounts: l.accounts,
            ttl,
            max_ttl,
            disable_check_in_enforcement: l.disable_check_in_enforcement,
            policy,
        });
    }

    if !errs.0.is_empty() {
        return Err(ConfigError::new(errs.0));
    }
    Ok(Config {
        store,
        key_ring,
        ad_connections,
        windows_hosts,
        scheduler,
        sinks,
        rotations,
        libraries,
    })
}

fn postgres_has_password(params: &str) -> bool {
    let lower = params.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        let rest = lower.split_once("://").map_or("", |(_, r)| r);
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        return authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
            || lower.contains("password=");
    }
    lower
        .split_whitespace()
        .any(|kv| kv.trim_start().starts_with("password"))
}

#[allow(clippy::too_many_arguments)]
fn validate_rotation(
    errs: &mut Errors,
    path: &str,
    r: RawRotation,
    ad: &BTreeMap<String, AdConnection>,
    windows: &BTreeMap<String, WindowsHost>,
    names: &mut HashMap<String, String>,
    secret_names: &mut HashMap<String, String>,
    accounts: &mut HashMap<String, String>,
) -> Option<Rotation> {
    if !is_slug(&r.name) {
        errs.invalid(format!("{path}.name"), SLUG_RULE);
    }
    if let Some(first) = names.insert(r.name.clone(), format!("{path}.name")) {
        errs.push(
            format!("{path}.name"),
            ConfigErrorKind::Duplicate {
                value: r.name.clone(),
                first,
            },
        );
    }

    let method = match r.method.as_deref() {
        None | Some("root") => Method::Root,
        Some("target") => Method::Target,
        Some(other) => {
            errs.invalid(
                format!("{path}.method"),
                format!("{other:?} is not \"root\" or \"target\""),
            );
            Method::Root
        }
    };

    // Target.
    let (target, account_key, policy_account) = match r.target {
        RawTarget::Ad(t) => {
            let tpath = format!("{path}.target.ad");
            if !ad.contains_key(&t.connection) {
                errs.push(
                    format!("{tpath}.connection"),
                    ConfigErrorKind::UnknownReference {
                        section: "connections.ad",
                        name: t.connection.clone(),
                    },
                );
            }
            let given = [
                t.sam_account_name.is_some(),
                t.upn.is_some(),
                t.dn.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if given != 1 {
                errs.contradiction(
                    tpath.clone(),
                    "give exactly one of sam_account_name, upn or dn",
                );
                return None;
            }
            let (account, sam) = if let Some(s) = t.sam_account_name {
                if let Some(p) = sam_account_name_problem(&s) {
                    errs.invalid(format!("{tpath}.sam_account_name"), p);
                }
                (AdAccount::SamAccountName(s.clone()), Some(s))
            } else if let Some(u) = t.upn {
                let ok = u
                    .split_once('@')
                    .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('@'));
                if !ok || u.chars().any(char::is_control) {
                    errs.invalid(format!("{tpath}.upn"), "must be name@domain");
                }
                let sam = u.split('@').next().map(str::to_owned);
                (AdAccount::Upn(u), sam)
            } else if let Some(d) = t.dn {
                if let Err(e) = Dn::parse(&d) {
                    errs.invalid(format!("{tpath}.dn"), format!("not a DN: {e}"));
                }
                (AdAccount::Dn(d), None)
            } else {
                return None;
            };
            let key = format!(
                "ad:{}/{}",
                t.connection,
                match &account {
                    AdAccount::Dn(d) => Dn::parse(d)
                        .map_or_else(|_| d.to_lowercase(), |d| d.to_string().to_lowercase()),
                    other => other.as_str().to_lowercase(),
                }
            );
            (
                Target::Ad {
                    connection: t.connection,
                    account,
                },
                key,
                sam,
            )
        }
        RawTarget::Windows(t) => {
            let tpath = format!("{path}.target.windows");
            match windows.get(&t.host) {
                None => errs.push(
                    format!("{tpath}.host"),
                    ConfigErrorKind::UnknownReference {
                        section: "connections.windows",
                        name: t.host.clone(),
                    },
                ),
                Some(h) if h.admin_user.eq_ignore_ascii_case(&t.user) => errs.contradiction(
                    format!("{tpath}.user"),
                    format!(
                        "is the admin user of connections.windows.{}; rotate the admin account separately",
                        t.host
                    ),
                ),
                Some(_) => {}
            }
            if let Some(p) = windows_user_problem(&t.user) {
                errs.invalid(format!("{tpath}.user"), p);
            }
            let key = format!("windows:{}/{}", t.host, t.user.to_ascii_lowercase());
            let user = t.user.clone();
            (
                Target::Windows {
                    host: t.host,
                    user: t.user,
                },
                key,
                Some(user),
            )
        }
    };
    if let Some(first) = accounts.insert(account_key, format!("{path}.target")) {
        errs.push(
            format!("{path}.target"),
            ConfigErrorKind::Duplicate {
                value: target.describe(),
                first,
            },
        );
    }

    // Policy.
    let (policy, policy_format) = build_policy(
        errs,
        &format!("{path}.policy"),
        r.policy,
        policy_account.as_deref(),
    );

    // Secret mapping.
    let spath = format!("{path}.secrets");
    for (field, value) in [
        ("username", &r.secrets.username),
        ("password", &r.secrets.password),
    ] {
        let fpath = format!("{spath}.{field}");
        if !is_secret_name(value) {
            errs.invalid(
                &fpath,
                "must be 1-128 of A-Z, a-z, 0-9, '_', '.', '-', not starting with '.'",
            );
            continue;
        }
        if let Some(first) = secret_names.insert(value.clone(), fpath.clone()) {
            errs.push(
                fpath,
                ConfigErrorKind::Duplicate {
                    value: value.clone(),
                    first,
                },
            );
        }
    }

    // Initial password.
    let initial_password = r.initial_password.map(|p| match p {
        RawSecretInput::Env(v) => SecretInput::Ref(SecretRef::Env(v)),
        RawSecretInput::File(f) => SecretInput::Ref(SecretRef::File(f)),
        RawSecretInput::Value(v) => SecretInput::Value(v),
    });
    if let Some(SecretInput::Ref(r)) = &initial_password {
        check_secret_ref(errs, &format!("{path}.initial_password"), r);
    }
    if method == Method::Target && initial_password.is_none() {
        errs.contradiction(
            format!("{path}.initial_password"),
            "required with method = \"target\" (the account changes its own password, so its current one must be known)",
        );
    }

    // Schedule.
    let schedule = r
        .schedule
        .and_then(|s| build_schedule(errs, &format!("{path}.schedule"), s));

    Some(Rotation {
        name: r.name,
        description: r.description,
        target,
        method,
        policy,
        policy_format,
        secrets: SecretMapping {
            username: r.secrets.username,
            password: r.secrets.password,
        },
        initial_password,
        schedule,
        heartbeat: r.heartbeat.unwrap_or(true),
        reconcile_on_drift: r.reconcile_on_drift.unwrap_or(false),
    })
}

fn build_policy(
    errs: &mut Errors,
    path: &str,
    raw: Option<RawPolicy>,
    account_name: Option<&str>,
) -> (Arc<Policy>, PolicyFormat) {
    let (result, format, field) = match raw {
        None => return (Arc::new(Policy::vault_default()), PolicyFormat::Default),
        Some(RawPolicy::VaultHcl(text)) => (
            Policy::from_vault_hcl(&text),
            PolicyFormat::VaultHcl,
            "vault_hcl",
        ),
        Some(RawPolicy::Infisical(i)) => {
            let d = InfisicalRequirements::default();
            let dr = InfisicalRequired::default();
            let r = i.required.unwrap_or(RawInfisicalRequired {
                lowercase: None,
                uppercase: None,
                digits: None,
                symbols: None,
            });
            let req = InfisicalRequirements {
                length: i.length.unwrap_or(d.length),
                allowed_symbols: i.allowed_symbols.unwrap_or(d.allowed_symbols),
                required: InfisicalRequired {
                    lowercase: r.lowercase.unwrap_or(dr.lowercase),
                    uppercase: r.uppercase.unwrap_or(dr.uppercase),
                    digits: r.digits.unwrap_or(dr.digits),
                    symbols: r.symbols.unwrap_or(dr.symbols),
                },
            };
            (
                Policy::from_infisical(&req),
                PolicyFormat::Infisical,
                "infisical",
            )
        }
        Some(RawPolicy::AdComplexity(a)) => {
            let mut b = AdComplexity::new(a.length);
            if let Some(s) = &a.symbols {
                b = b.symbols(s);
            }
            if let Some(n) = account_name {
                b = b.account_name(n);
            }
            if let Some(d) = &a.display_name {
                b = b.display_name(d);
            }
            (b.build(), PolicyFormat::AdComplexity, "ad_complexity")
        }
    };
    match result {
        Ok(p) => (Arc::new(p), format),
        Err(e) => {
            errs.push(format!("{path}.{field}"), ConfigErrorKind::Policy(e));
            (Arc::new(Policy::vault_default()), format)
        }
    }
}

fn build_schedule(errs: &mut Errors, path: &str, s: RawSchedule) -> Option<Schedule> {
    let kinds: Vec<&str> = [
        ("interval_days", s.interval_days.is_some()),
        ("cron", s.cron.is_some()),
        ("ttl", s.ttl.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
    .collect();
    match kinds.as_slice() {
        [] => {
            errs.contradiction(path, "give exactly one of interval_days, cron or ttl");
            return None;
        }
        [_] => {}
        [first, rest @ ..] => {
            for k in rest {
                errs.contradiction(
                    format!("{path}.{k}"),
                    format!("cannot be used with {first}"),
                );
            }
            return None;
        }
    }
    let tz = s.time_zone.as_deref().unwrap_or("UTC");
    let not_with = |errs: &mut Errors, field: &str, present: bool, kind: &str| {
        if present {
            errs.contradiction(
                format!("{path}.{field}"),
                format!("cannot be used with {kind}"),
            );
        }
    };
    if let Some(days) = s.interval_days {
        not_with(errs, "window", s.window.is_some(), "interval_days");
        let rotate_at = s.rotate_at.as_deref().unwrap_or("00:00");
        return match Schedule::interval(days, rotate_at, tz) {
            Ok(sch) => Some(sch.with_auto_rotation(s.auto_rotation.unwrap_or(true))),
            Err(e) => {
                errs.push(
                    format!("{path}.{}", e.field()),
                    ConfigErrorKind::Schedule(e),
                );
                None
            }
        };
    }
    if let Some(expr) = s.cron {
        not_with(errs, "rotate_at", s.rotate_at.is_some(), "cron");
        let Some(window) = s.window else {
            errs.contradiction(
                format!("{path}.window"),
                "required with cron (how long after a slot a rotation may still start)",
            );
            return None;
        };
        let n = errs.0.len();
        let window = errs.duration(&format!("{path}.window"), Some(&window), Duration::ZERO);
        if errs.0.len() > n {
            return None;
        }
        return match Schedule::cron(&expr, window, tz) {
            Ok(sch) => Some(sch.with_auto_rotation(s.auto_rotation.unwrap_or(true))),
            Err(e) => {
                errs.push(
                    format!("{path}.{}", e.field()),
                    ConfigErrorKind::Schedule(e),
                );
                None
            }
        };
    }
    if let Some(ttl) = s.ttl {
        not_with(errs, "rotate_at", s.rotate_at.is_some(), "ttl");
        not_with(errs, "time_zone", s.time_zone.is_some(), "ttl");
        not_with(errs, "window", s.window.is_some(), "ttl");
        not_with(
            errs,
            "auto_rotation",
            s.auto_rotation.is_some(),
            "ttl (a ttl schedule is always lazy)",
        );
        let n = errs.0.len();
        let ttl = errs.duration(&format!("{path}.ttl"), Some(&ttl), Duration::ZERO);
        if errs.0.len() > n {
            return None;
        }
        return match Schedule::ttl(ttl) {
            Ok(sch) => Some(sch),
            Err(e) => {
                errs.push(format!("{path}.ttl"), ConfigErrorKind::Schedule(e));
                None
            }
        };
    }
    None
}

#[cfg(test)]
mod tests;
