//! The DCE/RPC PDU decoders, the SAMR response decoders and the NTLM / SMB frame
//! parsers of credwheel-sam never panic on any bytes a host could send.
#![no_main]

use libfuzzer_sys::fuzz_target;

const MAX_INPUT: usize = 65_536;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    credwheel_sam::internal::decode_responses(data);
});
