//! The output of `escape_value` and `escape_value_ad` always parses back, inside a
//! DN, to exactly the input; so does a DN built with `Rdn::new`.
#![no_main]

use credwheel_dn::{Dn, Rdn, escape_value, escape_value_ad};
use libfuzzer_sys::fuzz_target;

const MAX_INPUT: usize = 4096;

fn check(value: &str, escaped: &str, which: &str) {
    let text = format!("CN={escaped},OU=x");
    let dn = match Dn::parse(&text) {
        Ok(dn) => dn,
        Err(e) => panic!("{which}({value:?}) = {escaped:?} does not parse: {e}"),
    };
    assert_eq!(dn.len(), 2, "{which}({value:?}) = {escaped:?} split the DN");
    let got = dn.rdn().and_then(|r| r.value_of("cn")).and_then(|v| v.as_text());
    assert_eq!(got, Some(value), "{which}({value:?}) = {escaped:?}");
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    check(s, &escape_value(s), "escape_value");
    check(s, &escape_value_ad(s), "escape_value_ad");
    let Ok(rdn) = Rdn::new("CN", s) else {
        panic!("Rdn::new rejected a valid type");
    };
    let shown = Dn::root().child(rdn).map(|d| d.to_string());
    let Ok(shown) = shown else {
        panic!("child of the root DN failed");
    };
    let got = Dn::parse(&shown).ok();
    let got = got.as_ref().and_then(|d| d.rdn()).and_then(|r| r.value_of("cn"));
    assert_eq!(got.and_then(|v| v.as_text()), Some(s), "Rdn display {shown:?}");
});
