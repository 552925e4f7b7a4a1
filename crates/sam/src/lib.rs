//! Windows local-account password rotation over SMB 3 and SAMR.
//!
//! **Owns:** an encrypted SMB 3 session to a Windows member or standalone host (built
//! on the `smb` crate), DCE/RPC over the `\PIPE\samr` named pipe, and the SAMR calls
//! that reset a local account's password as an administrator
//! (SamrSetInformationUser2) or change it as the account itself
//! (SamrUnicodeChangePasswordUser2), plus verifying the new credentials.
//!
//! **Does not own:** domain controllers (use `credwheel-ad`), storing passwords
//! (`credwheel-state`) or generating them (`credwheel-policy`).
//!
//! This crate is filled in by a later issue.

#[allow(dead_code)] // used by the rotation target
mod crypto;
#[allow(dead_code)] // used by the rotation target
mod error;
#[allow(dead_code)] // used by the rotation target
mod ndr;
#[allow(dead_code)] // used by the rotation target
mod samr;
#[allow(dead_code)] // used by the rotation target
mod status;

#[doc(hidden)]
pub mod internal;

pub use error::{Call, Error, NdrError, Result};
pub use status::NtStatus;
