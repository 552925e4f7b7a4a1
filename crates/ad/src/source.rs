//! The password source the roles and the library hand to the rotation protocol.
//!
//! `credwheel-state` knows no password policy, so this crate adapts its
//! `credwheel_policy::Policy` values itself (the facade has the public adapter,
//! `credwheel::PolicySource`).

use credwheel_policy::Policy;
use credwheel_state::{PasswordSource, TargetId};
use secrecy::SecretString;

/// Generates each new password from a borrowed policy with the thread-local CSPRNG.
pub(crate) struct PolicyGen<'a>(pub(crate) &'a Policy);

impl PasswordSource for PolicyGen<'_> {
    fn generate(&self, _account: &TargetId) -> credwheel_state::Result<SecretString> {
        Ok(self.0.generate())
    }
}
