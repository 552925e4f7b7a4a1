//! Escaping of DN attribute values (RFC 4514, and Active Directory's stricter
//! rules) and of filter assertion values (RFC 4515).

use std::borrow::Cow;
use std::fmt;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Which DN escaping rules to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rules {
    /// Exactly what RFC 4514 section 2.4 requires.
    Rfc4514,
    /// RFC 4514 plus Active Directory's reserved characters.
    Ad,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Keep,
    /// `\` followed by the character itself (only for RFC 4514 `special` and `\`).
    Backslash,
    /// `\XX` (only ever used for ASCII characters).
    Hex,
}

/// What to do with the ASCII byte `b` (every character either rule set escapes is
/// ASCII, so non-ASCII bytes are always kept).
#[inline]
const fn action(b: u8, first: bool, last: bool, rules: Rules) -> Action {
    match b {
        // RFC 4514 2.4: '"', '+', ',', ';', '<', '>', '\' anywhere.
        b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\' => Action::Backslash,
        // RFC 4514 2.4: the null character, as a hex pair (it is not a `special`).
        0 => Action::Hex,
        // RFC 4514 2.4: a space at the beginning or the end.
        b' ' if first || last => Action::Backslash,
        // RFC 4514 2.4: '#' at the beginning; AD: '#' anywhere (TechNet "Active
        // Directory: Characters to Escape").
        b'#' if first || matches!(rules, Rules::Ad) => Action::Backslash,
        // AD: '=' (Microsoft "Distinguished Names", TechNet list).
        b'=' if matches!(rules, Rules::Ad) => Action::Backslash,
        // AD: '/' is reserved (Microsoft "Distinguished Names"); `\/` is not an RFC
        // 4514 pair, so the hex form is the one both AD and RFC parsers accept.
        b'/' if matches!(rules, Rules::Ad) => Action::Hex,
        // AD: LF, CR and other non-printable characters in hex (Microsoft
        // "Distinguished Names": `CN=Before\0DAfter`).
        0x01..=0x1F | 0x7F if matches!(rules, Rules::Ad) => Action::Hex,
        _ => Action::Keep,
    }
}

/// Bytes escaped wherever they appear, per rule set (position-dependent cases --
/// leading space or `#`, trailing space -- are checked separately).
const fn anywhere_table(rules: Rules) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        // `b` < 256, so the cast is lossless; the position flags are unset, so only
        // position-independent rules answer.
        t[b] = !matches!(action(b as u8, false, false, rules), Action::Keep);
        b += 1;
    }
    t
}

static ANYWHERE_RFC: [bool; 256] = anywhere_table(Rules::Rfc4514);
/// The AD table also marks the lead bytes of the characters [`ad_hidden_len`]
/// finds (0xC2, 0xD8, 0xE2), so one pass over the value decides.
static ANYWHERE_AD: [bool; 256] = {
    let mut t = anywhere_table(Rules::Ad);
    t[0xC2] = true;
    t[0xD8] = true;
    t[0xE2] = true;
    t
};

/// Under the AD rules, the length of the UTF-8 sequence at `b[i..]` when it is a
/// character that can disguise how a DN reads: a C1 control (U+0080..U+009F) or a
/// bidirectional formatting character (U+061C, U+200E, U+200F, U+202A..U+202E,
/// U+2066..U+2069). Such characters are written as `\XX` hex pairs.
#[inline]
fn ad_hidden_len(b: &[u8], i: usize) -> usize {
    match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
        // U+0080..U+009F: C2 80..C2 9F.
        (0xC2, Some(0x80..=0x9F), _) => 2,
        // U+061C ARABIC LETTER MARK: D8 9C.
        (0xD8, Some(0x9C), _) => 2,
        // U+200E, U+200F: E2 80 8E/8F; U+202A..U+202E: E2 80 AA..AE.
        (0xE2, Some(0x80), Some(0x8E | 0x8F | 0xAA..=0xAE)) => 3,
        // U+2066..U+2069: E2 81 A6..A9.
        (0xE2, Some(0x81), Some(0xA6..=0xA9)) => 3,
        _ => 0,
    }
}

fn needs_escaping(s: &str, rules: Rules) -> bool {
    let b = s.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    let table = match rules {
        Rules::Rfc4514 => &ANYWHERE_RFC,
        Rules::Ad => &ANYWHERE_AD,
    };
    first == b' '
        || first == b'#'
        || last == b' '
        || b.iter()
            .enumerate()
            .any(|(i, &c)| table[usize::from(c)] && (c < 0x80 || ad_hidden_len(b, i) > 0))
}

/// Writes `s` escaped under `rules`. Runs of characters that need no escaping are
/// written as slices.
pub(crate) fn write_escaped<W: fmt::Write + ?Sized>(
    w: &mut W,
    s: &str,
    rules: Rules,
) -> fmt::Result {
    let bytes = s.as_bytes();
    let last = s.len().wrapping_sub(1);
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if rules == Rules::Ad && b >= 0x80 {
            // Only lead bytes start a hidden character, so `i` is a char boundary
            // when `n > 0`.
            let n = ad_hidden_len(bytes, i);
            if n > 0 {
                w.write_str(&s[start..i])?;
                for &h in &bytes[i..i + n] {
                    w.write_char('\\')?;
                    w.write_char(char::from(HEX_UPPER[usize::from(h >> 4)]))?;
                    w.write_char(char::from(HEX_UPPER[usize::from(h & 0xF)]))?;
                }
                i += n;
                start = i;
                continue;
            }
        }
        // Other bytes of multi-byte characters are >= 0x80 and kept, so `i` is a
        // char boundary whenever the action is not `Keep`. (A trailing space is the
        // last byte; the last byte of a multi-byte character is never a space.)
        let act = action(b, i == 0, i == last, rules);
        i += 1;
        if act == Action::Keep {
            continue;
        }
        let i = i - 1;
        w.write_str(&s[start..i])?;
        w.write_char('\\')?;
        match act {
            Action::Backslash => w.write_char(char::from(b))?,
            _ => {
                w.write_char(char::from(HEX_UPPER[usize::from(b >> 4)]))?;
                w.write_char(char::from(HEX_UPPER[usize::from(b & 0xF)]))?;
            }
        }
        start = i + 1;
    }
    w.write_str(&s[start..])
}

fn escape_with(s: &str, rules: Rules) -> Cow<'_, str> {
    if !needs_escaping(s, rules) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    // Writing to a String cannot fail.
    let _ = write_escaped(&mut out, s, rules);
    Cow::Owned(out)
}

/// Escapes an attribute value for use in a DN string, exactly as RFC 4514 section
/// 2.4 requires: a leading space or `#`, a trailing space, any of `"` `+` `,` `;`
/// `<` `>` `\`, and NUL. Borrows the input when nothing needs escaping.
///
/// Special characters are escaped as `\` followed by the character; NUL as `\00`.
/// Other characters (including `=`, CR and LF, and all non-ASCII) are left as they
/// are, which RFC 4514 allows. For DNs sent to Active Directory use
/// [`escape_value_ad`].
///
/// ```
/// use credwheel_dn::escape_value;
/// assert_eq!(escape_value("Smith, John"), r"Smith\, John");
/// assert_eq!(escape_value("#1 "), r"\#1\ ");
/// assert!(matches!(escape_value("plain"), std::borrow::Cow::Borrowed(_)));
/// ```
#[must_use]
pub fn escape_value(value: &str) -> Cow<'_, str> {
    escape_with(value, Rules::Rfc4514)
}

/// Like [`escape_value`], appending to `out`.
pub fn escape_value_into(value: &str, out: &mut String) {
    let _ = write_escaped(out, value, Rules::Rfc4514);
}

/// Escapes an attribute value for a DN sent to Active Directory: everything
/// [`escape_value`] escapes, plus `#` anywhere, `=`, `/`, the control characters
/// U+0001..U+001F, U+007F and U+0080..U+009F (CR and LF among them), and the
/// bidirectional formatting characters U+061C, U+200E, U+200F, U+202A..U+202E and
/// U+2066..U+2069 (so that a DN shown to an operator cannot be made to read
/// differently from what it is). Borrows the input when nothing needs escaping.
///
/// `#` and `=` are escaped as `\#` and `\=`; `/`, control and bidirectional
/// formatting characters as `\XX` hex pairs of their UTF-8 bytes (`\2F`, `\0D`,
/// `\E2\80\AE`), the forms both AD and RFC 4514 parsers accept. The output is
/// always a valid RFC 4514 value. See the crate documentation for the source of
/// each rule.
///
/// ```
/// use credwheel_dn::escape_value_ad;
/// assert_eq!(escape_value_ad("Smith, John #2"), r"Smith\, John \#2");
/// assert_eq!(escape_value_ad("a=b/c"), r"a\=b\2Fc");
/// assert_eq!(escape_value_ad("Before\rAfter"), r"Before\0DAfter");
/// assert_eq!(escape_value_ad("evil\u{202E}txt.exe"), r"evil\E2\80\AEtxt.exe");
/// ```
#[must_use]
pub fn escape_value_ad(value: &str) -> Cow<'_, str> {
    escape_with(value, Rules::Ad)
}

/// Like [`escape_value_ad`], appending to `out`.
pub fn escape_value_ad_into(value: &str, out: &mut String) {
    let _ = write_escaped(out, value, Rules::Ad);
}

#[inline]
fn filter_special(b: u8) -> bool {
    matches!(b, b'*' | b'(' | b')' | b'\\' | 0)
}

fn push_hex_lower(out: &mut String, b: u8) {
    out.push('\\');
    out.push(char::from(HEX_LOWER[usize::from(b >> 4)]));
    out.push(char::from(HEX_LOWER[usize::from(b & 0xF)]));
}

/// Escapes an assertion value for an RFC 4515 search filter: `*` `(` `)` `\` and
/// NUL become `\2a` `\28` `\29` `\5c` `\00`. Everything else, including non-ASCII
/// UTF-8, is valid in a filter as it is. Borrows the input when nothing needs
/// escaping.
///
/// Prefer the typed [`Filter`](crate::Filter) builder, which calls this for you.
///
/// ```
/// use credwheel_dn::escape_filter;
/// assert_eq!(escape_filter("*)(cn=*"), r"\2a\29\28cn=\2a");
/// ```
#[must_use]
pub fn escape_filter(value: &str) -> Cow<'_, str> {
    if !value.bytes().any(filter_special) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    escape_filter_into(value, &mut out);
    Cow::Owned(out)
}

/// Like [`escape_filter`], appending to `out`.
pub fn escape_filter_into(value: &str, out: &mut String) {
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        if filter_special(b) {
            // `b` is ASCII, so `i` and `i + 1` are char boundaries.
            out.push_str(&value[start..i]);
            push_hex_lower(out, b);
            start = i + 1;
        }
    }
    out.push_str(&value[start..]);
}

/// Escapes a binary assertion value (e.g. an `objectGUID` or `objectSid`) for an
/// RFC 4515 filter: bytes that are not part of valid UTF-8 are written as `\XX`,
/// valid UTF-8 is escaped as by [`escape_filter`]. Borrows when the input is UTF-8
/// that needs no escaping.
///
/// ```
/// use credwheel_dn::escape_filter_bytes;
/// assert_eq!(escape_filter_bytes(&[0x00, 0x41, 0xff, 0x2a]), r"\00A\ff\2a");
/// ```
#[must_use]
pub fn escape_filter_bytes(value: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(value) {
        return escape_filter(s);
    }
    let mut out = String::with_capacity(value.len() * 3);
    for chunk in value.utf8_chunks() {
        escape_filter_into(chunk.valid(), &mut out);
        for &b in chunk.invalid() {
            push_hex_lower(&mut out, b);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_when_clean() {
        assert!(matches!(escape_value("abc def"), Cow::Borrowed(_)));
        assert!(matches!(escape_value_ad("abc def"), Cow::Borrowed(_)));
        assert!(matches!(escape_filter("abc=def"), Cow::Borrowed(_)));
        assert!(matches!(escape_filter_bytes(b"abc"), Cow::Borrowed(_)));
        assert!(matches!(escape_value(""), Cow::Borrowed(_)));
    }

    #[test]
    fn fast_check_matches_the_escaper() {
        for rules in [Rules::Rfc4514, Rules::Ad] {
            for b in 0u8..=0x7F {
                let c = char::from(b);
                for s in [
                    format!("{c}"),
                    format!("{c}x"),
                    format!("x{c}x"),
                    format!("x{c}"),
                ] {
                    let mut out = String::new();
                    write_escaped(&mut out, &s, rules).unwrap();
                    assert_eq!(needs_escaping(&s, rules), out != s, "{s:?} {rules:?}");
                }
            }
        }
    }

    #[test]
    fn spaces() {
        assert_eq!(escape_value(" "), r"\ ");
        assert_eq!(escape_value("  "), r"\ \ ");
        assert_eq!(escape_value("   "), r"\  \ ");
        assert_eq!(escape_value(" a b "), r"\ a b\ ");
    }

    #[test]
    fn rfc_rules_leave_ad_extras_alone() {
        assert_eq!(escape_value("a#b=c/d\r"), "a#b=c/d\r");
        assert_eq!(escape_value_ad("a#b=c/d\r"), r"a\#b\=c\2Fd\0D");
        assert_eq!(escape_value("\0"), r"\00");
        assert_eq!(escape_value_ad("\u{7f}\n"), r"\7F\0A");
    }

    #[test]
    fn ad_escapes_c1_controls_and_bidi_formatting() {
        for c in (0x80..=0x9F)
            .chain([0x061C, 0x200E, 0x200F])
            .chain(0x202A..=0x202E)
            .chain(0x2066..=0x2069)
            .filter_map(char::from_u32)
        {
            let s = format!("a{c}b");
            let mut hex = String::new();
            for b in c.to_string().bytes() {
                hex.push_str(&format!("\\{b:02X}"));
            }
            assert_eq!(
                escape_value_ad(&s),
                format!("a{hex}b"),
                "U+{:04X}",
                c as u32
            );
            assert_eq!(
                escape_value(&s),
                s,
                "RFC 4514 leaves U+{:04X} alone",
                c as u32
            );
        }
        // Neighbours stay as they are.
        for c in [
            '\u{A0}', '\u{200D}', '\u{2029}', '\u{202F}', '\u{2065}', '\u{206A}', 'é',
        ] {
            let s = format!("a{c}b");
            assert!(
                matches!(escape_value_ad(&s), Cow::Borrowed(_)),
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(escape_value_ad("\u{202E}#=\u{85}"), r"\E2\80\AE\#\=\C2\85");
    }

    #[test]
    fn into_variants_append() {
        let mut s = String::from("cn=");
        escape_value_into("a,b", &mut s);
        s.push_str(",ou=");
        escape_value_ad_into("x#", &mut s);
        s.push('|');
        escape_filter_into("(x)", &mut s);
        assert_eq!(s, r"cn=a\,b,ou=x\#|\28x\29");
    }
}
