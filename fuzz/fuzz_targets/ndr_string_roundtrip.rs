//! Any text encoded by credwheel-sam's NDR encoder as an `RPC_UNICODE_STRING` and as
//! a `[string] wchar_t*`, at any alignment, decodes back to exactly that text.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Inputs longer than this are skipped (see `samr_response`).
const MAX_INPUT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT || data.is_empty() {
        return;
    }
    let Ok(s) = std::str::from_utf8(&data[1..]) else {
        return;
    };
    assert!(
        credwheel_sam::internal::unicode_round_trip(s, data[0]),
        "round trip failed for {s:?}"
    );
});
