//! Helpers for the live tests against the lab's standalone Samba host (WINHOST on
//! 127.0.0.1:4445). Outside witnesses: `smbclient`, `pdbedit`, `smbpasswd` with the
//! lab's smb.conf.

// Test helpers: a failing witness is a test failure, so they unwrap.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use credwheel_sam::{SamConfig, SamConfigBuilder, SamTarget};
use credwheel_state::{Key, MemoryStore, Rotator, RotatorConfig, Sealer};
use credwheel_testlab::SamLab;
use secrecy::{ExposeSecret, SecretString};

pub fn lab() -> Option<SamLab> {
    credwheel_testlab::sam()
}

/// The password a test puts on its account by hand before it starts.
pub fn known(user: &str) -> SecretString {
    SecretString::from(format!("Known-{user}-Pass1!"))
}

fn run(cmd: &mut Command, stdin: Option<&str>) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn witness");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Sets `user`'s password with `smbpasswd` (outside our code) and enables the account.
pub fn set_by_hand(l: &SamLab, user: &str, pw: &SecretString) {
    let conf = l.smb_conf.to_str().unwrap();
    let p = pw.expose_secret();
    let out = run(
        Command::new("smbpasswd")
            .env("_NO_WINBINDD", "1")
            .args(["-c", conf, "-s", user]),
        Some(&format!("{p}\n{p}\n")),
    );
    assert!(
        out.status.success(),
        "smbpasswd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        Command::new("smbpasswd")
            .env("_NO_WINBINDD", "1")
            .args(["-c", conf, "-e", user]),
        None,
    );
    assert!(
        out.status.success(),
        "smbpasswd -e: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Disables or enables `user` with `smbpasswd -d` / `-e`.
pub fn set_disabled(l: &SamLab, user: &str, disabled: bool) {
    let conf = l.smb_conf.to_str().unwrap();
    let flag = if disabled { "-d" } else { "-e" };
    let out = run(
        Command::new("smbpasswd")
            .env("_NO_WINBINDD", "1")
            .args(["-c", conf, flag, user]),
        None,
    );
    assert!(
        out.status.success(),
        "smbpasswd {flag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Debug, PartialEq, Eq)]
pub enum Witness {
    Accepted,
    LogonFailure,
    Other(String),
}

/// `smbclient -L` as `user`: does the host accept the password?
pub fn smbclient(l: &SamLab, user: &str, pw: &SecretString) -> Witness {
    let out = run(
        Command::new("smbclient")
            .env("_NO_WINBINDD", "1")
            .args(["-p", &l.port.to_string(), "-L", &format!("//{}", l.host)])
            .args(["--option=client min protocol=SMB3", "-A", "/dev/stdin"]),
        Some(&format!(
            "username = {user}\npassword = {}\n",
            pw.expose_secret()
        )),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Witness::Accepted
    } else if text.contains("NT_STATUS_LOGON_FAILURE") {
        Witness::LogonFailure
    } else {
        Witness::Other(text)
    }
}

/// `pdbedit -v`: the account's "Password must change" line is not "never"... or the
/// account carries the must-change flag.
pub fn must_change(l: &SamLab, user: &str) -> bool {
    let conf = l.smb_conf.to_str().unwrap();
    let out = run(
        Command::new("pdbedit")
            .env("_NO_WINBINDD", "1")
            .args(["-s", conf, "-v", user]),
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.starts_with("Password must change:"))
        .expect("pdbedit shows Password must change");
    !line.trim_end().ends_with("never")
}

/// Sets a pdbedit account policy value (e.g. "min password length").
pub fn set_account_policy(l: &SamLab, name: &str, value: u32) {
    let conf = l.smb_conf.to_str().unwrap();
    let out = run(
        Command::new("pdbedit").env("_NO_WINBINDD", "1").args([
            "-s",
            conf,
            "-P",
            name,
            "-C",
            &value.to_string(),
        ]),
        None,
    );
    assert!(
        out.status.success(),
        "pdbedit -P: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads a pdbedit account policy value.
pub fn account_policy(l: &SamLab, name: &str) -> u32 {
    let conf = l.smb_conf.to_str().unwrap();
    let out = run(
        Command::new("pdbedit")
            .env("_NO_WINBINDD", "1")
            .args(["-s", conf, "-P", name]),
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find_map(|l| l.split("value is:").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .expect("pdbedit -P value")
}

pub fn builder(l: &SamLab) -> SamConfigBuilder {
    SamConfig::builder(l.host.clone())
        .port(l.port)
        .admin(l.admin.clone(), l.admin_password.clone())
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(10))
}

pub fn target(l: &SamLab) -> SamTarget {
    SamTarget::new(builder(l).build().unwrap())
}

pub fn rotator() -> Rotator {
    let sealer = Sealer::new("k1", Key::generate().unwrap()).unwrap();
    Rotator::new(
        Arc::new(MemoryStore::new()),
        Arc::new(sealer),
        RotatorConfig::default(),
    )
}

pub fn policy() -> credwheel_policy::Policy {
    credwheel_policy::Policy::vault_default()
}
