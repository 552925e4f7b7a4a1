//! Tests of the SAMR stubs.
//!
//! Golden request bytes: produced by this encoder with fixed inputs and accepted
//! byte-for-byte by Samba 4.17's `ndrdump --validate samr <function> in` (which
//! parses the stub, re-marshals it with Samba's generated NDR code and compares).
//! The `ndrdump_cross_check` test (ignored by default: it needs `ndrdump` from
//! Debian's samba-testsuite package) repeats that check for every request and for
//! the response stubs the tests below build.

use super::*;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn h(b: u8) -> Handle {
    Handle::from_bytes([b; 20])
}

fn sid() -> Sid {
    Sid::new(5, &[21, 1, 2, 3]).unwrap()
}

fn aes(iterations: u64) -> EncryptedPasswordAes {
    EncryptedPasswordAes {
        auth_data: [0xAA; 64],
        salt: [0xBB; 16],
        cipher: vec![0xCC; 528],
        pbkdf2_iterations: iterations,
    }
}

// ------------------------------------------------------------------ requests

#[test]
fn golden_small_requests() {
    assert_eq!(
        connect5_request("\\\\127.0.0.1", 0x31),
        hex(
            "000002000c000000000000000c0000005c005c003100320037002e0030002e0030002e00310000003100000001000000010000000300000000000000"
        )
    );
    assert_eq!(
        lookup_domain_request(&h(0x11), "WINHOST"),
        hex(
            "11111111111111111111111111111111111111110e000e0000000200070000000000000007000000570049004e0048004f0053005400"
        )
    );
    assert_eq!(
        open_domain_request(&h(0x11), 0x201, &sid()),
        hex(
            "11111111111111111111111111111111111111110102000004000000010400000000000515000000010000000200000003000000"
        )
    );
    assert_eq!(
        lookup_names_request(&h(0x11), &["cwlocal1", "x"]),
        hex(
            "111111111111111111111111111111111111111102000000e8030000000000000200000010001000000002000200020004000200080000000000000008000000630077006c006f00630061006c0031000100000000000000010000007800"
        )
    );
    assert_eq!(
        open_user_request(&h(0x11), 0x80, 1001),
        hex("111111111111111111111111111111111111111180000000e9030000")
    );
    assert_eq!(
        query_domain_request(&h(0x11), 1),
        hex("11111111111111111111111111111111111111110100")
    );
    assert_eq!(close_handle_request(&h(0x11)), vec![0x11; 20]);
}

#[test]
fn golden_change_password2_request() {
    let b = change_password2_request(
        "\\\\127.0.0.1",
        "cwlocal1",
        &EncryptedUserPassword([0xDD; 516]),
        &EncryptedNtOwf([0xEE; 16]),
    );
    assert_eq!(b.len(), 636);
    // ServerName (unique, non-NULL), UserName (ref, 4-aligned), then the
    // password's referent.
    assert_eq!(
        b[..88],
        hex(
            "0000020016001600040002000b000000000000000b0000005c005c003100320037002e0030002e0030002e00310000001000100008000200080000000000000008000000630077006c006f00630061006c0031000c000200"
        )[..]
    );
    assert_eq!(&b[88..604], &[0xDD; 516][..]);
    // Verifier referent + 16 bytes, LmPresent 0 + padding, two NULL pointers.
    assert_eq!(b[604..608], [0x10, 0x00, 0x02, 0x00]);
    assert_eq!(&b[608..624], &[0xEE; 16]);
    assert_eq!(&b[624..], &[0u8; 12]);
}

#[test]
fn set_user_level31_layout() {
    let b = set_user_aes_request(&h(0x11), &aes(0));
    assert_eq!(b.len(), 656);
    assert_eq!(b[20..24], [31, 0, 31, 0]); // class, union discriminant
    assert_eq!(&b[24..88], &[0xAA; 64]);
    assert_eq!(&b[88..104], &[0xBB; 16]);
    assert_eq!(b[104..108], 528u32.to_le_bytes()); // cbCipher
    assert_eq!(b[108..112], [0x00, 0x00, 0x02, 0x00]); // Cipher referent
    assert_eq!(b[112..120], [0; 8]); // PBKDF2Iterations (8-aligned)
    assert_eq!(b[120], 0); // PasswordExpired = 0
    assert_eq!(b[124..128], 528u32.to_le_bytes()); // conformant max count
    assert_eq!(&b[128..], &[0xCC; 528][..]);
}

#[test]
fn set_user_rc4_levels_never_leave_must_change() {
    for (b, level, len) in [
        (
            set_user_rc4_request(&h(1), &EncryptedUserPassword([0xDD; 516])),
            23u8,
            736,
        ),
        (
            set_user_rc4_salted_request(&h(1), &EncryptedUserPasswordNew([0xDD; 532])),
            25,
            752,
        ),
    ] {
        assert_eq!(b.len(), len);
        assert_eq!(b[20..24], [level, 0, level, 0]);
        // WhichFields: USER_ALL_NTPASSWORDPRESENT | USER_ALL_PASSWORDEXPIRED ...
        assert_eq!(b[196..200], 0x0900_0000u32.to_le_bytes());
        // ... with PasswordExpired = 0: the server sets PasswordLastSet to now.
        assert_eq!(b[218], 0);
        // Everything else in SAMPR_USER_ALL_INFORMATION is zero or NULL.
        assert!(b[24..196].iter().all(|&x| x == 0));
        assert!(b[200..220].iter().all(|&x| x == 0));
        assert!(b[220..].iter().all(|&x| x == 0xDD));
    }
}

#[test]
fn change_password4_layout() {
    let b = change_password4_request("S", "u", &aes(20_000));
    // ServerName: ref 4, header 8, counts 12, "S" 2 -> 26; UserName at 28: header
    // 8, counts 12, "u" 2 -> 50; AES structure 8-aligned at 56.
    assert_eq!(&b[56..120], &[0xAA; 64]);
    assert_eq!(&b[120..136], &[0xBB; 16]);
    assert_eq!(b[136..140], 528u32.to_le_bytes()); // cbCipher
    assert_eq!(b[144..152], 20_000u64.to_le_bytes()); // PBKDF2Iterations
    assert_eq!(b[152..156], 528u32.to_le_bytes()); // deferred max count
    assert_eq!(b.len(), 156 + 528);
}

// ------------------------------------------------------------------ responses

fn status(e: &mut Encoder, s: NtStatus) {
    e.u32(s.code());
}

fn resp_connect5(handle: &Handle, s: NtStatus) -> Vec<u8> {
    let mut e = Encoder::new();
    e.u32(1);
    e.u32(1);
    e.u32(3);
    e.u32(0);
    e.handle(handle);
    status(&mut e, s);
    e.into_bytes()
}

fn resp_handle(handle: &Handle, s: NtStatus) -> Vec<u8> {
    let mut e = Encoder::new();
    e.handle(handle);
    status(&mut e, s);
    e.into_bytes()
}

fn resp_enum_domains(resume: u32, names: &[&str], s: NtStatus) -> Vec<u8> {
    let mut e = Encoder::new();
    e.u32(resume);
    e.referent();
    let n = names.len() as u32;
    e.u32(n);
    e.referent();
    e.u32(n);
    let units: Vec<Vec<u16>> = names.iter().map(|x| x.encode_utf16().collect()).collect();
    for u in &units {
        e.u32(0);
        e.unicode_string_header(Some(u));
    }
    for u in &units {
        e.unicode_string_body(u);
    }
    e.u32(n);
    status(&mut e, s);
    e.into_bytes()
}

fn resp_lookup_domain(sid: Option<&Sid>, s: NtStatus) -> Vec<u8> {
    let mut e = Encoder::new();
    match sid {
        Some(sid) => {
            e.referent();
            e.sid(sid);
        }
        None => e.null_ptr(),
    }
    status(&mut e, s);
    e.into_bytes()
}

fn resp_domain_password(i: &DomainPasswordInfo) -> Vec<u8> {
    let mut e = Encoder::new();
    e.referent();
    e.u16(1);
    e.align(4);
    e.u16(i.min_password_length);
    e.u16(i.password_history_length);
    e.u32(i.password_properties);
    for v in [i.max_password_age, i.min_password_age] {
        e.u32(v as u64 as u32);
        e.u32((v as u64 >> 32) as u32);
    }
    status(&mut e, NtStatus::SUCCESS);
    e.into_bytes()
}

fn resp_domain_role(role: u32) -> Vec<u8> {
    let mut e = Encoder::new();
    e.referent();
    e.u16(7);
    e.u32(role);
    status(&mut e, NtStatus::SUCCESS);
    e.into_bytes()
}

fn resp_lookup_names(pairs: &[(u32, u32)], s: NtStatus) -> Vec<u8> {
    let mut e = Encoder::new();
    for which in 0..2 {
        let n = pairs.len() as u32;
        e.u32(n);
        if n == 0 {
            e.null_ptr();
            continue;
        }
        e.referent();
        e.u32(n);
        for p in pairs {
            e.u32(if which == 0 { p.0 } else { p.1 });
        }
    }
    status(&mut e, s);
    e.into_bytes()
}

fn resp_user_pw_info(min: u16, props: u32) -> Vec<u8> {
    let mut e = Encoder::new();
    e.u16(min);
    e.u32(props);
    status(&mut e, NtStatus::SUCCESS);
    e.into_bytes()
}

fn resp_user_control(uac: u32) -> Vec<u8> {
    let mut e = Encoder::new();
    e.referent();
    e.u16(16);
    e.u32(uac);
    status(&mut e, NtStatus::SUCCESS);
    e.into_bytes()
}

fn put_time(e: &mut Encoder, v: i64) {
    e.u32(v as u64 as u32);
    e.u32((v as u64 >> 32) as u32);
}

/// A level-21 answer as Samba sends it: names, a comment, logon hours present.
fn resp_user_all(i: &UserAllInfo, comment: &str) -> Vec<u8> {
    let mut e = Encoder::new();
    e.referent();
    e.u16(21);
    put_time(&mut e, 1); // LastLogon
    put_time(&mut e, 2); // LastLogoff
    put_time(&mut e, i.password_last_set);
    put_time(&mut e, i.account_expires);
    put_time(&mut e, 3); // PasswordCanChange
    put_time(&mut e, i.password_must_change);
    let name: Option<Vec<u16>> = i.user_name.as_ref().map(|s| s.encode_utf16().collect());
    let full: Option<Vec<u16>> = i.full_name.as_ref().map(|s| s.encode_utf16().collect());
    let comment: Vec<u16> = comment.encode_utf16().collect();
    e.unicode_string_header(name.as_deref());
    e.unicode_string_header(full.as_deref());
    for k in 2..13 {
        // AdminComment (index 6) carries text; the others are empty or NULL.
        match k {
            6 => e.unicode_string_header(Some(&comment)),
            3 => e.unicode_string_header(Some(&[])),
            _ => e.unicode_string_header(None),
        }
    }
    e.u32(0); // SD length
    e.null_ptr();
    e.u32(i.user_id);
    e.u32(513);
    e.u32(i.user_account_control);
    e.u32(i.which_fields);
    e.u16(168);
    e.referent();
    e.u16(0);
    e.u16(7);
    e.u16(0);
    e.u16(0);
    e.u8(0);
    e.u8(1);
    e.u8(u8::from(i.password_expired));
    e.u8(0);
    if let Some(n) = &name {
        e.unicode_string_body(n);
    }
    if let Some(f) = &full {
        e.unicode_string_body(f);
    }
    e.unicode_string_body(&[]);
    e.unicode_string_body(&comment);
    // Logon hours: [size_is(1260), length_is(21)].
    e.u32(1260);
    e.u32(0);
    e.u32(21);
    e.bytes(&[0xFF; 21]);
    status(&mut e, NtStatus::SUCCESS);
    e.into_bytes()
}

fn sample_user() -> UserAllInfo {
    UserAllInfo {
        user_name: Some("cwlocal1".into()),
        full_name: Some("Local One".into()),
        password_last_set: 0x01DB_0000_1234_5678,
        password_must_change: i64::MAX,
        account_expires: i64::MAX,
        user_id: 1001,
        user_account_control: uac::NORMAL_ACCOUNT | uac::DONT_EXPIRE_PASSWORD,
        which_fields: 0x00FF_FFFF,
        password_expired: false,
    }
}

fn status_stub(s: NtStatus) -> Vec<u8> {
    s.code().to_le_bytes().to_vec()
}

#[test]
fn decodes_success_answers() {
    assert_eq!(
        connect5_response(&resp_connect5(&h(7), NtStatus::SUCCESS)).unwrap(),
        h(7)
    );
    assert_eq!(
        open_domain_response(&resp_handle(&h(8), NtStatus::SUCCESS)).unwrap(),
        h(8)
    );
    assert_eq!(
        open_user_response(&resp_handle(&h(9), NtStatus::SUCCESS)).unwrap(),
        h(9)
    );
    close_handle_response(&resp_handle(&Handle::default(), NtStatus::SUCCESS)).unwrap();
    assert_eq!(
        lookup_domain_response(&resp_lookup_domain(Some(&sid()), NtStatus::SUCCESS)).unwrap(),
        sid()
    );
    let page = enumerate_domains_response(&resp_enum_domains(
        2,
        &["WINHOST", "Builtin"],
        NtStatus::SUCCESS,
    ))
    .unwrap();
    assert_eq!(
        page,
        DomainPage {
            resume: 2,
            names: vec!["WINHOST".into(), "Builtin".into()],
            more: false
        }
    );
    let page =
        enumerate_domains_response(&resp_enum_domains(1, &["A"], NtStatus::MORE_ENTRIES)).unwrap();
    assert!(page.more);
    let info = DomainPasswordInfo {
        min_password_length: 14,
        password_history_length: 24,
        password_properties: 1,
        max_password_age: -36_288_000_000_000,
        min_password_age: 0,
    };
    let got = query_domain_password_response(&resp_domain_password(&info)).unwrap();
    assert_eq!(got, info);
    assert!(got.complexity_required());
    assert_eq!(
        query_domain_role_response(&resp_domain_role(2)).unwrap(),
        ServerRole::Backup
    );
    assert_eq!(
        query_domain_role_response(&resp_domain_role(0)).unwrap(),
        ServerRole::Standalone
    );
    assert_eq!(
        lookup_names_response(&resp_lookup_names(
            &[(1001, SID_TYPE_USER)],
            NtStatus::SUCCESS
        ))
        .unwrap(),
        vec![(1001, SID_TYPE_USER)]
    );
    assert_eq!(
        lookup_names_response(&resp_lookup_names(
            &[(1001, 1), (0, 8)],
            NtStatus::SOME_NOT_MAPPED
        ))
        .unwrap(),
        vec![(1001, 1), (0, 8)]
    );
    assert_eq!(
        get_user_password_info_response(&resp_user_pw_info(7, 1)).unwrap(),
        UserPasswordInfo {
            min_password_length: 7,
            password_properties: 1
        }
    );
    assert_eq!(
        query_user_control_response(&resp_user_control(0x411)).unwrap(),
        0x411
    );
    let u = sample_user();
    let got = query_user_all_response(&resp_user_all(&u, "managed by credwheel")).unwrap();
    assert_eq!(got, u);
    assert!(!got.disabled() && !got.locked());
    set_user_response(&status_stub(NtStatus::SUCCESS)).unwrap();
    change_password2_response(&status_stub(NtStatus::SUCCESS)).unwrap();
    change_password4_response(&status_stub(NtStatus::SUCCESS)).unwrap();
}

#[test]
fn error_statuses_are_typed() {
    let e = set_user_response(&status_stub(NtStatus::PASSWORD_RESTRICTION)).unwrap_err();
    assert_eq!(
        e,
        Error::Status {
            call: Call::Samr(58),
            status: NtStatus::PASSWORD_RESTRICTION
        }
    );
    // Zeroed out-parameters with an error status.
    let e =
        open_user_response(&resp_handle(&Handle::default(), NtStatus::ACCESS_DENIED)).unwrap_err();
    assert_eq!(e.nt_status(), Some(NtStatus::ACCESS_DENIED));
    // NULL SID pointer with an error status.
    let e =
        lookup_domain_response(&resp_lookup_domain(None, NtStatus::NO_SUCH_DOMAIN)).unwrap_err();
    assert_eq!(e.nt_status(), Some(NtStatus::NO_SUCH_DOMAIN));
    // NONE_MAPPED with empty arrays.
    let e = lookup_names_response(&resp_lookup_names(&[], NtStatus::NONE_MAPPED)).unwrap_err();
    assert_eq!(e.nt_status(), Some(NtStatus::NONE_MAPPED));
    // A bare status for a call with out-parameters.
    let e = query_user_all_response(&status_stub(NtStatus::INVALID_INFO_CLASS)).unwrap_err();
    assert!(e.is_unsupported());
    let e = connect5_response(&status_stub(NtStatus::ACCESS_DENIED)).unwrap_err();
    assert_eq!(e.nt_status(), Some(NtStatus::ACCESS_DENIED));
}

#[test]
fn malformed_answers_are_ndr_errors() {
    assert!(matches!(
        connect5_response(&[1, 2, 3]),
        Err(Error::Ndr {
            call: Call::Samr(64),
            ..
        })
    ));
    // Success status but trailing garbage.
    let mut b = resp_handle(&h(1), NtStatus::SUCCESS);
    b.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(matches!(open_user_response(&b), Err(Error::Ndr { .. })));
    // Wrong union arm.
    let b = resp_domain_role(3);
    assert!(matches!(
        query_domain_password_response(&b),
        Err(Error::Ndr { .. })
    ));
    // Lookup names with a count mismatch between the arrays.
    let mut e = Encoder::new();
    e.u32(1);
    e.referent();
    e.u32(1);
    e.u32(1001);
    e.u32(0);
    e.null_ptr();
    e.u32(0);
    assert!(lookup_names_response(&e.into_bytes()).is_err());
}

#[test]
fn every_decoder_rejects_empty_input() {
    for f in [
        |b: &[u8]| close_handle_response(b).map(|_| ()),
        |b: &[u8]| connect5_response(b).map(|_| ()),
        |b: &[u8]| enumerate_domains_response(b).map(|_| ()),
        |b: &[u8]| lookup_domain_response(b).map(|_| ()),
        |b: &[u8]| open_domain_response(b).map(|_| ()),
        |b: &[u8]| query_domain_password_response(b).map(|_| ()),
        |b: &[u8]| query_domain_role_response(b).map(|_| ()),
        |b: &[u8]| lookup_names_response(b).map(|_| ()),
        |b: &[u8]| open_user_response(b).map(|_| ()),
        |b: &[u8]| get_user_password_info_response(b).map(|_| ()),
        |b: &[u8]| query_user_control_response(b).map(|_| ()),
        |b: &[u8]| query_user_all_response(b).map(|_| ()),
        set_user_response,
        change_password2_response,
        change_password4_response,
    ] {
        assert!(matches!(f(&[]), Err(Error::Ndr { .. })));
    }
}

proptest! {
    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        decode_every_response(&data);
    }

    #[test]
    fn decoders_never_panic_on_mutated_answers(
        idx in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut b = resp_user_all(&sample_user(), "x");
        let i = idx.index(b.len());
        b[i] = byte;
        let c = cut.index(b.len() + 1);
        decode_every_response(&b[..c]);
        let mut b = resp_enum_domains(1, &["WINHOST", "Builtin"], NtStatus::SUCCESS);
        let i = idx.index(b.len());
        b[i] = byte;
        decode_every_response(&b);
    }

    #[test]
    fn user_all_round_trip(
        name in proptest::option::of("\\PC{0,20}"),
        full in proptest::option::of("\\PC{0,20}"),
        pls in any::<i64>(),
        pmc in any::<i64>(),
        exp in any::<i64>(),
        rid in any::<u32>(),
        uac_bits in any::<u32>(),
        wf in any::<u32>(),
        expired in any::<bool>(),
        comment in "\\PC{0,10}",
    ) {
        let u = UserAllInfo {
            user_name: name, full_name: full, password_last_set: pls,
            password_must_change: pmc, account_expires: exp, user_id: rid,
            user_account_control: uac_bits, which_fields: wf, password_expired: expired,
        };
        prop_assert_eq!(query_user_all_response(&resp_user_all(&u, &comment)).unwrap(), u);
    }

    #[test]
    fn domain_password_round_trip(min in any::<u16>(), hist in any::<u16>(), props in any::<u32>(), max in any::<i64>(), mn in any::<i64>()) {
        let i = DomainPasswordInfo { min_password_length: min, password_history_length: hist, password_properties: props, max_password_age: max, min_password_age: mn };
        prop_assert_eq!(query_domain_password_response(&resp_domain_password(&i)).unwrap(), i);
    }

    #[test]
    fn lookup_names_round_trip(pairs in proptest::collection::vec((any::<u32>(), 1u32..12), 1..20)) {
        prop_assert_eq!(lookup_names_response(&resp_lookup_names(&pairs, NtStatus::SUCCESS)).unwrap(), pairs);
    }

    #[test]
    fn enumerate_round_trip(names in proptest::collection::vec("\\PC{0,16}", 0..8), resume in any::<u32>()) {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let page = enumerate_domains_response(&resp_enum_domains(resume, &refs, NtStatus::SUCCESS)).unwrap();
        prop_assert_eq!(page.names, names);
        prop_assert_eq!(page.resume, resume);
    }

    #[test]
    fn handle_and_sid_answers_round_trip(b in any::<[u8; 20]>(), subs in proptest::collection::vec(any::<u32>(), 0..=15)) {
        let handle = Handle::from_bytes(b);
        prop_assert_eq!(connect5_response(&resp_connect5(&handle, NtStatus::SUCCESS)).unwrap(), handle);
        prop_assert_eq!(open_domain_response(&resp_handle(&handle, NtStatus::SUCCESS)).unwrap(), handle);
        let s = Sid::new(5, &subs).unwrap();
        prop_assert_eq!(lookup_domain_response(&resp_lookup_domain(Some(&s), NtStatus::SUCCESS)).unwrap(), s);
    }
}

/// Cross-checks every request stub and the response stubs built above with Samba's
/// `ndrdump --validate` (an independent NDR implementation). Needs `ndrdump`
/// (Debian package samba-testsuite): `cargo test -p credwheel-sam -- --ignored`.
#[test]
#[ignore = "needs ndrdump from samba-testsuite"]
fn ndrdump_cross_check() {
    let dir = tempfile::tempdir().unwrap();
    let u = sample_user();
    let info = DomainPasswordInfo {
        min_password_length: 14,
        password_history_length: 24,
        password_properties: 1,
        max_password_age: -36_288_000_000_000,
        min_password_age: 0,
    };
    let ctx = |level: u16| Some(query_domain_request(&h(1), level));
    let none = None;
    /// (function, direction, stub, context stub for `out` unions).
    type Case = (&'static str, &'static str, Vec<u8>, Option<Vec<u8>>);
    let cases: Vec<Case> = vec![
        (
            "samr_Close",
            "in",
            close_handle_request(&h(0x11)),
            none.clone(),
        ),
        (
            "samr_Connect5",
            "in",
            connect5_request("\\\\127.0.0.1", 0x31),
            none.clone(),
        ),
        (
            "samr_EnumDomains",
            "in",
            enumerate_domains_request(&h(1), 0, 0xffff),
            none.clone(),
        ),
        (
            "samr_LookupDomain",
            "in",
            lookup_domain_request(&h(1), "WINHOST"),
            none.clone(),
        ),
        (
            "samr_OpenDomain",
            "in",
            open_domain_request(&h(1), 0x201, &sid()),
            none.clone(),
        ),
        (
            "samr_QueryDomainInfo",
            "in",
            query_domain_request(&h(1), 1),
            none.clone(),
        ),
        (
            "samr_LookupNames",
            "in",
            lookup_names_request(&h(1), &["cwlocal1", "x"]),
            none.clone(),
        ),
        (
            "samr_OpenUser",
            "in",
            open_user_request(&h(1), 0x80, 1001),
            none.clone(),
        ),
        (
            "samr_GetUserPwInfo",
            "in",
            get_user_password_info_request(&h(1)),
            none.clone(),
        ),
        (
            "samr_QueryUserInfo2",
            "in",
            query_user_request(&h(1), 21),
            none.clone(),
        ),
        (
            "samr_SetUserInfo2",
            "in",
            set_user_aes_request(&h(1), &aes(0)),
            none.clone(),
        ),
        (
            "samr_SetUserInfo2",
            "in",
            set_user_rc4_request(&h(1), &EncryptedUserPassword([0xDD; 516])),
            none.clone(),
        ),
        (
            "samr_SetUserInfo2",
            "in",
            set_user_rc4_salted_request(&h(1), &EncryptedUserPasswordNew([0xDD; 532])),
            none.clone(),
        ),
        (
            "samr_ChangePasswordUser2",
            "in",
            change_password2_request(
                "\\\\h",
                "u",
                &EncryptedUserPassword([0xDD; 516]),
                &EncryptedNtOwf([0xEE; 16]),
            ),
            none.clone(),
        ),
        (
            "samr_ChangePasswordUser4",
            "in",
            change_password4_request("\\\\h", "u", &aes(20_000)),
            none.clone(),
        ),
        (
            "samr_Connect5",
            "out",
            resp_connect5(&h(7), NtStatus::SUCCESS),
            none.clone(),
        ),
        (
            "samr_EnumDomains",
            "out",
            resp_enum_domains(2, &["WINHOST", "Builtin"], NtStatus::SUCCESS),
            none.clone(),
        ),
        (
            "samr_LookupDomain",
            "out",
            resp_lookup_domain(Some(&sid()), NtStatus::SUCCESS),
            none.clone(),
        ),
        (
            "samr_OpenDomain",
            "out",
            resp_handle(&h(8), NtStatus::SUCCESS),
            none.clone(),
        ),
        (
            "samr_QueryDomainInfo",
            "out",
            resp_domain_password(&info),
            ctx(1),
        ),
        ("samr_QueryDomainInfo", "out", resp_domain_role(3), ctx(7)),
        (
            "samr_LookupNames",
            "out",
            resp_lookup_names(&[(1001, 1)], NtStatus::SUCCESS),
            none.clone(),
        ),
        (
            "samr_GetUserPwInfo",
            "out",
            resp_user_pw_info(7, 1),
            none.clone(),
        ),
        (
            "samr_QueryUserInfo2",
            "out",
            resp_user_control(0x411),
            ctx(16),
        ),
        (
            "samr_QueryUserInfo2",
            "out",
            resp_user_all(&u, "managed by credwheel"),
            ctx(21),
        ),
        (
            "samr_Close",
            "out",
            resp_handle(&Handle::default(), NtStatus::SUCCESS),
            none,
        ),
    ];
    for (i, (func, dir_, bytes, context)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("{i}.bin"));
        std::fs::write(&path, &bytes).unwrap();
        let mut cmd = std::process::Command::new("ndrdump");
        cmd.arg("--validate");
        if let Some(c) = context {
            let cpath = dir.path().join(format!("{i}.ctx"));
            std::fs::write(&cpath, c).unwrap();
            cmd.arg("--context-file").arg(&cpath);
        }
        let out = cmd.args(["samr", func, dir_]).arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("dump OK") && !text.contains("WARNING"),
            "{func} {dir_}: {text}"
        );
    }
}
