//! Sealing passwords before they reach a store.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Result, StateError};
use crate::types::{Sealed, TargetId};

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;
const AAD_DOMAIN: &[u8] = b"credwheel-state/seal/v1";

/// Which field of a record a sealed value belongs to (part of the associated data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The current password.
    Current,
    /// A previous password (every history entry).
    Last,
    /// The password of a rotation in flight.
    Pending,
}

impl Field {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Current => b"current",
            Self::Last => b"last",
            Self::Pending => b"pending",
        }
    }
}

/// A 256-bit sealing key. Zeroized on drop; its `Debug` shows nothing.
pub struct Key(Zeroizing<[u8; KEY_LEN]>);

impl Key {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| StateError::Key(format!("a key must be {KEY_LEN} bytes")))?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// A fresh random key (from the operating system's generator).
    pub fn generate() -> Result<Self> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(k.as_mut())
            .map_err(|e| StateError::Key(format!("random generator failed: {e}")))?;
        Ok(Self(k))
    }

    /// A key from text: 64 hex digits or the standard base64 (with or without
    /// padding) of 32 bytes. Surrounding whitespace is ignored.
    pub fn from_text(text: &str) -> Result<Self> {
        let t = text.trim();
        if t.len() == 2 * KEY_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            let bytes = Zeroizing::new(
                hex::decode(t).map_err(|_| StateError::Key("malformed hex key".into()))?,
            );
            return Self::from_bytes(&bytes);
        }
        use base64::Engine as _;
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(t))
                .map_err(|_| {
                    StateError::Key("key text is neither 64 hex digits nor base64".into())
                })?,
        );
        Self::from_bytes(&bytes)
    }

    /// A key from a file holding either exactly 32 raw bytes or the text forms of
    /// [`Key::from_text`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let bytes = Zeroizing::new(std::fs::read(path.as_ref()).map_err(|e| {
            StateError::Key(format!(
                "cannot read key file {}: {}",
                path.as_ref().display(),
                e.kind()
            ))
        })?);
        if bytes.len() == KEY_LEN {
            return Self::from_bytes(&bytes);
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| StateError::Key("key file is neither 32 bytes nor text".into()))?;
        Self::from_text(text)
    }

    /// A key from an environment variable holding one of the text forms.
    pub fn from_env(var: &str) -> Result<Self> {
        let mut v = std::env::var(var)
            .map_err(|_| StateError::Key(format!("environment variable {var} is not set")))?;
        let key = Self::from_text(&v);
        v.zeroize();
        key
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// A key ring: sealing keys by id, one of them active (used for new seals). Old
/// keys stay to open values sealed before a key rotation; [`Sealer::reseal`] moves a
/// value to the active key.
pub struct Sealer {
    keys: BTreeMap<String, XChaCha20Poly1305>,
    active: String,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

fn check_key_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StateError::Key(
            "a key id is 1-64 printable ASCII characters".into(),
        ));
    }
    Ok(())
}

impl Sealer {
    /// A key ring holding one key, which is active.
    pub fn new(key_id: &str, key: Key) -> Result<Self> {
        check_key_id(key_id)?;
        let mut keys = BTreeMap::new();
        keys.insert(key_id.to_owned(), XChaCha20Poly1305::new((&*key.0).into()));
        Ok(Self {
            keys,
            active: key_id.to_owned(),
        })
    }

    /// Adds a key (not active). Replacing an existing id is refused.
    pub fn add_key(&mut self, key_id: &str, key: Key) -> Result<()> {
        check_key_id(key_id)?;
        if self.keys.contains_key(key_id) {
            return Err(StateError::Key(format!(
                "key id {key_id:?} already present"
            )));
        }
        self.keys
            .insert(key_id.to_owned(), XChaCha20Poly1305::new((&*key.0).into()));
        Ok(())
    }

    /// Makes a key that the ring holds the active one.
    pub fn set_active(&mut self, key_id: &str) -> Result<()> {
        if !self.keys.contains_key(key_id) {
            return Err(StateError::UnknownKey(key_id.to_owned()));
        }
        key_id.clone_into(&mut self.active);
        Ok(())
    }

    /// The active key id.
    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    fn aad(id: &TargetId, field: Field) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        for part in [
            AAD_DOMAIN,
            id.kind().as_bytes(),
            id.scope().as_bytes(),
            id.account().as_bytes(),
            field.label(),
        ] {
            aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
            aad.extend_from_slice(part);
        }
        aad
    }

    /// Seals `password` for `field` of record `id` under the active key.
    pub fn seal(&self, id: &TargetId, field: Field, password: &SecretString) -> Result<Sealed> {
        let cipher = self
            .keys
            .get(&self.active)
            .ok_or_else(|| StateError::UnknownKey(self.active.clone()))?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| StateError::Key(format!("random generator failed: {e}")))?;
        let aad = Self::aad(id, field);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: password.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| StateError::Key("encryption failed".into()))?;
        let kid = self.active.as_bytes();
        let mut out = Vec::with_capacity(2 + kid.len() + NONCE_LEN + ct.len());
        out.push(FORMAT_V1);
        out.push(kid.len() as u8); // check_key_id bounds it to 64
        out.extend_from_slice(kid);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(Sealed::from_bytes(out))
    }

    /// Opens a value sealed for `field` of record `id`. Fails with
    /// [`StateError::Unseal`] if it was sealed for another record or field, under
    /// another key, or was altered.
    pub fn open(&self, id: &TargetId, field: Field, sealed: &Sealed) -> Result<SecretString> {
        let b = sealed.as_bytes();
        if b.first() != Some(&FORMAT_V1) {
            return Err(StateError::Corrupt("unknown sealed format".into()));
        }
        let kid = sealed
            .key_id()
            .ok_or_else(|| StateError::Corrupt("malformed sealed header".into()))?;
        let cipher = self
            .keys
            .get(kid)
            .ok_or_else(|| StateError::UnknownKey(kid.to_owned()))?;
        let start = 2 + kid.len();
        let nonce = b
            .get(start..start + NONCE_LEN)
            .ok_or_else(|| StateError::Corrupt("sealed value too short".into()))?;
        let ct = b
            .get(start + NONCE_LEN..)
            .ok_or_else(|| StateError::Corrupt("sealed value too short".into()))?;
        let aad = Self::aad(id, field);
        let pt = Zeroizing::new(
            cipher
                .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
                .map_err(|_| StateError::Unseal)?,
        );
        let s = std::str::from_utf8(&pt).map_err(|_| StateError::Unseal)?;
        Ok(SecretString::from(s.to_owned()))
    }

    /// Whether `sealed` was sealed under a key other than the active one.
    pub fn needs_reseal(&self, sealed: &Sealed) -> bool {
        sealed.key_id() != Some(self.active.as_str())
    }

    /// Opens `sealed` and seals it again under the active key (same record and field).
    pub fn reseal(&self, id: &TargetId, field: Field, sealed: &Sealed) -> Result<Sealed> {
        let pw = self.open(id, field, sealed)?;
        self.seal(id, field, &pw)
    }

    /// Re-seals every sealed field of `record` under the active key; returns whether
    /// anything changed (then store it with [`StateStore::compare_and_swap`](crate::StateStore::compare_and_swap)).
    pub fn reseal_record(&self, record: &mut crate::types::Record) -> Result<bool> {
        let mut changed = false;
        let id = record.id.clone();
        if let Some(s) = record.current.as_mut().filter(|s| self.needs_reseal(s)) {
            *s = self.reseal(&id, Field::Current, s)?;
            changed = true;
        }
        for s in record.history.iter_mut().filter(|s| self.needs_reseal(s)) {
            *s = self.reseal(&id, Field::Last, s)?;
            changed = true;
        }
        if let Some(p) = record
            .pending
            .as_mut()
            .filter(|p| self.needs_reseal(&p.sealed))
        {
            p.sealed = self.reseal(&id, Field::Pending, &p.sealed)?;
            changed = true;
        }
        Ok(changed)
    }
}
