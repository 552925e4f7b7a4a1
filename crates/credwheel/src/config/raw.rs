//! The file format, exactly as serde reads it (before validation).

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) store: Option<RawStore>,
    #[serde(default)]
    pub(crate) key_ring: Option<RawKeyRing>,
    #[serde(default)]
    pub(crate) connections: RawConnections,
    #[serde(default)]
    pub(crate) scheduler: RawScheduler,
    #[serde(default)]
    pub(crate) sinks: Vec<RawSink>,
    #[serde(default)]
    pub(crate) rotations: Vec<RawRotation>,
    #[serde(default)]
    pub(crate) libraries: Vec<RawLibrary>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    #[serde(default)]
    pub(crate) sqlite: Option<PathBuf>,
    #[serde(default)]
    pub(crate) postgres: Option<String>,
    #[serde(default)]
    pub(crate) password: Option<RawSecretRef>,
    #[serde(default)]
    pub(crate) schema: Option<String>,
    #[serde(default)]
    pub(crate) ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeyRing {
    pub(crate) active: String,
    pub(crate) keys: Vec<RawKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKey {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) env: Option<String>,
}

/// A secret given by reference only: an environment variable or a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) enum RawSecretRef {
    Env(String),
    File(PathBuf),
}

/// A secret given by reference or inline (initial passwords only).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) enum RawSecretInput {
    Env(String),
    File(PathBuf),
    Value(SecretString),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnections {
    #[serde(default)]
    pub(crate) ad: BTreeMap<String, RawAdConnection>,
    #[serde(default)]
    pub(crate) windows: BTreeMap<String, RawWindowsHost>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdConnection {
    pub(crate) urls: Vec<String>,
    pub(crate) bind_dn: String,
    pub(crate) bind_password: RawSecretRef,
    #[serde(default)]
    pub(crate) user_dn: Option<String>,
    #[serde(default)]
    pub(crate) ca_file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) starttls: bool,
    #[serde(default)]
    pub(crate) danger_accept_invalid_certs: bool,
    #[serde(default)]
    pub(crate) connect_timeout: Option<RawDuration>,
    #[serde(default)]
    pub(crate) request_timeout: Option<RawDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWindowsHost {
    pub(crate) address: String,
    #[serde(default)]
    pub(crate) port: Option<u16>,
    pub(crate) admin_user: String,
    pub(crate) admin_password: RawSecretRef,
    #[serde(default)]
    pub(crate) domain: Option<String>,
    #[serde(default)]
    pub(crate) connect_timeout: Option<RawDuration>,
}

/// A duration: seconds as a number, or text such as `"24h"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawDuration {
    Seconds(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScheduler {
    #[serde(default)]
    pub(crate) concurrency: Option<u32>,
    #[serde(default)]
    pub(crate) jitter: Option<RawDuration>,
    #[serde(default)]
    pub(crate) tick: Option<RawDuration>,
    #[serde(default)]
    pub(crate) heartbeat_interval: Option<RawDuration>,
    #[serde(default)]
    pub(crate) max_retries_per_cycle: Option<u32>,
    #[serde(default)]
    pub(crate) max_retry_cycles: Option<u32>,
    #[serde(default)]
    pub(crate) backoff_initial: Option<RawDuration>,
    #[serde(default)]
    pub(crate) backoff_max: Option<RawDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) enum RawSink {
    File(RawFileSink),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileSink {
    pub(crate) dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRotation {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) target: RawTarget,
    #[serde(default)]
    pub(crate) method: Option<String>,
    #[serde(default)]
    pub(crate) policy: Option<RawPolicy>,
    pub(crate) secrets: RawSecrets,
    #[serde(default)]
    pub(crate) initial_password: Option<RawSecretInput>,
    #[serde(default)]
    pub(crate) schedule: Option<RawSchedule>,
    #[serde(default)]
    pub(crate) heartbeat: Option<bool>,
    #[serde(default)]
    pub(crate) reconcile_on_drift: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) enum RawTarget {
    Ad(RawAdTarget),
    Windows(RawWindowsTarget),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdTarget {
    pub(crate) connection: String,
    #[serde(default)]
    pub(crate) sam_account_name: Option<String>,
    #[serde(default)]
    pub(crate) upn: Option<String>,
    #[serde(default)]
    pub(crate) dn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWindowsTarget {
    pub(crate) host: String,
    pub(crate) user: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) enum RawPolicy {
    VaultHcl(String),
    Infisical(RawInfisical),
    AdComplexity(RawAdComplexity),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawInfisical {
    #[serde(default)]
    pub(crate) length: Option<usize>,
    #[serde(default)]
    pub(crate) required: Option<RawInfisicalRequired>,
    #[serde(default)]
    pub(crate) allowed_symbols: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInfisicalRequired {
    #[serde(default)]
    pub(crate) lowercase: Option<usize>,
    #[serde(default)]
    pub(crate) uppercase: Option<usize>,
    #[serde(default)]
    pub(crate) digits: Option<usize>,
    #[serde(default)]
    pub(crate) symbols: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdComplexity {
    pub(crate) length: usize,
    #[serde(default)]
    pub(crate) symbols: Option<String>,
    #[serde(default)]
    pub(crate) display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecrets {
    pub(crate) username: String,
    pub(crate) password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    #[serde(default)]
    pub(crate) interval_days: Option<u32>,
    #[serde(default)]
    pub(crate) rotate_at: Option<String>,
    #[serde(default)]
    pub(crate) time_zone: Option<String>,
    #[serde(default)]
    pub(crate) auto_rotation: Option<bool>,
    #[serde(default)]
    pub(crate) cron: Option<String>,
    #[serde(default)]
    pub(crate) window: Option<RawDuration>,
    #[serde(default)]
    pub(crate) ttl: Option<RawDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLibrary {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) connection: String,
    pub(crate) accounts: Vec<String>,
    #[serde(default)]
    pub(crate) ttl: Option<RawDuration>,
    #[serde(default)]
    pub(crate) max_ttl: Option<RawDuration>,
    #[serde(default)]
    pub(crate) disable_check_in_enforcement: bool,
    #[serde(default)]
    pub(crate) policy: Option<RawPolicy>,
}
