//! Distinguished names and search filters for credwheel.
//!
//! **Owns:** RFC 4514 attribute-value escaping (plus Active Directory's extra rules),
//! DN parsing and comparison the way AD compares DNs, and RFC 4515 filter escaping
//! with a small typed filter builder.
//!
//! **Does not own:** talking to a directory server (`credwheel-ad`).
