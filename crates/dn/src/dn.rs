//! Distinguished names: parsing (RFC 4514 with RFC 2253 compatibility), display,
//! and a conservative local comparison.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::str::FromStr;

use crate::attr;
use crate::error::{DnError, SyntaxError};
use crate::escape::{Rules, write_escaped};

/// Longest DN string [`Dn::parse`] accepts, in bytes (32 KiB), far more than any
/// real directory name; it bounds the work and memory one call can cause.
pub const MAX_DN_LEN: usize = 32 * 1024;
/// Most RDNs a [`Dn`] may have.
pub const MAX_RDNS: usize = 256;
/// Most attribute-value pairs one multi-valued [`Rdn`] may have.
pub const MAX_AVAS_PER_RDN: usize = 32;

/// The value of one attribute-value pair of an RDN.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AttributeValue {
    /// A string value, unescaped.
    Text(String),
    /// A `#`-prefixed value: the BER encoding of the value, as raw bytes.
    Ber(Vec<u8>),
}

impl AttributeValue {
    /// The unescaped text, when this is a string value.
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            Self::Ber(_) => None,
        }
    }

    /// The raw BER bytes, when this is a `#`-prefixed value.
    #[must_use]
    pub fn as_ber(&self) -> Option<&[u8]> {
        match self {
            Self::Ber(b) => Some(b),
            Self::Text(_) => None,
        }
    }
}

/// Case-insensitive (Unicode lowercase) for text, byte-exact for BER; text never
/// equals BER.
impl PartialEq for AttributeValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Text(a), Self::Text(b)) => text_eq(a, b),
            (Self::Ber(a), Self::Ber(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for AttributeValue {}

impl Hash for AttributeValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Self::Text(s) => {
                state.write_u8(0);
                for c in fold(s) {
                    state.write_u32(u32::from(c));
                }
                state.write_u32(u32::MAX);
            }
            Self::Ber(b) => {
                state.write_u8(1);
                b.hash(state);
            }
        }
    }
}

/// Unicode-lowercase comparison. For two ASCII strings that is ASCII case folding
/// (a non-ASCII character such as U+212A KELVIN SIGN can lowercase to ASCII, so the
/// shortcut needs both sides ASCII).
fn text_eq(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        fold(a).eq(fold(b))
    }
}

fn fold(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}

/// One attribute-value pair (`type=value`) of an RDN.
#[derive(Debug, Clone)]
pub struct Ava {
    attr: String,
    value: AttributeValue,
}

impl Ava {
    /// The attribute type as written (`CN`, `cn`, `2.5.4.3`; an `OID.` prefix is
    /// dropped).
    #[must_use]
    pub fn attr(&self) -> &str {
        &self.attr
    }

    /// The value, unescaped.
    #[must_use]
    pub fn value(&self) -> &AttributeValue {
        &self.value
    }

    /// Whether this pair's type is `attr` (ASCII-case-insensitive; the RFC 4514
    /// short names, their long names and their OIDs are interchangeable).
    #[must_use]
    pub fn is_type(&self, attr: &str) -> bool {
        attr::type_eq(&self.attr, attr)
    }

    fn hash_one(&self) -> u64 {
        // A fixed-key hasher, so that the order-insensitive RDN hash is the same
        // for equal RDNs whatever hasher the caller uses.
        let mut h = DefaultHasher::new();
        attr::type_hash(&self.attr, &mut h);
        self.value.hash(&mut h);
        h.finish()
    }
}

impl PartialEq for Ava {
    fn eq(&self, other: &Self) -> bool {
        attr::type_eq(&self.attr, &other.attr) && self.value == other.value
    }
}

impl Eq for Ava {}

impl Hash for Ava {
    fn hash<H: Hasher>(&self, state: &mut H) {
        attr::type_hash(&self.attr, state);
        self.value.hash(state);
    }
}

/// A relative distinguished name: one or more attribute-value pairs joined by `+`.
///
/// Equality ignores the order of the pairs.
#[derive(Debug, Clone)]
pub struct Rdn {
    avas: Vec<Ava>,
}

impl Rdn {
    /// A single-valued RDN from an attribute type (`descr` or `numericoid`) and an
    /// unescaped value. No escaping is needed: [`Dn`]'s `Display` escapes.
    ///
    /// ```
    /// let rdn = credwheel_dn::Rdn::new("CN", "Smith, John #2")?;
    /// assert_eq!(rdn.to_string(), r"CN=Smith\, John \#2");
    /// # Ok::<(), credwheel_dn::DnError>(())
    /// ```
    pub fn new(attr: &str, value: &str) -> Result<Self, DnError> {
        attr::validate_type(attr).map_err(|pos| DnError::InvalidAttribute { pos })?;
        Ok(Self {
            avas: vec![Ava {
                attr: attr.to_owned(),
                value: AttributeValue::Text(value.to_owned()),
            }],
        })
    }

    /// Adds another attribute-value pair, making a multi-valued RDN. (Active
    /// Directory itself does not use multi-valued RDNs.)
    ///
    /// The type must differ from the types already in the RDN (compared as
    /// [`Ava::is_type`] does), else [`DnError::DuplicateAttributeType`].
    pub fn with(mut self, attr: &str, value: &str) -> Result<Self, DnError> {
        attr::validate_type(attr).map_err(|pos| DnError::InvalidAttribute { pos })?;
        if self.avas.iter().any(|a| a.is_type(attr)) {
            return Err(DnError::DuplicateAttributeType { pos: 0 });
        }
        if self.avas.len() >= MAX_AVAS_PER_RDN {
            return Err(DnError::TooManyAvas {
                pos: 0,
                max: MAX_AVAS_PER_RDN,
            });
        }
        self.avas.push(Ava {
            attr: attr.to_owned(),
            value: AttributeValue::Text(value.to_owned()),
        });
        Ok(self)
    }

    /// The attribute-value pairs, in the order written.
    pub fn avas(&self) -> impl ExactSizeIterator<Item = &Ava> + '_ {
        self.avas.iter()
    }

    /// Number of attribute-value pairs (1 unless multi-valued).
    #[must_use]
    pub fn len(&self) -> usize {
        self.avas.len()
    }

    /// Always `false`: an RDN has at least one pair.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.avas.is_empty()
    }

    /// The value of the first pair whose type is `attr` (see [`Ava::is_type`]).
    #[must_use]
    pub fn value_of(&self, attr: &str) -> Option<&AttributeValue> {
        self.avas.iter().find(|a| a.is_type(attr)).map(Ava::value)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, ava) in self.avas.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(&ava.attr)?;
            f.write_str("=")?;
            match &ava.value {
                AttributeValue::Text(s) => write_escaped(f, s, Rules::Ad)?,
                AttributeValue::Ber(b) => {
                    f.write_str("#")?;
                    for byte in b {
                        write!(f, "{byte:02X}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl PartialEq for Rdn {
    fn eq(&self, other: &Self) -> bool {
        if self.avas.len() != other.avas.len() {
            return false;
        }
        if self.avas.len() == 1 {
            return self.avas[0] == other.avas[0];
        }
        // Multiset comparison; MAX_AVAS_PER_RDN <= 64 lets a bitmask track matches.
        let mut used: u64 = 0;
        self.avas.iter().all(|a| {
            match other
                .avas
                .iter()
                .enumerate()
                .find(|(j, b)| used & (1u64 << j) == 0 && a == *b)
            {
                Some((j, _)) => {
                    used |= 1u64 << j;
                    true
                }
                None => false,
            }
        })
    }
}

impl Eq for Rdn {}

impl Hash for Rdn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Order-insensitive: a commutative combination of per-pair hashes.
        let combined = self
            .avas
            .iter()
            .fold(0u64, |acc, a| acc.wrapping_add(a.hash_one()));
        state.write_usize(self.avas.len());
        state.write_u64(combined);
    }
}

/// Writes the RDN as [`Dn`]'s `Display` would.
impl fmt::Display for Rdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f)
    }
}

/// A parsed distinguished name.
///
/// RDNs are kept in string order: the first is the entry's own RDN, the last is
/// nearest the root. Equality and hashing are local and conservative, not Active
/// Directory's matching: attribute types ASCII-case-insensitively (with
/// `CN`/`commonName`/`2.5.4.3` etc. interchangeable), text values
/// case-insensitively (Unicode lowercase, nothing else), multi-valued RDNs in any
/// order. AD matches more names than this (`Müller` and `Muller`, see KB938447), so
/// whether two DNs name the same object is the server's answer (compare
/// `objectGUID`s), not this type's; see the crate documentation. `Display` writes a normalized form in which values are escaped with
/// [`escape_value_ad`](crate::escape_value_ad)'s rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Dn {
    rdns: Vec<Rdn>,
}

impl Dn {
    /// The empty DN (zero RDNs; the root DSE).
    #[must_use]
    pub fn root() -> Self {
        Self::default()
    }

    /// Parses an RFC 4514 string. Also accepts the RFC 2253 section 4
    /// compatibility forms: spaces around `,` `+` `=`, `;` as RDN separator,
    /// quoted values and an `OID.` prefix. Never panics; see [`DnError`].
    ///
    /// ```
    /// use credwheel_dn::Dn;
    /// let dn = Dn::parse(r"CN=Smith\, John \#2,OU=Service Accounts,DC=example,DC=com")?;
    /// let cn = dn.rdns().next().and_then(|r| r.value_of("cn"));
    /// assert_eq!(cn.and_then(|v| v.as_text()), Some("Smith, John #2"));
    /// assert_eq!(dn, Dn::parse("cn=SMITH\\2C JOHN #2, ou=service accounts,dc=EXAMPLE,dc=com")?);
    /// # Ok::<(), credwheel_dn::DnError>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self, DnError> {
        if s.len() > MAX_DN_LEN {
            return Err(DnError::TooLong {
                len: s.len(),
                max: MAX_DN_LEN,
            });
        }
        Parser { s, pos: 0 }.dn()
    }

    /// The RDNs, from the entry's own RDN towards the root.
    pub fn rdns(&self) -> impl DoubleEndedIterator<Item = &Rdn> + ExactSizeIterator + '_ {
        self.rdns.iter()
    }

    /// The entry's own (leftmost) RDN; `None` for the empty DN.
    #[must_use]
    pub fn rdn(&self) -> Option<&Rdn> {
        self.rdns.first()
    }

    /// Number of RDNs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rdns.len()
    }

    /// Whether this is the empty DN.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }

    /// The DN without its leftmost RDN; `None` for the empty DN.
    ///
    /// ```
    /// let dn = credwheel_dn::Dn::parse("CN=a,OU=b,DC=c")?;
    /// assert_eq!(dn.parent().map(|p| p.to_string()).as_deref(), Some("OU=b,DC=c"));
    /// # Ok::<(), credwheel_dn::DnError>(())
    /// ```
    #[must_use]
    pub fn parent(&self) -> Option<Self> {
        (!self.rdns.is_empty()).then(|| Self {
            rdns: self.rdns[1..].to_vec(),
        })
    }

    /// The DN of a child entry: `rdn` followed by this DN.
    ///
    /// ```
    /// use credwheel_dn::{Dn, Rdn};
    /// let ou = Dn::parse("OU=Service Accounts,DC=example,DC=com")?;
    /// let dn = ou.child(Rdn::new("CN", "Smith, John #2")?)?;
    /// assert_eq!(dn.to_string(), r"CN=Smith\, John \#2,OU=Service Accounts,DC=example,DC=com");
    /// assert!(dn.is_descendant_of(&ou));
    /// # Ok::<(), credwheel_dn::DnError>(())
    /// ```
    pub fn child(&self, rdn: Rdn) -> Result<Self, DnError> {
        if self.rdns.len() >= MAX_RDNS {
            return Err(DnError::TooManyRdns { max: MAX_RDNS });
        }
        let mut rdns = Vec::with_capacity(self.rdns.len() + 1);
        rdns.push(rdn);
        rdns.extend_from_slice(&self.rdns);
        Ok(Self { rdns })
    }

    /// Whether this DN is strictly below `ancestor` (an entry is not its own
    /// descendant). Every non-empty DN is a descendant of the empty DN.
    #[must_use]
    pub fn is_descendant_of(&self, ancestor: &Self) -> bool {
        self.rdns.len() > ancestor.rdns.len() && self.ends_with(ancestor)
    }

    /// Whether this DN equals `base` or is below it (the entries a subtree search
    /// based at `base` can return).
    #[must_use]
    pub fn is_within(&self, base: &Self) -> bool {
        self.rdns.len() >= base.rdns.len() && self.ends_with(base)
    }

    fn ends_with(&self, suffix: &Self) -> bool {
        let skip = self.rdns.len() - suffix.rdns.len();
        self.rdns[skip..] == suffix.rdns[..]
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            rdn.write(f)?;
        }
        Ok(())
    }
}

impl FromStr for Dn {
    type Err = DnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// Characters that may follow a backslash as themselves (RFC 4514 `ESC` and
/// `special`).
fn is_escapable(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'"' | b'#' | b'+' | b',' | b';' | b'<' | b'=' | b'>' | b'\\'
    )
}

/// Collects the bytes of a string value and checks that hex-escaped bytes form
/// UTF-8. Raw characters come from a `&str`, so a UTF-8 sequence begun by a `\XX`
/// must be completed by `\XX` escapes; checking each run of consecutive escapes on
/// its own is therefore the same as checking the whole value, and gives the
/// position of the offending escape.
struct ValueBuf {
    out: Vec<u8>,
    /// Where the current run of hex escapes starts (in `out`, in the input).
    run: Option<(usize, usize)>,
    /// Length of `out` without unescaped trailing spaces.
    significant: usize,
}

impl ValueBuf {
    fn new() -> Self {
        Self {
            out: Vec::new(),
            run: None,
            significant: 0,
        }
    }

    fn end_run(&mut self) -> Result<(), DnError> {
        if let Some((out_start, in_start)) = self.run.take()
            && let Err(e) = std::str::from_utf8(&self.out[out_start..])
        {
            return Err(DnError::syntax(
                in_start + e.valid_up_to() * 3,
                SyntaxError::InvalidUtf8,
            ));
        }
        Ok(())
    }

    fn push_hex(&mut self, byte: u8, in_pos: usize) {
        if self.run.is_none() {
            self.run = Some((self.out.len(), in_pos));
        }
        self.out.push(byte);
        self.significant = self.out.len();
    }

    fn push_str(&mut self, s: &str, significant: bool) -> Result<(), DnError> {
        self.end_run()?;
        self.out.extend_from_slice(s.as_bytes());
        if significant {
            self.significant = self.out.len();
        }
        Ok(())
    }

    fn finish(mut self, value_pos: usize) -> Result<String, DnError> {
        self.end_run()?;
        self.out.truncate(self.significant);
        String::from_utf8(self.out)
            .map_err(|_| DnError::syntax(value_pos, SyntaxError::InvalidUtf8))
    }
}

impl Parser<'_> {
    fn bytes(&self) -> &[u8] {
        self.s.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn err(&self, reason: SyntaxError) -> DnError {
        DnError::syntax(self.pos, reason)
    }

    fn dn(mut self) -> Result<Dn, DnError> {
        let mut rdns = Vec::new();
        if self.s.is_empty() {
            return Ok(Dn { rdns });
        }
        loop {
            if rdns.len() >= MAX_RDNS {
                return Err(DnError::TooManyRdns { max: MAX_RDNS });
            }
            rdns.push(self.rdn()?);
            match self.peek() {
                None => return Ok(Dn { rdns }),
                Some(b',' | b';') => self.pos += 1,
                Some(_) => return Err(self.err(SyntaxError::ExpectedSeparator)),
            }
        }
    }

    fn rdn(&mut self) -> Result<Rdn, DnError> {
        let start = self.pos;
        let mut avas = Vec::with_capacity(1);
        loop {
            if avas.len() >= MAX_AVAS_PER_RDN {
                return Err(DnError::TooManyAvas {
                    pos: start,
                    max: MAX_AVAS_PER_RDN,
                });
            }
            let at = self.pos;
            let ava = self.ava()?;
            if avas.iter().any(|a: &Ava| attr::type_eq(&a.attr, &ava.attr)) {
                let pos = at + self.s[at..].len() - self.s[at..].trim_start_matches(' ').len();
                return Err(DnError::DuplicateAttributeType { pos });
            }
            avas.push(ava);
            if self.peek() == Some(b'+') {
                self.pos += 1;
            } else {
                return Ok(Rdn { avas });
            }
        }
    }

    fn ava(&mut self) -> Result<Ava, DnError> {
        self.skip_spaces();
        let attr = self.attr_type()?;
        self.skip_spaces();
        if self.peek() != Some(b'=') {
            return Err(self.err(SyntaxError::ExpectedEquals));
        }
        self.pos += 1;
        self.skip_spaces();
        let value = match self.peek() {
            Some(b'#') => AttributeValue::Ber(self.hexstring()?),
            Some(b'"') => AttributeValue::Text(self.quoted()?),
            _ => AttributeValue::Text(self.string()?),
        };
        Ok(Ava { attr, value })
    }

    fn attr_type(&mut self) -> Result<String, DnError> {
        let rest = &self.bytes()[self.pos..];
        // RFC 2253 section 4: an OID may be prefixed by "oid." or "OID.".
        let skip = if rest.len() > 4
            && rest[..4].eq_ignore_ascii_case(b"oid.")
            && rest[4].is_ascii_digit()
        {
            4
        } else {
            0
        };
        let body = &rest[skip..];
        let len = match body.first() {
            Some(b) if b.is_ascii_digit() => attr::numericoid_len(body).map_err(|off| {
                DnError::syntax(self.pos + skip + off, SyntaxError::InvalidAttributeType)
            })?,
            Some(b) if b.is_ascii_alphabetic() => attr::descr_len(body),
            _ => return Err(self.err(SyntaxError::ExpectedAttributeType)),
        };
        let start = self.pos + skip;
        self.pos = start + len;
        // A type must end at '=' or a space; anything else (e.g. "c_n=", "cn;x=")
        // is not a descr.
        match self.peek() {
            Some(b'=' | b' ') => Ok(self.s[start..self.pos].to_owned()),
            Some(_) => Err(self.err(SyntaxError::InvalidAttributeType)),
            None => Err(self.err(SyntaxError::ExpectedEquals)),
        }
    }

    /// After a `#hex` or quoted value: optional spaces, then a separator or the end.
    fn value_end(&mut self) -> Result<(), DnError> {
        self.skip_spaces();
        match self.peek() {
            None | Some(b',' | b';' | b'+') => Ok(()),
            Some(_) => Err(self.err(SyntaxError::ExpectedSeparator)),
        }
    }

    fn hexstring(&mut self) -> Result<Vec<u8>, DnError> {
        let start = self.pos;
        self.pos += 1; // '#'
        let digits = self.bytes()[self.pos..]
            .iter()
            .take_while(|b| is_hex(**b))
            .count();
        if digits == 0 || digits % 2 != 0 {
            return Err(DnError::syntax(start, SyntaxError::InvalidHexString));
        }
        let hex = &self.bytes()[self.pos..self.pos + digits];
        let bytes = hex
            .chunks_exact(2)
            .map(|p| hex_val(p[0]) << 4 | hex_val(p[1]))
            .collect();
        self.pos += digits;
        self.value_end()?;
        Ok(bytes)
    }

    /// Handles a backslash at `self.pos`; pushes what it stands for.
    fn escape(&mut self, buf: &mut ValueBuf) -> Result<(), DnError> {
        let at = self.pos;
        let b = self.bytes();
        match (b.get(at + 1).copied(), b.get(at + 2).copied()) {
            (Some(h), Some(l)) if is_hex(h) && is_hex(l) => {
                buf.push_hex(hex_val(h) << 4 | hex_val(l), at);
                self.pos += 3;
            }
            (Some(b'/'), _) => return Err(DnError::syntax(at, SyntaxError::AdsiSlashEscape)),
            (Some(c), _) if is_escapable(c) => {
                // `c` is ASCII, so this slice is on char boundaries.
                buf.push_str(&self.s[at + 1..at + 2], true)?;
                self.pos += 2;
            }
            _ => return Err(DnError::syntax(at, SyntaxError::InvalidEscape)),
        }
        Ok(())
    }

    fn string(&mut self) -> Result<String, DnError> {
        let value_pos = self.pos;
        let mut buf = ValueBuf::new();
        while let Some(c) = self.s[self.pos..].chars().next() {
            match c {
                ',' | ';' | '+' => break,
                '\\' => self.escape(&mut buf)?,
                '"' | '<' | '>' | '\0' => {
                    return Err(self.err(SyntaxError::UnescapedCharacter(c)));
                }
                _ => {
                    let len = c.len_utf8();
                    buf.push_str(&self.s[self.pos..self.pos + len], c != ' ')?;
                    self.pos += len;
                }
            }
        }
        buf.finish(value_pos)
    }

    fn quoted(&mut self) -> Result<String, DnError> {
        let open = self.pos;
        self.pos += 1; // '"'
        let mut buf = ValueBuf::new();
        loop {
            let Some(c) = self.s[self.pos..].chars().next() else {
                return Err(DnError::syntax(open, SyntaxError::UnterminatedQuote));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    break;
                }
                '\\' => self.escape(&mut buf)?,
                '\0' => return Err(self.err(SyntaxError::UnescapedCharacter(c))),
                _ => {
                    let len = c.len_utf8();
                    buf.push_str(&self.s[self.pos..self.pos + len], true)?;
                    self.pos += len;
                }
            }
        }
        let value = buf.finish(open + 1)?;
        self.value_end()?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(dn: &Dn, i: usize, j: usize) -> String {
        let ava = dn.rdns[i].avas[j].value();
        ava.as_text().unwrap_or("<ber>").to_owned()
    }

    #[test]
    fn basic() {
        let dn = Dn::parse("CN=a,OU=b,DC=c").unwrap();
        assert_eq!(dn.len(), 3);
        assert_eq!(text(&dn, 0, 0), "a");
        assert_eq!(dn.to_string(), "CN=a,OU=b,DC=c");
    }

    #[test]
    fn spaces_are_compat() {
        let dn = Dn::parse("  cn = a b  ,  ou = c ;dc=d ").unwrap();
        assert_eq!(dn.to_string(), "cn=a b,ou=c,dc=d");
        let dn = Dn::parse(r"cn=\ a\ \ ").unwrap();
        assert_eq!(text(&dn, 0, 0), " a  ");
    }

    #[test]
    fn quoted_and_oid_prefix() {
        let dn = Dn::parse(r#"OID.2.5.4.3 = "a,b+c;<d>\"" , dc=x"#).unwrap();
        assert_eq!(dn.rdns[0].avas[0].attr(), "2.5.4.3");
        assert_eq!(text(&dn, 0, 0), "a,b+c;<d>\"");
        assert_eq!(dn, Dn::parse(r#"cn=a\,b\+c\;\<d\>\",dc=x"#).unwrap());
    }

    #[test]
    fn errors_have_positions() {
        let cases: &[(&str, usize, SyntaxError)] = &[
            ("cn=a,", 5, SyntaxError::ExpectedAttributeType),
            ("cn", 2, SyntaxError::ExpectedEquals),
            ("cn a", 3, SyntaxError::ExpectedEquals),
            ("c_n=a", 1, SyntaxError::InvalidAttributeType),
            ("2.5.=a", 4, SyntaxError::InvalidAttributeType),
            ("2=a", 1, SyntaxError::InvalidAttributeType),
            ("01.2=a", 0, SyntaxError::InvalidAttributeType),
            (r"cn=a\x", 4, SyntaxError::InvalidEscape),
            (r"cn=a\", 4, SyntaxError::InvalidEscape),
            (r"cn=a\4", 4, SyntaxError::InvalidEscape),
            (r"cn=ab\C3\28", 5, SyntaxError::InvalidUtf8),
            (r"cn=\C3", 3, SyntaxError::InvalidUtf8),
            ("cn=a\"b", 4, SyntaxError::UnescapedCharacter('"')),
            ("cn=a<", 4, SyntaxError::UnescapedCharacter('<')),
            ("cn=a\0", 4, SyntaxError::UnescapedCharacter('\0')),
            ("cn=#", 3, SyntaxError::InvalidHexString),
            ("cn=#123", 3, SyntaxError::InvalidHexString),
            ("cn=#12x", 6, SyntaxError::ExpectedSeparator),
            ("cn=\"ab", 3, SyntaxError::UnterminatedQuote),
            ("cn=\"ab\"c", 7, SyntaxError::ExpectedSeparator),
            ("=a", 0, SyntaxError::ExpectedAttributeType),
            (" ", 1, SyntaxError::ExpectedAttributeType),
        ];
        for (input, pos, reason) in cases {
            let err = Dn::parse(input).unwrap_err();
            assert_eq!(
                err,
                DnError::Syntax {
                    pos: *pos,
                    reason: *reason
                },
                "{input:?}"
            );
        }
    }

    #[test]
    fn duplicate_types_in_one_rdn_are_rejected() {
        for (input, pos) in [
            ("cn=x+cn=x", 5),
            ("cn=x+CN=y,dc=a", 5),
            ("cn=x+ou=z+commonName=y", 10),
            ("cn=x + 2.5.4.3=y", 7),
            ("2.5.4.3=x+OID.2.5.4.3=y", 10),
            ("dc=a,uid=x+userid=y", 11),
            ("1.2.3=#00+1.2.3=#01", 10),
        ] {
            assert_eq!(
                Dn::parse(input),
                Err(DnError::DuplicateAttributeType { pos }),
                "{input:?}"
            );
        }
        // Different types, and the same type in different RDNs, are fine.
        assert!(Dn::parse("cn=x+uid=x,cn=x").is_ok());
        assert_eq!(
            Rdn::new("cn", "a")
                .and_then(|r| r.with("CommonName", "b"))
                .err(),
            Some(DnError::DuplicateAttributeType { pos: 0 })
        );
        assert!(Rdn::new("cn", "a").and_then(|r| r.with("uid", "a")).is_ok());
    }

    #[test]
    fn adsi_slash_escape_is_rejected_with_its_reason() {
        let err = Dn::parse(r"CN=a\/b,DC=x").unwrap_err();
        assert_eq!(
            err,
            DnError::Syntax {
                pos: 4,
                reason: SyntaxError::AdsiSlashEscape
            }
        );
        assert!(err.to_string().contains("ADSI"), "{err}");
        // The LDAP forms of the same value.
        for ok in ["CN=a/b,DC=x", r"CN=a\2Fb,DC=x"] {
            let dn = Dn::parse(ok).unwrap();
            let v = dn
                .rdn()
                .and_then(|r| r.value_of("cn"))
                .and_then(|v| v.as_text());
            assert_eq!(v, Some("a/b"));
        }
    }

    #[test]
    fn limits() {
        let long = "a".repeat(MAX_DN_LEN + 1);
        assert!(matches!(
            Dn::parse(&long),
            Err(DnError::TooLong { len, .. }) if len == MAX_DN_LEN + 1
        ));
        let many = vec!["dc=a"; MAX_RDNS + 1].join(",");
        assert_eq!(
            Dn::parse(&many),
            Err(DnError::TooManyRdns { max: MAX_RDNS })
        );
        let ok = vec!["dc=a"; MAX_RDNS].join(",");
        assert_eq!(Dn::parse(&ok).map(|d| d.len()), Ok(MAX_RDNS));
        let wide = (0..=MAX_AVAS_PER_RDN)
            .map(|i| format!("x{i}=a"))
            .collect::<Vec<_>>()
            .join("+");
        assert_eq!(
            Dn::parse(&wide),
            Err(DnError::TooManyAvas {
                pos: 0,
                max: MAX_AVAS_PER_RDN
            })
        );
    }

    #[test]
    fn multivalued_order_insensitive() {
        let a = Dn::parse("cn=x+uid=y+ou=z,dc=a").unwrap();
        let b = Dn::parse("OU=Z+CN=X+UID=Y,DC=A").unwrap();
        let c = Dn::parse("cn=x+uid=y+ou=y,dc=a").unwrap();
        let d = Dn::parse("cn=x+uid=x+ou=z,dc=a").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        let hash = |dn: &Dn| {
            let mut h = DefaultHasher::new();
            dn.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&a), hash(&b));
    }

    #[test]
    fn unicode_case_folding() {
        let hash = |dn: &Dn| {
            let mut h = DefaultHasher::new();
            dn.hash(&mut h);
            h.finish()
        };
        // U+212A KELVIN SIGN lowercases to ASCII 'k': the ASCII shortcut must not
        // hide that.
        let kelvin = Dn::parse("cn=\u{212A}elvin").unwrap();
        let ascii = Dn::parse("CN=KELVIN").unwrap();
        assert_eq!(kelvin, ascii);
        assert_eq!(hash(&kelvin), hash(&ascii));
        assert_eq!(
            Dn::parse("cn=ÄÖÜ Ωμέγα").unwrap(),
            Dn::parse("CN=äöü ΩΜΈΓΑ").unwrap()
        );
        assert_ne!(Dn::parse("cn=a").unwrap(), Dn::parse("cn=á").unwrap());
    }

    /// AD names `Müller` and `Muller` (and `Meißner` and `Meissner`) one object
    /// (Microsoft KB938447); this crate's local comparison does not claim that, so
    /// it can never wrongly merge two names AD keeps apart on these grounds.
    #[test]
    fn no_claim_of_ad_collation_equality() {
        let pairs = [
            ("CN=Müller,DC=x", "CN=Muller,DC=x"),
            ("CN=Meißner,DC=x", "CN=Meissner,DC=x"),
            ("CN=Ｍuller,DC=x", "CN=Muller,DC=x"),
        ];
        for (a, b) in pairs {
            assert_ne!(Dn::parse(a).unwrap(), Dn::parse(b).unwrap(), "{a} vs {b}");
        }
    }

    #[test]
    fn ber_values() {
        let dn = Dn::parse("1.3.6.1.4.1.1466.0=#04024869,dc=x").unwrap();
        assert_eq!(
            dn.rdns[0].avas[0].value().as_ber(),
            Some(&[0x04, 0x02, 0x48, 0x69][..])
        );
        assert_eq!(dn.to_string(), "1.3.6.1.4.1.1466.0=#04024869,dc=x");
        assert_eq!(dn, Dn::parse("1.3.6.1.4.1.1466.0=#04024869,dc=X").unwrap());
        assert_ne!(dn, Dn::parse("1.3.6.1.4.1.1466.0=Hi,dc=x").unwrap());
    }

    #[test]
    fn ancestry() {
        let base = Dn::parse("DC=example,DC=com").unwrap();
        let ou = Dn::parse("ou=Svc,dc=Example,dc=COM").unwrap();
        let user = Dn::parse("cn=u,ou=svc,dc=example,dc=com").unwrap();
        assert!(user.is_descendant_of(&ou));
        assert!(user.is_descendant_of(&base));
        assert!(!ou.is_descendant_of(&ou));
        assert!(ou.is_within(&ou));
        assert!(!base.is_descendant_of(&user));
        assert!(user.is_descendant_of(&Dn::root()));
        assert!(!Dn::root().is_descendant_of(&Dn::root()));
        assert_eq!(user.parent(), Some(ou.clone()));
        assert_eq!(Dn::root().parent(), None);
        let other = Dn::parse("cn=u,ou=svc2,dc=example,dc=com").unwrap();
        assert!(!other.is_descendant_of(&ou));
    }
}
