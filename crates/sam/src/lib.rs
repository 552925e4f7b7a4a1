//! Windows local-account password rotation over SMB 3 and SAMR, in pure Rust.
//!
//! **Owns:** an encrypted SMB 3 session to a Windows member or standalone host (built
//! on the `smb` crate), DCE/RPC over the `\PIPE\samr` named pipe, and the SAMR calls
//! that reset a local account's password as an administrator
//! (SamrSetInformationUser2) or change it as the account itself
//! (SamrUnicodeChangePasswordUser4/2), plus verifying the new credentials.
//!
//! **Does not own:** domain controllers (use `credwheel-ad`), storing passwords
//! (`credwheel-state`) or generating them (`credwheel-policy`).
//!
//! # Should I use this crate?
//!
//! Use it through [`SamTarget`], a [`credwheel_state::RotationTarget`]: the state
//! crate's `Rotator` then makes every rotation crash-safe (the new password is stored
//! before the host sees it). No external process (`rpcclient`, `smbclient`) is
//! spawned and no password ever reaches a command line.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use credwheel_sam::{SamConfig, SamTarget};
//! use credwheel_state::{Key, MemoryStore, RotateOptions, Rotator, RotatorConfig, Schedule, Sealer};
//! use secrecy::SecretString;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let target = SamTarget::new(
//!     SamConfig::builder("host.example.com")
//!         .admin(".\\Administrator", SecretString::from("admin password".to_owned()))
//!         .build()?,
//! );
//! // Fail early if the host would refuse what the policy generates.
//! let policy = credwheel_policy::Policy::vault_default();
//! target.check_policy(&policy).await?;
//!
//! let sealer = Sealer::new("k1", Key::generate()?)?;
//! let rotator = Rotator::new(Arc::new(MemoryStore::new()), Arc::new(sealer), RotatorConfig::default());
//! let id = target.target_id("svc-backup")?;
//! rotator
//!     .enroll(&id, &SecretString::from("current password".to_owned()), Schedule::None)
//!     .await?;
//! rotator
//!     .rotate(
//!         &target,
//!         &id,
//!         &|_: &credwheel_state::TargetId| Ok(policy.generate()),
//!         RotateOptions::new(target.rotation_method()),
//!     )
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Methods
//!
//! - **Login as root** ([`LoginMethod::AsRoot`], the default): an administrator's
//!   session resets the account with SamrSetInformationUser2 at level 31 (AES,
//!   `SAMPR_USER_INTERNAL7_INFORMATION`). Only when the host answers that it does not
//!   know level 31 does it fall back to the RC4 levels 25, then 23;
//!   [`PasswordEncryption::AesOnly`] forbids that. The reset always clears "must
//!   change password at next logon". Administrator sessions are kept for reuse (bounded,
//!   [`SamConfigBuilder::max_idle_sessions`]) and replaced transparently when dropped.
//! - **Login as target** ([`LoginMethod::AsTarget`]): the account's own session changes
//!   its password with SamrUnicodeChangePasswordUser4 (opnum 73, AES), falling back to
//!   SamrUnicodeChangePasswordUser2 (opnum 55) when the host does not serve 73. No
//!   administrator is needed. Where the host refuses remote changes, a reset through
//!   the account's own session is tried (it works if the account is an administrator);
//!   otherwise the error is [`Error::ChangeRefusedByHost`], naming the host policy and
//!   suggesting login as root.
//!
//! What works where. Only Samba is tested here (the lab); the Windows rows come from
//! Microsoft's "What's new in Windows Server 2025" (SAM RPC password changes) and the
//! PassWolf project's published live tests:
//!
//! | host | admin reset: level 31 (AES) / 25, 23 (RC4) | self change: opnum 73 (AES) | self change: opnum 55 (RC4) |
//! |---|---|---|---|
//! | Samba 4.17 and later, standalone or member | yes / yes (tested) | yes (tested) | yes (tested) |
//! | Windows Server 2016-2022, member or standalone | 31 where the host knows it, else the RC4 fallback / yes | where served, else the fallback to 55 | yes |
//! | Windows Server 2025 member host | yes / yes | refused by default (GPO "Configure SAM change password RPC methods policy") | refused |
//! | any domain controller | refused by this crate ([`Error::DomainController`]) | refused by this crate | refused by this crate |
//!
//! On a Server 2025 member host login as target therefore only works for an account
//! that is a local administrator (the reset through its own session), which is what
//! the Infisical "login as target" does with `rpcclient setuserinfo2 ... 23`.
//!
//! Before changing anything, every operation checks that the host is not a domain
//! controller (its SAM names the domain from the NTLM challenge rather than the
//! computer), that the account name follows the Windows rules ([`NameRules`]), that
//! the target is not the administrator used to log in, that the account is neither
//! disabled nor locked out, and that the new password meets the host's password policy
//! (minimum length, complexity), read with SamrQueryInformationDomain. A password the
//! host would reject is [`Error::HostPolicy`] (a rejection that certainly changed
//! nothing).
//!
//! # Security considerations
//!
//! - SMB 3 encryption is required by default; the only way to relax it is the
//!   explicitly named [`SamConfigBuilder::danger_allow_signing_only`].
//! - Passwords are [`secrecy::SecretString`]s; keys and password buffers are zeroized
//!   and print as `..`. No error, log line or `Debug` output contains a password, a
//!   hash, a key or an encrypted buffer.
//! - The admin reset encrypts the password buffer with the SMB 3 *application key*.
//!   The `smb` crate does not expose it, so this crate recomputes it from the observed
//!   NTLM logon and the password it logged on with (see the `session_key` module,
//!   the one place to change once the crate offers an accessor). This is NTLM only,
//!   which local accounts always use.
//! - Everything a host sends (SMB frames during setup, DCE/RPC PDUs, NDR) is parsed
//!   with bounds checks: malformed input is an [`Error`], never a panic (fuzzed by
//!   `fuzz/fuzz_targets/sam_rpc_decode.rs`).
//! - Every call is bounded: TCP connect ([`SamConfigBuilder::connect_timeout`]) and
//!   each SMB or RPC request ([`SamConfigBuilder::request_timeout`]).
//! - Errors are classified for the rotation protocol honestly: only refusals that
//!   certainly changed nothing map to kinds for which
//!   `TargetErrorKind::certainly_not_applied` holds; timeouts and dropped connections
//!   are `Unavailable`.

mod api;
mod client;
mod config;
#[allow(dead_code)] // used by the rotation target
mod crypto;
#[allow(dead_code)] // used by the rotation target
mod error;
mod glue;
#[allow(dead_code)] // used by the rotation target
mod ndr;
mod rpc;
#[allow(dead_code)] // used by the rotation target
mod samr;
mod session_key;
#[allow(dead_code)] // used by the rotation target
mod status;
mod target;
mod transport;

pub use api::HostPasswordPolicy;
pub use config::{
    AccountName, ChangeCall, LoginMethod, NameRules, PasswordEncryption, SamConfig,
    SamConfigBuilder, TransportSecurity, check_user_name,
};
#[doc(hidden)]
pub mod internal;

pub use error::{Call, Error, NdrError, Result};
pub use status::NtStatus;
pub use target::{SamTarget, check_policy_against_host};
#[cfg(test)]
mod live_probe;
