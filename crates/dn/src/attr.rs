//! Attribute types and descriptions (RFC 4512 section 1.4 and 2.5).

use std::hash::Hasher;

/// The form of an attribute type used for comparison: the OID for the short names
/// and long names of the types RFC 4514 section 3 requires parsers to recognise
/// (RFC 4519), otherwise the type itself (compared ASCII-case-insensitively).
pub(crate) fn canonical(attr: &str) -> &str {
    const LONGEST: usize = "organizationalunitname".len();
    if attr.len() > LONGEST || attr.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return attr;
    }
    let mut buf = [0u8; LONGEST];
    let lower = &mut buf[..attr.len()];
    lower.copy_from_slice(attr.as_bytes());
    lower.make_ascii_lowercase();
    match &*lower {
        b"cn" | b"commonname" => "2.5.4.3",
        b"l" | b"localityname" => "2.5.4.7",
        b"st" | b"stateorprovincename" => "2.5.4.8",
        b"o" | b"organizationname" => "2.5.4.10",
        b"ou" | b"organizationalunitname" => "2.5.4.11",
        b"c" | b"countryname" => "2.5.4.6",
        b"street" | b"streetaddress" => "2.5.4.9",
        b"dc" | b"domaincomponent" => "0.9.2342.19200300.100.1.25",
        b"uid" | b"userid" => "0.9.2342.19200300.100.1.1",
        _ => attr,
    }
}

pub(crate) fn type_eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || canonical(a).eq_ignore_ascii_case(canonical(b))
}

pub(crate) fn type_hash<H: Hasher>(attr: &str, state: &mut H) {
    for b in canonical(attr).bytes() {
        state.write_u8(b.to_ascii_lowercase());
    }
    state.write_u8(0xFF);
}

/// Length of the `descr` (`ALPHA *(ALPHA / DIGIT / "-")`) at the start of `b`.
pub(crate) fn descr_len(b: &[u8]) -> usize {
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() => {
            1 + b[1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-')
                .count()
        }
        _ => 0,
    }
}

/// Parses a `numericoid` (`number 1*( "." number )`, no leading zeros) at the start
/// of `b`. Returns its length, or the offset of the problem.
pub(crate) fn numericoid_len(b: &[u8]) -> Result<usize, usize> {
    let mut i = 0;
    let mut numbers = 0;
    loop {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(i);
        }
        if b[start] == b'0' && i - start > 1 {
            return Err(start);
        }
        numbers += 1;
        if i < b.len() && b[i] == b'.' {
            i += 1;
        } else {
            break;
        }
    }
    if numbers < 2 { Err(i) } else { Ok(i) }
}

/// Checks an attribute type (`descr / numericoid`); returns the offset of the first
/// problem.
pub(crate) fn validate_type(attr: &str) -> Result<(), usize> {
    let b = attr.as_bytes();
    let n = if b.first().is_some_and(u8::is_ascii_digit) {
        numericoid_len(b)?
    } else {
        descr_len(b)
    };
    if n == 0 || n != b.len() {
        return Err(n);
    }
    Ok(())
}

/// Checks an attribute description (`attributetype *( ";" option )`, option =
/// `1*keychar`); returns the offset of the first problem.
pub(crate) fn validate_description(attr: &str) -> Result<(), usize> {
    let (ty, mut rest, mut off) = match attr.find(';') {
        Some(i) => (&attr[..i], &attr[i..], i),
        None => (attr, "", attr.len()),
    };
    validate_type(ty)?;
    while let Some(r) = rest.strip_prefix(';') {
        off += 1;
        let n = r
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'-')
            .count();
        if n == 0 {
            return Err(off);
        }
        rest = &r[n..];
        off += n;
    }
    if rest.is_empty() { Ok(()) } else { Err(off) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert!(validate_type("cn").is_ok());
        assert!(validate_type("sAMAccountName").is_ok());
        assert!(validate_type("x-y-1").is_ok());
        assert!(validate_type("2.5.4.3").is_ok());
        assert!(validate_type("0.9.2342.19200300.100.1.25").is_ok());
        assert_eq!(validate_type(""), Err(0));
        assert_eq!(validate_type("1cn"), Err(1));
        assert_eq!(validate_type("2.5.04.3"), Err(4));
        assert_eq!(validate_type("2"), Err(1));
        assert_eq!(validate_type("2.5."), Err(4));
        assert_eq!(validate_type("c n"), Err(1));
        assert_eq!(validate_type("-cn"), Err(0));
    }

    #[test]
    fn descriptions() {
        assert!(validate_description("cn;lang-en").is_ok());
        assert!(validate_description("cn;binary;x").is_ok());
        assert_eq!(validate_description("cn;"), Err(3));
        assert_eq!(validate_description("cn;a b"), Err(4));
        assert_eq!(validate_description("cn=*"), Err(2));
        assert_eq!(validate_description("cn)(x"), Err(2));
    }

    #[test]
    fn aliases() {
        assert!(type_eq("CN", "2.5.4.3"));
        assert!(type_eq("commonName", "cn"));
        assert!(type_eq("DC", "0.9.2342.19200300.100.1.25"));
        assert!(type_eq("sAMAccountName", "samaccountname"));
        assert!(!type_eq("cn", "ou"));
        assert!(!type_eq("cn", "2.5.4.11"));
    }
}
