//! Windows local-account password rotation over SMB 3 and SAMR.
//!
//! **Owns:** an encrypted SMB 3 session to a Windows member or standalone host (built
//! on the `smb` crate), DCE/RPC over the `\PIPE\samr` named pipe, and the SAMR calls
//! that reset a local account's password as an administrator
//! (SamrSetInformationUser2) or change it as the account itself
//! (SamrUnicodeChangePasswordUser4/2), plus verifying the new credentials.
//!
//! **Does not own:** domain controllers (use `credwheel-ad`), storing passwords
//! (`credwheel-state`) or generating them (`credwheel-policy`).

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
pub use error::{Call, Error, NdrError, Result};
pub use status::NtStatus;
pub use target::{SamTarget, check_policy_against_host};
#[cfg(test)]
mod live_probe;
