//! Infisical's password requirements object.

use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::policy::{Policy, Rule};
use crate::{DIGITS, LOWERCASE, UPPERCASE};

/// Infisical's symbol default.
pub const INFISICAL_DEFAULT_SYMBOLS: &str = "-_.~!*";

/// Symbols Infisical refuses for Windows targets, because they break its
/// `rpcclient` command line (credwheel talks SAMR directly and has no such limit).
pub const INFISICAL_WINDOWS_FORBIDDEN_SYMBOLS: &str = ";|&`$()";

/// Infisical's password requirements, as JSON (camelCase):
///
/// ```json
/// { "length": 48,
///   "required": { "lowercase": 1, "uppercase": 1, "digits": 1, "symbols": 0 },
///   "allowedSymbols": "-_.~!*" }
/// ```
///
/// Every field is optional and defaults to the values above (a partial `required`
/// object keeps the defaults for the counts it omits). Meaning, as in Infisical:
/// a class with a required count above zero contributes that many characters at
/// least, the remaining characters come only from classes whose count is above zero
/// (so with the defaults no symbol ever appears), and `"` is never used.
///
/// ```
/// use credwheel_policy::{InfisicalRequirements, Policy};
/// let req: InfisicalRequirements = serde_json::from_str(r#"{"length": 32}"#)?;
/// let policy = Policy::from_infisical(&req)?;
/// assert_eq!(policy.length(), 32);
/// assert_eq!(policy.alphabet().len(), 62); // symbols have a required count of 0
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InfisicalRequirements {
    /// Password length (Infisical: 1 to 250).
    pub length: usize,
    /// Minimum count per class.
    pub required: InfisicalRequired,
    /// The symbol class.
    pub allowed_symbols: String,
}

/// Per-class minimum counts of [`InfisicalRequirements`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InfisicalRequired {
    /// Lowercase letters `a-z`.
    pub lowercase: usize,
    /// Uppercase letters `A-Z`.
    pub uppercase: usize,
    /// Digits `0-9`.
    pub digits: usize,
    /// Characters of `allowedSymbols`.
    pub symbols: usize,
}

impl Default for InfisicalRequired {
    fn default() -> Self {
        InfisicalRequired {
            lowercase: 1,
            uppercase: 1,
            digits: 1,
            symbols: 0,
        }
    }
}

impl Default for InfisicalRequirements {
    fn default() -> Self {
        InfisicalRequirements {
            length: 48,
            required: InfisicalRequired::default(),
            allowed_symbols: INFISICAL_DEFAULT_SYMBOLS.to_owned(),
        }
    }
}

/// Infisical's own upper bound on the length.
pub const INFISICAL_MAX_LENGTH: usize = 250;

impl InfisicalRequirements {
    /// Whether these requirements would be accepted by Infisical for a Windows
    /// target (no `; | & \` $ ( )` and no newline or NUL in `allowedSymbols`).
    pub fn is_windows_safe(&self) -> bool {
        !self.allowed_symbols.chars().any(|c| {
            INFISICAL_WINDOWS_FORBIDDEN_SYMBOLS.contains(c) || matches!(c, '\n' | '\r' | '\0')
        })
    }
}

impl Policy {
    /// Builds a policy from Infisical requirements, with Infisical's validation
    /// (length 1 to 250, at least one count above zero, counts summing to at most the
    /// length) and meaning (see [`InfisicalRequirements`]).
    pub fn from_infisical(req: &InfisicalRequirements) -> Result<Policy, PolicyError> {
        let r = &req.required;
        if req.length == 0 || req.length > INFISICAL_MAX_LENGTH {
            return Err(PolicyError::Infisical {
                reason: format!(
                    "length {} is outside 1..={INFISICAL_MAX_LENGTH}",
                    req.length
                ),
            });
        }
        let total = [r.lowercase, r.uppercase, r.digits, r.symbols]
            .iter()
            .fold(0usize, |a, &b| a.saturating_add(b));
        if total == 0 {
            return Err(PolicyError::Infisical {
                reason: "at least one required count must be above zero".into(),
            });
        }
        if total > req.length {
            return Err(PolicyError::Infisical {
                reason: format!(
                    "required counts sum to {total}, more than the length {}",
                    req.length
                ),
            });
        }
        let mut b = Policy::builder(req.length).exclude("\"");
        for (name, set, min) in [
            ("lowercase", LOWERCASE, r.lowercase),
            ("uppercase", UPPERCASE, r.uppercase),
            ("digits", DIGITS, r.digits),
            ("symbols", req.allowed_symbols.as_str(), r.symbols),
        ] {
            if min > 0 {
                b = b.rule(Rule::charset(name, set, min));
            }
        }
        b.build()
    }
}
