//! The store trait.

use async_trait::async_trait;

use crate::error::Result;
use crate::types::{
    Claim, ConfigDoc, Fence, Lease, LeaseTerms, Millis, Record, SetConfig, SetInfo, SetMember,
    TargetId,
};

/// Everything that must survive a restart, shared by one or many processes.
///
/// Implementations must make every method atomic and, for durable stores, durable
/// before it returns (the write is on disk, fsync'd). Every method takes the caller's
/// notion of `now` where time matters, so tests can control time and all processes
/// sharing a store should keep their clocks in sync (NTP); claim and lease lengths
/// should dwarf the expected skew.
///
/// Listing methods are paged: they return items strictly after the cursor `after`
/// (exclusive) in byte order of the key (ids compare kind, then scope, then account,
/// byte-wise), at most `limit`; pass the last item of a page as the next cursor.
///
/// The trait is object safe: embedders pick a backend at run time and hold an
/// `Arc<dyn StateStore>`. Stores see only [`Sealed`](crate::Sealed) passwords.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    // ---- credential records ----

    /// Stores a new record; the stored version is 1 whatever `record.version` says.
    /// [`Conflict(AlreadyExists)`](crate::ConflictReason::AlreadyExists) if the id exists.
    async fn create_record(&self, record: &Record) -> Result<u64>;

    /// Reads a record ([`NotFound(Record)`](crate::Missing::Record) if absent).
    async fn get_record(&self, id: &TargetId) -> Result<Record>;

    /// Compare-and-swap: replaces every field of the stored record `record.id` with
    /// `record`'s if the stored version equals `expected_version`, and sets the
    /// version to `expected_version + 1`, which it returns.
    ///
    /// With `fence`, the write also requires that the account's latest rotation
    /// claim carries that token and is not released
    /// ([`Conflict(Fenced)`](crate::ConflictReason::Fenced) otherwise): a holder
    /// whose claim lapsed and was taken over can no longer write.
    async fn compare_and_swap(
        &self,
        record: &Record,
        expected_version: u64,
        fence: Option<Fence>,
    ) -> Result<u64>;

    /// Deletes a record if its version matches.
    async fn delete_record(&self, id: &TargetId, expected_version: u64) -> Result<()>;

    /// Ids of records for which [`Record::is_due`] holds at `now`, in id order,
    /// strictly after `after`, at most `limit`.
    async fn list_due(
        &self,
        now: Millis,
        after: Option<&TargetId>,
        limit: usize,
    ) -> Result<Vec<TargetId>>;

    /// Every record, in id order, strictly after `after`, at most `limit` (e.g. to
    /// re-seal all records under a new key).
    async fn list_records(&self, after: Option<&TargetId>, limit: usize) -> Result<Vec<Record>>;

    /// Records in [`RecordState::NeedsReconcile`](crate::RecordState::NeedsReconcile),
    /// in id order, strictly after `after`, at most `limit`.
    async fn list_needing_operator(
        &self,
        after: Option<&TargetId>,
        limit: usize,
    ) -> Result<Vec<Record>>;

    // ---- rotation claims ----

    /// Claims `id` for `holder` until `now + ttl_ms`. Succeeds if nobody holds an
    /// unexpired claim; a lapsed claim is taken over. The returned token is strictly
    /// greater than every token granted for this account before.
    /// [`Conflict(ClaimHeld)`](crate::ConflictReason::ClaimHeld) otherwise.
    async fn claim(&self, id: &TargetId, holder: &str, now: Millis, ttl_ms: i64) -> Result<Claim>;

    /// Extends a claim still held (same token) to `now + ttl_ms`, even if it lapsed
    /// as long as nobody took it over. [`Conflict(Fenced)`](crate::ConflictReason::Fenced)
    /// if it was taken over or released.
    async fn renew_claim(&self, claim: &Claim, now: Millis, ttl_ms: i64) -> Result<Claim>;

    /// Releases a claim (no-op if it was already taken over or released).
    async fn release_claim(&self, claim: &Claim) -> Result<()>;

    /// The account's claim if one is held (not released), possibly lapsed.
    async fn get_claim(&self, id: &TargetId) -> Result<Option<Claim>>;

    /// Waits up to `timeout` for a sign that the claim on `id` was released: a
    /// hint that shortens a waiting caller's poll, never a guarantee (callers
    /// re-check the store). The default sleeps for `timeout`. The stores of this
    /// crate wake waiters of their own process at once; [`PgStore`](crate::PgStore)
    /// also those of other processes (PostgreSQL `LISTEN`/`NOTIFY`).
    async fn wait_for_release(&self, id: &TargetId, timeout: std::time::Duration) {
        let _ = id;
        tokio::time::sleep(timeout).await;
    }

    // ---- check-out sets ----

    /// Creates a set (`expected_version == 0`) or replaces its settings if its
    /// version matches; returns the new version.
    /// [`Conflict(AlreadyExists)`](crate::ConflictReason::AlreadyExists) when creating
    /// an existing set, [`Conflict(Version)`](crate::ConflictReason::Version) on a
    /// version mismatch, [`NotFound(Set)`](crate::Missing::Set) when updating a
    /// missing one.
    async fn put_set(&self, name: &str, config: &SetConfig, expected_version: u64) -> Result<u64>;

    /// A set and its settings.
    async fn get_set(&self, name: &str) -> Result<SetInfo>;

    /// Sets in name order, strictly after `after`, at most `limit`.
    async fn list_sets(&self, after: Option<&str>, limit: usize) -> Result<Vec<SetInfo>>;

    /// Deletes a set and its memberships if its version matches.
    /// [`Conflict(Leased)`](crate::ConflictReason::Leased) (and no change) if an
    /// account is lent.
    async fn delete_set(&self, name: &str, expected_version: u64) -> Result<()>;

    /// Adds `accounts` to an existing set, each in state
    /// [`Returning`](crate::MemberState::Returning) (it must be rotated before it is
    /// first lent). Accounts already in the set are unchanged.
    /// [`Conflict(OtherSet)`](crate::ConflictReason::OtherSet) (and no change at all)
    /// if an account belongs to another set.
    async fn add_to_set(&self, set: &str, accounts: &[TargetId]) -> Result<()>;

    /// Removes accounts from `set`. If any of them is lent, nothing changes and the
    /// call fails with [`Conflict(Leased)`](crate::ConflictReason::Leased). Removing
    /// an account that is not a member of `set` is a no-op.
    async fn remove_from_set(&self, set: &str, accounts: &[TargetId]) -> Result<()>;

    /// The accounts of `set` with their states and leases, in account id order.
    async fn set_members(&self, set: &str) -> Result<Vec<SetMember>>;

    /// Atomically lends one [`Available`](crate::MemberState::Available) account of
    /// `set` whose record exists, is [`Ok`](crate::RecordState::Ok) and has no
    /// pending rotation (the first in id order). [`NoneAvailable`](crate::StateError::NoneAvailable)
    /// if there is none, [`NotFound(Set)`](crate::Missing::Set) if the set does not exist.
    async fn take_lease(
        &self,
        set: &str,
        borrower: &str,
        now: Millis,
        terms: LeaseTerms,
    ) -> Result<Lease>;

    /// A lease still in force or waiting for its check-in.
    async fn get_lease(&self, lease_id: &str) -> Result<Lease>;

    /// Extends a lease to `min(now + ttl_ms, max_expires_at)`.
    /// [`Expired`](crate::StateError::Expired) if it already expired,
    /// [`NotFound(Lease)`](crate::Missing::Lease) if checked in, and
    /// [`NotBorrower`](crate::StateError::NotBorrower) if `borrower` is given and differs.
    async fn renew_lease(
        &self,
        lease_id: &str,
        borrower: Option<&str>,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<Lease>;

    /// Check-in, first half: ends the lease and moves its account from
    /// [`Lent`](crate::MemberState::Lent) to [`Returning`](crate::MemberState::Returning),
    /// returning the member (with its new generation) and the ended lease. Fenced on
    /// the lease id: a check-in of a lease that already ended fails with
    /// [`NotFound(Lease)`](crate::Missing::Lease), so it can never touch an account
    /// lent again since. With `borrower`, only that borrower may check in
    /// ([`NotBorrower`](crate::StateError::NotBorrower)).
    async fn begin_return(
        &self,
        lease_id: &str,
        borrower: Option<&str>,
    ) -> Result<(SetMember, Lease)>;

    /// Check-in, second half (after the rotation committed): moves the account from
    /// [`Returning`](crate::MemberState::Returning) to
    /// [`Available`](crate::MemberState::Available) if its generation is still
    /// `generation`; [`Conflict(MemberState)`](crate::ConflictReason::MemberState)
    /// otherwise.
    async fn finish_return(&self, account: &TargetId, generation: u64) -> Result<SetMember>;

    /// Leases whose `expires_at <= now`, oldest first, at most `limit`.
    async fn list_expired_leases(&self, now: Millis, limit: usize) -> Result<Vec<Lease>>;

    // ---- configuration documents ----

    /// Creates (`expected_version == 0`) or replaces a document if its version
    /// matches; returns the new version (1 for a new document). Conflicts as
    /// [`StateStore::put_set`]. At most [`MAX_CONFIG_BODY`](crate::MAX_CONFIG_BODY) bytes.
    async fn put_config(
        &self,
        kind: &str,
        name: &str,
        body: &[u8],
        expected_version: u64,
    ) -> Result<u64>;

    /// A document ([`NotFound(Config)`](crate::Missing::Config) if absent).
    async fn get_config(&self, kind: &str, name: &str) -> Result<ConfigDoc>;

    /// Documents of `kind` in name order, strictly after `after`, at most `limit`.
    async fn list_configs(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConfigDoc>>;

    /// Deletes a document if its version matches.
    async fn delete_config(&self, kind: &str, name: &str, expected_version: u64) -> Result<()>;
}
