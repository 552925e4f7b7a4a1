//! Live proof of the session key against the lab (unit-test only): a level-24 reset
//! with hand-built NDR succeeds with the recomputed application key and fails with
//! STATUS_WRONG_PASSWORD with a wrong key. Outside witness: smbclient.

use std::process::Command;

use secrecy::{ExposeSecret, SecretString};

use crate::client::{Endpoint, SmbSession};
use crate::config::{AccountName, TransportSecurity};
use crate::session_key::rc4;

fn lab() -> Option<credwheel_testlab::SamLab> {
    credwheel_testlab::sam()
}

fn endpoint(l: &credwheel_testlab::SamLab) -> Endpoint {
    Endpoint {
        host: l.host.clone(),
        port: l.port,
        security: TransportSecurity::EncryptionRequired,
        connect_timeout: std::time::Duration::from_secs(5),
        request_timeout: std::time::Duration::from_secs(10),
    }
}

fn u32le(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn align4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

/// RPC_UNICODE_STRING with a deferred buffer, flattened (used at top level).
fn unicode_string(v: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().collect();
    let bytes = u16::try_from(units.len() * 2).unwrap();
    v.extend_from_slice(&bytes.to_le_bytes());
    v.extend_from_slice(&bytes.to_le_bytes());
    u32le(v, 0x0002_0000);
    u32le(v, u32::try_from(units.len()).unwrap());
    u32le(v, 0);
    u32le(v, u32::try_from(units.len()).unwrap());
    for u in units {
        v.extend_from_slice(&u.to_le_bytes());
    }
    align4(v);
}

fn status_at_end(r: &[u8]) -> u32 {
    u32::from_le_bytes(r[r.len() - 4..].try_into().unwrap())
}

async fn reset_level24(
    s: &mut SmbSession,
    domain: &str,
    user: &str,
    new_pw: &str,
    key: &[u8; 16],
) -> u32 {
    // SamrConnect5(NULL, 0x31, 1, {3, 0}).
    let mut q = Vec::new();
    u32le(&mut q, 0);
    u32le(&mut q, 0x31);
    u32le(&mut q, 1);
    u32le(&mut q, 1);
    u32le(&mut q, 3);
    u32le(&mut q, 0);
    let r = s.call(64, &q).await.unwrap();
    assert_eq!(status_at_end(&r), 0, "connect5");
    let server = r[16..36].to_vec();
    // SamrLookupDomainInSamServer.
    let mut q = server.clone();
    unicode_string(&mut q, domain);
    let r = s.call(5, &q).await.unwrap();
    assert_eq!(status_at_end(&r), 0, "lookup domain");
    let sid = r[4..r.len() - 4].to_vec(); // conformant SID with its max count
    // SamrOpenDomain(0x200).
    let mut q = server.clone();
    u32le(&mut q, 0x200);
    q.extend_from_slice(&sid);
    let r = s.call(7, &q).await.unwrap();
    assert_eq!(status_at_end(&r), 0, "open domain");
    let dom = r[..20].to_vec();
    // SamrLookupNamesInDomain(1 name).
    let mut q = dom.clone();
    u32le(&mut q, 1);
    u32le(&mut q, 1000);
    u32le(&mut q, 0);
    u32le(&mut q, 1);
    let units: Vec<u16> = user.encode_utf16().collect();
    let bytes = u16::try_from(units.len() * 2).unwrap();
    q.extend_from_slice(&bytes.to_le_bytes());
    q.extend_from_slice(&bytes.to_le_bytes());
    u32le(&mut q, 0x0002_0000);
    u32le(&mut q, u32::try_from(units.len()).unwrap());
    u32le(&mut q, 0);
    u32le(&mut q, u32::try_from(units.len()).unwrap());
    for u in units {
        q.extend_from_slice(&u.to_le_bytes());
    }
    align4(&mut q);
    let r = s.call(17, &q).await.unwrap();
    assert_eq!(status_at_end(&r), 0, "lookup names");
    // Count, ptr, maxcount, rid, ...
    let rid = u32::from_le_bytes(r[12..16].try_into().unwrap());
    // SamrOpenUser(0x80).
    let mut q = dom.clone();
    u32le(&mut q, 0x80);
    u32le(&mut q, rid);
    let r = s.call(34, &q).await.unwrap();
    assert_eq!(status_at_end(&r), 0, "open user");
    let uh = r[..20].to_vec();
    // SamrSetInformationUser2 level 24.
    let mut buf = vec![0x5au8; 516];
    let pw: Vec<u8> = new_pw.encode_utf16().flat_map(u16::to_le_bytes).collect();
    buf[512 - pw.len()..512].copy_from_slice(&pw);
    buf[512..516].copy_from_slice(&u32::try_from(pw.len()).unwrap().to_le_bytes());
    let enc = rc4(key, &buf);
    let mut q = uh.clone();
    q.extend_from_slice(&24u16.to_le_bytes());
    q.extend_from_slice(&24u16.to_le_bytes());
    q.extend_from_slice(&enc);
    q.push(0); // PasswordExpired
    let r = s.call(58, &q).await.unwrap();
    let st = status_at_end(&r);
    for h in [uh, dom, server] {
        let r = s.call(1, &h).await.unwrap();
        assert_eq!(status_at_end(&r), 0, "close");
    }
    st
}

fn smbclient_ok(l: &credwheel_testlab::SamLab, user: &str, pw: &str) -> bool {
    Command::new("smbclient")
        .args(["-p", &l.port.to_string(), "-L", &format!("//{}", l.host)])
        .arg("-U")
        .arg(format!("{user}%{pw}"))
        .args(["--option=client min protocol=SMB3"])
        .output()
        .unwrap()
        .status
        .success()
}

#[tokio::test]
async fn application_key_drives_a_level_24_reset() {
    let Some(l) = lab() else { return };
    let user = l.accounts[5].clone(); // cwlocal6
    let admin = AccountName::parse(&l.admin).unwrap();
    let mut s = SmbSession::open(&endpoint(&l), &admin, &l.admin_password)
        .await
        .unwrap();
    let domain = s.host_names().computer.clone().unwrap();
    let new_pw = format!("Probe-{}-Aa1!", std::process::id());
    let key = *s.application_key().as_bytes();
    // A wrong key: the host cannot decrypt the buffer.
    let mut wrong = key;
    wrong[0] ^= 1;
    let st = reset_level24(&mut s, &domain, &user, &new_pw, &wrong).await;
    assert_eq!(st, 0xC000_006A, "a wrong key gives WRONG_PASSWORD");
    let st = reset_level24(&mut s, &domain, &user, &new_pw, &key).await;
    assert_eq!(st, 0, "the recomputed application key works");
    s.close().await;
    assert!(smbclient_ok(&l, &user, &new_pw));
    // Put the seeded password back.
    let mut s = SmbSession::open(&endpoint(&l), &admin, &l.admin_password)
        .await
        .unwrap();
    let key = *s.application_key().as_bytes();
    let st = reset_level24(
        &mut s,
        &domain,
        &user,
        l.account_password.expose_secret(),
        &key,
    )
    .await;
    assert_eq!(st, 0);
    s.close().await;
    let _ = SecretString::from(String::new());
}

/// Prints the bind_ack and the SamrConnect5 answer of a live session as hex, to be
/// pasted into `rpc.rs` as golden bytes. Run by hand:
/// `cargo test -p credwheel-sam --lib capture_golden -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "prints lab captures for the golden-byte tests"]
#[allow(clippy::print_stdout)]
async fn capture_golden() {
    use crate::api::SamrApi;
    let Some(l) = lab() else { return };
    let admin = AccountName::parse(&l.admin).unwrap();
    let mut s = SmbSession::open(&endpoint(&l), &admin, &l.admin_password)
        .await
        .unwrap();
    let h = s.connect().await.unwrap();
    SamrApi::close(&mut s, h).await.unwrap();
    for a in s.raw_answers() {
        println!("{}", hex::encode(a));
    }
    s.close().await;
}

/// Times each SAMR call of a reset on an open session (by hand:
/// `cargo test -p credwheel-sam --lib time_steps -- --ignored --nocapture`).
#[tokio::test]
#[ignore = "prints timings"]
#[allow(clippy::print_stdout)]
async fn time_steps() {
    use crate::api::{ResetLevel, SamrApi, access};
    use std::time::Instant;
    let Some(l) = lab() else { return };
    let admin = AccountName::parse(&l.admin).unwrap();
    let t0 = Instant::now();
    let mut s = SmbSession::open(&endpoint(&l), &admin, &l.admin_password)
        .await
        .unwrap();
    println!("open session {:?}", t0.elapsed());
    let t = Instant::now();
    let server = s.connect().await.unwrap();
    println!("connect5 {:?}", t.elapsed());
    let comp = s.host_names().computer.clone().unwrap();
    let t = Instant::now();
    let sid = s.lookup_domain(&server, &comp).await.unwrap();
    println!("lookup domain {:?}", t.elapsed());
    let t = Instant::now();
    let dom = s.open_domain(&server, &sid, access::DOMAIN).await.unwrap();
    println!("open domain {:?}", t.elapsed());
    for round in 0..6 {
        let t = Instant::now();
        s.password_policy(&dom).await.unwrap();
        let a = t.elapsed();
        let rid = s.lookup_name(&dom, "cwlocal6").await.unwrap();
        let b = t.elapsed();
        let u = s.open_user(&dom, rid, access::USER_RESET).await.unwrap();
        let c = t.elapsed();
        s.query_user(&u).await.unwrap();
        let d = t.elapsed();
        // Alternate: the same password twice may be cheaper on the host.
        let pw = if round % 2 == 0 {
            SecretString::from(format!("Timing-{round}-Aa1!"))
        } else {
            l.account_password.clone()
        };
        let level = if std::env::var("PROBE_RC4").is_ok() {
            ResetLevel::Rc4Plain23
        } else {
            ResetLevel::Aes31
        };
        s.set_password(&u, level, &pw).await.unwrap();
        let e = t.elapsed();
        SamrApi::close(&mut s, u).await.unwrap();
        let f = t.elapsed();
        println!(
            "round {round}: policy {a:?} lookup {b:?} open {c:?} query {d:?} set {e:?} close {f:?}"
        );
    }
    s.close().await;
}
