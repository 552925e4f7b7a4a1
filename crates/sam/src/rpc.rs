//! Connection-oriented DCE/RPC (C706 chapter 12, MS-RPCE 2.2.2) over a named pipe.
//!
//! Every PDU travels in one SMB2 IOCTL `FSCTL_PIPE_TRANSCEIVE`: the request goes out
//! as the input buffer and the server's answer comes back as the output buffer. The
//! bind offers NDR 2.0 only (the transfer syntax every SAMR server speaks; the `smb`
//! crate's own bind offers NDR64, which Samba refuses). Authentication inside the pipe
//! is "none", as MS-SAMR requires over SMB: the SMB 3 session encrypts the calls.
//!
//! **Fragments.** Requests are sent as a single fragment (SAMR requests here are well
//! under 1 KiB; a larger one is refused). A response may come as several fragments:
//! they are read from the transceive output, which is sized to hold
//! [`MAX_RESPONSE`] bytes. The `smb` crate (0.12) has no public pipe read for a
//! `Pipe`, so a response longer than that cannot be completed and is reported as a
//! protocol error instead of being truncated silently.

use std::future::Future;

use crate::error::{Call, Error};

/// NDR 2.0 transfer syntax `8a885d04-1ceb-11c9-9fe8-08002b104860` version 2.
pub(crate) const NDR20: SyntaxId = SyntaxId {
    uuid: [
        0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48,
        0x60,
    ],
    version: 2,
};

/// SAMR `12345778-1234-abcd-ef00-0123456789ac` version 1.0.
pub(crate) const SAMR: SyntaxId = SyntaxId {
    uuid: [
        0x78, 0x57, 0x34, 0x12, 0x34, 0x12, 0xcd, 0xab, 0xef, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89,
        0xac,
    ],
    version: 1,
};

/// The fragment size we offer in the bind (what Samba and Windows use).
const MAX_FRAG: u16 = 4280;
/// The transceive output size: the longest response (all fragments) we can take in.
pub(crate) const MAX_RESPONSE: u32 = 65_536;
const HEADER: usize = 16;
const REQUEST_HEADER: usize = 24;

const PTYPE_REQUEST: u8 = 0;
const PTYPE_RESPONSE: u8 = 2;
const PTYPE_FAULT: u8 = 3;
const PTYPE_BIND: u8 = 11;
const PTYPE_BIND_ACK: u8 = 12;
const PTYPE_BIND_NAK: u8 = 13;
const PFC_FIRST_FRAG: u8 = 0x01;
const PFC_LAST_FRAG: u8 = 0x02;
/// Little-endian integers, ASCII characters, IEEE floats.
const DREP: [u8; 4] = [0x10, 0, 0, 0];

/// An interface or transfer syntax identifier (UUID in its little-endian wire form,
/// major version; minor version 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxId {
    uuid: [u8; 16],
    version: u16,
}

impl SyntaxId {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.uuid);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
    }
}

/// One round trip of bytes over the pipe.
pub(crate) trait Transceive: Send {
    /// Sends `pdu` and returns the server's answer (at most `max_out` bytes).
    fn transceive(
        &mut self,
        pdu: Vec<u8>,
        max_out: u32,
    ) -> impl Future<Output = Result<Vec<u8>, Error>> + Send;
}

fn header(ptype: u8, flags: u8, frag_len: usize, call_id: u32) -> Result<Vec<u8>, Error> {
    let frag_len =
        u16::try_from(frag_len).map_err(|_| Error::Protocol("RPC request too large".into()))?;
    let mut h = Vec::with_capacity(usize::from(frag_len));
    h.extend_from_slice(&[5, 0, ptype, flags]);
    h.extend_from_slice(&DREP);
    h.extend_from_slice(&frag_len.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // auth_length
    h.extend_from_slice(&call_id.to_le_bytes());
    Ok(h)
}

/// The bind PDU: one presentation context (id 0) for `interface` over NDR 2.0.
pub(crate) fn encode_bind(call_id: u32, interface: SyntaxId) -> Result<Vec<u8>, Error> {
    let len = HEADER + 8 + 4 + 4 + 20 + 20;
    let mut p = header(PTYPE_BIND, PFC_FIRST_FRAG | PFC_LAST_FRAG, len, call_id)?;
    p.extend_from_slice(&MAX_FRAG.to_le_bytes()); // max_xmit_frag
    p.extend_from_slice(&MAX_FRAG.to_le_bytes()); // max_recv_frag
    p.extend_from_slice(&0u32.to_le_bytes()); // assoc_group_id: new group
    p.extend_from_slice(&[1, 0, 0, 0]); // n_context_elem, reserved, reserved2
    p.extend_from_slice(&0u16.to_le_bytes()); // p_cont_id
    p.extend_from_slice(&[1, 0]); // n_transfer_syn, reserved
    interface.write(&mut p);
    NDR20.write(&mut p);
    Ok(p)
}

/// A request PDU (single fragment) for `opnum` with the NDR `stub`.
pub(crate) fn encode_request(call_id: u32, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, Error> {
    let len = REQUEST_HEADER + stub.len();
    let mut p = header(PTYPE_REQUEST, PFC_FIRST_FRAG | PFC_LAST_FRAG, len, call_id)?;
    let hint = u32::try_from(stub.len()).map_err(|_| Error::Protocol("stub too large".into()))?;
    p.extend_from_slice(&hint.to_le_bytes()); // alloc_hint
    p.extend_from_slice(&0u16.to_le_bytes()); // p_cont_id
    p.extend_from_slice(&opnum.to_le_bytes());
    p.extend_from_slice(stub);
    Ok(p)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn bad(what: &str) -> Error {
    Error::Protocol(format!("DCE/RPC: {what}"))
}

/// One PDU: type, flags, call id, the bytes after the common header, and what follows
/// the PDU in the buffer.
type Pdu<'a> = (u8, u8, u32, &'a [u8], &'a [u8]);

/// One PDU split off the front of `buf`.
fn next_pdu(buf: &[u8]) -> Result<Pdu<'_>, Error> {
    if buf.len() < HEADER {
        return Err(bad("truncated PDU header"));
    }
    if buf[0] != 5 || buf[1] != 0 {
        return Err(bad("not a DCE/RPC v5.0 PDU"));
    }
    if buf[4] & 0xF0 != 0x10 {
        return Err(bad("big-endian data representation is not supported"));
    }
    let frag_len = usize::from(u16_at(buf, 8).ok_or_else(|| bad("truncated"))?);
    let auth_len = usize::from(u16_at(buf, 10).ok_or_else(|| bad("truncated"))?);
    if frag_len < HEADER || frag_len > buf.len() {
        return Err(bad("fragment length outside the received data"));
    }
    if auth_len != 0 {
        return Err(bad("unexpected authentication trailer"));
    }
    let call_id = u32_at(buf, 12).ok_or_else(|| bad("truncated"))?;
    Ok((
        buf[2],
        buf[3],
        call_id,
        &buf[HEADER..frag_len],
        &buf[frag_len..],
    ))
}

/// What the server agreed to in a bind_ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BindAck {
    pub(crate) max_xmit_frag: u16,
    pub(crate) max_recv_frag: u16,
}

/// Decodes the answer to a bind with `call_id`: bind_ack with the first context
/// accepted for NDR 2.0, else an error.
pub(crate) fn decode_bind_answer(buf: &[u8], call_id: u32) -> Result<BindAck, Error> {
    let (ptype, _flags, id, body, _rest) = next_pdu(buf)?;
    if id != call_id {
        return Err(bad("bind answer has the wrong call id"));
    }
    match ptype {
        PTYPE_BIND_ACK => {}
        PTYPE_BIND_NAK => {
            let reason = u16_at(body, 0).unwrap_or(0);
            return Err(Error::BindRejected { reason });
        }
        PTYPE_FAULT => {
            let code = u32_at(body, 8).unwrap_or(0);
            return Err(Error::Fault {
                call: Call::Bind,
                code,
            });
        }
        _ => return Err(bad("unexpected PDU type in answer to bind")),
    }
    let max_xmit_frag = u16_at(body, 0).ok_or_else(|| bad("truncated bind_ack"))?;
    let max_recv_frag = u16_at(body, 2).ok_or_else(|| bad("truncated bind_ack"))?;
    let sec_len = usize::from(u16_at(body, 8).ok_or_else(|| bad("truncated bind_ack"))?);
    // Secondary address, then padding to a 4-byte boundary of the whole PDU.
    let after = HEADER + 10 + sec_len;
    let at = after.div_ceil(4) * 4 - HEADER;
    let n_results = *body.get(at).ok_or_else(|| bad("truncated bind_ack"))?;
    if n_results == 0 {
        return Err(bad("bind_ack without results"));
    }
    let result = u16_at(body, at + 4).ok_or_else(|| bad("truncated bind_ack"))?;
    let reason = u16_at(body, at + 6).ok_or_else(|| bad("truncated bind_ack"))?;
    if result != 0 {
        return Err(Error::BindRejected { reason });
    }
    let syntax = body
        .get(at + 8..at + 28)
        .ok_or_else(|| bad("truncated bind_ack"))?;
    let mut want = Vec::with_capacity(20);
    NDR20.write(&mut want);
    if syntax != want.as_slice() {
        return Err(bad("server accepted a transfer syntax we did not offer"));
    }
    if max_xmit_frag < 1024 || max_recv_frag < 1024 {
        return Err(bad("server's fragment sizes are too small"));
    }
    Ok(BindAck {
        max_xmit_frag,
        max_recv_frag,
    })
}

/// Decodes all fragments of the response to the request `call_id` for `opnum` and
/// returns the concatenated stub.
pub(crate) fn decode_response(buf: &[u8], call_id: u32, opnum: u16) -> Result<Vec<u8>, Error> {
    let mut rest = buf;
    let mut stub = Vec::new();
    let mut first = true;
    loop {
        if rest.is_empty() {
            return Err(bad(
                "the response continues beyond what one pipe transceive returned",
            ));
        }
        let (ptype, flags, id, body, tail) = next_pdu(rest)?;
        rest = tail;
        if id != call_id {
            return Err(bad("response has the wrong call id"));
        }
        if first != (flags & PFC_FIRST_FRAG != 0) {
            return Err(bad("fragments out of order"));
        }
        first = false;
        match ptype {
            PTYPE_RESPONSE => {
                if body.len() < 8 {
                    return Err(bad("truncated response"));
                }
                if u16_at(body, 4) != Some(0) {
                    return Err(bad("response for another presentation context"));
                }
                stub.extend_from_slice(&body[8..]);
            }
            PTYPE_FAULT => {
                let code = u32_at(body, 8).ok_or_else(|| bad("truncated fault"))?;
                return Err(Error::Fault {
                    call: Call::Samr(opnum),
                    code,
                });
            }
            _ => return Err(bad("unexpected PDU type in answer to a request")),
        }
        if flags & PFC_LAST_FRAG != 0 {
            if !rest.is_empty() {
                return Err(bad("data after the last fragment"));
            }
            return Ok(stub);
        }
    }
}

/// A bound DCE/RPC association on one pipe.
pub(crate) struct RpcChannel<T> {
    io: T,
    next_call_id: u32,
    max_xmit_frag: u16,
    /// Every raw answer, for capturing golden bytes in live tests.
    #[cfg(test)]
    pub(crate) answers: Vec<Vec<u8>>,
}

impl<T: Transceive> RpcChannel<T> {
    /// Binds `interface` (NDR 2.0) on the pipe.
    pub(crate) async fn bind(mut io: T, interface: SyntaxId) -> Result<Self, Error> {
        let call_id = 1;
        let answer = io
            .transceive(encode_bind(call_id, interface)?, MAX_RESPONSE)
            .await?;
        let ack = decode_bind_answer(&answer, call_id)?;
        Ok(Self {
            io,
            next_call_id: call_id + 1,
            max_xmit_frag: ack.max_xmit_frag,
            #[cfg(test)]
            answers: vec![answer],
        })
    }

    /// Calls `opnum` with the NDR-encoded `stub` and returns the response stub.
    pub(crate) async fn call(&mut self, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, Error> {
        if REQUEST_HEADER + stub.len() > usize::from(self.max_xmit_frag) {
            return Err(Error::Protocol(format!(
                "request for opnum {opnum} does not fit one fragment"
            )));
        }
        let call_id = self.next_call_id;
        self.next_call_id = self.next_call_id.wrapping_add(1).max(1);
        let answer = self
            .io
            .transceive(encode_request(call_id, opnum, stub)?, MAX_RESPONSE)
            .await?;
        #[cfg(test)]
        self.answers.push(answer.clone());
        decode_response(&answer, call_id, opnum)
    }

    /// The pipe under the association.
    pub(crate) fn io_mut(&mut self) -> &mut T {
        &mut self.io
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// Layout of C706 12.6.4.3 (bind) with the SAMR and NDR 2.0 syntax identifiers of
    /// MS-SAMR 2.1 and MS-RPCE 2.2.4.12, assembled by hand field by field.
    const BIND_GOLDEN: &str = "05 00 0b 03 10 00 00 00 48 00 00 00 01 00 00 00
        b8 10 b8 10 00 00 00 00 01 00 00 00 00 00 01 00
        78 57 34 12 34 12 cd ab ef 00 01 23 45 67 89 ac 01 00 00 00
        04 5d 88 8a eb 1c c9 11 9f e8 08 00 2b 10 48 60 02 00 00 00";

    // Captured from the lab's Samba 4.17.12 (WINHOST, 127.0.0.1:4445) on 2026-11-27
    // by `live_probe::capture_golden`: the bind_ack to BIND_GOLDEN, the response to
    // SamrConnect5 (call id 2) and to SamrCloseHandle (call id 3).
    const LAB_BIND_ACK: &str = "05000c03100000004400000001000000b810b8106b1b00000b005c706970655c\
        73616d72000000000100000000000000045d888aeb1cc9119fe808002b10486002000000";
    const LAB_CONNECT5_RESPONSE: &str = "0500020310000000400000000200000028000000000000000100000001000000\
        030000000000000000000000f1135a9fafc8a34d99634a31729a7d7700000000";
    const LAB_CLOSE_RESPONSE: &str = "0500020310000000300000000300000018000000000000000000000000000000\
        00000000000000000000000000000000";

    #[test]
    fn lab_captures_decode() {
        let ack = decode_bind_answer(&h(LAB_BIND_ACK), 1).unwrap();
        assert_eq!((ack.max_xmit_frag, ack.max_recv_frag), (4280, 4280));
        let stub = decode_response(&h(LAB_CONNECT5_RESPONSE), 2, 64).unwrap();
        assert_eq!(stub.len(), 40);
        let handle = crate::samr::connect5_response(&stub).unwrap();
        assert_eq!(handle.0[4..8], [0xf1, 0x13, 0x5a, 0x9f]);
        let stub = decode_response(&h(LAB_CLOSE_RESPONSE), 3, 1).unwrap();
        crate::samr::close_handle_response(&stub).unwrap();
        // The same bytes under the wrong call id are refused.
        assert!(decode_response(&h(LAB_CONNECT5_RESPONSE), 3, 64).is_err());
        assert!(decode_bind_answer(&h(LAB_BIND_ACK), 2).is_err());
    }

    #[test]
    fn bind_matches_golden_bytes() {
        assert_eq!(encode_bind(1, SAMR).unwrap(), h(BIND_GOLDEN));
    }

    #[test]
    fn request_header_layout() {
        let p = encode_request(7, 64, &[0xaa, 0xbb]).unwrap();
        assert_eq!(
            p,
            h("05 00 00 03 10 00 00 00 1a 00 00 00 07 00 00 00 02 00 00 00 00 00 40 00 aa bb")
        );
    }

    fn bind_ack(call_id: u32, result: u16, port: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&4280u16.to_le_bytes());
        body.extend_from_slice(&4280u16.to_le_bytes());
        body.extend_from_slice(&0x1234u32.to_le_bytes());
        body.extend_from_slice(&u16::try_from(port.len()).unwrap().to_le_bytes());
        body.extend_from_slice(port);
        while !(HEADER + body.len()).is_multiple_of(4) {
            body.push(0);
        }
        body.extend_from_slice(&[1, 0, 0, 0]);
        body.extend_from_slice(&result.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        NDR20.write(&mut body);
        let mut p = header(PTYPE_BIND_ACK, 3, HEADER + body.len(), call_id).unwrap();
        p.extend_from_slice(&body);
        p
    }

    #[test]
    fn bind_ack_accepted_and_rejected() {
        let ack = decode_bind_answer(&bind_ack(1, 0, b"\\PIPE\\lsass\0"), 1).unwrap();
        assert_eq!(ack.max_xmit_frag, 4280);
        assert!(matches!(
            decode_bind_answer(&bind_ack(1, 2, b"\0"), 1),
            Err(Error::BindRejected { .. })
        ));
        assert!(decode_bind_answer(&bind_ack(2, 0, b"\0"), 1).is_err());
    }

    #[test]
    fn bind_nak_is_typed() {
        let mut p = header(PTYPE_BIND_NAK, 3, HEADER + 2, 1).unwrap();
        p.extend_from_slice(&4u16.to_le_bytes());
        assert_eq!(
            decode_bind_answer(&p, 1),
            Err(Error::BindRejected { reason: 4 })
        );
    }

    fn response(call_id: u32, flags: u8, stub: &[u8]) -> Vec<u8> {
        let mut p = header(PTYPE_RESPONSE, flags, HEADER + 8 + stub.len(), call_id).unwrap();
        p.extend_from_slice(&u32::try_from(stub.len()).unwrap().to_le_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        p.extend_from_slice(stub);
        p
    }

    #[test]
    fn multi_fragment_response_is_joined() {
        let mut buf = response(3, PFC_FIRST_FRAG, b"abc");
        buf.extend_from_slice(&response(3, 0, b"def"));
        buf.extend_from_slice(&response(3, PFC_LAST_FRAG, b"g"));
        assert_eq!(decode_response(&buf, 3, 1).unwrap(), b"abcdefg");
        // Missing last fragment.
        let cut = response(3, PFC_FIRST_FRAG, b"abc");
        assert!(decode_response(&cut, 3, 1).is_err());
    }

    #[test]
    fn fault_and_call_id_checks() {
        let mut f = header(PTYPE_FAULT, 3, HEADER + 16, 5).unwrap();
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&0x1c01_0002u32.to_le_bytes());
        f.extend_from_slice(&[0; 4]);
        assert_eq!(
            decode_response(&f, 5, 73),
            Err(Error::Fault {
                call: Call::Samr(73),
                code: 0x1c01_0002
            })
        );
        assert!(decode_response(&response(4, 3, b"x"), 5, 1).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u32;
        for len in 0..200 {
            let mut b: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            if len > 4 {
                b[0] = 5;
                b[1] = 0;
                b[4] = 0x10;
            }
            let _ = decode_response(&b, 1, 1);
            let _ = decode_bind_answer(&b, 1);
        }
    }

    struct Fake(Vec<Vec<u8>>, Vec<Vec<u8>>);

    impl Transceive for Fake {
        async fn transceive(&mut self, pdu: Vec<u8>, _max: u32) -> Result<Vec<u8>, Error> {
            self.1.push(pdu);
            Ok(self.0.remove(0))
        }
    }

    #[tokio::test]
    async fn channel_binds_and_calls_with_increasing_call_ids() {
        let fake = Fake(
            vec![
                bind_ack(1, 0, b"\0"),
                response(2, 3, b"ok"),
                response(3, 3, b"ok2"),
            ],
            vec![],
        );
        let mut ch = RpcChannel::bind(fake, SAMR).await.unwrap();
        assert_eq!(ch.call(64, b"x").await.unwrap(), b"ok");
        assert_eq!(ch.call(1, b"y").await.unwrap(), b"ok2");
        let sent = &ch.io_mut().1;
        assert_eq!(sent[1][12..16], 2u32.to_le_bytes());
        assert_eq!(sent[2][22..24], 1u16.to_le_bytes());
    }
}
