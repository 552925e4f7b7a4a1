//! Active Directory service-account password rotation over LDAPS.
//!
//! **Owns:** the LDAP connection configuration (one or more `ldaps://` URLs or
//! StartTLS, a CA certificate, an explicit and dangerous insecure-TLS opt-in),
//! roles that map names to service accounts, lazy rotation past a TTL, manual
//! rotation, and healing of out-of-band password changes, built on `ldap3`.
//!
//! **Does not own:** DN escaping (`credwheel-dn`), state (`credwheel-state`) or
//! local Windows accounts (`credwheel-sam`).
//!
//! This crate is filled in by a later issue.
