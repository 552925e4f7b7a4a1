//! Scheduler metadata of one rotation, kept in the store beside its credential
//! record so that due times, retry counters and operator states survive restarts
//! and are shared by every process using the store.
//!
//! Each rotation has one record of kind [`META_KIND`] (scope: the namespace,
//! account: the rotation's name). Its `next_due` is the next time the scheduler must
//! look at the rotation (a slot, a retry, a heartbeat, or the end of a running
//! lease), so `list_due` finds work without scanning every rotation; its payload (a
//! small JSON document) is sealed like everything else in the store. Every change is
//! a compare-and-swap on the record's version: two processes can never both start
//! the same cycle.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::state::{
    ConflictReason, Field, Millis, Record, Sealer, StateError, StateStore, TargetId,
};

/// Kind of the scheduler metadata records.
pub(crate) const META_KIND: &str = "cw-sched";

/// The operator-visible state of a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RotationState {
    /// Healthy: the last rotation (or import) succeeded.
    #[default]
    Ok,
    /// The password has never been set by credwheel and none was imported; the
    /// first rotation is due.
    NotEnrolled,
    /// The last attempt failed; a retry is scheduled.
    Backoff,
    /// Retries and cycles are exhausted (or the protocol could not tell what the
    /// target has): automation stopped until an operator rotates or reconciles.
    NeedsOperator,
    /// The heartbeat found that the target no longer accepts the stored password.
    Drifted,
    /// The heartbeat found the account locked out (no more logon attempts are made).
    Locked,
    /// The heartbeat found the account disabled (no more logon attempts are made).
    Disabled,
}

impl RotationState {
    /// Kebab-case name (`needs-operator`).
    pub fn as_str(self) -> &'static str {
        match self {
            RotationState::Ok => "ok",
            RotationState::NotEnrolled => "not-enrolled",
            RotationState::Backoff => "backoff",
            RotationState::NeedsOperator => "needs-operator",
            RotationState::Drifted => "drifted",
            RotationState::Locked => "locked",
            RotationState::Disabled => "disabled",
        }
    }
}

/// The persisted scheduler state of one rotation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Meta {
    /// The last scheduled slot completed, or the enrollment time.
    pub(crate) anchor: Millis,
    pub(crate) state: RotationState,
    pub(crate) paused: bool,
    /// Failures in the current cycle.
    pub(crate) retries: u32,
    /// Cycles that ended with every retry failing.
    pub(crate) failed_cycles: u32,
    /// When a backoff retry (or the next cycle) may run.
    pub(crate) next_attempt: Option<Millis>,
    /// The slot of the rotation cycle in progress (kept while retrying).
    pub(crate) cycle_slot: Option<Millis>,
    /// Someone is running this rotation until then.
    pub(crate) running_until: Option<Millis>,
    pub(crate) running_by: Option<String>,
    pub(crate) last_success: Option<Millis>,
    pub(crate) last_attempt: Option<Millis>,
    pub(crate) last_error: Option<String>,
    pub(crate) next_heartbeat: Option<Millis>,
    pub(crate) last_heartbeat: Option<Millis>,
    pub(crate) heartbeat: Option<String>,
    /// No logon attempts until an operator acts (locked or disabled account).
    pub(crate) heartbeat_suspended: bool,
    /// Rotations and heartbeats run by this metadata's owner, for status.
    pub(crate) rotations: u64,
}

/// A metadata record read from the store.
pub(crate) struct Loaded {
    pub(crate) record: Record,
    pub(crate) meta: Meta,
}

pub(crate) fn meta_id(namespace: &str, rotation: &str) -> Result<TargetId, StateError> {
    TargetId::new(META_KIND, namespace, rotation)
}

fn seal(sealer: &Sealer, id: &TargetId, meta: &Meta) -> Result<crate::state::Sealed, StateError> {
    let json = serde_json::to_string(meta)
        .map_err(|e| StateError::Invalid(format!("scheduler metadata: {e}")))?;
    sealer.seal(id, Field::Current, &SecretString::from(json))
}

pub(crate) async fn load(
    store: &dyn StateStore,
    sealer: &Sealer,
    id: &TargetId,
) -> Result<Option<Loaded>, StateError> {
    let record = match store.get_record(id).await {
        Ok(r) => r,
        Err(StateError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = match &record.current {
        Some(s) => {
            let text = sealer.open(id, Field::Current, s)?;
            serde_json::from_str(text.expose_secret())
                .map_err(|e| StateError::Invalid(format!("scheduler metadata: {e}")))?
        }
        None => Meta::default(),
    };
    Ok(Some(Loaded { record, meta }))
}

/// Creates the record; `Ok(false)` if it already existed.
pub(crate) async fn create(
    store: &dyn StateStore,
    sealer: &Sealer,
    id: &TargetId,
    meta: &Meta,
    next_due: Option<Millis>,
) -> Result<bool, StateError> {
    let mut r = Record::new(id.clone());
    r.current = Some(seal(sealer, id, meta)?);
    r.next_due = next_due;
    match store.create_record(&r).await {
        Ok(_) => Ok(true),
        Err(StateError::Conflict(ConflictReason::AlreadyExists)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `meta` over `loaded` if nobody changed it since; returns the new version,
/// or `None` when someone else wrote first.
pub(crate) async fn swap(
    store: &dyn StateStore,
    sealer: &Sealer,
    loaded: &Loaded,
    meta: &Meta,
    next_due: Option<Millis>,
) -> Result<Option<u64>, StateError> {
    let mut r = loaded.record.clone();
    r.current = Some(seal(sealer, &r.id, meta)?);
    r.next_due = next_due;
    match store
        .compare_and_swap(&r, loaded.record.version, None)
        .await
    {
        Ok(v) => Ok(Some(v)),
        Err(StateError::Conflict(ConflictReason::Version)) => Ok(None),
        Err(e) => Err(e),
    }
}
