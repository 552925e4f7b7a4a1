//! [`SamrApi`] over a real [`SmbSession`]: each method encodes its request, calls the
//! opnum over the pipe and decodes the response.

use secrecy::SecretString;

use crate::api::{ChangeOp, DomainSid, Handle, HostPasswordPolicy, ResetLevel, SamrApi, UserFacts};
use crate::client::{HostNames, SmbSession};
use crate::error::{Call, Error, NdrError};
use crate::status::NtStatus;

fn u32le(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn align(v: &mut Vec<u8>, n: usize) {
    while v.len() % n != 0 {
        v.push(0);
    }
}

fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// An RPC_UNICODE_STRING at top level, its deferred buffer right after it.
fn unicode_string(v: &mut Vec<u8>, s: &str, referent: u32) -> Result<(), Error> {
    let units = utf16(s);
    let bytes =
        u16::try_from(units.len() * 2).map_err(|_| Error::InvalidInput("name too long".into()))?;
    v.extend_from_slice(&bytes.to_le_bytes());
    v.extend_from_slice(&bytes.to_le_bytes());
    u32le(v, referent);
    let n = u32::from(bytes / 2);
    u32le(v, n);
    u32le(v, 0);
    u32le(v, n);
    for u in units {
        v.extend_from_slice(&u.to_le_bytes());
    }
    align(v, 4);
    Ok(())
}

fn trunc(call: Call, offset: usize) -> Error {
    Error::ndr(call, NdrError::Truncated { offset })
}

/// The trailing NTSTATUS of a response; an error status becomes [`Error::Status`].
fn status(call: Call, r: &[u8]) -> Result<(), Error> {
    let at = r.len().checked_sub(4).ok_or_else(|| trunc(call, 0))?;
    let code = u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
    NtStatus::new(code).check(call)
}

fn handle(call: Call, r: &[u8], at: usize) -> Result<Handle, Error> {
    let b = r.get(at..at + 20).ok_or_else(|| trunc(call, at))?;
    let mut h = [0u8; 20];
    h.copy_from_slice(b);
    Ok(Handle(h))
}

fn u32_at(call: Call, r: &[u8], at: usize) -> Result<u32, Error> {
    let b = r.get(at..at + 4).ok_or_else(|| trunc(call, at))?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl SamrApi for SmbSession {
    async fn connect(&mut self) -> Result<Handle, Error> {
        let call = Call::Samr(64);
        let mut q = Vec::new();
        u32le(&mut q, 0); // ServerName: NULL
        u32le(&mut q, crate::api::access::SERVER);
        u32le(&mut q, 1); // InVersion
        u32le(&mut q, 1); // union switch
        u32le(&mut q, 3); // Revision
        u32le(&mut q, 0); // SupportedFeatures
        let r = self.call(64, &q).await?;
        status(call, &r)?;
        handle(call, &r, 16)
    }

    async fn lookup_domain(&mut self, server: &Handle, name: &str) -> Result<DomainSid, Error> {
        let call = Call::Samr(5);
        let mut q = server.0.to_vec();
        unicode_string(&mut q, name, 0x0002_0000)?;
        let r = self.call(5, &q).await?;
        status(call, &r)?;
        if u32_at(call, &r, 0)? == 0 {
            return Err(Error::ndr(call, NdrError::NullPointer { offset: 0 }));
        }
        let n = usize::try_from(u32_at(call, &r, 4)?).map_err(|_| trunc(call, 4))?;
        let end = 8 + 8 + 4 * n;
        if n > 15 || r.len() < end + 4 {
            return Err(Error::ndr(call, NdrError::BadCount { offset: 4 }));
        }
        Ok(DomainSid(r[4..end].to_vec()))
    }

    async fn open_domain(
        &mut self,
        server: &Handle,
        sid: &DomainSid,
        access: u32,
    ) -> Result<Handle, Error> {
        let call = Call::Samr(7);
        let mut q = server.0.to_vec();
        u32le(&mut q, access);
        q.extend_from_slice(&sid.0);
        let r = self.call(7, &q).await?;
        status(call, &r)?;
        handle(call, &r, 0)
    }

    async fn lookup_name(&mut self, domain: &Handle, name: &str) -> Result<u32, Error> {
        let call = Call::Samr(17);
        let mut q = domain.0.to_vec();
        u32le(&mut q, 1); // Count
        u32le(&mut q, 1000); // max count
        u32le(&mut q, 0); // offset
        u32le(&mut q, 1); // actual count
        unicode_string(&mut q, name, 0x0002_0000)?;
        let r = self.call(17, &q).await?;
        status(call, &r)?;
        // RelativeIds: Count, pointer, max count, values...
        if u32_at(call, &r, 0)? != 1 || u32_at(call, &r, 8)? != 1 {
            return Err(Error::ndr(call, NdrError::BadCount { offset: 0 }));
        }
        u32_at(call, &r, 12)
    }

    async fn open_user(&mut self, domain: &Handle, rid: u32, access: u32) -> Result<Handle, Error> {
        let call = Call::Samr(34);
        let mut q = domain.0.to_vec();
        u32le(&mut q, access);
        u32le(&mut q, rid);
        let r = self.call(34, &q).await?;
        status(call, &r)?;
        handle(call, &r, 0)
    }

    async fn query_user(&mut self, user: &Handle) -> Result<UserFacts, Error> {
        // SamrQueryInformationUser level 16 (UserControlInformation).
        let call = Call::Samr(36);
        let mut q = user.0.to_vec();
        q.extend_from_slice(&16u16.to_le_bytes());
        let r = self.call(36, &q).await?;
        status(call, &r)?;
        // Pointer, switch (u16) + pad, UserAccountControl.
        let uac = u32_at(call, &r, 8)?;
        Ok(UserFacts {
            disabled: uac & 0x1 != 0,
            locked: uac & 0x400 != 0,
            password_last_set: 0,
        })
    }

    async fn password_policy(&mut self, domain: &Handle) -> Result<HostPasswordPolicy, Error> {
        // SamrQueryInformationDomain level 1 (DomainPasswordInformation).
        let call = Call::Samr(8);
        let mut q = domain.0.to_vec();
        q.extend_from_slice(&1u16.to_le_bytes());
        let r = self.call(8, &q).await?;
        status(call, &r)?;
        // Pointer (4), switch u16 + pad to 8, MinLen u16, History u16, Properties u32, ages.
        let b = r.get(8..16).ok_or_else(|| trunc(call, 8))?;
        Ok(HostPasswordPolicy {
            min_length: u16::from_le_bytes([b[0], b[1]]),
            history_length: u16::from_le_bytes([b[2], b[3]]),
            complexity: u32::from_le_bytes([b[4], b[5], b[6], b[7]]) & 1 != 0,
        })
    }

    async fn set_password(
        &mut self,
        _user: &Handle,
        _level: ResetLevel,
        _new: &SecretString,
    ) -> Result<(), Error> {
        Err(Error::Protocol(
            "password buffers are not available yet".into(),
        ))
    }

    async fn change_password(
        &mut self,
        _op: ChangeOp,
        _server_name: &str,
        _user: &str,
        _old: &SecretString,
        _new: &SecretString,
    ) -> Result<(), Error> {
        Err(Error::Protocol(
            "password buffers are not available yet".into(),
        ))
    }

    async fn close(&mut self, h: Handle) -> Result<(), Error> {
        let call = Call::Samr(1);
        let r = self.call(1, &h.0).await?;
        status(call, &r)
    }

    fn host_names(&self) -> &HostNames {
        SmbSession::host_names(self)
    }
}

/// Runs every SAMR response decoder on `data` (fuzzing).
pub(crate) fn decode_every_response(data: &[u8]) {
    let _ = status(Call::Samr(1), data);
    let _ = handle(Call::Samr(64), data, 16);
}
