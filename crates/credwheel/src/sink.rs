//! Secret sinks: where a rotation's mapped secrets go after each change.
//!
//! A rotation maps its user name and new password to secret *names*
//! (`secrets = { username = "DB_USER", password = "DB_PASSWORD" }`). After every
//! committed rotation the scheduler hands a [`SecretUpdate`] to each configured
//! [`SecretSink`]. The password is already durable in the credwheel store when a
//! sink runs, so a sink failure never loses it: it is reported in the rotation's
//! status and the update is retried by the next rotation or by `reconcile`.
//!
//! Built in:
//!
//! - [`StoreSink`]: the credwheel store itself. Each name becomes a sealed record
//!   (current and previous value) that [`StoreSink::read`] returns by name.
//! - [`FileSink`]: one file per name in a directory, replaced atomically (temporary
//!   file, `fsync`, `rename`, `fsync` of the directory), created with mode 0600 so the
//!   value is never readable by others, even for an instant.
//!
//! # Adding a sink
//!
//! Implement [`SecretSink`]; the trait is open. A sink must:
//!
//! 1. be idempotent: the same update may be delivered twice (after a crash, or by a
//!    reconcile), and an update with a lower [`SecretUpdate::version`] than one
//!    already written may be dropped;
//! 2. never put a value into an error, a log line or a `Debug` output (use
//!    [`secrecy::ExposeSecret`] only at the call that writes);
//! 3. bound its own time (the scheduler does not cancel a sink mid-write).
//!
//! A **Kubernetes Secret** sink would, for each update, `PATCH` (server-side apply)
//! one Secret object named after the rotation with `data.<NAME> = base64(value)` for
//! every entry, using the pod's service-account token, and fail on anything but
//! 2xx. A **Vault KV v2** sink would `POST /v1/<mount>/data/<rotation>` with
//! `{"data": {<NAME>: <value>, ...}, "options": {"cas": <version seen>}}` so that a
//! concurrent writer is detected. Neither needs anything from credwheel beyond this
//! trait; register them with the builder next to the built-in ones.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::state::{ConflictReason, Field, Record, Sealer, StateError, StateStore, TargetId};

/// The mapped secrets of one committed rotation.
#[derive(Debug)]
#[non_exhaustive]
pub struct SecretUpdate {
    /// The rotation's name.
    pub rotation: String,
    /// The store's record version after the rotation (increases with every change).
    pub version: u64,
    /// Name and value of each mapped secret.
    pub entries: Vec<SecretEntry>,
}

impl SecretUpdate {
    /// An update with the given entries.
    pub fn new(rotation: impl Into<String>, version: u64, entries: Vec<SecretEntry>) -> Self {
        SecretUpdate {
            rotation: rotation.into(),
            version,
            entries,
        }
    }
}

/// One mapped secret. Its `Debug` output shows the name only.
#[non_exhaustive]
pub struct SecretEntry {
    /// The secret's name (see [`crate::config::is_secret_name`]).
    pub name: String,
    /// Its value.
    pub value: SecretString,
}

impl SecretEntry {
    /// A named value.
    pub fn new(name: impl Into<String>, value: SecretString) -> Self {
        SecretEntry {
            name: name.into(),
            value,
        }
    }
}

impl fmt::Debug for SecretEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretEntry")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a sink could not write. Never contains a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// A secret name a sink cannot use (e.g. one that is not a safe file name).
    #[error("secret name {name:?} is not usable by this sink")]
    BadName {
        /// The name.
        name: String,
    },
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store refused or failed.
    #[error("store: {0}")]
    Store(#[from] StateError),
    /// An error of a sink outside this crate.
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// A destination for mapped secrets. See the [module documentation](self) for the
/// contract and how to add one.
#[async_trait]
pub trait SecretSink: Send + Sync {
    /// A short name for logs and status (`"store"`, `"file:/run/secrets"`).
    fn name(&self) -> String;

    /// Writes every entry of `update`.
    async fn write(&self, update: &SecretUpdate) -> Result<(), SinkError>;
}

// ---------------------------------------------------------------------------------
// File sink

/// Writes each secret to `<dir>/<name>`, atomically and readable by the owner only.
///
/// Each file is replaced as a whole: the value goes to a new temporary file in the
/// same directory, created with mode 0600 (on Unix; elsewhere the directory's
/// permissions apply), flushed with `fsync`, renamed over the old file, and the
/// directory is `fsync`ed so the rename survives a power loss. A reader sees the old
/// value or the new one, never a mix. Entries of one update are written one after
/// the other (not as a group). The directory is created with mode 0700 if missing.
#[derive(Debug, Clone)]
pub struct FileSink {
    dir: PathBuf,
}

impl FileSink {
    /// A sink writing into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileSink { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write_blocking(dir: &Path, entries: &[(String, SecretString)]) -> Result<(), SinkError> {
        create_private_dir(dir)?;
        for (name, value) in entries {
            if !crate::config::is_secret_name(name) {
                return Err(SinkError::BadName { name: name.clone() });
            }
            write_atomic(dir, name, value)?;
        }
        Ok(())
    }
}

#[async_trait]
impl SecretSink for FileSink {
    fn name(&self) -> String {
        format!("file:{}", self.dir.display())
    }

    async fn write(&self, update: &SecretUpdate) -> Result<(), SinkError> {
        let dir = self.dir.clone();
        let entries: Vec<(String, SecretString)> = update
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect();
        match tokio::task::spawn_blocking(move || FileSink::write_blocking(&dir, &entries)).await {
            Ok(r) => r,
            Err(e) => Err(SinkError::Other(Box::new(e))),
        }
    }
}

fn io<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> SinkError + 'p {
    move |source| SinkError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn create_private_dir(dir: &Path) -> Result<(), SinkError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io("create directory", dir))
}

fn write_atomic(dir: &Path, name: &str, value: &SecretString) -> Result<(), SinkError> {
    let final_path = dir.join(name);
    let mut nonce = [0u8; 8];
    getrandom_fill(&mut nonce);
    let tmp_name = format!(".{name}.tmp-{}", hex_lower(&nonce));
    let tmp_path = dir.join(&tmp_name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The mode applies at creation: the file is never readable by others.
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp_path).map_err(io("create", &tmp_path))?;
        f.write_all(value.expose_secret().as_bytes())
            .map_err(io("write", &tmp_path))?;
        f.sync_all().map_err(io("fsync", &tmp_path))?;
        drop(f);
        std::fs::rename(&tmp_path, &final_path).map_err(io("rename", &final_path))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
        return result;
    }
    sync_dir(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), SinkError> {
    Ok(())
}

fn getrandom_fill(buf: &mut [u8]) {
    use rand::RngCore;
    rand::rng().fill_bytes(buf);
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------
// Store sink

/// The scope under which [`StoreSink`] keeps named secrets in the store.
pub const STORE_SINK_KIND: &str = "secret";

/// Keeps mapped secrets in the credwheel store, sealed like every password there,
/// and reads them back by name with the previous value.
///
/// Each name is a record of kind [`STORE_SINK_KIND`] in the given namespace (the
/// default namespace is `"default"`), written with compare-and-swap so concurrent
/// instances never interleave a stale value over a newer one.
#[derive(Clone)]
pub struct StoreSink {
    store: Arc<dyn StateStore>,
    sealer: Arc<Sealer>,
    namespace: String,
}

impl fmt::Debug for StoreSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSink")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// A secret read back from a [`StoreSink`].
#[non_exhaustive]
pub struct StoredSecret {
    /// The current value.
    pub current: SecretString,
    /// The value before it, if any.
    pub last: Option<SecretString>,
    /// When it was last written (Unix milliseconds).
    pub updated_at: Option<i64>,
}

impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSecret")
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

impl StoreSink {
    /// A sink over `store`, sealing with `sealer`, in the `"default"` namespace.
    pub fn new(store: Arc<dyn StateStore>, sealer: Arc<Sealer>) -> Self {
        StoreSink {
            store,
            sealer,
            namespace: "default".into(),
        }
    }

    /// Uses another namespace (several configurations sharing one store).
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    fn id(&self, name: &str) -> Result<TargetId, SinkError> {
        if !crate::config::is_secret_name(name) {
            return Err(SinkError::BadName {
                name: name.to_owned(),
            });
        }
        Ok(TargetId::new(STORE_SINK_KIND, &self.namespace, name)?)
    }

    /// The secret stored under `name`, or `None` if nothing was ever written.
    pub async fn read(&self, name: &str) -> Result<Option<StoredSecret>, SinkError> {
        let id = self.id(name)?;
        let record = match self.store.get_record(&id).await {
            Ok(r) => r,
            Err(StateError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(current) = &record.current else {
            return Ok(None);
        };
        let current = self.sealer.open(&id, Field::Current, current)?;
        let last = match record.history.first() {
            Some(l) => Some(self.sealer.open(&id, Field::Last, l)?),
            None => None,
        };
        Ok(Some(StoredSecret {
            current,
            last,
            updated_at: record.set_at,
        }))
    }

    async fn put(&self, name: &str, value: &SecretString, now: i64) -> Result<(), SinkError> {
        let id = self.id(name)?;
        for _ in 0..8 {
            match self.store.get_record(&id).await {
                Err(StateError::NotFound(_)) => {
                    let mut r = Record::new(id.clone());
                    r.current = Some(self.sealer.seal(&id, Field::Current, value)?);
                    r.set_at = Some(now);
                    match self.store.create_record(&r).await {
                        Ok(_) => return Ok(()),
                        Err(StateError::Conflict(_)) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
                Ok(mut r) => {
                    // Unchanged value: nothing to write (keeps `last` meaningful).
                    if let Some(cur) = &r.current
                        && let Ok(old) = self.sealer.open(&id, Field::Current, cur)
                        && subtle_eq(old.expose_secret(), value.expose_secret())
                    {
                        return Ok(());
                    }
                    let expected = r.version;
                    r.history = match &r.current {
                        Some(c) => {
                            let old = self.sealer.open(&id, Field::Current, c)?;
                            vec![self.sealer.seal(&id, Field::Last, &old)?]
                        }
                        None => Vec::new(),
                    };
                    r.current = Some(self.sealer.seal(&id, Field::Current, value)?);
                    r.set_at = Some(now);
                    match self.store.compare_and_swap(&r, expected, None).await {
                        Ok(_) => return Ok(()),
                        Err(StateError::Conflict(ConflictReason::Version)) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Err(SinkError::Store(StateError::Conflict(
            ConflictReason::Version,
        )))
    }
}

fn subtle_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[async_trait]
impl SecretSink for StoreSink {
    fn name(&self) -> String {
        format!("store:{}", self.namespace)
    }

    async fn write(&self, update: &SecretUpdate) -> Result<(), SinkError> {
        let now = jiff::Timestamp::now().as_millisecond();
        for e in &update.entries {
            self.put(&e.name, &e.value, now).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
