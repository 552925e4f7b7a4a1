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
//!    the generator does not draw from it). Microsoft states that currency symbols
//!    such as `€` and `£` are not counted as special characters.
//!
//! Only the characters of that list count for the non-alphanumeric category here.
//! Other characters given to [`AdComplexity::symbols`] may appear in passwords as
//! filler but never help meet the rule, even where AD would count them in another
//! category (an `É` it counts as uppercase, a CJK letter it counts in the fifth
//! category): a password judged valid here is one AD accepts.

use crate::error::PolicyError;
use crate::policy::{CharClass, Policy, Rule};
use crate::{DIGITS, LOWERCASE, UPPERCASE};

/// The non-alphanumeric characters Microsoft lists for the complexity rule.
pub const AD_SYMBOLS: &str = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/";

/// Longest `displayName` and `sAMAccountName` [`AdComplexity`] accepts, in
/// characters: the `rangeUpper` of both attributes in the Active Directory schema.
pub const AD_MAX_NAME_LEN: usize = 256;

/// The name of the "three of four categories" rule in violations and errors.
const AD_RULE_NAME: &str = "AD complexity (3 of 4 character categories)";

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

    /// Replaces the symbol class (for example to avoid quotes in scripts).
    ///
    /// Only characters of [`AD_SYMBOLS`] (Microsoft's list) count for the
    /// non-alphanumeric category. Any other printable character is allowed as filler:
    /// it may appear in passwords but never helps meet the rule.
    ///
    /// ```
    /// use credwheel_policy::AdComplexity;
    /// // `€` is not in Microsoft's list: lowercase + uppercase + `€` is two categories.
    /// let policy = AdComplexity::new(8).symbols("!€").build()?;
    /// assert!(!policy.is_valid("abcdefA€"));
    /// assert!(policy.is_valid("abcdeA€!"));
    /// # Ok::<(), credwheel_policy::PolicyError>(())
    /// ```
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
    ///
    /// A `sAMAccountName` or `displayName` longer than [`AD_MAX_NAME_LEN`]
    /// characters cannot exist in AD and is refused with
    /// [`PolicyError::AdNameTooLong`] before any work proportional to it is done.
    pub fn build(self) -> Result<Policy, PolicyError> {
        for (attribute, value) in [
            ("sAMAccountName", &self.account_name),
            ("displayName", &self.display_name),
        ] {
            if let Some(v) = value {
                let length = v.chars().take(AD_MAX_NAME_LEN + 1).count();
                if length > AD_MAX_NAME_LEN {
                    return Err(PolicyError::AdNameTooLong {
                        attribute,
                        max: AD_MAX_NAME_LEN,
                    });
                }
            }
        }
        let (counted, filler): (String, String) =
            self.symbols.chars().partition(|&c| AD_SYMBOLS.contains(c));
        let mut classes = vec![
            CharClass::new(UPPERCASE, 1),
            CharClass::new(LOWERCASE, 1),
            CharClass::new(DIGITS, 1),
        ];
        if !counted.is_empty() {
            classes.push(CharClass::new(&counted, 1));
        }
        let mut b = Policy::builder(self.length).rule(Rule::at_least_of(AD_RULE_NAME, 3, classes));
        if !filler.is_empty() {
            b = b.rule(Rule::charset(
                "characters AD does not count in any category here",
                &filler,
                0,
            ));
        }
        for f in self.forbidden_substrings() {
            b = b.forbid_substring(&f);
        }
        b.build()
    }
}
