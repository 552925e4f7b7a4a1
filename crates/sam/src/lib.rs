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
pub use error::{Call, Error, NdrError, Result};
pub use status::NtStatus;
pub use target::{SamTarget, check_policy_against_host};
#[cfg(test)]
mod live_probe;

/// Entry points for the fuzz targets in `fuzz/`; not part of the public API.
#[doc(hidden)]
pub mod fuzzing {
    /// Runs every DCE/RPC PDU decoder and every SAMR response decoder on `data`, and
    /// the NTLM and SMB frame parsers the session key is computed from. None may
    /// panic, whatever the bytes.
    pub fn decode_responses(data: &[u8]) {
        let call_id = data
            .get(12..16)
            .map_or(1, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let _ = crate::rpc::decode_response(data, call_id, 64);
        let _ = crate::rpc::decode_bind_answer(data, call_id);
        crate::glue::decode_every_response(data);
        let _ = crate::session_key::challenge_names(data);
        let _ = crate::session_key::ntlmv2_session_key(data, data, "fuzz");
        crate::transport::observe_for_fuzzing(data);
    }
}
