//! The fuzz targets' properties (see `fuzz/fuzz_targets/`), checked on named
//! inputs. When `tools/fuzz-smoke` finds a crash, add the input from
//! `fuzz/artifacts/TARGET/` here as a named case.
//!
//! No fuzz run has found a crash so far (about 9 million executions: `dn_parse`
//! 6 min, `escape_roundtrip` 6 min, `filter_escape` 2 min); the cases below are
//! boundary inputs of each property.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use credwheel_dn::{
    Dn, Filter, Rdn, escape_filter, escape_filter_bytes, escape_value, escape_value_ad,
};

/// `dn_parse`: parsing never panics; Display re-parses to an identical DN and is
/// a fixed point.
fn dn_parse_property(s: &str) {
    let Ok(dn) = Dn::parse(s) else { return };
    let shown = dn.to_string();
    let again = Dn::parse(&shown).unwrap_or_else(|e| panic!("{shown:?}: {e}"));
    assert_eq!(dn, again, "{s:?}");
    assert_eq!(again.to_string(), shown);
    for (a, b) in dn.rdns().zip(again.rdns()) {
        for (x, y) in a.avas().zip(b.avas()) {
            assert_eq!(x.attr(), y.attr());
            assert_eq!(x.value().as_text(), y.value().as_text());
            assert_eq!(x.value().as_ber(), y.value().as_ber());
        }
    }
}

/// `escape_roundtrip`: both escapers' output and `Rdn` display parse back to `s`.
fn escape_property(s: &str) {
    for escaped in [escape_value(s), escape_value_ad(s)] {
        let dn = Dn::parse(&format!("CN={escaped},OU=x")).unwrap();
        assert_eq!(dn.len(), 2, "{escaped:?}");
        let got = dn
            .rdn()
            .and_then(|r| r.value_of("cn"))
            .and_then(|v| v.as_text());
        assert_eq!(got, Some(s), "{escaped:?}");
    }
    let dn = Dn::root().child(Rdn::new("CN", s).unwrap()).unwrap();
    let again = Dn::parse(&dn.to_string()).unwrap();
    let got = again
        .rdn()
        .and_then(|r| r.value_of("cn"))
        .and_then(|v| v.as_text());
    assert_eq!(got, Some(s));
}

/// `filter_escape`: no metacharacter survives; `\XX` decodes back to the input.
fn filter_property(data: &[u8]) {
    let escaped = escape_filter_bytes(data);
    assert!(!escaped.contains(['*', '(', ')', '\0']), "{escaped:?}");
    let mut decoded = Vec::new();
    let b = escaped.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            decoded.push(u8::from_str_radix(&escaped[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            decoded.push(b[i]);
            i += 1;
        }
    }
    assert_eq!(decoded, data);
    if let Ok(s) = std::str::from_utf8(data) {
        assert_eq!(escape_filter(s), escaped);
        let f = Filter::eq("cn", s).unwrap().to_string();
        assert_eq!(f, format!("(cn={escaped})"));
    }
}

#[test]
fn dn_parse_boundaries() {
    for s in [
        "",
        " ",
        "cn=",
        "cn=,cn=",
        "cn= ",
        r"cn=\ ",
        r"cn=\  ",
        r"cn=\20\20",
        "cn=#00",
        "cn=\"\"",
        r#"cn="\"""#,
        r"cn=\00",
        r"cn=\F0\9F\98\80",
        "oid.1.2=x",
        "OID.1.2 = \" a \" ; x=y",
        "a=b+a=b+a=b",
        "cn=a#",
        "cn=a=",
        "cn=\u{7f}\u{1}",
        "x-=y",
    ] {
        dn_parse_property(s);
    }
}

#[test]
fn escape_boundaries() {
    for s in [
        "",
        " ",
        "  ",
        "#",
        "##",
        " # ",
        "\0",
        "\\",
        "\\\\",
        "=",
        "/",
        "\r\n",
        "\u{7f}",
        "é ",
        " 日本 ",
        "a,b+c;d<e>f\"g",
    ] {
        escape_property(s);
    }
}

#[test]
fn filter_boundaries() {
    for data in [
        &b""[..],
        b"*",
        b"\\",
        b"\\2a",
        b"\0",
        b"*)(cn=*",
        b"\xff\xfe",
        b"\xc3",
        b"a\xc3\xa9b\xc3",
        b"\xed\xa0\x80",
    ] {
        filter_property(data);
    }
}
