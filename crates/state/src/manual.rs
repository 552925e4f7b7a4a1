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
//! 1. **read** the record and check the [`Precondition`](crate::Precondition)
//!    (`Skipped` with the fresh version if it fails: no claim taken);
//! 2. **claim** the account (expiring claim, fencing token); if another holder has
//!    it, wait (bounded, polling with backoff, re-checking the precondition) or
//!    fail with [`StateError::InFlight`](crate::StateError::InFlight);
//! 3. **re-read** under the claim; precondition again; a record that
//!    needs an operator is left alone (`NeedsReconcile`, target untouched);
//! 4. **settle** a pending rotation left by a crash (below); if it rolls forward,
//!    that completed rotation is the result;
//! 5. **margin**: at least [`target_margin_ms`](crate::RotatorConfig::target_margin_ms)
//!    must remain of the claim (renewed if needed) *before* anything is written;
//! 6. **write pending**: the new password, sealed, with an attempt id and a
//!    deadline (`now + max_attempt_ms`), state `InDoubt`, committed durably (fenced
//!    CAS) *before* the target sees it;
//! 7. **apply** (admin reset or self-change), only if the margin still holds for
//!    both the claim and the deadline; the claim is renewed every third of its
//!    length while the call runs;
//! 8. **verify** the new password on the target, then read the target's
//!    `password_last_set` (the new baseline);
//! 9. **commit** (fenced CAS): current → history (last *N*), pending → current,
//!    state `Ok`, failures and backoff cleared, `target_set_at` = baseline,
//!    `next_due` from the account's stored schedule;
//! 10. **release** the claim (a dropped guard releases in the background).
//!
//! ## Record states and transitions
//!
//! | from | event | to | pending | target touched again automatically? |
//! |---|---|---|---|---|
//! | `Ok` | pending written (step 6) | `InDoubt` | P | yes (settle) |
//! | `InDoubt` | verify(P) ok, commit | `Ok` | none | yes |
//! | `InDoubt` | apply failed, certainly not applied (`Rejected`, `BadCredentials`, `Denied`, `NoSuchAccount`, `AccountDisabled`, `PasswordExpired`) | `Ok`, failures + 1, `retry_at` | dropped | after the backoff |
//! | `InDoubt` | apply failed, maybe applied (`Unavailable`, `Other`), or verify failed to answer | `InDoubt`, failures + 1, `retry_at` | kept | after the backoff (settles first) |
//! | `InDoubt` | settle: target unchanged since our baseline | `Ok` (rolled back) | dropped | yes |
//! | `InDoubt` | settle: changed since baseline, P verifies, change not after the attempt's deadline | `Ok` (rolled forward) | committed | yes |
//! | `InDoubt` | settle: changed since baseline and P does not verify, or the change came after the deadline | `NeedsReconcile(ChangedElsewhere / Unknown)` | kept | **no** |
//! | any | the target acknowledged the write but refuses P | `NeedsReconcile(VerifyFailed)` | kept | **no** |
//! | any | `AccountLocked`; `BadCredentials` on a self-change | `NeedsReconcile(Locked / BadStoredPassword)` | per apply | **no** |
//! | any | failures reach [`max_failures`](crate::RotatorConfig::max_failures) | `NeedsReconcile(TooManyFailures)` | as is | **no** |
//! | `NeedsReconcile` | [`reconcile`](crate::Rotator::reconcile) succeeds (always a fresh password) or [`adopt`](crate::Rotator::adopt) | `Ok` | none | yes |
//! | `NeedsReconcile` | reconcile fails | `NeedsReconcile` | per apply | **no** |
//!
//! The backoff after a failed cycle is `backoff_base_ms * 2^(failures-1)`, capped at
//! `backoff_max_ms`; [`Record::is_due`](crate::Record::is_due) (and so `list_due`
//! and `Precondition::IfDue`) respects it; `Precondition::Always` (a manual
//! rotation) does not. A record that needs an operator is never due, never
//! verified, never lent; [`StateStore::list_needing_operator`](crate::StateStore::list_needing_operator)
//! lists them.
//!
//! ## Settling: the target-side baseline
//!
//! At every commit the protocol records the target's own "password last set"
//! (`pwdLastSet`, the SAM's `PasswordLastSet`) as `target_set_at`. Settling a
//! pending password compares the target's current value with that baseline, in
//! the target's clock only, so our clock's skew and the time since our last
//! rotation do not matter:
//!
//! - unchanged → the pending password never landed: **roll back**, without any
//!   logon attempt when the target's times have sub-second precision (AD's
//!   `pwdLastSet`); a target that keeps whole seconds (a `tdbsam` SAM) could have
//!   taken it within the same second as our last commit, so there the pending
//!   password is verified once first (verifies → roll forward);
//! - changed and the pending password verifies → **roll forward**, unless the
//!   change happened after the attempt's stored deadline (plus
//!   [`clock_skew_ms`](crate::RotatorConfig::clock_skew_ms)): our attempt never
//!   starts a target call after its deadline, so that change was someone else's and
//!   the pending password verifies only through the target's grace period for the
//!   previous password → `NeedsReconcile(ChangedElsewhere)`;
//! - changed and the pending password does not verify → someone else set a
//!   password we do not know → `NeedsReconcile`.
//!
//! Without a baseline (records enrolled without [`Rotator::enroll_verified`](crate::Rotator::enroll_verified) and
//! never rotated) the target's time is compared with the pending record's
//! creation time minus the clock-skew tolerance; a target that reports no time
//! gets the plain verification-based decision (pending verifies → forward; current
//! verifies → back; neither → `NeedsReconcile(Unknown)`).
//!
//! ## Reconcile
//!
//! [`Rotator::reconcile`](crate::Rotator::reconcile) always sets a *fresh*
//! password through the full protocol (a pending password the target refused is
//! never retried). [`ReconcileMethod::AdminReset`](crate::ReconcileMethod::AdminReset)
//! needs an admin connection; [`ReconcileMethod::SelfChange`](crate::ReconcileMethod::SelfChange)
//! serves accounts that can only change themselves (the AD bind account, a Windows
//! host rotated as itself): from a password the operator supplies, or else from
//! the stored pending or current password, whichever verifies (at most two logon
//! attempts, only on this explicit request). [`Rotator::adopt`](crate::Rotator::adopt)
//! records a password an operator set by hand, after verifying it.
//!
//! ## Conditional rotation, waiting, lazy readers
//!
//! `Precondition::IfVersion(v)` makes a rotation conditional on the version the
//! caller read: of 200 readers who all saw an expired password at version `v`, one
//! claims and rotates; the others wait for the claim, re-read, find a newer version
//! and get `Skipped` without touching the target.
//! [`Rotator::fresh_credentials`](crate::Rotator::fresh_credentials) packages this.
//! A waiter that times out gets [`StateError::InFlight`](crate::StateError::InFlight)
//! with the claim's expiry and whether the holder went silent (no renewal for two
//! thirds of a claim length: it probably died and its claim lapses at that time).
//!
//! ## Check-out
//!
//! | member state | how it gets there | lent? |
//! |---|---|---|
//! | `Returning` | added to a set; `begin_return` of its lease (check-in, expiry reaper, forced) | never |
//! | `Available` | `finish_return` after the check-in rotation committed (fenced on the member's generation) | yes, if its record is `Ok` with nothing pending |
//! | `Lent` | `take_lease` | no (until checked in) |
//!
//! [`Rotator::check_in`](crate::Rotator::check_in) = `begin_return` (fenced on the
//! lease id: a reaper holding an old, already checked-in lease gets
//! `NotFound(Lease)` and touches nothing) → rotate → `finish_return`. A failed
//! rotation leaves the member `Returning` with the record's backoff; retry with
//! [`Rotator::complete_return`](crate::Rotator::complete_return).
//!
//! ## Crash analysis
//!
//! A crash at any point leaves the process's claim to lapse; the next holder (or
//! `recover()` after the lapse) finds the state below. The unit tests drop the
//! rotation future at every await point, before and after each store and target
//! call, against a target that keeps accepting the previous password for an hour
//! and reports its own "password last set", also in a second rotation one second
//! after a first, and check after `recover()` that the stored current password is
//! the target's, nothing is pending and the record is `Ok`.
//!
//! | crash point | store | target | what `recover()` does |
//! |---|---|---|---|
//! | during or after claim | unchanged | old password | nothing pending: `Clean` |
//! | during write-pending (not committed) | unchanged | old | `Clean` |
//! | after write-pending committed | pending P | old, `pwdLastSet` = baseline | roll back (no logon if the target's clock has sub-second precision) |
//! | during apply, not applied | pending P | old | roll back |
//! | during apply, applied (reply lost) | pending P | P, `pwdLastSet` > baseline | P verifies → roll forward |
//! | during or after verify / last-set | pending P | P | roll forward |
//! | during commit, not committed | pending P | P | roll forward |
//! | after commit | current P | P | `Clean` |
//! | during release | current P | P | `Clean`; the claim lapses |
//! | inside `recover()` itself | as above | as above | the next `recover()` repeats the same decision (idempotent) |
//!
//! A holder that stalls beyond its claim is fenced out of the store (every write is
//! a CAS carrying the claim's token) and never starts a target call after its
//! attempt's deadline; a request already sent that reaches the target later is the
//! one residual race, bounded by the targets' timeouts (which must be shorter than
//! the margin).
//!
//! # Stores
//!
//! - [`MemoryStore`](crate::MemoryStore): one mutex over ordered maps; tests and
//!   ephemeral use.
//! - [`SqliteStore`](crate::SqliteStore), the embedded durable default. SQLite needs
//!   no server, is one file an operator can back up, and is safe when several
//!   processes on one host open the same file: WAL mode lets readers proceed while
//!   one writer commits; `BEGIN IMMEDIATE` takes the write lock at the start of each
//!   transaction (no lock upgrades, so no deadlock-prone `SQLITE_BUSY` mid-
//!   transaction), and a busy timeout makes other processes wait for it.
//!   `synchronous=FULL` fsyncs the WAL at every commit: a call returns only when
//!   its effect survives power loss. Durability costs one fsync per commit, so the
//!   store batches writes: concurrent operations are queued and one committer (the
//!   first caller that finds the connection free, inside `block_in_place`, or the
//!   store's background thread) runs all queued operations in one transaction (each
//!   in a savepoint), answering each caller after that commit (group commit). A
//!   panic inside an operation rolls back its savepoint and fails only that caller;
//!   a batch never starts inside a transaction left open. Reads run on read-only
//!   connections of their own: they see the last commit and never wait for the
//!   write lock (another process's long transaction does not delay them).
//!   Alternatives considered: sled / redb (single-process only, no multi-process
//!   locking), plain files with `flock` (reinventing transactions), LMDB (needs
//!   unsafe bindings and C).
//! - [`PgStore`](crate::PgStore): many instances sharing one database, through a
//!   `deadpool-postgres` pool. Every write is a transaction that sets `SET LOCAL
//!   synchronous_commit = on` and `SET LOCAL statement_timeout` (per transaction, so
//!   a pooling proxy cannot lose them); single-statement writes pipeline `BEGIN`,
//!   the settings, the statement and `COMMIT` in one round trip. Compare-and-swap
//!   is `UPDATE ... WHERE version = $n`; fenced writes share-lock the claim row in
//!   the same statement; claims are one `INSERT ... ON CONFLICT DO UPDATE ... WHERE
//!   expired`; leases are taken with `FOR UPDATE SKIP LOCKED` in a materialised CTE
//!   so concurrent borrowers do not queue on one row. Identifiers are `COLLATE "C"`
//!   (byte order, matching [`TargetId`](crate::TargetId)'s `Ord` and the cursors of
//!   the listing methods) and limited to 512 + 512 + 1024 bytes (1536 in total), well
//!   within a btree index entry. Concurrent commits from the pool's connections share
//!   WAL flushes (PostgreSQL's own group commit).
//!
//! Both SQL stores migrate their schema with versioned migrations (`refinery`,
//! history table `cw_schema_history`; PostgreSQL serialises concurrent first starts
//! with an advisory lock, SQLite retries the loser). Version 1 is the schema of the
//! first release, created with `IF NOT EXISTS`, so a store created before migrations
//! existed upgrades in place: records with a pending rotation become `InDoubt`
//! (deadline: created + 10 min), lent members `Lent`, free members `Available`, and
//! sets get default settings (ttl 1 h, max 24 h, check-in enforced). Upgraded
//! records keep their `next_due` but have no schedule until
//! [`Rotator::set_schedule`](crate::Rotator::set_schedule) gives them one.
//!
//! # Security considerations
//!
//! - **Stores see only ciphertext.** Passwords are sealed with XChaCha20-Poly1305
//!   under a 256-bit key before any store call; the 24-byte nonce is random per
//!   seal (no nonce bookkeeping, negligible collision risk). The associated data is
//!   the length-prefixed record identity (kind, scope, account) and the field name
//!   (`current`, `last` for every history entry, `pending`), so a ciphertext copied to another record or
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
//!   [`PgStore::connect`](crate::PgStore::connect) follows the URL's `sslmode`:
//!   `disable` is clear text (loopback or Unix sockets only); `prefer` (the default)
//!   and `require` use TLS with certificate and host name verification against the
//!   system roots and [`PgOptions::ca_pem`](crate::PgOptions::ca_pem) (stricter than
//!   libpq's `require`, which does not verify); `prefer` falls back to clear text
//!   only when the server offers no TLS, so use `require` over a network.
//!   [`PgStore::connect_with_tls`](crate::PgStore::connect_with_tls) takes any other
//!   connector. Connection strings (which may hold the database password) never
//!   appear in errors.
//! - **Lockout.** Settling a crash verifies at most one password when the target
//!   reports "password last set" (none when it did not change and reports
//!   sub-second times), at most two otherwise; a record that needs an operator is never verified again
//!   automatically; every failure kind backs off; a refused stored password on a
//!   self-change or a locked account stops automatic work at once.
//! - **Clocks.** Claims and leases compare callers' clocks; instances sharing a store
//!   need synchronised clocks, and claim/lease lengths should dwarf the skew.
//!   Settling a crash compares only target times with target times (the baseline).
//! - **Cached credentials.** [`Rotator::credentials`](crate::Rotator::credentials)
//!   keeps opened passwords in memory per (account, version) (zeroized when
//!   replaced or dropped); disable with
//!   [`RotatorConfig::cache_credentials`](crate::RotatorConfig::cache_credentials).
