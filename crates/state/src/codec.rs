//! Column encodings shared by the SQL stores.

use crate::error::{Result, StateError};
use crate::types::{Millis, ReconcileKind, RecordState, Sealed, Why};

/// History is stored as the first entry (`last`, as before history existed) and
/// the rest as `u32 big-endian length || bytes` entries.
pub(crate) fn history_rest(h: &[Sealed]) -> Option<Vec<u8>> {
    let rest = h.get(1..).filter(|r| !r.is_empty())?;
    let mut out = Vec::new();
    for s in rest {
        let len = u32::try_from(s.as_bytes().len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    Some(out)
}

pub(crate) fn history_from(last: Option<Vec<u8>>, rest: Option<Vec<u8>>) -> Result<Vec<Sealed>> {
    let mut out = Vec::new();
    if let Some(l) = last {
        out.push(Sealed::from_bytes(l));
    }
    if let Some(rest) = rest {
        let bad = || StateError::Corrupt("malformed stored history".into());
        let mut b = rest.as_slice();
        while !b.is_empty() {
            let len_bytes: [u8; 4] = b.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?;
            let len = usize::try_from(u32::from_be_bytes(len_bytes)).map_err(|_| bad())?;
            let v = b.get(4..4 + len).ok_or_else(bad)?;
            out.push(Sealed::from_bytes(v.to_vec()));
            b = &b[4 + len..];
        }
    }
    Ok(out)
}

/// (label, since, why kind, why text)
pub(crate) fn state_cols(
    s: &RecordState,
) -> (
    &'static str,
    Option<Millis>,
    Option<&'static str>,
    Option<&str>,
) {
    match s {
        RecordState::NeedsReconcile { since, why } => (
            s.label(),
            Some(*since),
            Some(why.kind.as_str()),
            Some(why.message.as_str()),
        ),
        _ => (s.label(), None, None, None),
    }
}

pub(crate) fn state_from(
    label: &str,
    since: Option<Millis>,
    kind: Option<String>,
    text: Option<String>,
) -> Result<RecordState> {
    Ok(match label {
        "ok" => RecordState::Ok,
        "in_doubt" => RecordState::InDoubt,
        "needs_reconcile" => RecordState::NeedsReconcile {
            since: since.unwrap_or(0),
            why: Why::new(
                ReconcileKind::parse(kind.as_deref().unwrap_or("unknown"))?,
                text.unwrap_or_default(),
            ),
        },
        _ => return Err(StateError::Corrupt("unknown record state".into())),
    })
}

pub(crate) fn u64_from(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StateError::Corrupt("negative version or token".into()))
}

pub(crate) fn u32_from(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| StateError::Corrupt("failure count out of range".into()))
}
