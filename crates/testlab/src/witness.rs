//! Outside witnesses: Samba's own tools, run as separate processes, say whether the
//! lab accepts a password and set one behind credwheel's back. Tests trust these
//! rather than credwheel's own code. Passwords go to the tools on stdin wherever the
//! tool allows it (`samba-tool user setpassword` only takes one on its command line).
//! The host's tools run with `_NO_WINBINDD=1`: the lab's DC winbindd sits at
//! libwbclient's default path and must not be asked about the host's users.

use std::io::Write;
use std::process::{Command, Stdio};

use secrecy::{ExposeSecret, SecretString};

use crate::{AdLab, SamLab};

/// A witness that could not answer (not a refused password).
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The tool could not be started or fed.
    #[error("{tool}: {source}")]
    Spawn {
        /// The tool.
        tool: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The tool failed for another reason than a wrong password.
    #[error("{tool} failed: {last_line}")]
    Failed {
        /// The tool.
        tool: &'static str,
        /// The last line it printed.
        last_line: String,
    },
}

/// Runs `cmd` with `stdin` on its standard input; returns success and all output.
fn run(tool: &'static str, cmd: &mut Command, stdin: &str) -> Result<(bool, String), WitnessError> {
    let spawn = |source| WitnessError::Spawn { tool, source };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin.as_bytes()).map_err(spawn)?;
    }
    let out = child.wait_with_output().map_err(spawn)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// A logon witness's answer: success is `true`, a failure whose output contains
/// `refused` (the tool's words for a wrong password) is `false`, anything else is
/// an error.
fn logon(
    tool: &'static str,
    cmd: &mut Command,
    stdin: &str,
    refused: &str,
) -> Result<bool, WitnessError> {
    let (ok, text) = run(tool, cmd, stdin)?;
    if !ok && !text.contains(refused) {
        return Err(failed(tool, &text));
    }
    Ok(ok)
}

/// A tool that must succeed.
fn must(tool: &'static str, cmd: &mut Command, stdin: &str) -> Result<(), WitnessError> {
    let (ok, text) = run(tool, cmd, stdin)?;
    if ok { Ok(()) } else { Err(failed(tool, &text)) }
}

fn failed(tool: &'static str, text: &str) -> WitnessError {
    WitnessError::Failed {
        tool,
        last_line: text.lines().last().unwrap_or("").to_owned(),
    }
}

impl SamLab {
    /// `smbclient -L` over SMB 3 as `user`: does the host accept `password`?
    /// `Ok(false)` only for `NT_STATUS_LOGON_FAILURE`.
    pub fn accepts(&self, user: &str, password: &str) -> Result<bool, WitnessError> {
        logon(
            "smbclient",
            Command::new("smbclient")
                .env("_NO_WINBINDD", "1")
                .args(["-p", &self.port.to_string(), "-L"])
                .arg(format!("//{}", self.host))
                .args(["--option=client min protocol=SMB3", "-A", "/dev/stdin"]),
            &format!("username = {user}\npassword = {password}\n"),
            "NT_STATUS_LOGON_FAILURE",
        )
    }

    /// [`accepts`](Self::accepts) for a [`SecretString`].
    pub fn accepts_secret(
        &self,
        user: &str,
        password: &SecretString,
    ) -> Result<bool, WitnessError> {
        self.accepts(user, password.expose_secret())
    }

    /// `smbpasswd -a` on the host's own database: sets `user`'s password out of band.
    pub fn set_password(&self, user: &str, password: &str) -> Result<(), WitnessError> {
        must(
            "smbpasswd",
            Command::new("smbpasswd")
                .env("_NO_WINBINDD", "1")
                .arg("-c")
                .arg(&self.smb_conf)
                .args(["-s", "-a", user]),
            &format!("{password}\n{password}\n"),
        )
    }
}

impl AdLab {
    /// `ldapsearch` over LDAPS (the lab CA, certificate checked) bound as
    /// `user@example.com`: does AD accept `password`? `Ok(false)` only for
    /// "Invalid credentials".
    pub fn accepts(&self, user: &str, password: &str) -> Result<bool, WitnessError> {
        logon(
            "ldapsearch",
            Command::new("ldapsearch")
                .env("LDAPTLS_CACERT", &self.ca_pem)
                .env("LDAPTLS_REQCERT", "demand")
                .args(["-x", "-H", &self.url, "-D", &format!("{user}@example.com")])
                .args(["-y", "/dev/stdin", "-b", "", "-s", "base", "dn"]),
            password,
            "Invalid credentials",
        )
    }

    /// [`accepts`](Self::accepts) for a [`SecretString`].
    pub fn accepts_secret(
        &self,
        user: &str,
        password: &SecretString,
    ) -> Result<bool, WitnessError> {
        self.accepts(user, password.expose_secret())
    }

    /// `samba-tool user setpassword` on the DC: sets `user`'s password out of band.
    pub fn set_password(&self, user: &str, password: &str) -> Result<(), WitnessError> {
        must(
            "samba-tool",
            Command::new("samba-tool")
                .args(["user", "setpassword", user])
                .arg(format!("--newpassword={password}"))
                .arg("-s")
                .arg(&self.smb_conf),
            "",
        )
    }
}
