//! Integration tests for credwheel-policy: formats, errors, checks, and properties.
// Tests unwrap freely (clippy.toml allows it inside #[test]; helpers need it too).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use credwheel_policy::{
    AdComplexity, CharClass, ComplexityLimit, DIGITS, InfisicalRequirements, InvalidRuleKind,
    LOWERCASE, MAX_CLASSES, ParseErrorKind, PasswordBuffer, Policy, PolicyError, Rule,
    SamplingMethod, UPPERCASE, VAULT_SYMBOLS, Violation,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use secrecy::ExposeSecret;

const VAULT_DEFAULT_HCL: &str = r#"
# Vault's built-in default policy
length = 20
rule "charset" {
  charset   = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 1
}
rule "charset" {
  charset   = "0123456789"
  min-chars = 1
}
rule "charset" {
  charset   = "-"
  min-chars = 1
}
"#;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

#[test]
fn vault_hcl_matches_builtin_default() {
    let p = Policy::from_vault_hcl(VAULT_DEFAULT_HCL).unwrap();
    let d = Policy::vault_default();
    assert_eq!(p.count_decimal(), d.count_decimal());
    assert_eq!(p.alphabet(), d.alphabet());
    assert_eq!(p.alphabet().len(), 63);
    assert_eq!(p.rules()[1].name(), "rule 2 (line 8)");
    let mut r = rng(1);
    for _ in 0..200 {
        let pw = p.generate_with(&mut r);
        assert_eq!(pw.expose_secret().len(), 20);
        assert!(p.check(pw.expose_secret()).is_empty());
    }
}

#[test]
fn to_vault_hcl_only_when_expressible() {
    let hcl = Policy::vault_default().to_vault_hcl().unwrap();
    assert!(hcl.starts_with("length = 20\n"));
    assert_eq!(
        Policy::from_vault_hcl(&hcl).unwrap().count_decimal(),
        Policy::vault_default().count_decimal()
    );
    let odd = Policy::builder(4)
        .charset("interp", "${", 1)
        .charset("quotes", "\"\\", 1)
        .build()
        .unwrap();
    let hcl = odd.to_vault_hcl().unwrap();
    assert!(hcl.contains(r#"charset   = "\u0024{""#), "{hcl}");
    assert!(hcl.contains(r#"charset   = "\"\\""#), "{hcl}");
    assert_eq!(
        Policy::from_vault_hcl(&hcl).unwrap().alphabet(),
        odd.alphabet()
    );
    assert!(
        AdComplexity::new(10)
            .build()
            .unwrap()
            .to_vault_hcl()
            .is_none()
    );
    let named = Policy::builder(10)
        .charset("a", LOWERCASE, 1)
        .forbid_substring("abc")
        .build()
        .unwrap();
    assert!(named.to_vault_hcl().is_none());
}

#[test]
fn vault_hcl_base64_is_accepted() {
    let b64 = base64::engine::general_purpose::STANDARD.encode(VAULT_DEFAULT_HCL);
    let p = Policy::from_vault_hcl(&b64).unwrap();
    assert_eq!(p.count_decimal(), Policy::vault_default().count_decimal());
    // With surrounding whitespace as well, as a form field might carry it.
    let p2 = Policy::from_vault_hcl(&format!("\n {b64}\n")).unwrap();
    assert_eq!(p2.length(), 20);
    // Garbage that is valid base64 of non-HCL text is a parse error, not a panic.
    let junk = base64::engine::general_purpose::STANDARD.encode("not a policy");
    assert!(matches!(
        Policy::from_vault_hcl(&junk),
        Err(PolicyError::Parse { .. })
    ));
}

#[test]
fn vault_hcl_string_escapes_and_errors() {
    let p = Policy::from_vault_hcl(
        "length = 4\nrule \"charset\" { charset = \"\\\"\\\\\\u0041\" min-chars = 4 }",
    )
    .unwrap();
    assert_eq!(p.alphabet(), &['"', 'A', '\\']);
    let e = Policy::from_vault_hcl("length = 4\nrule \"charset\" {\n charset = \"a\\tb\"\n}")
        .unwrap_err();
    assert!(
        matches!(e, PolicyError::NonPrintable { code_point: 9, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("rule 1 (line 2)"), "{e}");
    let e =
        Policy::from_vault_hcl("length = 4\nrule \"charset\" {\n  min_chars = 1\n}").unwrap_err();
    assert_eq!(
        e,
        PolicyError::Parse {
            line: 3,
            column: 3,
            offset: 30,
            kind: ParseErrorKind::UnknownRuleKey {
                key: "min_chars".into()
            }
        }
    );
    assert_eq!(
        e.to_string(),
        "line 3, column 3: unknown key \"min_chars\" in charset rule (expected `charset` or `min-chars`)"
    );
    let e = Policy::from_vault_hcl("length = 0\nrule \"charset\" { charset = \"a\" }").unwrap_err();
    assert_eq!(e, PolicyError::LengthZero);
    let e = Policy::from_vault_hcl("length = 8").unwrap_err();
    assert_eq!(e, PolicyError::NoRules);
    let e = Policy::from_vault_hcl("length = 8\nrule \"charset\" { charset = \"\" }").unwrap_err();
    assert!(matches!(e, PolicyError::EmptyCharset { .. }), "{e:?}");
}

/// Policies Vault rejects as too restrictive (its 1 s deadline / 10-try check),
/// although they are satisfiable: they generate here, exactly.
#[test]
fn restrictive_policies_vault_rejects_generate_here() {
    let dash = Policy::from_vault_hcl(
        r#"
        length = 20
        rule "charset" { charset = "-" min-chars = 19 }
        rule "charset" { charset = "abcdefghijklmnopqrstuvwxyz" min-chars = 1 }
        "#,
    )
    .unwrap();
    // 19 dashes and one letter: 20 positions x 26 letters.
    assert_eq!(dash.count_decimal(), "520");
    assert_eq!(dash.sampling_method(), SamplingMethod::Exact);
    let strict = Policy::builder(8)
        .charset("lower", LOWERCASE, 2)
        .charset("upper", UPPERCASE, 2)
        .charset("digits", DIGITS, 2)
        .charset("symbols", VAULT_SYMBOLS, 2)
        .build()
        .unwrap();
    // Exactly two of each: 8!/(2!^4) * 26^2 * 26^2 * 10^2 * 32^2.
    let expected: u128 = 2520 * 676 * 676 * 100 * 1024;
    assert_eq!(strict.count_decimal(), expected.to_string());
    // Counts far beyond 2^128 take the big-integer walk.
    let long = Policy::builder(100)
        .charset("dash", "-", 95)
        .charset("lower", LOWERCASE, 1)
        .charset("digits", DIGITS, 1)
        .build()
        .unwrap();
    assert_eq!(long.sampling_method(), SamplingMethod::Exact);
    assert!(long.entropy_bits() > 30.0);
    let mut r = rng(2);
    for p in [&dash, &strict, &long] {
        for _ in 0..300 {
            let pw = p.generate_with(&mut r);
            assert!(p.is_valid(pw.expose_secret()));
        }
    }
}

#[test]
fn overlapping_charsets_are_exact_not_summed() {
    // Sum of minimums 6 > length 3, but "ccc" style passwords satisfy both rules.
    let p = Policy::builder(3)
        .charset("abc", "abc", 3)
        .charset("cd", "cd", 3)
        .build()
        .unwrap();
    assert_eq!(p.count_decimal(), "1");
    let pw = p.generate_with(&mut rng(3));
    assert_eq!(pw.expose_secret(), "ccc");
    // Disjoint charsets whose minimums exceed the length are a typed error naming both.
    let e = Policy::builder(3)
        .charset("ab", "ab", 2)
        .charset("cd", "cd", 2)
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        PolicyError::MinimumsExceedLength {
            rules: vec!["ab".into(), "cd".into()],
            required: 4,
            length: 3
        }
    );
}

#[test]
fn construction_errors_name_the_rule() {
    let e = Policy::builder(4)
        .charset("digits", DIGITS, 5)
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        PolicyError::RuleExceedsLength {
            rule: "digits".into(),
            required: 5,
            length: 4
        }
    );
    let e = Policy::builder(2000)
        .charset("x", "x", 0)
        .build()
        .unwrap_err();
    assert!(matches!(
        e,
        PolicyError::LengthTooLarge { length: 2000, .. }
    ));
    let e = Policy::builder(4)
        .charset("ctl", "a\u{7}", 0)
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        PolicyError::NonPrintable {
            rule: "ctl".into(),
            code_point: 7
        }
    );
    let e = Policy::builder(4)
        .charset("q", "\"", 1)
        .charset("a", "a", 0)
        .exclude("\"")
        .build()
        .unwrap_err();
    assert_eq!(e, PolicyError::CharsetExcluded { rule: "q".into() });
    let big: String = (0x100u32..0x100 + 300).filter_map(char::from_u32).collect();
    let e = Policy::builder(4)
        .charset("big", &big, 0)
        .build()
        .unwrap_err();
    assert!(
        matches!(e, PolicyError::AlphabetTooLarge { size: 300, .. }),
        "{e:?}"
    );
    let e = Policy::builder(4)
        .rule(Rule::at_least_of(
            "k",
            3,
            [CharClass::new("a", 1), CharClass::new("b", 1)],
        ))
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        PolicyError::InvalidRule {
            rule: "k".into(),
            index: 0,
            kind: InvalidRuleKind::AtLeastOutOfRange {
                at_least: 3,
                classes: 2
            }
        }
    );
    assert_eq!(
        e.to_string(),
        "k (rule 0 of the policy): it requires 3 of its 2 classes"
    );
    let e = Policy::builder(4)
        .charset("a", "a", 0)
        .rule(Rule::at_least_of("none", 1, []))
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        PolicyError::InvalidRule {
            rule: "none".into(),
            index: 1,
            kind: InvalidRuleKind::NoClasses
        }
    );
    // Too many classes is its own error, not a table-size one.
    let e = Policy::builder(4)
        .rule(Rule::at_least_of(
            "many",
            1,
            (0..=MAX_CLASSES).map(|_| CharClass::new("a", 1)),
        ))
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        PolicyError::TooManyClasses {
            classes: MAX_CLASSES + 1,
            max: MAX_CLASSES
        }
    );
    assert!(!e.to_string().contains("words"), "{e}");
    // Forbidden substrings can make a policy impossible: only "aaa" exists, forbidden.
    let e = Policy::builder(3)
        .charset("a", "a", 0)
        .forbid_substring("AA")
        .build()
        .unwrap_err();
    assert!(matches!(e, PolicyError::Unsatisfiable { .. }), "{e:?}");
    // Too many large minimums: a table-size error, not a slow build.
    let mut b = Policy::builder(1000);
    for (i, c) in "abcdefghij".chars().enumerate() {
        b = b.charset(format!("r{i}"), &c.to_string(), 90);
    }
    let e = b.build().unwrap_err();
    assert!(
        matches!(
            e,
            PolicyError::TooComplex {
                limit: ComplexityLimit::TableWords,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("64-bit words"), "{e}");
    // Within the memory budget but over the work budget: operations, not words.
    let e = Policy::builder(1024)
        .charset("lower", LOWERCASE, 15)
        .charset("upper", UPPERCASE, 15)
        .charset("digits", DIGITS, 15)
        .charset("symbols", VAULT_SYMBOLS, 1)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            e,
            PolicyError::TooComplex {
                limit: ComplexityLimit::FillOperations,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("limb operations") && !e.to_string().contains("words"),
        "{e}"
    );
}

/// Over the full-table budget: counted with rolling layers, fine when rejection is
/// used; refused (typed error) when the exact sampler would need the whole table.
#[test]
fn large_tables_roll_or_refuse() {
    let big = Policy::builder(1000)
        .charset("lower", LOWERCASE, 3)
        .charset("upper", UPPERCASE, 3)
        .charset("digits", DIGITS, 3)
        .charset("symbols", VAULT_SYMBOLS, 3)
        .build()
        .unwrap();
    assert_eq!(big.sampling_method(), SamplingMethod::Rejection);
    assert!(big.entropy_bits() > 6500.0);
    let pw = big.generate_with(&mut rng(11));
    assert!(big.is_valid(pw.expose_secret()));
    let e = Policy::builder(300)
        .charset("dash", "-", 295)
        .charset("lower", LOWERCASE, 1)
        .build()
        .unwrap_err();
    assert!(matches!(e, PolicyError::TooComplex { .. }), "{e:?}");
    // The same shape at a smaller length fits and samples exactly.
    let ok = Policy::builder(100)
        .charset("dash", "-", 95)
        .charset("lower", LOWERCASE, 1)
        .build()
        .unwrap();
    assert_eq!(ok.sampling_method(), SamplingMethod::Exact);
}

#[test]
fn infisical_defaults_and_meaning() {
    let req: InfisicalRequirements = serde_json::from_str("{}").unwrap();
    assert_eq!(req, InfisicalRequirements::default());
    assert_eq!(req.length, 48);
    assert_eq!(req.allowed_symbols, "-_.~!*");
    assert_eq!(
        (
            req.required.lowercase,
            req.required.uppercase,
            req.required.digits,
            req.required.symbols
        ),
        (1, 1, 1, 0)
    );
    let p = Policy::from_infisical(&req).unwrap();
    // Symbols have count 0, so they never appear.
    assert_eq!(p.alphabet().len(), 62);
    let json = serde_json::to_value(&req).unwrap();
    assert_eq!(json["allowedSymbols"], "-_.~!*");
    assert_eq!(json["required"]["digits"], 1);

    let req: InfisicalRequirements = serde_json::from_str(
        r##"{"length": 10, "required": {"lowercase": 0, "uppercase": 0, "digits": 2, "symbols": 1}, "allowedSymbols": "\"#!"}"##,
    )
    .unwrap();
    let p = Policy::from_infisical(&req).unwrap();
    // Remaining characters only from digits and symbols; `"` is never used.
    assert_eq!(p.alphabet().len(), 12);
    assert!(!p.alphabet().contains(&'"'));
    let mut r = rng(4);
    for _ in 0..100 {
        let pw = p.generate_with(&mut r);
        assert!(
            pw.expose_secret()
                .chars()
                .all(|c| c.is_ascii_digit() || c == '#' || c == '!')
        );
        assert!(
            pw.expose_secret()
                .chars()
                .filter(char::is_ascii_digit)
                .count()
                >= 2
        );
    }
    assert!(req.is_windows_safe());
    let bad = InfisicalRequirements {
        allowed_symbols: "$(x)".into(),
        ..InfisicalRequirements::default()
    };
    assert!(!bad.is_windows_safe());

    for (json, needle) in [
        (r#"{"length": 0}"#, "length"),
        (r#"{"length": 251}"#, "length"),
        (
            r#"{"required": {"lowercase": 0, "uppercase": 0, "digits": 0}}"#,
            "above zero",
        ),
        (
            r#"{"length": 2, "required": {"lowercase": 2, "uppercase": 1}}"#,
            "sum",
        ),
    ] {
        let req: InfisicalRequirements = serde_json::from_str(json).unwrap();
        let e = Policy::from_infisical(&req).unwrap_err();
        assert!(matches!(e, PolicyError::Infisical { .. }), "{json}: {e:?}");
        assert!(e.to_string().contains(needle), "{json}: {e}");
    }
}

#[test]
fn ad_complexity_three_of_four() {
    let p = AdComplexity::new(8).build().unwrap();
    assert!(p.is_valid("abcDEF12"));
    assert!(p.is_valid("abcdef1!"));
    // Only two categories.
    assert_eq!(
        p.check("abcdefgh1"),
        vec![
            Violation::Length {
                expected: 8,
                actual: 9
            },
            Violation::Rule {
                name: "AD complexity (3 of 4 character categories)".into()
            }
        ]
    );
    assert!(!p.is_valid("abcdef12"));
    let mut r = rng(5);
    for _ in 0..500 {
        let pw = p.generate_with(&mut r);
        let s = pw.expose_secret();
        let cats = [
            s.chars().any(|c| c.is_ascii_uppercase()),
            s.chars().any(|c| c.is_ascii_lowercase()),
            s.chars().any(|c| c.is_ascii_digit()),
            s.chars().any(|c| credwheel_policy::AD_SYMBOLS.contains(c)),
        ];
        assert!(
            cats.iter().filter(|&&b| b).count() >= 3,
            "categories {cats:?}"
        );
    }
    // Length 2 cannot hold three categories.
    assert!(matches!(
        AdComplexity::new(2).build(),
        Err(PolicyError::RuleExceedsLength { required: 3, .. })
    ));
}

#[test]
fn ad_account_name_check_follows_microsoft_rule() {
    let ad = AdComplexity::new(12)
        .account_name("jsmith")
        .display_name("John Q. Smith-Jones,Jr#IT\tOps_x");
    // Tokens split at , . - _ space # tab; shorter than 3 ignored ("Q", "Jr", "IT", "x").
    assert_eq!(
        ad.forbidden_substrings(),
        vec![
            "jsmith",
            "John",
            "Smith",
            "Jones",
            "Ops",
            "John Q. Smith-Jones,Jr#IT\tOps_x"
        ]
    );
    // A display name whose tokens are all short is still forbidden whole.
    let short = AdComplexity::new(8).display_name("Al B-Yo");
    assert_eq!(short.forbidden_substrings(), vec!["Al B-Yo"]);
    let p = ad.build().unwrap();
    let bad = p.check("aaJSMITH1!bb");
    assert!(
        bad.contains(&Violation::ContainsForbidden {
            substring: "jsmith".into()
        }),
        "{bad:?}"
    );
    assert!(!p.is_valid("xxJoNeS12!yy"));
    assert!(!p.is_valid("1!aaaaaajohn"));
    // Substrings of a token are not checked; short tokens are ignored.
    assert!(p.is_valid("smit1!aaaaaa"));
    assert!(p.is_valid("Jr1!aaaaaaaa"));
    // Account names shorter than three characters are not checked.
    let p2 = AdComplexity::new(8).account_name("ab").build().unwrap();
    assert!(p2.forbidden_substrings().is_empty());
    assert!(p2.is_valid("xxAB12!x"));
    // Generated passwords never contain any token, in any case; and with the
    // automaton the count (hence entropy) is exact: lower than without the names.
    let plain = AdComplexity::new(12).build().unwrap();
    assert!(p.entropy_bits() < plain.entropy_bits());
    let mut r = rng(6);
    for _ in 0..300 {
        let pw = p.generate_with(&mut r);
        assert!(p.is_valid(pw.expose_secret()));
    }
}

/// A tiny alphabet makes the forbidden name likely, exercising the automaton in the
/// samplers (about 1/8 of random strings contain "abc" case-insensitively).
#[test]
fn forbidden_substring_in_small_alphabet() {
    let p = Policy::builder(6)
        .charset("letters", "abcABC", 1)
        .forbid_substring("abc")
        .build()
        .unwrap();
    let mut r = rng(7);
    for _ in 0..2000 {
        let pw = p.generate_with(&mut r);
        assert!(!pw.expose_secret().to_lowercase().contains("abc"));
        assert_eq!(pw.expose_secret().chars().count(), 6);
    }
}

#[test]
fn secrets_stay_out_of_debug_and_violations() {
    let p = Policy::vault_default();
    let pw = p.generate_with(&mut rng(8));
    let secret = pw.expose_secret().to_owned();
    assert!(!format!("{pw:?}").contains(&secret));
    assert!(!format!("{p:?}").contains(&secret));
    let typed = "Zz9-notvalid\u{1F600}";
    for v in p.check(typed) {
        let shown = format!("{v} {v:?}");
        assert!(
            !shown.contains("notvalid") && !shown.contains('\u{1F600}'),
            "{shown}"
        );
    }
}

#[test]
fn generate_into_reuses_buffer_and_unicode_alphabets_work() {
    let p = Policy::builder(10)
        .charset("greek", "αβγδ", 2)
        .charset("emoji", "😀🙂", 1)
        .charset("ascii", "xyz", 0)
        .build()
        .unwrap();
    let mut buf = PasswordBuffer::new();
    let mut r = rng(9);
    for _ in 0..200 {
        p.generate_into(&mut r, &mut buf);
        assert_eq!(buf.expose_secret().chars().count(), 10);
        assert!(p.is_valid(buf.expose_secret()));
    }
    let last = buf.expose_secret().to_owned();
    assert!(!format!("{buf:?}").contains(&last));
    assert_eq!(buf.into_secret().expose_secret(), last);
    let pw = p.generate();
    assert!(p.is_valid(pw.expose_secret()));
}

#[test]
fn policy_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Policy>();
    let p = Policy::vault_default();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || p.is_valid(p.generate().expose_secret()))
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap());
    }
}

#[test]
fn generate_uses_os_seeded_rng_and_varies() {
    let p = Policy::vault_default();
    let a = p.generate();
    let b = p.generate();
    assert!(p.is_valid(a.expose_secret()) && p.is_valid(b.expose_secret()));
    assert_ne!(a.expose_secret(), b.expose_secret());
}

#[test]
fn entropy_is_exact_log2_of_count() {
    // Vault default: inclusion–exclusion over the four classes, computed in u128.
    let n: [i128; 4] = [26, 26, 10, 1];
    let total: i128 = 63;
    let mut count: i128 = 0;
    for mask in 0u32..16 {
        let missing: i128 = (0..4).filter(|i| mask & (1 << i) != 0).map(|i| n[i]).sum();
        let term = (total - missing).pow(20);
        count += if mask.count_ones() % 2 == 0 {
            term
        } else {
            -term
        };
    }
    let p = Policy::vault_default();
    assert_eq!(p.count_decimal(), count.to_string());
    assert!((p.entropy_bits() - (count as f64).log2()).abs() < 1e-9);
    // A long policy whose count needs many 64-bit words.
    let long = Policy::builder(1000)
        .charset("all", VAULT_SYMBOLS, 0)
        .charset("digits", DIGITS, 0)
        .build()
        .unwrap();
    assert!((long.entropy_bits() - 1000.0 * 42f64.log2()).abs() < 1e-6);
    assert!(long.is_valid(long.generate().expose_secret()));
}

fn binomial(n: u64, k: u64) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Chi-square of observed bucket counts against expected probabilities.
fn chi2(observed: &[u64], probs: &[f64]) -> f64 {
    let n: u64 = observed.iter().sum();
    observed
        .iter()
        .zip(probs)
        .map(|(&o, &p)| {
            let e = p * n as f64;
            (o as f64 - e).powi(2) / e
        })
        .sum()
}

/// The number of dashes in Vault-default passwords (rejection sampler) follows the
/// exact distribution: P(k) ∝ C(20, k) · g(20 - k), g(m) = alphanumeric strings of
/// length m with a lower, an upper and a digit (inclusion–exclusion).
#[test]
fn vault_default_dash_count_distribution() {
    let g = |m: i32| -> f64 {
        let mut total = 0.0;
        for mask in 0u32..8 {
            let missing: f64 = [26.0, 26.0, 10.0]
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, n)| n)
                .sum();
            let term = (62.0 - missing).powi(m);
            total += if mask.count_ones() % 2 == 0 {
                term
            } else {
                -term
            };
        }
        total
    };
    // Buckets: 1, 2, 3, 4 dashes, and 5 or more.
    let mut w = [0.0; 5];
    for k in 1..=17u64 {
        w[(k.min(5) - 1) as usize] += binomial(20, k) * g(20 - k as i32);
    }
    let sum: f64 = w.iter().sum();
    let probs: Vec<f64> = w.iter().map(|x| x / sum).collect();
    let p = Policy::vault_default();
    assert_eq!(p.sampling_method(), SamplingMethod::Rejection);
    let mut r = rng(21);
    let mut observed = vec![0u64; 5];
    for _ in 0..40_000 {
        let pw = p.generate_with(&mut r);
        let k = pw.expose_secret().chars().filter(|&c| c == '-').count() as u64;
        observed[(k.min(5) - 1) as usize] += 1;
    }
    // Chi-square, 4 degrees of freedom: 23.5 is the 1e-4 upper tail.
    let stat = chi2(&observed, &probs);
    assert!(
        stat < 23.5,
        "chi2 {stat:.1}, observed {observed:?}, expected {probs:?}"
    );
}

/// Same for the exact sampler: length 12, at least 6 dashes and 2 letters. Valid
/// strings with k dashes number C(12, k) · 26^(12 - k), k = 6..=10.
#[test]
fn exact_sampler_dash_count_distribution() {
    let p = Policy::builder(12)
        .charset("dash", "-", 6)
        .charset("lower", LOWERCASE, 2)
        .build()
        .unwrap();
    assert_eq!(p.sampling_method(), SamplingMethod::Exact);
    let w: Vec<f64> = (6..=10u64)
        .map(|k| binomial(12, k) * 26f64.powi(12 - k as i32))
        .collect();
    let sum: f64 = w.iter().sum();
    let probs: Vec<f64> = w.iter().map(|x| x / sum).collect();
    let mut r = rng(22);
    let mut observed = vec![0u64; 5];
    for _ in 0..40_000 {
        let pw = p.generate_with(&mut r);
        let k = pw.expose_secret().chars().filter(|&c| c == '-').count();
        observed[k - 6] += 1;
    }
    let stat = chi2(&observed, &probs);
    assert!(
        stat < 23.5,
        "chi2 {stat:.1}, observed {observed:?}, expected {probs:?}"
    );
}

fn pool() -> Vec<char> {
    "abcdefXYZ0123-!".chars().collect()
}

prop_compose! {
    fn arb_rule(max_min: usize)(
        picks in proptest::collection::vec(0usize..15, 1..6),
        min in 0..=max_min,
    ) -> (String, usize) {
        let p = pool();
        (picks.into_iter().map(|i| p[i]).collect(), min)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every generated password satisfies its (random) policy, for both samplers'
    /// policies; unsatisfiable random policies are rejected with an error.
    #[test]
    fn generated_passwords_satisfy_random_policies(
        length in 1usize..40,
        rules in proptest::collection::vec(arb_rule(6), 1..5),
        forbid in proptest::option::of("[a-c]{2,3}"),
        seed in any::<u64>(),
    ) {
        let mut b = Policy::builder(length);
        for (i, (chars, min)) in rules.iter().enumerate() {
            b = b.charset(format!("r{i}"), chars, *min);
        }
        if let Some(f) = &forbid {
            b = b.forbid_substring(f);
        }
        match b.build() {
            Ok(p) => {
                let mut r = rng(seed);
                for _ in 0..5 {
                    let pw = p.generate_with(&mut r);
                    let v = p.check(pw.expose_secret());
                    prop_assert!(v.is_empty(), "{:?}", v);
                }
            }
            Err(e) => {
                let named = matches!(
                    e,
                    PolicyError::RuleExceedsLength { .. }
                        | PolicyError::MinimumsExceedLength { .. }
                        | PolicyError::Unsatisfiable { .. }
                );
                prop_assert!(named, "{:?}", e);
            }
        }
    }

    /// Builder policies render to Vault HCL and parse back to the same policy (also
    /// in base64), including quotes, backslashes and `${`.
    #[test]
    fn vault_hcl_round_trip(
        length in 1usize..30,
        rules in proptest::collection::vec(("[a-c\"\\\\${}\u{e9}\u{1F600} -]{1,6}", 0usize..4), 1..4),
    ) {
        let mut b = Policy::builder(length);
        for (i, (chars, min)) in rules.iter().enumerate() {
            b = b.charset(format!("r{i}"), chars, *min);
        }
        let Ok(p) = b.build() else { return Ok(()) };
        let hcl = p.to_vault_hcl().unwrap();
        prop_assert!(!hcl.contains("${"), "{}", hcl);
        let back = Policy::from_vault_hcl(&hcl).unwrap();
        prop_assert_eq!(back.alphabet(), p.alphabet());
        prop_assert_eq!(back.count_decimal(), p.count_decimal());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&hcl);
        prop_assert_eq!(Policy::from_vault_hcl(&b64).unwrap().count_decimal(), p.count_decimal());
    }

    /// The HCL parser never panics: arbitrary text, and valid policies with one
    /// character replaced, give a policy or a typed error.
    #[test]
    fn vault_parser_never_panics(
        text in "\\PC{0,200}",
        at in 0usize..400,
        replacement in proptest::char::any(),
    ) {
        let mut chars: Vec<char> = VAULT_DEFAULT_HCL.chars().collect();
        let i = at % chars.len();
        chars[i] = replacement;
        let mutated: String = chars.into_iter().collect();
        for text in [&text, &mutated] {
            match Policy::from_vault_hcl(text) {
                Ok(p) => prop_assert!(p.length() >= 1),
                // Positions point into the text and agree with each other.
                Err(PolicyError::Parse { line, column, offset, .. }) => {
                    prop_assert!(offset <= text.len() && text.is_char_boundary(offset));
                    let before = &text[..offset];
                    prop_assert_eq!(line, before.matches('\n').count() + 1);
                    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                    prop_assert_eq!(column, before[line_start..].chars().count() + 1);
                }
                // Anything else comes from validating a parsed policy.
                Err(e) => prop_assert!(
                    matches!(
                        e,
                        PolicyError::LengthZero
                            | PolicyError::LengthTooLarge { .. }
                            | PolicyError::NoRules
                            | PolicyError::EmptyCharset { .. }
                            | PolicyError::NonPrintable { .. }
                            | PolicyError::AlphabetTooLarge { .. }
                            | PolicyError::RuleExceedsLength { .. }
                            | PolicyError::MinimumsExceedLength { .. }
                            | PolicyError::Unsatisfiable { .. }
                            | PolicyError::TooComplex { .. }
                    ),
                    "{:?}",
                    e
                ),
            }
        }
    }

    /// Exact counts agree with brute-force enumeration on small random policies,
    /// including unsatisfiable ones (count 0 <=> error).
    #[test]
    fn counts_agree_with_enumeration(
        length in 1usize..5,
        rules in proptest::collection::vec(arb_rule(3), 1..4),
        at_least_rule in proptest::option::of((1usize..3, proptest::collection::vec(arb_rule(2), 2..4))),
        forbid in proptest::option::of("[a-cX]{1,2}"),
    ) {
        let mut b = Policy::builder(length);
        for (i, (chars, min)) in rules.iter().enumerate() {
            b = b.charset(format!("r{i}"), chars, *min);
        }
        if let Some((k, classes)) = &at_least_rule {
            b = b.rule(Rule::at_least_of(
                "k-of",
                *k,
                classes.iter().map(|(c, m)| CharClass::new(c, *m)),
            ));
        }
        if let Some(f) = &forbid {
            b = b.forbid_substring(f);
        }
        let alphabet: Vec<char> = {
            let mut a: Vec<char> = rules.iter().flat_map(|(c, _)| c.chars()).collect();
            if let Some((_, classes)) = &at_least_rule {
                a.extend(classes.iter().flat_map(|(c, _)| c.chars()));
            }
            a.sort_unstable();
            a.dedup();
            a
        };
        let built = b.build();
        // Independent brute force: enumerate every string and judge it directly from
        // the rule list, without the policy's code.
        let count_in = |s: &[char], set: &str| s.iter().filter(|c| set.contains(**c)).count();
        let mut valid = 0u64;
        let mut idx = vec![0usize; length];
        loop {
            let s: Vec<char> = idx.iter().map(|&i| alphabet[i]).collect();
            let mut ok = rules.iter().all(|(set, min)| count_in(&s, set) >= *min);
            if let Some((k, classes)) = &at_least_rule {
                ok &= classes.iter().filter(|(set, min)| count_in(&s, set) >= *min).count() >= *k;
            }
            if let Some(f) = &forbid {
                let lower: String = s.iter().collect::<String>().to_lowercase();
                ok &= !lower.contains(&f.to_lowercase());
            }
            valid += u64::from(ok);
            let mut k = 0;
            while k < length {
                idx[k] += 1;
                if idx[k] < alphabet.len() { break; }
                idx[k] = 0;
                k += 1;
            }
            if k == length { break; }
        }
        match &built {
            Ok(p) => {
                prop_assert_eq!(p.count_decimal(), valid.to_string());
                prop_assert!(valid > 0);
            }
            Err(PolicyError::InvalidRule { .. }) => {
                let (k, classes) = at_least_rule.as_ref().unwrap();
                prop_assert!(*k > classes.len());
            }
            Err(e) => {
                let unsat = matches!(
                    e,
                    PolicyError::RuleExceedsLength { .. }
                        | PolicyError::MinimumsExceedLength { .. }
                        | PolicyError::Unsatisfiable { .. }
                );
                prop_assert!(unsat, "{:?}", e);
                prop_assert_eq!(valid, 0);
            }
        }
    }
}

/// Characters outside Microsoft's non-alphanumeric list (currency symbols, letters)
/// never count for AD's symbol category; they may still appear as filler.
#[test]
fn ad_symbols_outside_microsofts_list_do_not_count() {
    let p = AdComplexity::new(8).symbols("€").build().unwrap();
    assert!(!p.is_valid("abcdefA€"));
    assert!(p.is_valid("abcdeA1€"));
    let p = AdComplexity::new(8).symbols("!€£a").build().unwrap();
    assert!(!p.is_valid("abcdefA€"));
    assert!(!p.is_valid("abcdef£€"));
    assert!(p.is_valid("abcdeA€!"));
    let mut r = rng(31);
    for _ in 0..500 {
        let pw = p.generate_with(&mut r);
        let s = pw.expose_secret();
        let cats = [
            s.chars().any(|c| c.is_ascii_uppercase()),
            s.chars().any(|c| c.is_ascii_lowercase()),
            s.chars().any(|c| c.is_ascii_digit()),
            s.chars().any(|c| credwheel_policy::AD_SYMBOLS.contains(c)),
        ];
        assert!(cats.iter().filter(|&&b| b).count() >= 3, "{cats:?}");
    }
}

/// An empty `allowedSymbols` means Infisical's default set, as its generator does.
#[test]
fn infisical_empty_allowed_symbols_is_the_default_set() {
    let req: InfisicalRequirements = serde_json::from_str(
        r#"{"length": 8, "required": {"lowercase": 1, "symbols": 1}, "allowedSymbols": ""}"#,
    )
    .unwrap();
    let p = Policy::from_infisical(&req).unwrap();
    let mut want: Vec<char> = format!("{LOWERCASE}{UPPERCASE}{DIGITS}-_.~!*")
        .chars()
        .collect();
    want.sort_unstable();
    assert_eq!(p.alphabet(), want.as_slice());
    // The omitted counts keep their defaults (uppercase 1, digits 1).
    assert!(p.is_valid("abcdeA1!"));
    assert!(p.is_valid("abcdeA1~"));
    assert!(!p.is_valid("abcdeA12"));
}

/// Whether Infisical's generator can produce `s`: distinct positions can be
/// assigned to each class's required count (brute force over assignments).
fn infisical_can_produce(s: &[char], classes: &[(&str, usize)]) -> bool {
    fn assign(s: &[char], at: usize, classes: &[(&str, usize)], need: &mut [usize]) -> bool {
        if need.iter().all(|&n| n == 0) {
            return true;
        }
        if at == s.len() {
            return false;
        }
        if assign(s, at + 1, classes, need) {
            return true;
        }
        for k in 0..classes.len() {
            if need[k] > 0 && classes[k].0.contains(s[at]) {
                need[k] -= 1;
                let ok = assign(s, at + 1, classes, need);
                need[k] += 1;
                if ok {
                    return true;
                }
            }
        }
        false
    }
    let alphabet_ok = s
        .iter()
        .all(|&c| c != '"' && classes.iter().any(|(set, n)| *n > 0 && set.contains(c)));
    let mut need: Vec<usize> = classes.iter().map(|c| c.1).collect();
    alphabet_ok && assign(s, 0, classes, &mut need)
}

/// With `allowedSymbols` overlapping the letter and digit classes, the valid
/// passwords are exactly those Infisical's generator can return: each character
/// counts for one class only. Checked against brute force on every string.
#[test]
fn infisical_overlapping_classes_match_its_generator() {
    let small_lower = "abc";
    let cases: &[(&str, [usize; 4], usize)] = &[
        ("1!", [1, 0, 1, 1], 3),
        ("1a!", [1, 0, 1, 1], 3),
        ("1a", [2, 0, 1, 1], 4),
        ("0123", [0, 0, 2, 1], 3),
        ("\"1", [1, 0, 1, 1], 3),
    ];
    for &(symbols, [lower, upper, digits, syms], length) in cases {
        let req = InfisicalRequirements {
            length,
            required: credwheel_policy::InfisicalRequired {
                lowercase: lower,
                uppercase: upper,
                digits,
                symbols: syms,
            },
            allowed_symbols: symbols.to_owned(),
        };
        let p = Policy::from_infisical(&req).unwrap();
        // Restrict the brute force to strings over a small part of the alphabet
        // (three letters, the symbols, two digits) plus one other character.
        let classes = [
            (LOWERCASE, lower),
            (UPPERCASE, upper),
            (DIGITS, digits),
            (symbols, syms),
        ];
        let mut pool: Vec<char> = format!("{small_lower}{symbols}12Z").chars().collect();
        pool.sort_unstable();
        pool.dedup();
        let mut idx = vec![0usize; length];
        let mut produced = 0usize;
        loop {
            let s: Vec<char> = idx.iter().map(|&i| pool[i]).collect();
            let text: String = s.iter().collect();
            let want = infisical_can_produce(&s, &classes);
            produced += usize::from(want);
            assert_eq!(p.is_valid(&text), want, "{symbols:?} {text:?}");
            let mut k = 0;
            while k < length {
                idx[k] += 1;
                if idx[k] < pool.len() {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
            if k == length {
                break;
            }
        }
        assert!(produced > 0, "{symbols:?}");
    }
    // The documented example.
    let req = InfisicalRequirements {
        length: 3,
        required: credwheel_policy::InfisicalRequired {
            lowercase: 1,
            uppercase: 0,
            digits: 1,
            symbols: 1,
        },
        allowed_symbols: "1!".into(),
    };
    let p = Policy::from_infisical(&req).unwrap();
    assert!(!p.is_valid("1ab"));
    assert!(p.is_valid("11a"));
    assert!(p.is_valid("1!a"));
}

/// Charset characters must be printable by Go's `unicode.IsPrint` (general
/// categories L, M, N, P, S and the ASCII space), as Vault checks.
#[test]
fn printability_follows_go_is_print() {
    let printable = [
        ' ', 'a', 'é', '€', '\u{FFFD}', '\u{3164}', '\u{0301}', '日', '😀', '\u{FE0F}',
    ];
    for c in printable {
        let p = Policy::builder(2).charset("c", &c.to_string(), 0).build();
        assert!(p.is_ok(), "U+{:04X}: {p:?}", c as u32);
    }
    let not_printable = [
        '\u{00A0}', '\u{2028}', '\u{3000}', '\u{200B}', '\u{202E}', '\u{00AD}', '\u{E000}',
        '\u{0378}', '\u{0085}', '\t', '\u{7F}',
    ];
    for c in not_printable {
        let e = Policy::builder(2)
            .charset("c", &format!("a{c}"), 0)
            .build()
            .unwrap_err();
        assert_eq!(
            e,
            PolicyError::NonPrintable {
                rule: "c".into(),
                code_point: c as u32
            }
        );
    }
    // The same through Vault HCL, with escapes.
    let e = Policy::from_vault_hcl("length = 4\nrule \"charset\" { charset = \"ab\\u00a0\" }")
        .unwrap_err();
    assert!(
        matches!(
            e,
            PolicyError::NonPrintable {
                code_point: 0xA0,
                ..
            }
        ),
        "{e:?}"
    );
    let p =
        Policy::from_vault_hcl("length = 4\nrule \"charset\" { charset = \"\\xe3\\x85\\xa4b\" }")
            .unwrap();
    assert_eq!(p.alphabet(), &['b', '\u{3164}']);
}
