//! Differential tests against `ldap3`'s escapers.
//!
//! RFC 4514 section 2.4 fixes which characters *must* be escaped and lets
//! implementations escape others and pick the `\c` or `\XX` form. So where the RFC
//! decides, `escape_value` and `ldap3::dn_escape` must agree: the same characters
//! escaped at the same positions, and both outputs parsing back to the input. They
//! legitimately differ in the form (`ldap3` always writes `\xx`) and in `=`, which
//! `ldap3` escapes and the RFC does not require. For filters, RFC 4515 section 3
//! leaves no choice but the hex case, and both write lower case, so
//! `escape_filter` must equal `ldap3::ldap_escape` byte for byte.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use credwheel_dn::{Dn, escape_filter, escape_value};
use proptest::prelude::*;

/// `(character, was escaped)` for each character of an escaped value. Both
/// escapers only hex-escape ASCII, so each `\xx` is one character.
fn tokens(escaped: &str) -> Vec<(char, bool)> {
    let mut out = Vec::new();
    let mut it = escaped.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push((c, false));
            continue;
        }
        let a = it.next().expect("escape has a character");
        if a.is_ascii_hexdigit() && it.peek().is_some_and(char::is_ascii_hexdigit) {
            let b = it.next().unwrap();
            let byte = u8::from_str_radix(&format!("{a}{b}"), 16).unwrap();
            assert!(
                byte.is_ascii(),
                "hex escape of a non-ASCII byte in {escaped:?}"
            );
            out.push((char::from(byte), true));
        } else {
            out.push((a, true));
        }
    }
    out
}

/// RFC 4514 section 2.4, written out independently of the crate.
fn rfc_requires(c: char, first: bool, last: bool) -> bool {
    matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '\0')
        || (first && (c == ' ' || c == '#'))
        || (last && c == ' ')
}

fn value_of(escaped: &str) -> String {
    let dn = Dn::parse(&format!("cn={escaped}")).unwrap();
    dn.rdn()
        .and_then(|r| r.value_of("cn"))
        .and_then(|v| v.as_text())
        .unwrap()
        .to_owned()
}

fn check(s: &str) {
    let ours = escape_value(s);
    let theirs = ldap3::dn_escape(s);
    // Both parse back to the input with our parser.
    assert_eq!(value_of(&ours), s, "ours {ours:?}");
    assert_eq!(value_of(&theirs), s, "ldap3 {theirs:?}");
    let (a, b) = (tokens(&ours), tokens(&theirs));
    let chars: Vec<char> = s.chars().collect();
    assert_eq!(a.iter().map(|t| t.0).collect::<Vec<_>>(), chars);
    assert_eq!(b.iter().map(|t| t.0).collect::<Vec<_>>(), chars);
    let n = chars.len();
    for (i, ((c, ours_esc), (_, theirs_esc))) in a.iter().zip(&b).enumerate() {
        let required = rfc_requires(*c, i == 0, i + 1 == n);
        // Where the RFC requires escaping, both escape.
        assert!(
            !required || (*ours_esc && *theirs_esc),
            "{c:?} at {i} in {s:?}"
        );
        // Elsewhere ours escapes nothing, and ldap3 escapes only '='.
        assert_eq!(*ours_esc, required, "{c:?} at {i} in {s:?}");
        if *c != '=' {
            assert_eq!(
                ours_esc, theirs_esc,
                "{c:?} at {i} in {s:?}: {ours:?} vs {theirs:?}"
            );
        }
    }
}

#[test]
fn known_differences_are_only_form_and_equals() {
    // Same characters escaped, different form.
    assert_eq!(escape_value("a,b"), r"a\,b");
    assert_eq!(ldap3::dn_escape("a,b"), r"a\2cb");
    // '=' is optional in RFC 4514: ldap3 escapes it, escape_value does not.
    assert_eq!(escape_value("a=b"), "a=b");
    assert_eq!(ldap3::dn_escape("a=b"), r"a\3db");
    for s in [
        " ",
        "  ",
        "   ",
        "#",
        "# #",
        " # ",
        "a\0b",
        "\"+,;<>\\",
        "x=y",
        "Smith, John #2",
    ] {
        check(s);
    }
}

#[test]
fn filter_escaping_is_identical() {
    for s in ["", "plain", "*)(cn=*", "\\5c", "a\0b", "(((", "Lučić*"] {
        assert_eq!(escape_filter(s), ldap3::ldap_escape(s), "{s:?}");
    }
}

fn dn_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            ' ', '#', '"', '+', ',', ';', '<', '>', '\\', '=', '\0', 'a', 'é', '日',
        ]),
        1 => any::<char>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dn_escape_agrees_where_rfc_decides(
        s in prop::collection::vec(dn_char(), 0..16).prop_map(String::from_iter)
    ) {
        check(&s);
    }

    #[test]
    fn filter_escape_is_identical(s in any::<String>()) {
        prop_assert_eq!(escape_filter(&s), ldap3::ldap_escape(s.as_str()));
    }
}
