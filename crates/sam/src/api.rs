//! The SAMR operations the rotation target needs, as one seam: the real
//! implementation runs them over an [`SmbSession`](crate::client::SmbSession); unit
//! tests use a fake SAM.

use std::future::Future;

use secrecy::SecretString;

use crate::client::HostNames;
use crate::error::Error;

pub(crate) use crate::ndr::{Handle, Sid as DomainSid};

/// What the host knows about an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct UserFacts {
    /// The account is disabled (UF_ACCOUNTDISABLE / USER_ACCOUNT_DISABLED).
    pub(crate) disabled: bool,
    /// The account is locked out.
    pub(crate) locked: bool,
    /// PasswordLastSet as a Windows FILETIME (100 ns since 1601), 0 if never.
    pub(crate) password_last_set: i64,
}

/// The host's password policy (SAMR DOMAIN_PASSWORD_INFORMATION).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HostPasswordPolicy {
    /// Minimum password length in characters.
    pub min_length: u16,
    /// How many previous passwords the host remembers.
    pub history_length: u16,
    /// Whether the host requires complex passwords (DOMAIN_PASSWORD_COMPLEX).
    pub complexity: bool,
}

/// Password-buffer level of an admin reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResetLevel {
    /// 31: SAMPR_USER_INTERNAL7_INFORMATION (AES).
    Aes31,
    /// 25: SAMPR_USER_INTERNAL4_INFORMATION_NEW (RC4 with a salted MD5 key).
    Rc4Salted25,
    /// 23: SAMPR_USER_INTERNAL4_INFORMATION (RC4 with the session key).
    Rc4Plain23,
}

/// Self-change call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeOp {
    /// SamrUnicodeChangePasswordUser4 (opnum 73, AES).
    Aes73,
    /// SamrUnicodeChangePasswordUser2 (opnum 55, RC4).
    Rc4_55,
}

/// Access masks used (least access per call).
pub(crate) mod access {
    /// SAM_SERVER_CONNECT | SAM_SERVER_LOOKUP_DOMAIN.
    pub(crate) const SERVER: u32 = 0x0000_0021;
    /// DOMAIN_READ_PASSWORD_PARAMETERS | DOMAIN_LOOKUP.
    pub(crate) const DOMAIN: u32 = 0x0000_0201;
    /// USER_READ_GENERAL | USER_READ_PREFERENCES | USER_READ_LOGON | USER_READ_ACCOUNT
    /// (level 21, for PasswordLastSet).
    pub(crate) const USER_READ: u32 = 0x0000_001B;
    /// USER_FORCE_PASSWORD_CHANGE | USER_READ_ACCOUNT (the reset plus the
    /// account-control check).
    pub(crate) const USER_RESET: u32 = 0x0000_0090;
}

/// The SAMR calls, each one request/response.
pub(crate) trait SamrApi: Send {
    /// SamrConnect5.
    fn connect(&mut self) -> impl Future<Output = Result<Handle, Error>> + Send;
    /// SamrLookupDomainInSamServer.
    fn lookup_domain(
        &mut self,
        server: &Handle,
        name: &str,
    ) -> impl Future<Output = Result<DomainSid, Error>> + Send;
    /// SamrOpenDomain.
    fn open_domain(
        &mut self,
        server: &Handle,
        sid: &DomainSid,
        access: u32,
    ) -> impl Future<Output = Result<Handle, Error>> + Send;
    /// SamrLookupNamesInDomain for one name: its RID.
    fn lookup_name(
        &mut self,
        domain: &Handle,
        name: &str,
    ) -> impl Future<Output = Result<u32, Error>> + Send;
    /// SamrOpenUser.
    fn open_user(
        &mut self,
        domain: &Handle,
        rid: u32,
        access: u32,
    ) -> impl Future<Output = Result<Handle, Error>> + Send;
    /// SamrQueryInformationUser2 level 21 (everything, incl. PasswordLastSet).
    fn query_user(
        &mut self,
        user: &Handle,
    ) -> impl Future<Output = Result<UserFacts, Error>> + Send;
    /// SamrQueryInformationUser2 level 16 (the account-control flags only; cheaper):
    /// `password_last_set` is 0.
    fn query_user_flags(
        &mut self,
        user: &Handle,
    ) -> impl Future<Output = Result<UserFacts, Error>> + Send;
    /// The domain's password policy.
    fn password_policy(
        &mut self,
        domain: &Handle,
    ) -> impl Future<Output = Result<HostPasswordPolicy, Error>> + Send;
    /// SamrSetInformationUser2 with a password at `level`, never "must change".
    fn set_password(
        &mut self,
        user: &Handle,
        level: ResetLevel,
        new: &SecretString,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// A self change of `user`'s password.
    fn change_password(
        &mut self,
        op: ChangeOp,
        server_name: &str,
        user: &str,
        old: &SecretString,
        new: &SecretString,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// SamrCloseHandle.
    fn close(&mut self, handle: Handle) -> impl Future<Output = Result<(), Error>> + Send;
    /// The host's NetBIOS names from the logon.
    fn host_names(&self) -> &HostNames;
}
