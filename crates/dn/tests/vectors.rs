//! Test vectors from RFC 4514 and Microsoft's AD documentation, kept in
//! `tests/data/vectors.json` (each vector names its source).

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use credwheel_dn::{AttributeValue, Dn, escape_value, escape_value_ad};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    parse: Vec<ParseVector>,
    escape: Vec<EscapeVector>,
    display: Vec<DisplayVector>,
    equal: Vec<PairVector>,
    not_equal: Vec<PairVector>,
    invalid: Vec<InvalidVector>,
}

#[derive(Deserialize)]
struct ParseVector {
    source: String,
    dn: String,
    rdns: Vec<Vec<Value>>,
}

#[derive(Deserialize)]
struct Value {
    #[serde(rename = "type")]
    ty: String,
    text: Option<String>,
    ber: Option<String>,
}

#[derive(Deserialize)]
struct EscapeVector {
    source: String,
    value: String,
    rfc4514: String,
    ad: String,
}

#[derive(Deserialize)]
struct DisplayVector {
    source: String,
    dn: String,
    display: String,
}

#[derive(Deserialize)]
struct PairVector {
    source: String,
    a: String,
    b: String,
}

#[derive(Deserialize)]
struct InvalidVector {
    source: String,
    dn: String,
    pos: usize,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("data/vectors.json")).expect("vectors.json parses")
}

fn hash(dn: &Dn) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(dn, &mut h);
    std::hash::Hasher::finish(&h)
}

#[test]
fn parse_vectors() {
    let v = vectors();
    assert!(v.parse.len() >= 15);
    for case in &v.parse {
        let dn =
            Dn::parse(&case.dn).unwrap_or_else(|e| panic!("{} ({}): {e}", case.dn, case.source));
        assert_eq!(dn.len(), case.rdns.len(), "{} ({})", case.dn, case.source);
        for (rdn, want) in dn.rdns().zip(&case.rdns) {
            assert_eq!(rdn.len(), want.len(), "{}", case.dn);
            for (ava, w) in rdn.avas().zip(want) {
                assert_eq!(ava.attr(), w.ty, "{} ({})", case.dn, case.source);
                match (ava.value(), &w.text, &w.ber) {
                    (AttributeValue::Text(got), Some(text), None) => {
                        assert_eq!(got, text, "{} ({})", case.dn, case.source);
                    }
                    (AttributeValue::Ber(got), None, Some(ber)) => {
                        assert_eq!(hex::encode_upper(got), ber.to_uppercase(), "{}", case.dn);
                    }
                    (got, _, _) => panic!("{}: unexpected value {got:?}", case.dn),
                }
            }
        }
        // Every vector also survives Display -> parse.
        let again = Dn::parse(&dn.to_string()).unwrap();
        assert_eq!(again, dn, "{}", case.dn);
    }
}

#[test]
fn escape_vectors() {
    let v = vectors();
    for case in &v.escape {
        assert_eq!(
            escape_value(&case.value),
            case.rfc4514,
            "escape_value({:?}) ({})",
            case.value,
            case.source
        );
        assert_eq!(
            escape_value_ad(&case.value),
            case.ad,
            "escape_value_ad({:?}) ({})",
            case.value,
            case.source
        );
        // Both escaped forms name the same entry and carry the exact value.
        for escaped in [&case.rfc4514, &case.ad] {
            let dn = Dn::parse(&format!("CN={escaped},DC=x")).unwrap();
            let got = dn
                .rdn()
                .and_then(|r| r.value_of("cn"))
                .and_then(|v| v.as_text());
            assert_eq!(
                got,
                Some(case.value.as_str()),
                "{escaped:?} ({})",
                case.source
            );
        }
    }
}

#[test]
fn display_vectors() {
    for case in &vectors().display {
        let dn = Dn::parse(&case.dn).unwrap();
        assert_eq!(
            dn.to_string(),
            case.display,
            "{} ({})",
            case.dn,
            case.source
        );
    }
}

#[test]
fn equality_vectors() {
    let v = vectors();
    for case in &v.equal {
        let a = Dn::parse(&case.a).unwrap();
        let b = Dn::parse(&case.b).unwrap();
        assert_eq!(a, b, "{} == {} ({})", case.a, case.b, case.source);
        assert_eq!(hash(&a), hash(&b), "hash of {} ({})", case.a, case.source);
    }
    for case in &v.not_equal {
        let a = Dn::parse(&case.a).unwrap();
        let b = Dn::parse(&case.b).unwrap();
        assert_ne!(a, b, "{} != {} ({})", case.a, case.b, case.source);
    }
}

#[test]
fn invalid_vectors() {
    for case in &vectors().invalid {
        let err = Dn::parse(&case.dn).expect_err(&case.dn);
        assert_eq!(
            err.position(),
            Some(case.pos),
            "{} ({}): {err}",
            case.dn,
            case.source
        );
    }
}
