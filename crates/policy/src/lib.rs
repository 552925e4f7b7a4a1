//! Password policies for credwheel.
//!
//! **Owns:** turning a policy (Vault HCL, Infisical requirements, Active Directory
//! complexity, or a builder) into passwords drawn exactly uniformly from the set of
//! strings that satisfy it, deciding satisfiability when the policy is built, and
//! checking a given password against a policy.
//!
//! **Does not own:** applying passwords to any directory or host (`credwheel-ad`,
//! `credwheel-sam`) or storing them (`credwheel-state`).
//!
//! # Should I use this crate?
//!
//! Use it through the facade as `credwheel::policy` unless you only need password
//! generation. Every format produces the same [`Policy`]:
//!
//! * [`Policy::from_vault_hcl`]: Vault password policies (plain or base64 HCL);
//!   [`Policy::to_vault_hcl`] renders a policy back when Vault can express it;
//! * [`Policy::from_infisical`] with [`InfisicalRequirements`] (serde, camelCase JSON);
//! * [`AdComplexity`]: Active Directory's "three of four categories" rule, optionally
//!   avoiding the account's `sAMAccountName` and `displayName` tokens exactly as AD
//!   rejects them;
//! * [`Policy::builder`] with [`Rule`]s, for code.
//!
//! # Example
//!
//! ```
//! use credwheel_policy::Policy;
//! use secrecy::ExposeSecret;
//!
//! let policy = Policy::from_vault_hcl(r#"
//!     length = 20
//!     rule "charset" { charset = "abcdefghijklmnopqrstuvwxyz" min-chars = 1 }
//!     rule "charset" { charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" min-chars = 1 }
//!     rule "charset" { charset = "0123456789" min-chars = 1 }
//!     rule "charset" { charset = "-" min-chars = 1 }
//! "#)?;
//! let password = policy.generate();
//! assert!(policy.check(password.expose_secret()).is_empty());
//! assert!(policy.entropy_bits() > 110.0);
//!
//! // Vault rejects this one as too restrictive; here it is exact and instant.
//! let strict = Policy::builder(20)
//!     .charset("dash", "-", 19)
//!     .charset("lower", "abcdefghijklmnopqrstuvwxyz", 1)
//!     .build()?;
//! assert_eq!(strict.count_decimal(), (20 * 26).to_string());
//! # Ok::<(), credwheel_policy::PolicyError>(())
//! ```
//!
//! # Semantics
//!
//! A password is valid when it has exactly [`Policy::length`] characters (Unicode
//! scalar values), every character is in the alphabet (the union of all rule
//! charsets, minus excluded characters), every [`Rule`] is met (at least
//! `at_least` of its classes contain at least `min_chars` characters of the
//! password each; charsets may overlap, a character counts for every class it is
//! in), and no forbidden substring occurs (case-insensitively). Satisfiability is
//! decided exactly when the policy is built; an impossible policy is a
//! [`PolicyError`] naming the rule.
//!
//! # Algorithm
//!
//! **Automaton.** Let `K` be the classes with a positive minimum. A state is the
//! vector of per-class counts, each capped at its minimum, paired with a state of an
//! Aho–Corasick automaton over the case-folded forbidden substrings (one state when
//! there are none). Reading a character moves the state deterministically; a state
//! where a forbidden substring just ended is dead. A string is valid iff the run ends
//! in an accepting state (every rule met). Characters that move every state the same
//! way (same class memberships, same folded automaton symbol) form an *atom*; the
//! automaton reads atoms.
//!
//! **Exact counts.** `C(0, s) = [s accepting]` and
//! `C(l, s) = Σ_atoms |a| · C(l-1, next(s, a))` is the number of valid completions of
//! `l` characters from `s`. The table is filled once at construction with fixed-width
//! big integers (every entry is at most `|alphabet|^length`, so the width is chosen so
//! nothing overflows). `C(length, start)` is the exact number of valid passwords:
//! it decides satisfiability and gives [`Policy::entropy_bits`].
//!
//! **Exact sampler.** From state `s` with `l` characters left, draw a uniform integer
//! `r < C(l, s)` and pick the atom `a` whose slice of the cumulative weights
//! `|a| · C(l-1, next(s, a))` contains `r`, then a uniform character of `a`. So each
//! character `c` is chosen with probability `C(l-1, next(s, c)) / C(l, s)`. *Proof of
//! uniformity:* for a valid string `x` with states `s_0 … s_n` the product of these
//! probabilities telescopes to `C(0, s_n) / C(n, s_0) = 1 / C(n, s_0)`, the same for
//! every valid `x`; invalid strings are never produced since a character with zero
//! completions has probability 0. When a state is *free* (accepting, and every
//! successor free), every completion is valid and `C(l, s) = |alphabet|^l`, so the
//! remaining characters are drawn independently and uniformly, which is the same
//! distribution.
//!
//! **Rejection sampler.** Draw `length` independent uniform characters (a byte below
//! the largest multiple of the alphabet size, reduced modulo that size, so each
//! character is exactly uniform); run the automaton; accept if it accepts, otherwise
//! draw a whole new candidate. *Proof:* each candidate is uniform over all strings, so
//! conditioned on acceptance it is uniform over the valid ones; tries are independent,
//! so the output is uniform whatever the number of tries. There is no deadline and no
//! attempt cap, so nothing is ever truncated into bias.
//!
//! The candidate check is the automaton run; without forbidden substrings, with at
//! most 8 classes and length at most 255 it is done equivalently by adding per-class
//! counts in 8-bit lanes of one `u64` and looking the mask of classes that reached
//! their minimum up in a precomputed table of rule outcomes.
//!
//! **Choice.** The acceptance probability `p = C(length, start) / |alphabet|^length`
//! is known exactly at construction. Policies with `p >= 1/8` use rejection (fewer
//! than 8 candidates on average, and the probability of needing more than 300 is
//! below 2^-57); the others use the exact sampler, whose cost does not depend on `p`.
//! [`Policy::sampling_method`] tells which.
//!
//! Both samplers take randomness only from the given [`rand::CryptoRng`];
//! [`Policy::generate`] uses `rand::rng()` (ChaCha12 seeded from the operating
//! system).
//!
//! # Limits
//!
//! Length 1 to [`MAX_LENGTH`] (1024), at most [`MAX_ALPHABET`] (256) distinct
//! printable characters (Go's `unicode.IsPrint`, as Vault: general categories L, M,
//! N, P, S and the ASCII space), at most [`MAX_CLASSES`] (64) classes, forbidden
//! substrings that can occur (made of alphabet characters) of at most
//! [`MAX_FORBIDDEN_CHARS`] (4096) characters in total; the others never occur and
//! cost nothing. The automaton
//! has `S = Π(min + 1)` (over classes with a positive minimum) times the
//! forbidden-substring automaton's states; counts take `W = ⌈log2 |alphabet|⌉ ·
//! length / 64 + 1` words. Two counting layers (`2·S·W` words) and the transition
//! table must fit in 2^22 words (32 MiB), and filling the table may take at most
//! 2^30 word operations (about `length · S · atoms · W / 2`). The full table
//! (`(length + 1)·S·W` words) is kept only when it fits that budget; a policy that
//! needs the exact sampler (acceptance below 1/8) and whose full table does not fit
//! is refused. Policies over these limits are typed errors
//! ([`PolicyError::TooComplex`], [`PolicyError::TooManyClasses`],
//! [`PolicyError::ForbiddenTooLong`], [`PolicyError::AlphabetTooLarge`]), never a
//! slow generation or a large allocation: every limit is checked before the memory
//! it guards is allocated. Within them construction takes at most about a second (a
//! 256-character AD policy with a 60-character display name: about 0.4 s); typical
//! policies (Vault, AD, Infisical, up to a few hundred characters, minimums of a few
//! characters) take microseconds.
//!
//! # Performance
//!
//! Measured figures and the command that reproduces them are in
//! `docs/performance.md`. Construction does all the work (counting, tables);
//! [`Policy::generate_into`] reuses a caller's buffer and allocates nothing.
//!
//! # Security considerations
//!
//! * Passwords are returned as [`secrecy::SecretString`] (redacted `Debug`, zeroized
//!   on drop). Intermediate buffers (random bytes, big-integer random draws, the
//!   working string, the character list in [`Policy::check`]) are zeroized; the
//!   final string is moved into the secret without a reallocation that would leave an
//!   unzeroized copy.
//! * [`Violation`]s and [`PolicyError`]s never contain password characters (only
//!   positions, rule names and the non-secret forbidden substrings).
//! * Parsing untrusted policy text never panics; its cost is linear in the input,
//!   and the construction cost is bounded by the limits above.
//! * The AD account-name check follows Microsoft's documented rule (see
//!   [`AdComplexity`]); AD's own check of the fifth category (other Unicode letters)
//!   only matters for typed passwords, which [`Policy::check`] judges by the policy's
//!   alphabet.

#![deny(missing_docs)]

mod ad;
mod bigint;
mod engine;
mod error;
mod infisical;
mod policy;
mod vault;

pub use ad::{AD_DISPLAY_NAME_DELIMITERS, AD_MAX_NAME_LEN, AD_SYMBOLS, AdComplexity};
pub use error::{
    ComplexityLimit, InfisicalErrorKind, InvalidRuleKind, ParseErrorKind, PolicyError,
};
pub use infisical::{
    INFISICAL_DEFAULT_SYMBOLS, INFISICAL_MAX_LENGTH, INFISICAL_WINDOWS_FORBIDDEN_SYMBOLS,
    InfisicalRequired, InfisicalRequirements,
};
pub use policy::{
    CharClass, MAX_ALPHABET, MAX_CLASSES, MAX_FORBIDDEN_CHARS, MAX_LENGTH, PasswordBuffer, Policy,
    PolicyBuilder, Rule, SamplingMethod, Violation,
};

/// `a` to `z`.
pub const LOWERCASE: &str = "abcdefghijklmnopqrstuvwxyz";
/// `A` to `Z`.
pub const UPPERCASE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// `0` to `9`.
pub const DIGITS: &str = "0123456789";
/// Vault's full symbol set (printable ASCII punctuation).
pub const VAULT_SYMBOLS: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

#[cfg(test)]
mod tests;
