//! Every SAMR response decoder and every NDR structure decoder of credwheel-sam
//! accepts arbitrary bytes without panicking (a typed error for malformed input),
//! and formatting and classifying the resulting errors never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Inputs longer than this are skipped: SAMR answers used by credwheel-sam are a
/// few hundred bytes; longer inputs only slow the fuzzer down.
const MAX_INPUT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    credwheel_sam::internal::decode_samr_responses(data);
    credwheel_sam::internal::decode_ndr(data);
});
