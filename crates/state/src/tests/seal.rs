use secrecy::{ExposeSecret, SecretString};

use crate::{Field, Key, Sealer, StateError, TargetId};

fn id(a: &str) -> TargetId {
    TargetId::new("ad", "example.com", a).unwrap()
}

fn key(b: u8) -> Key {
    Key::from_bytes(&[b; 32]).unwrap()
}

#[test]
fn round_trip_and_binding() {
    let s = Sealer::new("k1", key(1)).unwrap();
    let pw = SecretString::from("Correct-Horse-9");
    let sealed = s.seal(&id("a"), Field::Current, &pw).unwrap();
    assert_eq!(sealed.key_id(), Some("k1"));
    assert!(
        !sealed
            .as_bytes()
            .windows(pw.expose_secret().len())
            .any(|w| w == pw.expose_secret().as_bytes())
    );
    assert_eq!(
        s.open(&id("a"), Field::Current, &sealed)
            .unwrap()
            .expose_secret(),
        "Correct-Horse-9"
    );
    // Moved to another record or field: refused.
    assert_eq!(
        s.open(&id("b"), Field::Current, &sealed).err(),
        Some(StateError::Unseal)
    );
    assert_eq!(
        s.open(&id("a"), Field::Last, &sealed).err(),
        Some(StateError::Unseal)
    );
    assert_eq!(
        s.open(&id("a"), Field::Pending, &sealed).err(),
        Some(StateError::Unseal)
    );
    let other_kind = TargetId::new("sam", "example.com", "a").unwrap();
    assert_eq!(
        s.open(&other_kind, Field::Current, &sealed).err(),
        Some(StateError::Unseal)
    );
    // Ambiguous concatenations are distinct.
    let x = TargetId::new("ad", "ab", "c").unwrap();
    let y = TargetId::new("ad", "a", "bc").unwrap();
    let sx = s.seal(&x, Field::Current, &pw).unwrap();
    assert_eq!(
        s.open(&y, Field::Current, &sx).err(),
        Some(StateError::Unseal)
    );
    // Tampering: flip each byte after the header.
    for i in 4..sealed.as_bytes().len() {
        let mut b = sealed.as_bytes().to_vec();
        b[i] ^= 1;
        assert!(
            s.open(&id("a"), Field::Current, &crate::Sealed::from_bytes(b))
                .is_err()
        );
    }
    // Truncation and garbage are errors, not panics.
    for n in 0..sealed.as_bytes().len() {
        let b = sealed.as_bytes()[..n].to_vec();
        assert!(
            s.open(&id("a"), Field::Current, &crate::Sealed::from_bytes(b))
                .is_err()
        );
    }
    // Nonces are random: two seals differ.
    let again = s.seal(&id("a"), Field::Current, &pw).unwrap();
    assert_ne!(again, sealed);
}

#[test]
fn key_rotation_and_reseal() {
    let mut s = Sealer::new("old", key(1)).unwrap();
    let pw = SecretString::from("pw-1");
    let sealed = s.seal(&id("a"), Field::Last, &pw).unwrap();
    s.add_key("new", key(2)).unwrap();
    assert!(s.add_key("new", key(3)).is_err());
    assert!(s.set_active("missing").is_err());
    s.set_active("new").unwrap();
    assert_eq!(s.active_key_id(), "new");
    assert!(s.needs_reseal(&sealed));
    let re = s.reseal(&id("a"), Field::Last, &sealed).unwrap();
    assert_eq!(re.key_id(), Some("new"));
    assert!(!s.needs_reseal(&re));
    assert_eq!(
        s.open(&id("a"), Field::Last, &re).unwrap().expose_secret(),
        "pw-1"
    );
    // A ring without the old key cannot open the old value; the new ring can.
    let only_new = Sealer::new("new", key(2)).unwrap();
    assert_eq!(
        only_new.open(&id("a"), Field::Last, &sealed).err(),
        Some(StateError::UnknownKey("old".into()))
    );
    assert!(only_new.open(&id("a"), Field::Last, &re).is_ok());
    // Same id, different key bytes: refused.
    let wrong = Sealer::new("new", key(9)).unwrap();
    assert_eq!(
        wrong.open(&id("a"), Field::Last, &re).err(),
        Some(StateError::Unseal)
    );

    let mut rec = crate::Record::new(id("a"));
    rec.history = vec![sealed.clone()];
    let mut s_old = Sealer::new("old", key(1)).unwrap();
    rec.current = Some(s_old.seal(&id("a"), Field::Current, &pw).unwrap());
    s_old.add_key("new", key(2)).unwrap();
    s_old.set_active("new").unwrap();
    assert!(s_old.reseal_record(&mut rec).unwrap());
    assert_eq!(rec.current.as_ref().unwrap().key_id(), Some("new"));
    assert_eq!(rec.last().unwrap().key_id(), Some("new"));
    assert!(!s_old.reseal_record(&mut rec).unwrap());
}

#[test]
fn key_sources() {
    let bytes = [7u8; 32];
    let hex_text = hex::encode(bytes);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let pw = SecretString::from("x");
    let reference = Sealer::new("k", Key::from_bytes(&bytes).unwrap()).unwrap();
    let sealed = reference.seal(&id("a"), Field::Current, &pw).unwrap();
    let opens = |k: Key| {
        Sealer::new("k", k)
            .unwrap()
            .open(&id("a"), Field::Current, &sealed)
            .is_ok()
    };
    assert!(opens(Key::from_text(&hex_text).unwrap()));
    assert!(opens(Key::from_text(&format!(" {b64}\n")).unwrap()));
    assert!(opens(Key::from_text(b64.trim_end_matches('=')).unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.key");
    std::fs::write(&raw, bytes).unwrap();
    assert!(opens(Key::from_file(&raw).unwrap()));
    let txt = dir.path().join("hex.key");
    std::fs::write(&txt, format!("{hex_text}\n")).unwrap();
    assert!(opens(Key::from_file(&txt).unwrap()));
    assert!(Key::from_file(dir.path().join("missing")).is_err());
    // An unset variable is an error (the set case runs in the SQLite cross-process
    // test, whose workers get their key through the environment).
    let var = format!("CREDWHEEL_STATE_TEST_UNSET_{}", std::process::id());
    assert!(matches!(Key::from_env(&var), Err(StateError::Key(_))));
    assert!(Key::from_text("zz").is_err());
    assert!(Key::from_bytes(&[0; 31]).is_err());
    assert!(Key::from_text(&hex::encode([1u8; 16])).is_err());
    // Key ids are validated.
    assert!(Sealer::new("", Key::from_bytes(&bytes).unwrap()).is_err());
    assert!(Sealer::new("has space", Key::from_bytes(&bytes).unwrap()).is_err());
}

#[test]
fn no_secret_in_debug() {
    let k = Key::from_bytes(&[0xAB; 32]).unwrap();
    let d = format!("{k:?}");
    assert!(!d.to_lowercase().contains("ab, ") && !d.contains("171") && !d.contains("abab"));
    let s = Sealer::new("k1", k).unwrap();
    let d = format!("{s:?}");
    assert!(d.contains("k1") && !d.contains("171") && !d.to_lowercase().contains("abab"));
    let pw = SecretString::from("Sup3r-Secret-Value");
    let sealed = s.seal(&id("a"), Field::Current, &pw).unwrap();
    let d = format!("{sealed:?}");
    assert!(!d.contains("Sup3r"));
    let mut rec = crate::Record::new(id("a"));
    rec.current = Some(sealed);
    assert!(!format!("{rec:?}").contains("Sup3r"));
}
