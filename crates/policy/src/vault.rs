//! A focused parser for the subset of HCL (version 1) that Vault password policies use.
//!
//! Grammar (whitespace and comments between tokens are ignored; items are separated
//! by newlines or commas):
//!
//! ```text
//! file     = { item }
//! item     = "length" "=" integer
//!          | "rule" key [ "=" ] "{" { attr } "}"      (key must be "charset")
//! attr     = "charset" "=" string | "min-chars" "=" integer
//! key      = identifier | string
//! comment  = "#" ... end of line | "//" ... end of line | "/*" ... "*/"
//! integer  = decimal | "0" octal-digits | ("0x" | "0X") hex-digits
//! string   = '"' { char | escape } '"'   (no raw newlines)
//! escape   = \n \t \r \a \b \f \v \\ \" | \NNN (octal) | \xHH | \uHHHH | \UHHHHHHHH
//! ```
//!
//! What matches HCL 1 and Vault exactly:
//!
//! * `\xHH` and `\NNN` (octal, at most `\377`) are single **bytes**, as in Go's
//!   `strconv.Unquote`: `"\xc3\xa9"` is `é`. A string whose bytes are not UTF-8
//!   has each invalid sequence replaced by U+FFFD, which is what Vault's conversion
//!   of the charset to runes yields (Go makes one U+FFFD per invalid byte; a
//!   charset is a set, so the result is the same).
//! * `\u` and `\U` escapes are code points; surrogates and values above U+10FFFF
//!   are errors. `\'` is an error inside double quotes, as are unknown escapes.
//! * Integers are read as HCL 1 scans them and Go's `strconv.ParseInt(s, 0, 64)`
//!   parses them: a leading `0` means octal (`010` is 8; `08` is an error), `0x`
//!   hexadecimal; values outside `int64` are errors.
//! * Charset characters must be printable by Go's `unicode.IsPrint` (see
//!   [`Policy::builder`]).
//!
//! Remaining differences from Vault:
//!
//! * `${` inside a string is literal here, whereas HCL 1 scans it as the start of
//!   an interpolation (so a charset containing `${` does not mean the same in
//!   Vault; [`Policy::to_vault_hcl`] never emits it).
//! * JSON input (which HCL 1 also accepts) and heredocs are not supported.
//! * Stricter here: unknown keys, duplicate keys, floats (`2.5`, `1e3`) and quoted
//!   numbers are errors, where Vault's decoding ignores unknown keys and may
//!   convert the others.
//! * Printability uses the Unicode tables of the `unicode-properties` crate, which
//!   may be a newer Unicode version than the Go release Vault was built with:
//!   characters assigned in between are printable here and not in Vault.
//!
//! Every error is a [`PolicyError::Parse`](crate::PolicyError::Parse) with a
//! [`ParseErrorKind`](crate::ParseErrorKind), the line, the column and the byte
//! offset.

use base64::Engine as _;

use crate::error::{ParseErrorKind as K, PolicyError};
use crate::policy::{Policy, Rule};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Eq,
    LBrace,
    RBrace,
    Comma,
    Newline,
}

/// A parse error at byte `offset` of `src`, with its line and column.
fn err_at(src: &str, offset: usize, kind: K) -> PolicyError {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    PolicyError::Parse {
        line,
        column,
        offset,
        kind,
    }
}

/// Lexing error: byte offset and kind (positions are resolved by the caller).
type LexResult<T> = Result<T, (usize, K)>;

fn lex(src: &str) -> LexResult<Vec<(Tok, usize)>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < b.len() {
        match b[i] {
            b'\n' => {
                out.push((Tok::Newline, i));
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'/') => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let start = i;
                i += 2;
                loop {
                    match b.get(i) {
                        None => return Err((start, K::UnterminatedComment)),
                        Some(b'*') if b.get(i + 1) == Some(&b'/') => {
                            i += 2;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'=' => {
                out.push((Tok::Eq, i));
                i += 1;
            }
            b'{' => {
                out.push((Tok::LBrace, i));
                i += 1;
            }
            b'}' => {
                out.push((Tok::RBrace, i));
                i += 1;
            }
            b',' => {
                out.push((Tok::Comma, i));
                i += 1;
            }
            b'<' if b.get(i + 1) == Some(&b'<') => return Err((i, K::Heredoc)),
            b'"' => {
                let (s, next) = lex_string(src, i)?;
                out.push((Tok::Str(s), i));
                i = next;
            }
            b'0'..=b'9' => {
                let (v, next) = lex_number(b, i)?;
                out.push((Tok::Int(v), i));
                i = next;
            }
            b'-' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (v, next) = lex_number(b, i + 1)?;
                out.push((Tok::Int(-v), i));
                i = next;
            }
            _ => {
                let rest = &src[i..];
                let Some(c) = rest.chars().next() else { break };
                if c.is_alphabetic() || c == '_' {
                    let len = rest
                        .char_indices()
                        .find(|&(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
                        .map_or(rest.len(), |(k, _)| k);
                    out.push((Tok::Ident(rest[..len].to_owned()), i));
                    i += len;
                } else {
                    return Err((
                        i,
                        K::UnexpectedCharacter {
                            code_point: u32::from(c),
                        },
                    ));
                }
            }
        }
    }
    Ok(out)
}

fn line_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'\n' {
        i += 1;
    }
    i
}

/// An integer literal as HCL 1 scans it and Go's `strconv.ParseInt(s, 0, 64)`
/// reads it: `0x`/`0X` hexadecimal, a leading `0` octal, otherwise decimal.
/// Fractions and exponents (HCL floats) are not integers.
fn lex_number(b: &[u8], start: usize) -> LexResult<(i64, usize)> {
    let end = start
        + b[start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'.')
            .count();
    let text = &b[start..end];
    let (digits, radix) = match text {
        [b'0', b'x' | b'X', rest @ ..] => {
            if rest.is_empty() {
                return Err((start, K::IllegalHexadecimal));
            }
            (rest, 16)
        }
        [b'0', rest @ ..] if !rest.is_empty() && rest.iter().all(u8::is_ascii_digit) => {
            if rest.iter().any(|&d| d > b'7') {
                return Err((start, K::IllegalOctal));
            }
            (rest, 8)
        }
        _ => (text, 10),
    };
    let mut v: i64 = 0;
    for &d in digits {
        let Some(d) = char::from(d).to_digit(radix) else {
            return Err((start, K::NotAnInteger));
        };
        v = v
            .checked_mul(i64::from(radix))
            .and_then(|v| v.checked_add(i64::from(d)))
            .ok_or((start, K::IntegerOutOfRange))?;
    }
    Ok((v, end))
}

/// `n` digits in `radix` from `from`; errors point at the backslash `at`.
fn escape_digits(b: &[u8], from: usize, n: usize, radix: u32, at: usize) -> LexResult<u32> {
    let mut v = 0u32;
    for k in 0..n {
        let d = b
            .get(from + k)
            .and_then(|&c| char::from(c).to_digit(radix))
            .ok_or((at, K::EscapeDigits { digits: n }))?;
        v = v * radix + d;
    }
    Ok(v)
}

/// A double-quoted string starting at `open` (the quote). Escapes follow HCL 1
/// (Go's `strconv.Unquote`): `\xHH` and `\NNN` are single bytes, so the value is
/// built as bytes; invalid UTF-8 becomes U+FFFD, as Go's conversion to runes does.
fn lex_string(src: &str, open: usize) -> LexResult<(String, usize)> {
    let b = src.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut i = open + 1;
    loop {
        let Some(&c) = b.get(i) else {
            return Err((open, K::UnterminatedString));
        };
        match c {
            b'"' => {
                let s = match String::from_utf8(out) {
                    Ok(s) => s,
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                };
                return Ok((s, i + 1));
            }
            b'\n' => return Err((i, K::NewlineInString)),
            b'\\' => {
                let at = i;
                let Some(e) = src[i + 1..].chars().next() else {
                    return Err((open, K::UnterminatedString));
                };
                i += 1 + e.len_utf8();
                let simple = match e {
                    'n' => Some(b'\n'),
                    't' => Some(b'\t'),
                    'r' => Some(b'\r'),
                    'a' => Some(0x07),
                    'b' => Some(0x08),
                    'f' => Some(0x0c),
                    'v' => Some(0x0b),
                    '\\' => Some(b'\\'),
                    '"' => Some(b'"'),
                    _ => None,
                };
                if let Some(byte) = simple {
                    out.push(byte);
                    continue;
                }
                match e {
                    '0'..='7' => {
                        let v = escape_digits(b, i - 1, 3, 8, at)?;
                        i += 2;
                        let byte = u8::try_from(v).map_err(|_| (at, K::OctalEscapeRange))?;
                        out.push(byte);
                    }
                    'x' => {
                        // Two hexadecimal digits: at most 0xFF.
                        let v = escape_digits(b, i, 2, 16, at)?;
                        i += 2;
                        out.push((v & 0xFF) as u8);
                    }
                    'u' | 'U' => {
                        let n = if e == 'u' { 4 } else { 8 };
                        let v = escape_digits(b, i, n, 16, at)?;
                        i += n;
                        let ch = char::from_u32(v).ok_or((at, K::EscapeNotScalar))?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    other => return Err((at, K::IllegalEscape { escape: other })),
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, offset: usize, kind: K) -> PolicyError {
        err_at(self.src, offset, kind)
    }

    /// Offset of the next token, or the end of the text.
    fn here(&self) -> usize {
        self.toks.get(self.pos).map_or(self.src.len(), |t| t.1)
    }

    fn skip_separators(&mut self) {
        while let Some((Tok::Newline | Tok::Comma, _)) = self.toks.get(self.pos) {
            self.pos += 1;
        }
    }

    fn skip_newlines(&mut self) {
        while let Some((Tok::Newline, _)) = self.toks.get(self.pos) {
            self.pos += 1;
        }
    }

    fn next(&mut self) -> Option<(Tok, usize)> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn expect_eq(&mut self, key: &'static str) -> Result<(), PolicyError> {
        let at = self.here();
        match self.next() {
            Some((Tok::Eq, _)) => Ok(()),
            _ => Err(self.err(at, K::ExpectedEquals { key })),
        }
    }

    /// `= <non-negative integer>` fitting in `usize`.
    fn count_value(&mut self, key: &'static str) -> Result<(usize, usize), PolicyError> {
        self.expect_eq(key)?;
        let at = self.here();
        match self.next() {
            Some((Tok::Int(v), l)) if v < 0 => Err(self.err(l, K::Negative)),
            Some((Tok::Int(v), l)) => usize::try_from(v)
                .map(|v| (v, l))
                .map_err(|_| self.err(l, K::IntegerOutOfRange)),
            _ => Err(self.err(
                at,
                K::WrongValue {
                    key,
                    expected: "an integer",
                },
            )),
        }
    }

    fn key(&mut self) -> Option<(String, usize)> {
        match self.toks.get(self.pos) {
            Some((Tok::Ident(s) | Tok::Str(s), l)) => {
                let r = (s.clone(), *l);
                self.pos += 1;
                Some(r)
            }
            _ => None,
        }
    }
}

/// Parsed, not yet validated.
#[derive(Debug)]
struct RawRule {
    line: usize,
    charset: String,
    min_chars: usize,
}

fn parse(src: &str) -> Result<(usize, Vec<RawRule>), PolicyError> {
    let toks = lex(src).map_err(|(offset, kind)| err_at(src, offset, kind))?;
    let mut p = Parser { src, toks, pos: 0 };
    let mut length: Option<usize> = None;
    let mut rules = Vec::new();
    loop {
        p.skip_separators();
        if p.pos >= p.toks.len() {
            break;
        }
        let at = p.here();
        let Some((key, key_at)) = p.key() else {
            return Err(p.err(at, K::ExpectedItem));
        };
        match key.as_str() {
            "length" => {
                let (v, l) = p.count_value("length")?;
                if length.replace(v).is_some() {
                    return Err(p.err(l, K::Duplicate { key: "length" }));
                }
            }
            "rule" => {
                let at = p.here();
                let Some((kind, kind_at)) = p.key() else {
                    return Err(p.err(at, K::ExpectedRuleType));
                };
                if kind != "charset" {
                    return Err(p.err(kind_at, K::UnknownRuleType { name: kind }));
                }
                if let Some((Tok::Eq, _)) = p.toks.get(p.pos) {
                    p.pos += 1;
                }
                p.skip_newlines();
                let at = p.here();
                match p.next() {
                    Some((Tok::LBrace, _)) => {}
                    _ => return Err(p.err(at, K::ExpectedOpenBrace)),
                }
                let mut charset: Option<String> = None;
                let mut min_chars: Option<usize> = None;
                loop {
                    p.skip_separators();
                    match p.toks.get(p.pos) {
                        Some((Tok::RBrace, _)) => {
                            p.pos += 1;
                            break;
                        }
                        None => return Err(p.err(key_at, K::UnterminatedBlock)),
                        _ => {}
                    }
                    let at = p.here();
                    let Some((attr, attr_at)) = p.key() else {
                        return Err(p.err(at, K::ExpectedRuleKey));
                    };
                    match attr.as_str() {
                        "charset" => {
                            p.expect_eq("charset")?;
                            let at = p.here();
                            let v = match p.next() {
                                Some((Tok::Str(s), _)) => s,
                                _ => {
                                    return Err(p.err(
                                        at,
                                        K::WrongValue {
                                            key: "charset",
                                            expected: "a quoted string",
                                        },
                                    ));
                                }
                            };
                            if charset.replace(v).is_some() {
                                return Err(p.err(attr_at, K::Duplicate { key: "charset" }));
                            }
                        }
                        "min-chars" => {
                            let (v, _) = p.count_value("min-chars")?;
                            if min_chars.replace(v).is_some() {
                                return Err(p.err(attr_at, K::Duplicate { key: "min-chars" }));
                            }
                        }
                        _ => return Err(p.err(attr_at, K::UnknownRuleKey { key: attr })),
                    }
                }
                let Some(charset) = charset else {
                    return Err(p.err(kind_at, K::MissingCharset));
                };
                let line = src[..kind_at].matches('\n').count() + 1;
                rules.push(RawRule {
                    line,
                    charset,
                    min_chars: min_chars.unwrap_or(0),
                });
            }
            _ => return Err(p.err(key_at, K::UnknownKey { key })),
        }
    }
    let Some(length) = length else {
        return Err(err_at(src, 0, K::MissingLength));
    };
    Ok((length, rules))
}

/// Decodes the input the way Vault's API does: if the whole (trimmed) text is valid
/// standard base64 of UTF-8 text, the decoded text is the policy.
fn decode_input(input: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = input.trim();
    if !trimmed.is_empty()
        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(trimmed)
        && let Ok(text) = String::from_utf8(bytes)
    {
        return std::borrow::Cow::Owned(text);
    }
    std::borrow::Cow::Borrowed(input)
}

impl Policy {
    /// Parses a Vault password policy (HCL, or HCL encoded in standard base64 as
    /// Vault's API accepts it).
    ///
    /// Rules are named `rule N (line L)`, numbered from 1. Unlike Vault, overlapping
    /// charsets whose minimums add up to more than the length are accepted when some
    /// password satisfies them all, and restrictive policies never time out.
    ///
    /// ```
    /// use credwheel_policy::Policy;
    /// let p = Policy::from_vault_hcl(r#"
    ///     length = 12
    ///     rule "charset" {
    ///       charset   = "abcdefghijklmnopqrstuvwxyz"
    ///       min-chars = 1
    ///     }
    ///     rule "charset" { charset = "0123456789", min-chars = 3 }
    /// "#)?;
    /// assert_eq!(p.length(), 12);
    /// # Ok::<(), credwheel_policy::PolicyError>(())
    /// ```
    pub fn from_vault_hcl(input: &str) -> Result<Policy, PolicyError> {
        let text = decode_input(input);
        let (length, raw) = parse(&text)?;
        let mut b = Policy::builder(length);
        for (i, r) in raw.into_iter().enumerate() {
            b = b.rule(Rule::charset(
                format!("rule {} (line {})", i + 1, r.line),
                &r.charset,
                r.min_chars,
            ));
        }
        b.build()
    }
}

impl Policy {
    /// Renders the policy as Vault HCL, when Vault can express it: every rule a
    /// single charset (`at_least` = 1, one class) and no forbidden substrings.
    /// Charsets are written as the effective (sorted, de-duplicated, exclusions
    /// removed) sets, so the result parses back to an equivalent policy here and
    /// in Vault (Vault may still refuse overlapping minimums above the length).
    pub fn to_vault_hcl(&self) -> Option<String> {
        if !self.forbidden_substrings().is_empty() {
            return None;
        }
        let mut out = format!("length = {}\n", self.length());
        for (rule, sets) in self.rules().iter().zip(self.class_sets()) {
            let ([class], [set]) = (rule.classes(), sets.as_slice()) else {
                return None;
            };
            if rule.at_least() != 1 {
                return None;
            }
            let mut quoted = String::with_capacity(set.len() + 2);
            let mut prev = None;
            for &c in set {
                match c {
                    '"' => quoted.push_str("\\\""),
                    '\\' => quoted.push_str("\\\\"),
                    // HCL 1 scans `${` as the start of an interpolation; never emit it.
                    '{' if prev == Some('$') => {
                        quoted.pop();
                        quoted.push_str("\\u0024{");
                    }
                    c => quoted.push(c),
                }
                prev = Some(c);
            }
            out.push_str(&format!(
                "rule \"charset\" {{\n  charset   = \"{quoted}\"\n  min-chars = {}\n}}\n",
                class.min_chars()
            ));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charset(hcl_string: &str) -> Result<String, PolicyError> {
        parse(&format!(
            "length = 5\nrule \"charset\" {{ charset = \"{hcl_string}\" }}"
        ))
        .map(|(_, rules)| rules[0].charset.clone())
    }

    fn kind(e: PolicyError) -> K {
        match e {
            PolicyError::Parse { kind, .. } => kind,
            other => panic!("not a parse error: {other:?}"),
        }
    }

    #[test]
    fn escapes_follow_hcl() {
        assert_eq!(
            charset(r#"\"\\\x41\u00e9\101\U0001F600"#).unwrap(),
            "\"\\AéA😀"
        );
        let (_, rules) = parse("length = 5\nrule \"charset\" { charset = \"a\" }").unwrap();
        assert_eq!(rules[0].min_chars, 0);
    }

    /// `\xNN` and octal escapes are bytes, as in Go's `strconv.Unquote`.
    #[test]
    fn byte_escapes_are_bytes() {
        assert_eq!(charset(r"\xc3\xa9").unwrap(), "é");
        assert_eq!(charset(r"\303\251").unwrap(), "é");
        assert_eq!(charset(r"\xe2\x82\xac\342\202\254").unwrap(), "€€");
        assert_eq!(charset(r"\xf0\x9f\x98\x80").unwrap(), "😀");
        // Mixed with raw UTF-8 and \u escapes.
        assert_eq!(charset(r"ü\xc3\xa9\u00e9").unwrap(), "üéé");
        // A byte escape above 0x7F alone is invalid UTF-8: U+FFFD, as Go's runes.
        assert_eq!(charset(r"\xe9").unwrap(), "\u{FFFD}");
        assert_eq!(charset(r"a\377b").unwrap(), "a\u{FFFD}b");
        assert_eq!(charset(r"\xc3(").unwrap(), "\u{FFFD}(");
        // \u escapes are code points, not bytes.
        assert_eq!(charset(r"\u00c3\u00a9").unwrap(), "Ã©");
        assert_eq!(kind(charset(r"\400").unwrap_err()), K::OctalEscapeRange);
        assert_eq!(
            kind(charset(r"\x4").unwrap_err()),
            K::EscapeDigits { digits: 2 }
        );
        assert_eq!(
            kind(charset(r"\12").unwrap_err()),
            K::EscapeDigits { digits: 3 }
        );
        assert_eq!(kind(charset(r"\ud800").unwrap_err()), K::EscapeNotScalar);
        assert_eq!(
            kind(charset(r"\U00110000").unwrap_err()),
            K::EscapeNotScalar
        );
    }

    #[test]
    fn single_quote_escape_is_an_error_in_double_quotes() {
        let e = charset(r"a\'b").unwrap_err();
        assert_eq!(
            e,
            PolicyError::Parse {
                line: 2,
                column: 30,
                offset: 40,
                kind: K::IllegalEscape { escape: '\'' }
            }
        );
        assert_eq!(
            kind(charset(r"\é").unwrap_err()),
            K::IllegalEscape { escape: 'é' }
        );
        assert_eq!(
            kind(charset(r"\q").unwrap_err()),
            K::IllegalEscape { escape: 'q' }
        );
    }

    /// Integers as Go's `strconv.ParseInt(s, 0, 64)` reads HCL 1 number tokens.
    #[test]
    fn integers_follow_go_parse_int() {
        let length = |text: &str| {
            parse(&format!(
                "length = {text}\nrule \"charset\" {{ charset = \"a\" }}"
            ))
            .map(|(l, _)| l)
        };
        assert_eq!(length("20").unwrap(), 20);
        assert_eq!(length("020").unwrap(), 16);
        assert_eq!(length("0").unwrap(), 0);
        assert_eq!(length("00").unwrap(), 0);
        assert_eq!(length("0x1F").unwrap(), 31);
        assert_eq!(length("0X1f").unwrap(), 31);
        assert_eq!(length("9223372036854775807").unwrap(), i64::MAX as usize);
        assert_eq!(kind(length("08").unwrap_err()), K::IllegalOctal);
        assert_eq!(kind(length("0x").unwrap_err()), K::IllegalHexadecimal);
        assert_eq!(kind(length("0xg").unwrap_err()), K::NotAnInteger);
        assert_eq!(
            kind(length("9223372036854775808").unwrap_err()),
            K::IntegerOutOfRange
        );
        assert_eq!(kind(length("2.5").unwrap_err()), K::NotAnInteger);
        assert_eq!(kind(length("1e3").unwrap_err()), K::NotAnInteger);
        assert_eq!(kind(length("0o17").unwrap_err()), K::NotAnInteger);
        assert_eq!(kind(length("-3").unwrap_err()), K::Negative);
        let (_, rules) =
            parse("length = 9\nrule \"charset\" { charset = \"ab\" min-chars = 010 }").unwrap();
        assert_eq!(rules[0].min_chars, 8);
    }

    #[test]
    fn errors_carry_positions_and_kinds() {
        let e = parse("length = 5\n\nrule \"charset\" {\n  charst = \"a\"\n}").unwrap_err();
        assert_eq!(
            e,
            PolicyError::Parse {
                line: 4,
                column: 3,
                offset: 31,
                kind: K::UnknownRuleKey {
                    key: "charst".into()
                }
            }
        );
        let e = parse("length = 5\nrule \"charset\" {\n charset = \"a\n}").unwrap_err();
        assert!(
            matches!(
                e,
                PolicyError::Parse {
                    line: 3,
                    column: 14,
                    kind: K::NewlineInString,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            kind(parse("# only a comment\n").unwrap_err()),
            K::MissingLength
        );
        let e = parse("length = 5\nlength = 6").unwrap_err();
        assert!(
            matches!(
                e,
                PolicyError::Parse {
                    line: 2,
                    column: 10,
                    kind: K::Duplicate { key: "length" },
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            kind(parse("length = 5\nrule \"regex\" { }").unwrap_err()),
            K::UnknownRuleType {
                name: "regex".into()
            }
        );
        let e = parse("length = 5\n/* open").unwrap_err();
        assert!(
            matches!(
                e,
                PolicyError::Parse {
                    line: 2,
                    column: 1,
                    offset: 11,
                    kind: K::UnterminatedComment
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            kind(parse("length = <<EOF\n5\nEOF").unwrap_err()),
            K::Heredoc
        );
        // Columns count characters, not bytes.
        let e = parse("length = 5 ü ¤").unwrap_err();
        assert!(
            matches!(
                e,
                PolicyError::Parse {
                    line: 1,
                    column: 14,
                    offset: 14,
                    kind: K::UnexpectedCharacter { code_point: 0xA4 }
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "line 1, column 14: unexpected character U+00A4"
        );
    }

    #[test]
    fn comments_commas_and_quoted_keys() {
        let (len, rules) = parse(
            "# c1\nlength = 9 // c2\n/* block\n comment */ rule charset = {\n \"charset\" = \"ab\", \"min-chars\" = 2 }\n",
        )
        .unwrap();
        assert_eq!(len, 9);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].charset, "ab");
        assert_eq!(rules[0].min_chars, 2);
        assert_eq!(rules[0].line, 4);
    }
}
