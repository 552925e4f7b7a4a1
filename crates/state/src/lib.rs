//! Rotation state for credwheel.
//!
//! **Owns:** the async store trait for everything that must survive a restart
//! (current and last password, versions, schedules, claims, leases), sealing of
//! secrets before they reach any store, the crash-safe rotation protocol, and the
//! in-memory, SQLite and PostgreSQL stores.
//!
//! **Does not own:** the wire protocols that change passwords (`credwheel-ad`,
//! `credwheel-sam` implement this crate's target trait) or password generation
//! (`credwheel-policy`).
