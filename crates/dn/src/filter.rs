//! A typed RFC 4515 search filter builder.

use std::fmt;

use crate::attr;
use crate::dn::Dn;
use crate::error::DnError;
use crate::escape::{escape_filter_bytes, escape_filter_into};

/// `LDAP_MATCHING_RULE_BIT_AND` (Microsoft, "Search Filter Syntax").
const AD_BIT_AND: &str = "1.2.840.113556.1.4.803";

/// An RFC 4515 search filter, built only from typed parts.
///
/// There is deliberately no way to make a `Filter` from a raw string: attribute
/// descriptions are validated and assertion values are always escaped, so a value
/// such as `*)(cn=*` can never change the filter's structure.
///
/// ```
/// use credwheel_dn::Filter;
/// let f = Filter::and([
///     Filter::eq("objectClass", "user")?,
///     Filter::eq("cn", "*)(cn=*")?,
///     Filter::not(Filter::ad_bit_and("userAccountControl", 2)?),
/// ])?;
/// assert_eq!(
///     f.to_string(),
///     r"(&(objectClass=user)(cn=\2a\29\28cn=\2a)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
/// );
/// # Ok::<(), credwheel_dn::DnError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    text: String,
}

fn check_attr(attr: &str) -> Result<(), DnError> {
    attr::validate_description(attr).map_err(|pos| DnError::InvalidAttribute { pos })
}

impl Filter {
    /// `(` attr op escaped `)`; `escaped` must already be RFC 4515-escaped.
    fn item_escaped(attr: &str, op: &str, escaped: &str) -> Result<Self, DnError> {
        check_attr(attr)?;
        let mut text = String::with_capacity(attr.len() + op.len() + escaped.len() + 2);
        text.push('(');
        text.push_str(attr);
        text.push_str(op);
        text.push_str(escaped);
        text.push(')');
        Ok(Self { text })
    }

    fn item(attr: &str, op: &str, value: &str) -> Result<Self, DnError> {
        let mut escaped = String::with_capacity(value.len());
        escape_filter_into(value, &mut escaped);
        Self::item_escaped(attr, op, &escaped)
    }

    /// `(attr=value)`: equality, with `value` escaped.
    pub fn eq(attr: &str, value: &str) -> Result<Self, DnError> {
        Self::item(attr, "=", value)
    }

    /// `(attr=value)` for a binary value (e.g. `objectGUID`); bytes that are not
    /// UTF-8 are written as `\XX`.
    pub fn eq_bytes(attr: &str, value: &[u8]) -> Result<Self, DnError> {
        Self::item_escaped(attr, "=", &escape_filter_bytes(value))
    }

    /// `(attr=<dn>)` for DN-valued attributes such as `member` or
    /// `distinguishedName`, with the DN in [`Dn`]'s normalized form.
    pub fn eq_dn(attr: &str, dn: &Dn) -> Result<Self, DnError> {
        Self::item(attr, "=", &dn.to_string())
    }

    /// `(attr>=value)`.
    pub fn ge(attr: &str, value: &str) -> Result<Self, DnError> {
        Self::item(attr, ">=", value)
    }

    /// `(attr<=value)`.
    pub fn le(attr: &str, value: &str) -> Result<Self, DnError> {
        Self::item(attr, "<=", value)
    }

    /// `(attr~=value)`.
    pub fn approx(attr: &str, value: &str) -> Result<Self, DnError> {
        Self::item(attr, "~=", value)
    }

    /// `(attr=*)`: the entry has the attribute.
    pub fn present(attr: &str) -> Result<Self, DnError> {
        check_attr(attr)?;
        Ok(Self {
            text: format!("({attr}=*)"),
        })
    }

    /// `(attr:1.2.840.113556.1.4.803:=mask)`: Active Directory's bitwise-AND
    /// matching rule, true when all bits of `mask` are set in `attr` (e.g.
    /// `userAccountControl` bit 2 = account disabled).
    pub fn ad_bit_and(attr: &str, mask: u32) -> Result<Self, DnError> {
        check_attr(attr)?;
        Ok(Self {
            text: format!("({attr}:{AD_BIT_AND}:={mask})"),
        })
    }

    fn list(op: char, filters: impl IntoIterator<Item = Self>) -> Result<Self, DnError> {
        let mut text = String::from("(");
        text.push(op);
        let mut n = 0;
        for f in filters {
            text.push_str(&f.text);
            n += 1;
        }
        if n == 0 {
            return Err(DnError::EmptyFilterList);
        }
        text.push(')');
        Ok(Self { text })
    }

    /// `(&f1f2...)`: all of `filters`. At least one is required (the empty `(&)`
    /// of RFC 4526 is not supported everywhere).
    pub fn and(filters: impl IntoIterator<Item = Self>) -> Result<Self, DnError> {
        Self::list('&', filters)
    }

    /// `(|f1f2...)`: any of `filters`. At least one is required.
    pub fn or(filters: impl IntoIterator<Item = Self>) -> Result<Self, DnError> {
        Self::list('|', filters)
    }

    /// `(!f)`. `!filter` (the [`std::ops::Not`] impl) does the same.
    #[must_use]
    // A named constructor like `and` and `or`; the `Not` impl delegates to it.
    #[allow(clippy::should_implement_trait)]
    pub fn not(filter: Self) -> Self {
        let mut text = String::with_capacity(filter.text.len() + 3);
        text.push_str("(!");
        text.push_str(&filter.text);
        text.push(')');
        Self { text }
    }

    /// The RFC 4515 string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::ops::Not for Filter {
    type Output = Self;

    fn not(self) -> Self {
        Filter::not(self)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Filter").field(&self.text).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items() {
        assert_eq!(Filter::eq("cn", "a*b").unwrap().as_str(), r"(cn=a\2ab)");
        assert_eq!(
            Filter::ge("pwdLastSet", "1").unwrap().as_str(),
            "(pwdLastSet>=1)"
        );
        assert_eq!(Filter::le("x", "(").unwrap().as_str(), r"(x<=\28)");
        assert_eq!(Filter::approx("sn", "\\").unwrap().as_str(), r"(sn~=\5c)");
        assert_eq!(Filter::present("mail").unwrap().as_str(), "(mail=*)");
        assert_eq!(
            Filter::eq("cn;lang-en", "").unwrap().as_str(),
            "(cn;lang-en=)"
        );
    }

    #[test]
    fn bytes() {
        let f = Filter::eq_bytes("objectGUID", &[0x00, 0x5c, 0xff, b'a', b'*']).unwrap();
        assert_eq!(f.as_str(), r"(objectGUID=\00\5c\ffa\2a)");
    }

    #[test]
    fn dn_values() {
        let dn = Dn::parse(r"CN=Smith\, John \#2,OU=x(y)*,DC=example").unwrap();
        let f = Filter::eq_dn("member", &dn).unwrap();
        assert_eq!(
            f.as_str(),
            r"(member=CN=Smith\5c, John \5c#2,OU=x\28y\29\2a,DC=example)"
        );
    }

    #[test]
    fn bad_attributes_are_rejected() {
        for bad in ["", "cn=x", "cn)(uid", "c n", "(cn", "cn*", "1.2", "cn;"] {
            let r = Filter::eq(bad, "x");
            if bad == "1.2" {
                assert!(r.is_ok());
                continue;
            }
            assert!(
                matches!(r, Err(DnError::InvalidAttribute { .. })),
                "{bad:?}"
            );
            assert!(Filter::present(bad).is_err(), "{bad:?}");
            assert!(Filter::ad_bit_and(bad, 1).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lists() {
        let a = Filter::eq("a", "1").unwrap();
        let b = Filter::eq("b", "2").unwrap();
        assert_eq!(
            Filter::or([a.clone(), b.clone()]).unwrap().as_str(),
            "(|(a=1)(b=2))"
        );
        assert_eq!(Filter::and([a]).unwrap().as_str(), "(&(a=1))");
        assert_eq!(Filter::and([]), Err(DnError::EmptyFilterList));
        assert_eq!(Filter::or(Vec::new()), Err(DnError::EmptyFilterList));
        assert_eq!(Filter::not(b.clone()).as_str(), "(!(b=2))");
        assert_eq!((!b).as_str(), "(!(b=2))");
    }
}
