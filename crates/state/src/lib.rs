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
//! use std::sync::Arc;
//! use credwheel_state::{
//!     Key, MemoryStore, PasswordSource, RotationMethod, RotationOutcome, Rotator,
//!     RotatorConfig, Sealer, StateStore, TargetId,
//! };
//! use credwheel_state::testing::FakeTarget;
//! use secrecy::{ExposeSecret, SecretString};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
//! let sealer = Arc::new(Sealer::new("k1", Key::generate()?)?);
//! let rotator = Rotator::new(store, sealer, RotatorConfig::with_holder("doc"));
//!
//! let id = TargetId::new("ad", "example.com", "svc-web")?;
//! let target = FakeTarget::new(&id, "Initial-Pa55word");
//! rotator.enroll(&id, &SecretString::from("Initial-Pa55word"), None).await?;
//!
//! let source = |_: &TargetId| Ok(SecretString::from("Next-Pa55word-1"));
//! let outcome = rotator.rotate(&target, &id, &source, RotationMethod::AdminReset).await?;
//! assert!(matches!(outcome, RotationOutcome::Rotated { .. }));
//! let (current, _version) = rotator.current_password(&id).await?;
//! assert_eq!(current.expose_secret(), "Next-Pa55word-1");
//! assert!(target.accepts(&current));
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! See [`manual`] for the design rationale (why [`RotationTarget`] fits both LDAP and
//! SAMR), the protocol with its crash-analysis table, and the choice of stores.
//! In short: [`Rotator::rotate`] claims the account (fencing token), writes the new
//! password *sealed and durable* as a pending record before touching the target,
//! applies and verifies it, then commits with a compare-and-swap; a crash at any
//! point leaves a state that [`Rotator::recover`] resolves by asking the target
//! which password it has, or reports as needing an admin reset.
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
//! - [`PgStore::connect`] has no TLS: use it on loopback or Unix sockets, otherwise
//!   [`PgStore::connect_with_tls`].
//!
//! Details in [`manual`].

#![deny(missing_docs)]

mod error;
pub mod manual;
mod memory;
mod postgres;
mod protocol;
mod seal;
mod sqlite;
mod store;
pub mod testing;
mod types;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

#[cfg(test)]
mod tests;

pub use error::{ConflictReason, Result, StateError, TargetError, TargetErrorKind};
pub use memory::MemoryStore;
pub use postgres::{PgOptions, PgStore};
pub use protocol::{
    PasswordSource, RecoverOutcome, RotationMethod, RotationOutcome, RotationTarget, Rotator,
    RotatorConfig,
};
pub use seal::{Field, Key, Sealer};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use store::StateStore;
pub use types::{
    Claim, Clock, Fence, Lease, LeaseTerms, MAX_ID_PART, ManualClock, Millis, Pending, Record,
    Sealed, SetMember, SystemClock, TargetId,
};
