//! `Dn::parse` never panics, and the `Display` of a parsed DN parses back to an
//! equal DN with exactly the same types and values (and is a fixed point).
#![no_main]

use credwheel_dn::Dn;
use libfuzzer_sys::fuzz_target;

/// Inputs longer than this are rejected before parsing (the parser's own limit,
/// `MAX_DN_LEN`, is tested by unit tests; long inputs only slow the fuzzer down).
const MAX_INPUT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(dn) = Dn::parse(s) else {
        return;
    };
    let shown = dn.to_string();
    let again = match Dn::parse(&shown) {
        Ok(d) => d,
        Err(e) => panic!("Display output {shown:?} of {s:?} does not parse: {e}"),
    };
    assert_eq!(dn, again, "input {s:?}, display {shown:?}");
    assert_eq!(shown, again.to_string(), "display is not a fixed point");
    assert_eq!(dn.len(), again.len());
    for (a, b) in dn.rdns().zip(again.rdns()) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.avas().zip(b.avas()) {
            assert_eq!(x.attr(), y.attr());
            assert_eq!(x.value().as_text(), y.value().as_text());
            assert_eq!(x.value().as_ber(), y.value().as_ber());
        }
    }
    if let Some(parent) = dn.parent() {
        assert!(dn.is_descendant_of(&parent));
        assert!(!parent.is_descendant_of(&dn));
    }
});
