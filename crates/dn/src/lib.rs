//! Distinguished names and search filters for credwheel, built so that a name an
//! operator types can neither break a DN nor inject into a search filter.
//!
//! **Owns:** RFC 4514 attribute-value escaping (plus Active Directory's extra
//! rules), DN parsing, a conservative local DN comparison, and RFC 4515 filter
//! escaping with a small typed filter builder.
//!
//! **Does not own:** talking to a directory server (`credwheel-ad`).
//!
//! # Example
//!
//! ```
//! use credwheel_dn::{Dn, Filter, Rdn, escape_value_ad};
//!
//! let ou = Dn::parse("OU=Service Accounts,DC=example,DC=com")?;
//! let cn = "Smith, John #2";
//!
//! // Build the account's DN without string formatting...
//! let dn = ou.child(Rdn::new("CN", cn)?)?;
//! assert_eq!(dn.to_string(), r"CN=Smith\, John \#2,OU=Service Accounts,DC=example,DC=com");
//! // ...or by escaping the value yourself; both give the same DN.
//! let by_hand = Dn::parse(&format!("CN={},{ou}", escape_value_ad(cn)))?;
//! assert_eq!(dn, by_hand);
//!
//! // DNs compare case-insensitively, ignoring escaping and spaces around commas.
//! assert_eq!(dn, Dn::parse(r"cn=SMITH\2C JOHN \232, ou=service accounts, dc=EXAMPLE, dc=com")?);
//! assert!(dn.is_descendant_of(&ou));
//!
//! // Filters are built from typed parts; values are always escaped.
//! let filter = Filter::and([Filter::eq("objectClass", "user")?, Filter::eq("cn", cn)?])?;
//! assert_eq!(filter.to_string(), "(&(objectClass=user)(cn=Smith, John #2))");
//! let hostile = Filter::eq("cn", "*)(cn=*")?;
//! assert_eq!(hostile.to_string(), r"(cn=\2a\29\28cn=\2a)");
//! # Ok::<(), credwheel_dn::DnError>(())
//! ```
//!
//! # Escaping rules and their sources
//!
//! [`escape_value`] does exactly what [RFC 4514] section 2.4 requires of a string
//! attribute value:
//!
//! | character | where | written as | source |
//! |---|---|---|---|
//! | space | first or last | `\ ` | RFC 4514 §2.4 |
//! | `#` | first | `\#` | RFC 4514 §2.4 |
//! | `"` `+` `,` `;` `<` `>` `\` | anywhere | `\"` `\+` … | RFC 4514 §2.4 |
//! | NUL (U+0000) | anywhere | `\00` | RFC 4514 §2.4 (NUL is not a `special`, so hex) |
//!
//! [`escape_value_ad`] adds what Active Directory requires. Microsoft's LDAP API page
//! ["Distinguished Names"][ms-dn] lists as reserved: a space or `#` at the beginning,
//! a space at the end, `,` `+` `"` `\` `<` `>` `;`, LF (0x0A), CR (0x0D), `=` and `/`;
//! reserved characters are prefixed with a backslash, and "other reserved characters,
//! such as the equals sign (=) or non-printable characters" are written as `\XX`
//! (its example: `CN=Before\0DAfter`). The TechNet article ["Active Directory:
//! Characters to Escape"][technet] lists ten characters AD requires escaped in any
//! component of a DN: `,` `\` `#` `+` `<` `>` `;` `"` `=` and leading or trailing
//! spaces, with examples such as `cn=East\#Test \+ Lab` (`#` escaped in the middle)
//! and `ou=Sales\\Engineering`; it adds that ADSI also needs `/` escaped. So:
//!
//! | extra AD rule | written as | source |
//! |---|---|---|
//! | `#` anywhere (not only first) | `\#` | TechNet list; example `East\#Test` |
//! | `=` | `\=` | both pages |
//! | `/` | `\2F` | [ms-dn] table (ADSI needs it); `\/` is not an RFC 4514 pair, the hex form is |
//! | LF, CR | `\0A`, `\0D` | [ms-dn] table and example |
//! | other non-printable U+0001–U+001F, U+007F, C1 controls U+0080–U+009F | `\XX` of each UTF-8 byte | [ms-dn] ("non-printable characters") |
//! | bidirectional formatting U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069 | `\XX` of each UTF-8 byte | this crate: a DN shown to an operator must read as what it is (`evil\u{202E}txt.exe` would display reversed) |
//!
//! Every escape either function writes is an RFC 4514 `pair`, so the output of
//! either parses back to the input with any RFC 4514 parser (this is tested with
//! proptest and fuzzed). Other non-ASCII characters are left as UTF-8, which both
//! RFC 4514 and AD accept.
//!
//! `\/` is how ADSI paths (`LDAP://CN=a\/b,DC=x`) escape `/`; it is not an RFC 4514
//! escape, and [`Dn::parse`] rejects it with [`SyntaxError::AdsiSlashEscape`], which
//! says so. In a DN, write `/` or `\2F`.
//!
//! [`escape_filter`] follows [RFC 4515] section 3: the octets of `*` `(` `)` `\` and
//! NUL are written as `\2a` `\28` `\29` `\5c` `\00`. [`escape_filter_bytes`]
//! additionally writes bytes that are not UTF-8 as `\XX` (for binary values such as
//! `objectGUID`).
//!
//! ## Differences from `ldap3::dn_escape`
//!
//! `ldap3::dn_escape` escapes the same RFC-required set plus `=`, always in the
//! `\xx` hex form. Where RFC 4514 requires escaping, both escape the same
//! characters; they legitimately differ in the form (`\,` vs `\2c`) and in `=`,
//! which RFC 4514 lets either side escape or not. A differential test checks this.
//!
//! # Parsing and comparing DNs
//!
//! [`Dn::parse`] accepts the RFC 4514 grammar: multi-valued RDNs (`+`), `\XX` hex
//! pairs that must form UTF-8 (invalid UTF-8 is an error), `#`-prefixed BER values
//! (kept as raw bytes, see [`AttributeValue::Ber`]), and OIDs as attribute types. It
//! also accepts what [RFC 2253] section 4 requires parsers to accept for
//! compatibility: spaces around `,` `;` `+` `=` (ignored), `;` as RDN separator,
//! quoted values, and an `OID.` prefix. Unescaped spaces at the end of a value are
//! dropped; escaped ones are kept. An RDN that names one attribute type twice
//! (`cn=x+cn=y`, also through an alias or OID) is rejected
//! ([`DnError::DuplicateAttributeType`]), as RFC 4512 section 2.3.1 requires.
//!
//! [`Dn`]'s equality and hash are a **conservative local approximation** of how a
//! directory matches names, not Active Directory's rule: attribute types
//! ASCII-case-insensitively,
//! with the nine types RFC 4514 section 3 requires parsers to know (`CN`, `L`, `ST`,
//! `O`, `OU`, `C`, `STREET`, `DC`, `UID`) equal to their long names and OIDs (so
//! `cn`, `commonName` and `2.5.4.3` are one type); text values case-insensitively
//! (Unicode lowercase mapping, no other normalization: internal spaces are
//! significant); the pairs of a multi-valued RDN in any order. A BER (`#…`) value
//! equals only the same bytes, never a text value. AD matches names with Windows
//! collation, which also treats some *different* letters as equal: Microsoft's
//! KB938447 describes `Müller` and `Muller` (and `ß` and `ss`) naming the same
//! object; this crate says they differ. So "equal here" means "the same name up to
//! case and escaping", and "different here" does not mean "different objects in
//! AD". `Display` writes a normalized
//! form: `,` and `+` without spaces, types as written, text values escaped with
//! [`escape_value_ad`]'s rules, BER values as `#` and upper-case hex.
//!
//! # Security considerations
//!
//! * **Injection.** Never build a DN or a filter with `format!` from unescaped input.
//!   Use [`Dn::child`] / [`Rdn::new`] (or [`escape_value_ad`]) for DNs and [`Filter`]
//!   for filters. `Filter` has no constructor from a raw string, validates attribute
//!   descriptions (RFC 4512 `descr` / `numericoid` plus options) and escapes every
//!   value, so input like `*)(cn=*` stays a literal value.
//! * **Use the AD rules for AD.** [`escape_value`] produces valid RFC 4514 that AD
//!   may still reject or misread (`=`, `/`, CR/LF); send AD only
//!   [`escape_value_ad`] output or `Dn` `Display` output. The lab's Samba DC, for
//!   one, answers `invalidDNSyntax` for `CN=a=b,…` and accepts `CN=a\=b,…`
//!   (`tests/live.rs`).
//! * **Limits.** [`Dn::parse`] rejects inputs over [`MAX_DN_LEN`] bytes (32 KiB),
//!   more than [`MAX_RDNS`] RDNs or more than [`MAX_AVAS_PER_RDN`] pairs in one RDN,
//!   before doing work proportional to them; parsing is linear and not recursive.
//! * **No panics.** No function in this crate panics on any input; parsing errors are
//!   a typed [`DnError`] with a byte position, and errors never contain the input
//!   itself. `Dn::parse` and the escapers are fuzzed (see `fuzz/` in the
//!   repository).
//! * **Local equality is not identity.** [`Dn`] equality (and
//!   [`Dn::is_descendant_of`], [`Dn::is_within`]) compare strings locally: Unicode
//!   lowercase mapping, no accent or width folding, none of Windows' collation
//!   rules (KB938447: AD names `Müller` and `Muller` one object, this crate does
//!   not), and Unicode case pairs that Windows' tables may lack can make two names
//!   equal here that AD keeps apart. Use it to tidy and compare names for display,
//!   never to decide whether two names are the same object or whether an entry is
//!   inside an allowed subtree: ask the server (read the entry's `objectGUID` with a
//!   base-scoped search and compare GUIDs; let a subtree-scoped search decide
//!   containment).
//!
//! [RFC 4514]: https://www.rfc-editor.org/rfc/rfc4514
//! [RFC 4515]: https://www.rfc-editor.org/rfc/rfc4515
//! [RFC 2253]: https://www.rfc-editor.org/rfc/rfc2253
//! [ms-dn]: https://learn.microsoft.com/en-us/previous-versions/windows/desktop/ldap/distinguished-names
//! [technet]: https://learn.microsoft.com/en-us/archive/technet-wiki/5312.active-directory-characters-to-escape
#![deny(missing_docs)]

mod attr;
mod dn;
mod error;
mod escape;
mod filter;

pub use dn::{AttributeValue, Ava, Dn, MAX_AVAS_PER_RDN, MAX_DN_LEN, MAX_RDNS, Rdn};
pub use error::{DnError, SyntaxError};
pub use escape::{
    escape_filter, escape_filter_bytes, escape_filter_into, escape_value, escape_value_ad,
    escape_value_ad_into, escape_value_into,
};
pub use filter::Filter;
