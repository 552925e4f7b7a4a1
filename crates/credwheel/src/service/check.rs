//! Checking each password policy against the rules of the system that will receive
//! its passwords: a Windows host's domain password information (SAMR), an AD
//! account's resultant fine-grained policy or the domain's. Parsing a configuration
//! proves a policy can generate passwords; only the target can say it accepts them.

use std::sync::Arc;

use super::Credwheel;
use crate::ad::{AccountRef, AdTarget};
use crate::sam::SamTarget;
use crate::state::TargetId;

/// How to ask a target for its password rules (targets credwheel built itself;
/// targets an embedder injected cannot be asked).
#[derive(Clone)]
pub(crate) enum Checker {
    Sam(Arc<SamTarget>),
    Ad(Arc<AdTarget>, TargetId),
}

/// What checking one policy against one account's rules found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyVerdict {
    /// Every password the policy generates meets the target's rules.
    Fits,
    /// The target would refuse the policy's passwords: a configuration error.
    Refused(String),
    /// The rules could not be read (unreachable, not allowed); rotations will tell.
    Unknown(String),
}

/// One policy checked against one account's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyCheck {
    /// The policy's place in the configuration (`rotations[2].policy`).
    pub field: String,
    /// The rotation or library name.
    pub name: String,
    /// The account (`windows:host/user`, `ad:connection/account`).
    pub account: String,
    /// The verdict.
    pub verdict: PolicyVerdict,
}

impl Checker {
    async fn check(&self, policy: &crate::policy::Policy) -> PolicyVerdict {
        match self {
            Checker::Sam(t) => match t.check_policy(policy).await {
                Ok(_) => PolicyVerdict::Fits,
                Err(e @ crate::sam::Error::HostPolicy(_)) => PolicyVerdict::Refused(e.to_string()),
                Err(e) => PolicyVerdict::Unknown(e.to_string()),
            },
            Checker::Ad(t, id) => {
                let account = match t.account_of(id) {
                    Ok(a) => a,
                    Err(e) => return PolicyVerdict::Unknown(e.to_string()),
                };
                check_ad(t, policy, &account).await
            }
        }
    }
}

async fn check_ad(
    t: &AdTarget,
    policy: &crate::policy::Policy,
    account: &AccountRef,
) -> PolicyVerdict {
    match t.client().validate_policy(policy, Some(account)).await {
        Ok(_) => PolicyVerdict::Fits,
        Err(e) if e.kind() == crate::ad::ErrorKind::Config => PolicyVerdict::Refused(e.to_string()),
        Err(e) => PolicyVerdict::Unknown(e.to_string()),
    }
}

impl Credwheel {
    /// Checks every rotation's and library account's password policy against the
    /// rules of its target (for targets built from the configuration; injected
    /// targets are skipped). Reads the rules over the network; changes nothing.
    /// [`PolicyVerdict::Refused`] means every rotation with that policy would fail:
    /// the operator CLI's `validate --online` and `run` refuse to go on.
    pub async fn check_policies(&self) -> Vec<PolicyCheck> {
        use futures::StreamExt;
        let mut jobs = Vec::new();
        for (i, m) in self.inner.rotations.iter().enumerate() {
            if let Some(c) = &m.checker {
                jobs.push((
                    format!("rotations[{i}].policy"),
                    m.def.name.clone(),
                    m.def.target.describe(),
                    c.clone(),
                    m.def.policy.clone(),
                ));
            }
        }
        for (i, def) in self.inner.config.libraries.iter().enumerate() {
            let Some(lib) = self.inner.libraries.get(&def.name) else {
                continue;
            };
            for (name, c) in &lib.checkers {
                jobs.push((
                    format!("libraries[{i}].policy"),
                    def.name.clone(),
                    format!("ad:{}/{name}", def.connection),
                    c.clone(),
                    def.policy.clone(),
                ));
            }
        }
        futures::stream::iter(jobs)
            .map(|(field, name, account, checker, policy)| async move {
                let verdict = checker.check(&policy).await;
                PolicyCheck {
                    field,
                    name,
                    account,
                    verdict,
                }
            })
            .buffered(8)
            .collect()
            .await
    }
}
