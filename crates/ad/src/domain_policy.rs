//! The domain's password rules (and an account's fine-grained policy), and the
//! check that a `credwheel-policy` policy only generates passwords they accept.

use std::time::{Duration, Instant};

use credwheel_dn::{Dn, Rdn};
use credwheel_policy::{AD_SYMBOLS, Policy};
use ldap3::Scope;
use tracing::Instrument;

use crate::account::{AccountRef, int_attr, str_attr};
use crate::client::AdClient;
use crate::error::{Error, ErrorKind, Result};

/// Longest password Active Directory accepts in `unicodePwd` (characters).
pub const AD_MAX_PASSWORD_LENGTH: usize = 256;

/// `pwdProperties` bit: complexity required.
const DOMAIN_PASSWORD_COMPLEX: i64 = 0x1;

/// Where a set of password rules comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RulesSource {
    /// The domain object (default domain policy).
    Domain,
    /// A fine-grained password policy (password settings object) applying to the
    /// account, by DN.
    Pso(Dn),
}

/// The password rules that apply (domain-wide, or to one account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRules {
    /// Where they come from.
    pub source: RulesSource,
    /// Minimum length (`minPwdLength` / `msDS-MinimumPasswordLength`).
    pub min_length: u32,
    /// Complexity required (`pwdProperties` bit 1 / `msDS-PasswordComplexityEnabled`).
    pub complexity: bool,
    /// Remembered passwords (`pwdHistoryLength` / `msDS-PasswordHistoryLength`).
    pub history_length: u32,
    /// Minimum age before a user may change the password again (`minPwdAge` /
    /// `msDS-MinimumPasswordAge`). Resets by an administrator ignore it.
    pub min_age: Duration,
    /// Maximum age (`None`: never expires).
    pub max_age: Option<Duration>,
}

/// AD stores ages as negative counts of 100 ns intervals; "never" is the minimum
/// i64 (or 0 for maxPwdAge in some tools).
fn age(v: Option<i64>) -> Option<Duration> {
    match v {
        None | Some(0) | Some(i64::MIN) => None,
        Some(v) => Some(Duration::from_nanos(v.unsigned_abs().saturating_mul(100))),
    }
}

fn bool_attr(attrs: &std::collections::HashMap<String, Vec<String>>, name: &str) -> Option<bool> {
    str_attr(attrs, name).map(|v| v.eq_ignore_ascii_case("TRUE"))
}

/// The AD complexity categories a character belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Category {
    Upper,
    Lower,
    Digit,
    Symbol,
    Other,
}

fn category(c: char) -> Category {
    if c.is_ascii_digit() {
        Category::Digit
    } else if AD_SYMBOLS.contains(c) {
        Category::Symbol
    } else if c.is_uppercase() {
        Category::Upper
    } else if c.is_lowercase() {
        Category::Lower
    } else {
        Category::Other
    }
}

/// How many of AD's complexity categories every password of `policy` is certain
/// to contain (a lower bound from the policy's rules).
pub(crate) fn guaranteed_categories(policy: &Policy) -> usize {
    let mut all_required = std::collections::BTreeSet::new();
    let mut best_partial = 0;
    for rule in policy.rules() {
        // The single category of each class with a positive minimum (None if the
        // class mixes categories).
        let cats: Vec<Option<Category>> = rule
            .classes()
            .iter()
            .filter(|c| c.min_chars() > 0)
            .map(|c| {
                let mut it = c.charset().chars().map(category);
                let first = it.next()?;
                it.all(|x| x == first).then_some(first)
            })
            .collect();
        if rule.at_least() >= rule.classes().len() {
            all_required.extend(cats.iter().flatten().copied());
        } else {
            let distinct: std::collections::BTreeSet<_> = cats.iter().flatten().collect();
            if cats.iter().all(Option::is_some) && distinct.len() == cats.len() {
                best_partial = best_partial.max(rule.at_least().min(cats.len()));
            }
        }
    }
    all_required.len().max(best_partial)
}

impl PasswordRules {
    /// Checks that every password `policy` generates meets these rules: long
    /// enough, not over AD's limit, and, when complexity is on, characters from at
    /// least three of AD's categories guaranteed by the policy's rules. A policy
    /// that AD would reject is an [`ErrorKind::Config`] error saying why.
    ///
    /// ```
    /// use credwheel_ad::{PasswordRules, RulesSource};
    /// use credwheel_policy::{AdComplexity, Policy};
    /// let rules = PasswordRules {
    ///     source: RulesSource::Domain,
    ///     min_length: 7,
    ///     complexity: true,
    ///     history_length: 24,
    ///     min_age: std::time::Duration::ZERO,
    ///     max_age: None,
    /// };
    /// assert!(rules.check_policy(&AdComplexity::new(20).build()?).is_ok());
    /// assert!(rules.check_policy(&Policy::vault_default()).is_ok());
    /// let lower_only = Policy::builder(30).charset("lower", "abcdefghijklmnopqrstuvwxyz", 1).build()?;
    /// assert!(rules.check_policy(&lower_only).is_err());
    /// let short = AdComplexity::new(6).build()?;
    /// assert!(rules.check_policy(&short).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_policy(&self, policy: &Policy) -> Result<()> {
        let from = match &self.source {
            RulesSource::Domain => "the domain's password policy".to_owned(),
            RulesSource::Pso(dn) => format!("the fine-grained password policy {dn}"),
        };
        if policy.length() < self.min_length as usize {
            return Err(Error::config(format!(
                "passwords of {} characters are shorter than the minimum length {} of {from}",
                policy.length(),
                self.min_length
            )));
        }
        if policy.length() > AD_MAX_PASSWORD_LENGTH {
            return Err(Error::config(format!(
                "passwords of {} characters exceed Active Directory's limit of {AD_MAX_PASSWORD_LENGTH}",
                policy.length()
            )));
        }
        if self.complexity {
            let n = guaranteed_categories(policy);
            if n < 3 {
                return Err(Error::config(format!(
                    "{from} requires complexity (characters from 3 of: upper case, lower case, \
                     digits, symbols), but the password policy guarantees only {n}; use \
                     credwheel_policy::AdComplexity or require one character of each class"
                )));
            }
        }
        Ok(())
    }
}

impl AdClient {
    /// The domain object's DN: the `DC=` components of the base DN.
    fn domain_dn(&self) -> Result<Dn> {
        let mut dn = Dn::root();
        let dcs: Vec<String> = self
            .inner
            .config
            .base_dn
            .rdns()
            .filter_map(|r| {
                r.value_of("DC")
                    .and_then(|v| v.as_text())
                    .map(str::to_owned)
            })
            .collect();
        for v in dcs.iter().rev() {
            dn = dn.child(Rdn::new("DC", v)?)?;
        }
        if dn.is_empty() {
            return Err(Error::config("the base DN has no DC= components"));
        }
        Ok(dn)
    }

    /// The domain's password rules, from the domain object.
    pub async fn domain_password_rules(&self) -> Result<PasswordRules> {
        let span = tracing::info_span!("ad.domain_password_rules");
        async {
            let dn = self.domain_dn()?.to_string();
            let (_, entries) = self
                .search(
                    None,
                    &dn,
                    Scope::Base,
                    "(objectClass=*)",
                    &[
                        "minPwdLength",
                        "pwdProperties",
                        "pwdHistoryLength",
                        "minPwdAge",
                        "maxPwdAge",
                    ],
                    "reading the domain's password policy",
                )
                .await?;
            let e = entries
                .into_iter()
                .next()
                .ok_or_else(|| Error::new(ErrorKind::NoSuchAccount, "reading the domain object"))?;
            let a = &e.attrs;
            Ok(PasswordRules {
                source: RulesSource::Domain,
                min_length: int_attr(a, "minPwdLength")?.unwrap_or(0),
                complexity: int_attr::<i64>(a, "pwdProperties")?.unwrap_or(0)
                    & DOMAIN_PASSWORD_COMPLEX
                    != 0,
                history_length: int_attr(a, "pwdHistoryLength")?.unwrap_or(0),
                min_age: age(int_attr(a, "minPwdAge")?).unwrap_or(Duration::ZERO),
                max_age: age(int_attr(a, "maxPwdAge")?),
            })
        }
        .instrument(span)
        .await
    }

    /// The rules that apply to one account: its resultant fine-grained policy
    /// (`msDS-ResultantPSO`) when there is one and the bind account may read it,
    /// otherwise the domain's.
    pub async fn password_rules_for(&self, account: &AccountRef) -> Result<PasswordRules> {
        let span = tracing::info_span!("ad.password_rules_for", account = %account);
        async {
            let (dc, dn) = self.dn_on(None, account).await?;
            let pso = self
                .search(
                    Some(dc),
                    &dn,
                    Scope::Base,
                    "(objectClass=*)",
                    &["msDS-ResultantPSO"],
                    "reading msDS-ResultantPSO",
                )
                .await;
            let pso_dn = match pso {
                Ok((_, entries)) => entries
                    .first()
                    .and_then(|e| str_attr(&e.attrs, "msDS-ResultantPSO")),
                // Not readable for the bind account: the domain's rules are what
                // we can know.
                Err(e) if e.kind() == ErrorKind::InsufficientAccess => None,
                Err(e) => return Err(e),
            };
            let Some(pso_dn) = pso_dn else {
                return self.domain_password_rules().await;
            };
            let pso_dn = Dn::parse(&pso_dn).map_err(|e| {
                Error::protocol(format!("the directory returned an invalid PSO DN: {e}"))
            })?;
            let read = self
                .search(
                    Some(dc),
                    &pso_dn.to_string(),
                    Scope::Base,
                    "(objectClass=*)",
                    &[
                        "msDS-MinimumPasswordLength",
                        "msDS-PasswordComplexityEnabled",
                        "msDS-PasswordHistoryLength",
                        "msDS-MinimumPasswordAge",
                        "msDS-MaximumPasswordAge",
                    ],
                    "reading the fine-grained password policy",
                )
                .await;
            let entry = match read {
                Ok((_, entries)) => entries.into_iter().next(),
                Err(e) if matches!(e.kind(), ErrorKind::InsufficientAccess | ErrorKind::NoSuchAccount) => None,
                Err(e) => return Err(e),
            };
            // Reading a PSO needs rights the bind account often lacks: then the
            // entry comes back without attributes.
            match entry {
                Some(e) if str_attr(&e.attrs, "msDS-MinimumPasswordLength").is_some() => {
                    let a = &e.attrs;
                    Ok(PasswordRules {
                        source: RulesSource::Pso(pso_dn),
                        min_length: int_attr(a, "msDS-MinimumPasswordLength")?.unwrap_or(0),
                        complexity: bool_attr(a, "msDS-PasswordComplexityEnabled").unwrap_or(false),
                        history_length: int_attr(a, "msDS-PasswordHistoryLength")?.unwrap_or(0),
                        min_age: age(int_attr(a, "msDS-MinimumPasswordAge")?)
                            .unwrap_or(Duration::ZERO),
                        max_age: age(int_attr(a, "msDS-MaximumPasswordAge")?),
                    })
                }
                _ => {
                    tracing::info!("the account's fine-grained password policy is not readable; using the domain's rules");
                    self.domain_password_rules().await
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Checks a password policy against the rules that apply to `account` (or the
    /// domain's, without one): a policy the directory would reject is a
    /// configuration error, reported before any rotation.
    pub async fn validate_policy(
        &self,
        policy: &Policy,
        account: Option<&AccountRef>,
    ) -> Result<PasswordRules> {
        let start = Instant::now();
        let rules = match account {
            Some(a) => self.password_rules_for(a).await?,
            None => self.domain_password_rules().await?,
        };
        rules.check_policy(policy)?;
        tracing::debug!(
            ms = start.elapsed().as_millis() as u64,
            "password policy validated"
        );
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credwheel_policy::{AdComplexity, DIGITS, LOWERCASE, UPPERCASE};

    #[test]
    fn categories() {
        assert_eq!(
            guaranteed_categories(&AdComplexity::new(14).build().unwrap()),
            3
        );
        assert_eq!(guaranteed_categories(&Policy::vault_default()), 4);
        let p = Policy::builder(20)
            .charset("l", LOWERCASE, 1)
            .charset("u", UPPERCASE, 1)
            .build()
            .unwrap();
        assert_eq!(guaranteed_categories(&p), 2);
        let p = Policy::builder(20)
            .charset("l", LOWERCASE, 1)
            .charset("u", UPPERCASE, 1)
            .charset("d", DIGITS, 2)
            .build()
            .unwrap();
        assert_eq!(guaranteed_categories(&p), 3);
        // A mixed class guarantees no particular category.
        let p = Policy::builder(20)
            .charset("mixed", "aA1", 3)
            .build()
            .unwrap();
        assert_eq!(guaranteed_categories(&p), 0);
    }

    #[test]
    fn ages() {
        assert_eq!(
            age(Some(-864_000_000_000)),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(age(Some(i64::MIN)), None);
        assert_eq!(age(Some(0)), None);
    }
}
