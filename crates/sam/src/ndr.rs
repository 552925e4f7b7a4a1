//! NDR 2.0 (transfer syntax 8a885d04-1ceb-11c9-9fe8-08002b104860 v2), little-endian,
//! as used by DCE/RPC over SMB named pipes ([C706] chapter 14, [MS-RPCE] 2.2.5).
//!
//! Only what the SAMR calls of this crate need:
//! - primitive types aligned to their size, with alignment relative to the start of
//!   the stub (the request or response body);
//! - top-level `[ref]` pointers carry no referent id, `[unique]` pointers (top-level or
//!   embedded) carry a non-zero referent id or 0 for NULL;
//! - embedded pointees are deferred to after the enclosing top-level parameter;
//! - conformant arrays (`max_count` first), conformant varying arrays (`max_count`,
//!   `offset`, `actual_count`), `[string] wchar_t*` with the terminating NUL counted;
//! - `RPC_UNICODE_STRING` (Length and MaximumLength in bytes, then a unique pointer to
//!   a conformant varying array of `MaximumLength/2` UTF-16 units of which `Length/2`
//!   are transmitted, without a NUL);
//! - 20-byte context handles and `RPC_SID` (a conformant structure: its `max_count`,
//!   the sub-authority count, comes first).
//!
//! The [`Decoder`] checks every length against the remaining input and never panics;
//! malformed input is an [`NdrError`].

use std::fmt;

use crate::error::NdrError;

/// The first referent id this encoder hands out; each pointer gets the next multiple
/// of 4 (any non-zero value is valid; this matches what Windows clients send).
const FIRST_REFERENT: u32 = 0x0002_0000;

/// NDR encoder. Alignment is relative to the start of the buffer, which must be the
/// start of the stub.
#[derive(Debug)]
pub(crate) struct Encoder {
    buf: Vec<u8>,
    next_referent: u32,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An empty encoder.
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::with_capacity(256),
            next_referent: FIRST_REFERENT,
        }
    }

    /// The encoded stub.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Pads with zero bytes to a multiple of `n` (1, 2, 4 or 8).
    pub(crate) fn align(&mut self, n: usize) {
        while !self.buf.len().is_multiple_of(n) {
            self.buf.push(0);
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.align(2);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Raw bytes (a fixed array of `u8`, alignment 1).
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// A non-NULL unique pointer: a fresh referent id.
    pub(crate) fn referent(&mut self) {
        let id = self.next_referent;
        self.next_referent = self.next_referent.wrapping_add(4);
        self.u32(id);
    }

    /// A NULL unique pointer.
    pub(crate) fn null_ptr(&mut self) {
        self.u32(0);
    }

    /// A context handle (20 bytes, alignment 4).
    pub(crate) fn handle(&mut self, h: &Handle) {
        self.align(4);
        self.buf.extend_from_slice(&h.0);
    }

    /// The body of a `[string] wchar_t*`: max count, offset 0, actual count (both
    /// counting the terminating NUL), the UTF-16 units, the NUL.
    pub(crate) fn wstr_body(&mut self, s: &str) {
        let units: Vec<u16> = s.encode_utf16().chain(std::iter::once(0)).collect();
        let n = len_u32(units.len());
        self.u32(n);
        self.u32(0);
        self.u32(n);
        for u in units {
            self.buf.extend_from_slice(&u.to_le_bytes());
        }
    }

    /// The fixed part of an `RPC_UNICODE_STRING` (Length, MaximumLength, pointer).
    /// `s = None` encodes a NULL buffer of length 0. The text follows later with
    /// [`unicode_string_body`](Self::unicode_string_body) (deferred).
    pub(crate) fn unicode_string_header(&mut self, s: Option<&[u16]>) {
        // The structure is aligned as its most aligned member, the pointer.
        self.align(4);
        match s {
            Some(units) => {
                let bytes = len_u16(units.len().saturating_mul(2));
                self.u16(bytes);
                self.u16(bytes);
                self.referent();
            }
            None => {
                self.u16(0);
                self.u16(0);
                self.null_ptr();
            }
        }
    }

    /// The deferred text of an `RPC_UNICODE_STRING` whose header was written with
    /// `Some(units)`: max count, offset 0, actual count, the units (no NUL).
    pub(crate) fn unicode_string_body(&mut self, units: &[u16]) {
        let n = u32::from(len_u16(units.len().saturating_mul(2)) / 2);
        self.u32(n);
        self.u32(0);
        self.u32(n);
        for u in units.iter().take(n as usize) {
            self.buf.extend_from_slice(&u.to_le_bytes());
        }
    }

    /// A complete `RPC_UNICODE_STRING` reached through a top-level `[ref]` pointer, or
    /// the pointee of a top-level `[unique]` pointer (after its referent id): the
    /// header and then its deferred text.
    pub(crate) fn unicode_string(&mut self, s: &str) {
        let units: Vec<u16> = s.encode_utf16().collect();
        self.unicode_string_header(Some(&units));
        self.unicode_string_body(&units);
    }

    /// An `RPC_SID` (conformant structure): max count, then the SID.
    pub(crate) fn sid(&mut self, sid: &Sid) {
        let n = u8::try_from(sid.sub_authorities.len()).unwrap_or(u8::MAX);
        self.u32(u32::from(n));
        self.u8(sid.revision);
        self.u8(n);
        self.bytes(&sid.authority);
        for s in sid.sub_authorities.iter().take(usize::from(n)) {
            self.u32(*s);
        }
    }
}

/// Lengths in this crate are bounded far below `u32::MAX` (password buffers, names);
/// saturate rather than panic if ever misused.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn len_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(0xFFFE)
}

/// NDR decoder over a response stub. Every read is bounds-checked.
#[derive(Debug, Clone)]
pub(crate) struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

/// The fixed part of a decoded `RPC_UNICODE_STRING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnicodeHeader {
    length: u16,
    maximum_length: u16,
    present: bool,
    offset: usize,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Current offset from the start of the stub.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// Skips padding up to a multiple of `n`.
    pub(crate) fn align(&mut self, n: usize) -> Result<(), NdrError> {
        let pad = (n - self.pos % n) % n;
        self.take(pad).map(|_| ())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], NdrError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(NdrError::Truncated { offset: self.pos })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], NdrError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, NdrError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, NdrError> {
        self.align(2)?;
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, NdrError> {
        self.align(4)?;
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, NdrError> {
        self.align(8)?;
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// An `OLD_LARGE_INTEGER` / `NTTIME` marshalled as two 32-bit halves (alignment
    /// 4): low part, then high part.
    pub(crate) fn old_large_integer(&mut self) -> Result<i64, NdrError> {
        let low = self.u32()?;
        let high = self.u32()?;
        Ok(((u64::from(high) << 32) | u64::from(low)) as i64)
    }

    /// A fixed array of `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], NdrError> {
        self.take(n)
    }

    /// A context handle (20 bytes, alignment 4).
    pub(crate) fn handle(&mut self) -> Result<Handle, NdrError> {
        self.align(4)?;
        Ok(Handle(self.array()?))
    }

    /// A unique pointer: `true` if non-NULL (a referent id follows later).
    pub(crate) fn ptr(&mut self) -> Result<bool, NdrError> {
        Ok(self.u32()? != 0)
    }

    /// A unique pointer that must not be NULL.
    pub(crate) fn non_null_ptr(&mut self) -> Result<(), NdrError> {
        let offset = self.pos;
        if self.ptr()? {
            Ok(())
        } else {
            Err(NdrError::NullPointer { offset })
        }
    }

    /// The max count of a conformant array whose elements take `elem_size` bytes
    /// each; rejects counts the remaining input cannot hold.
    pub(crate) fn conformance(&mut self, elem_size: usize) -> Result<u32, NdrError> {
        let offset = self.pos;
        let n = self.u32()?;
        self.check_fits(n, elem_size, offset)?;
        Ok(n)
    }

    fn check_fits(&self, n: u32, elem_size: usize, offset: usize) -> Result<(), NdrError> {
        let need = (n as usize).checked_mul(elem_size);
        match need {
            Some(need) if need <= self.remaining() => Ok(()),
            _ => Err(NdrError::BadCount { offset }),
        }
    }

    /// A conformant varying array header: returns `(max_count, actual_count)` after
    /// checking offset 0 and `actual <= max`.
    fn varying(&mut self, elem_size: usize) -> Result<(u32, u32), NdrError> {
        let offset = self.pos;
        let max = self.u32()?;
        let off = self.u32()?;
        let actual = self.u32()?;
        if off != 0 || actual > max {
            return Err(NdrError::BadCount { offset });
        }
        self.check_fits(actual, elem_size, offset)?;
        Ok((max, actual))
    }

    fn utf16(&mut self, units: u32) -> Result<Vec<u16>, NdrError> {
        let raw = self.take(units as usize * 2)?;
        Ok(raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect())
    }

    /// The body of a `[string] wchar_t*` (after its referent id, if any). The text
    /// must end with a NUL, which is not returned.
    pub(crate) fn wstr_body(&mut self) -> Result<String, NdrError> {
        let offset = self.pos;
        let (_, actual) = self.varying(2)?;
        let mut units = self.utf16(actual)?;
        if units.pop() != Some(0) {
            return Err(NdrError::BadValue { offset });
        }
        String::from_utf16(&units).map_err(|_| NdrError::BadUtf16 { offset })
    }

    /// The fixed part of an `RPC_UNICODE_STRING`.
    pub(crate) fn unicode_string_header(&mut self) -> Result<UnicodeHeader, NdrError> {
        self.align(4)?;
        let offset = self.pos;
        let length = self.u16()?;
        let maximum_length = self.u16()?;
        let present = self.ptr()?;
        if length > maximum_length || !length.is_multiple_of(2) {
            return Err(NdrError::BadCount { offset });
        }
        Ok(UnicodeHeader {
            length,
            maximum_length,
            present,
            offset,
        })
    }

    /// The deferred UTF-16 units of an `RPC_UNICODE_STRING` (or the identically
    /// marshalled `RPC_SHORT_BLOB`); `None` for a NULL buffer. The counts must
    /// match the header: max count `MaximumLength/2`, actual count `Length/2`.
    pub(crate) fn unicode_string_body_raw(
        &mut self,
        h: UnicodeHeader,
    ) -> Result<Option<Vec<u16>>, NdrError> {
        if !h.present {
            return Ok(None);
        }
        let (max, actual) = self.varying(2)?;
        if u32::from(h.length / 2) != actual || max != u32::from(h.maximum_length / 2) {
            return Err(NdrError::BadCount { offset: h.offset });
        }
        self.utf16(actual).map(Some)
    }

    /// The deferred text of an `RPC_UNICODE_STRING`; `None` for a NULL buffer.
    pub(crate) fn unicode_string_body(
        &mut self,
        h: UnicodeHeader,
    ) -> Result<Option<String>, NdrError> {
        let offset = self.pos;
        match self.unicode_string_body_raw(h)? {
            None => Ok(None),
            Some(units) => String::from_utf16(&units)
                .map(Some)
                .map_err(|_| NdrError::BadUtf16 { offset }),
        }
    }

    /// A conformant varying array of bytes (max count, offset 0, actual count,
    /// bytes).
    pub(crate) fn varying_bytes(&mut self) -> Result<&'a [u8], NdrError> {
        let (_, actual) = self.varying(1)?;
        self.take(actual as usize)
    }

    /// A whole `RPC_UNICODE_STRING` (header and its deferred text), as reached
    /// through a top-level pointer.
    pub(crate) fn unicode_string(&mut self) -> Result<Option<String>, NdrError> {
        let h = self.unicode_string_header()?;
        self.unicode_string_body(h)
    }

    /// An `RPC_SID` (conformant structure: max count first).
    pub(crate) fn sid(&mut self) -> Result<Sid, NdrError> {
        let offset = self.pos;
        let max = self.conformance(4)?;
        let revision = self.u8()?;
        let count = self.u8()?;
        let authority = self.array::<6>()?;
        if revision != 1 || u32::from(count) != max || count > Sid::MAX_SUB_AUTHORITIES {
            return Err(NdrError::BadValue { offset });
        }
        let mut sub_authorities = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            sub_authorities.push(self.u32()?);
        }
        Ok(Sid {
            revision,
            authority,
            sub_authorities,
        })
    }

    /// A conformant array of `u32` (after its pointer): max count, elements.
    pub(crate) fn u32_array(&mut self) -> Result<Vec<u32>, NdrError> {
        let n = self.conformance(4)?;
        (0..n).map(|_| self.u32()).collect()
    }

    /// The trailing NTSTATUS of a response.
    pub(crate) fn status(&mut self) -> Result<crate::status::NtStatus, NdrError> {
        Ok(crate::status::NtStatus::new(self.u32()?))
    }

    /// Checks that nothing but up to 7 zero padding bytes follow.
    pub(crate) fn finish(&self) -> Result<(), NdrError> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        if rest.len() < 8 && rest.iter().all(|&b| b == 0) {
            Ok(())
        } else {
            Err(NdrError::TrailingData { len: rest.len() })
        }
    }
}

/// An RPC context handle (`SAMPR_HANDLE`): 4 bytes of attributes and a 16-byte UUID.
/// It is meaningful only on the connection that returned it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Handle(pub(crate) [u8; 20]);

impl Handle {
    /// The handle's 20 bytes.
    pub(crate) fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// A handle from its 20 bytes.
    pub(crate) fn from_bytes(b: [u8; 20]) -> Self {
        Self(b)
    }

    /// Whether this is the all-zero (closed / NULL) handle.
    pub(crate) fn is_null(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handle(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// A security identifier (`RPC_SID`, [MS-DTYP] 2.4.2.3).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Sid {
    revision: u8,
    authority: [u8; 6],
    sub_authorities: Vec<u32>,
}

impl Sid {
    /// The most sub-authorities a SID may have.
    pub(crate) const MAX_SUB_AUTHORITIES: u8 = 15;

    /// A revision-1 SID from its identifier authority and sub-authorities (at most
    /// 15); `None` if there are too many.
    pub(crate) fn new(authority: u64, sub_authorities: &[u32]) -> Option<Self> {
        if sub_authorities.len() > usize::from(Self::MAX_SUB_AUTHORITIES) || authority >= 1 << 48 {
            return None;
        }
        let a = authority.to_be_bytes();
        let mut authority = [0u8; 6];
        authority.copy_from_slice(&a[2..]);
        Some(Self {
            revision: 1,
            authority,
            sub_authorities: sub_authorities.to_vec(),
        })
    }

    /// The identifier authority (48 bits, big-endian on the wire).
    pub(crate) fn authority(&self) -> u64 {
        self.authority
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    }

    /// The sub-authorities.
    pub(crate) fn sub_authorities(&self) -> &[u32] {
        &self.sub_authorities
    }

    /// This SID with `rid` appended (an account SID from its domain SID); `None` if
    /// the SID already has 15 sub-authorities.
    pub(crate) fn with_rid(&self, rid: u32) -> Option<Self> {
        let mut s = self.sub_authorities.clone();
        s.push(rid);
        Self::new(self.authority(), &s)
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-{}-{}", self.revision, self.authority())?;
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn alignment_is_relative_to_stub_start() {
        let mut e = Encoder::new();
        e.u8(1);
        e.u16(0x0203);
        e.u8(4);
        e.u32(0x0506_0708);
        e.u64(0x1122_3344_5566_7788);
        assert_eq!(
            e.into_bytes(),
            [
                1, 0, 3, 2, 4, 0, 0, 0, 8, 7, 6, 5, 0, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33,
                0x22, 0x11
            ]
        );
    }

    #[test]
    fn wstr_golden() {
        // [string] wchar_t* "ab": max 3, offset 0, actual 3, "a" "b" NUL (C706 14.3.4.2).
        let mut e = Encoder::new();
        e.referent();
        e.wstr_body("ab");
        let b = e.into_bytes();
        assert_eq!(
            b,
            [
                0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, b'a', 0, b'b', 0, 0, 0
            ]
        );
        let mut d = Decoder::new(&b);
        d.non_null_ptr().unwrap();
        assert_eq!(d.wstr_body().unwrap(), "ab");
        d.finish().unwrap();
    }

    #[test]
    fn unicode_string_golden() {
        // RPC_UNICODE_STRING "ab": Length 4, MaximumLength 4, referent; deferred:
        // max 2, offset 0, actual 2, "a" "b" (no NUL) ([MS-DTYP] 2.3.10).
        let mut e = Encoder::new();
        e.unicode_string("ab");
        let b = e.into_bytes();
        assert_eq!(
            b,
            [
                4, 0, 4, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'b', 0
            ]
        );
        let mut d = Decoder::new(&b);
        assert_eq!(d.unicode_string().unwrap().as_deref(), Some("ab"));
        d.finish().unwrap();
    }

    #[test]
    fn sid_golden() {
        // S-1-5-21-1-2-3 as RPC_SID: max count 4, revision 1, count 4, authority
        // 0:0:0:0:0:5 (big-endian), sub-authorities little-endian.
        let sid = Sid::new(5, &[21, 1, 2, 3]).unwrap();
        assert_eq!(sid.to_string(), "S-1-5-21-1-2-3");
        let mut e = Encoder::new();
        e.sid(&sid);
        let b = e.into_bytes();
        assert_eq!(
            b,
            [
                4, 0, 0, 0, 1, 4, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0
            ]
        );
        let mut d = Decoder::new(&b);
        assert_eq!(d.sid().unwrap(), sid);
        assert_eq!(
            sid.with_rid(1001).unwrap().to_string(),
            "S-1-5-21-1-2-3-1001"
        );
    }

    #[test]
    fn decoder_rejects_bad_counts() {
        // actual > max
        let b = [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            Decoder::new(&b).wstr_body(),
            Err(NdrError::BadCount { .. })
        ));
        // offset != 0
        let b = [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0];
        assert!(Decoder::new(&b).wstr_body().is_err());
        // huge count with little data
        let b = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            Decoder::new(&b).wstr_body(),
            Err(NdrError::BadCount { .. })
        ));
        // missing NUL
        let b = [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, b'a', 0];
        assert!(matches!(
            Decoder::new(&b).wstr_body(),
            Err(NdrError::BadValue { .. })
        ));
        // unicode string Length odd / > Max
        let b = [3, 0, 4, 0, 0, 0, 0, 0];
        assert!(Decoder::new(&b).unicode_string_header().is_err());
        let b = [6, 0, 4, 0, 0, 0, 0, 0];
        assert!(Decoder::new(&b).unicode_string_header().is_err());
        // SID count mismatch
        let b = [5, 0, 0, 0, 1, 4, 0, 0, 0, 0, 0, 5];
        assert!(Decoder::new(&b).sid().is_err());
    }

    #[test]
    fn decoder_reports_truncation_and_trailing_data() {
        assert_eq!(
            Decoder::new(&[1, 2, 3]).u32(),
            Err(NdrError::Truncated { offset: 0 })
        );
        let mut d = Decoder::new(&[0, 0, 0, 0, 1]);
        d.u32().unwrap();
        assert_eq!(d.finish(), Err(NdrError::TrailingData { len: 1 }));
        let mut d = Decoder::new(&[0, 0, 0, 0, 0, 0]);
        d.u32().unwrap();
        assert_eq!(d.finish(), Ok(()));
    }

    proptest! {
        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut d = Decoder::new(&data);
            let _ = d.wstr_body();
            let mut d = Decoder::new(&data);
            let _ = d.unicode_string();
            let mut d = Decoder::new(&data);
            let _ = d.sid();
            let mut d = Decoder::new(&data);
            let _ = d.u32_array();
            let mut d = Decoder::new(&data);
            let _ = d.u8().and_then(|_| d.u64()).and_then(|_| d.handle());
        }

        #[test]
        fn unicode_string_round_trip(s in "\\PC{0,40}", pre in 0usize..8) {
            let mut e = Encoder::new();
            for _ in 0..pre { e.u8(0xAA); }
            e.unicode_string(&s);
            let b = e.into_bytes();
            let mut d = Decoder::new(&b);
            for _ in 0..pre { d.u8().unwrap(); }
            prop_assert_eq!(d.unicode_string().unwrap(), Some(s));
            prop_assert!(d.finish().is_ok());
        }

        #[test]
        fn wstr_round_trip(s in "\\PC{0,40}", pre in 0usize..8) {
            let mut e = Encoder::new();
            for _ in 0..pre { e.u8(0xAA); }
            e.referent();
            e.wstr_body(&s);
            let b = e.into_bytes();
            let mut d = Decoder::new(&b);
            for _ in 0..pre { d.u8().unwrap(); }
            d.non_null_ptr().unwrap();
            prop_assert_eq!(d.wstr_body().unwrap(), s);
        }

        #[test]
        fn sid_round_trip(auth in 0u64..(1 << 48), subs in proptest::collection::vec(any::<u32>(), 0..=15)) {
            let sid = Sid::new(auth, &subs).unwrap();
            let mut e = Encoder::new();
            e.sid(&sid);
            let b = e.into_bytes();
            let mut d = Decoder::new(&b);
            prop_assert_eq!(d.sid().unwrap(), sid);
            prop_assert!(d.finish().is_ok());
        }

        #[test]
        fn primitives_round_trip(a in any::<u8>(), b in any::<u16>(), c in any::<u32>(), x in any::<u64>(), h in any::<[u8; 20]>()) {
            let mut e = Encoder::new();
            e.u8(a); e.u16(b); e.u8(a); e.u32(c); e.u8(a); e.u64(x); e.u8(a); e.handle(&Handle(h));
            let buf = e.into_bytes();
            let mut d = Decoder::new(&buf);
            prop_assert_eq!(d.u8().unwrap(), a);
            prop_assert_eq!(d.u16().unwrap(), b);
            prop_assert_eq!(d.u8().unwrap(), a);
            prop_assert_eq!(d.u32().unwrap(), c);
            prop_assert_eq!(d.u8().unwrap(), a);
            prop_assert_eq!(d.u64().unwrap(), x);
            prop_assert_eq!(d.u8().unwrap(), a);
            prop_assert_eq!(d.handle().unwrap(), Handle(h));
            prop_assert!(d.finish().is_ok());
        }
    }
}
