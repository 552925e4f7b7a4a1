//! The adapter between password policies and the rotation protocol.
//!
//! `credwheel-state` runs rotations with any [`PasswordSource`]; `credwheel-policy`
//! generates passwords. Neither crate knows the other: the facade, which depends on
//! both, joins them here, so the dependency graph stays one-directional
//! (policy ← facade → state).

use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;

use crate::policy::Policy;
use crate::state::{PasswordSource, TargetId};

/// A [`Policy`] as a [`PasswordSource`]: uniformly random passwords from the
/// operating system's CSPRNG (through `rand::rng()`).
///
/// ```
/// use credwheel::PolicySource;
/// use credwheel::policy::Policy;
/// use credwheel::state::{PasswordSource, TargetId};
/// use secrecy::ExposeSecret;
///
/// let source = PolicySource::new(Policy::vault_default());
/// let id = TargetId::new("sam", "winhost", "cwlocal1")?;
/// let password = source.generate(&id)?;
/// assert!(source.policy().is_valid(password.expose_secret()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PolicySource {
    policy: Arc<Policy>,
}

impl PolicySource {
    /// Wraps a policy.
    pub fn new(policy: impl Into<Arc<Policy>>) -> Self {
        PolicySource {
            policy: policy.into(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl fmt::Debug for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicySource")
            .field("length", &self.policy.length())
            .finish_non_exhaustive()
    }
}

impl PasswordSource for PolicySource {
    fn generate(&self, _account: &TargetId) -> crate::state::Result<SecretString> {
        Ok(self.policy.generate())
    }
}
