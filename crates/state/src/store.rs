//! The store trait.

use async_trait::async_trait;

use crate::error::Result;
use crate::types::{Claim, Fence, Lease, LeaseTerms, Millis, Record, SetMember, TargetId};

/// Everything that must survive a restart, shared by one or many processes.
///
/// Implementations must make every method atomic and, for durable stores, durable
/// before it returns (the write is on disk, fsync'd). Every method takes the caller's
/// notion of `now` where time matters, so tests can control time and all processes
/// sharing a store should keep their clocks in sync (NTP); claim and lease lengths
/// should dwarf the expected skew.
///
/// The trait is object safe: embedders pick a backend at run time and hold an
/// `Arc<dyn StateStore>`. Stores see only [`Sealed`](crate::Sealed) passwords.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    // ---- credential records ----

    /// Stores a new record; the stored version is 1 whatever `record.version` says.
    /// [`Conflict(AlreadyExists)`](crate::ConflictReason::AlreadyExists) if the id exists.
    async fn create_record(&self, record: &Record) -> Result<u64>;

    /// Reads a record ([`NotFound`](crate::StateError::NotFound) if absent).
    async fn get_record(&self, id: &TargetId) -> Result<Record>;

    /// Compare-and-swap: replaces every field of the stored record `record.id` with
    /// `record`'s if the stored version equals `expected_version`, and sets the
    /// version to `expected_version + 1`, which it returns.
    ///
    /// With `fence`, the write also requires that the account's latest rotation
    /// claim carries that token ([`Conflict(Fenced)`](crate::ConflictReason::Fenced)
    /// otherwise): a holder whose claim lapsed and was taken over can no longer write.
    async fn compare_and_swap(
        &self,
        record: &Record,
        expected_version: u64,
        fence: Option<Fence>,
    ) -> Result<u64>;

    /// Deletes a record if its version matches.
    async fn delete_record(&self, id: &TargetId, expected_version: u64) -> Result<()>;

    /// Ids of records that are due (`next_due <= now`) or carry a pending rotation,
    /// at most `limit`, in no particular order.
    async fn list_due(&self, now: Millis, limit: usize) -> Result<Vec<TargetId>>;

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

    // ---- sets and check-out leases ----

    /// Creates `set` if missing and adds `accounts` to it. Accounts already in the
    /// set keep their leases. [`Conflict(OtherSet)`](crate::ConflictReason::OtherSet)
    /// (and no change at all) if an account belongs to another set.
    async fn add_to_set(&self, set: &str, accounts: &[TargetId]) -> Result<()>;

    /// Removes accounts from `set`. If any of them is lent, nothing changes and the
    /// call fails with [`Conflict(Leased)`](crate::ConflictReason::Leased). Removing
    /// an account that is not a member of `set` is a no-op.
    async fn remove_from_set(&self, set: &str, accounts: &[TargetId]) -> Result<()>;

    /// The accounts of `set` with their leases, sorted by account id.
    async fn set_members(&self, set: &str) -> Result<Vec<SetMember>>;

    /// Atomically lends one account of `set` that has no lease (an account whose
    /// lease expired stays unavailable until it is released, normally after a
    /// rotation). [`NoneAvailable`](crate::StateError::NoneAvailable) if all are lent,
    /// [`NotFound`](crate::StateError::NotFound) if the set does not exist.
    async fn take_lease(
        &self,
        set: &str,
        borrower: &str,
        now: Millis,
        terms: LeaseTerms,
    ) -> Result<Lease>;

    /// Extends a lease to `min(now + ttl_ms, max_expires_at)`.
    /// [`Expired`](crate::StateError::Expired) if it already expired,
    /// [`NotFound`](crate::StateError::NotFound) if released, and
    /// [`NotBorrower`](crate::StateError::NotBorrower) if `borrower` is given and differs.
    async fn renew_lease(
        &self,
        lease_id: &str,
        borrower: Option<&str>,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<Lease>;

    /// Ends a lease and makes the account available again, returning the ended lease.
    /// With `borrower`, only that borrower may release it
    /// ([`NotBorrower`](crate::StateError::NotBorrower)).
    async fn release_lease(&self, lease_id: &str, borrower: Option<&str>) -> Result<Lease>;

    /// Leases whose `expires_at <= now`, oldest first, at most `limit`.
    async fn list_expired_leases(&self, now: Millis, limit: usize) -> Result<Vec<Lease>>;
}
