//! credwheel: password rotation for Windows hosts and Active Directory, and a
//! service-account check-out library.
//!
//! This is the facade: it re-exports the focused crates as modules. Embedders depend
//! on this crate and compose what they need.
//!
//! | module | crate | what it owns |
//! |---|---|---|
//! | [`policy`] | `credwheel-policy` | password policies and uniform generation |
//! | [`dn`] | `credwheel-dn` | DN and filter escaping and parsing |
//! | [`state`] | `credwheel-state` | rotation state, sealing, the rotation protocol, stores |
//! | [`sam`] | `credwheel-sam` | Windows local accounts over SMB 3 / SAMR |
//! | [`ad`] | `credwheel-ad` | Active Directory over LDAPS |

pub use credwheel_ad as ad;
pub use credwheel_dn as dn;
pub use credwheel_policy as policy;
pub use credwheel_sam as sam;
pub use credwheel_state as state;
