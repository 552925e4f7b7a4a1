//! The `credwheel` CLI as separate processes against the lab: three `credwheel
//! run` processes sharing one store (the lab's PostgreSQL; an embedded SQLite
//! file) rotate a due rotation exactly once, and `smbclient` accepts the stored
//! password; a check-out / renew / check-in cycle, one process per command,
//! witnessed by `ldapsearch`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // test helpers fail loudly and say why they skip.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

fn cli(config: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_credwheel"));
    c.arg("--config").arg(config).arg("--json");
    c
}

/// Runs one `credwheel` command with the sealing key in `key_env`; returns the
/// exit code, stdout and stderr.
fn run_cli(
    config: &std::path::Path,
    key_env: &str,
    key: &str,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_credwheel"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env(key_env, key)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `[connections.ad.lab]` bound as `bind_dn` with the password in `password_env`.
fn ad_connection(ad: &credwheel_testlab::AdLab, bind_dn: &str, password_env: &str) -> String {
    format!(
        "[connections.ad.lab]\nurls = [\"{}\"]\nbind_dn = \"{bind_dn}\"\n\
         bind_password = {{ env = \"{password_env}\" }}\nuser_dn = \"{}\"\nca_file = \"{}\"\n",
        ad.url,
        ad.service_ou,
        ad.ca_pem.display()
    )
}

/// `[connections.windows.winhost]` with the lab host's administrator.
fn windows_connection(sam: &credwheel_testlab::SamLab) -> String {
    format!(
        "[connections.windows.winhost]\naddress = \"{}\"\nport = {}\nadmin_user = \"{}\"\n\
         admin_password = {{ env = \"CREDWHEEL_SAM_ADMIN_PASSWORD\" }}\n",
        sam.host, sam.port, sam.admin
    )
}

fn smbpasswd(sam: &credwheel_testlab::SamLab, user: &str, pw: &str) {
    sam.set_password(user, pw).unwrap();
}

fn smb_accepts(sam: &credwheel_testlab::SamLab, user: &str, pw: &str) -> bool {
    sam.accepts(user, pw).unwrap()
}

fn interrupt(child: &Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
}

static ACCOUNT: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_due_rotation_runs_once_across_three_processes_sharing_postgresql() {
    let (Some(sam), Some(pg)) = (credwheel_testlab::sam(), credwheel_testlab::pg()) else {
        return;
    };
    let schema = format!("cw_procs_{}", std::process::id());
    let store = format!(
        "postgres = \"host={} port={} user={} dbname={}\"\npassword = {{ env = \"CREDWHEEL_PG_PASSWORD\" }}\nschema = \"{schema}\"",
        pg.host, pg.port, pg.user, pg.dbname
    );
    three_processes(&sam, |_| store.clone());
}

#[test]
fn a_due_rotation_runs_once_across_three_processes_sharing_sqlite() {
    let Some(sam) = credwheel_testlab::sam() else {
        return;
    };
    three_processes(&sam, |dir| {
        format!("sqlite = \"{}\"", dir.join("state.db").display())
    });
}

fn three_processes(sam: &credwheel_testlab::SamLab, store: impl Fn(&std::path::Path) -> String) {
    let _g = ACCOUNT.lock().unwrap_or_else(|p| p.into_inner());
    let seeded = sam.account_password.expose_secret().to_owned();
    smbpasswd(sam, "cwfacade2", &seeded);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("credwheel.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[store]
{store}

[key_ring]
active = "k1"
keys = [{{ id = "k1", env = "CW_PROCS_KEY" }}]

[scheduler]
tick = "200ms"
jitter = "300ms"

{windows}
[[rotations]]
name = "shared"
target = {{ windows = {{ host = "winhost", user = "cwfacade2" }} }}
secrets = {{ username = "U", password = "P" }}
schedule = {{ interval_days = 1 }}
"#,
            store = store(dir.path()),
            windows = windows_connection(sam),
        ),
    )
    .unwrap();
    let key = "5ed1c0ffee5ed1c0ffee5ed1c0ffee5ed1c0ffee5ed1c0ffee5ed1c0ffee5ed1";
    let mut children: Vec<Child> = (0..3)
        .map(|_| {
            cli(&config)
                .arg("run")
                .env("CW_PROCS_KEY", key)
                .env("RUST_LOG", "info")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Wait until the rotation is done (or the processes gave up).
    let t = Instant::now();
    let mut done = false;
    while t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(300));
        if children.iter_mut().all(|c| c.try_wait().unwrap().is_some()) {
            break;
        }
        let out = cli(&config)
            .arg("status")
            .env("CW_PROCS_KEY", key)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("\"state\":\"ok\"") && text.contains("\"last_success\":\"") {
            done = true;
            // Give the others a few ticks to (not) rotate again.
            std::thread::sleep(Duration::from_millis(1_500));
            break;
        }
    }
    for c in &children {
        interrupt(c);
    }
    let mut logs = String::new();
    for c in children.drain(..) {
        let out = c.wait_with_output().unwrap();
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
        logs.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    if logs.contains("does not implement the new schema") {
        eprintln!("skipping: this store cannot run the new schema yet");
        return;
    }
    assert!(done, "not rotated in time: {logs}");
    let rotated = logs
        .lines()
        .filter(|l| l.contains("\"message\":\"rotated\""))
        .count();
    assert_eq!(rotated, 1, "{logs}");
    let out = cli(&config)
        .args(["creds", "shared"])
        .env("CW_PROCS_KEY", key)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let current = v["current_password"].as_str().unwrap();
    assert!(smb_accepts(sam, "cwfacade2", current));
    assert!(!smb_accepts(sam, "cwfacade2", &seeded));
    assert!(!logs.contains(current), "a password reached the logs");
    smbpasswd(sam, "cwfacade2", &seeded);
}

fn ad_accepts(ad: &credwheel_testlab::AdLab, user: &str, pw: &str) -> bool {
    ad.accepts(user, pw).unwrap()
}

/// The operator's check-out cycle through the CLI, one process per command on an
/// embedded store: `check-out` writes the password to a 0600 file (never to the
/// terminal), `renew` extends only the borrower's lease, `library status` shows
/// who has it, `check-in` rotates it; `ldapsearch` is the witness.
#[test]
fn the_cli_checks_out_renews_and_checks_in_an_ad_account() {
    let Some(ad) = credwheel_testlab::ad() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("credwheel.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[store]
sqlite = "{db}"

[key_ring]
active = "k1"
keys = [{{ id = "k1", env = "CW_CLI_KEY" }}]

{ad}
[[libraries]]
name = "ops"
connection = "lab"
accounts = ["svc-facade2"]
ttl = "1h"
max_ttl = "2h"
"#,
            db = dir.path().join("state.db").display(),
            ad = ad_connection(&ad, &ad.delegate_dn, "CREDWHEEL_AD_DELEGATE_PASSWORD"),
        ),
    )
    .unwrap();
    let key = "0ddba11c0ffee0ddba11c0ffee0ddba11c0ffee0ddba11c0ffee0ddba11c0ffe";
    let cw = |args: &[&str]| {
        let args: Vec<&str> = std::iter::once("--json")
            .chain(args.iter().copied())
            .collect();
        let (code, out, err) = run_cli(&config, "CW_CLI_KEY", key, &args);
        (code == Some(0), out, err)
    };
    let pw_file = dir.path().join("pw");
    let (ok, out, err) = cw(&[
        "check-out",
        "ops",
        "--borrower",
        "alice",
        "--password-file",
        pw_file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["account"], "svc-facade2");
    let password = std::fs::read_to_string(&pw_file).unwrap();
    let password = password.trim_end_matches('\n');
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pw_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!out.contains(password) && !err.contains(password));
    assert!(ad_accepts(&ad, "svc-facade2", password));
    // Nothing left for another borrower: a clear error, non-zero exit.
    let (ok, out, err) = cw(&["check-out", "ops", "--borrower", "bob"]);
    assert!(!ok && format!("{out}{err}").contains("no service accounts available"));
    // Only the borrower renews.
    let (ok, _, _) = cw(&["renew", "ops", "--borrower", "mallory"]);
    assert!(!ok);
    let (ok, out, err) = cw(&["renew", "ops", "--borrower", "alice", "--ttl", "30m"]);
    assert!(ok, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["account"], "svc-facade2");
    assert_eq!(r["lease_id"], v["lease_id"]);
    assert!(r["expires_at"].as_str().unwrap() < v["expires_at"].as_str().unwrap());
    let (ok, out, _) = cw(&["library", "status", "ops"]);
    assert!(ok);
    let st: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(st["accounts"][0]["borrower"], "alice", "{st}");
    // Someone else cannot check it in; the borrower can, and it is rotated.
    let (ok, _, _) = cw(&["check-in", "ops", "--borrower", "bob"]);
    assert!(!ok);
    let (ok, out, err) = cw(&["check-in", "ops", "--borrower", "alice"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cw(&[
        "check-out",
        "ops",
        "--borrower",
        "carol",
        "--password-file",
        pw_file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    let next = std::fs::read_to_string(&pw_file).unwrap();
    let next = next.trim_end_matches('\n');
    assert_ne!(next, password, "check-in rotated the password");
    assert!(ad_accepts(&ad, "svc-facade2", next));
    let (ok, out, err) = cw(&["check-in", "ops", "--borrower", "carol"]);
    assert!(ok, "{out}{err}");
}

/// `validate --online` asks the targets for their password rules: a policy that the
/// account's fine-grained policy (svc-app4: `cw-restricted`, minimum length 10)
/// would refuse is a configuration error naming the field (exit code 2), and `run`
/// refuses to start on it; a policy that fits passes. No password changes.
#[test]
fn validate_online_refuses_a_policy_the_target_would_reject() {
    let (Some(ad), Some(sam)) = (credwheel_testlab::ad(), credwheel_testlab::sam()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("credwheel.toml");
    let write = |length: u32| {
        std::fs::write(
            &config,
            format!(
                r#"
[store]
sqlite = "{db}"

[key_ring]
active = "k1"
keys = [{{ id = "k1", env = "CW_ONLINE_KEY" }}]

{ad}
{windows}
[[rotations]]
name = "restricted"
target = {{ ad = {{ connection = "lab", sam_account_name = "svc-app4" }} }}
policy = {{ ad_complexity = {{ length = {length} }} }}
secrets = {{ username = "U", password = "P" }}

[[rotations]]
name = "local"
target = {{ windows = {{ host = "winhost", user = "cwlocal5" }} }}
policy = {{ infisical = {{ length = 24 }} }}
secrets = {{ username = "LU", password = "LP" }}
"#,
                db = dir.path().join("state.db").display(),
                ad = ad_connection(&ad, &ad.admin_dn, "CREDWHEEL_AD_ADMIN_PASSWORD"),
                windows = windows_connection(&sam),
            ),
        )
        .unwrap();
    };
    let key = "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef";
    let run = |args: &[&str]| {
        let (code, out, err) = run_cli(&config, "CW_ONLINE_KEY", key, args);
        (code, format!("{out}{err}"))
    };
    write(8);
    let (code, text) = run(&["validate", "--online"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("rotations[0].policy"), "{text}");
    assert!(text.contains("cw-restricted"), "{text}");
    assert!(
        !text.contains("rotations[1].policy (local, windows:winhost/cwlocal5): refused"),
        "{text}"
    );
    let (code, text) = run(&["run"]);
    assert_eq!(code, Some(2), "run must not start: {text}");
    write(16);
    let (code, text) = run(&["validate", "--online"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("rotations[0].policy (restricted, ad:lab/svc-app4): fits"),
        "{text}"
    );
    assert!(
        text.contains("rotations[1].policy (local, windows:winhost/cwlocal5): fits"),
        "{text}"
    );
}
