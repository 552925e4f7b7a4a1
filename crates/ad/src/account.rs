//! How accounts are named and what is read about them.

use std::collections::HashMap;
use std::fmt;

use credwheel_dn::{Dn, Filter};

use crate::error::{Error, Result};

/// Names an account: by `userPrincipalName`, by `sAMAccountName`, or by an explicit
/// DN. An explicit DN is used exactly as given, never re-resolved by a search.
///
/// The text form (see [`AccountRef::parse`] and `Display`) is `upn:NAME`,
/// `sam:NAME` or `dn:DN`; without a prefix, a name with `=` is a DN, one with `@` a
/// UPN, anything else a `sAMAccountName` (which may contain neither).
///
/// ```
/// use credwheel_ad::AccountRef;
/// let r = AccountRef::parse("svc-web@example.com")?;
/// assert_eq!(r.to_string(), "upn:svc-web@example.com");
/// let r = AccountRef::parse(r"CN=Smith\, John,OU=Svc,DC=example,DC=com")?;
/// assert!(matches!(r, AccountRef::Dn(_)));
/// assert_eq!(AccountRef::parse("sam:svc-web")?, AccountRef::parse("svc-web")?);
/// # Ok::<(), credwheel_ad::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AccountRef {
    /// By `userPrincipalName` (`name@realm`).
    Upn(String),
    /// By `sAMAccountName`.
    Sam(String),
    /// By DN, used as given.
    Dn(Dn),
}

impl AccountRef {
    /// By `userPrincipalName`.
    pub fn upn(upn: impl Into<String>) -> Self {
        Self::Upn(upn.into())
    }

    /// By `sAMAccountName`.
    pub fn sam(name: impl Into<String>) -> Self {
        Self::Sam(name.into())
    }

    /// By DN (parsed and checked with `credwheel-dn`).
    pub fn dn(dn: &str) -> Result<Self> {
        Ok(Self::Dn(Dn::parse(dn)?))
    }

    /// Parses the text form (see the type's documentation).
    pub fn parse(s: &str) -> Result<Self> {
        let r = if let Some(v) = s.strip_prefix("upn:") {
            Self::Upn(v.to_owned())
        } else if let Some(v) = s.strip_prefix("sam:") {
            Self::Sam(v.to_owned())
        } else if let Some(v) = s.strip_prefix("dn:") {
            Self::Dn(Dn::parse(v)?)
        } else if s.contains('=') {
            Self::Dn(Dn::parse(s)?)
        } else if s.contains('@') {
            Self::Upn(s.to_owned())
        } else {
            Self::Sam(s.to_owned())
        };
        match &r {
            Self::Upn(v) | Self::Sam(v) if v.is_empty() => {
                Err(Error::config("an account name must not be empty"))
            }
            Self::Dn(d) if d.is_empty() => Err(Error::config("an account DN must not be empty")),
            _ => Ok(r),
        }
    }

    /// The search filter for a name, built with `credwheel-dn` (values escaped).
    pub(crate) fn filter(&self) -> Result<Option<Filter>> {
        let by = match self {
            Self::Upn(v) => Filter::eq("userPrincipalName", v)?,
            Self::Sam(v) => Filter::eq("sAMAccountName", v)?,
            Self::Dn(_) => return Ok(None),
        };
        Ok(Some(Filter::and([Filter::eq("objectClass", "user")?, by])?))
    }
}

impl fmt::Display for AccountRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Upn(v) => write!(f, "upn:{v}"),
            Self::Sam(v) => write!(f, "sam:{v}"),
            Self::Dn(d) => write!(f, "dn:{d}"),
        }
    }
}

impl std::str::FromStr for AccountRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// `userAccountControl` bit: account disabled.
pub(crate) const UF_ACCOUNTDISABLE: u32 = 0x2;
/// `userAccountControl` / computed bit: locked out.
pub(crate) const UF_LOCKOUT: u32 = 0x10;
/// Computed bit: password expired.
pub(crate) const UF_PASSWORD_EXPIRED: u32 = 0x80_0000;

/// Attributes read for an account.
pub(crate) const ACCOUNT_ATTRS: &[&str] = &[
    "sAMAccountName",
    "userPrincipalName",
    "displayName",
    "userAccountControl",
    "msDS-User-Account-Control-Computed",
    "pwdLastSet",
    "lockoutTime",
    "accountExpires",
    "badPwdCount",
];

/// An account as the directory describes it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    dn: Dn,
    sam: Option<String>,
    upn: Option<String>,
    display_name: Option<String>,
    uac: u32,
    uac_computed: Option<u32>,
    pwd_last_set: Option<i64>,
    lockout_time: Option<i64>,
    account_expires: Option<i64>,
    bad_pwd_count: Option<u32>,
}

/// Windows FILETIME (100 ns since 1601-01-01 UTC) to Unix milliseconds. `0` and
/// "never" (`0x7FFFFFFFFFFFFFFF`) have no time: `None`.
pub fn filetime_to_unix_ms(ft: i64) -> Option<i64> {
    if ft <= 0 || ft == i64::MAX {
        return None;
    }
    Some(ft / 10_000 - 11_644_473_600_000)
}

fn first<'a>(attrs: &'a HashMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

pub(crate) fn int_attr<T: std::str::FromStr>(
    attrs: &HashMap<String, Vec<String>>,
    name: &'static str,
) -> Result<Option<T>> {
    match first(attrs, name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::protocol(format!("attribute {name} is not an integer"))),
    }
}

pub(crate) fn str_attr(attrs: &HashMap<String, Vec<String>>, name: &str) -> Option<String> {
    first(attrs, name).map(str::to_owned)
}

impl Account {
    pub(crate) fn from_entry(dn: &str, attrs: &HashMap<String, Vec<String>>) -> Result<Self> {
        let dn = Dn::parse(dn)
            .map_err(|e| Error::protocol(format!("the directory returned an invalid DN: {e}")))?;
        Ok(Self {
            dn,
            sam: str_attr(attrs, "sAMAccountName"),
            upn: str_attr(attrs, "userPrincipalName"),
            display_name: str_attr(attrs, "displayName"),
            uac: int_attr::<i64>(attrs, "userAccountControl")?.unwrap_or(0) as u32,
            uac_computed: int_attr::<i64>(attrs, "msDS-User-Account-Control-Computed")?
                .map(|v| v as u32),
            pwd_last_set: int_attr(attrs, "pwdLastSet")?,
            lockout_time: int_attr(attrs, "lockoutTime")?,
            account_expires: int_attr(attrs, "accountExpires")?,
            bad_pwd_count: int_attr(attrs, "badPwdCount")?,
        })
    }

    /// The account's DN.
    pub fn dn(&self) -> &Dn {
        &self.dn
    }

    /// `sAMAccountName`.
    pub fn sam_account_name(&self) -> Option<&str> {
        self.sam.as_deref()
    }

    /// `userPrincipalName`.
    pub fn user_principal_name(&self) -> Option<&str> {
        self.upn.as_deref()
    }

    /// `displayName`.
    pub fn display_name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }

    /// A user name for people and programs: the UPN, else the `sAMAccountName`,
    /// else the DN.
    pub fn username(&self) -> String {
        self.upn
            .clone()
            .or_else(|| self.sam.clone())
            .unwrap_or_else(|| self.dn.to_string())
    }

    /// `pwdLastSet` in Unix milliseconds (`None`: never set, or must change at next
    /// logon).
    pub fn password_last_set(&self) -> Option<i64> {
        self.pwd_last_set.and_then(filetime_to_unix_ms)
    }

    /// `pwdLastSet` as stored (FILETIME; `0` means "must change at next logon").
    pub fn password_last_set_raw(&self) -> Option<i64> {
        self.pwd_last_set
    }

    /// `userAccountControl`.
    pub fn user_account_control(&self) -> u32 {
        self.uac
    }

    /// Whether the account is disabled.
    pub fn is_disabled(&self) -> bool {
        self.uac & UF_ACCOUNTDISABLE != 0
    }

    /// Whether the account is locked out now (from the computed account control
    /// when the directory returns it, else from a non-zero `lockoutTime`).
    pub fn is_locked(&self) -> bool {
        match self.uac_computed {
            Some(c) => c & UF_LOCKOUT != 0,
            None => self.lockout_time.unwrap_or(0) > 0,
        }
    }

    /// `lockoutTime` in Unix milliseconds, when set.
    pub fn lockout_time(&self) -> Option<i64> {
        self.lockout_time.and_then(filetime_to_unix_ms)
    }

    /// Whether the password has expired (computed account control).
    pub fn is_password_expired(&self) -> bool {
        self.uac_computed
            .is_some_and(|c| c & UF_PASSWORD_EXPIRED != 0)
    }

    /// `accountExpires` in Unix milliseconds (`None`: never).
    pub fn account_expires(&self) -> Option<i64> {
        self.account_expires.and_then(filetime_to_unix_ms)
    }

    /// `badPwdCount`, when returned.
    pub fn bad_password_count(&self) -> Option<u32> {
        self.bad_pwd_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs() {
        assert_eq!(AccountRef::parse("a@b").unwrap(), AccountRef::upn("a@b"));
        assert_eq!(AccountRef::parse("svc").unwrap(), AccountRef::sam("svc"));
        assert!(AccountRef::parse("").is_err());
        assert!(AccountRef::parse("upn:").is_err());
        assert!(AccountRef::parse("dn:not a dn").is_err());
        let r = AccountRef::parse(r"CN=Smith\, John \#2,OU=S,DC=example,DC=com").unwrap();
        assert_eq!(AccountRef::parse(&r.to_string()).unwrap(), r);
        // Filter metacharacters stay literal.
        let f = AccountRef::sam("*)(cn=*").filter().unwrap().unwrap();
        assert_eq!(
            f.to_string(),
            r"(&(objectClass=user)(sAMAccountName=\2a\29\28cn=\2a))"
        );
        assert!(
            AccountRef::parse("dn:CN=x,DC=y")
                .unwrap()
                .filter()
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn filetime() {
        // 2024-01-01T00:00:00Z
        assert_eq!(
            filetime_to_unix_ms(133_485_408_000_000_000),
            Some(1_704_067_200_000)
        );
        assert_eq!(filetime_to_unix_ms(0), None);
        assert_eq!(filetime_to_unix_ms(i64::MAX), None);
    }

    #[test]
    fn flags() {
        let mut attrs = HashMap::new();
        attrs.insert("userAccountControl".to_owned(), vec!["514".to_owned()]);
        attrs.insert("lockoutTime".to_owned(), vec!["0".to_owned()]);
        let a = Account::from_entry("CN=x,DC=example,DC=com", &attrs).unwrap();
        assert!(a.is_disabled());
        assert!(!a.is_locked());
        attrs.insert(
            "msDS-User-Account-Control-Computed".to_owned(),
            vec!["16".to_owned()],
        );
        let a = Account::from_entry("CN=x,DC=example,DC=com", &attrs).unwrap();
        assert!(a.is_locked());
        attrs.insert("pwdLastSet".to_owned(), vec!["x".to_owned()]);
        assert!(Account::from_entry("CN=x,DC=example,DC=com", &attrs).is_err());
    }
}
