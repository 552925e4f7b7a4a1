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
//! string   = '"' { char | escape } '"'   (no raw newlines)
//! escape   = \n \t \r \a \b \f \v \\ \" \' | \NNN (octal) | \xHH | \uHHHH | \UHHHHHHHH
//! ```
//!
//! Differences from HCL 1 as Vault runs it: `${` inside a string is literal here,
//! whereas HCL 1 scans it as the start of an interpolation (so a charset containing
//! `${` does not mean the same in Vault; [`Policy::to_vault_hcl`] never emits it);
//! JSON input (which HCL 1 also accepts) is not supported.
//!
//! Keys may be quoted (`"min-chars" = 1`). Unknown keys, duplicate keys, a missing
//! `length`, a rule without `charset`, non-integer numbers and heredocs are errors
//! with the line they occur on.

use base64::Engine as _;

use crate::error::PolicyError;
use crate::policy::{Policy, Rule};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(u64),
    Eq,
    LBrace,
    RBrace,
    Comma,
    Newline,
}

fn err(line: usize, message: impl Into<String>) -> PolicyError {
    PolicyError::Parse {
        line,
        message: message.into(),
    }
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, PolicyError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut line = 1usize;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                out.push((Tok::Newline, line));
                line += 1;
                i += 1;
            }
            ' ' | '\t' | '\r' => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let start = line;
                i += 2;
                loop {
                    match chars.get(i) {
                        None => return Err(err(start, "unterminated /* comment")),
                        Some('*') if chars.get(i + 1) == Some(&'/') => {
                            i += 2;
                            break;
                        }
                        Some('\n') => {
                            line += 1;
                            i += 1;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            '=' => {
                out.push((Tok::Eq, line));
                i += 1;
            }
            '{' => {
                out.push((Tok::LBrace, line));
                i += 1;
            }
            '}' => {
                out.push((Tok::RBrace, line));
                i += 1;
            }
            ',' => {
                out.push((Tok::Comma, line));
                i += 1;
            }
            '<' if chars.get(i + 1) == Some(&'<') => {
                return Err(err(
                    line,
                    "heredoc strings are not supported; use a quoted string",
                ));
            }
            '"' => {
                let (s, next) = lex_string(&chars, i + 1, line)?;
                out.push((Tok::Str(s), line));
                i = next;
            }
            '0'..='9' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let v = text.parse::<u64>().map_err(|_| {
                    err(
                        line,
                        format!("expected a non-negative integer, found {text:?}"),
                    )
                })?;
                out.push((Tok::Int(v), line));
            }
            '-' if chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                return Err(err(line, "negative numbers are not allowed here"));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.'))
                {
                    i += 1;
                }
                out.push((Tok::Ident(chars[start..i].iter().collect()), line));
            }
            other => {
                return Err(err(line, format!("unexpected character {other:?}")));
            }
        }
    }
    Ok(out)
}

fn hex_digits(chars: &[char], at: usize, n: usize, line: usize) -> Result<u32, PolicyError> {
    let mut v = 0u32;
    for k in 0..n {
        let d = chars
            .get(at + k)
            .and_then(|c| c.to_digit(16))
            .ok_or_else(|| err(line, format!("escape needs {n} hexadecimal digits")))?;
        v = v * 16 + d;
    }
    Ok(v)
}

fn lex_string(chars: &[char], mut i: usize, line: usize) -> Result<(String, usize), PolicyError> {
    let mut s = String::new();
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(err(line, "unterminated string"));
        };
        match c {
            '"' => return Ok((s, i + 1)),
            '\n' => return Err(err(line, "newline in string (use \\n)")),
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err(err(line, "unterminated string"));
                };
                i += 2;
                let ch = match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    '\\' => '\\',
                    '"' => '"',
                    '\'' => '\'',
                    '0'..='7' => {
                        let mut v = 0u32;
                        let digits = [Some(&e), chars.get(i), chars.get(i + 1)];
                        for d in digits {
                            let d = d
                                .and_then(|c| c.to_digit(8))
                                .ok_or_else(|| err(line, "octal escape needs 3 digits"))?;
                            v = v * 8 + d;
                        }
                        i += 2;
                        if v > 255 {
                            return Err(err(line, "octal escape above \\377"));
                        }
                        char::from_u32(v).ok_or_else(|| err(line, "invalid octal escape"))?
                    }
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let v = hex_digits(chars, i, n, line)?;
                        i += n;
                        char::from_u32(v).ok_or_else(|| {
                            err(line, format!("escape \\{e} is not a Unicode scalar value"))
                        })?
                    }
                    other => {
                        return Err(err(line, format!("unknown escape \\{other}")));
                    }
                };
                s.push(ch);
            }
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    last_line: usize,
}

impl Parser {
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

    fn line(&self) -> usize {
        self.toks.get(self.pos).map_or(self.last_line, |t| t.1)
    }

    fn expect_eq(&mut self, key: &str) -> Result<(), PolicyError> {
        match self.next() {
            Some((Tok::Eq, _)) => Ok(()),
            Some((_, l)) => Err(err(l, format!("expected '=' after {key:?}"))),
            None => Err(err(self.last_line, format!("expected '=' after {key:?}"))),
        }
    }

    fn int_value(&mut self, key: &str) -> Result<(u64, usize), PolicyError> {
        self.expect_eq(key)?;
        match self.next() {
            Some((Tok::Int(v), l)) => Ok((v, l)),
            Some((_, l)) => Err(err(l, format!("{key:?} must be an integer"))),
            None => Err(err(self.last_line, format!("missing value for {key:?}"))),
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
    let toks = lex(src)?;
    let last_line = toks.last().map_or(1, |t| t.1);
    let mut p = Parser {
        toks,
        pos: 0,
        last_line,
    };
    let mut length: Option<usize> = None;
    let mut rules = Vec::new();
    loop {
        p.skip_separators();
        if p.pos >= p.toks.len() {
            break;
        }
        let line = p.line();
        let Some((key, line)) = p.key() else {
            return Err(err(line, "expected `length` or `rule`"));
        };
        match key.as_str() {
            "length" => {
                let (v, l) = p.int_value("length")?;
                if length.is_some() {
                    return Err(err(l, "duplicate `length`"));
                }
                length = Some(usize::try_from(v).map_err(|_| err(l, "length too large"))?);
            }
            "rule" => {
                let Some((kind, kl)) = p.key() else {
                    return Err(err(p.line(), "expected a rule type after `rule`"));
                };
                if kind != "charset" {
                    return Err(err(
                        kl,
                        format!("unknown rule type {kind:?} (only \"charset\" exists)"),
                    ));
                }
                if let Some((Tok::Eq, _)) = p.toks.get(p.pos) {
                    p.pos += 1;
                }
                p.skip_newlines();
                match p.next() {
                    Some((Tok::LBrace, _)) => {}
                    Some((_, l)) => return Err(err(l, "expected '{' to open the rule")),
                    None => return Err(err(last_line, "expected '{' to open the rule")),
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
                        None => return Err(err(line, "unterminated rule block (missing '}')")),
                        _ => {}
                    }
                    let at = p.line();
                    let Some((attr, al)) = p.key() else {
                        return Err(err(at, "expected `charset` or `min-chars`"));
                    };
                    match attr.as_str() {
                        "charset" => {
                            p.expect_eq("charset")?;
                            let v = match p.next() {
                                Some((Tok::Str(s), _)) => s,
                                Some((_, l)) => {
                                    return Err(err(l, "\"charset\" must be a quoted string"));
                                }
                                None => return Err(err(al, "missing value for \"charset\"")),
                            };
                            if charset.replace(v).is_some() {
                                return Err(err(al, "duplicate `charset`"));
                            }
                        }
                        "min-chars" => {
                            let (v, l) = p.int_value("min-chars")?;
                            let v =
                                usize::try_from(v).map_err(|_| err(l, "min-chars too large"))?;
                            if min_chars.replace(v).is_some() {
                                return Err(err(l, "duplicate `min-chars`"));
                            }
                        }
                        other => {
                            return Err(err(
                                al,
                                format!(
                                    "unknown key {other:?} in charset rule (expected `charset` or `min-chars`)"
                                ),
                            ));
                        }
                    }
                }
                let Some(charset) = charset else {
                    return Err(err(kl, "charset rule without `charset`"));
                };
                rules.push(RawRule {
                    line: kl,
                    charset,
                    min_chars: min_chars.unwrap_or(0),
                });
            }
            other => {
                return Err(err(
                    line,
                    format!("unknown key {other:?} (expected `length` or `rule`)"),
                ));
            }
        }
    }
    let Some(length) = length else {
        return Err(err(1, "missing `length`"));
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

    #[test]
    fn escapes_follow_hcl() {
        let (_, rules) = parse(
            "length = 5\nrule \"charset\" { charset = \"\\\"\\\\\\x41\\u00e9\\101\\U0001F600\" }",
        )
        .unwrap();
        assert_eq!(rules[0].charset, "\"\\AéA😀");
        assert_eq!(rules[0].min_chars, 0);
    }

    #[test]
    fn errors_carry_lines() {
        let e = parse("length = 5\n\nrule \"charset\" {\n  charst = \"a\"\n}").unwrap_err();
        assert!(matches!(e, PolicyError::Parse { line: 4, .. }), "{e:?}");
        let e = parse("length = 5\nrule \"charset\" {\n charset = \"a\n}").unwrap_err();
        assert!(matches!(e, PolicyError::Parse { line: 3, .. }), "{e:?}");
        let e = parse("# only a comment\n").unwrap_err();
        assert!(e.to_string().contains("missing `length`"), "{e}");
        let e = parse("length = 5\nlength = 6").unwrap_err();
        assert!(matches!(e, PolicyError::Parse { line: 2, .. }), "{e:?}");
        let e = parse("length = 2.5").unwrap_err();
        assert!(matches!(e, PolicyError::Parse { line: 1, .. }), "{e:?}");
        let e = parse("length = 5\nrule \"regex\" { }").unwrap_err();
        assert!(e.to_string().contains("unknown rule type"), "{e}");
        let e = parse("length = 5\n/* open").unwrap_err();
        assert!(e.to_string().contains("unterminated"), "{e}");
        let e = parse("length = <<EOF\n5\nEOF").unwrap_err();
        assert!(e.to_string().contains("heredoc"), "{e}");
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
