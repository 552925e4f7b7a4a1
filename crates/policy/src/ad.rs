//! The Active Directory "Password must meet complexity requirements" preset.
//!
//! Microsoft documents the rule ("Password must meet complexity requirements",
//! Windows security policy settings reference,
//! <https://learn.microsoft.com/en-us/previous-versions/windows/it-pro/windows-10/security/threat-protection/security-policy-settings/password-must-meet-complexity-requirements>)
//! as:
//!
//! 1. The password may not contain the user's `sAMAccountName` or the tokens of
//!    its `displayName`, compared case-insensitively. The `sAMAccountName` is checked
//!    whole and only when it has at least three characters. The `displayName` is
//!    split at commas, periods, dashes/hyphens, underscores, spaces, pound signs and
//!    tabs; tokens shorter than three characters are ignored, and substrings of a
//!    token are not checked (for "Erin M. Hagens" the password may not contain
//!    "erin" or "hagens").
//! 2. The password contains characters from three of: uppercase letters, lowercase
//!    letters, base-10 digits, and non-alphanumeric characters
//!    ``~!@#$%^&*_-+=`|\(){}[]:;"'<>,.?/`` (a fifth category, Unicode alphabetic
//!    characters that are neither upper- nor lowercase, exists for typed passwords;
//!    the generator does not draw from it).

use crate::error::PolicyError;
use crate::policy::{CharClass, Policy, Rule};
use crate::{DIGITS, LOWERCASE, UPPERCASE};

/// The non-alphanumeric characters Microsoft lists for the complexity rule.
pub const AD_SYMBOLS: &str = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/";

/// Delimiters at which Active Directory splits a `displayName` into tokens.
pub const AD_DISPLAY_NAME_DELIMITERS: [char; 7] = [',', '.', '-', '_', ' ', '#', '\t'];

/// Builds an Active Directory complexity policy.
///
/// ```
/// use credwheel_policy::AdComplexity;
/// let policy = AdComplexity::new(16)
///     .account_name("svc-backup")
///     .display_name("Backup Service, Tier-0")
///     .build()?;
/// assert!(!policy.is_valid("xxSVC-BACKUP1!aa"));
/// assert!(!policy.is_valid("xxxx1!aaBackupZZ"));
/// # Ok::<(), credwheel_policy::PolicyError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct AdComplexity {
    length: usize,
    symbols: String,
    account_name: Option<String>,
    display_name: Option<String>,
}

impl AdComplexity {
    /// Passwords of `length` characters with characters from at least three of the
    /// four classes (A-Z, a-z, 0-9, [`AD_SYMBOLS`]).
    pub fn new(length: usize) -> Self {
        AdComplexity {
            length,
            symbols: AD_SYMBOLS.to_owned(),
            account_name: None,
            display_name: None,
        }
    }

    /// Replaces the symbol class (for example to avoid quotes in scripts). Only
    /// characters Active Directory counts as non-alphanumeric help meet the rule.
    pub fn symbols(mut self, symbols: &str) -> Self {
        self.symbols = symbols.to_owned();
        self
    }

    /// Never generate passwords containing this `sAMAccountName` (ignored when
    /// shorter than three characters, as in AD).
    pub fn account_name(mut self, sam_account_name: &str) -> Self {
        self.account_name = Some(sam_account_name.to_owned());
        self
    }

    /// Never generate passwords containing a token (three characters or more) of this
    /// `displayName`.
    pub fn display_name(mut self, display_name: &str) -> Self {
        self.display_name = Some(display_name.to_owned());
        self
    }

    /// The substrings AD would reject, per Microsoft's rule: the `sAMAccountName`
    /// (3+ characters), each `displayName` token of 3+ characters, and the whole
    /// `displayName` (3+ characters).
    pub fn forbidden_substrings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(sam) = &self.account_name
            && sam.chars().count() >= 3
        {
            out.push(sam.clone());
        }
        if let Some(dn) = &self.display_name {
            for tok in dn.split(AD_DISPLAY_NAME_DELIMITERS) {
                if tok.chars().count() >= 3 && !out.iter().any(|o| o == tok) {
                    out.push(tok.to_owned());
                }
            }
            // Microsoft's summary also says "entire displayName"; forbidding it as well
            // is conservative (it only matters when every token is shorter than 3).
            if dn.chars().count() >= 3 && !out.iter().any(|o| o == dn) {
                out.push(dn.clone());
            }
        }
        out
    }

    /// Builds the policy.
    pub fn build(self) -> Result<Policy, PolicyError> {
        let classes = [
            CharClass::new(UPPERCASE, 1),
            CharClass::new(LOWERCASE, 1),
            CharClass::new(DIGITS, 1),
            CharClass::new(&self.symbols, 1),
        ];
        let mut b = Policy::builder(self.length).rule(Rule::at_least_of(
            "AD complexity (3 of 4 character categories)",
            3,
            classes,
        ));
        for f in self.forbidden_substrings() {
            b = b.forbid_substring(&f);
        }
        b.build()
    }
}
