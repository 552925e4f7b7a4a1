//! Active Directory service-account password rotation over LDAPS.
//!
//! **Owns:** the LDAP connection configuration (one or more `ldaps://` URLs with
//! failover, or StartTLS; CA certificates; an explicit, dangerous opt-out of
//! verification), pooled connections, finding accounts, admin resets and self
//! changes of `unicodePwd`, verification by binding as the account, the domain's
//! password rules, health checks, unlock, and [`AdTarget`], the
//! `credwheel_state::RotationTarget` that runs every rotation through the
//! crash-safe protocol of `credwheel-state`.
//!
//! **Does not own:** DN and filter escaping (`credwheel-dn`: every DN and filter
//! this crate sends is built there), password generation (`credwheel-policy`),
//! state (`credwheel-state`) or local Windows accounts (`credwheel-sam`).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use credwheel_ad::{AccountRef, AdClient, AdTarget, Config};
//! use credwheel_state::{
//!     Key, MemoryStore, RotateOptions, RotationMethod, Rotator, RotatorConfig, Schedule, Sealer,
//! };
//! use secrecy::SecretString;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder()
//!     .url("ldaps://dc1.example.com")
//!     .url("ldaps://dc2.example.com")
//!     .bind("CN=svc-rotator,OU=Service,DC=example,DC=com", SecretString::from("bind password"))
//!     .base_dn("DC=example,DC=com")
//!     .ca_pem_file("/etc/credwheel/ad-ca.pem")
//!     .build()?;
//! let client = AdClient::new(config)?;
//! let policy = credwheel_policy::AdComplexity::new(24).build()?;
//! client.validate_policy(&policy, None).await?; // a policy AD would refuse fails here
//!
//! let target = AdTarget::new(client);
//! let id = target.id(&AccountRef::upn("svc-web@example.com"))?;
//! let rotator = Rotator::new(
//!     Arc::new(MemoryStore::new()),
//!     Arc::new(Sealer::new("k1", Key::generate()?)?),
//!     RotatorConfig::with_holder("example"),
//! );
//! rotator.enroll(&id, &SecretString::from("known current password"), Schedule::None).await?;
//! rotator
//!     .rotate(
//!         &target,
//!         &id,
//!         &|_: &credwheel_state::TargetId| Ok(policy.generate()),
//!         RotateOptions::new(RotationMethod::AdminReset),
//!     )
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Roles and the check-out library
//!
//! [`Roles`] serves Vault AD engine semantics over any `credwheel_state` store:
//! `creds(role)` returns user name, current and last password, when it was set and
//! when it expires; a read past the TTL rotates first, exactly once however many
//! readers (in one process or many sharing the store); roles are stored in the
//! store's configuration documents; import with a known password or rotate at
//! import (the default); self-managed roles change their own password;
//! out-of-band changes (AD's `pwdLastSet` later than our baseline plus 5 s) are
//! healed; [`Roles::rotate_role`] and [`Roles::rotate_root`].
//!
//! [`Library`] lends service accounts from sets (Vault's library): at most one
//! borrower per account, a rotation at every check-in, expiry check-in by a
//! reaper task and lazily, check-in enforcement, forced check-in, and a typed
//! [`ErrorKind::NoAccountsAvailable`]. A check-in whose rotation fails leaves the
//! account unavailable, never lent with its old password.
//!
//! ```no_run
//! use std::sync::Arc;
//! use credwheel_ad::{AccountRef, AdClient, AdTarget, Config, RoleSpec, Roles, RolesConfig};
//! use credwheel_state::{Key, Rotator, RotatorConfig, Sealer, SqliteStore};
//! use secrecy::{ExposeSecret, SecretString};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let config = Config::builder().url("ldaps://dc1").bind("CN=a,DC=example,DC=com", SecretString::from("x")).base_dn("DC=example,DC=com").build()?;
//! let target = Arc::new(AdTarget::new(AdClient::new(config)?));
//! let store = Arc::new(SqliteStore::open("/var/lib/credwheel/state.db", Default::default())?);
//! let rotator = Arc::new(Rotator::new(
//!     store,
//!     Arc::new(Sealer::new("k1", Key::from_file("/etc/credwheel/key")?)?),
//!     RotatorConfig::default(),
//! ));
//! let roles = Roles::open(target, rotator, RolesConfig::default()).await?;
//! roles
//!     .create_role(RoleSpec::new("web", AccountRef::upn("svc-web@example.com"), "10h")?)
//!     .await?;
//! let creds = roles.creds("web").await?; // rotates first once the 10 h are over
//! println!("{} until {:?}", creds.username, creds.expires_at);
//! # let _ = creds.current.expose_secret();
//! # Ok(())
//! # }
//! ```
//!
//! # Connections
//!
//! - **TLS is rustls** (ring provider) through `ldap3`'s `tls-rustls-ring`
//!   feature. It verifies the lab's and real domain controllers' certificates
//!   (it needs a subjectAltName matching the host, which current AD certificate
//!   templates have), supports TLS 1.2 and 1.3, client certificates, and needs no
//!   system OpenSSL. TLS 1.0/1.1-only domain controllers cannot be reached; that is
//!   intended. Certificate verification is always on unless
//!   [`Builder::danger_disable_certificate_verification`] is called.
//! - `ldap://` URLs always use StartTLS. Plain LDAP needs
//!   [`Builder::danger_allow_plaintext_ldap`], and even then no password operation
//!   is sent over it: [`ErrorKind::EncryptionRequired`] comes back before anything
//!   reaches the server.
//! - **Pooling**: per domain controller, one `deadpool` pool bound as the bind
//!   account and one for binding as managed accounts, each bounded by
//!   [`Builder::pool_size`]. Broken connections are replaced transparently.
//! - **Failover**: URLs are tried in order; a controller that cannot be reached
//!   (connect, TLS, timeout, busy) is skipped. [`AdTarget`] pins each account to one
//!   controller for all steps of a rotation.
//!
//! # Errors
//!
//! One [`Error`] type with an [`ErrorKind`], the LDAP result code and AD's extended
//! error code (`52e`, `775`, `0000052D`, ...) as data, and an actionable message:
//! "password changes need an encrypted connection" (53), "the new password
//! violates the domain's policy: too young / too short / history" (19), "the bind
//! account may not reset this account" (50), "no such account" (32), "account
//! locked out" (775), ... [`Error::target_kind`] classifies each for the rotation
//! protocol: a kind that says "certainly not applied" only for refusals.
//!
//! # Observability
//!
//! Every operation runs in a `tracing` span (`ad.*`) whose fields are account
//! names, DNs and controller URLs, never a password. Counters and a histogram go
//! through the `metrics` facade: `credwheel_ad_operations_total{op,outcome}`,
//! `credwheel_ad_failures_total{op,kind}`, `credwheel_ad_operation_ms{op}`,
//! `credwheel_ad_target_calls_total{op,outcome}`, `credwheel_ad_password_changes_total{method}`,
//! `credwheel_ad_password_change_failures_total{method,kind}`,
//! `credwheel_ad_checkouts_total{set}`, `credwheel_ad_checkout_unavailable_total{set}`,
//! `credwheel_ad_checkins_total{set,outcome}`, `credwheel_ad_out_of_band_changes_total`,
//! `credwheel_ad_connections_opened_total`, `credwheel_ad_failovers_total`.
//!
//! # Security considerations
//!
//! - Passwords travel as [`secrecy::SecretString`]; the `unicodePwd` bytes this
//!   crate builds are zeroized on drop. `ldap3` copies them into its own BER
//!   buffers and `simple_bind` takes a `&str`; those copies are not zeroized (a
//!   limitation of `ldap3`).
//! - No error, `Debug` output, span or metric carries a password. The server's
//!   diagnostic text is kept in errors; directories do not put passwords there.
//! - Filters and DNs are built only with `credwheel-dn`, so account names cannot
//!   inject into a filter. An explicit DN is used as given, never re-resolved.
//! - An empty password is never sent in a bind (LDAP would treat it as an
//!   anonymous bind that "succeeds").
//! - What can panic: nothing in this crate on any input or server answer; `ldap3`
//!   itself panics if a server sends a search entry that is not valid BER
//!   (`SearchEntry::construct`).
//! - Verification binds count as logons: a wrong password adds to the account's
//!   bad-password count and can lock it out.
#![deny(missing_docs)]

mod account;
mod client;
mod config;
mod domain_policy;
mod error;
mod library;
mod pool;
mod roles;
mod source;
mod target;

pub use account::{Account, AccountRef, filetime_to_unix_ms};
pub use client::{AdClient, Health, HealthStatus};
pub use config::{Builder, Config, DcUrl, TlsVersion, Transport};
pub use domain_policy::{AD_MAX_PASSWORD_LENGTH, PasswordRules, RulesSource};
pub use error::{Error, ErrorKind, PolicyViolation, Result};
pub use library::{AccountStatus, CheckedIn, CheckedOut, Library, SET_POLICY_KIND, SetOptions};
pub use roles::{Import, MAX_ROLE_NAME, ROLE_KIND, Role, RoleCreds, RoleSpec, Roles, RolesConfig};
pub use target::{AdTarget, TARGET_KIND};
