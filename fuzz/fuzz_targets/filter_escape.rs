//! Escaped filter values never contain a filter metacharacter and decode back to
//! the input; a `Filter::eq` is always exactly one item with that value.
#![no_main]

use credwheel_dn::{Filter, escape_filter, escape_filter_bytes};
use libfuzzer_sys::fuzz_target;

const MAX_INPUT: usize = 4096;

/// Decodes RFC 4515 `\XX` escapes; panics on anything an escaper must not write.
fn decode(escaped: &str) -> Vec<u8> {
    let b = escaped.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                let hex = escaped.get(i + 1..i + 3).expect("dangling escape");
                out.push(u8::from_str_radix(hex, 16).expect("bad hex escape"));
                i += 3;
            }
            b'*' | b'(' | b')' | 0 => panic!("unescaped metacharacter in {escaped:?}"),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    assert_eq!(decode(&escape_filter_bytes(data)), data);
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    assert_eq!(decode(&escape_filter(s)), data);
    let f = Filter::eq("cn", s).expect("cn is a valid attribute");
    let text = f.to_string();
    let inner = text
        .strip_prefix("(cn=")
        .and_then(|t| t.strip_suffix(')'))
        .expect("one item");
    assert_eq!(decode(inner), data);
});
