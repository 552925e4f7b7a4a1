//! The `Policy` type, its rules, its builder and password checking.

use std::collections::BTreeSet;
use std::sync::Arc;

use rand::CryptoRng;
use secrecy::SecretString;
use zeroize::{Zeroize, Zeroizing};

use crate::engine::{self, Counter, CounterRule, Engine, EngineError, EngineSpec};
use crate::error::{InvalidRuleKind, PolicyError};

/// Longest password a policy may generate.
///
/// Vault accepts lengths up to 100, Infisical up to 250 and Active Directory stores
/// passwords of up to 256 characters; 1024 leaves room for long passphrase-like
/// secrets while keeping the exact counting tables bounded.
pub const MAX_LENGTH: usize = 1024;

/// Largest alphabet (distinct characters in the union of all charsets), as in Vault.
pub const MAX_ALPHABET: usize = 256;

/// Most character classes (counters) over all rules of one policy.
pub const MAX_CLASSES: usize = 64;

/// Most characters, in total, of the forbidden substrings that can occur in a
/// password (substrings with a character outside the alphabet can never occur and
/// are not counted). Each character is at most one state of the substring
/// automaton, so this bounds its size; Active Directory's names need at most
/// `3 × 256`.
pub const MAX_FORBIDDEN_CHARS: usize = 4096;

/// A set of characters with a minimum count, part of a [`Rule`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharClass {
    charset: String,
    min_chars: usize,
}

impl CharClass {
    /// A class of the given characters (duplicates are ignored) requiring at least
    /// `min_chars` of them.
    pub fn new(charset: &str, min_chars: usize) -> Self {
        CharClass {
            charset: charset.to_owned(),
            min_chars,
        }
    }

    /// The characters, as given.
    pub fn charset(&self) -> &str {
        &self.charset
    }

    /// The minimum count.
    pub fn min_chars(&self) -> usize {
        self.min_chars
    }
}

/// One requirement of a policy: at least [`at_least`](Rule::at_least) of its classes
/// must each contribute at least their `min_chars` characters.
///
/// Every character of every class belongs to the policy's alphabet (as in Vault, the
/// alphabet is the union of the rules' charsets).
///
/// * A Vault `rule "charset"` is [`Rule::charset`]: one class, `at_least` = 1.
/// * Active Directory's "three of four categories" is [`Rule::at_least_of`] with
///   four classes of minimum 1 and `at_least` = 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    name: String,
    classes: Vec<CharClass>,
    at_least: usize,
}

impl Rule {
    /// "At least `min_chars` characters from `charset`" (a Vault charset rule).
    pub fn charset(name: impl Into<String>, charset: &str, min_chars: usize) -> Self {
        Rule {
            name: name.into(),
            classes: vec![CharClass::new(charset, min_chars)],
            at_least: 1,
        }
    }

    /// "At least `at_least` of these classes reach their minimum".
    pub fn at_least_of(
        name: impl Into<String>,
        at_least: usize,
        classes: impl IntoIterator<Item = CharClass>,
    ) -> Self {
        Rule {
            name: name.into(),
            classes: classes.into_iter().collect(),
            at_least,
        }
    }

    /// The rule's name, used in errors and violations.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The classes.
    pub fn classes(&self) -> &[CharClass] {
        &self.classes
    }

    /// How many classes must reach their minimum.
    pub fn at_least(&self) -> usize {
        self.at_least
    }

    /// A lower bound on the characters this rule needs on its own: with pairwise
    /// disjoint classes, the sum of the `at_least` smallest minimums (exact); with
    /// overlapping classes one character may count for several, so only the
    /// `at_least`-th smallest minimum is certain.
    fn min_required(&self, disjoint: bool) -> usize {
        let mut mins: Vec<usize> = self.classes.iter().map(|c| c.min_chars).collect();
        mins.sort_unstable();
        if disjoint {
            mins.iter()
                .take(self.at_least)
                .fold(0usize, |a, &b| a.saturating_add(b))
        } else {
            mins.get(self.at_least.saturating_sub(1))
                .copied()
                .unwrap_or(0)
        }
    }
}

/// Whether the sets are pairwise disjoint.
fn pairwise_disjoint<'a>(sets: impl IntoIterator<Item = &'a BTreeSet<char>>) -> bool {
    let mut seen = BTreeSet::new();
    for set in sets {
        for c in set {
            if !seen.insert(*c) {
                return false;
            }
        }
    }
    true
}

/// A way a password fails a policy, from [`Policy::check`].
///
/// Violations never contain characters of the checked password.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// The password does not have the policy's length (in characters).
    Length {
        /// The policy's length.
        expected: usize,
        /// The password's length.
        actual: usize,
    },
    /// The character at this 0-based position is not in the alphabet.
    CharacterNotAllowed {
        /// 0-based character position.
        position: usize,
    },
    /// The named rule is not met.
    Rule {
        /// The rule's name.
        name: String,
    },
    /// The password contains a forbidden substring (compared case-insensitively),
    /// such as the account name.
    ContainsForbidden {
        /// The forbidden substring (an account name or display-name token, not a secret).
        substring: String,
    },
}

impl core::fmt::Display for Violation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Violation::Length { expected, actual } => {
                write!(f, "length is {actual}, the policy requires {expected}")
            }
            Violation::CharacterNotAllowed { position } => {
                write!(f, "character at position {position} is not allowed")
            }
            Violation::Rule { name } => write!(f, "rule not met: {name}"),
            Violation::ContainsForbidden { substring } => {
                write!(f, "contains the forbidden substring {substring:?}")
            }
        }
    }
}

/// Which sampler a policy uses; see the crate documentation ("Algorithm").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SamplingMethod {
    /// Rejection of whole uniform candidates (acceptance probability at least 1/8).
    Rejection,
    /// Sampling from exact counts (used when rejection would need many tries).
    Exact,
}

/// Builds a [`Policy`] in code.
///
/// ```
/// use credwheel_policy::{Policy, Rule};
/// let policy = Policy::builder(16)
///     .rule(Rule::charset("lower", "abcdefghijklmnopqrstuvwxyz", 2))
///     .rule(Rule::charset("digits", "0123456789", 2))
///     .build()?;
/// assert_eq!(policy.length(), 16);
/// # Ok::<(), credwheel_policy::PolicyError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct PolicyBuilder {
    length: usize,
    rules: Vec<Rule>,
    exclude: String,
    forbidden: Vec<String>,
}

impl PolicyBuilder {
    /// Adds a rule.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Shorthand for `.rule(Rule::charset(name, charset, min_chars))`.
    pub fn charset(self, name: impl Into<String>, charset: &str, min_chars: usize) -> Self {
        self.rule(Rule::charset(name, charset, min_chars))
    }

    /// Characters removed from every charset (and so never generated), as Infisical
    /// removes `"`.
    pub fn exclude(mut self, chars: &str) -> Self {
        self.exclude.push_str(chars);
        self
    }

    /// Passwords must not contain `substring`, compared case-insensitively (simple
    /// per-character lowercase folding). Empty substrings are ignored.
    pub fn forbid_substring(mut self, substring: &str) -> Self {
        if !substring.is_empty() {
            self.forbidden.push(substring.to_owned());
        }
        self
    }

    /// Validates the policy, decides satisfiability and precomputes the tables.
    pub fn build(self) -> Result<Policy, PolicyError> {
        Policy::compile(self)
    }
}

/// Go's `unicode.IsPrint`, which Vault applies to charsets: letters, marks,
/// numbers, punctuation and symbols (general categories L, M, N, P, S), and the
/// ASCII space. Everything else (controls, format characters such as bidi
/// overrides, other separators such as U+00A0, private use, unassigned) is not.
pub(crate) fn is_printable(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup as G, UnicodeGeneralCategory};
    c == ' '
        || matches!(
            c.general_category_group(),
            G::Letter | G::Mark | G::Number | G::Punctuation | G::Symbol
        )
}

/// A password policy: a length, rules, and optionally forbidden substrings.
///
/// Cheap to clone (the precomputed tables are shared). See the crate documentation.
#[derive(Clone)]
pub struct Policy {
    length: usize,
    rules: Vec<Rule>,
    forbidden: Vec<String>,
    /// Per rule, its classes' character sets restricted to the alphabet.
    class_sets: Vec<Vec<BTreeSet<char>>>,
    engine: Arc<Engine>,
}

impl core::fmt::Debug for Policy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Policy")
            .field("length", &self.length)
            .field("alphabet_size", &self.engine.alphabet().len())
            .field("rules", &self.rules)
            .field("forbidden", &self.forbidden)
            .field("entropy_bits", &self.entropy_bits())
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Starts a builder for passwords of `length` characters.
    pub fn builder(length: usize) -> PolicyBuilder {
        PolicyBuilder {
            length,
            rules: Vec::new(),
            exclude: String::new(),
            forbidden: Vec::new(),
        }
    }

    /// Vault's built-in default: length 20, at least one each of lowercase, uppercase,
    /// digit and `-`.
    pub fn vault_default() -> Policy {
        // Invariant: these four disjoint classes with minimum 1 fit in 20 characters and
        // are far inside every limit, so `build` cannot fail (the test suite builds it).
        match Policy::builder(20)
            .charset("lowercase", crate::LOWERCASE, 1)
            .charset("uppercase", crate::UPPERCASE, 1)
            .charset("digits", crate::DIGITS, 1)
            .charset("dash", "-", 1)
            .build()
        {
            Ok(p) => p,
            Err(e) => unreachable!("the Vault default policy is valid: {e}"),
        }
    }

    fn compile(b: PolicyBuilder) -> Result<Policy, PolicyError> {
        let length = b.length;
        if length == 0 {
            return Err(PolicyError::LengthZero);
        }
        if length > MAX_LENGTH {
            return Err(PolicyError::LengthTooLarge {
                length,
                max: MAX_LENGTH,
            });
        }
        if b.rules.is_empty() {
            return Err(PolicyError::NoRules);
        }
        let excluded: BTreeSet<char> = b.exclude.chars().collect();
        let mut alphabet_set = BTreeSet::new();
        let mut class_sets = Vec::with_capacity(b.rules.len());
        let mut n_classes = 0usize;
        for (index, rule) in b.rules.iter().enumerate() {
            if rule.classes.is_empty() {
                return Err(PolicyError::InvalidRule {
                    rule: rule.name.clone(),
                    index,
                    kind: InvalidRuleKind::NoClasses,
                });
            }
            if rule.at_least == 0 || rule.at_least > rule.classes.len() {
                return Err(PolicyError::InvalidRule {
                    rule: rule.name.clone(),
                    index,
                    kind: InvalidRuleKind::AtLeastOutOfRange {
                        at_least: rule.at_least,
                        classes: rule.classes.len(),
                    },
                });
            }
            let mut sets = Vec::with_capacity(rule.classes.len());
            for class in &rule.classes {
                if class.charset.is_empty() {
                    return Err(PolicyError::EmptyCharset {
                        rule: rule.name.clone(),
                    });
                }
                if let Some(c) = class.charset.chars().find(|&c| !is_printable(c)) {
                    return Err(PolicyError::NonPrintable {
                        rule: rule.name.clone(),
                        code_point: u32::from(c),
                    });
                }
                let set: BTreeSet<char> = class
                    .charset
                    .chars()
                    .filter(|c| !excluded.contains(c))
                    .collect();
                if set.is_empty() {
                    return Err(PolicyError::CharsetExcluded {
                        rule: rule.name.clone(),
                    });
                }
                alphabet_set.extend(set.iter().copied());
                sets.push(set);
            }
            n_classes += rule.classes.len();
            let required = rule.min_required(pairwise_disjoint(&sets));
            if required > length {
                return Err(PolicyError::RuleExceedsLength {
                    rule: rule.name.clone(),
                    required,
                    length,
                });
            }
            class_sets.push(sets);
        }
        if alphabet_set.len() > MAX_ALPHABET {
            return Err(PolicyError::AlphabetTooLarge {
                size: alphabet_set.len(),
                max: MAX_ALPHABET,
            });
        }
        if n_classes > MAX_CLASSES {
            return Err(PolicyError::TooManyClasses {
                classes: n_classes,
                max: MAX_CLASSES,
            });
        }
        let alphabet: Vec<char> = alphabet_set.into_iter().collect();

        // Counters: one per class with a positive minimum (a class with minimum 0 is
        // always met and only contributes characters).
        let mut counters = Vec::new();
        let mut char_counters = vec![0u64; alphabet.len()];
        let mut counter_rules = Vec::new();
        for (rule, sets) in b.rules.iter().zip(&class_sets) {
            let mut ids = Vec::new();
            let mut always_met = 0usize;
            for (class, set) in rule.classes.iter().zip(sets) {
                if class.min_chars == 0 {
                    always_met += 1;
                    continue;
                }
                if class.min_chars > length {
                    // Never met; it still counts against `at_least`.
                    continue;
                }
                let k = counters.len();
                counters.push(Counter {
                    min: class.min_chars,
                });
                for (i, c) in alphabet.iter().enumerate() {
                    if set.contains(c) {
                        char_counters[i] |= 1u64 << k;
                    }
                }
                ids.push(k);
            }
            counter_rules.push(CounterRule {
                counters: ids,
                at_least: rule.at_least.saturating_sub(always_met),
            });
        }
        // Only substrings made of (folded) alphabet characters can occur; the others
        // need no automaton states.
        let folded_alphabet: BTreeSet<char> =
            alphabet.iter().map(|&c| engine::fold_char(c)).collect();
        let mut forbidden: Vec<Vec<char>> = Vec::new();
        let mut forbidden_chars = 0usize;
        for s in &b.forbidden {
            let folded: Option<Vec<char>> = s
                .chars()
                .map(|c| {
                    let f = engine::fold_char(c);
                    folded_alphabet.contains(&f).then_some(f)
                })
                .collect();
            if let Some(f) = folded {
                forbidden_chars = forbidden_chars.saturating_add(f.len());
                if forbidden_chars > MAX_FORBIDDEN_CHARS {
                    return Err(PolicyError::ForbiddenTooLong {
                        chars: forbidden_chars,
                        max: MAX_FORBIDDEN_CHARS,
                    });
                }
                forbidden.push(f);
            }
        }
        let spec = EngineSpec {
            length,
            alphabet: &alphabet,
            char_counters: &char_counters,
            counters: &counters,
            rules: &counter_rules,
            forbidden: &forbidden,
        };
        let engine = Engine::build(&spec).map_err(|e| match e {
            EngineError::TooComplex { limit, needed, max } => {
                PolicyError::TooComplex { limit, needed, max }
            }
        })?;
        if !engine.is_satisfiable() {
            // Name the culprits: with pairwise disjoint classes (over all rules) the
            // sum of the rules' minimums is what the length must hold.
            let disjoint = pairwise_disjoint(
                b.rules
                    .iter()
                    .zip(&class_sets)
                    .flat_map(|(r, sets)| r.classes.iter().zip(sets))
                    .filter(|(c, _)| c.min_chars > 0)
                    .map(|(_, set)| set),
            );
            let with_min: Vec<&Rule> = b
                .rules
                .iter()
                .filter(|r| r.min_required(true) > 0)
                .collect();
            let required = with_min
                .iter()
                .fold(0usize, |a, r| a.saturating_add(r.min_required(true)));
            if disjoint && required > length && b.forbidden.is_empty() {
                return Err(PolicyError::MinimumsExceedLength {
                    rules: with_min.iter().map(|r| r.name.clone()).collect(),
                    required,
                    length,
                });
            }
            let mut rules: Vec<String> = b.rules.iter().map(|r| r.name.clone()).collect();
            if !b.forbidden.is_empty() {
                rules.push("forbidden substrings".into());
            }
            return Err(PolicyError::Unsatisfiable { rules, length });
        }
        Ok(Policy {
            length,
            rules: b.rules,
            forbidden: b.forbidden,
            class_sets,
            engine: Arc::new(engine),
        })
    }

    /// The password length, in characters.
    pub fn length(&self) -> usize {
        self.length
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The alphabet: every character a generated password may contain, sorted.
    pub fn alphabet(&self) -> &[char] {
        self.engine.alphabet()
    }

    /// Per rule, the effective character set of each class (after exclusions).
    pub(crate) fn class_sets(&self) -> &[Vec<BTreeSet<char>>] {
        &self.class_sets
    }

    /// The forbidden substrings (compared case-insensitively).
    pub fn forbidden_substrings(&self) -> &[String] {
        &self.forbidden
    }

    /// log2 of the exact number of valid passwords (computed with exact big-integer
    /// counts; the result is rounded only when converted to `f64`).
    pub fn entropy_bits(&self) -> f64 {
        self.engine.log2_count()
    }

    /// The exact number of valid passwords, as a decimal string.
    pub fn count_decimal(&self) -> String {
        limbs_to_decimal(self.engine.count_limbs())
    }

    /// The probability that a uniformly random string over the alphabet is valid.
    pub fn acceptance_probability(&self) -> f64 {
        self.engine.acceptance()
    }

    /// Which sampler this policy uses.
    pub fn sampling_method(&self) -> SamplingMethod {
        match self.engine.method() {
            engine::Method::Rejection => SamplingMethod::Rejection,
            engine::Method::Exact => SamplingMethod::Exact,
        }
    }

    /// Generates a password with the thread-local cryptographically secure generator
    /// (`rand::rng()`: ChaCha12 seeded and periodically reseeded from the operating
    /// system).
    #[must_use = "a generated password that is not used is lost"]
    pub fn generate(&self) -> SecretString {
        self.generate_with(&mut rand::rng())
    }

    /// Generates a password with the given cryptographically secure generator.
    #[must_use = "a generated password that is not used is lost"]
    pub fn generate_with<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> SecretString {
        let mut s = String::with_capacity(self.engine.max_bytes());
        self.engine.generate(rng, &mut s);
        into_secret(s)
    }

    /// Generates a password into `buf` (its previous content is zeroized first),
    /// reusing its allocation: the allocation-free form for high volumes.
    pub fn generate_into<R: CryptoRng + ?Sized>(&self, rng: &mut R, buf: &mut PasswordBuffer) {
        buf.0.zeroize();
        buf.0.reserve(self.engine.max_bytes());
        self.engine.generate(rng, &mut buf.0);
    }

    /// Whether the password satisfies the policy.
    pub fn is_valid(&self, password: &str) -> bool {
        self.check(password).is_empty()
    }

    /// Every way `password` violates the policy (empty if it is valid).
    pub fn check(&self, password: &str) -> Vec<Violation> {
        let mut out = Vec::new();
        let chars: Zeroizing<Vec<char>> = Zeroizing::new(password.chars().collect());
        if chars.len() != self.length {
            out.push(Violation::Length {
                expected: self.length,
                actual: chars.len(),
            });
        }
        for (position, c) in chars.iter().enumerate() {
            if self.engine.alphabet().binary_search(c).is_err() {
                out.push(Violation::CharacterNotAllowed { position });
            }
        }
        for (rule, sets) in self.rules.iter().zip(&self.class_sets) {
            let met = rule
                .classes
                .iter()
                .zip(sets)
                .filter(|(class, set)| {
                    chars.iter().filter(|c| set.contains(c)).count() >= class.min_chars
                })
                .count();
            if met < rule.at_least {
                out.push(Violation::Rule {
                    name: rule.name.clone(),
                });
            }
        }
        if !self.forbidden.is_empty() {
            let folded: Zeroizing<Vec<char>> =
                Zeroizing::new(chars.iter().map(|&c| engine::fold_char(c)).collect());
            for f in &self.forbidden {
                let needle: Vec<char> = f.chars().map(engine::fold_char).collect();
                if folded.windows(needle.len()).any(|w| w == needle.as_slice()) {
                    out.push(Violation::ContainsForbidden {
                        substring: f.clone(),
                    });
                }
            }
        }
        out
    }

    /// Test hook: draw with a specific sampler.
    #[cfg(test)]
    pub(crate) fn generate_method_with<R: rand::RngCore + ?Sized>(
        &self,
        method: SamplingMethod,
        rng: &mut R,
    ) -> String {
        let mut s = String::new();
        match method {
            SamplingMethod::Rejection => self.engine.generate_rejection(rng, &mut s),
            SamplingMethod::Exact => self.engine.generate_exact(rng, &mut s),
        }
        s
    }

    #[cfg(test)]
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// A reusable, zeroize-on-drop buffer for [`Policy::generate_into`].
///
/// Its `Debug` is redacted; read the password with
/// [`expose_secret`](PasswordBuffer::expose_secret) only where it is used.
#[derive(Default)]
pub struct PasswordBuffer(Zeroizing<String>);

impl PasswordBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        PasswordBuffer::default()
    }

    /// The password last generated into this buffer.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Moves the password out as a [`SecretString`] (the buffer is left empty).
    pub fn into_secret(self) -> SecretString {
        let mut inner = self.0;
        into_secret(core::mem::take(&mut *inner))
    }
}

impl core::fmt::Debug for PasswordBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PasswordBuffer([REDACTED])")
    }
}

/// Moves a string into a `SecretString` without leaving an unzeroized copy behind:
/// `into_boxed_str` reallocates (and frees without zeroizing) when capacity exceeds
/// length, so copy into an exact-size allocation first and zeroize the original.
fn into_secret(s: String) -> SecretString {
    if s.len() == s.capacity() {
        return SecretString::from(s);
    }
    let s = Zeroizing::new(s);
    SecretString::new(Box::<str>::from(s.as_str()))
}

/// Decimal rendering of little-endian limbs (repeated division by 10^19).
fn limbs_to_decimal(limbs: &[u64]) -> String {
    let mut n: Vec<u64> = limbs.to_vec();
    let mut parts = Vec::new();
    const BASE: u64 = 10_000_000_000_000_000_000;
    while n.iter().any(|&x| x != 0) {
        let mut rem: u128 = 0;
        for x in n.iter_mut().rev() {
            let cur = (rem << 64) | u128::from(*x);
            *x = (cur / u128::from(BASE)) as u64;
            rem = cur % u128::from(BASE);
        }
        parts.push(rem as u64);
    }
    let mut out = match parts.pop() {
        Some(top) => top.to_string(),
        None => return "0".into(),
    };
    for p in parts.iter().rev() {
        out.push_str(&format!("{p:019}"));
    }
    out
}
