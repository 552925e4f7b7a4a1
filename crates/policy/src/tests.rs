//! In-crate tests: exact counts against brute force, and chi-square uniformity of
//! both samplers (and the failure of the naive sampler) on enumerable policies.

use std::collections::HashMap;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::{Policy, Rule, SamplingMethod};

/// All strings of `len` characters over `alphabet`.
fn all_strings(alphabet: &[char], len: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    for _ in 0..len {
        let mut next = Vec::with_capacity(out.len() * alphabet.len());
        for s in &out {
            for &c in alphabet {
                let mut t = s.clone();
                t.push(c);
                next.push(t);
            }
        }
        out = next;
    }
    out
}

fn valid_set(policy: &Policy) -> Vec<String> {
    all_strings(policy.alphabet(), policy.length())
        .into_iter()
        .filter(|s| policy.is_valid(s))
        .collect()
}

/// Upper critical value of chi-square with `df` degrees of freedom at normal
/// quantile `z` (Wilson–Hilferty approximation).
fn chi2_critical(df: f64, z: f64) -> f64 {
    let a = 2.0 / (9.0 * df);
    df * (1.0 - a + z * a.sqrt()).powi(3)
}

/// Chi-square statistic of `samples` draws against the uniform distribution on
/// `valid`; also fails if any sample is outside `valid`.
fn chi2(valid: &[String], samples: usize, mut draw: impl FnMut() -> String) -> f64 {
    let mut counts: HashMap<String, usize> = valid.iter().map(|s| (s.clone(), 0)).collect();
    for _ in 0..samples {
        let s = draw();
        let slot = counts
            .get_mut(&s)
            .unwrap_or_else(|| panic!("sampler produced an invalid password"));
        *slot += 1;
    }
    let expected = samples as f64 / valid.len() as f64;
    counts
        .values()
        .map(|&o| (o as f64 - expected).powi(2) / expected)
        .sum()
}

/// The naive sampler: for each rule, its minimum of characters from its charset; fill
/// up with uniform characters of the alphabet; shuffle (Fisher–Yates). Not uniform.
fn naive(policy: &Policy, rng: &mut impl RngCore) -> String {
    let mut chars: Vec<char> = Vec::new();
    for rule in policy.rules() {
        let class = &rule.classes()[0];
        let set: Vec<char> = class.charset().chars().collect();
        for _ in 0..class.min_chars() {
            chars.push(set[crate::bigint::uniform_u32(rng, set.len() as u32) as usize]);
        }
    }
    let alphabet = policy.alphabet();
    while chars.len() < policy.length() {
        chars.push(alphabet[crate::bigint::uniform_u32(rng, alphabet.len() as u32) as usize]);
    }
    for i in (1..chars.len()).rev() {
        let j = crate::bigint::uniform_u32(rng, i as u32 + 1) as usize;
        chars.swap(i, j);
    }
    chars.into_iter().collect()
}

fn two_class() -> Policy {
    Policy::builder(4)
        .charset("a", "a", 1)
        .charset("b", "b", 1)
        .build()
        .unwrap()
}

fn overlapping() -> Policy {
    Policy::builder(4)
        .charset("abc", "abc", 2)
        .charset("cd", "cd", 2)
        .build()
        .unwrap()
}

fn ad_like() -> Policy {
    Policy::builder(4)
        .rule(Rule::at_least_of(
            "2 of 3",
            2,
            [
                crate::CharClass::new("ab", 1),
                crate::CharClass::new("X", 1),
                crate::CharClass::new("7", 1),
            ],
        ))
        .forbid_substring("ab")
        .build()
        .unwrap()
}

/// Ten characters: 256 % 10 = 6 > 4, so candidates come from 16-bit draws.
fn ten_chars(forbid: bool) -> Policy {
    let b = Policy::builder(3)
        .charset("zero", "0", 1)
        .charset("low", "123", 1)
        .charset("rest", "456789", 0);
    if forbid { b.forbid_substring("01") } else { b }
        .build()
        .unwrap()
}

/// Three characters: 256 % 3 = 1, so candidates come from bytes with byte 255
/// rejected (the byte-rejection path).
fn three_chars() -> Policy {
    Policy::builder(5)
        .charset("x", "x", 1)
        .charset("yz", "yz", 2)
        .build()
        .unwrap()
}

/// Seven characters (256 % 7 = 4: bytes 252..=255 rejected) with a forbidden
/// substring, so the byte path steps the automaton instead of the packed counters.
fn seven_chars_forbidden() -> Policy {
    Policy::builder(3)
        .charset("a", "a", 1)
        .charset("rest", "bcdefg", 0)
        .forbid_substring("ab")
        .build()
        .unwrap()
}

/// Draws per cell (expected count per valid string).
const PER_CELL: usize = 200;
/// Normal quantile for the threshold: p = 1e-4 upper tail.
const Z: f64 = 3.719;

#[test]
fn counts_match_brute_force() {
    for p in [
        two_class(),
        overlapping(),
        ad_like(),
        ten_chars(false),
        ten_chars(true),
    ] {
        let valid = valid_set(&p);
        assert_eq!(p.count_decimal(), valid.len().to_string(), "{p:?}");
        assert!((p.entropy_bits() - (valid.len() as f64).log2()).abs() < 1e-9);
        // The automaton agrees with `check` on every string.
        for s in all_strings(p.alphabet(), p.length()) {
            let idx: Vec<usize> = s
                .chars()
                .map(|c| p.alphabet().binary_search(&c).unwrap())
                .collect();
            assert_eq!(p.engine().accepts_indices(&idx), p.is_valid(&s), "{s}");
        }
    }
    assert_eq!(two_class().count_decimal(), "14");
}

#[test]
fn both_samplers_pass_chi_square() {
    for (k, p) in [two_class(), overlapping(), ad_like()]
        .into_iter()
        .enumerate()
    {
        let valid = valid_set(&p);
        let n = valid.len() * PER_CELL;
        let limit = chi2_critical(valid.len() as f64 - 1.0, Z);
        for method in [SamplingMethod::Rejection, SamplingMethod::Exact] {
            let mut rng = ChaCha20Rng::seed_from_u64(1000 + k as u64);
            let stat = chi2(&valid, n, || p.generate_method_with(method, &mut rng));
            assert!(
                stat < limit,
                "{method:?} on policy {k}: chi2 {stat:.1} >= {limit:.1}"
            );
        }
        // The big-integer walk (used for counts of 2^128 and more) on the same policy.
        let mut rng = ChaCha20Rng::seed_from_u64(500 + k as u64);
        let stat = chi2(&valid, n, || {
            let mut s = String::new();
            p.engine().generate_exact_big(&mut rng, &mut s);
            s
        });
        assert!(stat < limit, "big-integer walk on policy {k}: {stat:.1}");
        // And the public entry point (whatever method it picked).
        let mut rng = ChaCha20Rng::seed_from_u64(77 + k as u64);
        let stat = chi2(&valid, n, || {
            use secrecy::ExposeSecret;
            p.generate_with(&mut rng).expose_secret().to_owned()
        });
        assert!(stat < limit, "generate_with on policy {k}: {stat:.1}");
    }
}

/// Alphabets whose size does not divide 256: the byte path with rejected bytes
/// (3 and 7 characters) and the 16-bit Lemire path (10 characters, 256 % 10 > 4),
/// each with packed counters and with the automaton (forbidden substrings).
#[test]
fn rejection_paths_for_sizes_not_dividing_256_pass_chi_square() {
    let cases = [
        ("bytes, packed", three_chars(), false),
        ("bytes, automaton", seven_chars_forbidden(), false),
        ("u16, packed", ten_chars(false), true),
        ("u16, automaton", ten_chars(true), true),
    ];
    for (k, (name, p, sixteen_bit)) in cases.into_iter().enumerate() {
        let n = p.alphabet().len();
        assert_ne!(256 % n, 0, "{name}");
        assert_eq!(256 % n > 4, sixteen_bit, "{name}: wrong path");
        let valid = valid_set(&p);
        assert!(valid.len() > 20, "{name}");
        let draws = valid.len() * PER_CELL;
        let limit = chi2_critical(valid.len() as f64 - 1.0, Z);
        let mut rng = ChaCha20Rng::seed_from_u64(3000 + k as u64);
        let stat = chi2(&valid, draws, || {
            p.generate_method_with(SamplingMethod::Rejection, &mut rng)
        });
        assert!(stat < limit, "{name}: chi2 {stat:.1} >= {limit:.1}");
    }
}

/// The chi-square test above can fail: a sampler that reduces 4-bit draws modulo
/// the alphabet size without rejecting the top value (16 % 3 = 1, so the first
/// character is favoured by 6/16 against 5/16) is caught on the same policy and
/// number of draws.
#[test]
fn modulo_bias_fails_chi_square() {
    let p = three_chars();
    let valid = valid_set(&p);
    let alphabet = p.alphabet().to_vec();
    let draws = valid.len() * PER_CELL;
    let limit = chi2_critical(valid.len() as f64 - 1.0, Z);
    let mut rng = ChaCha20Rng::seed_from_u64(4000);
    let stat = chi2(&valid, draws, || {
        loop {
            let x = rng.next_u64();
            let s: String = (0..p.length())
                .map(|k| alphabet[((x >> (4 * k)) & 0xF) as usize % alphabet.len()])
                .collect();
            if p.is_valid(&s) {
                break s;
            }
        }
    });
    assert!(
        stat > limit,
        "biased sampler passed: {stat:.1} < {limit:.1}"
    );
}

#[test]
fn naive_required_then_shuffle_fails_chi_square() {
    for (k, p) in [two_class(), overlapping()].into_iter().enumerate() {
        let valid = valid_set(&p);
        let n = valid.len() * PER_CELL;
        let limit = chi2_critical(valid.len() as f64 - 1.0, Z);
        let mut rng = ChaCha20Rng::seed_from_u64(2000 + k as u64);
        let stat = chi2(&valid, n, || naive(&p, &mut rng));
        assert!(
            stat > limit,
            "naive sampler unexpectedly passed on policy {k}: {stat:.1} < {limit:.1}"
        );
    }
}

#[test]
fn sampler_choice_follows_acceptance() {
    // Vault default: about 27% of random strings pass, so rejection is used.
    let d = Policy::vault_default();
    assert_eq!(d.sampling_method(), SamplingMethod::Rejection);
    assert!(d.acceptance_probability() > 0.2 && d.acceptance_probability() < 0.35);
    // One dash in 19: hopeless for rejection, exact sampling instead.
    let hard = Policy::builder(20)
        .charset("dash", "-", 19)
        .charset("lower", crate::LOWERCASE, 1)
        .build()
        .unwrap();
    assert_eq!(hard.sampling_method(), SamplingMethod::Exact);
    assert!(hard.acceptance_probability() < 1e-20);
}
