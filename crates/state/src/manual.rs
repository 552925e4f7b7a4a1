//! Design notes: why the interfaces look as they do, the rotation protocol and its
//! crash analysis, the choice of stores, and security considerations.
//!
//! # Why these traits
//!
//! ## `RotationTarget` fits both LDAP and SAMR
//!
//! Both Active Directory and a Windows SAM offer the same two ways to write a
//! password, and both can tell whether a password is the account's:
//!
//! | operation | AD over LDAPS | Windows host over SMB 3 / SAMR |
//! |---|---|---|
//! | [`set_password_as_admin`](crate::RotationTarget::set_password_as_admin) | modify `unicodePwd` with *replace* (Reset Password right) | `SamrSetInformationUser2` (levels 23-26 / 31-32, keyed by the SMB session key) |
//! | [`change_password`](crate::RotationTarget::change_password) | modify `unicodePwd` with *delete old + add new*, bound as the account | `SamrUnicodeChangePasswordUser2` (keyed by the old password's NT hash) |
//! | [`verify`](crate::RotationTarget::verify) | simple bind as the account | SMB session setup as the account |
//! | [`password_last_set`](crate::RotationTarget::password_last_set) | `pwdLastSet` | the SAM's `PasswordLastSet` |
//!
//! The rotator chooses the method per call ([`RotationMethod`](crate::RotationMethod)):
//! an admin reset ignores minimum age and history, a self-change needs no privileged
//! account but is subject to both (Samba's default minimum age of one day makes a
//! self-change right after a reset fail with `constraintViolation`, which a target
//! reports as [`TargetErrorKind::Rejected`](crate::TargetErrorKind::Rejected)).
//!
//! Errors are classified ([`TargetErrorKind`](crate::TargetErrorKind)) because the
//! protocol's decisions depend on one question: *could the write have landed?*
//! LDAP result 19 (constraintViolation) and SAMR `STATUS_PASSWORD_RESTRICTION` are
//! `Rejected`; 49/`STATUS_WRONG_PASSWORD` `BadCredentials`; 50 /
//! `STATUS_ACCESS_DENIED` `Denied`; a dropped connection or timeout after the
//! request was sent is `Unavailable` (it may have landed).
//!
//! `verify` must be honest: `Ok(false)` only for a definitive "wrong password".
//! Both AD and Samba keep accepting the *previous* password for a while after a
//! reset (OldPasswordAllowedPeriod, 60 minutes by default), so "the old password
//! still verifies" does not prove the target still has it. The protocol therefore
//! verifies the pending password first and consults `password_last_set` before it
//! rolls back (see below).
//!
//! ## `StateStore`: small, atomic, object safe
//!
//! One async trait (`Arc<dyn StateStore>`, chosen at run time) with only atomic
//! primitives: records under compare-and-swap, claims with fencing tokens, sets and
//! leases. Everything else (the protocol, check-out policy) is built on top, once,
//! so every backend gets it for free and the conformance suite
//! (module `conformance`, behind the feature `conformance`) pins the semantics.
//! Callers pass `now` explicitly, so tests control time (see
//! [`ManualClock`](crate::ManualClock)) and a store never needs its own clock.
//!
//! The pending record lives inside the credential record, so writing it, committing
//! it and abandoning it are all the same compare-and-swap. Writes made by the
//! protocol carry the claim's [`Fence`](crate::Fence): a holder whose claim lapsed
//! and was taken over can no longer write, even if it wakes up late.
//!
//! A lease whose time ran out is *not* handed to the next borrower: Vault's semantics
//! are that expiry is a check-in and every check-in rotates the password, so the
//! expired account stays unavailable until a reaper (using
//! [`list_expired_leases`](crate::StateStore::list_expired_leases)) rotates it and
//! releases the lease.
//!
//! # The rotation protocol
//!
//! [`Rotator::rotate`](crate::Rotator::rotate):
//!
//! 1. **claim** the account (expiring claim, fencing token);
//! 2. **read** the record; if a pending rotation is found, settle it first (below);
//!    if it rolls forward, that completed rotation is the result;
//! 3. **generate** the new password ([`PasswordSource`](crate::PasswordSource));
//! 4. **write pending**: the new password, sealed, with an attempt id, is committed
//!    durably (fenced CAS) *before* the target sees it;
//! 5. **apply** it (admin reset or self-change), only if enough claim time is left;
//! 6. **verify** it on the target;
//! 7. **commit** (fenced CAS): current becomes last, pending becomes current,
//!    version + 1, `last_error` cleared, `next_due` set;
//! 8. **release** the claim.
//!
//! Failures of apply: a kind that certainly did not change the password
//! (`Rejected`, `BadCredentials`, `Denied`, `NoSuchAccount`) drops the pending
//! record and records the error; `Rejected` also pushes `next_due` back by
//! [`retry_after_rejection_ms`](crate::RotatorConfig::retry_after_rejection_ms), so a
//! refused password is never retried in a loop, and the current password stays
//! valid. Any other failure leaves the pending record for recovery.
//!
//! [`Rotator::recover`](crate::Rotator::recover) (and step 2) settles a pending
//! record by asking the target:
//!
//! - the pending password verifies → **roll forward** (commit);
//! - else the current password verifies and the target's `password_last_set` is not
//!   later than the pending record (minus a clock-skew tolerance) → **roll back**
//!   (drop pending, record why);
//! - otherwise → **`NeedsReconcile`**: the pending record is kept and the error
//!   recorded; [`Rotator::reconcile`](crate::Rotator::reconcile) then sets the stored
//!   pending password with an admin reset and commits it.
//!
//! ## Crash analysis
//!
//! A crash at any point leaves the process's claim to lapse; the next holder (or
//! `recover()` after the lapse) finds the state below. The unit tests drop the
//! rotation future at every await point, before and after each store and target
//! call, and check after `recover()` that the stored current password is the one
//! the target accepts.
//!
//! | crash point | store | target | what `recover()` does |
//! |---|---|---|---|
//! | during or after claim | unchanged | old password | nothing pending: `Clean` |
//! | after reading the record | unchanged | old | `Clean` |
//! | during write-pending (not committed) | unchanged | old | `Clean` |
//! | after write-pending committed | pending P | old | P fails, current verifies, `pwdLastSet` older → roll back |
//! | during apply, not applied | pending P | old | roll back |
//! | during apply, applied (reply lost) | pending P | P | P verifies → roll forward |
//! | during or after verify | pending P | P | roll forward |
//! | during commit, not committed | pending P | P | roll forward |
//! | after commit | current P | P | `Clean` |
//! | during release | current P | P | `Clean`; the claim lapses |
//! | inside `recover()` itself | as above | as above | the next `recover()` repeats the same decision (idempotent) |
//!
//! What the protocol cannot decide alone, it refuses to guess: if the pending
//! password does not verify and the old one does only because of the target's grace
//! period (the target's password changed after the pending record was written),
//! rolling back would store a password nobody can use, so the result is
//! `NeedsReconcile`. A target without `password_last_set` (returns `None`) gets the
//! plain verify-based decision.
//!
//! The claim bounds concurrency: the rotator does not touch the target when less
//! than [`target_margin_ms`](crate::RotatorConfig::target_margin_ms) of the claim
//! remains, and target implementations must time out well within that margin. A
//! holder that stalls beyond its claim is fenced out of the store; a stalled request
//! that still reaches the target afterwards is the one residual race, bounded by
//! those timeouts.
//!
//! # Stores
//!
//! - [`MemoryStore`](crate::MemoryStore): one mutex over hash maps; tests and
//!   ephemeral use.
//! - [`SqliteStore`](crate::SqliteStore), the embedded durable default. SQLite needs
//!   no server, is one file an operator can back up, and is safe when several
//!   processes on one host open the same file: WAL mode lets readers proceed while
//!   one writer commits; `BEGIN IMMEDIATE` takes the write lock at the start of each
//!   transaction (no lock upgrades, so no deadlock-prone `SQLITE_BUSY` mid-
//!   transaction), and a busy timeout makes other processes wait for it.
//!   `synchronous=FULL` fsyncs the WAL at every commit: a call returns only when
//!   its effect survives power loss. Durability costs one fsync per commit, so the
//!   store batches: concurrent operations are queued and one committer (the first
//!   caller that finds the connection free, inside `block_in_place`, or the store's
//!   background thread) runs all queued operations in one transaction (each in a
//!   savepoint), answering each caller after that commit (group
//!   commit). Alternatives considered: sled /
//!   redb (single-process only, no multi-process locking), plain files with
//!   `flock` (reinventing transactions), LMDB (needs unsafe bindings and C).
//! - [`PgStore`](crate::PgStore): many instances sharing one pool. Compare-and-swap
//!   is `UPDATE ... WHERE version = $n`; fenced writes share-lock the claim row in
//!   the same statement; claims are one `INSERT ... ON CONFLICT DO UPDATE ... WHERE
//!   expired`; leases are taken with `FOR UPDATE SKIP LOCKED` so concurrent
//!   borrowers do not queue on one row. Each connection sets `synchronous_commit =
//!   on`. A small pool of connections lets PostgreSQL's own group commit batch
//!   concurrent callers' WAL flushes.
//!
//! # Security considerations
//!
//! - **Stores see only ciphertext.** Passwords are sealed with XChaCha20-Poly1305
//!   under a 256-bit key before any store call; the 24-byte nonce is random per
//!   seal (no nonce bookkeeping, negligible collision risk). The associated data is
//!   the length-prefixed record identity (kind, scope, account) and the field name
//!   (`current`, `last`, `pending`), so a ciphertext copied to another record or
//!   swapped between fields fails to open ([`StateError::Unseal`](crate::StateError::Unseal)).
//!   Tests read raw SQLite and PostgreSQL rows and the SQLite files and find no
//!   plaintext.
//! - **What sealing does not protect.** Metadata (account names, versions, times,
//!   errors, lease borrowers) is stored in clear. Someone who can write to the
//!   store can roll a record back to an older *valid* sealed state of the same
//!   record (the AEAD binds identity and field, not version); the target's own
//!   password then simply fails to verify and recovery reports it. Deleting rows is
//!   a denial of service, not a disclosure.
//! - **Keys.** [`Key`](crate::Key) values are zeroized on drop (the AEAD state also
//!   zeroizes its key) and never printed (`Debug` is redacted). Keys come from the
//!   embedder: bytes, a file (raw or hex/base64), or an environment variable (the
//!   variable's copy in the process environment cannot be wiped; prefer a file with
//!   mode 0600 or a secret manager). Key rotation: add the new key, make it active,
//!   and re-seal records ([`Sealer::reseal_record`](crate::Sealer::reseal_record));
//!   keep old keys until every record is re-sealed.
//! - **Secrets in errors and logs.** No error variant carries a password, key or
//!   ciphertext; [`TargetError`](crate::TargetError) messages must be secret-free
//!   (a contract for implementors). `Debug` of records, sealed values, keys and the
//!   sealer shows no secret material (tested).
//! - **Files and connections.** The SQLite file is created with mode 0600.
//!   [`PgStore::connect`](crate::PgStore::connect) uses no TLS and is meant for
//!   loopback or Unix sockets; over a network use
//!   [`PgStore::connect_with_tls`](crate::PgStore::connect_with_tls). Connection
//!   strings (which may hold the database password) never appear in errors.
//! - **Lockout.** Recovery verifies at most two passwords (pending, then current),
//!   so a crash costs at most one failed logon on the target's lockout counter.
//! - **Clocks.** Claims and leases compare callers' clocks; instances sharing a store
//!   need synchronised clocks, and claim/lease lengths should dwarf the skew.
