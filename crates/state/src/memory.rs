//! The in-memory store (tests, ephemeral use).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::{ConflictReason, Missing, Result, StateError};
use crate::store::StateStore;
use crate::types::{
    Claim, ConfigDoc, Fence, Lease, LeaseTerms, MemberState, Millis, Record, RecordState,
    SetConfig, SetInfo, SetMember, TargetId, check_name, new_uuid,
};

#[derive(Default)]
struct ClaimSlot {
    token: u64,
    holder: Option<String>,
    renewed_at: Millis,
    expires_at: Millis,
}

struct MemberSlot {
    state: MemberState,
    generation: u64,
    lease: Option<Lease>,
}

struct SetSlot {
    config: SetConfig,
    version: u64,
    members: BTreeMap<TargetId, MemberSlot>,
}

#[derive(Default)]
struct Inner {
    records: BTreeMap<TargetId, Record>,
    claims: HashMap<TargetId, ClaimSlot>,
    sets: BTreeMap<String, SetSlot>,
    /// account -> set name.
    member_of: HashMap<TargetId, String>,
    /// lease id -> account.
    leases: HashMap<String, TargetId>,
    configs: BTreeMap<(String, String), (u64, Vec<u8>)>,
}

impl Inner {
    fn member_mut(&mut self, account: &TargetId) -> Option<(&str, &mut MemberSlot)> {
        let set = self.member_of.get(account)?;
        let slot = self.sets.get_mut(set)?.members.get_mut(account)?;
        Some((set.as_str(), slot))
    }
}

fn member(account: &TargetId, m: &MemberSlot) -> SetMember {
    SetMember::new(account.clone(), m.state, m.generation, m.lease.clone())
}

/// A store that keeps everything in process memory: nothing survives a restart.
/// All operations take one mutex, briefly.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    notes: crate::notes::ClaimNotes,
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
        // Every operation checks before it mutates, so a panic while holding the
        // lock cannot leave Inner half-updated: recover from poisoning.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn fence_ok(inner: &Inner, id: &TargetId, fence: Option<Fence>) -> bool {
    match fence {
        None => true,
        Some(f) => inner
            .claims
            .get(id)
            .is_some_and(|c| c.token == f.token() && c.holder.is_some()),
    }
}

fn after_id(after: Option<&TargetId>) -> Bound<&TargetId> {
    after.map_or(Bound::Unbounded, Bound::Excluded)
}

fn page_records<'a>(
    g: &'a Inner,
    after: Option<&TargetId>,
) -> impl Iterator<Item = &'a Record> + 'a {
    g.records
        .range::<TargetId, _>((after_id(after), Bound::Unbounded))
        .map(|(_, r)| r)
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
            .ok_or(StateError::NotFound(Missing::Record))
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
            .ok_or(StateError::NotFound(Missing::Record))?;
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
            None => Err(StateError::NotFound(Missing::Record)),
            Some(r) if r.version != expected_version => {
                Err(StateError::Conflict(ConflictReason::Version))
            }
            Some(_) => {
                g.records.remove(id);
                Ok(())
            }
        }
    }

    async fn list_due(
        &self,
        now: Millis,
        after: Option<&TargetId>,
        limit: usize,
    ) -> Result<Vec<TargetId>> {
        let g = self.lock();
        Ok(page_records(&g, after)
            .filter(|r| r.is_due(now))
            .take(limit)
            .map(|r| r.id.clone())
            .collect())
    }

    async fn list_records(&self, after: Option<&TargetId>, limit: usize) -> Result<Vec<Record>> {
        let g = self.lock();
        Ok(page_records(&g, after).take(limit).cloned().collect())
    }

    async fn list_needing_operator(
        &self,
        after: Option<&TargetId>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        let g = self.lock();
        Ok(page_records(&g, after)
            .filter(|r| r.state.needs_operator())
            .take(limit)
            .cloned()
            .collect())
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
        slot.renewed_at = now;
        slot.expires_at = now.saturating_add(ttl_ms);
        Ok(Claim::granted(
            id.clone(),
            holder.to_owned(),
            slot.token,
            now,
            slot.expires_at,
        ))
    }

    async fn renew_claim(&self, claim: &Claim, now: Millis, ttl_ms: i64) -> Result<Claim> {
        crate::types::check_ttl(ttl_ms, "claim")?;
        let mut g = self.lock();
        match g.claims.get_mut(&claim.id) {
            Some(slot) if slot.token == claim.token && slot.holder.is_some() => {
                slot.renewed_at = now;
                slot.expires_at = now.saturating_add(ttl_ms);
                let mut c = claim.clone();
                c.renewed_at = now;
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
        drop(g);
        self.notes
            .announce(&crate::notes::ClaimNotes::key(&claim.id));
        Ok(())
    }

    async fn wait_for_release(&self, id: &TargetId, timeout: std::time::Duration) {
        self.notes.wait(id, timeout).await;
    }

    async fn get_claim(&self, id: &TargetId) -> Result<Option<Claim>> {
        let g = self.lock();
        Ok(g.claims.get(id).and_then(|s| {
            s.holder
                .as_ref()
                .map(|h| Claim::granted(id.clone(), h.clone(), s.token, s.renewed_at, s.expires_at))
        }))
    }

    async fn put_set(&self, name: &str, config: &SetConfig, expected_version: u64) -> Result<u64> {
        check_name("set name", name)?;
        config.check()?;
        let mut g = self.lock();
        match (g.sets.get_mut(name), expected_version) {
            (None, 0) => {
                g.sets.insert(
                    name.to_owned(),
                    SetSlot {
                        config: config.clone(),
                        version: 1,
                        members: BTreeMap::new(),
                    },
                );
                Ok(1)
            }
            (None, _) => Err(StateError::NotFound(Missing::Set)),
            (Some(_), 0) => Err(StateError::Conflict(ConflictReason::AlreadyExists)),
            (Some(s), v) if s.version != v => Err(StateError::Conflict(ConflictReason::Version)),
            (Some(s), v) => {
                s.config = config.clone();
                s.version = v + 1;
                Ok(v + 1)
            }
        }
    }

    async fn get_set(&self, name: &str) -> Result<SetInfo> {
        let g = self.lock();
        let s = g.sets.get(name).ok_or(StateError::NotFound(Missing::Set))?;
        Ok(SetInfo::new(name.to_owned(), s.config.clone(), s.version))
    }

    async fn list_sets(&self, after: Option<&str>, limit: usize) -> Result<Vec<SetInfo>> {
        let g = self.lock();
        let lo = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(g.sets
            .range::<str, _>((lo, Bound::Unbounded))
            .take(limit)
            .map(|(n, s)| SetInfo::new(n.clone(), s.config.clone(), s.version))
            .collect())
    }

    async fn delete_set(&self, name: &str, expected_version: u64) -> Result<()> {
        let mut g = self.lock();
        let s = g.sets.get(name).ok_or(StateError::NotFound(Missing::Set))?;
        if s.version != expected_version {
            return Err(StateError::Conflict(ConflictReason::Version));
        }
        if s.members.values().any(|m| m.state == MemberState::Lent) {
            return Err(StateError::Conflict(ConflictReason::Leased));
        }
        if let Some(s) = g.sets.remove(name) {
            for a in s.members.keys() {
                g.member_of.remove(a);
            }
        }
        Ok(())
    }

    async fn add_to_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        let mut g = self.lock();
        if !g.sets.contains_key(set) {
            return Err(StateError::NotFound(Missing::Set));
        }
        if accounts
            .iter()
            .any(|a| g.member_of.get(a).is_some_and(|s| s != set))
        {
            return Err(StateError::Conflict(ConflictReason::OtherSet));
        }
        for a in accounts {
            g.member_of.insert(a.clone(), set.to_owned());
        }
        if let Some(s) = g.sets.get_mut(set) {
            for a in accounts {
                s.members.entry(a.clone()).or_insert(MemberSlot {
                    state: MemberState::Returning,
                    generation: 1,
                    lease: None,
                });
            }
        }
        Ok(())
    }

    async fn remove_from_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        let mut g = self.lock();
        let Some(s) = g.sets.get_mut(set) else {
            return Err(StateError::NotFound(Missing::Set));
        };
        if accounts.iter().any(|a| {
            s.members
                .get(a)
                .is_some_and(|m| m.state == MemberState::Lent)
        }) {
            return Err(StateError::Conflict(ConflictReason::Leased));
        }
        let mut removed = Vec::new();
        for a in accounts {
            if s.members.remove(a).is_some() {
                removed.push(a.clone());
            }
        }
        for a in removed {
            g.member_of.remove(&a);
        }
        Ok(())
    }

    async fn set_members(&self, set: &str) -> Result<Vec<SetMember>> {
        let g = self.lock();
        let s = g.sets.get(set).ok_or(StateError::NotFound(Missing::Set))?;
        Ok(s.members.iter().map(|(a, m)| member(a, m)).collect())
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
        let Inner { sets, records, .. } = &mut *g;
        let s = sets
            .get_mut(set)
            .ok_or(StateError::NotFound(Missing::Set))?;
        let Some((account, slot)) = s.members.iter_mut().find(|(a, m)| {
            m.state == MemberState::Available
                && records
                    .get(*a)
                    .is_some_and(|r| r.state == RecordState::Ok && r.pending.is_none())
        }) else {
            return Err(StateError::NoneAvailable);
        };
        let lease = Lease::new(
            new_uuid(),
            set.to_owned(),
            account.clone(),
            borrower.to_owned(),
            now,
            now.saturating_add(terms.ttl_ms),
            now.saturating_add(terms.max_ttl_ms),
        );
        slot.state = MemberState::Lent;
        slot.generation += 1;
        slot.lease = Some(lease.clone());
        g.leases
            .insert(lease.lease_id.clone(), lease.account.clone());
        Ok(lease)
    }

    async fn get_lease(&self, lease_id: &str) -> Result<Lease> {
        let mut g = self.lock();
        let account = g
            .leases
            .get(lease_id)
            .cloned()
            .ok_or(StateError::NotFound(Missing::Lease))?;
        g.member_mut(&account)
            .and_then(|(_, m)| m.lease.clone())
            .ok_or(StateError::NotFound(Missing::Lease))
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
        let account = g
            .leases
            .get(lease_id)
            .cloned()
            .ok_or(StateError::NotFound(Missing::Lease))?;
        let lease = g
            .member_mut(&account)
            .and_then(|(_, m)| m.lease.as_mut())
            .ok_or(StateError::NotFound(Missing::Lease))?;
        if borrower.is_some_and(|b| b != lease.borrower) {
            return Err(StateError::NotBorrower);
        }
        if lease.expires_at <= now {
            return Err(StateError::Expired);
        }
        lease.expires_at = now.saturating_add(ttl_ms).min(lease.max_expires_at);
        Ok(lease.clone())
    }

    async fn begin_return(
        &self,
        lease_id: &str,
        borrower: Option<&str>,
    ) -> Result<(SetMember, Lease)> {
        let mut g = self.lock();
        let account = g
            .leases
            .get(lease_id)
            .cloned()
            .ok_or(StateError::NotFound(Missing::Lease))?;
        let (_, m) = g
            .member_mut(&account)
            .ok_or(StateError::NotFound(Missing::Lease))?;
        match &m.lease {
            Some(l) if l.lease_id == lease_id => {
                if borrower.is_some_and(|b| b != l.borrower) {
                    return Err(StateError::NotBorrower);
                }
            }
            _ => return Err(StateError::NotFound(Missing::Lease)),
        }
        let lease = m.lease.take().ok_or(StateError::NotFound(Missing::Lease))?;
        m.state = MemberState::Returning;
        m.generation += 1;
        let out = member(&account, m);
        g.leases.remove(lease_id);
        Ok((out, lease))
    }

    async fn finish_return(&self, account: &TargetId, generation: u64) -> Result<SetMember> {
        let mut g = self.lock();
        let (_, m) = g
            .member_mut(account)
            .ok_or(StateError::NotFound(Missing::Member))?;
        if m.state != MemberState::Returning || m.generation != generation {
            return Err(StateError::Conflict(ConflictReason::MemberState));
        }
        m.state = MemberState::Available;
        m.generation += 1;
        Ok(member(account, m))
    }

    async fn list_expired_leases(&self, now: Millis, limit: usize) -> Result<Vec<Lease>> {
        let g = self.lock();
        let mut v: Vec<Lease> = g
            .sets
            .values()
            .flat_map(|s| s.members.values().filter_map(|m| m.lease.as_ref()))
            .filter(|l| l.expires_at <= now)
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.expires_at, &a.lease_id).cmp(&(b.expires_at, &b.lease_id)));
        v.truncate(limit);
        Ok(v)
    }

    async fn put_config(
        &self,
        kind: &str,
        name: &str,
        body: &[u8],
        expected_version: u64,
    ) -> Result<u64> {
        crate::types::check_config_doc(kind, name, body)?;
        let mut g = self.lock();
        let key = (kind.to_owned(), name.to_owned());
        match (g.configs.get_mut(&key), expected_version) {
            (None, 0) => {
                g.configs.insert(key, (1, body.to_vec()));
                Ok(1)
            }
            (None, _) => Err(StateError::NotFound(Missing::Config)),
            (Some(_), 0) => Err(StateError::Conflict(ConflictReason::AlreadyExists)),
            (Some((v, _)), e) if *v != e => Err(StateError::Conflict(ConflictReason::Version)),
            (Some(slot), e) => {
                *slot = (e + 1, body.to_vec());
                Ok(e + 1)
            }
        }
    }

    async fn get_config(&self, kind: &str, name: &str) -> Result<ConfigDoc> {
        let g = self.lock();
        let (v, body) = g
            .configs
            .get(&(kind.to_owned(), name.to_owned()))
            .ok_or(StateError::NotFound(Missing::Config))?;
        Ok(ConfigDoc::new(
            kind.to_owned(),
            name.to_owned(),
            *v,
            body.clone(),
        ))
    }

    async fn list_configs(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConfigDoc>> {
        let g = self.lock();
        let lo = match after {
            Some(a) => Bound::Excluded((kind.to_owned(), a.to_owned())),
            None => Bound::Included((kind.to_owned(), String::new())),
        };
        Ok(g.configs
            .range((lo, Bound::Unbounded))
            .take_while(|((k, _), _)| k == kind)
            .take(limit)
            .map(|((k, n), (v, b))| ConfigDoc::new(k.clone(), n.clone(), *v, b.clone()))
            .collect())
    }

    async fn delete_config(&self, kind: &str, name: &str, expected_version: u64) -> Result<()> {
        let mut g = self.lock();
        let key = (kind.to_owned(), name.to_owned());
        match g.configs.get(&key) {
            None => Err(StateError::NotFound(Missing::Config)),
            Some((v, _)) if *v != expected_version => {
                Err(StateError::Conflict(ConflictReason::Version))
            }
            Some(_) => {
                g.configs.remove(&key);
                Ok(())
            }
        }
    }
}
