//! [`SamrApi`] over a real [`SmbSession`]: each method encodes its request
//! ([`crate::samr`]), encrypts password buffers with the session's application key
//! ([`crate::crypto`]), calls the opnum over the pipe and decodes the response.

use secrecy::SecretString;

use crate::api::{ChangeOp, DomainSid, Handle, HostPasswordPolicy, ResetLevel, SamrApi, UserFacts};
use crate::client::{HostNames, SmbSession};
use crate::crypto;
use crate::error::{Call, Error, NdrError};
use crate::samr::{self, domain_level, opnum, user_level};

impl SmbSession {
    fn crypto_key(&self) -> crypto::SessionKey {
        crypto::SessionKey::new(*self.application_key().as_bytes())
    }
}

impl SamrApi for SmbSession {
    async fn connect(&mut self) -> Result<Handle, Error> {
        let server = format!("\\\\{}", self.server_name());
        let q = samr::connect5_request(&server, crate::api::access::SERVER);
        let r = self.call(opnum::CONNECT5, &q).await?;
        samr::connect5_response(&r)
    }

    async fn lookup_domain(&mut self, server: &Handle, name: &str) -> Result<DomainSid, Error> {
        let q = samr::lookup_domain_request(server, name);
        let r = self.call(opnum::LOOKUP_DOMAIN_IN_SAM_SERVER, &q).await?;
        samr::lookup_domain_response(&r)
    }

    async fn open_domain(
        &mut self,
        server: &Handle,
        sid: &DomainSid,
        access: u32,
    ) -> Result<Handle, Error> {
        let q = samr::open_domain_request(server, access, sid);
        let r = self.call(opnum::OPEN_DOMAIN, &q).await?;
        samr::open_domain_response(&r)
    }

    async fn lookup_name(&mut self, domain: &Handle, name: &str) -> Result<u32, Error> {
        let q = samr::lookup_names_request(domain, &[name]);
        let r = self.call(opnum::LOOKUP_NAMES_IN_DOMAIN, &q).await?;
        let found = samr::lookup_names_response(&r)?;
        match found.as_slice() {
            // SidTypeUser.
            [(rid, 1)] => Ok(*rid),
            [(_, _)] => Err(Error::NoSuchUser(name.to_owned())),
            _ => Err(Error::ndr(
                Call::Samr(opnum::LOOKUP_NAMES_IN_DOMAIN),
                NdrError::BadCount { offset: 0 },
            )),
        }
    }

    async fn open_user(&mut self, domain: &Handle, rid: u32, access: u32) -> Result<Handle, Error> {
        let q = samr::open_user_request(domain, access, rid);
        let r = self.call(opnum::OPEN_USER, &q).await?;
        samr::open_user_response(&r)
    }

    async fn query_user(&mut self, user: &Handle) -> Result<UserFacts, Error> {
        let q = samr::query_user_request(user, user_level::ALL);
        let r = self.call(opnum::QUERY_INFORMATION_USER2, &q).await?;
        let all = samr::query_user_all_response(&r)?;
        Ok(UserFacts {
            disabled: all.disabled(),
            locked: all.locked(),
            password_last_set: all.password_last_set,
        })
    }

    async fn query_user_flags(&mut self, user: &Handle) -> Result<UserFacts, Error> {
        let q = samr::query_user_request(user, user_level::CONTROL);
        let r = self.call(opnum::QUERY_INFORMATION_USER2, &q).await?;
        let uac = samr::query_user_control_response(&r)?;
        Ok(UserFacts {
            disabled: uac & samr::uac::ACCOUNT_DISABLED != 0,
            locked: uac & samr::uac::ACCOUNT_AUTO_LOCKED != 0,
            password_last_set: 0,
        })
    }

    async fn password_policy(&mut self, domain: &Handle) -> Result<HostPasswordPolicy, Error> {
        let q = samr::query_domain_request(domain, domain_level::PASSWORD);
        let r = self.call(opnum::QUERY_INFORMATION_DOMAIN, &q).await?;
        let p = samr::query_domain_password_response(&r)?;
        Ok(HostPasswordPolicy {
            min_length: p.min_password_length,
            history_length: p.password_history_length,
            complexity: p.complexity_required(),
        })
    }

    async fn set_password(
        &mut self,
        user: &Handle,
        level: ResetLevel,
        new: &SecretString,
    ) -> Result<(), Error> {
        let key = self.crypto_key();
        let q = match level {
            ResetLevel::Aes31 => {
                samr::set_user_aes_request(user, &crypto::encrypt_for_reset_aes(new, &key)?)
            }
            ResetLevel::Rc4Salted25 => samr::set_user_rc4_salted_request(
                user,
                &crypto::encrypt_for_reset_rc4_salted(new, &key)?,
            ),
            ResetLevel::Rc4Plain23 => {
                samr::set_user_rc4_request(user, &crypto::encrypt_for_reset_rc4(new, &key)?)
            }
        };
        let r = self.call(opnum::SET_INFORMATION_USER2, &q).await?;
        samr::set_user_response(&r)
    }

    async fn change_password(
        &mut self,
        op: ChangeOp,
        server_name: &str,
        user: &str,
        old: &SecretString,
        new: &SecretString,
    ) -> Result<(), Error> {
        let server = format!("\\\\{server_name}");
        match op {
            ChangeOp::Aes73 => {
                let buf =
                    crypto::encrypt_for_change_aes(old, new, crypto::CHANGE4_PBKDF2_ITERATIONS)?;
                let q = samr::change_password4_request(&server, user, &buf);
                let r = self.call(opnum::UNICODE_CHANGE_PASSWORD_USER4, &q).await?;
                samr::change_password4_response(&r)
            }
            ChangeOp::Rc4_55 => {
                let (buf, verifier) = crypto::encrypt_for_change_rc4(old, new)?;
                let q = samr::change_password2_request(&server, user, &buf, &verifier);
                let r = self.call(opnum::UNICODE_CHANGE_PASSWORD_USER2, &q).await?;
                samr::change_password2_response(&r)
            }
        }
    }

    async fn close(&mut self, h: Handle) -> Result<(), Error> {
        let q = samr::close_handle_request(&h);
        let r = self.call(opnum::CLOSE_HANDLE, &q).await?;
        samr::close_handle_response(&r)
    }

    fn host_names(&self) -> &HostNames {
        SmbSession::host_names(self)
    }
}

/// Runs every SAMR response decoder on `data` (fuzzing).
pub(crate) fn decode_every_response(data: &[u8]) {
    samr::decode_every_response(data);
}
