//! The crate's one error type.

/// Why a policy could not be built or parsed.
///
/// Every variant is decided when the policy is constructed; generation itself cannot
/// fail. Messages name the offending rule and never contain a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy text could not be parsed (Vault HCL, or its base64 form).
    #[error("line {line}: {message}")]
    Parse {
        /// 1-based line of the problem in the (decoded) text.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The length is zero.
    #[error("password length must be at least 1")]
    LengthZero,
    /// The length exceeds [`MAX_LENGTH`](crate::MAX_LENGTH).
    #[error("password length {length} exceeds the limit of {max}")]
    LengthTooLarge {
        /// The requested length.
        length: usize,
        /// The documented limit.
        max: usize,
    },
    /// No rule contributes any character.
    #[error("the policy has no rules, so its alphabet is empty")]
    NoRules,
    /// A rule's charset is empty.
    #[error("{rule}: empty charset")]
    EmptyCharset {
        /// The rule's name.
        rule: String,
    },
    /// A rule's charset holds a character that is not printable (a control or format
    /// character, or whitespace other than the ASCII space).
    #[error("{rule}: charset contains the non-printable character U+{code_point:04X}")]
    NonPrintable {
        /// The rule's name.
        rule: String,
        /// The offending character.
        code_point: u32,
    },
    /// Every character of a rule's charset is excluded from the alphabet, so the rule
    /// cannot be met.
    #[error("{rule}: every character of its charset is excluded from the alphabet")]
    CharsetExcluded {
        /// The rule's name.
        rule: String,
    },
    /// The alphabet (union of all charsets) is larger than
    /// [`MAX_ALPHABET`](crate::MAX_ALPHABET).
    #[error("the alphabet has {size} characters, more than the limit of {max}")]
    AlphabetTooLarge {
        /// Distinct characters in the union of all charsets.
        size: usize,
        /// The documented limit.
        max: usize,
    },
    /// A rule is malformed (for example "at least 0 of" or "at least 5 of 4 classes").
    #[error("{rule}: {reason}")]
    InvalidRule {
        /// The rule's name.
        rule: String,
        /// What is wrong.
        reason: String,
    },
    /// A single rule needs more characters than the password has.
    #[error("{rule}: needs at least {required} characters but the length is {length}")]
    RuleExceedsLength {
        /// The rule's name.
        rule: String,
        /// Characters the rule needs at least.
        required: usize,
        /// The policy's length.
        length: usize,
    },
    /// The rules together need more characters than the password has (their charsets
    /// do not overlap enough to share characters).
    #[error(
        "rules {rules:?} together need at least {required} characters but the length is {length}"
    )]
    MinimumsExceedLength {
        /// The names of the rules with a minimum.
        rules: Vec<String>,
        /// Sum of the rules' minimums.
        required: usize,
        /// The policy's length.
        length: usize,
    },
    /// No password satisfies all rules and forbidden substrings together.
    #[error("no password of length {length} satisfies all of {rules:?}")]
    Unsatisfiable {
        /// The names of all rules (and the forbidden-substring check, if any).
        rules: Vec<String>,
        /// The policy's length.
        length: usize,
    },
    /// The counting tables for this policy would exceed the documented size budget
    /// (too many rules with large minimums, or a very long password with many
    /// forbidden substrings).
    #[error(
        "policy too complex: its counting table needs {needed} words, more than the limit of {max}"
    )]
    TooComplex {
        /// Table words needed.
        needed: u128,
        /// The documented budget.
        max: u128,
    },
    /// An Infisical requirements object violates Infisical's own limits.
    #[error("invalid Infisical requirements: {reason}")]
    Infisical {
        /// What is wrong.
        reason: String,
    },
}
