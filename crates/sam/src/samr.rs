//! SAMR ([MS-SAMR]) request stubs and response decoders for the calls this crate
//! uses. Each `*_request` function returns the NDR stub of a request; each
//! `*_response` function decodes a response stub, checks its trailing NTSTATUS and
//! returns the out-parameters or an [`Error`]. Nothing here does I/O.
//!
//! Opnums and layouts follow [MS-SAMR] 3.1.5 and 2.2 (cross-checked against Samba's
//! `librpc/idl/samr.idl`).

use crate::crypto::{
    EncryptedNtOwf, EncryptedPasswordAes, EncryptedUserPassword, EncryptedUserPasswordNew,
};
use crate::error::{Call, Error, NdrError};
use crate::ndr::{Decoder, Encoder, Handle, Sid};
use crate::status::NtStatus;

/// SAMR operation numbers ([MS-SAMR] 3.1.5).
pub(crate) mod opnum {
    pub(crate) const CLOSE_HANDLE: u16 = 1;
    pub(crate) const LOOKUP_DOMAIN_IN_SAM_SERVER: u16 = 5;
    pub(crate) const ENUMERATE_DOMAINS_IN_SAM_SERVER: u16 = 6;
    pub(crate) const OPEN_DOMAIN: u16 = 7;
    pub(crate) const QUERY_INFORMATION_DOMAIN: u16 = 8;
    pub(crate) const LOOKUP_NAMES_IN_DOMAIN: u16 = 17;
    pub(crate) const OPEN_USER: u16 = 34;
    pub(crate) const GET_USER_DOMAIN_PASSWORD_INFORMATION: u16 = 44;
    pub(crate) const QUERY_INFORMATION_USER2: u16 = 47;
    pub(crate) const UNICODE_CHANGE_PASSWORD_USER2: u16 = 55;
    pub(crate) const SET_INFORMATION_USER2: u16 = 58;
    pub(crate) const CONNECT5: u16 = 64;
    pub(crate) const UNICODE_CHANGE_PASSWORD_USER4: u16 = 73;
}

/// Access masks ([MS-SAMR] 2.2.1.3, 2.2.1.4, 2.2.1.7).
pub(crate) mod access {
    /// Server object: connect.
    pub(crate) const SAM_SERVER_CONNECT: u32 = 0x0000_0001;
    /// Server object: enumerate domains.
    pub(crate) const SAM_SERVER_ENUMERATE_DOMAINS: u32 = 0x0000_0010;
    /// Server object: look up a domain by name.
    pub(crate) const SAM_SERVER_LOOKUP_DOMAIN: u32 = 0x0000_0020;
    /// Domain object: read the password policy (QueryInformationDomain level 1).
    pub(crate) const DOMAIN_READ_PASSWORD_PARAMETERS: u32 = 0x0000_0001;
    /// Domain object: read other parameters (e.g. the server role, level 7).
    pub(crate) const DOMAIN_READ_OTHER_PARAMETERS: u32 = 0x0000_0004;
    /// Domain object: look up names and open accounts.
    pub(crate) const DOMAIN_LOOKUP: u32 = 0x0000_0200;
    /// User object: read general fields (name, ...).
    pub(crate) const USER_READ_GENERAL: u32 = 0x0000_0001;
    /// User object: read preferences.
    pub(crate) const USER_READ_PREFERENCES: u32 = 0x0000_0002;
    /// User object: read logon fields (password last set, ...).
    pub(crate) const USER_READ_LOGON: u32 = 0x0000_0008;
    /// User object: read account fields (account control flags, ...); also needed by
    /// GetUserDomainPasswordInformation.
    pub(crate) const USER_READ_ACCOUNT: u32 = 0x0000_0010;
    /// User object: change the password knowing the old one.
    pub(crate) const USER_CHANGE_PASSWORD: u32 = 0x0000_0040;
    /// User object: reset the password (SetInformationUser2 password levels).
    pub(crate) const USER_FORCE_PASSWORD_CHANGE: u32 = 0x0000_0080;
}

/// `UserAccountControl` bits ([MS-SAMR] 2.2.1.12).
pub(crate) mod uac {
    pub(crate) const ACCOUNT_DISABLED: u32 = 0x0000_0001;
    pub(crate) const NORMAL_ACCOUNT: u32 = 0x0000_0010;
    pub(crate) const DONT_EXPIRE_PASSWORD: u32 = 0x0000_0200;
    pub(crate) const ACCOUNT_AUTO_LOCKED: u32 = 0x0000_0400;
    pub(crate) const PASSWORD_EXPIRED: u32 = 0x0002_0000;
}

/// `WhichFields` bits of SAMPR_USER_ALL_INFORMATION ([MS-SAMR] 2.2.1.8).
pub(crate) mod which_fields {
    pub(crate) const NT_PASSWORD_PRESENT: u32 = 0x0100_0000;
    pub(crate) const PASSWORD_EXPIRED: u32 = 0x0800_0000;
}

/// `DOMAIN_PASSWORD_INFORMATION.PasswordProperties` bits ([MS-SAMR] 2.2.3.5).
pub(crate) mod password_properties {
    pub(crate) const DOMAIN_PASSWORD_COMPLEX: u32 = 0x0000_0001;
}

/// User information classes used ([MS-SAMR] 2.2.6.28).
pub(crate) mod user_level {
    pub(crate) const CONTROL: u16 = 16;
    pub(crate) const ALL: u16 = 21;
    pub(crate) const INTERNAL4: u16 = 23;
    pub(crate) const INTERNAL4_NEW: u16 = 25;
    pub(crate) const INTERNAL7: u16 = 31;
}

/// Domain information classes used ([MS-SAMR] 2.2.3.16).
pub(crate) mod domain_level {
    pub(crate) const PASSWORD: u16 = 1;
    pub(crate) const SERVER_ROLE: u16 = 7;
}

/// `SID_NAME_USE` value of a user account ([MS-SAMR] 2.2.2.3).
pub(crate) const SID_TYPE_USER: u32 = 1;

/// Decodes `stub` with `f`, then the trailing NTSTATUS; a non-success status wins
/// over any out-parameters.
fn decode<T>(
    op: u16,
    stub: &[u8],
    f: impl FnOnce(&mut Decoder<'_>) -> Result<T, NdrError>,
) -> Result<T, Error> {
    let call = Call::Samr(op);
    let mut d = Decoder::new(stub);
    let parsed = f(&mut d);
    let status = parsed
        .as_ref()
        .map_err(|e| *e)
        .and_then(|_| d.status())
        .and_then(|s| d.finish().map(|()| s));
    match (parsed, status) {
        (Ok(v), Ok(s)) => s.check(call).map(|()| v),
        (Err(e), _) | (Ok(_), Err(e)) => {
            // A short error answer (just a status, or zeroed out-parameters) is
            // still an answer: report its status if the last 4 bytes carry one.
            match trailing_error_status(stub) {
                Some(s) => Err(Error::Status { call, status: s }),
                None => Err(Error::ndr(call, e)),
            }
        }
    }
}

/// The error NTSTATUS in the last four bytes of a stub that did not decode as a
/// success answer, if they hold one.
fn trailing_error_status(stub: &[u8]) -> Option<NtStatus> {
    let n = stub.len();
    if n < 4 || !n.is_multiple_of(4) {
        return None;
    }
    let s = NtStatus::new(u32::from_le_bytes([
        stub[n - 4],
        stub[n - 3],
        stub[n - 2],
        stub[n - 1],
    ]));
    s.is_error().then_some(s)
}

fn status_only(op: u16, stub: &[u8]) -> Result<(), Error> {
    decode(op, stub, |_| Ok(()))
}

// ---------------------------------------------------------------- SamrCloseHandle (1)

/// SamrCloseHandle: `[in, out] SAMPR_HANDLE* SamHandle`.
pub(crate) fn close_handle_request(handle: &Handle) -> Vec<u8> {
    let mut e = Encoder::new();
    e.handle(handle);
    e.into_bytes()
}

/// The zeroed handle, then the status.
pub(crate) fn close_handle_response(stub: &[u8]) -> Result<(), Error> {
    decode(opnum::CLOSE_HANDLE, stub, |d| d.handle().map(|_| ()))
}

// ---------------------------------------------------------------- SamrConnect5 (64)

/// SamrConnect5 with `InVersion` 1 and `SAMPR_REVISION_INFO_V1 { Revision: 3,
/// SupportedFeatures: 0 }`. `server_name` is a `[unique, string] wchar_t*` the
/// server ignores; it is sent non-NULL.
pub(crate) fn connect5_request(server_name: &str, desired_access: u32) -> Vec<u8> {
    let mut e = Encoder::new();
    e.referent();
    e.wstr_body(server_name);
    e.u32(desired_access);
    e.u32(1); // InVersion
    e.u32(1); // union discriminant
    e.u32(3); // Revision
    e.u32(0); // SupportedFeatures
    e.into_bytes()
}

/// `OutVersion`, `OutRevisionInfo` (discriminant + V1), the server handle, status.
pub(crate) fn connect5_response(stub: &[u8]) -> Result<Handle, Error> {
    decode(opnum::CONNECT5, stub, |d| {
        let version = d.u32()?;
        let tag = d.u32()?;
        if version != 1 || tag != 1 {
            return Err(NdrError::UnexpectedSwitch { value: tag });
        }
        d.u32()?; // Revision
        d.u32()?; // SupportedFeatures
        d.handle()
    })
}

// ---------------------------------------------- SamrEnumerateDomainsInSamServer (6)

/// A page of SamrEnumerateDomainsInSamServer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DomainPage {
    /// Pass this as the next call's enumeration context.
    pub(crate) resume: u32,
    /// Domain names (e.g. the host's name and `Builtin`).
    pub(crate) names: Vec<String>,
    /// The server has more entries (STATUS_MORE_ENTRIES).
    pub(crate) more: bool,
}

/// SamrEnumerateDomainsInSamServer: server handle, enumeration context, preferred
/// maximum length.
pub(crate) fn enumerate_domains_request(
    server: &Handle,
    context: u32,
    preferred_max_len: u32,
) -> Vec<u8> {
    let mut e = Encoder::new();
    e.handle(server);
    e.u32(context);
    e.u32(preferred_max_len);
    e.into_bytes()
}

/// Decodes a `SAMPR_ENUMERATION_BUFFER` of `SAMPR_RID_ENUMERATION` after its
/// pointer: `(RelativeId, Name)` entries.
fn rid_enumeration(d: &mut Decoder<'_>) -> Result<Vec<(u32, String)>, NdrError> {
    let entries_read = d.u32()?;
    let present = d.ptr()?;
    if !present {
        return Ok(Vec::new());
    }
    let offset = d.pos();
    let n = d.conformance(12)?;
    if n != entries_read {
        return Err(NdrError::BadCount { offset });
    }
    let mut fixed = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let rid = d.u32()?;
        fixed.push((rid, d.unicode_string_header()?));
    }
    let mut out = Vec::with_capacity(fixed.len());
    for (rid, h) in fixed {
        out.push((rid, d.unicode_string_body(h)?.unwrap_or_default()));
    }
    Ok(out)
}

/// `EnumerationContext`, `Buffer` (unique), `CountReturned`, status (SUCCESS or
/// MORE_ENTRIES).
pub(crate) fn enumerate_domains_response(stub: &[u8]) -> Result<DomainPage, Error> {
    let op = opnum::ENUMERATE_DOMAINS_IN_SAM_SERVER;
    let mut d = Decoder::new(stub);
    let parsed = (|| {
        let resume = d.u32()?;
        let entries = if d.ptr()? {
            rid_enumeration(&mut d)?
        } else {
            Vec::new()
        };
        let _count = d.u32()?;
        let status = d.status()?;
        d.finish()?;
        Ok((resume, entries, status))
    })();
    match parsed {
        Ok((resume, entries, status)) => {
            let more = status == NtStatus::MORE_ENTRIES;
            if !more {
                status.check(Call::Samr(op))?;
            }
            Ok(DomainPage {
                resume,
                names: entries.into_iter().map(|(_, n)| n).collect(),
                more,
            })
        }
        Err(e) => Err(match trailing_error_status(stub) {
            Some(status) => Error::Status {
                call: Call::Samr(op),
                status,
            },
            None => Error::ndr(Call::Samr(op), e),
        }),
    }
}

// ------------------------------------------------ SamrLookupDomainInSamServer (5)

/// SamrLookupDomainInSamServer: server handle, `[in] PRPC_UNICODE_STRING Name`.
pub(crate) fn lookup_domain_request(server: &Handle, name: &str) -> Vec<u8> {
    let mut e = Encoder::new();
    e.handle(server);
    e.unicode_string(name);
    e.into_bytes()
}

/// `[out] PRPC_SID* DomainId` (a unique pointer), status.
pub(crate) fn lookup_domain_response(stub: &[u8]) -> Result<Sid, Error> {
    decode(opnum::LOOKUP_DOMAIN_IN_SAM_SERVER, stub, |d| {
        d.non_null_ptr()?;
        d.sid()
    })
}

// ---------------------------------------------------------------- SamrOpenDomain (7)

/// SamrOpenDomain: server handle, access, `[in] PRPC_SID DomainId` (top-level ref).
pub(crate) fn open_domain_request(server: &Handle, desired_access: u32, domain: &Sid) -> Vec<u8> {
    let mut e = Encoder::new();
    e.handle(server);
    e.u32(desired_access);
    e.sid(domain);
    e.into_bytes()
}

/// The domain handle, status.
pub(crate) fn open_domain_response(stub: &[u8]) -> Result<Handle, Error> {
    decode(opnum::OPEN_DOMAIN, stub, |d| d.handle())
}

// ---------------------------------------------------- SamrQueryInformationDomain (8)

/// `DOMAIN_PASSWORD_INFORMATION` ([MS-SAMR] 2.2.3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DomainPasswordInfo {
    pub(crate) min_password_length: u16,
    pub(crate) password_history_length: u16,
    pub(crate) password_properties: u32,
    /// In 100 ns units, negative (a relative time); `i64::MIN` for "never".
    pub(crate) max_password_age: i64,
    /// In 100 ns units, negative or 0.
    pub(crate) min_password_age: i64,
}

impl DomainPasswordInfo {
    /// Whether the host requires complex passwords (`DOMAIN_PASSWORD_COMPLEX`).
    pub(crate) fn complexity_required(&self) -> bool {
        self.password_properties & password_properties::DOMAIN_PASSWORD_COMPLEX != 0
    }
}

/// The server role reported by `DOMAIN_SERVER_ROLE_INFORMATION` (level 7).
///
/// [MS-SAMR] defines only Backup (2) and Primary (3), and 3.1.5.5.1.2 requires a
/// server that is *not* a domain controller to report Primary, as does the PDC
/// role owner: Primary alone does not tell a Windows DC from a member or
/// standalone host, while Backup proves a DC. Samba reports 0 (standalone) and
/// 1 (domain member) for non-DCs and 3 or 2 for an AD DC. A further SAMR-only
/// signal: on a non-DC the account domain (the non-`Builtin` domain of
/// SamrEnumerateDomainsInSamServer) is named after the computer, on a DC after the
/// domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerRole {
    /// 0: a standalone server (Samba).
    Standalone,
    /// 1: a domain member (Samba).
    Member,
    /// 2: a backup domain controller.
    Backup,
    /// 3: a primary domain controller, or a Windows host's local account domain.
    Primary,
    /// Any other value.
    Other(u16),
}

/// SamrQueryInformationDomain: domain handle, `DOMAIN_INFORMATION_CLASS` (16-bit).
pub(crate) fn query_domain_request(domain: &Handle, level: u16) -> Vec<u8> {
    let mut e = Encoder::new();
    e.handle(domain);
    e.u16(level);
    e.into_bytes()
}

/// Decodes the unique pointer and the union discriminant of an info buffer.
fn info_union(d: &mut Decoder<'_>, level: u16) -> Result<(), NdrError> {
    d.non_null_ptr()?;
    let tag = d.u16()?;
    if tag != level {
        return Err(NdrError::UnexpectedSwitch {
            value: u32::from(tag),
        });
    }
    Ok(())
}

/// Level 1 (`DomainPasswordInformation`).
pub(crate) fn query_domain_password_response(stub: &[u8]) -> Result<DomainPasswordInfo, Error> {
    decode(opnum::QUERY_INFORMATION_DOMAIN, stub, |d| {
        info_union(d, domain_level::PASSWORD)?;
        d.align(4)?; // the structure's alignment (it holds 32-bit members)
        Ok(DomainPasswordInfo {
            min_password_length: d.u16()?,
            password_history_length: d.u16()?,
            password_properties: d.u32()?,
            max_password_age: d.old_large_integer()?,
            min_password_age: d.old_large_integer()?,
        })
    })
}

/// Level 7 (`DomainServerRoleInformation`). The role is marshalled as a 32-bit
/// enum (`[v1_enum]` in Samba's IDL, which interoperates with Windows).
pub(crate) fn query_domain_role_response(stub: &[u8]) -> Result<ServerRole, Error> {
    decode(opnum::QUERY_INFORMATION_DOMAIN, stub, |d| {
        info_union(d, domain_level::SERVER_ROLE)?;
        let role = d.u32()?;
        let role = u16::try_from(role).map_err(|_| NdrError::BadValue {
            offset: d.pos() - 4,
        })?;
        Ok(match role {
            0 => ServerRole::Standalone,
            1 => ServerRole::Member,
            2 => ServerRole::Backup,
            3 => ServerRole::Primary,
            v => ServerRole::Other(v),
        })
    })
}

// ------------------------------------------------------ SamrLookupNamesInDomain (17)

/// SamrLookupNamesInDomain: domain handle, count, `[size_is(1000), length_is(Count)]
/// RPC_UNICODE_STRING Names[*]`.
pub(crate) fn lookup_names_request(domain: &Handle, names: &[&str]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.handle(domain);
    let count = u32::try_from(names.len()).unwrap_or(u32::MAX);
    e.u32(count);
    e.u32(1000); // max count
    e.u32(0); // offset
    e.u32(count); // actual count
    let units: Vec<Vec<u16>> = names.iter().map(|n| n.encode_utf16().collect()).collect();
    for u in &units {
        e.unicode_string_header(Some(u));
    }
    for u in &units {
        e.unicode_string_body(u);
    }
    e.into_bytes()
}

/// A `SAMPR_ULONG_ARRAY` (count, unique pointer, deferred elements).
fn ulong_array(d: &mut Decoder<'_>) -> Result<Vec<u32>, NdrError> {
    let offset = d.pos();
    let count = d.u32()?;
    if !d.ptr()? {
        return if count == 0 {
            Ok(Vec::new())
        } else {
            Err(NdrError::NullPointer { offset })
        };
    }
    let v = d.u32_array()?;
    if v.len() != count as usize {
        return Err(NdrError::BadCount { offset });
    }
    Ok(v)
}

/// `RelativeIds`, `Use`, status. Returns `(rid, use)` per name; names not found
/// have use 8 (`SidTypeUnknown`). NONE_MAPPED is an error.
pub(crate) fn lookup_names_response(stub: &[u8]) -> Result<Vec<(u32, u32)>, Error> {
    let op = opnum::LOOKUP_NAMES_IN_DOMAIN;
    let mut d = Decoder::new(stub);
    let parsed = (|| {
        let rids = ulong_array(&mut d)?;
        let uses = ulong_array(&mut d)?;
        if rids.len() != uses.len() {
            return Err(NdrError::BadCount { offset: 0 });
        }
        let status = d.status()?;
        d.finish()?;
        Ok((rids, uses, status))
    })();
    match parsed {
        Ok((rids, uses, status)) => {
            if status != NtStatus::SOME_NOT_MAPPED {
                status.check(Call::Samr(op))?;
            }
            Ok(rids.into_iter().zip(uses).collect())
        }
        Err(e) => Err(match trailing_error_status(stub) {
            Some(status) => Error::Status {
                call: Call::Samr(op),
                status,
            },
            None => Error::ndr(Call::Samr(op), e),
        }),
    }
}

// ----------------------------------------------------------------- SamrOpenUser (34)

/// SamrOpenUser: domain handle, access, RID.
pub(crate) fn open_user_request(domain: &Handle, desired_access: u32, rid: u32) -> Vec<u8> {
    let mut e = Encoder::new();
    e.handle(domain);
    e.u32(desired_access);
    e.u32(rid);
    e.into_bytes()
}

/// The user handle, status.
pub(crate) fn open_user_response(stub: &[u8]) -> Result<Handle, Error> {
    decode(opnum::OPEN_USER, stub, |d| d.handle())
}

// ---------------------------------------- SamrGetUserDomainPasswordInformation (44)

/// `USER_DOMAIN_PASSWORD_INFORMATION` ([MS-SAMR] 2.2.6.29).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserPasswordInfo {
    pub(crate) min_password_length: u16,
    pub(crate) password_properties: u32,
}

/// SamrGetUserDomainPasswordInformation: user handle (needs USER_READ_ACCOUNT).
pub(crate) fn get_user_password_info_request(user: &Handle) -> Vec<u8> {
    close_handle_request(user)
}

/// `USER_DOMAIN_PASSWORD_INFORMATION`, status.
pub(crate) fn get_user_password_info_response(stub: &[u8]) -> Result<UserPasswordInfo, Error> {
    decode(opnum::GET_USER_DOMAIN_PASSWORD_INFORMATION, stub, |d| {
        d.align(4)?;
        Ok(UserPasswordInfo {
            min_password_length: d.u16()?,
            password_properties: d.u32()?,
        })
    })
}

// ------------------------------------------------------ SamrQueryInformationUser2 (47)

/// The fields of `SAMPR_USER_ALL_INFORMATION` (level 21) this crate uses. The server
/// fills only the fields the handle's access allows; `which_fields` says which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserAllInfo {
    pub(crate) user_name: Option<String>,
    pub(crate) full_name: Option<String>,
    /// FILETIME (100 ns since 1601); 0 means "must change at next logon".
    pub(crate) password_last_set: i64,
    pub(crate) password_must_change: i64,
    pub(crate) account_expires: i64,
    pub(crate) user_id: u32,
    pub(crate) user_account_control: u32,
    pub(crate) which_fields: u32,
    pub(crate) password_expired: bool,
}

impl UserAllInfo {
    /// `USER_ACCOUNT_DISABLED`.
    pub(crate) fn disabled(&self) -> bool {
        self.user_account_control & uac::ACCOUNT_DISABLED != 0
    }

    /// `USER_ACCOUNT_AUTO_LOCKED`.
    pub(crate) fn locked(&self) -> bool {
        self.user_account_control & uac::ACCOUNT_AUTO_LOCKED != 0
    }
}

/// SamrQueryInformationUser2: user handle, `USER_INFORMATION_CLASS` (16-bit).
pub(crate) fn query_user_request(user: &Handle, level: u16) -> Vec<u8> {
    query_domain_request(user, level)
}

/// Level 16 (`UserControlInformation`): the `UserAccountControl` bits.
pub(crate) fn query_user_control_response(stub: &[u8]) -> Result<u32, Error> {
    decode(opnum::QUERY_INFORMATION_USER2, stub, |d| {
        info_union(d, user_level::CONTROL)?;
        d.u32()
    })
}

/// Skips the deferred body of a string-like field (RPC_UNICODE_STRING or
/// RPC_SHORT_BLOB) without decoding it as text.
fn skip_counted(d: &mut Decoder<'_>, h: crate::ndr::UnicodeHeader) -> Result<(), NdrError> {
    d.unicode_string_body_raw(h).map(|_| ())
}

/// Level 21 (`UserAllInformation`).
pub(crate) fn query_user_all_response(stub: &[u8]) -> Result<UserAllInfo, Error> {
    decode(opnum::QUERY_INFORMATION_USER2, stub, |d| {
        info_union(d, user_level::ALL)?;
        let _last_logon = d.old_large_integer()?;
        let _last_logoff = d.old_large_integer()?;
        let password_last_set = d.old_large_integer()?;
        let account_expires = d.old_large_integer()?;
        let _password_can_change = d.old_large_integer()?;
        let password_must_change = d.old_large_integer()?;
        // UserName .. PrivateData: 13 string-like fields.
        let mut strings = Vec::with_capacity(13);
        for _ in 0..13 {
            strings.push(d.unicode_string_header()?);
        }
        let sd_len = d.u32()?;
        let sd_present = d.ptr()?;
        let user_id = d.u32()?;
        let _primary_group_id = d.u32()?;
        let user_account_control = d.u32()?;
        let which_fields = d.u32()?;
        let _units_per_week = d.u16()?;
        let hours_present = d.ptr()?;
        let _bad_password_count = d.u16()?;
        let _logon_count = d.u16()?;
        let _country_code = d.u16()?;
        let _code_page = d.u16()?;
        let _lm_present = d.u8()?;
        let _nt_present = d.u8()?;
        let password_expired = d.u8()? != 0;
        let _private_data_sensitive = d.u8()?;
        // Deferred pointees, in member order.
        let mut user_name = None;
        let mut full_name = None;
        for (i, h) in strings.into_iter().enumerate() {
            match i {
                0 => user_name = d.unicode_string_body(h)?,
                1 => full_name = d.unicode_string_body(h)?,
                _ => skip_counted(d, h)?,
            }
        }
        if sd_present {
            let offset = d.pos();
            let n = d.conformance(1)?;
            if n != sd_len {
                return Err(NdrError::BadCount { offset });
            }
            d.bytes(n as usize)?;
        }
        if hours_present {
            d.varying_bytes()?;
        }
        Ok(UserAllInfo {
            user_name,
            full_name,
            password_last_set,
            password_must_change,
            account_expires,
            user_id,
            user_account_control,
            which_fields,
            password_expired,
        })
    })
}

// -------------------------------------------------------- SamrSetInformationUser2 (58)

/// The fixed part of a `SAMPR_USER_ALL_INFORMATION` that sets only the password and
/// clears "must change at next logon": `WhichFields = USER_ALL_NTPASSWORDPRESENT |
/// USER_ALL_PASSWORDEXPIRED` with `PasswordExpired = 0` (the server then sets
/// PasswordLastSet to now), every pointer NULL, everything else 0.
fn password_only_all_information(e: &mut Encoder) {
    e.align(4);
    for _ in 0..6 {
        e.u32(0); // OLD_LARGE_INTEGER low
        e.u32(0); // high
    }
    for _ in 0..13 {
        e.unicode_string_header(None);
    }
    e.u32(0); // SecurityDescriptor.Length
    e.null_ptr(); // SecurityDescriptor.SecurityDescriptor
    e.u32(0); // UserId
    e.u32(0); // PrimaryGroupId
    e.u32(0); // UserAccountControl
    e.u32(which_fields::NT_PASSWORD_PRESENT | which_fields::PASSWORD_EXPIRED);
    e.u16(0); // LogonHours.UnitsPerWeek
    e.null_ptr(); // LogonHours.LogonHours
    e.u16(0); // BadPasswordCount
    e.u16(0); // LogonCount
    e.u16(0); // CountryCode
    e.u16(0); // CodePage
    e.u8(0); // LmPasswordPresent
    e.u8(0); // NtPasswordPresent
    e.u8(0); // PasswordExpired: do not require a change at next logon
    e.u8(0); // PrivateDataSensitive
}

fn set_user_header(e: &mut Encoder, user: &Handle, level: u16) {
    e.handle(user);
    e.u16(level); // UserInformationClass
    e.u16(level); // union discriminant
}

/// Encodes a `SAMPR_ENCRYPTED_PASSWORD_AES` (alignment 8) with its deferred cipher.
fn encrypted_password_aes(e: &mut Encoder, p: &EncryptedPasswordAes) {
    e.align(8);
    e.bytes(&p.auth_data);
    e.bytes(&p.salt);
    e.u32(u32::try_from(p.cipher.len()).unwrap_or(u32::MAX));
    e.referent();
    e.u64(p.pbkdf2_iterations);
}

fn encrypted_password_aes_deferred(e: &mut Encoder, p: &EncryptedPasswordAes) {
    e.u32(u32::try_from(p.cipher.len()).unwrap_or(u32::MAX));
    e.bytes(&p.cipher);
}

/// Level 31 (`UserInternal7Information`, AES): the password and `PasswordExpired = 0`.
pub(crate) fn set_user_aes_request(user: &Handle, password: &EncryptedPasswordAes) -> Vec<u8> {
    let mut e = Encoder::new();
    set_user_header(&mut e, user, user_level::INTERNAL7);
    encrypted_password_aes(&mut e, password);
    e.u8(0); // PasswordExpired
    encrypted_password_aes_deferred(&mut e, password);
    e.into_bytes()
}

/// Level 23 (`UserInternal4Information`, RC4 under the session key).
pub(crate) fn set_user_rc4_request(user: &Handle, password: &EncryptedUserPassword) -> Vec<u8> {
    let mut e = Encoder::new();
    set_user_header(&mut e, user, user_level::INTERNAL4);
    password_only_all_information(&mut e);
    e.bytes(&password.0);
    e.into_bytes()
}

/// Level 25 (`UserInternal4InformationNew`, RC4 under a salted MD5 key).
pub(crate) fn set_user_rc4_salted_request(
    user: &Handle,
    password: &EncryptedUserPasswordNew,
) -> Vec<u8> {
    let mut e = Encoder::new();
    set_user_header(&mut e, user, user_level::INTERNAL4_NEW);
    password_only_all_information(&mut e);
    e.bytes(&password.0);
    e.into_bytes()
}

/// Status only.
pub(crate) fn set_user_response(stub: &[u8]) -> Result<(), Error> {
    status_only(opnum::SET_INFORMATION_USER2, stub)
}

// ------------------------------------------ SamrUnicodeChangePasswordUser2 (55) / 4 (73)

/// `[in, unique] PRPC_UNICODE_STRING ServerName` (always non-NULL here: Samba
/// dereferences it) and `[in] PRPC_UNICODE_STRING UserName`. The `handle_t` binding
/// handle is not marshalled.
fn server_and_user(e: &mut Encoder, server_name: &str, user: &str) {
    e.referent();
    e.unicode_string(server_name);
    e.unicode_string(user);
}

/// SamrUnicodeChangePasswordUser2 with the NT buffers only (`LmPresent = 0`, LM
/// pointers NULL).
pub(crate) fn change_password2_request(
    server_name: &str,
    user: &str,
    new_encrypted_with_old_nt: &EncryptedUserPassword,
    old_nt_encrypted_with_new_nt: &EncryptedNtOwf,
) -> Vec<u8> {
    let mut e = Encoder::new();
    server_and_user(&mut e, server_name, user);
    e.referent();
    e.bytes(&new_encrypted_with_old_nt.0);
    e.referent();
    e.bytes(&old_nt_encrypted_with_new_nt.0);
    e.u8(0); // LmPresent
    e.null_ptr(); // NewPasswordEncryptedWithOldLm
    e.null_ptr(); // OldLmOwfPasswordEncryptedWithNewNt
    e.into_bytes()
}

/// Status only.
pub(crate) fn change_password2_response(stub: &[u8]) -> Result<(), Error> {
    status_only(opnum::UNICODE_CHANGE_PASSWORD_USER2, stub)
}

/// SamrUnicodeChangePasswordUser4: server name, user name, `[in]
/// PSAMPR_ENCRYPTED_PASSWORD_AES` (top-level ref).
pub(crate) fn change_password4_request(
    server_name: &str,
    user: &str,
    password: &EncryptedPasswordAes,
) -> Vec<u8> {
    let mut e = Encoder::new();
    server_and_user(&mut e, server_name, user);
    encrypted_password_aes(&mut e, password);
    encrypted_password_aes_deferred(&mut e, password);
    e.into_bytes()
}

/// Status only.
pub(crate) fn change_password4_response(stub: &[u8]) -> Result<(), Error> {
    status_only(opnum::UNICODE_CHANGE_PASSWORD_USER4, stub)
}

/// Runs every response decoder on `data` (for fuzzing), and formats and classifies
/// each error: none of it may panic.
pub(crate) fn decode_every_response(data: &[u8]) {
    fn sink<T>(r: Result<T, Error>) {
        if let Err(e) = r {
            let t = credwheel_state::TargetError::from(&e);
            std::hint::black_box((e.to_string(), t.kind(), e.is_unsupported()));
        }
    }
    sink(close_handle_response(data));
    sink(connect5_response(data));
    sink(enumerate_domains_response(data));
    sink(lookup_domain_response(data));
    sink(open_domain_response(data));
    sink(query_domain_password_response(data));
    sink(query_domain_role_response(data));
    sink(lookup_names_response(data));
    sink(open_user_response(data));
    sink(get_user_password_info_response(data));
    sink(query_user_control_response(data));
    sink(query_user_all_response(data));
    sink(set_user_response(data));
    sink(change_password2_response(data));
    sink(change_password4_response(data));
}

#[cfg(test)]
mod tests;
