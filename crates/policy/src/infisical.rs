//! Infisical's password requirements object.

use serde::{Deserialize, Serialize};

use crate::error::{InfisicalErrorKind, PolicyError};
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
/// object keeps the defaults for the counts it omits); an empty `allowedSymbols`
/// means the default `-_.~!*`, as in Infisical's generator
/// (`allowedSymbols || "-_.~!*"`).
///
/// # Which passwords are valid
///
/// Infisical's generator draws, for each class with a required count `n > 0`, `n`
/// characters of that class, fills up to the length with characters of the classes
/// whose count is above zero, removes `"` from the symbols and shuffles. The
/// policy here is exactly the set of passwords that generator can return, drawn
/// uniformly: strings of the right length over the union of the classes with a
/// count above zero (without `"`) in which **distinct** positions can be assigned
/// to the requirements, `n` positions holding characters of each class. So with
/// the defaults no symbol ever appears, and a character that is in two classes (a
/// digit listed in `allowedSymbols`) counts for one of them, not for both.
///
/// For disjoint classes that is simply "at least `n` characters of each class".
/// When `allowedSymbols` overlaps a letter or digit class, the policy adds the
/// rules Hall's marriage theorem requires for such an assignment to exist: for
/// every set `T` of overlapping classes, the password holds at least
/// `Σ required(T) + required(symbols)` characters of the union of `T` and the
/// symbols. Example: digits 1, symbols 1, `allowedSymbols` `"1!"`, lowercase 1,
/// length 3: `1ab` is not valid (its one `1` cannot be both the digit and the
/// symbol), `11a` and `1!a` are. This is what Infisical users expect because it is
/// what Infisical itself produces: every password generated here is one Infisical
/// could have generated for the same requirements, and no such password is
/// missing.
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
                kind: InfisicalErrorKind::LengthOutOfRange {
                    length: req.length,
                    max: INFISICAL_MAX_LENGTH,
                },
            });
        }
        let total = [r.lowercase, r.uppercase, r.digits, r.symbols]
            .iter()
            .fold(0usize, |a, &b| a.saturating_add(b));
        if total == 0 {
            return Err(PolicyError::Infisical {
                kind: InfisicalErrorKind::NothingRequired,
            });
        }
        if total > req.length {
            return Err(PolicyError::Infisical {
                kind: InfisicalErrorKind::RequiredExceedsLength {
                    required: total,
                    length: req.length,
                },
            });
        }
        let symbols = if req.allowed_symbols.is_empty() {
            INFISICAL_DEFAULT_SYMBOLS
        } else {
            req.allowed_symbols.as_str()
        };
        let mut b = Policy::builder(req.length).exclude("\"");
        let letters_digits = [
            ("lowercase", LOWERCASE, r.lowercase),
            ("uppercase", UPPERCASE, r.uppercase),
            ("digits", DIGITS, r.digits),
        ];
        for (name, set, min) in letters_digits
            .iter()
            .copied()
            .chain([("symbols", symbols, r.symbols)])
        {
            if min > 0 {
                b = b.rule(Rule::charset(name, set, min));
            }
        }
        if r.symbols > 0 {
            // Hall's condition for the classes the symbols overlap (the letter and
            // digit classes are disjoint, so only sets of overlapped classes with
            // the symbols add anything).
            let overlapped: Vec<(&str, &str, usize)> = letters_digits
                .iter()
                .copied()
                .filter(|&(_, set, min)| {
                    min > 0 && symbols.chars().any(|c| c != '"' && set.contains(c))
                })
                .collect();
            for mask in 1u32..(1 << overlapped.len()) {
                let mut chars = symbols.to_owned();
                let mut min = r.symbols;
                let mut names = Vec::new();
                for (k, &(name, set, m)) in overlapped.iter().enumerate() {
                    if mask & (1 << k) != 0 {
                        chars.push_str(set);
                        min = min.saturating_add(m);
                        names.push(name);
                    }
                }
                b = b.rule(Rule::charset(
                    format!("symbols and {} on distinct characters", names.join(" and ")),
                    &chars,
                    min,
                ));
            }
        }
        b.build()
    }
}
