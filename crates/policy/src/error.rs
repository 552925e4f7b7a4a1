//! The crate's one error type.

/// Why a policy could not be built or parsed.
///
/// Every variant is decided when the policy is constructed; generation itself cannot
/// fail. Messages name the offending rule and never contain a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy text could not be parsed (Vault HCL, or its base64 form).
    #[error("line {line}, column {column}: {kind}")]
    Parse {
        /// 1-based line of the problem in the (decoded) text.
        line: usize,
        /// 1-based column (in characters) of the problem on that line.
        column: usize,
        /// 0-based byte offset of the problem in the (decoded) text.
        offset: usize,
        /// What is wrong.
        kind: ParseErrorKind,
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
    /// A rule's charset holds a character that is not printable by Go's
    /// `unicode.IsPrint` (as Vault checks): only general categories L, M, N, P, S
    /// and the ASCII space are.
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
    #[error("{rule} (rule {index} of the policy): {kind}")]
    InvalidRule {
        /// The rule's name.
        rule: String,
        /// 0-based position of the rule in the policy's rule list.
        index: usize,
        /// What is wrong.
        kind: InvalidRuleKind,
    },
    /// The rules have more classes in total than [`MAX_CLASSES`](crate::MAX_CLASSES).
    #[error("the rules have {classes} character classes, more than the limit of {max}")]
    TooManyClasses {
        /// Classes over all rules.
        classes: usize,
        /// The documented limit.
        max: usize,
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
    /// Building the counting tables for this policy would exceed a documented budget
    /// (too many rules with large minimums, or a very long password with many
    /// forbidden substrings).
    #[error("policy too complex: {}", .limit.describe(*.needed, *.max))]
    TooComplex {
        /// Which budget is exceeded.
        limit: ComplexityLimit,
        /// What the policy needs, in the budget's unit.
        needed: u128,
        /// The documented budget.
        max: u128,
    },
    /// An `sAMAccountName` or `displayName` given to
    /// [`AdComplexity`](crate::AdComplexity) is longer than AD allows
    /// ([`AD_MAX_NAME_LEN`](crate::AD_MAX_NAME_LEN) characters).
    #[error("{attribute} is longer than {max} characters, the limit of Active Directory")]
    AdNameTooLong {
        /// `"sAMAccountName"` or `"displayName"`.
        attribute: &'static str,
        /// The limit in characters.
        max: usize,
    },
    /// The forbidden substrings that can occur in a password (those made only of
    /// characters of the alphabet, compared case-insensitively) have more characters
    /// in total than [`MAX_FORBIDDEN_CHARS`](crate::MAX_FORBIDDEN_CHARS).
    #[error("forbidden substrings total {chars} characters, more than the limit of {max}")]
    ForbiddenTooLong {
        /// Characters in the forbidden substrings that can occur.
        chars: usize,
        /// The documented limit.
        max: usize,
    },
    /// An Infisical requirements object violates Infisical's own limits.
    #[error("invalid Infisical requirements: {kind}")]
    Infisical {
        /// What is wrong.
        kind: InfisicalErrorKind,
    },
}
/// Which construction budget a [`PolicyError::TooComplex`] policy exceeds (see the
/// crate documentation, "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ComplexityLimit {
    /// Memory: the counting layers or the transition table, in 64-bit words.
    TableWords,
    /// Time: filling the counting table, in 64-bit limb operations.
    FillOperations,
}

impl ComplexityLimit {
    fn describe(self, needed: u128, max: u128) -> String {
        match self {
            ComplexityLimit::TableWords => {
                format!("its tables need {needed} 64-bit words, more than the limit of {max}")
            }
            ComplexityLimit::FillOperations => format!(
                "filling its counting table takes {needed} limb operations, more than the limit of {max}"
            ),
        }
    }
}

/// What is wrong with a malformed [`Rule`](crate::Rule), in
/// [`PolicyError::InvalidRule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRuleKind {
    /// The rule has no character classes.
    #[error("it has no character classes")]
    NoClasses,
    /// The rule asks for 0 classes, or for more classes than it has.
    #[error("it requires {at_least} of its {classes} classes")]
    AtLeastOutOfRange {
        /// The rule's `at_least`.
        at_least: usize,
        /// The rule's number of classes.
        classes: usize,
    },
}

/// What is wrong with Vault policy text, in [`PolicyError::Parse`].
///
/// Kinds name keys of the policy language, never values: a parse error shows no
/// charset content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A `/*` comment is not closed.
    #[error("unterminated /* comment")]
    UnterminatedComment,
    /// A string has no closing quote on its line.
    #[error("unterminated string")]
    UnterminatedString,
    /// A string contains a raw line break (HCL 1 allows none; write `\n`).
    #[error("line break in a string (write \\n)")]
    NewlineInString,
    /// A backslash is followed by a character that is not an HCL 1 escape (this
    /// includes `\'`, which HCL 1 refuses inside double quotes).
    #[error("illegal escape \\{escape}")]
    IllegalEscape {
        /// The character after the backslash.
        escape: char,
    },
    /// An escape has too few digits (`\x` needs 2, octal 3, `\u` 4, `\U` 8).
    #[error("escape needs {digits} digits")]
    EscapeDigits {
        /// The number of digits the escape needs.
        digits: usize,
    },
    /// An octal escape above `\377`.
    #[error("octal escape above \\377")]
    OctalEscapeRange,
    /// A `\u` or `\U` escape that is a surrogate or above U+10FFFF.
    #[error("escape is not a Unicode scalar value")]
    EscapeNotScalar,
    /// Heredoc strings (`<<EOF`) are not supported.
    #[error("heredoc strings are not supported; use a quoted string")]
    Heredoc,
    /// A character that starts no HCL token.
    #[error("unexpected character U+{code_point:04X}")]
    UnexpectedCharacter {
        /// The character.
        code_point: u32,
    },
    /// A number is not an integer (a float, an exponent, or a malformed literal).
    #[error("not an integer literal")]
    NotAnInteger,
    /// An octal literal (leading `0`) contains 8 or 9.
    #[error("illegal octal number")]
    IllegalOctal,
    /// A `0x` literal without hexadecimal digits.
    #[error("illegal hexadecimal number")]
    IllegalHexadecimal,
    /// An integer outside Go's `int64`, or too large for its key.
    #[error("integer out of range")]
    IntegerOutOfRange,
    /// A negative integer where only non-negative ones make sense.
    #[error("negative numbers are not allowed here")]
    Negative,
    /// Neither `length` nor `rule` where an item must start.
    #[error("expected `length` or `rule`")]
    ExpectedItem,
    /// A top-level key other than `length` and `rule`.
    #[error("unknown key {key:?} (expected `length` or `rule`)")]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// A key inside a charset rule other than `charset` and `min-chars`.
    #[error("unknown key {key:?} in charset rule (expected `charset` or `min-chars`)")]
    UnknownRuleKey {
        /// The key.
        key: String,
    },
    /// `rule` without a rule type.
    #[error("expected a rule type after `rule`")]
    ExpectedRuleType,
    /// A rule type other than `charset`.
    #[error("unknown rule type {name:?} (only \"charset\" exists)")]
    UnknownRuleType {
        /// The rule type.
        name: String,
    },
    /// Something other than a key inside a charset rule.
    #[error("expected `charset` or `min-chars`")]
    ExpectedRuleKey,
    /// A rule type not followed by `{`.
    #[error("expected '{{' to open the rule")]
    ExpectedOpenBrace,
    /// A rule block without `}`.
    #[error("unterminated rule block (missing '}}')")]
    UnterminatedBlock,
    /// A key not followed by `=`.
    #[error("expected '=' after `{key}`")]
    ExpectedEquals {
        /// The key.
        key: &'static str,
    },
    /// A key whose value is missing or of the wrong type.
    #[error("`{key}` must be {expected}")]
    WrongValue {
        /// The key.
        key: &'static str,
        /// `"an integer"` or `"a quoted string"`.
        expected: &'static str,
    },
    /// A key given twice.
    #[error("duplicate `{key}`")]
    Duplicate {
        /// The key.
        key: &'static str,
    },
    /// No `length`.
    #[error("missing `length`")]
    MissingLength,
    /// A charset rule without `charset`.
    #[error("charset rule without `charset`")]
    MissingCharset,
}

/// Which of Infisical's own checks a requirements object fails, in
/// [`PolicyError::Infisical`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InfisicalErrorKind {
    /// The length is outside `1..=250`.
    #[error("length {length} is outside 1..={max}")]
    LengthOutOfRange {
        /// The requested length.
        length: usize,
        /// Infisical's maximum.
        max: usize,
    },
    /// Every required count is zero.
    #[error("at least one required count must be above zero")]
    NothingRequired,
    /// The required counts add up to more than the length.
    #[error("required counts sum to {required}, more than the length {length}")]
    RequiredExceedsLength {
        /// Sum of the required counts.
        required: usize,
        /// The length.
        length: usize,
    },
}
