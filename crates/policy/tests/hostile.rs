//! Hostile names and forbidden substrings: construction returns a typed error or a
//! policy without allocating memory in proportion to the input's distinct
//! characters. Alone in its test binary so that the process's peak memory reflects
//! this test only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use credwheel_policy::{
    AD_MAX_NAME_LEN, AdComplexity, LOWERCASE, MAX_FORBIDDEN_CHARS, Policy, PolicyError,
};

/// Peak resident memory of this process in KiB (`VmHWM`), on Linux.
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `n` distinct CJK ideographs (from U+4E00).
fn cjk(n: u32) -> String {
    (0x4E00..0x4E00 + n).filter_map(char::from_u32).collect()
}

#[test]
fn hostile_names_are_refused_without_large_allocations() {
    let before = peak_kib();
    let hostile = cjk(40_000);

    // A display name (or account name) longer than AD allows: a typed error.
    for ad in [
        AdComplexity::new(16).display_name(&hostile),
        AdComplexity::new(16).account_name(&hostile),
        AdComplexity::new(16).display_name(&format!("Jo {hostile}")),
    ] {
        let e = ad.build().unwrap_err();
        assert!(
            matches!(
                e,
                PolicyError::AdNameTooLong {
                    max: AD_MAX_NAME_LEN,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    // At the limit it builds: the CJK tokens cannot occur in an ASCII password and
    // need no automaton states.
    let at_limit = cjk(AD_MAX_NAME_LEN as u32);
    let p = AdComplexity::new(16)
        .display_name(&at_limit)
        .account_name(&cjk(AD_MAX_NAME_LEN as u32))
        .build()
        .unwrap();
    assert!(p.is_valid("abcDEF123!abcdef"));

    // The builder: substrings outside the alphabet cost nothing however long.
    let p = Policy::builder(12)
        .charset("lower", LOWERCASE, 1)
        .forbid_substring(&hostile)
        .forbid_substring(&format!("abc{hostile}"))
        .build()
        .unwrap();
    assert_eq!(p.forbidden_substrings().len(), 2);
    assert!(p.is_valid("abcdefghijkl"));

    // Substrings that can occur are bounded in total: a typed error past it.
    let alphabet = cjk(200);
    let long: String = alphabet
        .chars()
        .cycle()
        .take(MAX_FORBIDDEN_CHARS + 1)
        .collect();
    let e = Policy::builder(12)
        .charset("cjk", &alphabet, 1)
        .forbid_substring(&long)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            e,
            PolicyError::ForbiddenTooLong {
                max: MAX_FORBIDDEN_CHARS,
                ..
            }
        ),
        "{e:?}"
    );
    // Many distinct in-alphabet substrings within the bound build and generate.
    let mut b = Policy::builder(12).charset("cjk", &alphabet, 1);
    let chars: Vec<char> = alphabet.chars().collect();
    for w in chars.windows(3) {
        b = b.forbid_substring(&w.iter().collect::<String>());
    }
    let p = b.build().unwrap();
    use secrecy::ExposeSecret;
    assert!(p.is_valid(p.generate().expose_secret()));

    if let (Some(before), Some(after)) = (before, peak_kib()) {
        let grown_mib = after.saturating_sub(before) / 1024;
        assert!(grown_mib < 256, "peak memory grew by {grown_mib} MiB");
    }
}
