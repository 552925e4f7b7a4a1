//! The TCP transport under the SMB connection.
//!
//! Two jobs, both on the public [`SmbTransport`] trait of the `smb` crate:
//!
//! - **Latency:** every SMB frame (4-byte direct-TCP header and body) goes out in one
//!   `write` on a socket with `TCP_NODELAY`. Written in two pieces without it, Nagle's
//!   algorithm holds each request back by about 40 ms.
//! - **Observation:** it keeps a running SHA-512 over the plaintext NEGOTIATE and
//!   SESSION_SETUP frames and keeps the NTLM CHALLENGE and AUTHENTICATE messages, which
//!   is what [`session_key`](crate::session_key) needs to recompute the SMB 3
//!   application key. Nothing after the session setup is looked at (it is encrypted or
//!   signed anyway).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use sha2::{Digest, Sha512};
use smb::transport::{IoVec, SmbTransport, SmbTransportRead, SmbTransportWrite, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use zeroize::Zeroize;

const SMB2_MAGIC: [u8; 4] = [0xFE, b'S', b'M', b'B'];
const HEADER_LEN: usize = 64;
const CMD_NEGOTIATE: u16 = 0;
const CMD_SESSION_SETUP: u16 = 1;
const FLAG_SERVER_TO_REDIR: u32 = 1;
const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;
/// Largest frame accepted from the server (the direct-TCP length field has 24 bits).
const MAX_FRAME: usize = 0x00FF_FFFF;

/// What the transport saw of one connection's negotiate and session setup.
pub(crate) struct Observed {
    /// Dialect revision from the NEGOTIATE response (0x0311 for SMB 3.1.1).
    pub(crate) dialect: u16,
    /// SHA-512 chain over the negotiate request and response.
    connection_hash: [u8; 64],
    /// The session's chain (starts from `connection_hash`), while a setup runs or after.
    session_hash: Option<[u8; 64]>,
    /// Whether the session setup completed (a success response was seen).
    pub(crate) complete: bool,
    /// The NTLM CHALLENGE message of the current setup.
    pub(crate) challenge: Vec<u8>,
    /// The NTLM AUTHENTICATE message of the current setup.
    pub(crate) authenticate: Vec<u8>,
}

impl Default for Observed {
    fn default() -> Self {
        Self {
            dialect: 0,
            connection_hash: [0; 64],
            session_hash: None,
            complete: false,
            challenge: Vec::new(),
            authenticate: Vec::new(),
        }
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.authenticate.zeroize();
        self.challenge.zeroize();
    }
}

impl Observed {
    /// The session's preauth integrity hash: negotiate request and response, every
    /// session-setup request and response except the final success response.
    pub(crate) fn preauth_hash(&self) -> Option<&[u8; 64]> {
        self.session_hash.as_ref().filter(|_| self.complete)
    }

    /// Drops the NTLM messages once the key is derived (the AUTHENTICATE message
    /// would allow an offline guess of the password).
    pub(crate) fn forget(&mut self) {
        self.authenticate.zeroize();
        self.authenticate = Vec::new();
        self.challenge.zeroize();
        self.challenge = Vec::new();
    }

    fn chain(prev: &[u8; 64], frame: &[u8]) -> [u8; 64] {
        let mut h = Sha512::new();
        h.update(prev);
        h.update(frame);
        h.finalize().into()
    }

    /// Feeds one SMB2 message (without the 4-byte transport header) in either direction.
    fn observe(&mut self, frame: &[u8]) {
        if frame.len() < HEADER_LEN || frame[..4] != SMB2_MAGIC || self.complete {
            return;
        }
        let command = u16::from_le_bytes([frame[12], frame[13]]);
        let status = u32::from_le_bytes([frame[8], frame[9], frame[10], frame[11]]);
        let flags = u32::from_le_bytes([frame[16], frame[17], frame[18], frame[19]]);
        let response = flags & FLAG_SERVER_TO_REDIR != 0;
        match command {
            CMD_NEGOTIATE => {
                self.connection_hash = Self::chain(&self.connection_hash, frame);
                if response && status == 0 && frame.len() >= HEADER_LEN + 6 {
                    self.dialect =
                        u16::from_le_bytes([frame[HEADER_LEN + 4], frame[HEADER_LEN + 5]]);
                }
            }
            CMD_SESSION_SETUP => {
                if response && status == 0 {
                    // The final success response is not part of the hash.
                    self.complete = true;
                    return;
                }
                if response && status != STATUS_MORE_PROCESSING_REQUIRED {
                    // A failed setup: a later attempt starts over.
                    self.session_hash = None;
                    return;
                }
                let prev = self.session_hash.unwrap_or(self.connection_hash);
                self.session_hash = Some(Self::chain(&prev, frame));
                // Security buffer: offset/length at body+12/+14 in a request, +4/+6 in
                // a response (offsets are from the start of the SMB2 header).
                let at = if response {
                    HEADER_LEN + 4
                } else {
                    HEADER_LEN + 12
                };
                if frame.len() < at + 4 {
                    return;
                }
                let off = usize::from(u16::from_le_bytes([frame[at], frame[at + 1]]));
                let len = usize::from(u16::from_le_bytes([frame[at + 2], frame[at + 3]]));
                let Some(buf) = frame.get(off..off.saturating_add(len)) else {
                    return;
                };
                if let Some(msg) = find_ntlm(buf) {
                    match msg.get(8..12) {
                        Some([2, 0, 0, 0]) => self.challenge = msg.to_vec(),
                        Some([3, 0, 0, 0]) => self.authenticate = msg.to_vec(),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

/// The NTLMSSP message inside a (SPNEGO-wrapped or raw) security buffer, from its
/// signature to the end of the buffer.
fn find_ntlm(buf: &[u8]) -> Option<&[u8]> {
    const SIG: &[u8; 8] = b"NTLMSSP\0";
    let pos = buf.windows(SIG.len()).position(|w| w == SIG)?;
    buf.get(pos..)
}

/// Shared handle to the observations of one connection.
#[derive(Clone, Default)]
pub(crate) struct Tap(Arc<Mutex<Observed>>);

impl Tap {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Observed> {
        // A poisoned lock only means a panic elsewhere; the data is still consistent
        // per frame.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A TCP transport for the `smb` crate: one write per frame, `TCP_NODELAY`, a
/// connect timeout, and a [`Tap`] on the session setup.
pub(crate) struct FrameTransport {
    stream: Option<TcpStream>,
    connect_timeout: Duration,
    tap: Tap,
}

impl FrameTransport {
    pub(crate) fn new(connect_timeout: Duration, tap: Tap) -> Self {
        Self {
            stream: None,
            connect_timeout,
            tap,
        }
    }

    /// Connects (bounded by the connect timeout) and sets `TCP_NODELAY`.
    pub(crate) async fn open(&mut self, address: SocketAddr) -> Result<(), TransportError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| TransportError::Timeout(self.connect_timeout))??;
        stream.set_nodelay(true)?;
        self.stream = Some(stream);
        Ok(())
    }
}

struct ReadHalf {
    reader: OwnedReadHalf,
    tap: Tap,
}

struct WriteHalf {
    writer: OwnedWriteHalf,
    tap: Tap,
}

fn map_io(e: io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe => TransportError::NotConnected,
        _ => TransportError::IoError(e),
    }
}

/// One buffer: the direct-TCP header (a zero byte and a 24-bit big-endian length)
/// followed by the message.
fn frame(data: &IoVec) -> Result<Vec<u8>, TransportError> {
    let len = data.total_size();
    if len > MAX_FRAME {
        return Err(TransportError::InvalidMessage);
    }
    let mut buf = Vec::with_capacity(4 + len);
    buf.extend_from_slice(
        &u32::try_from(len)
            .map_err(|_| TransportError::InvalidMessage)?
            .to_be_bytes(),
    );
    for part in data.iter() {
        buf.extend_from_slice(part);
    }
    Ok(buf)
}

/// Reads one direct-TCP frame and returns the message without its header.
async fn read_frame<R: AsyncReadExt + Unpin>(r: &mut R) -> Result<Vec<u8>, TransportError> {
    let mut header = [0u8; 4];
    r.read_exact(&mut header).await.map_err(map_io)?;
    if header[0] != 0 {
        return Err(TransportError::InvalidMessage);
    }
    let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    let mut data = vec![0u8; len];
    r.read_exact(&mut data).await.map_err(map_io)?;
    Ok(data)
}

impl SmbTransportWrite for WriteHalf {
    fn send_raw<'a>(&'a mut self, buf: &'a [u8]) -> BoxFuture<'a, Result<(), TransportError>> {
        async move { self.writer.write_all(buf).await.map_err(map_io) }.boxed()
    }

    fn send<'a>(&'a mut self, data: &'a IoVec) -> BoxFuture<'a, Result<(), TransportError>> {
        async move {
            let buf = frame(data)?;
            self.tap.lock().observe(&buf[4..]);
            self.writer.write_all(&buf).await.map_err(map_io)
        }
        .boxed()
    }
}

impl SmbTransportRead for ReadHalf {
    fn receive_exact<'a>(
        &'a mut self,
        out_buf: &'a mut [u8],
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        async move {
            self.reader.read_exact(out_buf).await.map_err(map_io)?;
            Ok(())
        }
        .boxed()
    }

    fn receive<'a>(&'a mut self) -> BoxFuture<'a, Result<Vec<u8>, TransportError>> {
        async move {
            let data = read_frame(&mut self.reader).await?;
            self.tap.lock().observe(&data);
            Ok(data)
        }
        .boxed()
    }
}

impl SmbTransportWrite for FrameTransport {
    fn send_raw<'a>(&'a mut self, buf: &'a [u8]) -> BoxFuture<'a, Result<(), TransportError>> {
        async move {
            let s = self.stream.as_mut().ok_or(TransportError::NotConnected)?;
            s.write_all(buf).await.map_err(map_io)
        }
        .boxed()
    }

    fn send<'a>(&'a mut self, data: &'a IoVec) -> BoxFuture<'a, Result<(), TransportError>> {
        async move {
            let buf = frame(data)?;
            self.tap.lock().observe(&buf[4..]);
            let s = self.stream.as_mut().ok_or(TransportError::NotConnected)?;
            s.write_all(&buf).await.map_err(map_io)
        }
        .boxed()
    }
}

impl SmbTransportRead for FrameTransport {
    fn receive_exact<'a>(
        &'a mut self,
        out_buf: &'a mut [u8],
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        async move {
            let s = self.stream.as_mut().ok_or(TransportError::NotConnected)?;
            s.read_exact(out_buf).await.map_err(map_io)?;
            Ok(())
        }
        .boxed()
    }

    fn receive<'a>(&'a mut self) -> BoxFuture<'a, Result<Vec<u8>, TransportError>> {
        async move {
            let s = self.stream.as_mut().ok_or(TransportError::NotConnected)?;
            let data = read_frame(s).await?;
            self.tap.lock().observe(&data);
            Ok(data)
        }
        .boxed()
    }
}

impl SmbTransport for FrameTransport {
    fn connect<'a>(
        &'a mut self,
        _server_name: &'a str,
        address: SocketAddr,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        self.open(address).boxed()
    }

    fn default_port(&self) -> u16 {
        445
    }

    fn split(
        mut self: Box<Self>,
    ) -> Result<(Box<dyn SmbTransportRead>, Box<dyn SmbTransportWrite>), TransportError> {
        let stream = self.stream.take().ok_or(TransportError::NotConnected)?;
        let (reader, writer) = stream.into_split();
        Ok((
            Box::new(ReadHalf {
                reader,
                tap: self.tap.clone(),
            }),
            Box::new(WriteHalf {
                writer,
                tap: self.tap.clone(),
            }),
        ))
    }

    fn remote_address(&self) -> Result<SocketAddr, TransportError> {
        Ok(self
            .stream
            .as_ref()
            .ok_or(TransportError::NotConnected)?
            .peer_addr()?)
    }
}

/// Feeds `data` to a fresh observer (fuzzing).
pub(crate) fn observe_for_fuzzing(data: &[u8]) {
    let mut o = Observed::default();
    o.observe(data);
    let _ = o.preauth_hash();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smb2(command: u16, status: u32, response: bool, body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; HEADER_LEN];
        f[..4].copy_from_slice(&SMB2_MAGIC);
        f[8..12].copy_from_slice(&status.to_le_bytes());
        f[12..14].copy_from_slice(&command.to_le_bytes());
        if response {
            f[16] = 1;
        }
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn hash_covers_all_but_the_final_success_response() {
        let mut o = Observed::default();
        let neg_req = smb2(0, 0, false, &[0; 8]);
        let neg_resp = smb2(0, 0, true, &[0x41, 0, 0, 0, 0x11, 0x03, 0, 0]);
        let ss_req1 = smb2(1, 0, false, &[0; 24]);
        let ss_resp1 = smb2(1, STATUS_MORE_PROCESSING_REQUIRED, true, &[0; 8]);
        let ss_req2 = smb2(1, 0, false, &[1; 24]);
        let ss_ok = smb2(1, 0, true, &[2; 8]);
        for f in [&neg_req, &neg_resp, &ss_req1, &ss_resp1, &ss_req2, &ss_ok] {
            o.observe(f);
        }
        assert_eq!(o.dialect, 0x0311);
        let mut h = [0u8; 64];
        for f in [&neg_req, &neg_resp, &ss_req1, &ss_resp1, &ss_req2] {
            h = Observed::chain(&h, f);
        }
        assert_eq!(o.preauth_hash(), Some(&h));
        // After completion nothing changes the hash.
        o.observe(&smb2(1, 0, false, &[9; 24]));
        assert_eq!(o.preauth_hash(), Some(&h));
    }

    #[test]
    fn failed_setup_resets_the_session_chain() {
        let mut o = Observed::default();
        o.observe(&smb2(1, 0, false, &[0; 24]));
        o.observe(&smb2(1, 0xC000_006D, true, &[0; 8]));
        assert!(o.session_hash.is_none());
        assert!(o.preauth_hash().is_none());
    }

    #[test]
    fn extracts_ntlm_messages_from_security_buffers() {
        let mut o = Observed::default();
        let mut ntlm = b"NTLMSSP\0".to_vec();
        ntlm.extend_from_slice(&[2, 0, 0, 0, 7, 7]);
        let mut body = vec![9u8, 0, 0, 0];
        let off = u16::try_from(HEADER_LEN + 8).unwrap();
        body.extend_from_slice(&off.to_le_bytes());
        body.extend_from_slice(&u16::try_from(ntlm.len() + 3).unwrap().to_le_bytes());
        body.extend_from_slice(&[0xa1, 0x81, 0x10]); // some SPNEGO bytes before it
        body.extend_from_slice(&ntlm);
        o.observe(&smb2(1, STATUS_MORE_PROCESSING_REQUIRED, true, &body));
        assert_eq!(o.challenge, ntlm);
    }

    #[test]
    fn short_or_foreign_frames_are_ignored() {
        let mut o = Observed::default();
        o.observe(&[0xFD, b'S', b'M', b'B']);
        o.observe(&[0u8; 100]);
        assert_eq!(o.connection_hash, [0u8; 64]);
    }

    #[test]
    fn frame_is_one_buffer_with_a_24_bit_length() {
        let v = IoVec::from(vec![vec![1u8, 2], vec![3u8]]);
        assert_eq!(frame(&v).unwrap(), vec![0, 0, 0, 3, 1, 2, 3]);
    }
}
