//! Rotation state for credwheel: the store trait, sealed secrets, the crash-safe
//! rotation protocol, and in-memory, SQLite and PostgreSQL stores.
//!
//! **Owns:** everything that must survive a restart (current and last password,
//! versions, schedules, rotation claims, check-out leases), sealing of secrets before
//! they reach any store, and the one rotation protocol every target uses.
//! **Does not own:** the wire protocols (`credwheel-ad` and `credwheel-sam` implement
//! [`RotationTarget`]) or password generation (`credwheel-policy`; any
//! [`PasswordSource`] works).
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "testing")]
//! # {
//! use std::sync::Arc;
//! use credwheel_state::{
//!     Key, MemoryStore, RotateOptions, RotationMethod, RotationOutcome, Rotator,
//!     RotatorConfig, Schedule, Sealer, StateStore, TargetId,
//! };
//! use credwheel_state::testing::FakeTarget;
//! use secrecy::{ExposeSecret, SecretString};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
//! let sealer = Arc::new(Sealer::new("k1", Key::generate()?)?);
//! let rotator = Rotator::new(store, sealer, RotatorConfig::with_holder("doc"));
//!
//! let id = TargetId::new("ad", "example.com", "svc-web")?;
//! let target = FakeTarget::new(&id, "Initial-Pa55word");
//! let day = 86_400_000;
//! rotator
//!     .enroll(&id, &SecretString::from("Initial-Pa55word"), Schedule::Every { interval_ms: 30 * day })
//!     .await?;
//!
//! let source = |_: &TargetId| Ok(SecretString::from("Next-Pa55word-1"));
//! let outcome = rotator
//!     .rotate(&target, &id, &source, RotateOptions::new(RotationMethod::AdminReset))
//!     .await?;
//! assert!(matches!(outcome, RotationOutcome::Rotated { .. }));
//! let creds = rotator.credentials(&id).await?;
//! assert_eq!(creds.current().expose_secret(), "Next-Pa55word-1");
//! assert_eq!(creds.last().map(|p| p.expose_secret()), Some("Initial-Pa55word"));
//! assert!(target.accepts(creds.current()));
//! assert!(creds.due_at().is_some(), "the account's schedule survived the rotation");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # API for the other layers
//!
//! - **Records and health.** A [`Record`] carries current, history (last *N*
//!   passwords, [`RotatorConfig::history`]), pending, the account's stored
//!   [`Schedule`] with `next_due`, a [`RecordState`] (`Ok | InDoubt |
//!   NeedsReconcile { since, why }`), a failure count with `retry_at` (exponential,
//!   capped backoff after *every* failure kind) and `target_set_at`, the target's own
//!   "password last set" observed at our last commit. After
//!   [`RotatorConfig::max_failures`] failed cycles (or at once for a locked account
//!   or a refused stored password) the record needs an operator: nothing touches the
//!   target again until [`Rotator::reconcile`] or [`Rotator::adopt`];
//!   [`StateStore::list_needing_operator`] lists them.
//! - **Schedules** belong to the account ([`Rotator::enroll`],
//!   [`Rotator::set_schedule`]); a rotation only recomputes `next_due` from it
//!   (or keeps a future one with [`RotateOptions::keep_anchor`]).
//!   [`Schedule::External`] rules are computed by the embedder's [`NextDue`]
//!   ([`Rotator::with_next_due`]).
//! - **Rotation:** [`Rotator::rotate`] with [`RotateOptions`]: method, a
//!   [`Precondition`] (`Always | IfVersion(v) | IfDue(now) | UnlessBackingOff(now)`),
//!   a bounded `wait` for a rotation in flight (then [`StateError::InFlight`] says
//!   when the holder's claim lapses and whether the holder went silent). A waiter
//!   polls with backoff (10 ms doubling to 500 ms) and is woken early when the
//!   claim is released ([`StateStore::wait_for_release`]: in-process for every
//!   store here, across processes on PostgreSQL through `LISTEN`/`NOTIFY`). Outcomes:
//!   [`RotationOutcome`] `Rotated | Skipped { version, reason } | Failed { error,
//!   in_doubt, retry_at } | NeedsReconcile { why }`. [`Rotator::claim`] +
//!   [`Rotator::rotate_claimed`] run further steps under the same claim; a dropped
//!   [`ClaimGuard`] releases in the background.
//! - **Reading:** [`Rotator::credentials`] (one record read; cached per version),
//!   [`Rotator::fresh_credentials`] (lazy TTL rotation: of many readers of an
//!   expired password exactly one rotates), [`Rotator::in_flight`].
//! - **Check-out:** sets with stored, versioned [`SetConfig`]
//!   ([`StateStore::put_set`], `get_set`, `list_sets`, `delete_set`); members are
//!   [`MemberState`] `Available | Lent | Returning`; [`Rotator::check_out`],
//!   [`Rotator::renew`], [`Rotator::check_in`] (Lent → Returning fenced on the lease,
//!   rotate, Returning → Available fenced on the member generation; `None` borrower
//!   = forced), [`Rotator::complete_return`] for new members and failed check-ins;
//!   [`StateStore::get_lease`], [`StateStore::list_expired_leases`].
//! - **Stored configuration:** versioned documents under (kind, name)
//!   ([`StateStore::put_config`], `get_config`, `list_configs`, `delete_config`),
//!   e.g. AD roles and rotation definitions, as JSON bytes.
//! - **Paging:** `list_due`, `list_records`, `list_needing_operator`, `list_sets`
//!   and `list_configs` take a cursor (exclusive) and a limit, in byte order.
//! - **Targets:** [`RotationTarget`] keeps its four methods.
//!
//! # Design
//!
//! See [`manual`] for the design rationale (why [`RotationTarget`] fits both LDAP and
//! SAMR), the protocol with its crash-analysis table, and the choice of stores.
//! In short: [`Rotator::rotate`] claims the account (fencing token), writes the new
//! password *sealed and durable* as a pending record before touching the target,
//! applies and verifies it, then commits with a compare-and-swap; a crash at any
//! point leaves a state that [`Rotator::recover`] (or the next rotation) resolves
//! by comparing the target's "password last set" with the baseline recorded at
//! the last commit and verifying the pending password, or marks as needing an
//! operator ([`RecordState::NeedsReconcile`]), after which nothing touches the
//! target until [`Rotator::reconcile`] or [`Rotator::adopt`].
//!
//! | store | use |
//! |---|---|
//! | [`MemoryStore`] | tests, ephemeral use |
//! | [`SqliteStore`] | embedded durable default: one file, several processes on one host, group commit |
//! | [`PgStore`] | many instances sharing one PostgreSQL database |
//!
//! # Crate features
//!
//! - `conformance`: exposes `credwheel_state::conformance`, the test suite every
//!   [`StateStore`] must pass, so third-party stores can run it. Additive.
//! - `testing`: exposes `credwheel_state::testing`: a fake target and a
//!   crash-injecting store wrapper. Additive.
//!
//! # Security considerations
//!
//! - Stores only ever see ciphertext: passwords are sealed with XChaCha20-Poly1305,
//!   the record identity and field name bound as associated data.
//! - Keys are zeroized on drop and never printed; no error or `Debug` output carries
//!   a password, key or ciphertext.
//! - A target write happens only after the new password is durable, so a crash never
//!   loses the password the target has.
//! - Metadata (account names, times, borrowers) is stored in clear; an attacker who
//!   can write to the store can roll a record back or delete it (availability), not
//!   read a password.
//! - [`PgStore::connect`] uses TLS with certificate verification unless the URL
//!   says `sslmode=disable` (see [`PgStore`]).
//!
//! Details in [`manual`].

#![deny(missing_docs)]

mod codec;
mod error;
pub mod manual;
mod memory;
mod notes;
mod postgres;
mod protocol;
mod seal;
mod sqlite;
mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod types;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

#[cfg(test)]
mod tests;

pub use error::{ConflictReason, Missing, Result, StateError, TargetError, TargetErrorKind};
pub use memory::MemoryStore;
pub use postgres::{PgOptions, PgStore};
pub use protocol::{
    CheckIn, ClaimGuard, Credentials, InFlight, NextDue, PasswordSource, Precondition,
    ReconcileMethod, RecoverOutcome, RotateOptions, RotationMethod, RotationOutcome,
    RotationTarget, Rotator, RotatorConfig, SkipReason,
};
pub use seal::{Field, Key, Sealer};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use store::StateStore;
pub use types::{
    Claim, Clock, ConfigDoc, Fence, Lease, LeaseTerms, MAX_ACCOUNT, MAX_CONFIG_BODY, MAX_ID_PART,
    MAX_ID_TOTAL, MAX_NAME, ManualClock, MemberState, Millis, Pending, ReconcileKind, Record,
    RecordState, Schedule, Sealed, SetConfig, SetInfo, SetMember, SystemClock, TargetId, Why,
};
