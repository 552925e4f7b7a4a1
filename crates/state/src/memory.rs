//! The in-memory store (tests, ephemeral use).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::{ConflictReason, Result, StateError};
use crate::store::StateStore;
use crate::types::{
    Claim, Fence, Lease, LeaseTerms, Millis, Record, SetMember, TargetId, new_uuid,
};

#[derive(Default)]
struct ClaimSlot {
    token: u64,
    holder: Option<String>,
    expires_at: Millis,
}

#[derive(Default)]
struct Inner {
    records: HashMap<TargetId, Record>,
    claims: HashMap<TargetId, ClaimSlot>,
    /// set name -> members (sorted).
    sets: HashMap<String, BTreeMap<TargetId, Option<Lease>>>,
    /// account -> set name.
    member_of: HashMap<TargetId, String>,
    /// lease id -> account.
    leases: HashMap<String, TargetId>,
}

impl Inner {
    /// The set slot of the account that `lease_id` lent (`None` inside once returned).
    fn lease_slot(&mut self, lease_id: &str) -> Result<&mut Option<Lease>> {
        let account = self
            .leases
            .get(lease_id)
            .ok_or(StateError::NotFound("lease"))?;
        let set = self
            .member_of
            .get(account)
            .ok_or(StateError::NotFound("lease"))?;
        self.sets
            .get_mut(set)
            .and_then(|m| m.get_mut(account))
            .ok_or(StateError::NotFound("lease"))
    }
}

/// A store that keeps everything in process memory: nothing survives a restart.
/// All operations take one mutex, briefly.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated in a way that
        // breaks invariants more than losing the operation, so recover from poisoning.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn fence_ok(inner: &Inner, id: &TargetId, fence: Option<Fence>) -> bool {
    match fence {
        None => true,
        Some(Fence(t)) => inner
            .claims
            .get(id)
            .is_some_and(|c| c.token == t && c.holder.is_some()),
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn create_record(&self, record: &Record) -> Result<u64> {
        let mut g = self.lock();
        if g.records.contains_key(&record.id) {
            return Err(StateError::Conflict(ConflictReason::AlreadyExists));
        }
        let mut r = record.clone();
        r.version = 1;
        g.records.insert(r.id.clone(), r);
        Ok(1)
    }

    async fn get_record(&self, id: &TargetId) -> Result<Record> {
        self.lock()
            .records
            .get(id)
            .cloned()
            .ok_or(StateError::NotFound("record"))
    }

    async fn compare_and_swap(
        &self,
        record: &Record,
        expected_version: u64,
        fence: Option<Fence>,
    ) -> Result<u64> {
        let mut g = self.lock();
        let fenced = !fence_ok(&g, &record.id, fence);
        let slot = g
            .records
            .get_mut(&record.id)
            .ok_or(StateError::NotFound("record"))?;
        if slot.version != expected_version {
            return Err(StateError::Conflict(ConflictReason::Version));
        }
        if fenced {
            return Err(StateError::Conflict(ConflictReason::Fenced));
        }
        let v = expected_version + 1;
        slot.clone_from(record);
        slot.version = v;
        Ok(v)
    }

    async fn delete_record(&self, id: &TargetId, expected_version: u64) -> Result<()> {
        let mut g = self.lock();
        match g.records.get(id) {
            None => Err(StateError::NotFound("record")),
            Some(r) if r.version != expected_version => {
                Err(StateError::Conflict(ConflictReason::Version))
            }
            Some(_) => {
                g.records.remove(id);
                Ok(())
            }
        }
    }

    async fn list_due(&self, now: Millis, limit: usize) -> Result<Vec<TargetId>> {
        let g = self.lock();
        let mut v: Vec<TargetId> = g
            .records
            .values()
            .filter(|r| r.pending.is_some() || r.next_due.is_some_and(|d| d <= now))
            .map(|r| r.id.clone())
            .collect();
        v.sort();
        v.truncate(limit);
        Ok(v)
    }

    async fn claim(&self, id: &TargetId, holder: &str, now: Millis, ttl_ms: i64) -> Result<Claim> {
        crate::types::check_ttl(ttl_ms, "claim")?;
        let mut g = self.lock();
        let slot = g.claims.entry(id.clone()).or_default();
        if slot.holder.is_some() && slot.expires_at > now {
            return Err(StateError::Conflict(ConflictReason::ClaimHeld));
        }
        slot.token += 1;
        slot.holder = Some(holder.to_owned());
        slot.expires_at = now.saturating_add(ttl_ms);
        Ok(Claim {
            id: id.clone(),
            holder: holder.to_owned(),
            token: slot.token,
            expires_at: slot.expires_at,
        })
    }

    async fn renew_claim(&self, claim: &Claim, now: Millis, ttl_ms: i64) -> Result<Claim> {
        crate::types::check_ttl(ttl_ms, "claim")?;
        let mut g = self.lock();
        match g.claims.get_mut(&claim.id) {
            Some(slot) if slot.token == claim.token && slot.holder.is_some() => {
                slot.expires_at = now.saturating_add(ttl_ms);
                let mut c = claim.clone();
                c.expires_at = slot.expires_at;
                Ok(c)
            }
            _ => Err(StateError::Conflict(ConflictReason::Fenced)),
        }
    }

    async fn release_claim(&self, claim: &Claim) -> Result<()> {
        let mut g = self.lock();
        if let Some(slot) = g.claims.get_mut(&claim.id)
            && slot.token == claim.token
        {
            slot.holder = None;
            slot.expires_at = 0;
        }
        Ok(())
    }

    async fn add_to_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        let mut g = self.lock();
        if accounts
            .iter()
            .any(|a| g.member_of.get(a).is_some_and(|s| s != set))
        {
            return Err(StateError::Conflict(ConflictReason::OtherSet));
        }
        for a in accounts {
            g.member_of.insert(a.clone(), set.to_owned());
        }
        let members = g.sets.entry(set.to_owned()).or_default();
        for a in accounts {
            members.entry(a.clone()).or_insert(None);
        }
        Ok(())
    }

    async fn remove_from_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        let mut g = self.lock();
        let Some(members) = g.sets.get(set) else {
            return Err(StateError::NotFound("set"));
        };
        if accounts
            .iter()
            .any(|a| members.get(a).is_some_and(Option::is_some))
        {
            return Err(StateError::Conflict(ConflictReason::Leased));
        }
        for a in accounts {
            let removed = g.sets.get_mut(set).and_then(|m| m.remove(a)).is_some();
            if removed {
                g.member_of.remove(a);
            }
        }
        Ok(())
    }

    async fn set_members(&self, set: &str) -> Result<Vec<SetMember>> {
        let g = self.lock();
        let members = g.sets.get(set).ok_or(StateError::NotFound("set"))?;
        Ok(members
            .iter()
            .map(|(a, l)| SetMember {
                account: a.clone(),
                lease: l.clone(),
            })
            .collect())
    }

    async fn take_lease(
        &self,
        set: &str,
        borrower: &str,
        now: Millis,
        terms: LeaseTerms,
    ) -> Result<Lease> {
        terms.check()?;
        let mut g = self.lock();
        let members = g.sets.get_mut(set).ok_or(StateError::NotFound("set"))?;
        let Some((account, slot)) = members.iter_mut().find(|(_, l)| l.is_none()) else {
            return Err(StateError::NoneAvailable);
        };
        let lease = Lease {
            lease_id: new_uuid(),
            set: set.to_owned(),
            account: account.clone(),
            borrower: borrower.to_owned(),
            issued_at: now,
            expires_at: now.saturating_add(terms.ttl_ms),
            max_expires_at: now.saturating_add(terms.max_ttl_ms),
        };
        *slot = Some(lease.clone());
        g.leases
            .insert(lease.lease_id.clone(), lease.account.clone());
        Ok(lease)
    }

    async fn renew_lease(
        &self,
        lease_id: &str,
        borrower: Option<&str>,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<Lease> {
        crate::types::check_ttl(ttl_ms, "lease")?;
        let mut g = self.lock();
        let lease = g
            .lease_slot(lease_id)?
            .as_mut()
            .ok_or(StateError::NotFound("lease"))?;
        if borrower.is_some_and(|b| b != lease.borrower) {
            return Err(StateError::NotBorrower);
        }
        if lease.expires_at <= now {
            return Err(StateError::Expired);
        }
        lease.expires_at = now.saturating_add(ttl_ms).min(lease.max_expires_at);
        Ok(lease.clone())
    }

    async fn release_lease(&self, lease_id: &str, borrower: Option<&str>) -> Result<Lease> {
        let mut g = self.lock();
        let slot = g.lease_slot(lease_id)?;
        match slot {
            Some(l) if borrower.is_some_and(|b| b != l.borrower) => Err(StateError::NotBorrower),
            Some(_) => {
                let l = slot.take().ok_or(StateError::NotFound("lease"))?;
                g.leases.remove(lease_id);
                Ok(l)
            }
            None => Err(StateError::NotFound("lease")),
        }
    }

    async fn list_expired_leases(&self, now: Millis, limit: usize) -> Result<Vec<Lease>> {
        let g = self.lock();
        let mut v: Vec<Lease> = g
            .sets
            .values()
            .flat_map(|m| m.values().flatten())
            .filter(|l| l.expires_at <= now)
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.expires_at, &a.lease_id).cmp(&(b.expires_at, &b.lease_id)));
        v.truncate(limit);
        Ok(v)
    }
}
