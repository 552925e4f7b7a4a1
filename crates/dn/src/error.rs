//! The crate's one error type.

/// Why a DN, an RDN or a filter could not be parsed or built.
///
/// Errors carry byte positions into the input, never the input itself, so that an
/// error message cannot leak whatever a caller passed in by mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnError {
    /// The input is longer than the limit ([`MAX_DN_LEN`](crate::MAX_DN_LEN) for DNs).
    #[error("input is {len} bytes, over the limit of {max} bytes")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The DN has more RDNs than [`MAX_RDNS`](crate::MAX_RDNS).
    #[error("DN has more than {max} RDNs")]
    TooManyRdns {
        /// The limit.
        max: usize,
    },
    /// An RDN has more attribute-value pairs than
    /// [`MAX_AVAS_PER_RDN`](crate::MAX_AVAS_PER_RDN).
    #[error("RDN at byte {pos} has more than {max} attribute-value pairs")]
    TooManyAvas {
        /// Byte offset of the RDN in the input (0 for RDNs built in code).
        pos: usize,
        /// The limit.
        max: usize,
    },
    /// One RDN names the same attribute type twice (`cn=x+cn=y`, also through an
    /// alias or OID: `cn=x+2.5.4.3=y`), which RFC 4512 section 2.3.1 forbids and
    /// directories reject.
    #[error("RDN has the same attribute type twice (second at byte {pos})")]
    DuplicateAttributeType {
        /// Byte offset of the repeated type in the input (0 for RDNs built in code).
        pos: usize,
    },
    /// The DN string does not follow RFC 4514 (or the RFC 2253 compatibility forms
    /// this crate accepts).
    #[error("invalid DN at byte {pos}: {reason}")]
    Syntax {
        /// Byte offset in the input where the problem was found.
        pos: usize,
        /// What is wrong there.
        reason: SyntaxError,
    },
    /// An attribute type or description given to a builder is not a valid RFC 4512
    /// `descr` or `numericoid` (plus `;options` for filters).
    #[error("invalid attribute description (problem at byte {pos})")]
    InvalidAttribute {
        /// Byte offset of the first offending character (or the length when it is
        /// empty or ends too early).
        pos: usize,
    },
    /// `Filter::and` or `Filter::or` was given no filters.
    #[error("an and/or filter needs at least one member")]
    EmptyFilterList,
}

impl DnError {
    /// The byte offset the error refers to, when it refers to one.
    ///
    /// ```
    /// let err = credwheel_dn::Dn::parse("cn=a,,dc=b").unwrap_err();
    /// assert_eq!(err.position(), Some(5));
    /// ```
    #[must_use]
    pub fn position(&self) -> Option<usize> {
        match self {
            Self::Syntax { pos, .. }
            | Self::InvalidAttribute { pos }
            | Self::TooManyAvas { pos, .. }
            | Self::DuplicateAttributeType { pos } => Some(*pos),
            Self::TooLong { .. } | Self::TooManyRdns { .. } | Self::EmptyFilterList => None,
        }
    }

    pub(crate) fn syntax(pos: usize, reason: SyntaxError) -> Self {
        Self::Syntax { pos, reason }
    }
}

/// The kind of syntax problem in a [`DnError::Syntax`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxError {
    /// An RDN (or an attribute after `+`) was expected but not found, e.g. in
    /// `cn=a,,dc=b` or `cn=a,`.
    #[error("expected an attribute type")]
    ExpectedAttributeType,
    /// The attribute type is neither a `descr` nor a well-formed `numericoid`.
    #[error("invalid attribute type")]
    InvalidAttributeType,
    /// The attribute type is not followed by `=`.
    #[error("expected '='")]
    ExpectedEquals,
    /// A backslash is not followed by a special character or two hex digits.
    #[error("invalid escape sequence")]
    InvalidEscape,
    /// `\/`: an escape of ADSI paths (`LDAP://CN=a\/b,...`), not of LDAP DNs.
    /// In an RFC 4514 DN `/` needs no escape; write `/` or `\2F`.
    #[error("'\\/' is an ADSI path escape, not an LDAP DN escape: write '/' or '\\2F'")]
    AdsiSlashEscape,
    /// `\XX` escapes decode to bytes that are not UTF-8.
    #[error("escaped bytes are not valid UTF-8")]
    InvalidUtf8,
    /// A character that RFC 4514 requires to be escaped appears unescaped.
    #[error("character {0:?} must be escaped")]
    UnescapedCharacter(char),
    /// A `#` value is not an even number (at least two) of hex digits.
    #[error("invalid #hex (BER) value")]
    InvalidHexString,
    /// A quoted value has no closing quote.
    #[error("unterminated quoted value")]
    UnterminatedQuote,
    /// Something other than `,`, `;`, `+` or the end follows a value.
    #[error("expected ',', '+' or the end after a value")]
    ExpectedSeparator,
}
