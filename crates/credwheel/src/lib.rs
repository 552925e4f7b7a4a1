//! credwheel: password rotation for Windows hosts and Active Directory, and a
//! service-account check-out library.
//!
//! This is the facade. It re-exports the focused crates as modules and adds what
//! an embedding service or an operator needs on top of them: rotations described
//! as configuration ([`config`]), schedules with correct time-zone handling
//! ([`schedule`]), destinations for rotated secrets ([`sink`]), and the adapter that
//! lets a password policy feed the rotation protocol ([`PolicySource`]).
//!
//! | module | crate | what it owns |
//! |---|---|---|
//! | [`policy`] | `credwheel-policy` | password policies and uniform generation |
//! | [`dn`] | `credwheel-dn` | DN and filter escaping and parsing |
//! | [`state`] | `credwheel-state` | rotation state, sealing, the rotation protocol, stores |
//! | [`sam`] | `credwheel-sam` | Windows local accounts over SMB 3 / SAMR |
//! | [`ad`] | `credwheel-ad` | Active Directory over LDAPS |
//! | [`config`] | this crate | rotations, connections, store and keys as a TOML/JSON document |
//! | [`schedule`] | this crate | interval, cron-with-window and TTL schedules; next due time |
//! | [`sink`] | this crate | where mapped secrets go after a rotation |
//!
//! # Should I use this crate?
//!
//! Yes, unless you only need one piece (a password generator: `credwheel-policy`;
//! DN escaping: `credwheel-dn`). The facade is the crate with a stable, documented
//! path from a configuration file to running rotations.
//!
//! # Examples
//!
//! A configuration is parsed and validated as a whole; every problem names its
//! field, and policies are built (and proven satisfiable) at load time:
//!
//! ```
//! use credwheel::Config;
//!
//! let config = Config::from_toml_str(r#"
//!     [key_ring]
//!     active = "k1"
//!     keys = [{ id = "k1", env = "CREDWHEEL_KEY" }]
//!
//!     [connections.windows.app01]
//!     address = "127.0.0.1"
//!     port = 4445
//!     admin_user = "cwadmin"
//!     admin_password = { env = "APP01_ADMIN_PASSWORD" }
//!
//!     [[rotations]]
//!     name = "backup-agent"
//!     target = { windows = { host = "app01", user = "cwlocal1" } }
//!     policy = { infisical = { length = 32, required = { digits = 2 } } }
//!     secrets = { username = "BACKUP_USER", password = "BACKUP_PASSWORD" }
//!     schedule = { interval_days = 30, rotate_at = "02:30", time_zone = "Europe/Paris" }
//! "#)?;
//! let rotation = config.rotation("backup-agent").expect("defined above");
//! assert_eq!(rotation.policy.length(), 32);
//! assert_eq!(rotation.target.describe(), "windows:app01/cwlocal1");
//!
//! // The same document with a mistake is refused, naming the field.
//! let bad = r#"
//!     [key_ring]
//!     active = "k1"
//!     keys = [{ id = "k1", env = "CREDWHEEL_KEY" }]
//!     [[rotations]]
//!     name = "x"
//!     target = { windows = { host = "app01", user = "cwlocal1" } }
//!     secrets = { username = "U", password = "P" }
//!     schedule = { interval_days = 0 }
//! "#;
//! let err = Config::from_toml_str(bad).unwrap_err();
//! assert!(err.names("rotations[0].schedule.interval_days"));
//! assert!(err.names("rotations[0].target.windows.host")); // no host "app01" here
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! When is a rotation next due? A pure function of the schedule, the last
//! scheduled slot (manual rotations do not move it) and the time:
//!
//! ```
//! use std::time::Duration;
//! use credwheel::schedule::{format_instant, parse_instant, NextDue, Schedule};
//!
//! // Vault 2.x style: Saturdays 03:00 UTC, a one-hour window.
//! let weekly = Schedule::cron("0 3 * * SAT", Duration::from_secs(3600), "UTC")?;
//! let last_slot = parse_instant("2026-01-03T03:00:00Z")?;
//! // The process was down during the next slot's whole window: it is skipped.
//! let now = parse_instant("2026-01-10T04:30:00Z")?;
//! let NextDue::Scheduled(due) = weekly.next_due(last_slot, None, now) else { unreachable!() };
//! assert_eq!(format_instant(due.slot), "2026-01-17T03:00:00Z");
//! assert_eq!(due.not_after.map(format_instant).as_deref(), Some("2026-01-17T04:00:00Z"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Running it: build the service from the configuration (store, key ring,
//! connections, rotations), then start the scheduler or serve reads and check-outs:
//!
//! ```no_run
//! use std::time::Duration;
//! use credwheel::{Config, Credwheel};
//! use secrecy::ExposeSecret;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_path("/etc/credwheel/credwheel.toml")?;
//! let cw = Credwheel::builder(config).build().await?;
//! let scheduler = cw.start(); // due rotations, retries, heartbeats, lease expiry
//!
//! // Vault's `creds/ROLE`: rotated first if its TTL has passed.
//! let creds = cw.creds("web-db").await?;
//! let _password: &str = creds.current.expose_secret();
//!
//! // A check-out cycle; check-in rotates the password.
//! let lent = cw.check_out("ops", "alice", None).await?;
//! cw.check_in("ops", "alice", Some(&lent.account), false).await?;
//!
//! for s in cw.status().await? {
//!     println!("{} {} {:?}", s.name, s.state.as_str(), s.last_error);
//! }
//! scheduler.shutdown(Duration::from_secs(30)).await;
//! # Ok(())
//! # }
//! ```
//!
//! # Security considerations
//!
//! - Passwords travel as [`secrecy::SecretString`]; no error, log line or `Debug`
//!   output of this crate contains one (the configuration's initial passwords
//!   included). Only an explicit read (`creds` in the operator CLI,
//!   [`sink::StoreSink::read`]) returns a value.
//! - Connection passwords and keys are never inline in a configuration: they are
//!   references to environment variables or files, read when the service starts.
//! - Parsing a configuration never panics; its errors name fields, not values.
//! - Settings that weaken security carry `danger` in their names
//!   (`danger_accept_invalid_certs`).

#![deny(missing_docs)]

pub use credwheel_ad as ad;
pub use credwheel_dn as dn;
pub use credwheel_policy as policy;
pub use credwheel_sam as sam;
pub use credwheel_state as state;

pub mod config;
mod error;
pub mod schedule;
mod service;
pub mod sink;
mod source;

pub use config::{Config, ConfigError};
pub use error::Error;
pub use schedule::{NextDue, Schedule};
pub use service::{
    Builder, CheckedOut, Creds, Credwheel, LibraryMember, LibraryStatus, Outcome, PolicyCheck,
    PolicyVerdict, Renewed, RotationState, RotationStatus, RunHandle, TickReport, load_key_ring,
};
pub use sink::{FileSink, SecretSink, StoreSink};
pub use source::PolicySource;
