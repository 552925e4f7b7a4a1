//! Entry points for the fuzz targets in `fuzz/`. Not part of the public API: no
//! stability guarantees; do not use.

use crate::ndr::{Decoder, Encoder};

/// Runs every DCE/RPC PDU decoder and every SAMR response decoder on `data`, and
/// the NTLM and SMB frame parsers the session key is computed from. None may
/// panic, whatever the bytes.
pub fn decode_responses(data: &[u8]) {
    let call_id = data
        .get(12..16)
        .map_or(1, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let _ = crate::rpc::decode_response(data, call_id, 64);
    let _ = crate::rpc::decode_bind_answer(data, call_id);
    crate::glue::decode_every_response(data);
    let _ = crate::session_key::challenge_names(data);
    let _ = crate::session_key::ntlmv2_session_key(data, data, "fuzz");
    crate::transport::observe_for_fuzzing(data);
}

/// Decodes `data` as the response stub of every SAMR call this crate makes, and
/// formats and classifies every error. Must never panic.
pub fn decode_samr_responses(data: &[u8]) {
    crate::samr::decode_every_response(data);
}

/// Decodes `data` with each NDR structure decoder (strings, `RPC_UNICODE_STRING`,
/// SIDs, conformant arrays, handles). Must never panic.
pub fn decode_ndr(data: &[u8]) {
    let _ = Decoder::new(data).wstr_body();
    let _ = Decoder::new(data).unicode_string();
    let _ = Decoder::new(data).sid();
    let _ = Decoder::new(data).u32_array();
    let _ = Decoder::new(data).varying_bytes();
    let mut d = Decoder::new(data);
    let _ = d
        .handle()
        .and_then(|_| d.old_large_integer())
        .and_then(|_| d.u64());
    let _ = d.finish();
}

/// Encodes `s` as an `RPC_UNICODE_STRING` and as a `[string] wchar_t*` after
/// `pad` bytes, decodes both, and returns whether each came back unchanged.
pub fn unicode_round_trip(s: &str, pad: u8) -> bool {
    let pad = usize::from(pad % 8);
    let mut e = Encoder::new();
    for _ in 0..pad {
        e.u8(0xA5);
    }
    e.unicode_string(s);
    e.referent();
    e.wstr_body(s);
    let b = e.into_bytes();
    let mut d = Decoder::new(&b);
    for _ in 0..pad {
        if d.u8().is_err() {
            return false;
        }
    }
    let counted = d.unicode_string();
    let ptr = d.non_null_ptr();
    let wstr = d.wstr_body();
    let fits = s.encode_utf16().count() <= usize::from(u16::MAX / 2);
    let counted_ok = counted.as_ref().ok().and_then(|o| o.as_deref()) == Some(s);
    (counted_ok || !fits) && ptr.is_ok() && wstr.as_deref().ok() == Some(s) && d.finish().is_ok()
}
