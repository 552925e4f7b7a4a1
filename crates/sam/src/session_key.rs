//! The SMB session's application key, which keys SAMR's password buffers.
//!
//! SAMR encrypts the new password of an admin reset (SamrSetInformationUser2 levels
//! 23-26 and 31/32) with the session key the *server application* sees for the named
//! pipe. On SMB 3.x that is the session's application key (MS-SMB2 3.2.5.3.1,
//! 3.3.4.5): `SMB3KDF(Session.SessionKey, "SMBAppKey\0", PreauthIntegrityHashValue)`
//! for SMB 3.1.1 and `SMB3KDF(Session.SessionKey, "SMB2APP\0", "SmbRpc\0")` for
//! 3.0/3.0.2, where SMB3KDF is SP800-108 counter mode with HMAC-SHA256 and L = 128.
//!
//! The `smb` crate (0.12) computes this key but does not expose it. This module is the
//! one place that works around that, without patching the crate: the transport
//! ([`crate::transport`]) observes the plaintext NEGOTIATE and SESSION_SETUP frames,
//! and from the NTLM CHALLENGE and AUTHENTICATE messages plus the password we logged
//! on with we recompute the NTLMv2 session key (MS-NLMP 3.3.2, 3.4.5.1: NTOWFv2,
//! SessionBaseKey = KeyExchangeKey, and the RC4-unwrapped ExportedSessionKey when
//! NTLMSSP_NEGOTIATE_KEY_EXCH was negotiated), then the application key.
//! The recomputed NTProofStr is compared with the one on the wire, so a key derived
//! from the wrong password is caught here rather than as WRONG_PASSWORD later.
//!
//! **Switching to an upstream accessor:** once the `smb` crate exposes the application
//! key (e.g. `Session::application_key()`), `SmbSession::application_key` in
//! `client.rs` becomes that one call and this module, together with the observation
//! in the transport, can be deleted. Nothing else depends on how the key was obtained.
//!
//! Limits: NTLM only (Kerberos session keys are not observable this way); local
//! accounts always use NTLM.

use hmac::{Hmac, KeyInit, Mac};
use md4::{Digest as _, Md4};
use md5::Md5;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;

type HmacMd5 = Hmac<Md5>;
type HmacSha256 = Hmac<Sha256>;

const NTLMSSP_NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const NTLMSSP_NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;

/// A 16-byte session key (zeroized on drop, never printed).
#[derive(Clone)]
pub(crate) struct SessionKey(Zeroizing<[u8; 16]>);

impl SessionKey {
    /// Wraps key bytes.
    pub(crate) fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key bytes (for the SAMR password buffers).
    pub(crate) fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

fn proto(msg: &str) -> Error {
    Error::Protocol(format!("NTLM: {msg}"))
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, Error> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| proto("message too short"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, Error> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| proto("message too short"))
}

/// The payload a (Len, MaxLen, Offset) field descriptor at `at` points to.
fn field(b: &[u8], at: usize) -> Result<&[u8], Error> {
    let len = usize::from(u16_at(b, at)?);
    let off = usize::try_from(u32_at(b, at + 4)?).map_err(|_| proto("bad offset"))?;
    b.get(off..off.checked_add(len).ok_or_else(|| proto("bad field"))?)
        .ok_or_else(|| proto("field outside the message"))
}

fn check_type(b: &[u8], ty: u32) -> Result<(), Error> {
    if b.get(..8) != Some(b"NTLMSSP\0") || u32_at(b, 8)? != ty {
        return Err(proto("unexpected message type"));
    }
    Ok(())
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn from_utf16le(b: &[u8]) -> Result<String, Error> {
    if !b.len().is_multiple_of(2) {
        return Err(proto("odd UTF-16 length"));
    }
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| proto("invalid UTF-16"))
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length.
    let mut mac = <HmacMd5 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// RC4 (MS-NLMP uses it to wrap the exported session key). Small enough to keep here.
pub(crate) fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut j: u8 = 0;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, usize::from(j));
    }
    let (mut i, mut j) = (0u8, 0u8);
    let out = data
        .iter()
        .map(|b| {
            i = i.wrapping_add(1);
            j = j.wrapping_add(s[usize::from(i)]);
            s.swap(usize::from(i), usize::from(j));
            b ^ s[usize::from(s[usize::from(i)].wrapping_add(s[usize::from(j)]))]
        })
        .collect();
    s.zeroize();
    out
}

/// NTOWFv2 (MS-NLMP 3.3.2): HMAC_MD5(MD4(UNICODE(Passwd)), UNICODE(Uppercase(User) || UserDom)).
fn ntowf_v2(password: &str, user: &str, domain: &str) -> Zeroizing<[u8; 16]> {
    let mut pw = Zeroizing::new(utf16le(password));
    let nt_hash = Zeroizing::new(<[u8; 16]>::from(Md4::digest(&*pw)));
    pw.zeroize();
    let mut ud = utf16le(&user.to_uppercase());
    ud.extend_from_slice(&utf16le(domain));
    Zeroizing::new(hmac_md5(&*nt_hash, &[&ud]))
}

/// The ExportedSessionKey of an NTLMv2 logon, recomputed from the two messages and
/// the password. Fails if the password does not produce the NTProofStr on the wire.
pub(crate) fn ntlmv2_session_key(
    challenge: &[u8],
    authenticate: &[u8],
    password: &str,
) -> Result<SessionKey, Error> {
    check_type(challenge, 2)?;
    check_type(authenticate, 3)?;
    let server_challenge = challenge
        .get(24..32)
        .ok_or_else(|| proto("CHALLENGE too short"))?;
    let nt_response = field(authenticate, 20)?;
    if nt_response.len() < 16 + 28 {
        return Err(proto("not an NTLMv2 response (NTLMv1 is not supported)"));
    }
    let flags = u32_at(authenticate, 60)?;
    if flags & NTLMSSP_NEGOTIATE_UNICODE == 0 {
        return Err(proto("OEM (non-Unicode) NTLM is not supported"));
    }
    let domain = from_utf16le(field(authenticate, 28)?)?;
    let user = from_utf16le(field(authenticate, 36)?)?;
    let key = ntowf_v2(password, &user, &domain);
    let (proof, temp) = nt_response.split_at(16);
    let expected = hmac_md5(&*key, &[server_challenge, temp]);
    if expected != proof {
        return Err(proto(
            "the observed logon does not match the password: cannot derive the session key",
        ));
    }
    let base = Zeroizing::new(hmac_md5(&*key, &[proof]));
    // NTLMv2: KeyExchangeKey = SessionBaseKey.
    if flags & NTLMSSP_NEGOTIATE_KEY_EXCH != 0 {
        let wrapped = field(authenticate, 52)?;
        if wrapped.len() != 16 {
            return Err(proto("EncryptedRandomSessionKey is not 16 bytes"));
        }
        let mut plain = Zeroizing::new(rc4(&*base, wrapped));
        let mut k = [0u8; 16];
        k.copy_from_slice(&plain);
        plain.zeroize();
        Ok(SessionKey::from_bytes(k))
    } else {
        Ok(SessionKey::from_bytes(*base))
    }
}

/// SMB3KDF: SP800-108 counter mode, PRF HMAC-SHA256, r = 32, L = 128 (MS-SMB2 3.1.4.2).
fn smb3_kdf(key: &[u8; 16], label: &[u8], context: &[u8]) -> [u8; 16] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(&1u32.to_be_bytes());
    mac.update(label);
    mac.update(&[0]);
    mac.update(context);
    mac.update(&128u32.to_be_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// The application key of an SMB session (MS-SMB2 3.2.5.3.1).
pub(crate) fn application_key(
    dialect: u16,
    session_key: &SessionKey,
    preauth_hash: Option<&[u8; 64]>,
) -> Result<SessionKey, Error> {
    match dialect {
        0x0311 => {
            let hash = preauth_hash.ok_or_else(|| proto("no preauth integrity hash observed"))?;
            Ok(SessionKey::from_bytes(smb3_kdf(
                session_key.as_bytes(),
                b"SMBAppKey\0",
                hash,
            )))
        }
        0x0300 | 0x0302 => Ok(SessionKey::from_bytes(smb3_kdf(
            session_key.as_bytes(),
            b"SMB2APP\0",
            b"SmbRpc\0",
        ))),
        // SMB 2.x: the session key itself.
        0x0202 | 0x0210 => Ok(session_key.clone()),
        _ => Err(proto("unknown SMB dialect")),
    }
}

/// The NetBIOS computer and domain names from a CHALLENGE's target info
/// (MsvAvNbComputerName, MsvAvNbDomainName).
pub(crate) fn challenge_names(challenge: &[u8]) -> Result<(Option<String>, Option<String>), Error> {
    check_type(challenge, 2)?;
    let info = field(challenge, 40)?;
    let (mut computer, mut domain) = (None, None);
    let mut at = 0;
    while at + 4 <= info.len() {
        let id = u16_at(info, at)?;
        let len = usize::from(u16_at(info, at + 2)?);
        let value = info
            .get(at + 4..at + 4 + len)
            .ok_or_else(|| proto("AV pair outside target info"))?;
        match id {
            0 => break,
            1 => computer = Some(from_utf16le(value)?),
            2 => domain = Some(from_utf16le(value)?),
            _ => {}
        }
        at += 4 + len;
    }
    Ok((computer, domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    // Vectors from MS-NLMP section 4.2.4 ("NTLMv2 Authentication"): User "User",
    // UserDom "Domain", Passwd "Password", ServerChallenge 0123456789abcdef,
    // ClientChallenge aa*8, Time 0, RandomSessionKey 55*16, target info with
    // MsvAvNbDomainName "Domain" and MsvAvNbComputerName "Server".
    const NTOWFV2: &str = "0c868a403bfd7a93a3001ef22ef02e3f";
    const SESSION_BASE_KEY: &str = "8de40ccadbc14a82f15cb0ad0de95ca3";
    const NT_PROOF_STR: &str = "68cd0ab851e51c96aabc927bebef6a1c";
    const ENCRYPTED_SESSION_KEY: &str = "c5dad2544fc9799094ce1ce90bc9d03e";

    fn temp() -> Vec<u8> {
        let mut t = h("0101 0000 00000000 0000000000000000 aaaaaaaaaaaaaaaa 00000000");
        t.extend_from_slice(&h("0200 0c00"));
        t.extend_from_slice(&utf16le("Domain"));
        t.extend_from_slice(&h("0100 0c00"));
        t.extend_from_slice(&utf16le("Server"));
        t.extend_from_slice(&h("0000 0000 00000000"));
        t
    }

    fn challenge_msg(flags: u32) -> Vec<u8> {
        let mut m = b"NTLMSSP\0".to_vec();
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(&[0; 8]); // target name (empty)
        m.extend_from_slice(&flags.to_le_bytes());
        m.extend_from_slice(&h("0123456789abcdef"));
        m.extend_from_slice(&[0; 8]);
        let mut info = h("0200 0c00");
        info.extend_from_slice(&utf16le("Domain"));
        info.extend_from_slice(&h("0100 0c00"));
        info.extend_from_slice(&utf16le("Server"));
        info.extend_from_slice(&h("0000 0000"));
        let off = 48u32;
        m.extend_from_slice(&u16::try_from(info.len()).unwrap().to_le_bytes());
        m.extend_from_slice(&u16::try_from(info.len()).unwrap().to_le_bytes());
        m.extend_from_slice(&off.to_le_bytes());
        m.extend_from_slice(&info);
        m
    }

    fn authenticate_msg(flags: u32, nt_response: &[u8], wrapped: &[u8]) -> Vec<u8> {
        let payload: [&[u8]; 6] = [
            &[0u8; 24],
            nt_response,
            &utf16le("Domain"),
            &utf16le("User"),
            &utf16le("COMPUTER"),
            wrapped,
        ];
        let mut m = b"NTLMSSP\0".to_vec();
        m.extend_from_slice(&3u32.to_le_bytes());
        let mut off = 64u32;
        for p in payload {
            let len = u16::try_from(p.len()).unwrap();
            m.extend_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&off.to_le_bytes());
            off += u32::try_from(p.len()).unwrap();
        }
        m.extend_from_slice(&flags.to_le_bytes());
        for p in payload {
            m.extend_from_slice(p);
        }
        m
    }

    #[test]
    fn ntowfv2_matches_ms_nlmp_4_2_4() {
        assert_eq!(ntowf_v2("Password", "User", "Domain").to_vec(), h(NTOWFV2));
    }

    #[test]
    fn nt_proof_str_matches_ms_nlmp_4_2_4() {
        let key = ntowf_v2("Password", "User", "Domain");
        assert_eq!(
            hmac_md5(&*key, &[&h("0123456789abcdef"), &temp()]).to_vec(),
            h(NT_PROOF_STR)
        );
    }

    #[test]
    fn session_base_key_and_key_exchange_match_ms_nlmp_4_2_4() {
        let key = ntowf_v2("Password", "User", "Domain");
        let base = hmac_md5(&*key, &[&h(NT_PROOF_STR)]);
        assert_eq!(base.to_vec(), h(SESSION_BASE_KEY));
        assert_eq!(rc4(&base, &[0x55; 16]), h(ENCRYPTED_SESSION_KEY));
        assert_eq!(rc4(&base, &h(ENCRYPTED_SESSION_KEY)), vec![0x55; 16]);
    }

    #[test]
    fn recomputes_exported_key_from_messages() {
        let flags = 0xe288_8233 | NTLMSSP_NEGOTIATE_KEY_EXCH;
        let mut nt = h(NT_PROOF_STR);
        nt.extend_from_slice(&temp());
        let chal = challenge_msg(flags);
        let auth = authenticate_msg(flags, &nt, &h(ENCRYPTED_SESSION_KEY));
        let k = ntlmv2_session_key(&chal, &auth, "Password").unwrap();
        assert_eq!(k.as_bytes(), &[0x55; 16]);
        // Without KEY_EXCH the exported key is the SessionBaseKey.
        let flags = flags & !NTLMSSP_NEGOTIATE_KEY_EXCH;
        let auth = authenticate_msg(flags, &nt, &[]);
        let k = ntlmv2_session_key(&chal, &auth, "Password").unwrap();
        assert_eq!(k.as_bytes().to_vec(), h(SESSION_BASE_KEY));
        // The wrong password is caught, and the error says nothing secret.
        let e = ntlmv2_session_key(&chal, &auth, "Passw0rd").unwrap_err();
        assert!(!e.to_string().contains("Passw0rd"));
    }

    #[test]
    fn challenge_names_are_read_from_target_info() {
        let (c, d) = challenge_names(&challenge_msg(1)).unwrap();
        assert_eq!(c.as_deref(), Some("Server"));
        assert_eq!(d.as_deref(), Some("Domain"));
    }

    #[test]
    fn garbage_never_panics() {
        for n in 0..80 {
            let b = vec![0xffu8; n];
            let _ = ntlmv2_session_key(&b, &b, "x");
            let _ = challenge_names(&b);
        }
    }

    #[test]
    fn kdf_matches_hmac_sha256_counter_mode() {
        // SP800-108 with one block: HMAC(K, 00000001 || label || 00 || context || 00000080).
        let key = [0x11u8; 16];
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&key).unwrap();
        mac.update(&h("00000001"));
        mac.update(b"SMBAppKey\0\0");
        mac.update(&[0x22; 64]);
        mac.update(&h("00000080"));
        let want = mac.finalize().into_bytes();
        let got = application_key(0x0311, &SessionKey::from_bytes(key), Some(&[0x22; 64])).unwrap();
        assert_eq!(got.as_bytes()[..], want[..16]);
        assert!(application_key(0x0311, &SessionKey::from_bytes(key), None).is_err());
        assert_eq!(format!("{got:?}"), "SessionKey(..)");
    }
}
